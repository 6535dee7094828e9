"""Pictures for people: skeleton drawings, coloured parses, contact sheets."""

from __future__ import annotations

import cv2
import numpy as np

from fitroom.labels import BODY25_LIMBS

#: one colour per limb, as OpenPose's renderer cycles through hues
_LIMB_COLOURS = [tuple(int(c) for c in cv2.cvtColor(np.uint8([[[h, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0])
                 for h in np.linspace(0, 170, len(BODY25_LIMBS)).astype(np.uint8)]


def draw_keypoints(shape: tuple[int, int], keypoints: np.ndarray, background: np.ndarray | None = None
                   ) -> np.ndarray:
    """Draw BODY_25 ``keypoints`` ``(25, 3)`` as a skeleton on black (or on ``background``): ``(H, W, 3)`` uint8."""
    height, width = shape
    canvas = np.zeros((height, width, 3), np.uint8) if background is None else background.copy()
    thickness = max(int(round(height / 200)), 1)
    for (a, b), colour in zip(BODY25_LIMBS, _LIMB_COLOURS):
        if keypoints[a, 2] > 0 and keypoints[b, 2] > 0:
            p0 = tuple(int(round(v)) for v in keypoints[a, :2])
            p1 = tuple(int(round(v)) for v in keypoints[b, :2])
            cv2.line(canvas, p0, p1, colour, thickness * 2, cv2.LINE_AA)
    for x, y, confidence in keypoints:
        if confidence > 0:
            cv2.circle(canvas, (int(round(x)), int(round(y))), thickness * 2, (255, 255, 255), -1, cv2.LINE_AA)
    return canvas


def label_tile(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with a caption bar on top."""
    bar = np.full((max(image.shape[0] // 12, 14), image.shape[1], 3), 255, np.uint8)
    scale = bar.shape[0] / 30
    cv2.putText(bar, text, (4, int(bar.shape[0] * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20),
                max(int(scale * 1.5), 1), cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def grid(rows: list[list[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Tile equally sized ``(H, W, 3)`` images into rows with white gaps."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (height + gap) + gap, columns * (width + gap) + gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = gap + r * (height + gap), gap + c * (width + gap)
            sheet[y:y + height, x:x + width] = tile
    return sheet
