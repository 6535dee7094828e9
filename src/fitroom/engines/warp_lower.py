"""The ``warp`` engine for lower garments (trousers, shorts, skirts).

The garment's landmarks are found on its mask: the waistband's corners, the crotch (where the legs part, for
trousers and shorts) and each leg's hem, or a skirt's hem corners. On the body the waistband sits above the hips
(by a fifth of the torso), the crotch a quarter of the way from the hips to the knees, and the garment is scaled
by the ratio of the body's rise to the garment's (a skirt's, whose rise cannot be seen, by its waist width laid
on the body's waist, estimated from its width at the waistband and from the hip joints): the hem falls as far
down the body as the product's proportions say, and the legs follow the person's legs (hip, knee, ankle). The
product is carried piece by piece (two leg strips, or a 3 x 3 grid for a skirt) as the sleeves are.

The person's top, arms, hands, head and shoes stay in front; the old lower garment that the new one does not cover
becomes leg skin within the legs (the person's skin colour, shaded) and the surrounding background elsewhere (the
nearest background pixels, along the row first, smoothed: a guess, as the upper garment's fill is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitroom import geometry, imaging
from fitroom.engines.compositing import background_fill, carry_light, composite, paint_skin
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import LOWER_GARMENT_LABELS, Body25, BodyPart, Cihp
from fitroom.preprocess.agnostic import waist_y
from fitroom.preprocess.body import BodyGeometry

#: a skirt's flat waist laid on the body spans the mean of SKIRT_WAIST x the body's front width at the waistband
#: (the torso's run of that row: thrown off by an arm across the belly) and SKIRT_HIPS x the hip joints' spacing
#: (placed wider by BlazePose than by the renderer's skeleton): on the rendered set with the true parse, SSIM
#: 0.947 for the mean, 0.946 for the waist alone, 0.932 for the hips alone; with the whole chain the hips alone
#: were below the unchanged photo
SKIRT_WAIST, SKIRT_HIPS = 0.9, 1.15
#: kept in front of a new lower garment: the top over its waistband, arms and hands, head, shoes
FRONT = (Cihp.HAT, Cihp.HAIR, Cihp.SUNGLASSES, Cihp.FACE, Cihp.GLOVE, Cihp.SCARF, Cihp.UPPER_CLOTHES, Cihp.COAT,
         Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE, Cihp.TORSO_SKIN)


@dataclass
class LowerLandmarks:
    """Points on a lower garment's mask (x, y); "a" is the image's left side."""

    waist: dict[str, np.ndarray]
    crotch: np.ndarray | None  # None for a skirt
    hem: dict[str, tuple[np.ndarray, np.ndarray]]  # per leg (outer, inner); a skirt: "a" and "b" hem corners twice
    top: float
    bottom: float
    centre: float


def lower_landmarks(mask: np.ndarray) -> LowerLandmarks:
    """The landmarks of a lower garment laid flat; ValueError when the mask is empty or not a lower garment's."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("the garment mask is empty")
    top, bottom = int(ys.min()), int(ys.max())
    height = bottom - top + 1
    centre = (xs.min() + xs.max()) / 2
    band = mask[top: top + max(int(0.03 * height), 1) + 1]
    cols = np.nonzero(band.any(0))[0]
    waist = {"a": np.array([cols.min(), top], float), "b": np.array([cols.max(), top], float)}
    column = mask[:, int(round(centre))]
    below = np.nonzero(~column[top + int(0.12 * height): bottom + 1])[0]
    crotch = None
    if len(below) and (below[0] + top + int(0.12 * height)) < bottom - 0.2 * height:
        gap_start = below[0] + top + int(0.12 * height)
        if not column[gap_start:bottom + 1].any():  # the legs part all the way down: trousers or shorts
            crotch = np.array([centre, gap_start], float)
    hem: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if crotch is not None:
        for side, half in (("a", xs < centre), ("b", xs >= centre)):
            low = int(ys[half].max())
            row = np.nonzero(mask[low - max(int(0.01 * height), 1), :])[0]
            row = row[(row < centre) if side == "a" else (row >= centre)]
            if len(row) == 0:
                raise ValueError("a leg of the garment has no hem")
            outer, inner = (row.min(), row.max()) if side == "a" else (row.max(), row.min())
            hem[side] = (np.array([outer, low], float), np.array([inner, low], float))
    else:
        row = np.nonzero(mask[bottom - max(int(0.01 * height), 1), :])[0]
        hem = {"a": (np.array([row.min(), bottom], float),) * 2, "b": (np.array([row.max(), bottom], float),) * 2}
    return LowerLandmarks(waist=waist, crotch=crotch, hem=hem, top=top, bottom=bottom, centre=centre)


