"""The parts of a person photo a try-on must return unchanged, found with mediapipe's own models.

A shopper judges a try-on first by their face, hair and hands. Those are found here, not guessed from colour:

* the **face**: the convex hull of the 468-point face mesh (its outline is the face oval: forehead, jaw line,
  chin), slightly widened. Without a mesh (a head turned away, a profile, a small face), the head ellipse from the
  pose's ears and nose stands in.
* the **head**: the face plus every pixel of the person above the chin line, within a band around the head (hair,
  a hat, glasses and a beard are all there), the face detector's box of this face (a little lower than the
  chin), plus hair the parser found below it (hair over the shoulders). When no face is seen (a back view), hair
  of the head's own colour hanging below it (a ponytail) is followed down; with no face and no head keypoint at
  all, everything above the shoulders is kept. The head is widened by a pixel or two for its anti-aliased edge.
* the **hands**: the hull of each hand's 21 landmarks (hand model) and of BlazePose's wrist, thumb, index and
  pinky points, widened by a share of the hand's size.

:func:`keep_mask` adds the background (outside the silhouette, widened by a small margin) and the lower body (the
parser's trousers, skirt, legs and shoes, below the hips) and returns the pixels an engine must copy back bit for
bit (:meth:`fitroom.inputs.TryOnInputs.restore_kept`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from fitroom import imaging
from fitroom.labels import LOWER_BODY_LABELS, Body25, BodyPart, Cihp, GarmentCategory
from fitroom.preprocess.body import BodyGeometry
from fitroom.preprocess.parsing import colour_model

#: BlazePose's 33-landmark indices of each hand's points (wrist, pinky, index, thumb)
BLAZEPOSE_HANDS = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}
#: a BlazePose hand point below this visibility is not used
HAND_VISIBILITY = 0.5
#: the face hull is widened by this share of the face's height (the mesh stops just inside the outline)
FACE_MARGIN = 0.04
#: the face detector's box and the chin line are extended by this share of the face's height (detectors and the
#: mesh differ at the chin and the sides, most in profile)
BOX_MARGIN = 0.12
#: the band around the face, in face widths on each side, in which everything above the chin is "head"
HEAD_BAND = 0.8
#: hands are widened by this share of their size (fingers spread past the landmarks)
HAND_MARGIN = 0.25
#: the head is widened by this share of the photo's height (at least 2 pixels), for its anti-aliased outline
HEAD_GROW = 0.005
#: how far below the chin, in head heights, hair hanging down a back is followed (waist-long hair reaches about 3)
HAIR_REACH = 3.5
#: the colour distance (Mahalanobis, CIELAB) under which a pixel below an unseen face is the head's hair
HAIR_DISTANCE = 3.0
#: the background margin around the silhouette, in shoulder widths (a garment may stand slightly proud of it)
BACKGROUND_MARGIN = 0.03


@dataclass
class PersonRegions:
    """Where the face, head and hands are. Masks are ``(H, W)`` bool in photo pixels.

    Attributes:
        face: the face oval (or the head ellipse when no face mesh was found).
        head: face, hair, hat and everything of the person above the chin within the head's band.
        hands: both hands.
        chin_y: the chin's row (the lowest point of the face oval or of the head ellipse).
        face_found: whether the face mesh found this person's face.
        face_landmarks: the ``(468, 2)`` mesh of this person's face, or None.
    """

    face: np.ndarray
    head: np.ndarray
    hands: np.ndarray
    chin_y: float
    face_found: bool
    face_landmarks: np.ndarray | None = None


def _hull_mask(shape: tuple[int, int], points: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """The convex hull of ``points`` ``(N, 2)`` as a mask, grown by ``grow`` pixels."""
    mask = np.zeros(shape, np.uint8)
    if len(points) < 3:
        return mask.astype(bool)
    hull = cv2.convexHull(np.round(points * 4).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=2)
    return imaging.dilate(mask, int(round(grow))) if grow >= 1 else mask.astype(bool)


def _main_face(meshes: list[np.ndarray], keypoints: np.ndarray, geometry: BodyGeometry) -> np.ndarray | None:
    """The mesh that belongs to the person of ``keypoints``: the one nearest their nose (or head centre), if it
    lies within two head widths of it."""
    if not meshes:
        return None
    k = keypoints
    anchor = k[Body25.NOSE, :2] if k[Body25.NOSE, 2] > 0 else geometry.head_centre
    distances = [float(np.hypot(*(mesh.mean(axis=0) - anchor))) for mesh in meshes]
    best = int(np.argmin(distances))
    return meshes[best] if distances[best] < 2.0 * 2 * geometry.head_axes[0] else None


def find_regions(shape: tuple[int, int], mask: np.ndarray, keypoints: np.ndarray, landmarks: np.ndarray | None,
                 face_meshes: list[np.ndarray], hands: list[np.ndarray], face_boxes: np.ndarray | None = None,
                 image: np.ndarray | None = None) -> PersonRegions:
    """Face, head and hands of the person whose pose is ``keypoints`` (see the module docstring; the parser's hair
    below the chin is added by :func:`with_parsed_hair`, once the parse, which uses the face found here, exists).

    Args:
        shape: the photo's ``(H, W)``.
        mask: ``(H, W)`` bool silhouette of the person.
        keypoints: ``(25, 3)`` BODY_25.
        landmarks: ``(33, 3)`` BlazePose ``(x, y, visibility)``, or None.
        face_meshes: every face mesh found in the photo, ``(468, 2)`` each.
        hands: every hand found in the photo, ``(21, 2)`` each.
        face_boxes: ``(N, 5)`` face detector boxes ``(x0, y0, x1, y1, score)``; the one on this face is kept.
        image: the ``(H, W, 3)`` uint8 photo, to follow hair hanging below a head whose face is not seen.
    """
    height, width = shape
    k = np.asarray(keypoints, dtype=np.float64)
    geometry = BodyGeometry.from_keypoints(k)
    ys = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]

    # 1. the face: the mesh's hull, or the head ellipse from the pose
    mesh = _main_face(face_meshes, k, geometry)
    if mesh is not None:
        x0, y0 = mesh.min(axis=0)
        x1, y1 = mesh.max(axis=0)
        face = _hull_mask(shape, mesh, FACE_MARGIN * (y1 - y0))
        chin_y = float(y1)
    else:
        wide = BodyGeometry.from_keypoints(k, scale=1.25)
        face = wide.mask(shape, BodyPart.HEAD)
        rows = np.nonzero(face.any(axis=1))[0]
        cols = np.nonzero(face.any(axis=0))[0]
        if len(rows) == 0:
            x0 = x1 = float(geometry.head_centre[0])
            y0 = y1 = chin_y = float(geometry.head_centre[1])
        else:
            x0, x1 = float(cols[0]), float(cols[-1])
            y0, y1 = float(rows[0]), float(rows[-1])
            chin_y = y1

    # 2. the head: everything of the person above the chin, within a band around the face; hair below it
    face_width = max(x1 - x0, 1.0)
    band = (xs >= x0 - HEAD_BAND * face_width) & (xs <= x1 + HEAD_BAND * face_width)
    head = face | (mask & band & (ys <= chin_y + BOX_MARGIN * max(y1 - y0, 1.0)))
    if mesh is None and not any(k[j, 2] > 0 for j in (Body25.NOSE, Body25.R_EAR, Body25.L_EAR, Body25.R_EYE,
                                                      Body25.L_EYE)):
        # no face and no head keypoint: where the head is is a guess, so everything above the shoulders is kept
        shoulders_y = min(k[Body25.R_SHOULDER, 1], k[Body25.L_SHOULDER, 1])
        head |= ys < shoulders_y
        chin_y = max(chin_y, float(shoulders_y))
    if face_boxes is not None and len(face_boxes):
        # the detector's box whose centre lies in this face (or, without a mesh, in the head ellipse)
        for bx0, by0, bx1, by1, _ in face_boxes:
            cx = int(np.clip((bx0 + bx1) / 2, 0, width - 1))
            cy = int(np.clip((by0 + by1) / 2, 0, height - 1))
            if face[cy, cx]:
                margin = BOX_MARGIN * (by1 - by0)
                head |= (xs >= bx0 - margin) & (xs <= bx1 + margin) & (ys >= by0) & (ys <= by1 + margin)
    if mesh is None and image is not None:
        # no face seen (a back view, a head turned away): the head is hair, and hair of its colour hanging below
        # it (a ponytail, hair over the back) is kept too
        head |= _hanging_hair(image, mask, face, chin_y, x0, x1, y1 - y0)
    head = _grow_outline(head)

    # 3. the hands: the hand model's landmarks near this person, and BlazePose's hand points
    hand_mask = np.zeros(shape, bool)
    silhouette_near = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    for hand in hands:
        centre = np.clip(hand.mean(axis=0).round().astype(int), 0, [width - 1, height - 1])
        if not silhouette_near[centre[1], centre[0]]:
            continue  # someone else's hand
        size = float(np.hypot(*(hand.max(axis=0) - hand.min(axis=0))))
        hand_mask |= _hull_mask(shape, hand, HAND_MARGIN * size)
    if landmarks is not None:
        for indices in BLAZEPOSE_HANDS.values():
            points = landmarks[list(indices)]
            seen = points[points[:, 2] >= HAND_VISIBILITY, :2]
            if len(seen) >= 3:
                size = max(float(np.hypot(*(seen.max(axis=0) - seen.min(axis=0)))), 0.1 * geometry.shoulder_width)
                hand_mask |= _hull_mask(shape, seen, 0.6 * size)
    return PersonRegions(face=face, head=head, hands=hand_mask, chin_y=chin_y, face_found=mesh is not None,
                         face_landmarks=mesh)


def _grow_outline(head: np.ndarray) -> np.ndarray:
    """The head's outline is anti-aliased against whatever is behind it: those mixed pixels are kept too."""
    return imaging.dilate(head, max(int(round(HEAD_GROW * head.shape[0])), 2))


