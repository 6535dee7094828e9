"""Plane geometry and drawing primitives shared by the renderer, the preprocessing and the warp engine: shapes
as polygons, piecewise-affine warps, shading.

All functions work in render pixels (the renderer draws at a multiple of the output size and averages down, which
anti-aliases every edge while label maps stay exact).
"""

from __future__ import annotations

import cv2
import numpy as np

Point = np.ndarray  # (2,) float64, (x, y) in pixels


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.hypot(vector[0], vector[1]))
    return vector / norm if norm > 1e-9 else np.array([0.0, 1.0])


def perp(vector: np.ndarray) -> np.ndarray:
    """``vector`` turned by +90 degrees in image coordinates (y down)."""
    return np.array([-vector[1], vector[0]])


def rotate(vector: np.ndarray, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([vector[0] * c - vector[1] * s, vector[0] * s + vector[1] * c])


def capsule(p0: Point, p1: Point, r0: float, r1: float, steps: int = 10) -> np.ndarray:
    """A tapered capsule from p0 (radius r0) to p1 (radius r1), as an ``(N, 2)`` polygon."""
    d = unit(p1 - p0)
    n = perp(d)
    back = np.linspace(np.pi / 2, 3 * np.pi / 2, steps)[:, None]
    front = np.linspace(-np.pi / 2, np.pi / 2, steps)[:, None]
    return np.concatenate([p0 + r0 * (np.cos(back) * d + np.sin(back) * n),
                           p1 + r1 * (np.cos(front) * d + np.sin(front) * n)])


def ellipse(centre: Point, half_x: float, half_y: float, angle: float = 0.0, steps: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, steps, endpoint=False)
    points = np.stack([half_x * np.cos(t), half_y * np.sin(t)], axis=1)
    a = np.deg2rad(angle)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rotation.T + centre


def smooth_closed(points: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Chaikin corner cutting of a closed polygon: round corners, keep the shape."""
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0)
        points = np.concatenate([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def polygon_mask(shape: tuple[int, int], *polygons: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The union of ``polygons`` (each ``(N, 2)`` x, y, sub-pixel) as an ``(H, W)`` bool mask. Each is filled on
    its own: one ``fillPoly`` call over several fills by parity, so where two overlap (a thigh's and a shin's
    capsules at the knee) it would leave a hole. ``origin`` ``(x, y)``: the whole pixel of the polygons' frame
    that is the mask's top left (a crop of a larger mask, the same pixels as cutting the larger one)."""
    mask = np.zeros(shape, dtype=np.uint8)
    shift = 4 * np.asarray(origin, np.int32)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(polygon * 4).astype(np.int32) - shift], 1, lineType=cv2.LINE_8, shift=2)
    return mask.astype(bool)


def bbox(mask: np.ndarray, pad: int = 0) -> tuple[slice, slice] | None:
    """The bounding box of a mask as slices, or None when the mask is empty."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    if w == 0 or h == 0:
        return None
    height, width = mask.shape
    return (slice(max(y - pad, 0), min(y + h + pad, height)), slice(max(x - pad, 0), min(x + w + pad, width)))


def roundness(mask: np.ndarray, strength: float, reach: float | None = None) -> np.ndarray:
    """Shading of a rounded object seen from the front: 1 in the middle, ``1 - strength`` at the silhouette.

    Computed from the distance to the silhouette (normalised by ``reach`` pixels, or by the largest distance),
    which gives limbs a cylindrical look and the torso a soft falloff. Returns ``mask.shape`` float32.
    """
    # worked on the mask's box and a 1-pixel margin of background: every path to the background crosses it, so
    # the distances are the whole array's; outside the box the distance is 0
    distance = np.zeros(mask.shape, np.float32)
    box = bbox(mask, pad=1)
    if box is not None:
        distance[box] = cv2.distanceTransform(mask[box].astype(np.uint8), cv2.DIST_L2, 5)
    scale = reach if reach else max(float(distance.max()), 1.0)
    t = np.clip(distance / scale, 0.0, 1.0)
    return (1.0 - strength * (1.0 - np.sqrt(t))).astype(np.float32)


def piecewise_affine(
    source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray,
    out_shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``source`` (H, W, C) float32 so that each source triangle lands on its target triangle.

    Args:
        source_points, target_points: ``(N, 2)`` matching mesh vertices (x, y).
        triangles: ``(T, 3)`` vertex indices; later triangles are drawn over earlier ones.
        out_shape: ``(H, W)`` of the result.

    Returns:
        The warped image ``(H, W, C)`` float32 and the ``(H, W)`` bool coverage of the target triangles.
    """
    warped = np.zeros((*out_shape, source.shape[2]), dtype=np.float32)
    covered = np.zeros(out_shape, bool)
    found = piecewise_affine_patch(source, source_points, target_points, triangles, out_shape)
    if found is not None:
        patch, patch_covered, (y0, y1, x0, x1) = found
        warped[y0:y1, x0:x1] = patch
        covered[y0:y1, x0:x1] = patch_covered
    return warped, covered


