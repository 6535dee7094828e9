"""The flat garment: a procedural fabric and cut drawn on a template canvas, with a mesh that maps it onto a body.

The template is what an in-shop product photo shows (the garment laid flat, seen from the front or the back). Its
mesh has a torso grid and a strip per sleeve; the renderer builds the matching mesh on the body from the skeleton
and warps the template piece by piece, so every stripe, check and logo on the person is the same fabric as in the
product photo, carried along the torso and the arms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fitroom import geometry
from fitroom.data.synthetic.spec import DRESS_HIP, GarmentKind, GarmentSpec, Graphic, Neckline, Pattern
from fitroom.labels import View

#: template rows, in head units below the neck points: shoulder seam drop, armpit, waist (hem is the length)
SHOULDER_DROP = 0.25
ARMPIT = 0.85
WAIST = 1.7
#: template mesh columns as fractions of the torso half-width (the top row uses the neck and shoulder points)
COLUMNS = (-1.0, -0.35, 0.0, 0.35, 1.0)
#: arm lengths in head units (upper arm, forearm), shared with the body so sleeves end where they should
UPPER_ARM = 1.45
FOREARM = 1.25


@dataclass
class Template:
    """A garment laid flat on a ``(H, W)`` canvas.

    Attributes:
        albedo: ``(H, W, 3)`` float32 fabric colour without lighting.
        torso_mask, sleeve_masks: where each piece lies on the worn garment (the front neckline cut out).
        product_mask: what a product photo shows (the inner back of the collar included).
        torso_points: ``(rows * 5, 2)`` mesh vertices, rows (top, armpit, waist, hem) x ``COLUMNS``; a dress has a
            fifth row, its hips, before the hem.
        sleeve_points: per side ("a" image-left, "b" image-right), ``(2 * sections, 2)`` cross-section vertices
            (outer, inner); empty for sleeveless garments.
        sleeve_sections: the arm-length fraction of each sleeve cross-section after the seam.
        unit: pixels per head unit on this canvas.
    """

    albedo: np.ndarray
    torso_mask: np.ndarray
    sleeve_masks: dict[str, np.ndarray]
    product_mask: np.ndarray
    torso_points: np.ndarray
    sleeve_points: dict[str, np.ndarray]
    sleeve_sections: tuple[float, ...]
    unit: float


def _half_width(spec: GarmentSpec) -> float:
    return 1.0 + spec.looseness


def _seam_half_width(spec: GarmentSpec) -> float:
    return 0.62 if spec.strapped else _half_width(spec) + 0.08


def dress_widths(spec: GarmentSpec) -> tuple[float, float, float]:
    """A dress's flat half-widths in hu at the waist (fitted), the hips and the hem (the hips' plus the flare)."""
    half = _half_width(spec)
    hip = half + 0.1
    return 0.9 * half, hip, hip + spec.flare * (spec.length - DRESS_HIP)


def sleeve_sections(spec: GarmentSpec) -> tuple[float, ...]:
    """Arm-length fractions (0 = shoulder, 1 = wrist) of the sleeve cross-sections after the seam."""
    if spec.sleeve_length <= 0:
        return ()
    elbow = UPPER_ARM / (UPPER_ARM + FOREARM)
    if spec.sleeve_length <= elbow:
        return (spec.sleeve_length,)
    return (elbow, spec.sleeve_length)


def _fabric(spec: GarmentSpec, shape: tuple[int, int], period: float, rng: np.random.Generator) -> np.ndarray:
    """The fabric's colour everywhere on the canvas ``(H, W, 3)`` float32."""
    height, width = shape
    base = np.array(spec.colour, dtype=np.float32)
    accent = np.array(spec.pattern_colour, dtype=np.float32)
    out = np.empty((height, width, 3), dtype=np.float32)
    out[:] = base
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.deg2rad(spec.pattern_angle)
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = -xs * np.sin(angle) + ys * np.cos(angle)
    if spec.pattern is Pattern.STRIPES:
        band = (np.mod(v, period) < period * 0.42)
        out[band] = accent
    elif spec.pattern is Pattern.CHECKS:
        a = (np.mod(u, period) < period / 2).astype(np.float32)
        b = (np.mod(v, period) < period / 2).astype(np.float32)
        weight = (0.5 * (a + b))[..., None]
        out = base * (1 - weight) + accent * weight
    elif spec.pattern is Pattern.DOTS:
        row = np.floor(v / period)
        shifted = u + (np.mod(row, 2) * period / 2)
        du = np.mod(shifted, period) - period / 2
        dv = np.mod(v, period) - period / 2
        out[(du * du + dv * dv) < (0.22 * period) ** 2] = accent
    elif spec.pattern is Pattern.PRINT:
        count = int(height * width / (period * period) * 0.6)
        for _ in range(count):
            centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
            size = int(period * rng.uniform(0.12, 0.3))
            colour = tuple(float(c) for c in (accent if rng.random() < 0.7 else accent * 0.6 + 0.4 * base))
            if rng.random() < 0.5:
                for k in range(5):  # a five-petal flower
                    offset = geometry.rotate(np.array([0.0, size * 0.9]), 72 * k)
                    cv2.circle(out, (int(centre[0] + offset[0]), int(centre[1] + offset[1])), max(size // 2, 1),
                               colour, -1, cv2.LINE_AA)
            else:
                tri = geometry.ellipse(np.array(centre, float), size, size, rng.uniform(0, 120), steps=3)
                cv2.fillPoly(out, [np.round(tri).astype(np.int32)], colour, cv2.LINE_AA)
    grain = rng.normal(0, 0.018, size=(height // 2 + 1, width // 2 + 1)).astype(np.float32)
    grain = cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(out * (1 + grain), 0, 1)


def _text(canvas: np.ndarray, text: str, centre: np.ndarray, width: float, colour, thickness_unit: float) -> None:
    font = cv2.FONT_HERSHEY_DUPLEX
    (w, h), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = width / max(w, 1)
    thickness = max(int(round(thickness_unit)), 1)
    (w2, h2), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (int(centre[0] - w2 / 2), int(centre[1] + h2 / 2))
    cv2.putText(canvas, text, origin, font, scale, colour, thickness, cv2.LINE_AA)


def _graphic(canvas: np.ndarray, graphic: Graphic, spec: GarmentSpec, centre_x: float, top: float, unit: float,
             half_width: float, rng: np.random.Generator, view: View) -> None:
    colour = tuple(float(c) for c in spec.graphic_colour)
    if np.abs(np.subtract(spec.graphic_colour, spec.colour)).sum() < 0.4:
        colour = tuple(1.0 - c for c in spec.colour)
    if graphic is Graphic.TEXT:
        y = top + (0.75 if view is View.BACK else 1.25) * unit
        _text(canvas, spec.text, np.array([centre_x, y]), half_width * 1.2, colour, unit * 0.09)
    elif graphic is Graphic.BADGE:
        # on the wearer's left chest, which is the image's right in a front view
        centre = (int(centre_x + 0.45 * half_width), int(top + 0.95 * unit))
        radius = int(0.2 * unit)
        cv2.circle(canvas, centre, radius, colour, -1, cv2.LINE_AA)
        _text(canvas, spec.text[0], np.array(centre, float), radius * 1.0, tuple(float(c) for c in spec.colour),
              unit * 0.05)
    elif graphic is Graphic.BIG_PRINT:
        x0, x1 = centre_x - 0.6 * half_width, centre_x + 0.6 * half_width
        y0, y1 = top + 0.75 * unit, top + 1.75 * unit
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1, cv2.LINE_AA)
        for _ in range(6):
            shade = tuple(float(c) for c in rng.uniform(0, 1, 3))
            centre = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            radius = rng.uniform(0.1, 0.3) * unit
            if rng.random() < 0.5:
                cv2.circle(canvas, (int(centre[0]), int(centre[1])), int(radius), shade, -1, cv2.LINE_AA)
            else:
                tri = geometry.ellipse(centre, radius, radius, rng.uniform(0, 120), steps=3)
                cv2.fillPoly(canvas, [np.round(tri).astype(np.int32)], shade, cv2.LINE_AA)
        cv2.rectangle(canvas, (int(x0), int(y0)), (int(x1), int(y1)), tuple(c * 0.5 for c in colour),
                      max(int(unit * 0.03), 1), cv2.LINE_AA)
    elif graphic is Graphic.NUMBER:
        number = str(spec.seed % 99 + 1)
        _text(canvas, number, np.array([centre_x, top + 1.35 * unit]), half_width * (0.5 + 0.25 * len(number)),
              colour, unit * 0.16)


def build_template(spec: GarmentSpec, view: View, shape: tuple[int, int]) -> Template:
    """Lay the garment flat on a canvas of ``shape = (H, W)`` render pixels, as seen from ``view``."""
    view = View(view)
    height, width = shape
    rng = np.random.default_rng([spec.seed, view.index])
    half = _half_width(spec)
    seam = _seam_half_width(spec)
    sections = sleeve_sections(spec)
    arm = UPPER_ARM + FOREARM
    sleeve_angle = 28.0 if len(sections) == 2 else 52.0
    sleeve_reach = (spec.sleeve_length * arm) if sections else 0.0
    widths = dress_widths(spec) if spec.is_dress else (half, half)
    extent_x = max(half, widths[-1], seam + sleeve_reach * np.sin(np.deg2rad(sleeve_angle)) + 0.3)
    extent_y = max(spec.length, SHOULDER_DROP + sleeve_reach * np.cos(np.deg2rad(sleeve_angle)) + 0.6) + 0.2
    unit = min(0.86 * height / extent_y, 0.9 * width / (2 * extent_x))
    cx = width / 2
    top = (height - extent_y * unit) / 2 + 0.15 * unit
    neck = 0.36 * unit
    hw = half * unit

    rows = [(0.0, half), (ARMPIT, half), (WAIST, widths[0])]
    rows += [(DRESS_HIP, widths[1])] if spec.is_dress else []
    rows_y = tuple(top + t * unit for t, _ in rows) + (top + spec.length * unit,)
    row_half = [h * unit for _, h in rows] + [widths[-1] * unit]
    points = []
    for r, y in enumerate(rows_y):
        for column in COLUMNS:
            if r == 0:
                x = {-1.0: cx - seam * unit, -0.35: cx - neck, 0.0: cx, 0.35: cx + neck, 1.0: cx + seam * unit}[column]
                yy = y + (SHOULDER_DROP * unit if abs(column) == 1.0 else 0.0)
            else:
                x, yy = cx + column * row_half[r], y
            points.append((x, yy))
    torso_points = np.array(points, dtype=np.float64)

    # the torso outline: shoulders, sides (a dress's waist and hips), hem; straps and deep armholes when strapped
    tl, tr = torso_points[0], torso_points[4]
    armpit_l, armpit_r = torso_points[5], torso_points[9]
    sides_l = [torso_points[5 * r] for r in range(2, len(rows_y))]
    sides_r = [torso_points[5 * r + 4] for r in range(2, len(rows_y))][::-1]
    if spec.strapped:
        strap_l = np.array([cx - neck - 0.26 * unit, top])
        strap_r = np.array([cx + neck + 0.26 * unit, top])
        outline = [np.array([cx - neck, top]), strap_l, tl, armpit_l + [0, 0.15 * unit], *sides_l, *sides_r,
                   armpit_r + [0, 0.15 * unit], tr, strap_r, np.array([cx + neck, top])]
    else:
        outline = [np.array([cx - neck, top]), tl, armpit_l, *sides_l, *sides_r, armpit_r, tr,
                   np.array([cx + neck, top])]
    torso_outline = np.array(outline)
    torso_all = geometry.polygon_mask(shape, torso_outline)
    if spec.strapped:
        for sign in (-1, 1):  # carve the armholes between the strap and the armpit
            hole = geometry.ellipse(np.array([cx + sign * (hw + 0.05 * unit), top + 0.35 * unit]),
                                hw - neck - 0.26 * unit, 0.72 * unit)
            torso_all &= ~geometry.polygon_mask(shape, hole)

    # neckline: the front cut is deep, the back one shallow; the product photo shows the inner back through it
    front_depth = {Neckline.CREW: 0.3, Neckline.V: 0.9, Neckline.COLLAR: 0.5}[spec.neckline]
    depth = (front_depth if view is View.FRONT else 0.12) * unit
    if spec.neckline is Neckline.V and view is View.FRONT:
        cut = np.array([[cx - neck, top - 1], [cx + neck, top - 1], [cx, top + depth]])
    else:
        cut = geometry.ellipse(np.array([cx, top]), neck, depth)
    back_cut = geometry.ellipse(np.array([cx, top]), neck, 0.12 * unit)
    torso_mask = torso_all & ~geometry.polygon_mask(shape, cut)
    product_mask = torso_all & ~geometry.polygon_mask(shape, back_cut)

    albedo = _fabric(spec, shape, spec.pattern_scale * 2 * hw * 2.2, rng)
    # inner back of the neck, seen through the front opening, is in shadow
    inner = product_mask & ~torso_mask
    albedo[inner] *= 0.55

    # sleeves: a strip from the seam (shoulder point, armpit) outwards and down
    sleeve_masks: dict[str, np.ndarray] = {}
    sleeve_points: dict[str, np.ndarray] = {}
    if sections:
        for side, sign, seam_out, seam_in in (("a", -1, tl, armpit_l), ("b", 1, tr, armpit_r)):
            direction = np.array([sign * np.sin(np.deg2rad(sleeve_angle)), np.cos(np.deg2rad(sleeve_angle))])
            normal = geometry.perp(direction)
            if np.dot(normal, seam_out - seam_in) < 0:
                normal = -normal
            middle = (seam_out + seam_in) / 2
            seam_half = np.linalg.norm(seam_out - seam_in) / 2
            vertices = [seam_out, seam_in]
            for k, fraction in enumerate(sections):
                along = fraction * arm * unit
                half_width = (seam_half * 0.9 if k == 0 and len(sections) == 2 else
                              (0.42 if len(sections) == 1 else 0.27) * unit)
                centre = middle + direction * along
                vertices += [centre + normal * half_width, centre - normal * half_width]
            strip = np.array(vertices)
            sleeve_points[side] = strip
            outline_ = np.concatenate([strip[0::2], strip[1::2][::-1]])
            sleeve_masks[side] = geometry.polygon_mask(shape, outline_) & ~torso_all
            if len(sections) == 2:  # a cuff band near the wrist
                cuff = np.concatenate([strip[-2:], (strip[-2:] * 0.85 + strip[-4:-2] * 0.15)[::-1]])
                cv2.fillPoly(albedo, [np.round(cuff).astype(np.int32)],
                             tuple(float(c) * 0.85 for c in spec.colour), cv2.LINE_AA)
            product_mask |= sleeve_masks[side]

    # construction details and graphics, drawn on the fabric
    line = max(int(0.03 * unit), 1)
    dark = tuple(float(c) * 0.6 for c in spec.colour)
    if spec.kind is GarmentKind.SHIRT and view is View.FRONT:
        cv2.line(albedo, (int(cx), int(top + depth)), (int(cx), int(rows_y[3])), dark, line, cv2.LINE_AA)
        for y in np.arange(top + depth + 0.25 * unit, rows_y[3] - 0.1 * unit, 0.45 * unit):
            cv2.circle(albedo, (int(cx + 0.06 * unit), int(y)), max(int(0.05 * unit), 1), (0.92, 0.92, 0.9), -1,
                       cv2.LINE_AA)
    if spec.kind is GarmentKind.SHIRT and view is View.BACK:
        cv2.line(albedo, (int(cx - hw), int(top + 0.5 * unit)), (int(cx + hw), int(top + 0.5 * unit)), dark, line,
                 cv2.LINE_AA)
    if spec.kind is GarmentKind.JACKET and view is View.FRONT:
        cv2.line(albedo, (int(cx), int(top + depth)), (int(cx), int(rows_y[3])), (0.25, 0.25, 0.27),
                 max(int(0.05 * unit), 1), cv2.LINE_AA)
        for sign in (-1, 1):
            x0 = int(cx + sign * 0.25 * hw)
            x1 = int(cx + sign * 0.75 * hw)
            y0 = int(rows_y[2] + 0.1 * unit)
            cv2.rectangle(albedo, (min(x0, x1), y0), (max(x0, x1), int(y0 + 0.55 * unit)), dark, line, cv2.LINE_AA)
    if spec.neckline is Neckline.COLLAR:
        collar_colour = tuple(float(c) * 0.9 for c in spec.colour)
        for sign in (-1, 1):
            flap = np.array([[cx + sign * neck * 1.05, top - 0.06 * unit], [cx + sign * 0.04 * unit, top + depth],
                             [cx + sign * (neck + 0.3 * unit), top + 0.42 * unit]])
            if view is View.FRONT:
                cv2.fillPoly(albedo, [np.round(flap).astype(np.int32)], collar_colour, cv2.LINE_AA)
                cv2.polylines(albedo, [np.round(flap).astype(np.int32)], True, dark, line, cv2.LINE_AA)
                flap_mask = geometry.polygon_mask(shape, flap)
                torso_mask |= flap_mask
                product_mask |= flap_mask
    hem_line = int(rows_y[-1] - 0.12 * unit)
    cv2.line(albedo, (int(cx - row_half[-1]), hem_line), (int(cx + row_half[-1]), hem_line),
             tuple(float(c) * 0.8 for c in spec.colour), line, cv2.LINE_AA)
    graphic = spec.front_graphic if view is View.FRONT else spec.back_graphic
    _graphic(albedo, graphic, spec, cx, top, unit, hw, rng, view)

    return Template(albedo=albedo, torso_mask=torso_mask, sleeve_masks=sleeve_masks, product_mask=product_mask,
                    torso_points=torso_points, sleeve_points=sleeve_points, sleeve_sections=sections, unit=unit)


def product_photo(template: Template, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The in-shop photo: the flat garment on a white table, softly lit, with a faint drop shadow.

    Returns the ``(H, W, 3)`` float32 image in [0, 1] and the ``(H, W)`` bool garment mask.
    """
    mask = template.product_mask
    unit = template.unit
    shading = geometry.roundness(mask, 0.12, reach=0.5 * unit)
    creases = geometry.soft_lines(mask.shape, [
        (np.array([rng.uniform(0.3, 0.7) * mask.shape[1], rng.uniform(0.2, 0.4) * mask.shape[0]]),
         np.array([rng.uniform(0.3, 0.7) * mask.shape[1], rng.uniform(0.6, 0.8) * mask.shape[0]]), 1.0)
        for _ in range(2)], blur=0.08 * unit)
    shading *= 1 - 0.08 * creases
    background = np.full((*mask.shape, 3), 0.985, dtype=np.float32)
    shadow = cv2.GaussianBlur(np.roll(mask.astype(np.float32), (int(0.05 * unit), int(0.04 * unit)), (0, 1)),
                              (0, 0), 0.12 * unit)
    background *= (1 - 0.12 * shadow)[..., None]
    image = np.where(mask[..., None], template.albedo * shading[..., None], background)
    return np.clip(image, 0, 1), mask
