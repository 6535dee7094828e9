"""Render a synthetic person wearing a synthetic garment, with every try-on modality as exact ground truth.

The renderer draws at ``supersample`` times the output size and averages down, so edges are anti-aliased while
the parse and the dense part map (drawn with the same shapes, without blending) stay exact label images.

Steps of :func:`render_person`:
1. skeleton: joint positions from the body proportions and the pose (inverse kinematics for hands on hips,
   forearms across the body and crossed arms); the back view mirrors the body so the person's left is on the
   image's left;
2. the garment template and its mesh on the body (torso grid and sleeve strips);
3. layers painted back to front (long hair behind, occluded forearms, legs and the lower garment, torso skin, the
   garment torso, arms with their sleeves, head, hair), each with a label and shading;
4. light: a directional gradient, cast shadows of the arms, fabric folds;
5. down-sampling, sensor noise; keypoints in BODY_25 order with confidences.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fitroom import geometry
from fitroom.data.synthetic.garment import ARMPIT, FOREARM, UPPER_ARM, WAIST, Template, build_template
from fitroom.data.synthetic.lower import LowerSpec, dress_skirt, lower_body_mesh, lower_template
from fitroom.data.synthetic.spec import (
    ArmPose, Background, Bottom, GarmentSpec, HairStyle, LegPose, PersonSpec,
)
from fitroom.labels import DENSE_PART_BY_VIEW, BodyPart, Body25, Cihp, View

HAND = 0.72  # hu


@dataclass
class Render:
    """One rendered person.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        parse: ``(H, W)`` uint8 CIHP labels.
        dense: ``(H, W)`` uint8 DensePose part index 0..24 (0 = background).
        keypoints: ``(25, 3)`` float32 BODY_25 (x, y, confidence) in output pixels.
        person_mask: ``(H, W)`` bool, the person's silhouette.
    """

    image: np.ndarray
    parse: np.ndarray
    dense: np.ndarray
    keypoints: np.ndarray
    person_mask: np.ndarray


@dataclass
class Skeleton:
    """Joint positions in render pixels. Sides: "a" is the image's left, "b" the image's right."""

    hu: float
    head: np.ndarray
    head_axes: tuple[float, float]
    neck: np.ndarray
    shoulder: dict[str, np.ndarray]
    elbow: dict[str, np.ndarray]
    wrist: dict[str, np.ndarray]
    hip: dict[str, np.ndarray]
    knee: dict[str, np.ndarray]
    ankle: dict[str, np.ndarray]
    mid_hip: np.ndarray
    centre_x: float
    width_scale: float  # < 1 when the torso is turned
    forearm_behind: dict[str, bool]  # hidden behind the torso (arms across the body, seen from the back)
    out: dict[str, float]  # -1 for side a, +1 for side b: the direction away from the body

    @property
    def waist_y(self) -> float:
        """Where a lower garment's waistband (and the pelvis) begins."""
        return float(self.neck[1] + 2.2 * self.hu)

    @property
    def crotch_y(self) -> float:
        return float(self.mid_hip[1] + 0.45 * self.hu)


