"""Compositing a warped garment into a photo, shared by the warp engine's paths (tops, lower garments): the
person's skin colour, the photo's light and tone carried onto the garment, and anti-aliased seams."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Light:
    """The photo's light and tone to carry onto a new garment (:func:`light_field`): on the ``box``
    ``(y0, y1, x0, x1)``, the ``shade`` ``(h, w)`` float32 factor (None: no shading) and the photo's ``tone``
    ``(a, b)`` (None: a colour photo)."""

    box: tuple[int, int, int, int]
    shade: np.ndarray | None
    tone: np.ndarray | None


def light_field(person: np.ndarray, old: np.ndarray, drawn: np.ndarray, shading: bool,
                used: np.ndarray | None = None) -> Light | None:
    """What :func:`carry_light` puts on a garment, from the photo alone (so it can be made while the garment is
    still being drawn): the person's folds and light (the band-passed luminance of the old garment ``old``) where
    the new one is ``drawn``, and the photo's tone (greyscale, sepia). None when no pixel is ``used``.

    ``used`` ``(H, W)`` bool: the pixels whose result matters (default: all); the work is done on their bounding
    box and the blurs' reach around it, which gives those pixels exactly what the whole photo would."""
    height = person.shape[0]
    box = imaging.bounds(used) if used is not None else (0, height, 0, person.shape[1])
    if box is None:
        return None
    y0, y1, x0, x1 = box
    shade = None
    if shading and (drawn & old).any():
        coarse_sigma = max(0.05 * height, 2.0)
        # OpenCV's kernels reach 4 sigma on float images; the median adds 2 pixels
        ey0, ey1, ex0, ex1 = _grown(box, int(4 * coarse_sigma) + 4, person.shape[:2])
        inside = (slice(y0 - ey0, y1 - ey0), slice(x0 - ex0, x1 - ex0))
        around = person[ey0:ey1, ex0:ex1]
        luminance = cv2.cvtColor(around, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) + 1.0
        # a median first removes thin print lines; the clip keeps an old pattern from showing through
        fine = cv2.GaussianBlur(cv2.medianBlur(luminance.astype(np.uint8), 5).astype(np.float32) + 1.0, (0, 0),
                                max(0.008 * height, 1.0))
        # (a full kernel of this width was most of the try-on's time); only the photo's own edges are reflected:
        # the cut's other sides lie 4 sigma from every pixel read
        coarse = imaging.wide_blur(luminance, coarse_sigma, edges=(ey0 == 0, ey1 == person.shape[0], ex0 == 0,
                                                                   ex1 == person.shape[1]))
        shade = np.clip(fine[inside] / coarse[inside], 0.85, 1.12)
        weight = cv2.GaussianBlur(old[ey0:ey1, ex0:ex1].astype(np.float32), (0, 0), max(0.004 * height, 1.0))
        shade = 1 + (shade - 1) * weight[inside]
    return Light(box, shade, imaging.photo_tint(person))


def apply_light(warped_rgb: np.ndarray, light: Light | None) -> np.ndarray:
    """The new garment ``warped_rgb`` ``(H, W, 3)`` float with :func:`light_field`'s ``light`` carried onto its box
    (a new array; pixels outside the box keep the garment's own colours)."""
    if light is None:
        return warped_rgb
    y0, y1, x0, x1 = light.box
    warped_rgb = warped_rgb.copy()
    inner = warped_rgb[y0:y1, x0:x1]
    if light.shade is not None:
        inner = inner * light.shade[..., None]
    if light.tone is not None:
        inner = apply_tone(np.clip(inner, 0, 1), light.tone)
    warped_rgb[y0:y1, x0:x1] = inner
    return warped_rgb


def carry_light(person: np.ndarray, old: np.ndarray, drawn: np.ndarray, warped_rgb: np.ndarray, shading: bool,
                used: np.ndarray | None = None) -> np.ndarray:
    """The new garment ``warped_rgb`` ``(H, W, 3)`` float with the person's folds and light (the band-passed
    luminance of the old garment ``old``) where it is ``drawn``, and the photo's tone (greyscale, sepia):
    :func:`apply_light` of :func:`light_field` (see it for ``used``)."""
    return apply_light(warped_rgb, light_field(person, old, drawn, shading, used))


