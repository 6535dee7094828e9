"""Compositing a warped garment into a photo, shared by the warp engine's paths (tops, lower garments): the
person's skin colour, the photo's light and tone carried onto the garment, and anti-aliased seams."""

from __future__ import annotations

import cv2
import numpy as np

from fitroom import geometry, imaging
from fitroom.labels import Cihp
from fitroom.preprocess.parsing import lower_face


def skin_colour(image: np.ndarray, parse: np.ndarray, fallback: np.ndarray) -> np.ndarray | None:
    """The person's skin colour ``(3,)`` in [0, 1]: the median of the face's middle (the parse's face, which is
    the face mesh's oval when one was found), else of ``fallback`` ``(H, W)`` bool (arms, neck)."""
    middle = lower_face(parse == Cihp.FACE)
    if middle.sum() > 50:
        return np.median(image[middle], axis=0)
    return np.median(image[fallback], axis=0) if fallback.any() else None


def paint_skin(image: np.ndarray, parse: np.ndarray, zone: np.ndarray, around: np.ndarray,
               samples: np.ndarray) -> None:
    """Paint ``zone`` ``(H, W)`` bool of ``image`` ``(H, W, 3)`` float, in place, with the person's skin colour
    (:func:`skin_colour`, ``samples`` its fallback), shaded as a limb across ``zone | around`` (the skin the photo
    already shows beside it); nothing when there is no zone or no skin to take the colour from."""
    skin = skin_colour(image, parse, samples)
    if skin is not None and zone.any():
        shade = geometry.roundness(zone | around, 0.2)
        image[zone] = skin[None] * shade[zone][:, None]


def apply_tone(rgb: np.ndarray, tint: np.ndarray) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` float in [0, 1] with its colours replaced by one ``tint`` (its lightness kept)."""
    lab = cv2.cvtColor((rgb * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2Lab)
    lab[..., 1], lab[..., 2] = int(round(tint[0])), int(round(tint[1]))
    return cv2.cvtColor(lab, cv2.COLOR_Lab2RGB).astype(np.float32) / 255.0


def carry_light(person: np.ndarray, old: np.ndarray, drawn: np.ndarray, warped_rgb: np.ndarray, shading: bool
                ) -> np.ndarray:
    """The new garment ``warped_rgb`` ``(H, W, 3)`` float with the person's folds and light (the band-passed
    luminance of the old garment ``old``) where it is ``drawn``, and the photo's tone (greyscale, sepia)."""
    height = person.shape[0]
    if shading and (drawn & old).any():
        luminance = cv2.cvtColor(person, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) + 1.0
        # a median first removes thin print lines; the clip keeps an old pattern from showing through
        fine = cv2.GaussianBlur(cv2.medianBlur(luminance.astype(np.uint8), 5).astype(np.float32) + 1.0, (0, 0),
                                max(0.008 * height, 1.0))
        coarse = cv2.GaussianBlur(luminance, (0, 0), max(0.05 * height, 2.0))
        shade = np.clip(fine / coarse, 0.85, 1.12)
        weight = cv2.GaussianBlur(old.astype(np.float32), (0, 0), max(0.004 * height, 1.0))
        shade = 1 + (shade - 1) * weight
        warped_rgb = warped_rgb * shade[..., None]
    tone = imaging.photo_tint(person)
    if tone is not None:
        warped_rgb = apply_tone(np.clip(warped_rgb, 0, 1), tone)
    return warped_rgb


def composite(result: np.ndarray, warped_rgb: np.ndarray, drawn: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``result`` ``(H, W, 3)`` float in [0, 1] with the new garment laid where it is ``drawn``, with anti-aliased
    seams and never over ``front``: ``(H, W, 3)`` uint8."""
    height = result.shape[0]
    alpha = cv2.GaussianBlur(drawn.astype(np.float32), (0, 0), max(0.0015 * height, 0.6))
    alpha = np.where(drawn, np.maximum(alpha, 0.5), alpha)
    allowed = cv2.dilate(drawn.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~front
    alpha = np.where(allowed, alpha, 0.0)[..., None]
    result = result * (1 - alpha) + np.clip(warped_rgb, 0, 1) * alpha
    return np.clip(result * 255 + 0.5, 0, 255).astype(np.uint8)


def background_fill(image: np.ndarray, parse: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` float with the ``fill`` ``(H, W)`` bool pixels replaced by the nearest background
    (the parse's), looked for along the row first (floors and walls run across a photo), smoothed: a guess for
    what a garment hid. Unchanged when the photo shows no background."""
    from scipy import ndimage

    background = parse == Cihp.BACKGROUND
    if not fill.any() or not background.any():
        return image
    _, (iy, ix) = ndimage.distance_transform_edt(~background, sampling=(8.0, 1.0), return_indices=True)
    reach = cv2.GaussianBlur(image[iy, ix], (0, 0), max(0.01 * image.shape[0], 1.0))
    out = image.copy()
    out[fill] = reach[fill]
    return out
