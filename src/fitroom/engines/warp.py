"""The ``warp`` engine: a try-on with no learned weights.

The garment's landmarks (neck sides, shoulders, armpits, hem corners, cuffs, elbows) are found on its mask
contour and matched to the body's keypoints; a thin-plate spline (numpy and OpenCV) through those pairs warps the
product photo onto the body, sleeves following the arms. The garment's length and width come from the body (hips, the
old garment's extent), not from the flat photo's proportions, so that it covers the old garment's torso. The
warped garment is composited into the person's old garment region, behind the face, hair, hands and (for the
torso part) the arms; the person's shading (folds, light) is carried onto it, and a greyscale or toned photo
gets a garment of the same tone. What the old garment covered and the new one does not becomes skin on the arms
(the person's own skin colour, shaded as a limb) and the new garment's own colour elsewhere; skin the photo
already shows stays as it is, and nothing is inpainted from the old photo. Every pixel of ``inputs.keep`` (face,
hair, hands, lower body, background) is returned bit for bit.

It is a baseline: it knows nothing about cloth, and the fill of uncovered regions is a guess. Its SSIM on
synthetic data is measured by ``benchmarks/preprocess.py`` and ``benchmarks/rendered_chain.py``, its effect on
real photos by ``benchmarks/real_photos.py``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from fitroom import imaging
from fitroom import geometry
from fitroom.engines import register_engine
from fitroom.engines.compositing import (
    apply_light, background_fill, composite, light_field, nearest_smoothed, paint_skin,
)
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import (
    ARM_LABELS, UPPER_GARMENT_LABELS, BodyPart, Body25, Cihp, GarmentCategory,
)
from fitroom.preprocess.body import BodyGeometry

#: labels that stay in front of the new garment
FRONT_LABELS = (Cihp.HAT, Cihp.HAIR, Cihp.SUNGLASSES, Cihp.FACE, Cihp.GLOVE, Cihp.SCARF)
TORSO_PART, SLEEVE_PART = 1, 2
#: a garment whose shoulders span less than this share of its chest hangs from straps (a tank top, a sleeveless
#: dress): the renderer's tanks measure 0.6, its tees and shirts more than 1
STRAPPED = 0.8


@dataclass
class GarmentLandmarks:
    """Points on a garment mask, ``(x, y)`` pixels; sides "a" (image left) and "b" (image right)."""

    neck: dict[str, np.ndarray]
    shoulder: dict[str, np.ndarray]
    armpit: dict[str, np.ndarray]
    hem: dict[str, np.ndarray]
    cuff: dict[str, np.ndarray]  # absent for sleeveless garments
    #: the :func:`sleeve_side` map ``(H, W)`` uint8 that these shoulders and armpits give on the mask they were
    #: measured on (None once the armpits were moved), so that it is made once
    sleeves: np.ndarray | None = field(default=None, repr=False, compare=False)


def garment_landmarks(mask: np.ndarray) -> GarmentLandmarks:
    """Find the landmarks of an upper garment's mask (laid flat, seen from the front or back).

    Raises:
        ValueError: when the mask is empty or has no recognisable torso.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the garment mask is empty")
    top = int(ys.min())
    centre = int(round((xs.min() + xs.max()) / 2))  # garments are laid flat symmetrically
    column = np.nonzero(mask[:, centre])[0]
    if len(column) == 0:
        raise ValueError("the garment mask has no torso at its centre")
    # the hem is the bottom of the central column: long sleeves may hang lower than it
    bottom = int(column.max())
    height = bottom - top + 1
    runs = [r for r in (geometry.run_near(mask[y], centre) for y in range(max(bottom - max(int(0.02 * height), 1), top),
                                                               bottom + 1)) if r]
    hem_left = min(r[0] for r in runs)
    hem_right = max(r[1] for r in runs)
    hem_width = hem_right - hem_left
    half = hem_width / 2

    # neck sides: the highest pixel in each half of the central band
    band = (abs(xs - centre) < 0.3 * hem_width)
    left_band, right_band = band & (xs < centre), band & (xs > centre)
    neck = {}
    for side, sel in (("a", left_band), ("b", right_band)):
        if not sel.any():
            raise ValueError("the garment mask has no neckline")
        y = ys[sel].min()
        x = xs[sel][ys[sel] == y].mean()
        neck[side] = np.array([x, y], float)
    # shoulders: the extreme of (outwards - 2 * up), which sleeves angled down never beat
    left, right = xs < centre, xs >= centre
    upper = ys < top + 0.5 * height
    a = np.argmax(np.where(left & upper, -xs - 2.0 * ys, -np.inf))
    b = np.argmax(np.where(right & upper, xs - 2.0 * ys, -np.inf))
    shoulder = {"a": np.array([xs[a], ys[a]], float), "b": np.array([xs[b], ys[b]], float)}
    # armpits: going up from the hem, the last row whose central run still has the torso's width (above it the
    # sleeves join the run, or a tank's armholes narrow it)
    shoulder_y = int(max(shoulder["a"][1], shoulder["b"][1]))
    armpit = None
    for y in range(bottom, shoulder_y, -1):
        run = geometry.run_near(mask[y], centre)
        if not run or not 0.85 * hem_width <= run[1] - run[0] <= 1.15 * hem_width:
            break
        armpit = {"a": np.array([run[0], y], float), "b": np.array([run[1], y], float)}
    if armpit is None or not (0.1 < (armpit["a"][1] - top) / height < 0.6):
        y = int(shoulder_y + 0.3 * (bottom - shoulder_y))
        armpit = {"a": np.array([centre - half, y], float), "b": np.array([centre + half, y], float)}
    hem = {"a": np.array([hem_left, bottom], float), "b": np.array([hem_right, bottom], float)}
    # cuffs: the farthest sleeve pixel from its shoulder, sleeves being outside the shoulder-armpit line
    cuff = {}
    part = sleeve_side(mask, shoulder, armpit)
    for side in ("a", "b"):
        sel = part[ys, xs] == (1 if side == "a" else 2)
        if sel.sum() > 0.002 * len(xs):
            distance = np.hypot(xs[sel] - shoulder[side][0], ys[sel] - shoulder[side][1])
            far = np.argmax(distance)
            cuff[side] = np.array([xs[sel][far], ys[sel][far]], float)
    return GarmentLandmarks(neck=neck, shoulder=shoulder, armpit=armpit, hem=hem, cuff=cuff, sleeves=part)