def leg_joints(keypoints: np.ndarray, noun: str = "a lower garment"
               ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(hip, knee, ankle) of each leg by image side ("a": the leg whose hip is on the left); InputsError naming
    ``noun`` (what needs them) when a knee or an ankle is missing."""
    k = np.asarray(keypoints, float)
    legs = [(k[Body25.R_HIP, :2], k[Body25.R_KNEE], k[Body25.R_ANKLE]),
            (k[Body25.L_HIP, :2], k[Body25.L_KNEE], k[Body25.L_ANKLE])]
    legs.sort(key=lambda leg: leg[0][0])
    out = {}
    for side, (hip, knee, ankle) in zip("ab", legs):
        if knee[2] <= 0 or ankle[2] <= 0:
            raise InputsError(f"{noun} needs both legs' knees and ankles in the photo")
        out[side] = (hip, knee[:2], ankle[:2])
    return out


def _along(leg, t: float, crotch_y: float) -> np.ndarray:
    """A leg's centre line at fraction t: 0 at the crotch's height, 0.5 the knee, 1 the ankle."""
    hip, knee, ankle = leg
    start = np.array([hip[0], crotch_y])
    if t <= 0.5:
        return start + (knee - start) * (t / 0.5)
    return knee + (ankle - knee) * min((t - 0.5) / 0.5, 1.2)


@dataclass
class HipFrame:
    """Where a lower garment sits on the photo: the hips' height and centre, their spacing, the waistband's height
    (:func:`fitroom.preprocess.agnostic.waist_y`) and the body's front half-width there."""

    hip_y: float
    centre_x: float
    spacing: float
    waist_y: float
    waist_half: float


def hip_frame(keypoints: np.ndarray, parse: np.ndarray, noun: str = "a lower garment") -> HipFrame:
    """The :class:`HipFrame` of a photo; InputsError naming ``noun`` without both hips and the neck."""
    k = np.asarray(keypoints, float)
    if not all(k[j, 2] > 0 for j in (Body25.R_HIP, Body25.L_HIP, Body25.NECK)):
        raise InputsError(f"{noun} needs the hips and the neck in the photo")
    hip_y = (k[Body25.R_HIP, 1] + k[Body25.L_HIP, 1]) / 2
    centre_x = (k[Body25.R_HIP, 0] + k[Body25.L_HIP, 0]) / 2
    spacing = abs(k[Body25.R_HIP, 0] - k[Body25.L_HIP, 0])
    waist = waist_y(k[:, :2])
    # the body's front half-width at the waistband: the torso's run of that row (clothes and skin, not the arms
    # beside it), else from the hips
    torso = np.isin(parse[int(np.clip(round(waist), 0, parse.shape[0] - 1))],
                    (Cihp.UPPER_CLOTHES, Cihp.COAT, Cihp.DRESS, Cihp.TORSO_SKIN, Cihp.PANTS, Cihp.SKIRT))
    x = int(np.clip(round(centre_x), 0, len(torso) - 1))
    run = geometry.run_near(torso, x) if torso[x] else None
    waist_half = (run[1] - run[0]) / 2 if run is not None and run[1] - run[0] > 0.5 * spacing else 0.9 * spacing
    return HipFrame(hip_y=hip_y, centre_x=centre_x, spacing=spacing, waist_y=waist, waist_half=waist_half)


def lower_meshes(landmarks: LowerLandmarks, mask: np.ndarray, keypoints: np.ndarray, frame: HipFrame,
                 scale: tuple[float, float] | None = None
                 ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The pieces to warp: ``(piece mask, garment vertices, body vertices, triangles)`` in garment pixels and
    photo pixels. ``scale`` (photo pixels per garment pixel across and down a skirt) replaces the one measured
    from the body (a dress's skirt takes its bodice's)."""
    k = np.asarray(keypoints, float)
    legs = leg_joints(k)
    hip_y, centre_x, waistband, waist_half = frame.hip_y, frame.centre_x, frame.waist_y, frame.waist_half
    knee_y = (legs["a"][1][1] + legs["b"][1][1]) / 2
    ankle_y = max(legs["a"][2][1], legs["b"][2][1])
    crotch_y = hip_y + 0.25 * (knee_y - hip_y)
    garment_waist = landmarks.waist["b"][0] - landmarks.waist["a"][0]
    length_scale = None
    if scale is not None:
        scale, length_scale = scale
    elif landmarks.crotch is not None:
        scale = (crotch_y - waistband) / max(landmarks.crotch[1] - landmarks.top, 1.0)
    else:  # a flat skirt's waist on the body: the mean of two estimates of the waist's front width
        scale = (SKIRT_WAIST * frame.waist_half + SKIRT_HIPS * frame.spacing) / max(garment_waist, 1.0)
    length_scale = length_scale or scale
    pieces = []
    if landmarks.crotch is not None:
        rise = landmarks.crotch[1] - landmarks.top
        for side, sign in (("a", -1.0), ("b", 1.0)):
            outer_hem, inner_hem = landmarks.hem[side]
            hem_y = min(crotch_y + scale * (outer_hem[1] - landmarks.crotch[1]), ankle_y + 0.02 * (ankle_y - hip_y))
            reach = (hem_y - crotch_y) / max(ankle_y - crotch_y, 1.0)
            hip_row = landmarks.top + rise
            hip_outer = np.array([_row_end(mask, hip_row, sign, landmarks.centre), hip_row])
            garment = [landmarks.waist[side], np.array([landmarks.centre, landmarks.top]), hip_outer,
                       landmarks.crotch.copy()]
            body = [np.array([centre_x + sign * waist_half, waistband]), np.array([centre_x, waistband]),
                    np.array([legs[side][0][0] + sign * (abs(hip_outer[0] - landmarks.centre) * scale
                                                         - abs(legs[side][0][0] - centre_x)), crotch_y]),
                    np.array([centre_x, crotch_y])]
            fractions = [0.5, reach] if reach > 0.6 else [reach]
            for t in fractions:
                g_y = landmarks.crotch[1] + (outer_hem[1] - landmarks.crotch[1]) * (t / max(reach, 1e-6))
                if t == reach:
                    g_outer, g_inner = outer_hem, inner_hem
                else:
                    g_outer = np.array([_row_end(mask, g_y, sign, landmarks.centre), g_y])
                    g_inner = np.array([_row_end(mask, g_y, -sign, landmarks.centre, within=sign), g_y])
                line = _along(legs[side], t, crotch_y)
                direction = geometry.unit(_along(legs[side], min(t + 0.05, 1.2), crotch_y)
                                          - _along(legs[side], max(t - 0.05, 0.0), crotch_y))
                normal = geometry.perp(direction)
                if normal[0] * sign < 0:
                    normal = -normal
                half = abs(g_outer[0] - g_inner[0]) * scale / 2
                garment += [g_outer, g_inner]
                body += [line + normal * half, line - normal * half]
            strip = np.array(garment)
            outline = np.concatenate([strip[0::2], strip[1::2][::-1]])
            piece = geometry.polygon_mask(mask.shape, outline) & mask
            pieces.append((piece, strip, np.array(body), geometry.strip_triangles(len(strip) // 2)))
        return pieces
    hem_y = min(waistband + length_scale * (landmarks.bottom - landmarks.top), ankle_y + 0.02 * (ankle_y - hip_y))
    hip_row = landmarks.top + 0.3 * (landmarks.bottom - landmarks.top)
    rows_g = [landmarks.top, hip_row, landmarks.bottom]
    rows_b = [waistband, waistband + 0.3 * (hem_y - waistband), hem_y]
    garment, body = [], []
    for g_y, b_y in zip(rows_g, rows_b):
        left = _row_end(mask, g_y, -1.0, landmarks.centre)
        right = _row_end(mask, g_y, 1.0, landmarks.centre)
        half = (right - left) / 2 * scale
        garment += [np.array([left, g_y]), np.array([landmarks.centre, g_y]), np.array([right, g_y])]
        body += [np.array([centre_x - half, b_y]), np.array([centre_x, b_y]), np.array([centre_x + half, b_y])]
    return [(mask, np.array(garment), np.array(body), geometry.grid_triangles(3, 3))]


def _row_end(mask: np.ndarray, y: float, sign: float, centre: float, within: float | None = None) -> float:
    """The x of the garment's edge on row ``y`` going from the centre towards ``sign``; with ``within``, the
    inner edge of the leg on side ``within`` (the edge nearest the centre)."""
    row = int(np.clip(round(y), 0, mask.shape[0] - 1))
    cols = np.nonzero(mask[row])[0]
    if within is not None:
        cols = cols[(cols < centre) if within < 0 else (cols >= centre)]
        if len(cols) == 0:
            return centre
        return float(cols.max() if within < 0 else cols.min())
    cols = cols[(cols < centre) if sign < 0 else (cols >= centre)]
    if len(cols) == 0:
        return centre
    return float(cols.min() if sign < 0 else cols.max())


def warp_lower(inputs: TryOnInputs, shading: bool = True, frame: HipFrame | None = None,
               scale: tuple[float, float] | None = None) -> TryOnResult:
    """A lower garment on the person of ``inputs`` (see the module docstring); ``frame`` and ``scale`` replace
    the ones measured on the photo (a dress's skirt hangs from its bodice's hem, at its bodice's scale)."""
    person, parse, keypoints = inputs.person, inputs.parse, inputs.keypoints
    height, width = person.shape[:2]
    try:
        landmarks = lower_landmarks(inputs.garment_mask)
    except ValueError as error:
        raise InputsError(f"the lower garment's photo cannot be read: {error}") from None
    old = np.isin(parse, LOWER_GARMENT_LABELS)
    frame = frame or hip_frame(keypoints, parse)
    hip_y, centre_x = frame.hip_y, frame.centre_x
    meshes = lower_meshes(landmarks, inputs.garment_mask, keypoints, frame, scale)
    garment = inputs.garment.astype(np.float32) / 255.0
    warped_rgb = np.zeros((height, width, 3), np.float32)
    coverage = np.zeros((height, width), np.float32)
    for piece, source, target, triangles in meshes:
        warped, _ = geometry.piecewise_affine(np.dstack([garment, piece.astype(np.float32)]), source, target,
                                              triangles, (height, width))
        on = warped[..., 3] > 0.5
        warped_rgb[on] = warped[..., :3][on]
        coverage = np.maximum(coverage, warped[..., 3])
    front = np.isin(parse, FRONT)
    if inputs.keep is not None:
        front |= inputs.keep & ~old & ~np.isin(parse, (Cihp.LEFT_LEG, Cihp.RIGHT_LEG))
    new = coverage > 0.5
    drawn = new & ~front
    result = person.astype(np.float32) / 255.0
    # the old garment the new one leaves bare: leg skin on the legs, the background beside them
    uncovered = old & ~drawn & ~front
    body = BodyGeometry.from_keypoints(keypoints, scale=1.2)
    leg_zone = body.mask((height, width), BodyPart.LEFT_UPPER_LEG, BodyPart.RIGHT_UPPER_LEG,
                         BodyPart.LEFT_LOWER_LEG, BodyPart.RIGHT_LOWER_LEG)
    below = np.arange(height)[:, None] > hip_y
    skin_zone = uncovered & leg_zone & below
    legs = np.isin(parse, (Cihp.LEFT_LEG, Cihp.RIGHT_LEG))
    paint_skin(result, parse, skin_zone, legs & leg_zone, legs | np.isin(parse, (Cihp.LEFT_ARM, Cihp.RIGHT_ARM)))
    fill = uncovered & ~skin_zone
    result = background_fill(result, parse, fill)
    warped_rgb = carry_light(person, old, drawn, warped_rgb, shading, used=imaging.dilate(drawn | new, 1))
    image = inputs.restore_kept(composite(result, warped_rgb, drawn, front))
    new_parse = parse.copy()
    new_parse[skin_zone & (np.arange(width)[None, :] < centre_x)] = Cihp.RIGHT_LEG if inputs.view.value == "front" \
        else Cihp.LEFT_LEG
    new_parse[skin_zone & (np.arange(width)[None, :] >= centre_x)] = Cihp.LEFT_LEG if inputs.view.value == "front" \
        else Cihp.RIGHT_LEG
    new_parse[fill] = Cihp.BACKGROUND
    new_parse[drawn] = Cihp.PANTS if landmarks.crotch is not None else Cihp.SKIRT
    return TryOnResult(image=image, engine="warp", warped_garment=np.clip(warped_rgb * 255 + 0.5, 0, 255)
                       .astype(np.uint8), warped_mask=new, parse=new_parse,
                       extras={"lower_landmarks": landmarks})
