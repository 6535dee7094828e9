"""The cloth-agnostic person and the agnostic parse, computed as HR-VITON does, at any resolution.

HR-VITON (Lee et al., ECCV 2022) removes the upper garment from the person in two ways:

* :func:`parse_agnostic`: the CIHP parse with the upper clothes, the neck and the part of each arm near its
  skeleton set to background (HR-VITON's ``get_parse_agnostic``; VITON-HD's is identical). Its radius ``r`` is 10
  at a 1024-pixel height and scales with the height here, so every resolution gives the same picture.
* :func:`agnostic_person`: the photo with the torso, neck and arms painted grey along the skeleton, then the head,
  the lower body and the arm skin outside the skeleton band pasted back (HR-VITON's ``get_agnostic``). Its radius
  is ``shoulder width / 16 + 1`` at a 1024-pixel height; the constant pixel is scaled with the height here (it
  would otherwise make small images' bands relatively wider), and the canvas is the image's own, never a fixed
  one.

Geometry (widths and radii as multiples of ``r``) follows ``shared/reference/hrviton/README.md`` sections 3.2-3.3.
Ellipse half-axes the reference does not state (hips 3r x 6r, shoulders 5r x 6r, elbows and wrists 5r) are
fitroom's reading of the published pictures. A joint at (0, 0) is "not detected" and every shape that needs it is
skipped, as in OpenPose-based code.

Other garment categories (``category=``), masked as DressCode-trained try-on models expect:

* ``lower`` (trousers, shorts, skirts): from the waist (above the hip joints by a fifth of the torso) to the
  ankles: the worn lower garment, bands along the legs' skeleton, the region between the thighs; the top, the
  arms, the hands, the head and the shoes are kept, so a top hanging over the waistband stays in front.
* ``dress``: the upper-garment region and the lower one together, from the shoulders to the ankles, keeping the
  head, the arm skin off the skeleton, the hands and the shoes.
"""

from __future__ import annotations

import cv2
import numpy as np

from fitroom.labels import (
    AGNOSTIC_ARM_CHAINS, HEAD_LABELS, LOWER_BODY_LABELS, LOWER_GARMENT_LABELS, UPPER_GARMENT_LABELS, Body25, Cihp,
    GarmentCategory,
)

#: the grey HR-VITON paints the garment region with
AGNOSTIC_GREY = (128, 128, 128)
#: parse-agnostic radius at a 1024-pixel-high image
PARSE_AGNOSTIC_RADIUS_AT_1024 = 10.0
_REFERENCE_HEIGHT = 1024


def _present(point: np.ndarray) -> bool:
    return not (point[0] == 0 and point[1] == 0)


def _band(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float, value: int | tuple) -> None:
    """A straight band of ``width`` pixels from p0 to p1 with flat ends (as PIL's wide lines are drawn)."""
    direction = p1 - p0
    length = float(np.hypot(*direction))
    if length < 1e-6:
        return
    normal = np.array([-direction[1], direction[0]]) / length * (width / 2)
    corners = np.array([p0 + normal, p1 + normal, p1 - normal, p0 - normal])
    cv2.fillPoly(canvas, [np.round(corners).astype(np.int32)], value)


def _ellipse(canvas: np.ndarray, center: np.ndarray, half_x: float, half_y: float, value: int | tuple) -> None:
    cv2.ellipse(canvas, (int(round(center[0])), int(round(center[1]))),
                (max(int(round(half_x)), 0), max(int(round(half_y)), 0)), 0, 0, 360, value, -1)


def _arm_band(shape: tuple[int, int], points: np.ndarray, chain: tuple[int, ...], width: float,
              joint_radius: float, last_radius: float) -> np.ndarray:
    """A bool mask of the band along ``chain``: segments of ``width`` and discs at each segment's far joint."""
    band = np.zeros(shape, dtype=np.uint8)
    for previous, joint in zip(chain[:-1], chain[1:]):
        if not (_present(points[previous]) and _present(points[joint])):
            continue
        _band(band, points[previous], points[joint], width, 1)
        radius = last_radius if joint == chain[-1] else joint_radius
        _ellipse(band, points[joint], radius, radius, 1)
    return band.astype(bool)