def bodice_landmarks(bodice: np.ndarray) -> GarmentLandmarks:
    """A bodice's landmarks (:func:`.warp.garment_landmarks`) with its armpits where its chest is: the widest row
    of the torso's own run in the lower third of the bodice, below a sleeve's seam and a sleeveless cut's
    armholes (which would otherwise pass for the armpits and make the chest, hence the whole dress, too narrow
    on the garment and too big on the body)."""
    landmarks = garment_landmarks(bodice)
    ys, xs = np.nonzero(bodice)
    centre = int(round((landmarks.hem["a"][0] + landmarks.hem["b"][0]) / 2))
    top, waist = int(ys.min()), int(landmarks.hem["a"][1])
    best = None
    for y in range(top + int(0.65 * (waist - top)), waist + 1):
        run = geometry.run_near(bodice[y], centre)
        if run is not None and (best is None or run[1] - run[0] > best[1][1] - best[1][0]):
            best = (y, run)
    if best is not None:
        y, (left, right) = best
        landmarks.armpit = {"a": np.array([left, y], float), "b": np.array([right, y], float)}
        landmarks.sleeves = None
    return landmarks


def sleeve_side(mask: np.ndarray, shoulder: dict, armpit: dict) -> np.ndarray:
    """``(H, W)`` uint8: 1 on the image-left sleeve, 2 on the image-right one, 0 elsewhere (torso or off).

    Above the armpits a pixel is a sleeve when it lies outside the shoulder-armpit line; below them, when it lies
    outside the torso's own run of the row (a hanging sleeve is separated from the torso by a gap, while a torso
    that widens towards the hem is not a sleeve).
    """
    out = np.zeros(mask.shape, np.uint8)
    box = imaging.bounds(mask)
    if box is None:
        return out
    # worked on the mask's bounding box, in its coordinates
    y0, y1, x0, x1 = box
    crop, inner = mask[y0:y1, x0:x1], out[y0:y1, x0:x1]
    ys, xs = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
    centre = int(round((armpit["a"][0] + armpit["b"][0]) / 2))
    armpit_y = int(round(max(armpit["a"][1], armpit["b"][1])))
    for value, side, sign in ((1, "a", 1), (2, "b", -1)):
        s, p = shoulder[side], armpit[side]
        cross = (p[0] - s[0]) * (ys - s[1]) - (p[1] - s[1]) * (xs - s[0])
        above = crop & (sign * cross > 0) & (ys < p[1]) & ((xs < p[0]) if side == "a" else (xs > p[0]))
        inner[above] = value
    for y in range(max(armpit_y, y0), y1):
        row = crop[y - y0]
        run = geometry.run_near(row, centre - x0)
        if run is None:
            continue
        inner[y - y0, :run[0]][row[:run[0]]] = 1
        inner[y - y0, run[1] + 1:][row[run[1] + 1:]] = 2
    return out


