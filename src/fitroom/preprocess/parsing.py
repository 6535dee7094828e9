"""Human parsing behind one interface: ``parser(image, keypoints, mask, view) -> (H, W) CIHP labels``.

Backends, chosen by name with :func:`create_parser`:

* ``builtin`` (default, offline): body-part regions from the skeleton, split by colour. The face is the face
  mesh's oval when one is given (``face=``), else guessed from colour; a skin model is learnt from the face (or,
  from behind, the neck and hands), a hair model from the head, and the upper and lower garments
  from the chest and the thighs; every pixel of the person's silhouette goes to the most likely class that its
  position allows. Left and right follow the keypoints. Its per-class IoU on synthetic data is measured by
  ``benchmarks/preprocess.py``.
* ``schp``: the published Self-Correction Human Parsing checkpoints (see :mod:`fitroom.models.schp`).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future

import cv2
import numpy as np

from fitroom import imaging
from fitroom.labels import BodyPart, Body25, Cihp, View
from fitroom.preprocess.backends import PARSERS, create_parser  # noqa: F401  (create_parser: here too)
from fitroom.preprocess.body import BodyGeometry, box_around

logger = logging.getLogger(__name__)


class ColourModel:
    """A Gaussian in CIELAB fitted to sample pixels; ``distance`` is the Mahalanobis distance."""

    FLOOR = np.diag([16.0, 9.0, 9.0])  # no class is more uniform than this (noise, JPEG, shading)

    def __init__(self, samples: np.ndarray) -> None:
        self.count = len(samples)
        self.mean = samples.mean(axis=0)
        covariance = np.cov(samples.T) if len(samples) > 3 else np.zeros((3, 3))
        self.inverse = np.linalg.inv(covariance + self.FLOOR)

    def distance(self, pixels: np.ndarray) -> np.ndarray:
        delta = pixels - self.mean
        return np.sqrt(np.einsum("ni,ij,nj->n", delta, self.inverse, delta))


def colour_model(lab: np.ndarray, where: np.ndarray, minimum: int = 30) -> ColourModel | None:
    """A :class:`ColourModel` of ``lab`` ``(H, W, 3)`` CIELAB pixels where ``where`` holds, None under ``minimum``."""
    samples = lab[where]
    return ColourModel(samples) if len(samples) >= minimum else None


def lower_face(face: np.ndarray) -> np.ndarray:
    """The lower two thirds of a face mask ``(H, W)`` bool (cheeks, nose, mouth), clear of a fringe over the
    forehead: where the face's skin colour is sampled."""
    rows = np.nonzero(face.any(axis=1))[0]
    if len(rows) == 0:
        return face
    return face & (np.arange(face.shape[0])[:, None] > rows[0] + 0.35 * (rows[-1] - rows[0]))