#: the legs' skeleton chains, with the leg label each one runs through
_LEG_CHAINS = ((Cihp.RIGHT_LEG, (Body25.R_HIP, Body25.R_KNEE, Body25.R_ANKLE)),
               (Cihp.LEFT_LEG, (Body25.L_HIP, Body25.L_KNEE, Body25.L_ANKLE)))


def waist_y(points: np.ndarray) -> float | None:
    """The waistband's height from ``(25, 2)`` BODY_25 points: above the hip joints by a fifth of the torso (neck to
    hips); None without hips. The lower garment's agnostic mask and the warp engine place the waistband here."""
    hips = [points[j] for j in (Body25.R_HIP, Body25.L_HIP) if _present(points[j])]
    if not hips:
        return None
    hip_y = float(np.mean([h[1] for h in hips]))
    neck = points[Body25.NECK]
    torso = hip_y - float(neck[1]) if _present(neck) else 0.0
    return hip_y - 0.2 * max(torso, 0.0)


def parse_agnostic(parse: np.ndarray, keypoints: np.ndarray,
                   category: GarmentCategory | str = GarmentCategory.UPPER) -> np.ndarray:
    """The agnostic parse: what the new garment replaces set to background. Upper (HR-VITON's): upper clothes,
    neck and arms near the skeleton; lower: trousers and skirts, the legs near their skeleton and a dress below the
    waist; dress: both.

    Args:
        parse: ``(H, W)`` uint8 CIHP labels.
        keypoints: ``(25, 3)`` BODY_25 ``(x, y, confidence)`` in the parse's pixels.
        category: the garment to be tried on.

    Returns:
        ``(H, W)`` uint8 CIHP labels.
    """
    if parse.ndim != 2:
        raise ValueError(f"parse must be (H, W), got {parse.shape}")
    category = GarmentCategory(category)
    points = np.asarray(keypoints, dtype=np.float64)[:, :2]
    r = PARSE_AGNOSTIC_RADIUS_AT_1024 * parse.shape[0] / _REFERENCE_HEIGHT
    out = parse.copy()
    if category in (GarmentCategory.UPPER, GarmentCategory.DRESS):
        for label, chain in AGNOSTIC_ARM_CHAINS:
            band = _arm_band(parse.shape, points, tuple(int(j) for j in chain), 10 * r, 15 * r, 4 * r)
            out[band & (parse == label)] = Cihp.BACKGROUND
        out[np.isin(parse, [*UPPER_GARMENT_LABELS, Cihp.TORSO_SKIN])] = Cihp.BACKGROUND
    if category in (GarmentCategory.LOWER, GarmentCategory.DRESS):
        for label, chain in _LEG_CHAINS:
            band = _arm_band(parse.shape, points, tuple(int(j) for j in chain), 12 * r, 8 * r, 5 * r)
            out[band & (parse == label)] = Cihp.BACKGROUND
        out[np.isin(parse, LOWER_GARMENT_LABELS)] = Cihp.BACKGROUND
        waist = waist_y(points)
        if waist is not None:  # a dress worn now: what is below the waist goes with the lower garment
            below = np.arange(parse.shape[0])[:, None] >= waist
            out[below & (parse == Cihp.DRESS)] = Cihp.BACKGROUND
    return out


def _equalise_hips(points: np.ndarray) -> np.ndarray:
    """Move both hips along their line so the hip width equals the shoulder width (HR-VITON's trick to cover the
    whole garment on wide-shouldered or narrow-hipped people)."""
    points = points.copy()
    right_hip, left_hip = points[Body25.R_HIP], points[Body25.L_HIP]
    if not all(_present(points[j]) for j in (Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP)):
        return points
    shoulder_width = np.linalg.norm(points[Body25.L_SHOULDER] - points[Body25.R_SHOULDER])
    hip_width = np.linalg.norm(left_hip - right_hip)
    if hip_width < 1e-6:
        return points
    middle = (right_hip + left_hip) / 2
    points[Body25.R_HIP] = middle + (right_hip - middle) / hip_width * shoulder_width
    points[Body25.L_HIP] = middle + (left_hip - middle) / hip_width * shoulder_width
    return points