@dataclass
class BodyFrame:
    """The body measures the garment is fitted to, in person pixels."""

    shoulder: dict[str, np.ndarray]  # shoulder joints by image side
    neck: np.ndarray
    across: np.ndarray  # unit vector from side "a" to side "b"
    down: np.ndarray  # unit vector from the neck to the hips
    width: float  # shoulder width
    hip_half: float
    scale: float  # body pixels per garment pixel
    chest_half: float  # half the garment's chest width on the body
    garment_top: np.ndarray  # the garment's neck centre
    hem_depth: float = 0.0  # the least depth of the hem below the neck along ``down`` (body pixels)
    hem_half: float = 0.0  # the least half width of the hem
    length_scale: float = 0.0  # body pixels per garment pixel down the garment (0: ``scale``)


def body_frame(keypoints: np.ndarray, landmarks: GarmentLandmarks, image_side: dict[str, str],
               chest_ease: float = 1.12, cover: np.ndarray | None = None, hem_at: float | None = None) -> BodyFrame:
    """The body measures for this garment; ``cover`` ``(H, W)`` bool is the old garment's torso, which the new
    garment must reach down and out to. With ``hem_at`` (a photo row) the hem lies on that row and the garment's
    lengths are scaled to put it there (a dress's bodice, its hem at the waist), whatever its width."""
    k = np.asarray(keypoints, dtype=np.float64)
    shoulder = {s: k[Body25.R_SHOULDER if image_side[s] == "right" else Body25.L_SHOULDER, :2] for s in "ab"}
    width = float(np.hypot(*(shoulder["b"] - shoulder["a"])))
    neck = k[Body25.NECK, :2] if k[Body25.NECK, 2] > 0 else (shoulder["a"] + shoulder["b"]) / 2
    hips_seen = k[Body25.R_HIP, 2] > 0 and k[Body25.L_HIP, 2] > 0
    mid_hip = (k[Body25.R_HIP, :2] + k[Body25.L_HIP, :2]) / 2 if hips_seen else neck + np.array([0, 1.5 * width])
    garment_chest = float(np.hypot(*(landmarks.armpit["b"] - landmarks.armpit["a"])))
    hip_half = float(np.hypot(*(k[Body25.L_HIP, :2] - k[Body25.R_HIP, :2]))) / 2 if hips_seen else 0.35 * width
    across, down = geometry.unit(shoulder["b"] - shoulder["a"]), geometry.unit(mid_hip - neck)
    # a top ends a little below the hip joints; it reaches as far down and out as the old garment's torso did
    own_length = hem_at is not None
    hem_depth = 0.0 if own_length else float(np.dot(mid_hip - neck, down)) + 0.12 * width
    hem_half = 0.0 if own_length else hip_half + 0.25 * width
    if cover is not None and cover.any() and not own_length:
        ys, xs = np.nonzero(cover)
        depth = (xs - neck[0]) * down[0] + (ys - neck[1]) * down[1]
        side = (xs - neck[0]) * across[0] + (ys - neck[1]) * across[1]
        torso = np.abs(side) < hip_half + 0.35 * width
        if torso.sum() > 20:
            hem_depth = max(hem_depth, float(np.percentile(depth[torso], 99.5)) + 0.02 * width)
            low = torso & (depth > 0.8 * hem_depth)
            if low.sum() > 20:
                hem_half = max(hem_half, float(np.percentile(np.abs(side[low]), 99)) + 0.03 * width)
    # the garment's chest (armpit to armpit) sits on the body's chest, chest_ease shoulder widths wide; the
    # chest, unlike the shoulder seams, exists on every cut (a tank's straps say nothing about its size)
    scale = chest_ease * width / max(garment_chest, 1.0)
    garment_top = (landmarks.neck["a"] + landmarks.neck["b"]) / 2
    length_scale = 0.0
    if hem_at is not None:
        garment_length = (landmarks.hem["a"][1] + landmarks.hem["b"][1]) / 2 - garment_top[1]
        length_scale = max(hem_at - neck[1], 1.0) / max(down[1], 0.5) / max(garment_length, 1.0)
    return BodyFrame(
        shoulder=shoulder, neck=neck, across=across, down=down, hem_depth=hem_depth, hem_half=hem_half,
        width=width, hip_half=hip_half, scale=scale, length_scale=length_scale,
        garment_top=garment_top, chest_half=chest_ease * width / 2)