def _grown(box: tuple[int, int, int, int], margin: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` ``(y0, y1, x0, x1)`` grown by ``margin`` within an array of ``shape``."""
    y0, y1, x0, x1 = box
    return max(y0 - margin, 0), min(y1 + margin, shape[0]), max(x0 - margin, 0), min(x1 + margin, shape[1])


def nearest_smoothed(values: np.ndarray, source: np.ndarray, targets: np.ndarray, sigma: float,
                     sampling: tuple[float, float] = (1.0, 1.0), clip: bool = False) -> np.ndarray:
    """``values`` ``(H, W, C)`` float with each ``targets`` ``(H, W)`` bool pixel replaced by the value of the
    nearest ``source`` ``(H, W)`` bool pixel (distances weighted by ``sampling`` down and across; with ``clip``,
    that value clipped to [0, 1]), smoothed by a Gaussian of ``sigma`` pixels. Worked on the box of the sources
    and the targets' neighbourhood, which gives what the whole array would."""
    from scipy import ndimage

    to_fill = imaging.bounds(targets)
    if to_fill is None or not source.any():
        return values
    y0, y1, x0, x1 = _grown(to_fill, int(4 * sigma) + 2, values.shape[:2])
    sy0, sy1, sx0, sx1 = imaging.bounds(source)
    y0, y1, x0, x1 = min(y0, sy0), max(y1, sy1), min(x0, sx0), max(x1, sx1)
    _, (iy, ix) = ndimage.distance_transform_edt(~source[y0:y1, x0:x1], sampling=sampling, return_indices=True)
    nearest = values[y0:y1, x0:x1][iy, ix]
    reach = cv2.GaussianBlur(np.clip(nearest, 0, 1) if clip else nearest, (0, 0), sigma)
    out = values.copy()
    inside = targets[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = reach[inside]
    return out


def composite(result: np.ndarray, warped_rgb: np.ndarray, drawn: np.ndarray, front: np.ndarray,
              photo: np.ndarray | None = None, changed: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``result`` ``(H, W, 3)`` float in [0, 1] with the new garment laid where it is ``drawn``, with anti-aliased
    seams and never over ``front``: ``(H, W, 3)`` uint8. The blend is worked on the box one pixel around the drawn
    garment (its alpha is 0 beyond), its blur on that box and the kernel's reach: what the whole photo would give.

    ``photo``: the ``(H, W, 3)`` uint8 photo ``result`` was made from (``photo / 255``), changed only within the
    box ``changed`` ``(y0, y1, x0, x1)`` (None: nowhere); its pixels elsewhere are the answer's (they convert
    back to themselves), so only the boxes are converted."""
    height = result.shape[0]
    box = imaging.bounds(drawn, 1)
    if photo is None:
        out = np.clip(result * 255 + 0.5, 0, 255).astype(np.uint8)
    else:
        out = photo.copy()
        if changed is not None:
            cy0, cy1, cx0, cx1 = changed
            out[cy0:cy1, cx0:cx1] = np.clip(result[cy0:cy1, cx0:cx1] * 255 + 0.5, 0, 255).astype(np.uint8)
    if box is None:
        return out
    sigma = max(0.0015 * height, 0.6)
    y0, y1, x0, x1 = box
    gy0, gy1, gx0, gx1 = _grown(box, int(4 * sigma) + 2, drawn.shape)
    inside = (slice(y0 - gy0, y1 - gy0), slice(x0 - gx0, x1 - gx0))
    grown = drawn[gy0:gy1, gx0:gx1].astype(np.uint8)
    alpha = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), sigma)[inside]
    alpha = np.where(drawn[y0:y1, x0:x1], np.maximum(alpha, 0.5), alpha)
    allowed = cv2.dilate(grown, np.ones((3, 3), np.uint8))[inside].astype(bool) & ~front[y0:y1, x0:x1]
    alpha = np.where(allowed, alpha, 0.0)[..., None]
    blended = result[y0:y1, x0:x1] * (1 - alpha) + np.clip(warped_rgb[y0:y1, x0:x1], 0, 1) * alpha
    out[y0:y1, x0:x1] = np.clip(blended * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def background_fill(image: np.ndarray, parse: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` float with the ``fill`` ``(H, W)`` bool pixels replaced by the nearest background
    (the parse's), looked for along the row first (floors and walls run across a photo), smoothed: a guess for
    what a garment hid. Unchanged when the photo shows no background."""
    background = parse == Cihp.BACKGROUND
    if not fill.any() or not background.any():
        return image
    return nearest_smoothed(image, background, fill, max(0.01 * image.shape[0], 1.0), sampling=(8.0, 1.0))