def agnostic_mask(parse: np.ndarray, keypoints: np.ndarray,
                  category: GarmentCategory | str = GarmentCategory.UPPER) -> np.ndarray:
    """Where :func:`agnostic_person` paints grey for a garment of ``category``: ``(H, W)`` bool."""
    category = GarmentCategory(category)
    points = np.asarray(keypoints, dtype=np.float64)[:, :2]
    shape = parse.shape
    if not (_present(points[Body25.R_SHOULDER]) and _present(points[Body25.L_SHOULDER])):
        raise ValueError("the agnostic person needs both shoulders; the keypoints have none detected")
    shoulder_width = float(np.linalg.norm(points[Body25.L_SHOULDER] - points[Body25.R_SHOULDER]))
    r = shoulder_width / 16 + shape[0] / _REFERENCE_HEIGHT
    if category is GarmentCategory.LOWER:
        return _lower_mask(parse, points, r) & ~np.isin(parse, [*HEAD_LABELS, Cihp.HAIR, Cihp.UPPER_CLOTHES,
                                                                   Cihp.COAT, *_ARM_AND_FOOT_LABELS])
    upper = _upper_mask(parse, points, r, keep_lower_body=category is GarmentCategory.UPPER)
    if category is GarmentCategory.UPPER:
        return upper
    return upper | (_lower_mask(parse, points, r) & ~np.isin(parse, [*HEAD_LABELS, Cihp.HAIR,
                                                                     *_ARM_AND_FOOT_LABELS]))


#: kept in front of a lower garment or a dress: arms and hands (their skin), gloves and shoes
_ARM_AND_FOOT_LABELS = (Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.GLOVE, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE)


def _lower_mask(parse: np.ndarray, points: np.ndarray, r: float) -> np.ndarray:
    """The lower garment's region, waist to ankles (before anything is kept): ``(H, W)`` bool."""
    shape = parse.shape
    grey = np.zeros(shape, dtype=np.uint8)
    waist = waist_y(points)
    right_hip, left_hip = points[Body25.R_HIP], points[Body25.L_HIP]
    if waist is not None and _present(right_hip) and _present(left_hip):
        lift = np.array([0.0, waist - (right_hip[1] + left_hip[1]) / 2])
        right_waist, left_waist = right_hip + lift, left_hip + lift
        # the hips' band from the waist down to the hip joints, 3r wider on each side than the joints
        outward = (right_hip - left_hip) / max(float(np.linalg.norm(right_hip - left_hip)), 1e-6) * 3 * r
        cv2.fillPoly(grey, [np.round([right_waist + outward, left_waist - outward, left_hip - outward,
                                      right_hip + outward]).astype(np.int32)], 1)
        for hip in (right_hip, left_hip):
            _ellipse(grey, hip, 5 * r, 5 * r, 1)
        knees = [points[j] for j in (Body25.R_KNEE, Body25.L_KNEE)]
        if all(_present(k) for k in knees):  # between the thighs: a skirt's or a wide leg's room
            cv2.fillPoly(grey, [np.round([right_hip, left_hip, knees[1], knees[0]]).astype(np.int32)], 1)
    for _, chain in _LEG_CHAINS:
        for previous, joint in zip(chain[:-1], chain[1:]):
            if _present(points[previous]) and _present(points[joint]):
                width = 12 * r if previous in (Body25.R_HIP, Body25.L_HIP) else 9 * r
                _band(grey, points[previous], points[joint], width, 1)
                _ellipse(grey, points[joint], width / 2, width / 2, 1)
    worn = np.isin(parse, LOWER_GARMENT_LABELS)
    if waist is not None:
        worn |= (np.arange(shape[0])[:, None] >= waist) & (parse == Cihp.DRESS)
    # the garment worn now, a little beyond its edge, wherever it reaches (wide trousers, a long skirt)
    grown = max(int(round(r)), 1)
    worn = cv2.dilate(worn.astype(np.uint8), np.ones((2 * grown + 1, 2 * grown + 1), np.uint8)).astype(bool)
    mask = grey.astype(bool) | worn
    if waist is not None:  # nothing above the waistband
        mask[: max(int(np.floor(waist)), 0)] = False
    return mask