def _two_bone(start: np.ndarray, target: np.ndarray, first: float, second: float, away_x: float,
              centre_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse kinematics: the middle joint (the one farther from the body's midline) and the reachable end."""
    offset = target - start
    distance = float(np.clip(np.hypot(*offset), abs(first - second) + 1e-3, first + second - 1e-3))
    direction = geometry.unit(offset)
    cos_angle = (first ** 2 + distance ** 2 - second ** 2) / (2 * first * distance)
    angle = np.rad2deg(np.arccos(np.clip(cos_angle, -1, 1)))
    candidates = [start + first * geometry.rotate(direction, sign * angle) for sign in (-1, 1)]
    middle = max(candidates, key=lambda p: away_x * (p[0] - centre_x))
    return middle, start + direction * distance


def skeleton(person: PersonSpec, view: View, shape: tuple[int, int]) -> Skeleton:
    """Joint positions of ``person`` in ``view`` on a canvas of ``shape = (H, W)`` render pixels."""
    height, width = shape
    body, pose = person.body, person.pose(view)
    body_height = body.height * height
    hu = body_height / body.head_units
    sole = pose.feet_y * height
    top = sole - body_height
    cx = pose.centre_x * width
    turn = abs(pose.turn)
    width_scale = 1 - 0.55 * turn
    shift = np.sign(pose.turn) * turn * 0.25 * hu
    head = np.array([cx + shift * 1.5 + np.sin(np.deg2rad(pose.head_tilt)) * 0.3 * hu, top + 0.5 * hu])
    shoulder_y = top + 1.5 * hu
    hip_y = top + 3.95 * hu
    out = {"a": -1.0, "b": 1.0}
    shoulder = {s: np.array([cx + shift + out[s] * body.shoulder * 0.86 * hu * width_scale, shoulder_y]) for s in out}
    hip = {s: np.array([cx + out[s] * body.hip * 0.55 * hu * width_scale, hip_y]) for s in out}
    neck = (shoulder["a"] + shoulder["b"]) / 2
    mid_hip = (hip["a"] + hip["b"]) / 2
    limb = 0.92 + 0.08 * body.limb
    upper, fore = UPPER_ARM * hu * limb, FOREARM * hu * limb

    elbow, wrist, forearm_behind = {}, {}, {}
    for side in out:
        kind = pose.arm_a if side == "a" else pose.arm_b
        theta, bend = pose.arm_a_angles if side == "a" else pose.arm_b_angles
        o = out[side]
        s = shoulder[side]
        if kind in (ArmPose.DOWN, ArmPose.A_POSE, ArmPose.RAISED):
            upper_dir = np.array([o * np.sin(np.deg2rad(theta)), np.cos(np.deg2rad(theta))])
            fore_angle = theta + bend if kind is ArmPose.RAISED else theta - bend
            fore_dir = np.array([o * np.sin(np.deg2rad(fore_angle)), np.cos(np.deg2rad(fore_angle))])
            elbow[side] = s + upper * upper_dir
            wrist[side] = elbow[side] + fore * fore_dir
        else:
            jitter = (theta - 0.5) * 0.3 * hu
            if kind is ArmPose.HAND_ON_HIP:
                target = np.array([cx + o * (body.waist + 0.15) * hu * width_scale, top + 3.45 * hu + jitter])
            elif kind is ArmPose.ACROSS:
                target = np.array([cx - o * 0.35 * hu, top + 3.35 * hu + jitter])
            elif kind is ArmPose.POCKET:
                target = np.array([hip[side][0] - o * 0.05 * hu, top + 4.35 * hu + jitter])
            else:  # crossed: the wrist rests on the other arm, at chest height
                level = 2.55 if side == "a" else 2.75
                target = np.array([cx - o * body.chest * 0.55 * hu * width_scale, top + (level + bend * 0.1) * hu])
            elbow[side], wrist[side] = _two_bone(s, target, upper, fore, o, cx)
        forearm_behind[side] = view is View.BACK and kind in (ArmPose.ACROSS, ArmPose.CROSSED, ArmPose.POCKET)

    knee, ankle = {}, {}
    leg_total = sole - 0.2 * hu - hip_y
    thigh, calf = 0.52 * leg_total, 0.48 * leg_total
    for side in out:
        o = out[side]
        if pose.legs is LegPose.CROSSED:
            # the image-left leg crosses in front of the other at the ankles
            target = np.array([cx + (0.3 if side == "a" else -0.05) * hu, sole - 0.2 * hu])
            knee[side], ankle[side] = _two_bone(hip[side], target, thigh, calf, o, cx)
        else:
            spread = np.deg2rad(pose.leg_spread)
            knee[side] = hip[side] + thigh * np.array([o * np.sin(spread), np.cos(spread)])
            back = np.deg2rad(pose.leg_spread * 0.4)
            ankle[side] = knee[side] + calf * np.array([o * np.sin(back), np.cos(back)])
    return Skeleton(hu=hu, head=head, head_axes=(0.38 * hu, 0.5 * hu), neck=neck, shoulder=shoulder, elbow=elbow,
                    wrist=wrist, hip=hip, knee=knee, ankle=ankle, mid_hip=mid_hip, centre_x=cx,
                    width_scale=width_scale, forearm_behind=forearm_behind, out=out)


def keypoints(sk: Skeleton, view: View, shape: tuple[int, int], rng: np.random.Generator,
              supersample: int) -> np.ndarray:
    """BODY_25 keypoints in output pixels. In a front view the person's right is side "a"; in a back view "b".
    Face points are not detected from the back (confidence 0), except the ears, as OpenPose behaves."""
    right, left = ("a", "b") if view is View.FRONT else ("b", "a")
    a_x, b_y = sk.head_axes
    face_side = {s: sk.head + np.array([sk.out[s] * 0.42 * a_x, 0.02 * b_y]) for s in ("a", "b")}
    ear = {s: sk.head + np.array([sk.out[s] * a_x * 0.98, 0.08 * b_y]) for s in ("a", "b")}

    def foot(side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = sk.out[side]
        big = sk.ankle[side] + np.array([o * 0.02, 0.17]) * sk.hu
        small = sk.ankle[side] + np.array([o * 0.14, 0.15]) * sk.hu
        heel = sk.ankle[side] + np.array([-o * 0.02, 0.1]) * sk.hu
        return big, small, heel

    points = np.zeros((25, 2))
    confidence = rng.uniform(0.72, 0.95, size=25)
    points[Body25.NOSE] = sk.head + np.array([0, 0.2 * b_y])
    points[Body25.NECK] = sk.neck
    for name, side in (("R", right), ("L", left)):
        points[Body25[f"{name}_SHOULDER"]] = sk.shoulder[side]
        points[Body25[f"{name}_ELBOW"]] = sk.elbow[side]
        points[Body25[f"{name}_WRIST"]] = sk.wrist[side]
        points[Body25[f"{name}_HIP"]] = sk.hip[side]
        points[Body25[f"{name}_KNEE"]] = sk.knee[side]
        points[Body25[f"{name}_ANKLE"]] = sk.ankle[side]
        points[Body25[f"{name}_EYE"]] = face_side[side]
        points[Body25[f"{name}_EAR"]] = ear[side]
        big, small, heel = foot(side)
        points[Body25[f"{name}_BIG_TOE"]] = big
        points[Body25[f"{name}_SMALL_TOE"]] = small
        points[Body25[f"{name}_HEEL"]] = heel
        if sk.forearm_behind[side]:
            confidence[Body25[f"{name}_WRIST"]] *= 0.4
    points[Body25.MID_HIP] = sk.mid_hip
    if view is View.BACK:
        for joint in (Body25.NOSE, Body25.R_EYE, Body25.L_EYE):
            confidence[joint] = 0.0
        confidence[[Body25.R_EAR, Body25.L_EAR]] *= 0.6
    # render pixels -> output pixels (pixel centres)
    points = (points + 0.5) / supersample - 0.5
    height, width = shape
    outside = (points[:, 0] < 0) | (points[:, 1] < 0) | (points[:, 0] > width - 1) | (points[:, 1] > height - 1)
    confidence[outside] = 0.0
    result = np.concatenate([points, confidence[:, None]], axis=1).astype(np.float32)
    result[confidence == 0] = 0.0  # OpenPose writes undetected joints as (0, 0, 0)
    return result


class _Canvas:
    """Layers painted back to front: colour, CIHP label and DensePose index per render pixel."""

    def __init__(self, shape: tuple[int, int], background: np.ndarray) -> None:
        self.rgb = background.astype(np.float32)
        self.label = np.zeros(shape, dtype=np.uint8)
        self.dense = np.zeros(shape, dtype=np.uint8)
        self.shape = shape

    def paint(self, mask: np.ndarray, colour, label: int, shade: float = 0.22, reach: float | None = None,
              texture: np.ndarray | None = None) -> None:
        box = geometry.bbox(mask, pad=2)
        if box is None:
            return
        local = mask[box]
        shading = geometry.roundness(local, shade, reach)
        if texture is not None:
            colour_patch = texture[box]
        else:
            colour_patch = np.broadcast_to(np.asarray(colour, dtype=np.float32), (*local.shape, 3))
        patch = self.rgb[box]
        patch[local] = (colour_patch * shading[..., None])[local]
        self.label[box][local] = label

    def dense_paint(self, mask: np.ndarray, index: int) -> None:
        self.dense[mask] = index


def _background(look, shape: tuple[int, int], sk: Skeleton, rng: np.random.Generator, sole: float) -> np.ndarray:
    height, width = shape
    base = np.array(look.background_colours[0], dtype=np.float32)
    second = np.array(look.background_colours[1], dtype=np.float32)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    horizon = float(np.clip(sole / height - rng.uniform(0.08, 0.2), 0.55, 0.9))
    if look.background is Background.STUDIO:
        image = base * (1.02 - 0.12 * ys) + np.zeros((height, width, 3), np.float32)
    elif look.background is Background.WALL:
        image = np.where(ys < horizon, base, second) + np.zeros((height, width, 3), np.float32)
        band = int(horizon * height)
        image[max(band - int(0.012 * height), 0):band] = base * 0.8
    elif look.background is Background.ROOM:
        image = np.where(ys < horizon, base, second * 0.9) + np.zeros((height, width, 3), np.float32)
        for _ in range(3):  # frames, a door, a shelf
            x0 = int(rng.uniform(0, width * 0.8))
            y0 = int(rng.uniform(0.05, horizon * 0.7) * height)
            w, h = int(rng.uniform(0.1, 0.3) * width), int(rng.uniform(0.1, 0.35) * height)
            colour = tuple(float(c) for c in np.clip(base * rng.uniform(0.6, 1.2, 3), 0, 1))
            cv2.rectangle(image, (x0, y0), (x0 + w, y0 + h), colour, -1)
        image = cv2.GaussianBlur(image, (0, 0), 0.004 * height + 0.5)
    else:  # outdoor: sky, blurred foliage, ground
        sky = np.array([0.62, 0.76, 0.92], np.float32) * (0.9 + 0.1 * (1 - ys))
        image = np.where(ys < horizon, sky, second) + np.zeros((height, width, 3), np.float32)
        for _ in range(14):
            centre = (int(rng.uniform(0, width)), int(rng.uniform(0.25, horizon) * height))
            colour = tuple(float(c) for c in np.array([0.2, 0.4, 0.2]) * rng.uniform(0.6, 1.3, 3))
            cv2.circle(image, centre, int(rng.uniform(0.04, 0.12) * height), colour, -1)
        image = cv2.GaussianBlur(image, (0, 0), 0.01 * height + 0.5)
    # soft floor shadow under the feet
    shadow = np.zeros((height, width), np.float32)
    cv2.ellipse(shadow, (int(sk.centre_x), int(sole)), (int(1.2 * sk.hu), int(0.18 * sk.hu)), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 0.15 * sk.hu)
    return np.clip(image * (1 - 0.3 * shadow[..., None]), 0, 1)


def _torso_mesh(sk: Skeleton, garment: GarmentSpec, person: PersonSpec) -> np.ndarray:
    """Body positions of the template's torso grid: rows (top, armpit, waist, hem) x columns; a dress's hip and hem
    rows are those of a skirt of its fabric (:func:`.lower.lower_body_mesh`), at the crotch's height and below."""
    hu, body = sk.hu, person.body
    down = geometry.unit(sk.mid_hip - sk.neck)
    across = geometry.perp(down) * -1  # towards side "b" (image right)
    if across[0] < 0:
        across = -across
    torso_length = np.hypot(*(sk.mid_hip - sk.neck)) / hu
    stretch = torso_length / 2.45

    def body_half(t: float) -> float:
        knots = [0.0, ARMPIT, WAIST * 0.95, 2.45, 3.6]
        widths = [body.shoulder * 0.9, body.chest, body.waist, body.hip + 0.12, body.hip + 0.18]
        return float(np.interp(t, knots, widths)) * hu * sk.width_scale

    neck_half = 0.3 * hu * sk.width_scale
    lift = 0.12 * hu
    rows = []
    top = [sk.shoulder["a"] + np.array([-0.15 * hu * sk.width_scale, -1.6 * lift]),
           sk.neck - across * neck_half - down * 1.6 * lift, sk.neck - down * 1.6 * lift,
           sk.neck + across * neck_half - down * 1.6 * lift,
           sk.shoulder["b"] + np.array([0.15 * hu * sk.width_scale, -1.6 * lift])]
    if garment.strapped:
        for i, side in ((0, "a"), (4, "b")):
            top[i] = sk.neck + (sk.shoulder[side] - sk.neck) * 0.62 - down * lift
    rows.append(top)
    chest = body_half(ARMPIT)
    for t in (ARMPIT, WAIST) if garment.is_dress else (ARMPIT, WAIST, garment.length):
        half = body_half(t)
        if garment.kind.value in ("tee", "jacket", "shirt"):
            half = max(half, 0.93 * chest)  # a boxy cut hangs straight from the chest
        half *= 1 + garment.looseness
        centre = sk.neck + down * (t * hu * stretch)
        rows.append([centre + across * c * half for c in (-1.0, -0.35, 0.0, 0.35, 1.0)])
    if garment.is_dress:
        skirt = lower_body_mesh(dress_skirt(garment), sk, body)[0].reshape(3, 3, 2)
        for row in skirt[1:]:  # hips, hem: the skirt's three columns spread to the top's five
            rows.append([row[1] + (row[2] - row[1]) * c for c in (-1.0, -0.35, 0.0, 0.35, 1.0)])
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def _arm_point(sk: Skeleton, side: str, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The point at ``fraction`` of the arm's length (0 shoulder, 1 wrist) and the arm direction there."""
    elbow_fraction = UPPER_ARM / (UPPER_ARM + FOREARM)
    if fraction <= elbow_fraction:
        t = fraction / elbow_fraction
        upper = sk.elbow[side] - sk.shoulder[side]
        return sk.shoulder[side] + t * upper, geometry.unit(upper)
    t = (fraction - elbow_fraction) / (1 - elbow_fraction)
    return sk.elbow[side] + t * (sk.wrist[side] - sk.elbow[side]), geometry.unit(sk.wrist[side] - sk.elbow[side])


def _sleeve_mesh(sk: Skeleton, side: str, torso_body: np.ndarray, template: Template, limb: float) -> np.ndarray:
    """Body positions of one sleeve strip: the seam shared with the torso grid, then one section per fraction."""
    column = 0 if side == "a" else 4
    seam_out, seam_in = torso_body[column], torso_body[5 + column]
    upper_dir = geometry.unit(sk.elbow[side] - sk.shoulder[side])
    sign = 1.0 if np.dot(geometry.perp(upper_dir), seam_out - seam_in) > 0 else -1.0
    # the sleeve is its own piece: its seam crosses the shoulder joint, wide enough to cover the deltoid
    normal = geometry.perp(upper_dir) * sign
    cap = sk.shoulder[side] - upper_dir * 0.24 * sk.hu
    vertices = [cap + normal * 0.3 * sk.hu * limb, cap - normal * 0.3 * sk.hu * limb]
    sections = template.sleeve_sections
    elbow_fraction = UPPER_ARM / (UPPER_ARM + FOREARM)
    for k, fraction in enumerate(sections):
        point, direction = _arm_point(sk, side, fraction)
        if abs(fraction - elbow_fraction) < 1e-6:  # at the elbow, cut along the bisector
            direction = geometry.unit(upper_dir + geometry.unit(sk.wrist[side] - sk.elbow[side]))
        arm_half = np.interp(fraction, [0, elbow_fraction, 1], [0.24, 0.18, 0.12]) * sk.hu * limb
        half = arm_half * (1.45 if len(sections) == 1 else (1.35 if k == 0 else 1.3))
        normal = geometry.perp(direction) * sign
        vertices += [point + normal * half, point - normal * half]
    return np.array(vertices, dtype=np.float64)


def render_person(person: PersonSpec, garment: GarmentSpec, view: View, size: tuple[int, int],
                  supersample: int = 2, lower: LowerSpec | None = None) -> Render:
    """Render ``person`` wearing ``garment`` (and ``lower``, a lower garment with its own fabric, instead of the
    plain bottom of the person's look) seen from ``view`` at ``size = (H, W)``."""
    view = View(view)
    height, width = size
    shape = (height * supersample, width * supersample)
    look, body = person.look, person.body
    rng = np.random.default_rng([look.seed, view.index, 7])

    # 1. skeleton
    sk = skeleton(person, view, shape)
    hu = sk.hu
    limb = 0.9 + 0.1 * body.limb
    sole = person.pose(view).feet_y * shape[0]
    canvas = _Canvas(shape, _background(look, shape, sk, rng, sole))
    skin = np.array(look.skin, np.float32)

    # 2. garment template and its mesh on the body
    template = build_template(garment, view, shape)
    torso_body = _torso_mesh(sk, garment, person)
    torso_warp, _ = geometry.piecewise_affine(
        np.dstack([template.albedo, template.torso_mask.astype(np.float32)]), template.torso_points, torso_body,
        geometry.grid_triangles(len(template.torso_points) // 5, 5), shape)
    sleeves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for side, strip in template.sleeve_points.items():
        body_strip = _sleeve_mesh(sk, side, torso_body, template, limb)
        source = np.dstack([template.albedo, template.sleeve_masks[side].astype(np.float32)])
        parts = []
        for k in range(len(template.sleeve_sections)):  # one piece per arm segment, for layering
            triangles = geometry.strip_triangles(len(template.sleeve_sections) + 1)[2 * k: 2 * k + 2]
            parts.append(geometry.piecewise_affine(source, strip, body_strip, triangles, shape))
        sleeves[side] = parts
    garment_label = Cihp.COAT if garment.label_is_coat else Cihp.DRESS if garment.is_dress else Cihp.UPPER_CLOTHES
    garment_pixels = np.zeros(shape, bool)

    def paint_garment(warped: np.ndarray) -> None:
        mask = warped[..., 3] > 0.5
        canvas.paint(mask, None, garment_label, shade=0.2, reach=0.6 * hu, texture=warped[..., :3])
        garment_pixels[mask] = True

    # 3. layers, back to front
    person_side = {"a": "right", "b": "left"} if view is View.FRONT else {"a": "left", "b": "right"}
    arm_label = {s: Cihp.RIGHT_ARM if person_side[s] == "right" else Cihp.LEFT_ARM for s in "ab"}
    leg_label = {s: Cihp.RIGHT_LEG if person_side[s] == "right" else Cihp.LEFT_LEG for s in "ab"}
    shoe_label = {s: Cihp.RIGHT_SHOE if person_side[s] == "right" else Cihp.LEFT_SHOE for s in "ab"}
    view_index = view.index

    def dense_id(part: str, side: str | None = None) -> int:
        name = part if side is None else f"{person_side[side]}_{part}"
        return int(DENSE_PART_BY_VIEW[BodyPart(name)][view_index])

    a_x, b_y = sk.head_axes
    hair = np.array(look.hair, np.float32)
    long_hair = look.hair_style is HairStyle.LONG
    hair_drop = sk.head[1] + b_y + look.hair_length * hu
    if long_hair and view is View.FRONT:  # hair falling behind the shoulders
        fall = geometry.smooth_closed(np.array([
            sk.head + [-a_x * 1.15, -0.2 * b_y], sk.head + [a_x * 1.15, -0.2 * b_y],
            [sk.head[0] + a_x * 1.3, hair_drop], [sk.head[0] - a_x * 1.3, hair_drop]]))
        canvas.paint(geometry.polygon_mask(shape, fall), hair, Cihp.HAIR, shade=0.3)

    def paint_forearm(side: str) -> None:
        """Forearm skin and hand (the sleeve goes on afterwards, so the cuff covers the wrist)."""
        fore = geometry.capsule(sk.elbow[side], sk.wrist[side], 0.18 * hu * limb, 0.12 * hu * limb)
        fore_mask = geometry.polygon_mask(shape, fore)
        canvas.paint(fore_mask, skin, arm_label[side], shade=0.25)
        canvas.dense_paint(fore_mask, dense_id("lower_arm", side))
        direction = geometry.unit(sk.wrist[side] - sk.elbow[side])
        hand = geometry.ellipse(sk.wrist[side] + direction * 0.27 * hu * limb, 0.28 * hu * limb, 0.12 * hu * limb,
                            np.rad2deg(np.arctan2(direction[1], direction[0])))
        hand_mask = geometry.polygon_mask(shape, hand)
        canvas.paint(hand_mask, skin * 0.97, arm_label[side], shade=0.25)
        canvas.dense_paint(hand_mask, dense_id("hand", side))

    def paint_lower_sleeve(side: str) -> None:
        if side in sleeves and len(sleeves[side]) == 2:
            paint_garment(sleeves[side][1][0])

    for side in "ab":
        if sk.forearm_behind[side]:
            paint_forearm(side)
            paint_lower_sleeve(side)

    # legs, shoes and the lower garment
    order = ("b", "a") if person.pose(view).legs is LegPose.CROSSED else ("a", "b")
    bottom = np.array(look.bottom_colour, np.float32)
    for side in order:
        thigh = geometry.polygon_mask(shape, geometry.capsule(sk.hip[side], sk.knee[side], 0.36 * hu * limb,
                                                              0.23 * hu * limb))
        calf = geometry.polygon_mask(shape, geometry.capsule(sk.knee[side], sk.ankle[side], 0.22 * hu * limb,
                                                     0.11 * hu * limb))
        canvas.paint(thigh | calf, skin, leg_label[side], shade=0.25)
        canvas.dense_paint(thigh, dense_id("upper_leg", side))
        canvas.dense_paint(calf & ~thigh, dense_id("lower_leg", side))
        o = sk.out[side]
        shoe = geometry.ellipse(sk.ankle[side] + np.array([o * 0.06, 0.1]) * hu, 0.17 * hu, 0.12 * hu, o * 12)
        shoe_mask = geometry.polygon_mask(shape, shoe)
        canvas.paint(shoe_mask, look.shoes, shoe_label[side], shade=0.3)
        canvas.dense_paint(shoe_mask, dense_id("foot", side))
        if lower is None and not garment.is_dress and look.bottom in (Bottom.TROUSERS, Bottom.SHORTS):
            end = sk.ankle[side] - np.array([0, 0.05 * hu]) if look.bottom is Bottom.TROUSERS else \
                sk.hip[side] + 0.55 * (sk.knee[side] - sk.hip[side])
            leg = geometry.capsule(sk.hip[side], end, 0.42 * hu * limb, (0.2 if look.bottom is Bottom.TROUSERS else 0.3)
                               * hu * limb)
            canvas.paint(geometry.polygon_mask(shape, leg), bottom, Cihp.PANTS, shade=0.28)
    waist_y, crotch_y = sk.waist_y, sk.crotch_y
    pelvis = geometry.smooth_closed(np.array([
        [sk.centre_x - (body.waist + 0.05) * hu * sk.width_scale, waist_y],
        [sk.centre_x + (body.waist + 0.05) * hu * sk.width_scale, waist_y],
        [sk.hip["b"][0] + 0.38 * hu, sk.mid_hip[1]], [sk.hip["b"][0] + 0.3 * hu, crotch_y],
        [sk.hip["a"][0] - 0.3 * hu, crotch_y], [sk.hip["a"][0] - 0.38 * hu, sk.mid_hip[1]]]), 1)
    pelvis_mask = geometry.polygon_mask(shape, pelvis)
    if lower is not None:  # the lower garment's own fabric, carried from its product photo piece by piece
        template_lower = lower_template(lower, view, shape)
        body_meshes = lower_body_mesh(lower, sk, body)
        pieces = list(zip(template_lower.pieces, body_meshes))
        if len(pieces) == 2 and order == ("b", "a"):
            pieces = pieces[::-1]
        for (piece_mask, source_points, triangles), target_points in pieces:
            warped, _ = geometry.piecewise_affine(
                np.dstack([template_lower.albedo, piece_mask.astype(np.float32)]), source_points, target_points,
                triangles, shape)
            canvas.paint(warped[..., 3] > 0.5, None, lower.label, shade=0.22, reach=0.6 * hu,
                         texture=warped[..., :3])
    elif garment.is_dress:
        pass  # the dress covers the hips (painted with the torso)
    elif look.bottom is Bottom.SKIRT:
        hem_y = max(sk.knee["a"][1], sk.knee["b"][1]) - 0.15 * hu
        flare = max(abs(sk.knee[s][0] - sk.centre_x) for s in "ab") + 0.45 * hu
        skirt = np.array([pelvis[0], pelvis[len(pelvis) // 6], [sk.centre_x + flare, hem_y],
                          [sk.centre_x - flare, hem_y]])
        skirt_mask = geometry.polygon_mask(shape, skirt) | pelvis_mask
        canvas.paint(skirt_mask, bottom, Cihp.SKIRT, shade=0.2)
    else:
        canvas.paint(pelvis_mask, bottom, Cihp.PANTS, shade=0.2)

    # torso skin and neck
    w = sk.width_scale
    torso_outline = geometry.smooth_closed(np.array([
        sk.neck + [-0.3 * hu * w, -0.35 * hu], sk.shoulder["a"] + [-0.1 * hu * w, -0.15 * hu],
        sk.shoulder["a"] + [-0.2 * hu * w, 0.2 * hu], [sk.centre_x - body.chest * hu * w, sk.neck[1] + ARMPIT * hu],
        [sk.centre_x - body.waist * hu * w, sk.neck[1] + 1.6 * hu], sk.hip["a"] + [-0.35 * hu * w, 0],
        sk.hip["b"] + [0.35 * hu * w, 0], [sk.centre_x + body.waist * hu * w, sk.neck[1] + 1.6 * hu],
        [sk.centre_x + body.chest * hu * w, sk.neck[1] + ARMPIT * hu], sk.shoulder["b"] + [0.2 * hu * w, 0.2 * hu],
        sk.shoulder["b"] + [0.1 * hu * w, -0.15 * hu], sk.neck + [0.3 * hu * w, -0.35 * hu]]), 2)
    torso_mask = geometry.polygon_mask(shape, torso_outline)
    neck_poly = np.array([sk.head + [-0.22 * hu, 0.3 * hu], sk.head + [0.22 * hu, 0.3 * hu],
                          sk.neck + [0.3 * hu * w, 0], sk.neck + [-0.3 * hu * w, 0]])
    neck_mask = geometry.polygon_mask(shape, neck_poly)
    canvas.paint(torso_mask | neck_mask, skin * 0.96, Cihp.TORSO_SKIN, shade=0.2)
    canvas.dense_paint(torso_mask | neck_mask, dense_id("torso"))
    paint_garment(torso_warp)

    # arms: skin first, then the sleeves over it, one whole arm after the other
    for side in "ab":
        upper_arm = geometry.polygon_mask(shape, geometry.capsule(sk.shoulder[side], sk.elbow[side], 0.25 * hu * limb,
                                                          0.18 * hu * limb))
        canvas.paint(upper_arm, skin, arm_label[side], shade=0.25)
        canvas.dense_paint(upper_arm, dense_id("upper_arm", side))
        if not sk.forearm_behind[side]:
            paint_forearm(side)
        if side in sleeves:
            paint_garment(sleeves[side][0][0])
        if not sk.forearm_behind[side]:
            paint_lower_sleeve(side)

    # head
    head_mask = geometry.polygon_mask(shape, geometry.ellipse(sk.head, a_x, b_y, person.pose(view).head_tilt))
    ears = [geometry.polygon_mask(shape, geometry.ellipse(sk.head + [sk.out[s] * a_x * 0.98, 0.08 * b_y], 0.1 * hu,
                                                          0.17 * hu))
            for s in "ab"]
    face_mask = head_mask | ears[0] | ears[1]
    canvas.paint(face_mask, skin, Cihp.FACE, shade=0.2)
    canvas.dense_paint(face_mask | neck_mask & ~torso_mask, dense_id("head"))
    if view is View.FRONT:
        _face_details(canvas.rgb, sk, look, skin, person.pose(view).turn)
    cap_centre = sk.head + [0, -0.12 * b_y]
    if look.hair_style is HairStyle.BUZZ:
        cap = geometry.ellipse(cap_centre, a_x * 1.02, b_y * 0.9)
    else:
        cap = geometry.ellipse(cap_centre, a_x * 1.12, b_y * 0.98)
    cap_mask = geometry.polygon_mask(shape, cap)
    if view is View.FRONT:
        face_window = geometry.polygon_mask(shape, geometry.ellipse(sk.head + [0, 0.3 * b_y], a_x * 0.92, b_y * 0.92))
        cap_mask &= ~face_window
        if long_hair:
            for s in "ab":  # strands framing the face
                strand = geometry.capsule(sk.head + [sk.out[s] * a_x * 0.9, -0.1 * b_y],
                                      sk.head + [sk.out[s] * a_x * 1.0, b_y * 1.1], 0.2 * hu, 0.14 * hu)
                cap_mask |= geometry.polygon_mask(shape, strand) & ~face_window
    else:
        cap_mask &= geometry.polygon_mask(shape, geometry.ellipse(sk.head + [0, -0.05 * b_y], a_x * 1.2, b_y * 0.97))
        if long_hair:
            fall = geometry.smooth_closed(np.array([
                sk.head + [-a_x * 1.1, 0], sk.head + [a_x * 1.1, 0],
                [sk.head[0] + a_x * 1.25, hair_drop], [sk.head[0] - a_x * 1.25, hair_drop]]))
            cap_mask |= geometry.polygon_mask(shape, fall)
    if look.hair_style is HairStyle.BUN:
        cap_mask |= geometry.polygon_mask(shape, geometry.ellipse(sk.head + [0, -b_y * 0.95], a_x * 0.5, b_y * 0.35))
    strands = cv2.resize(rng.normal(0, 1, (shape[0] // 16 + 1, shape[1] // 2 + 1)).astype(np.float32),
                         (shape[1], shape[0]))
    hair_texture = np.clip(hair * (1 + 0.12 * strands[..., None]), 0, 1)
    canvas.paint(cap_mask, None, Cihp.HAIR, shade=0.3, texture=hair_texture)

    # 4. light: folds in the garment, shadows cast by the arms, a directional gradient on the person
    rgb = canvas.rgb
    person_mask = canvas.label > 0
    folds = _folds(sk, torso_body, shape, rng)
    rgb[garment_pixels] *= (1 - 0.16 * folds[garment_pixels])[..., None]
    arms = np.isin(canvas.label, [Cihp.LEFT_ARM, Cihp.RIGHT_ARM]) | (garment_pixels & ~torso_warp[..., 3].astype(bool))
    offset = (int(0.08 * hu), int(-look.light * 0.08 * hu))
    cast = cv2.GaussianBlur(np.roll(arms.astype(np.float32), offset, axis=(0, 1)), (0, 0), 0.08 * hu)
    receives = garment_pixels & ~arms
    rgb[receives] *= (1 - 0.25 * cast[receives])[..., None]
    xs = (np.arange(shape[1], dtype=np.float32) - sk.centre_x) / (2.5 * hu)
    gradient = 1 + 0.1 * look.light * np.clip(xs, -1, 1)
    rgb[person_mask] *= gradient[None, :].repeat(shape[0], 0)[person_mask][..., None]

    # 5. output resolution, sensor noise, labels at pixel centres
    image = cv2.resize(np.clip(rgb, 0, 1), (width, height), interpolation=cv2.INTER_AREA)
    image = image + rng.normal(0, 0.008, image.shape).astype(np.float32)
    image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    centre = supersample // 2
    parse = canvas.label[centre::supersample, centre::supersample][:height, :width].copy()
    dense = canvas.dense[centre::supersample, centre::supersample][:height, :width].copy()
    points = keypoints(sk, view, size, rng, supersample)
    return Render(image=image, parse=parse, dense=dense, keypoints=points, person_mask=parse > 0)


def _face_details(rgb: np.ndarray, sk: Skeleton, look, skin: np.ndarray, turn: float) -> None:
    a_x, b_y = sk.head_axes
    shift = np.sign(turn) * abs(turn) * 0.35 * a_x
    centre = sk.head + [shift, 0]
    line = max(int(0.035 * sk.hu), 1)
    eye_colour = tuple(float(c) for c in look.eyes)
    brow = tuple(float(c) for c in np.array(look.hair) * 0.9)
    for s in (-1, 1):
        eye = centre + [s * 0.4 * a_x, 0.05 * b_y]
        cv2.ellipse(rgb, (int(eye[0]), int(eye[1])), (int(0.17 * a_x), int(0.075 * b_y)), 0, 0, 360,
                    (0.95, 0.95, 0.93), -1, cv2.LINE_AA)
        cv2.circle(rgb, (int(eye[0]), int(eye[1])), max(int(0.075 * b_y), 1), eye_colour, -1, cv2.LINE_AA)
        cv2.circle(rgb, (int(eye[0]), int(eye[1])), max(int(0.035 * b_y), 1), (0.05, 0.05, 0.05), -1, cv2.LINE_AA)
        cv2.ellipse(rgb, (int(eye[0]), int(eye[1] - 0.16 * b_y)), (int(0.2 * a_x), int(0.06 * b_y)), 0, 200, 340,
                    brow, line + 1, cv2.LINE_AA)
    nose_top = centre + [0, 0.12 * b_y]
    nose_tip = centre + [0.04 * a_x, 0.42 * b_y]
    shade = tuple(float(c) for c in skin * 0.78)
    cv2.line(rgb, tuple(int(v) for v in nose_top), tuple(int(v) for v in nose_tip), shade, line, cv2.LINE_AA)
    cv2.ellipse(rgb, (int(nose_tip[0]), int(nose_tip[1])), (int(0.12 * a_x), int(0.04 * b_y)), 0, 0, 180, shade,
                line, cv2.LINE_AA)
    mouth = centre + [0, 0.62 * b_y]
    lips = tuple(float(c) for c in np.clip(skin * np.array([0.85, 0.6, 0.6]), 0, 1))
    cv2.ellipse(rgb, (int(mouth[0]), int(mouth[1])), (int(0.3 * a_x), int(0.07 * b_y)), 0, 0, 360, lips, -1,
                cv2.LINE_AA)
    cv2.line(rgb, (int(mouth[0] - 0.3 * a_x), int(mouth[1])), (int(mouth[0] + 0.3 * a_x), int(mouth[1])),
             tuple(float(c) for c in skin * 0.5), max(line // 2, 1), cv2.LINE_AA)
    if look.beard:
        beard = tuple(float(c) for c in np.array(look.hair) * 1.1)
        cv2.ellipse(rgb, (int(centre[0]), int(centre[1] + 0.55 * b_y)), (int(0.7 * a_x), int(0.42 * b_y)), 0, 0, 180,
                    beard, max(int(0.12 * b_y), 1), cv2.LINE_AA)


def _folds(sk: Skeleton, torso_body: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Soft fold lines of a worn garment: drape from the armpits, wrinkles at the waist and at the elbows."""
    hu = sk.hu
    armpit_a, armpit_b = torso_body[5], torso_body[9]
    waist = torso_body[12]
    segments = []
    for armpit in (armpit_a, armpit_b):
        for _ in range(2):
            end = waist + np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.6)]) * hu
            segments.append((armpit + rng.normal(0, 0.1, 2) * hu, end, rng.uniform(0.5, 1.0)))
    for _ in range(3):
        y = torso_body[-5][1] - rng.uniform(0.1, 0.5) * hu
        x = torso_body[-3][0] + rng.uniform(-0.8, 0.8) * hu
        segments.append((np.array([x - 0.4 * hu, y]), np.array([x + 0.4 * hu, y + rng.normal(0, 0.1) * hu]),
                         rng.uniform(0.4, 0.8)))
    for side in "ab":
        elbow = sk.elbow[side]
        direction = geometry.perp(geometry.unit(sk.elbow[side] - sk.shoulder[side]))
        for k in (-1, 1):
            centre = elbow + k * 0.1 * hu * geometry.unit(sk.elbow[side] - sk.shoulder[side])
            segments.append((centre - direction * 0.15 * hu, centre + direction * 0.15 * hu, 0.7))
    return geometry.soft_lines(shape, segments, blur=0.07 * hu)


def render_garment(garment: GarmentSpec, view: View, size: tuple[int, int], supersample: int = 2
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The in-shop photo of ``garment`` seen from ``view``: ``(H, W, 3)`` uint8 and its ``(H, W)`` bool mask."""
    from fitroom.data.synthetic.garment import product_photo

    height, width = size
    shape = (height * supersample, width * supersample)
    template = build_template(garment, View(view), shape)
    image, mask = product_photo(template, np.random.default_rng([garment.seed, View(view).index, 3]))
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    coverage = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), coverage >= 0.5
