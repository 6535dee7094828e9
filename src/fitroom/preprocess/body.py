"""Body-part shapes from BODY_25 keypoints, shared by the built-in parser and the built-in dense mapper.

Sizes are fractions of the shoulder width (the distance between the shoulder joints), the one length every
usable try-on photo shows. A part whose joints were not detected is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitroom import geometry
from fitroom.labels import BodyPart, Body25
from fitroom.preprocess.errors import MissingBodyPartError

#: part radii as fractions of the shoulder width (measured on the synthetic renders' proportions)
RADIUS = {
    "upper_arm": (0.15, 0.11), "lower_arm": (0.11, 0.075), "hand": (0.09, 0.09),
    "upper_leg": (0.21, 0.13), "lower_leg": (0.13, 0.07), "foot": (0.08, 0.08),
}


def _present(keypoints: np.ndarray, *joints: int) -> bool:
    return all(keypoints[j, 2] > 0 for j in joints)


@dataclass
class BodyGeometry:
    """Polygons of each body part in photo pixels, and the measures they were built from."""

    shoulder_width: float
    head_centre: np.ndarray
    head_axes: tuple[float, float]
    parts: dict[BodyPart, list[np.ndarray]]
    keypoints: np.ndarray

    @classmethod
    def from_keypoints(cls, keypoints: np.ndarray, scale: float = 1.0) -> "BodyGeometry":
        """Build part polygons; ``scale`` widens every part (a margin for clipping to a silhouette)."""
        k = np.asarray(keypoints, dtype=np.float64)
        if not _present(k, Body25.R_SHOULDER, Body25.L_SHOULDER):
            raise MissingBodyPartError("shoulders")
        p = k[:, :2]
        width = float(np.linalg.norm(p[Body25.L_SHOULDER] - p[Body25.R_SHOULDER]))
        width = max(width, 4.0)
        neck = p[Body25.NECK] if _present(k, Body25.NECK) else (p[Body25.L_SHOULDER] + p[Body25.R_SHOULDER]) / 2

        # head: from the ears when both are seen, else from the nose, else above the neck
        if _present(k, Body25.L_EAR, Body25.R_EAR):
            ears = (p[Body25.L_EAR] + p[Body25.R_EAR]) / 2
            half = max(float(np.linalg.norm(p[Body25.L_EAR] - p[Body25.R_EAR])) / 2 * 1.05, 0.18 * width)
            centre = ears - np.array([0, 0.08 * half])
        elif _present(k, Body25.NOSE):
            half = 0.22 * width
            centre = p[Body25.NOSE] - np.array([0, 0.3 * half])
        else:
            half = 0.22 * width
            centre = neck - np.array([0, 2.2 * half])
        axes = (half * scale, half * 1.32 * scale)

        parts: dict[BodyPart, list[np.ndarray]] = {BodyPart.HEAD: [geometry.ellipse(centre, *axes)]}
        shoulders = (p[Body25.R_SHOULDER], p[Body25.L_SHOULDER])
        hips_present = _present(k, Body25.R_HIP, Body25.L_HIP)
        if hips_present:
            right_hip, left_hip = p[Body25.R_HIP], p[Body25.L_HIP]
            out = geometry.unit(shoulders[1] - shoulders[0])
            down = geometry.unit((right_hip + left_hip) / 2 - neck)
            margin = 0.12 * width * scale
            torso = np.array([
                shoulders[0] - out * margin - down * margin, shoulders[1] + out * margin - down * margin,
                left_hip + out * (0.3 * width * scale) + down * 0.1 * width,
                right_hip - out * (0.3 * width * scale) + down * 0.1 * width])
            parts[BodyPart.TORSO] = [torso]
        else:
            down = np.array([0.0, 1.0])
            parts[BodyPart.TORSO] = [geometry.capsule(neck, neck + down * 1.2 * width, 0.55 * width, 0.5 * width)]
        parts[BodyPart.TORSO].append(geometry.capsule(neck, (centre + neck) / 2, 0.12 * width * scale,
                                                      0.1 * width * scale))

        def limb(part: BodyPart, kind: str, a: int, b: int, extend: float = 0.0) -> None:
            if not _present(k, a, b):
                return
            start, end = p[a], p[b]
            if extend:
                start, end = end, end + (end - start) * extend
            r0, r1 = (r * width * scale for r in RADIUS[kind])
            parts.setdefault(part, []).append(geometry.capsule(start, end, r0, r1))

        for side, joints in (("right", (Body25.R_SHOULDER, Body25.R_ELBOW, Body25.R_WRIST, Body25.R_HIP,
                                        Body25.R_KNEE, Body25.R_ANKLE, Body25.R_BIG_TOE, Body25.R_HEEL)),
                             ("left", (Body25.L_SHOULDER, Body25.L_ELBOW, Body25.L_WRIST, Body25.L_HIP,
                                       Body25.L_KNEE, Body25.L_ANKLE, Body25.L_BIG_TOE, Body25.L_HEEL))):
            shoulder, elbow, wrist, hip, knee, ankle, toe, heel = joints
            limb(BodyPart(f"{side}_upper_arm"), "upper_arm", shoulder, elbow)
            limb(BodyPart(f"{side}_lower_arm"), "lower_arm", elbow, wrist)
            limb(BodyPart(f"{side}_hand"), "hand", elbow, wrist, extend=0.4)
            limb(BodyPart(f"{side}_upper_leg"), "upper_leg", hip, knee)
            limb(BodyPart(f"{side}_lower_leg"), "lower_leg", knee, ankle)
            limb(BodyPart(f"{side}_foot"), "foot", ankle, toe)
            limb(BodyPart(f"{side}_foot"), "foot", ankle, heel)
        return cls(shoulder_width=width, head_centre=centre, head_axes=axes, parts=parts, keypoints=k)

    def mask(self, shape: tuple[int, int], *parts: BodyPart, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The union of ``parts`` as an ``(H, W)`` bool mask whose top left is the photo's pixel ``origin``
        ``(x, y)`` (the photo's own frame by default)."""
        polygons = [polygon for part in parts for polygon in self.parts.get(part, [])]
        if not polygons:
            return np.zeros(shape, bool)
        return geometry.polygon_mask(shape, *polygons, origin=origin)

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the box of every part's polygon, in photo pixels (may reach outside the photo)."""
        points = np.concatenate([polygon for polygons in self.parts.values() for polygon in polygons])
        return (*points.min(axis=0), *points.max(axis=0))


def box_around(mask: np.ndarray, *bodies: BodyGeometry, margin: int) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the box around the silhouette ``mask`` ``(H, W)`` bool and every part of ``bodies``
    (their shapes reach past the silhouette), grown by ``margin`` pixels and cut to the photo; None when empty.
    Work on a silhouette done in it, with the shapes drawn at their place (``BodyGeometry.mask(origin=)``), gives
    the whole photo's pixels: no shape is cut by the box's edge."""
    height, width = mask.shape
    boxes = [body.bounds() for body in bodies]
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows):
        boxes.append((cols[0], rows[0], cols[-1], rows[-1]))
    if not boxes:
        return None
    x0, y0 = np.min(boxes, axis=0)[:2]
    x1, y1 = np.max(boxes, axis=0)[2:]
    top, left = max(int(np.floor(y0)) - margin, 0), max(int(np.floor(x0)) - margin, 0)
    bottom, right = min(int(np.ceil(y1)) + margin + 1, height), min(int(np.ceil(x1)) + margin + 1, width)
    return None if bottom <= top or right <= left else (top, bottom, left, right)