def torso_targets(frame: BodyFrame, landmarks: GarmentLandmarks) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Matching (garment, body) points of the torso: neck sides, shoulders, armpits, hem corners."""
    garment_points, body_points = [], []
    lift = 0.1 * frame.width
    length_scale = frame.length_scale or frame.scale
    for side, sign in (("a", -1), ("b", 1)):
        garment_points.append(landmarks.neck[side])
        body_points.append(frame.neck + sign * frame.across * 0.17 * frame.width - frame.down * 1.3 * lift)
        garment_points.append(landmarks.shoulder[side])
        body_points.append(frame.shoulder[side] + sign * frame.across * 0.12 * frame.width - frame.down * lift)
        garment_points.append(landmarks.armpit[side])
        depth = (landmarks.armpit[side][1] - frame.garment_top[1]) * length_scale
        body_points.append(frame.neck + frame.down * depth + sign * frame.across * frame.chest_half)
        garment_points.append(landmarks.hem[side])
        depth = max((landmarks.hem[side][1] - frame.garment_top[1]) * length_scale, frame.hem_depth)
        half = max(abs(landmarks.hem[side][0] - frame.garment_top[0]) * frame.scale, frame.hem_half)
        body_points.append(frame.neck + frame.down * depth + sign * frame.across * half)
    return garment_points, body_points


def sleeve_strip(mask: np.ndarray, side_value: int, landmarks: GarmentLandmarks, side: str,
                 garment_body: tuple[list[np.ndarray], list[np.ndarray]], frame: BodyFrame,
                 keypoints: np.ndarray, person_side: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Cross-sections (outer, inner) of one sleeve on the garment and on the body, for a fold-free strip warp.

    The garment sleeve is measured along its axis (seam middle -> farthest sleeve pixel); the body sleeve follows
    shoulder -> elbow -> wrist with the same length and widths times the garment-to-body scale.
    """
    ys, xs = np.nonzero(mask == side_value)
    if len(xs) < 20 or side not in landmarks.cuff:
        return None
    k = np.asarray(keypoints, dtype=np.float64)
    shoulder_j, elbow_j, wrist_j = ((Body25.R_SHOULDER, Body25.R_ELBOW, Body25.R_WRIST) if person_side == "right"
                                    else (Body25.L_SHOULDER, Body25.L_ELBOW, Body25.L_WRIST))
    if not (k[shoulder_j, 2] > 0 and k[elbow_j, 2] > 0):
        return None
    seam_out, seam_in = landmarks.shoulder[side], landmarks.armpit[side]
    body_out = garment_body[1][4 * (0 if side == "a" else 1) + 1]  # the torso's shoulder target
    body_in = garment_body[1][4 * (0 if side == "a" else 1) + 2]  # the torso's armpit target
    middle = (seam_out + seam_in) / 2
    axis = geometry.unit(landmarks.cuff[side] - middle)
    normal = geometry.perp(axis)
    if np.dot(normal, seam_out - seam_in) < 0:
        normal = -normal
    along = (xs - middle[0]) * axis[0] + (ys - middle[1]) * axis[1]
    offset = (xs - middle[0]) * normal[0] + (ys - middle[1]) * normal[1]
    length = float(along.max())
    if length <= 1:
        return None

    def half_width(t: float) -> float:
        near = np.abs(along - t) < max(0.04 * length, 1.5)
        return float(np.abs(offset[near]).max()) if near.any() else float(np.abs(offset).max())

    shoulder = k[shoulder_j, :2]
    elbow = k[elbow_j, :2]
    wrist = k[wrist_j, :2] if k[wrist_j, 2] > 0 else elbow + (elbow - shoulder) * 0.85
    upper = float(np.hypot(*(elbow - shoulder)))
    body_length = length * frame.scale
    fractions = [0.5, 1.0] if body_length <= upper else [upper / body_length, 1.0]
    garment_points = [seam_out, seam_in]
    body_points = [body_out, body_in]
    sign = 1.0 if np.dot(geometry.perp(geometry.unit(elbow - shoulder)), body_out - body_in) > 0 else -1.0
    for fraction in fractions:
        t = fraction * length
        w = half_width(min(t, length * 0.97))
        centre = middle + axis * t
        garment_points += [centre + normal * w, centre - normal * w]
        distance = fraction * body_length
        if distance <= upper:
            point = shoulder + (elbow - shoulder) * distance / max(upper, 1e-6)
            direction = geometry.unit(elbow - shoulder)
        else:
            fore = float(np.hypot(*(wrist - elbow)))
            point = elbow + (wrist - elbow) * min((distance - upper) / max(fore, 1e-6), 1.15)
            direction = geometry.unit(wrist - elbow)
            if abs(fraction * body_length - upper) < 1e-6:
                direction = geometry.unit(geometry.unit(elbow - shoulder) + direction)
        body_normal = geometry.perp(direction) * sign
        body_points += [point + body_normal * w * frame.scale, point - body_normal * w * frame.scale]
    return np.array(garment_points), np.array(body_points)