@PARSERS.register("builtin")
class BuiltinParser:
    """Skeleton regions split by colour; see the module docstring.

    Args:
        skin_threshold: Mahalanobis distance under which a pixel is skin-coloured.
    """

    def __init__(self, skin_threshold: float = 3.0) -> None:
        self.skin_threshold = skin_threshold
        #: ``beside(function) -> Future``: where work that can overlap the parse's own runs (the
        #: :class:`~fitroom.preprocess.pipeline.Preprocessor` gives its side threads); None: in turn
        self.beside = None

    def _beside(self, function) -> Future:
        if self.beside is not None:
            return self.beside(function)
        done = Future()
        done.set_result(function())
        return done

    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray,
                 view: View = View.FRONT, face: np.ndarray | None = None) -> np.ndarray:
        k = np.asarray(keypoints, dtype=np.float64)
        body = BodyGeometry.from_keypoints(k)
        wide = BodyGeometry.from_keypoints(k, scale=1.45)
        # Every label lies on the silhouette and every shape the parse measures from lies on the body's parts, so
        # the work is done on the box around both (and a margin for the 5x5 filters): the same labels as on the
        # whole photo, in two thirds of the time on the bundled full-length photo.
        labels = np.zeros(mask.shape, np.uint8)
        found = box_around(mask, body, wide, margin=4)
        if found is None:
            return labels
        top, bottom, left, right = found
        box = (slice(top, bottom), slice(left, right))
        labels[box] = self._parse(image[box], k, mask[box], body, wide, view, None if face is None else face[box],
                                  (left, top))
        return labels

    def _parse(self, image: np.ndarray, k: np.ndarray, mask: np.ndarray, body: BodyGeometry, wide: BodyGeometry,
               view: View, face: np.ndarray | None, origin: tuple[int, int]) -> np.ndarray:
        """The labels of the crop ``image`` ``(h, w, 3)`` (silhouette ``mask``, ``face``) whose top left is the
        photo's pixel ``origin`` ``(x, y)``; ``k``, ``body`` and ``wide`` are in the photo's pixels."""
        height, width = mask.shape
        shape = (height, width)
        left, top = origin
        sw = body.shoulder_width
        lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        ys = np.arange(top, top + height)[:, None].repeat(width, 1)

        def y_of(*joints: int, default: float) -> float:
            seen = [k[j, 1] for j in joints if k[j, 2] > 0]
            return float(np.mean(seen)) if seen else default

        shoulder_y = y_of(Body25.R_SHOULDER, Body25.L_SHOULDER, default=0.0)
        hip_y = y_of(Body25.R_HIP, Body25.L_HIP, default=shoulder_y + 1.5 * sw)
        knee_y = y_of(Body25.R_KNEE, Body25.L_KNEE, default=hip_y + 1.1 * sw)
        ankle_y = y_of(Body25.R_ANKLE, Body25.L_ANKLE, default=knee_y + 1.1 * sw)

        # 1. head: inside the head ellipse, above the shoulders
        head = mask & body.mask(shape, BodyPart.HEAD, origin=origin) & (ys < shoulder_y - 0.05 * sw)
        # 2. skin model: the face's middle when the face is seen, else the neck and the hands
        centre, (a, b) = body.head_centre, body.head_axes
        seeds = np.zeros(shape, bool)
        face = face & mask if face is not None and (face & mask).any() else None
        if face is not None:
            seeds = lower_face(face) & cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        elif View(view).surface is View.FRONT and k[Body25.NOSE, 2] > 0:
            nose = k[Body25.NOSE, :2]
            cv2.ellipse(seeds.view(np.uint8), (int(nose[0]) - left, int(nose[1]) - top), (max(int(0.45 * a), 1),
                        max(int(0.35 * b), 1)), 0, 0, 360, 1, -1)
        else:
            neck_point = (centre + k[Body25.NECK, :2]) / 2 + np.array([0, 0.25 * b])
            cv2.circle(seeds.view(np.uint8), (int(neck_point[0]) - left, int(neck_point[1]) - top),
                       max(int(0.25 * a), 1), 1, -1)
        skin_model = colour_model(lab, seeds & mask)
        if skin_model is None:
            hands = body.mask(shape, BodyPart.LEFT_HAND, BodyPart.RIGHT_HAND, origin=origin)
            skin_model = colour_model(lab, hands & mask)
        labels = np.zeros(shape, np.uint8)
        if skin_model is None:
            logger.warning("no skin sample was found; the parse will have no skin classes")
            skin = np.zeros(shape, bool)
        else:
            # every silhouette pixel's distance to the skin colour, kept for step 4's costs
            skin_distance = np.zeros(shape)
            skin_distance[mask] = skin_model.distance(lab[mask])
            skin = mask & (skin_distance < self.skin_threshold)

        if face is not None:
            # the mesh found the face: its oval is face whatever its colour (a beard, glasses, shadow)
            head |= face
            labels[face] = Cihp.FACE
            labels[head & ~face] = Cihp.HAIR
        else:
            labels[head & skin] = Cihp.FACE
            labels[head & ~skin] = Cihp.HAIR
        # long hair below the head: hair-coloured regions joined to the head's hair
        hair_model = colour_model(lab, head & ~skin)
        if hair_model is not None:
            xs = np.arange(left, left + width)[None, :]
            zone = mask & ~skin & (ys < shoulder_y + 1.1 * sw) & (np.abs(xs - centre[0]) < 1.8 * a)
            zone &= ~wide.mask(shape, BodyPart.LEFT_LOWER_ARM, BodyPart.RIGHT_LOWER_ARM, origin=origin)
            hairy = np.zeros(shape, bool)
            hairy[zone] = hair_model.distance(lab[zone]) < 2.5
            count, regions = cv2.connectedComponents(hairy.astype(np.uint8))
            touching = np.unique(regions[cv2.dilate((labels == Cihp.HAIR).astype(np.uint8), np.ones((5, 5)))
                                         .astype(bool) & hairy])
            labels[np.isin(regions, touching[touching > 0]) & (labels == 0)] = Cihp.HAIR

        # 3. garment colour models: the chest (upper garment) and the thighs (lower garment)
        torso = body.mask(shape, BodyPart.TORSO, origin=origin)
        arms_wide = wide.mask(shape, BodyPart.LEFT_UPPER_ARM, BodyPart.RIGHT_UPPER_ARM, BodyPart.LEFT_LOWER_ARM,
                              BodyPart.RIGHT_LOWER_ARM, BodyPart.LEFT_HAND, BodyPart.RIGHT_HAND, origin=origin)
        chest = mask & torso & ~skin & ~arms_wide & (labels == 0) & (ys < shoulder_y + 0.55 * (hip_y - shoulder_y))
        upper_model = colour_model(lab, chest)
        thighs = body.mask(shape, BodyPart.LEFT_UPPER_LEG, BodyPart.RIGHT_UPPER_LEG, origin=origin)
        thigh_band = mask & thighs & ~skin & ~arms_wide & (ys > hip_y + 0.2 * (knee_y - hip_y)) & \
            (ys < hip_y + 0.7 * (knee_y - hip_y))
        lower_model = colour_model(lab, thigh_band)

        # the distances to the body's parts that step 5 measures depend on their shapes alone: made beside step 4
        arm_parts = {
            Cihp.LEFT_ARM: wide.mask(shape, BodyPart.LEFT_UPPER_ARM, BodyPart.LEFT_LOWER_ARM, BodyPart.LEFT_HAND,
                                     origin=origin),
            Cihp.RIGHT_ARM: wide.mask(shape, BodyPart.RIGHT_UPPER_ARM, BodyPart.RIGHT_LOWER_ARM,
                                      BodyPart.RIGHT_HAND, origin=origin),
        }
        leg_parts = {
            Cihp.LEFT_LEG: body.mask(shape, BodyPart.LEFT_UPPER_LEG, BodyPart.LEFT_LOWER_LEG, origin=origin),
            Cihp.RIGHT_LEG: body.mask(shape, BodyPart.RIGHT_UPPER_LEG, BodyPart.RIGHT_LOWER_LEG, origin=origin),
        }
        parts = [arm_parts[Cihp.LEFT_ARM], arm_parts[Cihp.RIGHT_ARM], torso, leg_parts[Cihp.LEFT_LEG],
                 leg_parts[Cihp.RIGHT_LEG]]
        measured = self._beside(lambda: [imaging.distance_to(part) for part in parts])

        # 4. every unlabelled silhouette pixel to the most likely class its position allows
        todo = mask & (labels == 0)
        pixels = lab[todo]
        rows = ys[todo]
        big = 1e6
        costs = []
        skin_cost = skin_distance[todo] if skin_model is not None else np.full(len(pixels), big)
        costs.append(skin_cost)
        upper_cost = upper_model.distance(pixels) if upper_model is not None else np.full(len(pixels), big)
        upper_cost = upper_cost + np.where(rows > knee_y, big, 0.0)
        costs.append(upper_cost)
        lower_cost = lower_model.distance(pixels) if lower_model is not None else np.full(len(pixels), big)
        lower_cost = lower_cost + np.where(rows < shoulder_y + 0.55 * (hip_y - shoulder_y), big, 0.0)
        costs.append(lower_cost)
        choice = np.argmin(np.stack(costs), axis=0)
        kind = np.zeros(shape, np.uint8)  # 1 skin, 2 upper garment, 3 lower garment
        kind[todo] = choice + 1

        # 5. skin by place: arms, legs, neck and chest; garments by kind; feet are shoes
        to_left_arm, to_right_arm, to_torso, to_left_leg, to_right_leg = measured.result()
        skin_left = kind == 1
        above = skin_left & (ys < hip_y)
        if above.any():  # the nearest of: left arm, right arm, neck and chest
            distances = np.stack([to_left_arm[above], to_right_arm[above], to_torso[above]])
            labels[above] = np.array([Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.TORSO_SKIN], np.uint8)[distances.argmin(0)]
        for label, region in arm_parts.items():
            labels[skin_left & region] = label
        below = skin_left & (ys >= hip_y) & ~arm_parts[Cihp.LEFT_ARM] & ~arm_parts[Cihp.RIGHT_ARM]
        # the nearer leg (the left on a tie)
        labels[below] = np.where(to_left_leg[below] <= to_right_leg[below], Cihp.LEFT_LEG, Cihp.RIGHT_LEG)
        labels[kind == 2] = Cihp.UPPER_CLOTHES
        lower = kind == 3
        labels[lower] = self._lower_label(lower, k, hip_y, knee_y, ankle_y, sw, origin)
        feet = {
            Cihp.LEFT_SHOE: wide.mask(shape, BodyPart.LEFT_FOOT, origin=origin),
            Cihp.RIGHT_SHOE: wide.mask(shape, BodyPart.RIGHT_FOOT, origin=origin),
        }
        for label, region in feet.items():
            labels[region & mask & ~skin & (ys > ankle_y - 0.08 * sw)] = label

        # 6. tidy: a median filter removes speckle, the silhouette stays exact
        smoothed = cv2.medianBlur(labels, 5)
        labels = np.where(mask, np.where(smoothed > 0, smoothed, labels), 0).astype(np.uint8)
        return imaging.fill_nearest(labels, mask & (labels == 0))

    @staticmethod
    def _lower_label(lower: np.ndarray, k: np.ndarray, hip_y: float, knee_y: float, ankle_y: float,
                     sw: float, origin: tuple[int, int] = (0, 0)) -> int:
        """Skirt when the lower garment ends above mid-shin and fills the gap between the legs; else pants.
        ``lower`` is a crop whose top left is the photo's pixel ``origin``; ``k`` and the heights are the photo's."""
        left, top = origin
        rows = np.nonzero(lower)[0] + top
        if len(rows) == 0:
            return Cihp.PANTS
        bottom = np.percentile(rows, 97)
        if bottom > (knee_y + ankle_y) / 2:
            return Cihp.PANTS
        if not (k[Body25.R_KNEE, 2] > 0 and k[Body25.L_KNEE, 2] > 0):
            return Cihp.PANTS
        x0, x1 = sorted((k[Body25.R_KNEE, 0], k[Body25.L_KNEE, 0]))
        y0 = int(max(hip_y + 0.5 * (bottom - hip_y), 0))
        band = lower[max(y0 - top, 0):max(int(bottom) - top, 0),
                     max(int(x0 + 0.25 * (x1 - x0)) - left, 0):max(int(x1 - 0.25 * (x1 - x0)) + 1 - left, 0)]
        return Cihp.SKIRT if band.size and band.mean() > 0.7 else Cihp.PANTS
