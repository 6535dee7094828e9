"""Lower garments (trousers, shorts, straight, A-line and pleated skirts): the flat product and its mesh on the body.

As for tops (:mod:`.garment`), the product photo shows the garment laid flat, and the worn garment is the same
fabric carried onto the body piece by piece: trousers and shorts as two leg strips (waist, crotch, knee and hem
cross-sections, each leg's strip running from the centre seam outwards), skirts as a 3 x 3 grid (waist, hip, hem
rows; left, centre, right columns). Front and back differ only by details (a fly and front pockets; back pockets
and a yoke).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np

from fitroom import geometry
from fitroom.data.synthetic.garment import _fabric
from fitroom.data.synthetic.spec import LEG
from fitroom.labels import Cihp, GarmentCategory, View

#: flat waist half-width and rise (waist to crotch), in head units
WAIST_HALF = 0.95
RISE = 1.05


class LowerKind(str, enum.Enum):
    TROUSERS = "trousers"
    SHORTS = "shorts"
    STRAIGHT_SKIRT = "straight_skirt"
    A_LINE_SKIRT = "a_line_skirt"
    PLEATED_SKIRT = "pleated_skirt"

    @property
    def legs(self) -> bool:
        return self in (LowerKind.TROUSERS, LowerKind.SHORTS)


@dataclass(frozen=True)
class LowerSpec:
    """A lower garment: its cut, length and fabric (the fabric fields as :class:`.spec.GarmentSpec`'s)."""

    kind: LowerKind
    colour: tuple[float, float, float]
    pattern: object  # a spec.Pattern
    pattern_colour: tuple[float, float, float]
    pattern_scale: float
    pattern_angle: float
    length: float  # the hem's reach down the leg: 0 at the crotch, 1 at the ankle
    looseness: float  # extra half-width, in head units
    flare: float  # how much wider the hem is than the hips (skirts), in head units per head unit of length
    seed: int

    category = GarmentCategory.LOWER

    @property
    def label(self) -> Cihp:
        return Cihp.PANTS if self.kind.legs else Cihp.SKIRT


def dress_skirt(dress) -> LowerSpec:
    """The skirt of a dress (a :class:`.spec.GarmentSpec` of kind dress): its fabric, reach, flare and ease, hung
    from the waist as a skirt would be; the renderer puts a dress's hip and hem rows where this skirt's are."""
    kind = LowerKind.A_LINE_SKIRT if dress.flare > 0.12 else LowerKind.STRAIGHT_SKIRT
    return LowerSpec(kind=kind, colour=dress.colour, pattern=dress.pattern, pattern_colour=dress.pattern_colour,
                     pattern_scale=dress.pattern_scale, pattern_angle=dress.pattern_angle, length=dress.skirt,
                     looseness=dress.looseness, flare=dress.flare, seed=dress.seed)


def sample_lower(rng: np.random.Generator) -> LowerSpec:
    """A plausible lower garment (its own random stream: drawing one changes nothing else of a sample)."""
    from fitroom.data.synthetic.spec import DENIM_COLOURS, FABRIC_COLOURS, Pattern, _jitter, _pick

    kind = LowerKind(_pick(rng, [k.value for k in LowerKind]))
    denim = kind.legs and rng.random() < 0.6
    colour = _jitter(rng, _pick(rng, DENIM_COLOURS if denim else FABRIC_COLOURS))
    pattern = Pattern.SOLID if denim else Pattern(_pick(rng, ["solid", "solid", "stripes", "checks", "dots"]))
    length = {LowerKind.TROUSERS: rng.uniform(0.93, 0.99), LowerKind.SHORTS: rng.uniform(0.25, 0.45)}.get(
        kind, rng.uniform(0.3, 0.85))
    flare = {LowerKind.STRAIGHT_SKIRT: rng.uniform(0.02, 0.06), LowerKind.A_LINE_SKIRT: rng.uniform(0.2, 0.35),
             LowerKind.PLEATED_SKIRT: rng.uniform(0.15, 0.25)}.get(kind, 0.0)
    return LowerSpec(kind=kind, colour=colour, pattern=pattern,
                     pattern_colour=_jitter(rng, _pick(rng, FABRIC_COLOURS)),
                     pattern_scale=float(rng.uniform(0.08, 0.16)), pattern_angle=float(_pick(rng, [0.0, 90.0, 45.0])),
                     length=float(length), looseness=float(rng.uniform(0.0, 0.12)), flare=float(flare),
                     seed=int(rng.integers(2**31)))


@dataclass
class LowerTemplate:
    """The flat garment on a ``(H, W)`` canvas: its fabric, its product mask, and its pieces, each a mask with
    mesh vertices and triangles (leg strips: ``(2 * rows, 2)`` outer/inner pairs; a skirt: a 3 x 3 grid)."""

    albedo: np.ndarray
    product_mask: np.ndarray
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    unit: float


def _rows(spec: LowerSpec) -> list[float]:
    """The leg fractions (0 crotch .. 1 ankle) of the cross-sections below the crotch."""
    if spec.length > 0.55:
        return [0.0, 0.5, spec.length]
    return [0.0, spec.length]


def lower_template(spec: LowerSpec, view: View, shape: tuple[int, int]) -> LowerTemplate:
    """Lay the garment flat on a canvas of ``shape = (H, W)`` render pixels, as seen from ``view``."""
    view = View(view)
    height, width = shape
    rng = np.random.default_rng([spec.seed, view.index, 11])
    waist = WAIST_HALF + spec.looseness
    hip = waist + 0.15
    drop = spec.length * LEG
    hem_half = hip + spec.flare * (RISE + drop) if not spec.kind.legs else hip
    extent_y = RISE + drop + 0.3
    extent_x = max(hem_half, hip + 0.3)
    unit = min(0.86 * height / extent_y, 0.9 * width / (2 * extent_x))
    cx = width / 2
    top = (height - extent_y * unit) / 2 + 0.1 * unit
    crotch_y = top + RISE * unit
    albedo = _fabric(spec, shape, spec.pattern_scale * 2 * hip * unit * 2.2, rng)  # type: ignore[arg-type]
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if spec.kind.legs:
        rows = _rows(spec)
        for sign in (-1, 1):  # side a (image-left), then b
            vertices = [(cx + sign * waist * unit, top), (cx, top), (cx + sign * hip * unit, crotch_y), (cx, crotch_y)]
            for t in rows[1:]:  # the legs part from the crotch down, each narrowing towards the hem
                outer, inner = hip - (0.3 - 0.5 * spec.looseness) * t, 0.06 + 0.3 * t
                y = crotch_y + t * LEG * unit
                vertices += [(cx + sign * outer * unit, y), (cx + sign * inner * unit, y)]
            strip = np.array(vertices, dtype=np.float64)
            outline = np.concatenate([strip[0::2], strip[1::2][::-1]])
            mask = geometry.polygon_mask(shape, outline)
            pieces.append((mask, strip, geometry.strip_triangles(len(strip) // 2)))
        product_mask = pieces[0][0] | pieces[1][0]
    else:
        hem_y = crotch_y + drop * unit
        grid = np.array([(cx + c * half * unit, y) for y, half in ((top, waist), (crotch_y, hip), (hem_y, hem_half))
                         for c in (-1.0, 0.0, 1.0)], dtype=np.float64)
        outline = np.array([grid[0], grid[2], grid[5], grid[8], grid[6], grid[3]])
        product_mask = geometry.polygon_mask(shape, outline)
        pieces.append((product_mask, grid, geometry.grid_triangles(3, 3)))
        if spec.kind is LowerKind.PLEATED_SKIRT:  # pleats: darker folds fanning out from the hip line
            dark = tuple(float(c) * 0.72 for c in spec.colour)
            count = 10
            for k in range(1, count):
                f = k / count * 2 - 1
                cv2.line(albedo, (int(cx + f * hip * unit), int(crotch_y - 0.3 * unit)),
                         (int(cx + f * hem_half * unit), int(hem_y)), dark, max(int(0.05 * unit), 1), cv2.LINE_AA)
    # the waistband, and a detail that tells the front from the back
    line = max(int(0.03 * unit), 1)
    band = tuple(float(c) * 0.85 for c in spec.colour)
    cv2.rectangle(albedo, (int(cx - waist * unit), int(top)), (int(cx + waist * unit), int(top + 0.22 * unit)), band,
                  -1, cv2.LINE_AA)
    seam = tuple(float(c) * 0.65 for c in spec.colour)
    if view is View.FRONT and spec.kind.legs:
        fly_x = int(cx + 0.1 * unit)
        cv2.line(albedo, (fly_x, int(top + 0.22 * unit)), (fly_x, int(crotch_y - 0.3 * unit)), seam, line, cv2.LINE_AA)
        cv2.circle(albedo, (int(cx), int(top + 0.11 * unit)), max(int(0.05 * unit), 1), (0.75, 0.72, 0.6), -1,
                   cv2.LINE_AA)
    elif view is View.BACK:
        for sign in (-1, 1):  # back pockets
            x0, x1 = int(cx + sign * 0.2 * unit), int(cx + sign * 0.7 * unit)
            y0 = int(top + 0.45 * unit)
            cv2.rectangle(albedo, (min(x0, x1), y0), (max(x0, x1), int(y0 + 0.5 * unit)), seam, line, cv2.LINE_AA)
    return LowerTemplate(albedo=albedo, product_mask=product_mask, pieces=pieces, unit=unit)


def lower_body_mesh(spec: LowerSpec, sk, body) -> list[np.ndarray]:
    """The pieces' mesh vertices on the body (render pixels), matching :func:`lower_template`'s, from the
    renderer's skeleton ``sk`` and body proportions ``body``."""
    hu = sk.hu
    w = sk.width_scale
    limb = 0.9 + 0.1 * body.limb
    waist_y, crotch_y = sk.waist_y, sk.crotch_y
    ease = (0.06 + 0.3 * spec.looseness) * hu
    waist_half = (body.waist + 0.05) * hu * w + 0.5 * spec.looseness * hu

    def along(side: str, t: float) -> np.ndarray:
        """The leg's centre line at leg fraction t (0 at the crotch's height, 0.5 the knee, 1 the ankle)."""
        start = sk.hip[side] + np.array([0.0, crotch_y - sk.hip[side][1]])
        if t <= 0.5:
            return start + (sk.knee[side] - start) * (t / 0.5)
        return sk.knee[side] + (sk.ankle[side] - np.array([0, 0.05 * hu]) - sk.knee[side]) * ((t - 0.5) / 0.5)

    def leg_half(t: float) -> float:
        thigh = 0.36 - (0.36 - 0.23) * min(t / 0.5, 1.0)
        calf = 0.22 - (0.22 - 0.11) * max((t - 0.5) / 0.5, 0.0)
        return (thigh if t <= 0.5 else calf) * hu * limb + ease

    if spec.kind.legs:
        meshes = []
        for side in ("a", "b"):
            out = sk.out[side]
            vertices = [(sk.centre_x + out * waist_half, waist_y), (sk.centre_x, waist_y),
                        (sk.hip[side][0] + out * (0.42 * hu * limb + ease), crotch_y), (sk.centre_x, crotch_y)]
            for t in _rows(spec)[1:]:
                centre = along(side, t)
                direction = geometry.unit(along(side, min(t + 0.05, 1.0)) - along(side, max(t - 0.05, 0.0)))
                normal = geometry.perp(direction)
                if normal[0] * out < 0:
                    normal = -normal
                half = leg_half(t)
                vertices += [tuple(centre + normal * half), tuple(centre - normal * half)]
            meshes.append(np.array(vertices, dtype=np.float64))
        return meshes
    ankle_y = max(sk.ankle["a"][1], sk.ankle["b"][1])
    hem_y = crotch_y + spec.length * (ankle_y - crotch_y)
    hips_half = max(abs(sk.hip[s][0] - sk.centre_x) for s in "ab") + 0.42 * hu * limb + ease
    reach = (hem_y - crotch_y) / hu
    spread = max(abs(along(s, min(spec.length, 1.0))[0] - sk.centre_x) + leg_half(spec.length) for s in "ab")
    hem_half = max(hips_half + spec.flare * (reach + 1.0) * hu, spread + 0.1 * hu)
    grid = [(sk.centre_x + c * half, y) for y, half in ((waist_y, waist_half), (crotch_y, hips_half),
                                                        (hem_y, hem_half)) for c in (-1.0, 0.0, 1.0)]
    return [np.array(grid, dtype=np.float64)]


def render_lower_product(spec: LowerSpec, view: View, size: tuple[int, int], supersample: int = 2
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The in-shop photo of a lower garment seen from ``view``: ``(H, W, 3)`` uint8 and its ``(H, W)`` bool mask."""
    from fitroom.data.synthetic.garment import product_photo

    height, width = size
    template = lower_template(spec, View(view), (height * supersample, width * supersample))
    image, mask = product_photo(template, np.random.default_rng([spec.seed, View(view).index, 13]))  # type: ignore
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), coverage >= 0.5