def _bodice_grid(garment: list[np.ndarray], body: list[np.ndarray], frame: BodyFrame
                 ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`torso_targets`' points as a 3 x 3 grid ``(9, 2)`` in the garment and on the body: rows shoulders,
    armpits, hem; columns side "a", the middle, side "b" (the top middle is the neck's centre)."""
    def rows(points: list[np.ndarray], top_middle: np.ndarray) -> np.ndarray:
        a, b = points[:4], points[4:]
        out = []
        for k in (1, 2, 3):  # shoulder, armpit, hem
            middle = top_middle if k == 1 else (a[k] + b[k]) / 2
            out += [a[k], middle, b[k]]
        return np.array(out, dtype=np.float64)

    lift = 0.1 * frame.width
    return rows(garment, frame.garment_top), rows(body, frame.neck - frame.down * 1.3 * lift)


def _tps_kernel(squared: np.ndarray) -> np.ndarray:
    """The thin-plate radial basis ``r^2 log r`` from squared distances (0 at 0)."""
    return 0.5 * squared * np.log(np.where(squared > 0, squared, 1.0))


def tps_warp(image: np.ndarray, source: list[np.ndarray], target: list[np.ndarray], step: int = 2,
             within: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Warp ``image`` ``(H, W, C)`` float32 (C <= 4) so that each ``source`` pixel lands on its ``target`` pixel.

    A thin-plate spline through the pairs (kornia's formulation: kernels centred on the source points, solved so
    that every target point maps exactly onto its source point) gives, for every output pixel, where to sample the
    image. The spline is evaluated on a grid of every ``step``-th pixel and bilinearly resized to full size (a
    spline is smooth: at ``step`` 2 the sampled positions differ from the exact ones by hundredths of a pixel), then
    OpenCV resamples the image (bilinear, zero outside). Written with numpy and OpenCV so that the warp engine needs
    no torch (whose import alone took 1.7 s of a 5 s try-on).

    ``within`` ``(y0, y1, x0, x1)``: only that box of the result is computed (the same values as the whole
    warp's there), the rest is 0.
    """
    height, width = image.shape[:2]
    y0, y1, x0, x1 = within or (0, height, 0, width)
    out = np.zeros(image.shape, np.float32)
    if y1 <= y0 or x1 <= x0:
        return out
    scale = np.array([width, height], float)
    garment = (2 * np.asarray(source, float) + 1) / scale - 1  # pixel centres in [-1, 1]
    body = (2 * np.asarray(target, float) + 1) / scale - 1
    n = len(body)
    system = np.zeros((n + 3, n + 3))
    system[:n, :n] = _tps_kernel(((body[:, None] - garment[None]) ** 2).sum(-1))
    system[:n, n], system[:n, n + 1:] = 1.0, body
    system[n, :n], system[n + 1:, :n] = 1.0, body.T
    values = np.zeros((n + 3, 2))
    values[:n] = garment
    weights = np.linalg.solve(system, values)
    # the spline at the centres of step x step blocks, so that resizing the grid by step lands on every pixel;
    # one block more on each side of the box, so that the resize's edges fall outside it
    rows, cols = -(-height // step), -(-width // step)
    r0, r1 = max(y0 // step - 1, 0), min(-(-y1 // step) + 1, rows)
    c0, c1 = max(x0 // step - 1, 0), min(-(-x1 // step) + 1, cols)
    ys = (2 * ((np.arange(r0, r1) + 0.5) * step - 0.5) + 1) / height - 1
    xs = (2 * ((np.arange(c0, c1) + 0.5) * step - 0.5) + 1) / width - 1
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    mapped = (weights[n] + grid @ weights[n + 1:]
              + _tps_kernel(((grid[:, None] - garment[None]) ** 2).sum(-1)) @ weights[:n])
    mapped = (((mapped + 1) * scale - 1) / 2).reshape(r1 - r0, c1 - c0, 2).astype(np.float32)
    if step > 1:
        mapped = cv2.resize(mapped, ((c1 - c0) * step, (r1 - r0) * step), interpolation=cv2.INTER_LINEAR)
    mapped = mapped[y0 - r0 * step:y1 - r0 * step, x0 - c0 * step:x1 - c0 * step]
    warped = cv2.remap(np.ascontiguousarray(image, dtype=np.float32), mapped[..., 0], mapped[..., 1],
                       cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[y0:y1, x0:x1] = warped.reshape(y1 - y0, x1 - x0, *image.shape[2:])
    return out


@dataclass
class GarmentCanvas:
    """A product photo made ready for a top's try-on on photos of one size; it depends on the product photo
    alone (so it can be made while the person's photo is analysed, :meth:`WarpEngine.prepare_garment`). Read
    only: every try-on that uses it copies what it changes.

    Attributes:
        landmarks: the garment's landmarks on its own mask (:func:`garment_landmarks`, or
            :func:`bodice_landmarks` for a dress's bodice).
        strapped: the garment hangs from straps (a tank top, a bodice): carried piece by piece.
        native_parts: ``(h, w)`` uint8 sleeve map on the product photo (:func:`sleeve_side`).
        to_canvas: ``(2,)`` x and y factors from product-photo pixels to the canvas.
        source: ``(H, W, 4)`` float32: the product photo at the person photo's size (RGB in [0, 1]) and, as its
            alpha, the torso's part of the garment (the garment mask off the sleeves).
        parts: ``(H, W)`` uint8, the sleeve map there.
    """

    landmarks: GarmentLandmarks
    strapped: bool
    native_parts: np.ndarray
    to_canvas: np.ndarray
    source: np.ndarray
    parts: np.ndarray


def garment_canvas(garment: np.ndarray, garment_mask: np.ndarray, size: tuple[int, int], bodice: bool = False
                   ) -> GarmentCanvas:
    """The :class:`GarmentCanvas` of ``garment`` ``(h, w, 3)`` uint8 (its mask ``(h, w)`` bool) for photos of
    ``size`` ``(H, W)``.

    Raises:
        ValueError: when the mask has no recognisable garment (see :func:`garment_landmarks`).
    """
    height, width = size
    landmarks = (bodice_landmarks if bodice else garment_landmarks)(garment_mask)
    # straps, not shoulder seams (a dress's bodice, a tank top): carried piece by piece, bare shoulders
    strapped = bodice or bool(np.hypot(*(landmarks.shoulder["b"] - landmarks.shoulder["a"]))
                              < STRAPPED * np.hypot(*(landmarks.armpit["b"] - landmarks.armpit["a"])))
    native_parts = landmarks.sleeves if landmarks.sleeves is not None else \
        sleeve_side(garment_mask, landmarks.shoulder, landmarks.armpit)
    garment_height, garment_width = garment_mask.shape
    parts = imaging.resize(native_parts, (height, width), "labels")
    source = np.empty((height, width, 4), np.float32)
    source[..., :3] = imaging.resize(garment, (height, width), "image").astype(np.float32) / 255.0
    source[..., 3] = imaging.resize(garment_mask, (height, width), "mask") & (parts == 0)
    canvas = GarmentCanvas(landmarks=landmarks, strapped=strapped, native_parts=native_parts,
                           to_canvas=np.array([width / garment_width, height / garment_height]), source=source,
                           parts=parts)
    for array in (canvas.native_parts, canvas.to_canvas, canvas.source, canvas.parts):
        array.setflags(write=False)  # shared between try-ons: a change would leak into the next one
    return canvas


@register_engine("warp")
class WarpEngine:
    """A try-on without learned weights (see the module docstring).

    Args:
        shading: carry the person's folds and light onto the new garment.
        chest_ease: the garment's chest width (armpit to armpit) on the body, in shoulder-joint widths; it sets
            the garment's size on the body.
    """

    #: tops (neck, shoulders, sleeves, hem), lower garments (:mod:`fitroom.engines.warp_lower`) and dresses
    #: (:mod:`fitroom.engines.warp_dress`)
    categories = frozenset({GarmentCategory.UPPER, GarmentCategory.LOWER, GarmentCategory.DRESS})

    def __init__(self, shading: bool = True, chest_ease: float = 1.12) -> None:
        self.shading = shading
        self.chest_ease = chest_ease
        self._canvases: list[tuple[np.ndarray, np.ndarray, tuple[int, int], GarmentCanvas]] = []
        self._canvas_lock = threading.Lock()
        self._side: ThreadPoolExecutor | None = None

    #: how many prepared garments are kept (a try-on uses the one made for it just before)
    KEPT_CANVASES = 4

    def prepare_garment(self, garment: np.ndarray, garment_mask: np.ndarray, size: tuple[int, int]) -> None:
        """Make a top's :class:`GarmentCanvas` for photos of ``size`` ``(H, W)`` now and keep it for the try-on
        of these very arrays (the same objects) that follows: called on another thread while the person's photo is
        analysed (:func:`fitroom.fitting.check_and_prepare`), it takes the garment's part of the try-on off the
        wait. A garment the landmarks cannot read is left for the try-on to refuse."""
        try:
            canvas = garment_canvas(garment, garment_mask, size)
        except ValueError:
            return
        with self._canvas_lock:
            self._canvases = [*self._canvases[-(self.KEPT_CANVASES - 1):], (garment, garment_mask, size, canvas)]

    def _beside(self, function, *args, **kwargs) -> Future:
        """Run ``function`` on one of the engine's two side threads (made on first use) while the try-on goes
        on."""
        if self._side is None:
            self._side = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fitroom-warp")
        return self._side.submit(function, *args, **kwargs)

    def _prepared(self, garment: np.ndarray, garment_mask: np.ndarray, size: tuple[int, int]
                  ) -> GarmentCanvas | None:
        with self._canvas_lock:
            for kept_garment, kept_mask, kept_size, canvas in self._canvases:
                if kept_garment is garment and kept_mask is garment_mask and kept_size == size:
                    return canvas
        return None

    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        for name in ("garment", "garment_mask", "keypoints", "parse"):
            if getattr(inputs, name) is None:
                raise InputsError(f"the warp engine needs {name}")
        if inputs.category is GarmentCategory.LOWER:
            from fitroom.engines.warp_lower import warp_lower

            return warp_lower(inputs, self.shading)
        if inputs.category is GarmentCategory.DRESS:
            from fitroom.engines.warp_dress import warp_dress

            return warp_dress(self, inputs)
        return self.top(inputs)

    def top(self, inputs: TryOnInputs, hem_at: float | None = None, bodice: bool = False,
            shading: bool | None = None) -> TryOnResult:
        """An upper garment on the person of ``inputs``; with ``hem_at``, its hem on that photo row (see
        :func:`body_frame`); ``bodice``: the garment is a dress's bodice (:func:`bodice_landmarks`), and what
        the old garment covered and it does not is skin on the body's torso and arms and the background beyond
        (a dress's straps leave bare what a top covered); ``shading`` replaces the engine's setting.
        ``extras["torso_body"]`` holds the torso's body points (neck side, shoulder, armpit, hem corner, for side
        "a" then "b"), ``extras["scale"]`` body pixels per garment pixel across and ``extras["length_scale"]``
        down."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def tick(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[step] = now - clock
            clock = now

        person, parse, keypoints = inputs.person, inputs.parse, inputs.keypoints
        height, width = person.shape[:2]

        # 2. garment landmarks, measured on the garment's own mask (stretching it would change its angles), and the
        #    product photo at the photo's size (made beside the person's analysis when prepare_garment was called)
        canvas = None if bodice else self._prepared(inputs.garment, inputs.garment_mask, (height, width))
        if canvas is None:
            canvas = garment_canvas(inputs.garment, inputs.garment_mask, (height, width), bodice)
        landmarks, strapped, native_parts = canvas.landmarks, canvas.strapped, canvas.native_parts
        to_canvas, parts = canvas.to_canvas, canvas.parts
        tick("landmarks")

        # 3. the torso by a thin-plate spline through its landmarks, each sleeve by a strip along its arm
        #    (front view: the image's left is the person's right)
        image_side = {"a": "right", "b": "left"} if inputs.view.value == "front" else {"a": "left", "b": "right"}
        old = np.isin(parse, UPPER_GARMENT_LABELS)
        arms = np.isin(parse, ARM_LABELS)
        body = BodyGeometry.from_keypoints(keypoints, scale=1.2)
        torso_zone = body.mask((height, width), BodyPart.TORSO)
        frame = body_frame(keypoints, landmarks, image_side, self.chest_ease, cover=old & torso_zone & ~arms,
                           hem_at=hem_at)
        torso_garment, torso_body = torso_targets(frame, landmarks)
        # far from its control points a spline folds back onto the garment: keep the torso's own neighbourhood
        hull = cv2.convexHull(np.round(np.array(torso_body) * 4).astype(np.int32))
        near = np.zeros((height, width), np.uint8)
        cv2.fillConvexPoly(near, hull, 1, shift=2)
        near = cv2.dilate(near, np.ones((3, 3), np.uint8), iterations=max(int(0.08 * frame.width), 1))
        # one RGBA source for every piece (the canvas's, its alpha the torso's part of the garment; each sleeve
        # reads it with its own alpha)
        source = canvas.source
        within = None  # the box the spline's result is computed on
        if strapped:
            # a bodice by a 3 x 3 grid (shoulders, armpits, hem; sides and middle), piece by piece: its straps'
            # few pixels pinned to the shoulders would fold a spline over the whole garment
            grid_garment, grid_body = _bodice_grid(torso_garment, torso_body, frame)
            warped, _ = geometry.piecewise_affine(source, grid_garment * to_canvas, grid_body,
                                                  geometry.grid_triangles(3, 3), (height, width))
        else:
            # only the neighbourhood is kept (and its edge's pixels, which the composite's seams blend)
            within = imaging.bounds(near.astype(bool), 1)
            warped = tps_warp(source, [p * to_canvas for p in torso_garment], torso_body, within=within)
        if within is None:
            warped_rgb = np.clip(warped[..., :3], 0, 1)
        else:  # (the spline's result is 0 outside its box)
            y0, y1, x0, x1 = within
            warped_rgb = np.zeros((height, width, 3), np.float32)
            warped_rgb[y0:y1, x0:x1] = np.clip(warped[y0:y1, x0:x1, :3], 0, 1)
        coverage = warped[..., 3] * near
        warped_part = np.where(coverage > 0.5, TORSO_PART, 0)
        for value, side in ((1, "a"), (2, "b")):
            strip = sleeve_strip(native_parts, value, landmarks, side, (torso_garment, torso_body), frame, keypoints,
                                 image_side[side])
            if strip is None:
                continue
            triangles = geometry.strip_triangles(len(strip[0]) // 2)
            found = geometry.piecewise_affine_patch(source, strip[0] * to_canvas, strip[1], triangles,
                                                    (height, width), alpha=lambda box: parts[box] == value)
            if found is None:
                continue
            sleeve, _, (y0, y1, x0, x1) = found
            on = sleeve[..., 3] > 0.5
            warped_rgb[y0:y1, x0:x1][on] = sleeve[..., :3][on]
            coverage[y0:y1, x0:x1] = np.maximum(coverage[y0:y1, x0:x1], sleeve[..., 3])
            warped_part[y0:y1, x0:x1][on] = SLEEVE_PART
        tick("warp")

        # 4. occlusion: face, hair and hands stay in front; arms stay in front of the torso part, sleeves cover arms
        front = np.isin(parse, FRONT_LABELS)
        if inputs.keep is not None:
            front |= inputs.keep
        new = coverage > 0.5
        draw_torso = new & (warped_part != SLEEVE_PART) & ~arms & ~front
        draw_sleeve = new & (warped_part == SLEEVE_PART) & ~front
        drawn = draw_torso | draw_sleeve
        neck_skin = parse == Cihp.TORSO_SKIN

        # 5. what the old garment covered and the new one does not: skin where the body shows (arms, neck), in
        #    the person's own skin colour and shading; the new garment's own colour elsewhere (no inpainting)
        result = person.astype(np.float32) / 255.0
        # (skin the photo already shows, such as the neck above a lower neckline, stays as it is)
        uncovered = old & ~drawn & ~front
        arm_zone = body.mask((height, width), BodyPart.LEFT_UPPER_ARM, BodyPart.RIGHT_UPPER_ARM,
                             BodyPart.LEFT_LOWER_ARM, BodyPart.RIGHT_LOWER_ARM) & ~torso_zone
        skin_zone = arm_zone & uncovered
        if strapped:  # straps leave bare what a top covered: skin on the body, the background beyond it
            torso_core = BodyGeometry.from_keypoints(keypoints).mask((height, width), BodyPart.TORSO)
            skin_zone |= torso_core & uncovered
        extend = uncovered & ~skin_zone
        bare = np.zeros_like(extend)
        if strapped:
            bare, extend = extend, bare
        reach = extend.any() and drawn.any()  # the new garment reaches over what the old one covered
        # 6. (made beside step 5, from the photo alone) the person's shading (band-passed luminance of the old
        #    garment) to carry onto the new one, and the photo's tone (greyscale, sepia)
        final = drawn | extend if reach else drawn
        light = self._beside(light_field, person, old, final, self.shading if shading is None else shading,
                             used=imaging.dilate(final | new, 1))

        def skin_and_background():  # (on the photo's side; beside the garment's fill below)
            paint_skin(result, parse, skin_zone, arms & arm_zone, arms | neck_skin)
            return background_fill(result, parse, bare) if strapped else result

        filled = self._beside(skin_and_background)
        if reach:
            # the nearest drawn garment pixel's colour, smoothed: the new garment reaches over the old one (taken
            # from inside the garment: its edge pixels are mixed with the product photo's background)
            core = cv2.erode(drawn.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            # (and the seam around it, which the composite blends: the spline's colours there are off the body)
            seam = cv2.dilate(extend.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~drawn & ~new
            warped_rgb = nearest_smoothed(warped_rgb, core if core.any() else drawn, seam, max(0.01 * height, 1.0),
                                          clip=True)
            drawn = drawn | extend
        result = filled.result()
        tick("fill")

        # 6. the light carried onto the new garment
        warped_rgb = apply_light(warped_rgb, light.result())
        tick("shading")

        # 7. composite with anti-aliased seams, never outside the garment's own neighbourhood; then every kept
        #    pixel (face, hair, hands, lower body, background) goes back exactly as it was
        # (only the boxes where anything changed are converted and restored: elsewhere the result is the photo)
        changed = imaging.bounds(skin_zone | bare)
        image = composite(result, warped_rgb, drawn, front, photo=person, changed=changed)
        image = inputs.restore_kept(image, within=imaging.union_box(changed, imaging.bounds(drawn, 1)))
        new_parse = parse.copy()
        for label, parts_of_arm in ((Cihp.LEFT_ARM, (BodyPart.LEFT_UPPER_ARM, BodyPart.LEFT_LOWER_ARM)),
                                    (Cihp.RIGHT_ARM, (BodyPart.RIGHT_UPPER_ARM, BodyPart.RIGHT_LOWER_ARM))):
            new_parse[skin_zone & arm_zone & body.mask((height, width), *parts_of_arm)] = label
        new_parse[skin_zone & ~arm_zone] = Cihp.TORSO_SKIN
        new_parse[bare] = Cihp.BACKGROUND
        new_parse[drawn] = Cihp.UPPER_CLOTHES
        tick("composite")
        warped_uint8 = np.clip(warped_rgb * 255 + 0.5, 0, 255).astype(np.uint8)
        return TryOnResult(image=image, engine="warp", warped_garment=warped_uint8, warped_mask=new,
                           parse=new_parse, timings=timings,
                           extras={"torso_body": torso_body, "scale": frame.scale,
                                   "length_scale": frame.length_scale or frame.scale})