def with_parsed_hair(regions: PersonRegions, parse: np.ndarray) -> PersonRegions:
    """``regions`` whose head also holds the parser's hair (and hat, sunglasses) regions that touch it: long hair
    over the shoulders, not stray hair-coloured clothes elsewhere."""
    hair = np.isin(parse, (Cihp.HAIR, Cihp.HAT, Cihp.SUNGLASSES))
    if not hair.any():
        return regions
    count, labelled = cv2.connectedComponents(hair.astype(np.uint8))
    touching = np.unique(labelled[cv2.dilate(regions.head.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                                  & hair])
    head = regions.head | _grow_outline(np.isin(labelled, touching[touching > 0]))
    return dataclasses.replace(regions, head=head)


def _hanging_hair(image: np.ndarray, mask: np.ndarray, head: np.ndarray, chin_y: float, x0: float, x1: float,
                  head_height: float) -> np.ndarray:
    """Pixels of the head's colour below the chin, within the head's width (and a quarter of it on each side) and
    ``HAIR_REACH`` head heights, connected to the head: hair hanging down a back."""
    height, width = mask.shape
    ys = np.arange(height)[:, None]
    xs = np.arange(width)[None, :]
    side = 0.25 * (x1 - x0)  # hair falls a little wider than the head (over the shoulders)
    zone = mask & (ys > chin_y - 1) & (ys < chin_y + HAIR_REACH * head_height) & (xs >= x0 - side) & \
        (xs <= x1 + side)
    seen = head & mask
    # worked on the box of the zone and the head: nothing outside it is looked at
    box = imaging.bounds(zone | seen)
    hanging = np.zeros(mask.shape, bool)
    if box is None:
        return hanging
    crop = (slice(box[0], box[1]), slice(box[2], box[3]))
    lab = cv2.cvtColor(image[crop].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    model = colour_model(lab, seen[crop])
    if model is None:
        return hanging
    inside = zone[crop]
    alike = np.zeros(inside.shape, bool)
    alike[inside] = model.distance(lab[inside]) < HAIR_DISTANCE
    count, regions = cv2.connectedComponents((alike | seen[crop]).astype(np.uint8))
    touching = np.unique(regions[seen[crop]])
    hanging[crop] = np.isin(regions, touching[touching > 0]) & alike
    # the hair's shaded edges fall outside the colour model: widen it a little, within the zone
    return imaging.dilate(hanging, max(int(round(0.012 * height)), 2)) & zone


def keep_mask(regions: PersonRegions, mask: np.ndarray, keypoints: np.ndarray, parse: np.ndarray | None = None,
              category: GarmentCategory | str = GarmentCategory.UPPER) -> np.ndarray:
    """``(H, W)`` bool: the pixels a try-on of a garment of ``category`` must return unchanged.

    Head and hands; the background beyond a small margin around the silhouette; for an upper garment, when the
    hips are seen, the lower body the parser found below them; for a lower garment, the top, the arms and the
    shoes, and no background within the lower garment's reach nor below the hips (a skirt may be wider than the
    trousers it replaces); for a dress, the shoes and no background within either garment's reach.
    """
    k = np.asarray(keypoints, dtype=np.float64)
    geometry = BodyGeometry.from_keypoints(k)
    near = imaging.dilate(mask, max(int(round(BACKGROUND_MARGIN * geometry.shoulder_width)), 2))
    category = GarmentCategory(category)
    if category is not GarmentCategory.UPPER and parse is not None:
        from fitroom.preprocess.agnostic import agnostic_mask

        reach = agnostic_mask(parse, k, category)
        near |= imaging.dilate(reach, max(int(round(0.4 * geometry.shoulder_width)), 2))
        if k[Body25.R_HIP, 2] > 0 and k[Body25.L_HIP, 2] > 0:  # below the hips a skirt may flare far out
            hip_y = float((k[Body25.R_HIP, 1] + k[Body25.L_HIP, 1]) / 2)
            near[int(max(hip_y, 0)):] = True
        keep = ~near | regions.head | regions.hands | np.isin(parse, (Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE))
        if category is GarmentCategory.LOWER:
            keep |= np.isin(parse, (Cihp.UPPER_CLOTHES, Cihp.COAT, Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.TORSO_SKIN))
        return keep
    keep = ~near | regions.head | regions.hands
    if parse is not None and k[Body25.R_HIP, 2] > 0 and k[Body25.L_HIP, 2] > 0:
        hip_y = float((k[Body25.R_HIP, 1] + k[Body25.L_HIP, 1]) / 2)
        rows = np.arange(mask.shape[0])[:, None]
        keep |= np.isin(parse, LOWER_BODY_LABELS) & (rows > hip_y + 0.1 * geometry.shoulder_width)
    return keep
