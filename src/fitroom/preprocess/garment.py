"""The garment side: its mask from a product photo, and its category.

Product photos show the garment on a plain, usually white, background. The mask is the set of pixels whose colour
differs from the background colour (estimated on the photo's border); when the border is not plain, GrabCut,
started from a rectangle inside the border, separates the garment. The category is guessed from the mask's shape
when the caller does not give it: trousers and shorts split into two legs at the bottom, a dress is long and
widens downwards, a skirt has a straight waistband on top and never narrows towards its hem, everything else is
an upper garment.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from fitroom.errors import InputError
from fitroom.labels import GarmentCategory
from fitroom.preprocess.pose import fill_holes

logger = logging.getLogger(__name__)

#: CIELAB distance from the background colour above which a pixel belongs to the garment
BACKGROUND_DISTANCE = 12.0
#: border standard deviation (CIELAB units) above which the background is not plain
PLAIN_BORDER_STD = 8.0


class GarmentError(InputError):
    """The product photo cannot be used; the message says why."""


def garment_mask(image: np.ndarray) -> np.ndarray:
    """The garment in a product photo: ``(H, W)`` bool.

    Raises:
        GarmentError: when no garment can be separated from the background.
    """
    height, width = image.shape[:2]
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    band = max(int(min(height, width) * 0.02), 2)
    border = np.concatenate([lab[:band].reshape(-1, 3), lab[-band:].reshape(-1, 3), lab[:, :band].reshape(-1, 3),
                             lab[:, -band:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    spread = float(np.median(np.linalg.norm(border - background, axis=1)) * 1.4826)
    if spread < PLAIN_BORDER_STD:
        delta = lab - background
        # the Euclidean norm written out: the same float32 values as np.linalg.norm(axis=2), three times faster
        mask = np.sqrt(delta[..., 0] * delta[..., 0] + delta[..., 1] * delta[..., 1] + delta[..., 2] * delta[..., 2]
                       ) > BACKGROUND_DISTANCE
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    else:
        logger.info("the product photo's background is not plain; separating the garment with GrabCut")
        grab = np.zeros((height, width), np.uint8)
        margin = max(int(min(height, width) * 0.03), 1)
        rect = (margin, margin, width - 2 * margin, height - 2 * margin)
        models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
        cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), grab, rect, *models, 5, cv2.GC_INIT_WITH_RECT)
        mask = (grab == cv2.GC_FGD) | (grab == cv2.GC_PR_FGD)
    count, regions, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        raise GarmentError("no garment was found in the product photo; use a photo of the garment alone on a plain "
                           "background")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = fill_holes(regions == largest)
    if mask.mean() < 0.02:
        raise GarmentError("the garment covers too little of the product photo to be used")
    if mask.mean() > 0.97:
        raise GarmentError("the garment cannot be told apart from the background of the product photo")
    return mask


def guess_category(mask: np.ndarray) -> GarmentCategory:
    """Upper, lower or dress from the mask's shape (see the module docstring)."""
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    if len(rows) == 0:
        raise GarmentError("the garment mask is empty")
    top, bottom, left, right = rows[0], rows[-1], cols[0], cols[-1]
    box = mask[top:bottom + 1, left:right + 1]
    height, width = box.shape
    centre = width // 2
    lower_rows = box[int(height * 0.75):]
    # two legs: the centre column is empty in the lowest quarter while both sides are filled
    legs = (~lower_rows[:, max(centre - 1, 0):centre + 2].any(axis=1)).mean() > 0.7 and \
        lower_rows[:, :centre].any() and lower_rows[:, centre:].any()
    if legs:
        return GarmentCategory.LOWER
    widths = box.sum(axis=1)
    if height / width > 1.35 and widths[int(height * 0.9)] > widths[int(height * 0.35)] * 1.15:
        return GarmentCategory.DRESS
    if _is_skirt(box, widths):
        return GarmentCategory.LOWER
    return GarmentCategory.UPPER


def _is_skirt(box: np.ndarray, widths: np.ndarray) -> bool:
    """A skirt laid flat: a straight waistband on top (no neckline dipping at the centre, no shoulders sloping
    away), and a width that never shrinks from the waist to the hem (a top's sleeves or armholes make it shrink)."""
    height, width = box.shape
    columns = [int(width * f) for f in (0.3, 0.5, 0.7)]
    firsts = [int(np.argmax(box[:, c])) if box[:, c].any() else height for c in columns]
    flat_top = max(firsts) - min(firsts) <= max(0.02 * height, 1)
    rows = widths[int(0.05 * height): int(0.95 * height) + 1].astype(float)
    growing = bool(len(rows)) and bool(np.all(np.diff(np.maximum.accumulate(rows)) >= 0)) and \
        bool(np.all(rows >= np.maximum.accumulate(rows) * 0.97))
    return flat_top and growing and widths[int(0.05 * height)] >= 0.35 * widths.max()