def piecewise_affine_patch(
    source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray,
    out_shape: tuple[int, int], alpha=None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]] | None:
    """:func:`piecewise_affine` on the box its triangles cover only: the patch ``(h, w, C)`` float32 (0 where no
    triangle is), its coverage ``(h, w)`` bool and the box ``(y0, y1, x0, x1)`` in the ``out_shape`` frame, the
    same values as the whole frame holds there; None when nothing is covered.

    Only the box of ``source`` that the covered pixels sample (and a pixel around it, for the bilinear
    neighbours) is read; ``alpha(box)``, when given, makes the last channel for that box (``box`` a pair of
    slices) in place of ``source``'s own, so that one RGBA source serves pieces of different alphas without being
    copied. The sampling positions are moved by whole pixels in float32, which is exact."""
    height, width = out_shape
    points = np.asarray(target_points, np.float64)[np.unique(triangles)]
    # the targets' box, a pixel wider for the rasteriser's rounding, within the frame
    bx0, by0 = max(int(np.floor(points[:, 0].min())) - 1, 0), max(int(np.floor(points[:, 1].min())) - 1, 0)
    bx1, by1 = min(int(np.ceil(points[:, 0].max())) + 2, width), min(int(np.ceil(points[:, 1].max())) + 2, height)
    if bx1 <= bx0 or by1 <= by0:
        return None
    index = np.full((by1 - by0, bx1 - bx0), -1, dtype=np.int32)
    shift = 4 * np.array([bx0, by0], np.int32)
    inverse = np.zeros((len(triangles), 2, 3), dtype=np.float64)
    for i, triangle in enumerate(triangles):
        dst = target_points[triangle].astype(np.float32)
        src = source_points[triangle].astype(np.float32)
        u, v = dst[1] - dst[0], dst[2] - dst[0]
        if abs(float(u[0] * v[1] - u[1] * v[0])) < 1e-3:
            continue  # a degenerate triangle covers nothing
        inverse[i] = cv2.getAffineTransform(dst, src)
        cv2.fillConvexPoly(index, np.round(dst * 4).astype(np.int32) - shift, i, lineType=cv2.LINE_8, shift=2)
    covered = index >= 0
    box = bbox(covered)
    if box is None:
        return None
    rows, cols = box
    ys, xs = np.mgrid[rows.start + by0:rows.stop + by0, cols.start + bx0:cols.stop + bx0].astype(np.float64)
    local = index[rows, cols]
    inside = covered[rows, cols]
    affine = inverse[np.clip(local, 0, None)]
    map_x = (affine[..., 0, 0] * xs + affine[..., 0, 1] * ys + affine[..., 0, 2]).astype(np.float32)
    map_y = (affine[..., 1, 0] * xs + affine[..., 1, 1] * ys + affine[..., 1, 2]).astype(np.float32)
    # the source's box the covered pixels sample (bilinear: the pixel below each position and the next)
    source_height, source_width = source.shape[:2]
    sx = np.clip(map_x[inside], -2, source_width + 1)
    sy = np.clip(map_y[inside], -2, source_height + 1)
    sx0, sx1 = max(int(np.floor(sx.min())) - 1, 0), min(int(np.floor(sx.max())) + 3, source_width)
    sy0, sy1 = max(int(np.floor(sy.min())) - 1, 0), min(int(np.floor(sy.max())) + 3, source_height)
    patch = np.zeros((*inside.shape, source.shape[2] if source.ndim == 3 else 1), np.float32)
    if sx1 > sx0 and sy1 > sy0:
        cut = (slice(sy0, sy1), slice(sx0, sx1))
        piece = source[cut]
        if alpha is not None:
            piece = piece.copy()
            piece[..., -1] = alpha(cut)
        sampled = cv2.remap(np.ascontiguousarray(piece), map_x - np.float32(sx0), map_y - np.float32(sy0),
                            cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        patch[:] = sampled.reshape(patch.shape)
    patch[~inside] = 0
    return patch, inside, (rows.start + by0, rows.stop + by0, cols.start + bx0, cols.stop + bx0)


def run_near(row: np.ndarray, centre: int) -> tuple[int, int] | None:
    """The run of True values in the 1-D ``row`` containing (or nearest to) ``centre``: ``(first, last)`` indices,
    None when the row is all False."""
    columns = np.nonzero(row)[0]
    if len(columns) == 0:
        return None
    splits = np.nonzero(np.diff(columns) > 1)[0]
    starts = np.concatenate([[columns[0]], columns[splits + 1]])
    ends = np.concatenate([columns[splits], [columns[-1]]])
    inside = np.nonzero((starts <= centre) & (ends >= centre))[0]
    index = inside[0] if len(inside) else int(np.argmin(np.minimum(abs(starts - centre), abs(ends - centre))))
    return int(starts[index]), int(ends[index])


def grid_triangles(rows: int, cols: int) -> np.ndarray:
    """Triangles of a rows x cols grid of vertices numbered row-major."""
    triangles = []
    for r in range(rows - 1):
        for c in range(cols - 1):
            a, b, d, e = r * cols + c, r * cols + c + 1, (r + 1) * cols + c, (r + 1) * cols + c + 1
            triangles += [(a, b, e), (a, e, d)]
    return np.array(triangles, dtype=np.int64)


def strip_triangles(sections: int) -> np.ndarray:
    """Triangles of a strip of ``sections`` cross-sections of two vertices each (outer 2k, inner 2k+1)."""
    triangles = []
    for k in range(sections - 1):
        a, b, c, d = 2 * k, 2 * k + 1, 2 * k + 2, 2 * k + 3
        triangles += [(a, c, d), (a, d, b)]
    return np.array(triangles, dtype=np.int64)


def soft_lines(shape: tuple[int, int], segments: list[tuple[Point, Point, float]], blur: float) -> np.ndarray:
    """Blurred anti-aliased lines ``(p0, p1, weight)``, summed into a float map (for folds and creases)."""
    canvas = np.zeros(shape, dtype=np.float32)
    thickness = max(int(round(blur)), 1)
    for p0, p1, weight in segments:
        cv2.line(canvas, tuple(int(v) for v in np.round(p0)), tuple(int(v) for v in np.round(p1)), float(weight),
                 thickness, cv2.LINE_AA)
    size = int(blur * 3) | 1
    return cv2.GaussianBlur(canvas, (size, size), blur)