def _upper_mask(parse: np.ndarray, points: np.ndarray, r: float, keep_lower_body: bool) -> np.ndarray:
    """HR-VITON's grey region (:func:`agnostic_mask` for upper garments); ``keep_lower_body`` pastes the lower body
    back as HR-VITON does (a dress's mask leaves it to the lower region instead)."""
    shape = parse.shape
    points = _equalise_hips(points)
    grey = np.zeros(shape, dtype=np.uint8)
    right_shoulder, left_shoulder = points[Body25.R_SHOULDER], points[Body25.L_SHOULDER]
    right_hip, left_hip = points[Body25.R_HIP], points[Body25.L_HIP]
    hips_present = _present(right_hip) and _present(left_hip)

    # torso
    if hips_present:
        for hip in (right_hip, left_hip):
            _ellipse(grey, hip, 3 * r, 6 * r, 1)
        _band(grey, right_shoulder, right_hip, 6 * r, 1)
        _band(grey, left_shoulder, left_hip, 6 * r, 1)
        _band(grey, right_hip, left_hip, 12 * r, 1)
        cv2.fillPoly(grey, [np.round([right_shoulder, left_shoulder, left_hip, right_hip]).astype(np.int32)], 1)
    # neck
    neck = points[Body25.NECK]
    if _present(neck):
        top_left = np.round([neck[0] - 5 * r, neck[1] - 9 * r]).astype(int)
        bottom_right = np.round([neck[0] + 5 * r, neck[1]]).astype(int)
        cv2.rectangle(grey, tuple(int(v) for v in top_left), tuple(int(v) for v in bottom_right), 1, -1)
    # arms
    _band(grey, right_shoulder, left_shoulder, 12 * r, 1)
    for shoulder in (right_shoulder, left_shoulder):
        _ellipse(grey, shoulder, 5 * r, 6 * r, 1)
    for chain in ((Body25.R_SHOULDER, Body25.R_ELBOW, Body25.R_WRIST),
                  (Body25.L_SHOULDER, Body25.L_ELBOW, Body25.L_WRIST)):
        for previous, joint in zip(chain[:-1], chain[1:]):
            if _present(points[previous]) and _present(points[joint]):
                _band(grey, points[previous], points[joint], 10 * r, 1)
                _ellipse(grey, points[joint], 5 * r, 5 * r, 1)

    # paste back: arm skin outside the skeleton band, the head, the lower body
    keep = np.isin(parse, [*HEAD_LABELS, *(LOWER_BODY_LABELS if keep_lower_body else ())])
    for label, (shoulder, elbow, wrist) in (
        (Cihp.LEFT_ARM, (Body25.L_SHOULDER, Body25.L_ELBOW, Body25.L_WRIST)),
        (Cihp.RIGHT_ARM, (Body25.R_SHOULDER, Body25.R_ELBOW, Body25.R_WRIST)),
    ):
        band = _arm_band(shape, points, (int(shoulder), int(elbow), int(wrist)), 10 * r, 5 * r, 5 * r)
        if _present(points[shoulder]):
            shoulder_disc = np.zeros(shape, dtype=np.uint8)
            _ellipse(shoulder_disc, points[shoulder], 5 * r, 6 * r, 1)
            band |= shoulder_disc.astype(bool)
        keep |= (parse == label) & ~band
    return grey.astype(bool) & ~keep


def agnostic_person(image: np.ndarray, parse: np.ndarray, keypoints: np.ndarray,
                    category: GarmentCategory | str = GarmentCategory.UPPER) -> np.ndarray:
    """The clothing-agnostic person: ``image`` with the region a garment of ``category`` covers painted grey.

    Args:
        image: ``(H, W, 3)`` uint8 RGB person.
        parse: ``(H, W)`` uint8 CIHP labels of ``image``.
        keypoints: ``(25, 3)`` BODY_25 keypoints in ``image`` pixels.
        category: the garment to be tried on (upper, lower, dress).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if image.shape[:2] != parse.shape:
        raise ValueError(f"image {image.shape[:2]} and parse {parse.shape} must have the same (H, W)")
    out = image.copy()
    out[agnostic_mask(parse, keypoints, category)] = AGNOSTIC_GREY
    return out
