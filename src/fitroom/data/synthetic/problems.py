"""A labelled set of problem photos: people rendered with one known defect each, for calibrating photo checks.

Defects (the causes of bad try-on results that the Virton team lists): ``blur``, ``dark``, ``bright``,
``second_person``, ``cropped`` (cut off above the knees), ``crossed_arms``, ``crossed_legs``, ``low_contrast``
(person colours close to the background), ``sideways`` (body turned to the side), ``back_view`` (back to the
camera, for a front try-on), ``monochrome`` (top and bottom of one colour), and ``clean`` photos as negatives.
``labels.csv`` names each photo's defect and the parameter that made it.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.synthetic.render import render_person
from fitroom.data.synthetic.spec import ArmPose, LegPose, sample_spec, with_pose
from fitroom.labels import View

logger = logging.getLogger(__name__)

DEFECTS = ("clean", "blur", "dark", "bright", "second_person", "cropped", "crossed_arms", "crossed_legs",
           "low_contrast", "sideways", "back_view", "monochrome")


def render_problem(seed: int, index: int, defect: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Render photo ``index`` with ``defect``; returns the ``(H, W, 3)`` uint8 image and the defect's parameter."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; choose from {DEFECTS}")
    rng = np.random.default_rng([seed, index, 99])
    spec = sample_spec(seed + 1_000_003, index, allow_crossed=False)
    person, garment, view = spec.person, spec.garment, View.FRONT
    detail = ""
    if defect == "crossed_arms":
        person = with_pose(person, view, arm_a=ArmPose.CROSSED, arm_b=ArmPose.CROSSED,
                           arm_a_angles=(0.5, float(rng.uniform(0, 1))), arm_b_angles=(0.5, float(rng.uniform(0, 1))))
    elif defect == "crossed_legs":
        person = with_pose(person, view, legs=LegPose.CROSSED)
    elif defect == "sideways":
        turn = float(rng.uniform(0.85, 1.0)) * float(rng.choice([-1, 1]))
        person = with_pose(person, view, turn=turn)
        detail = f"turn={turn:.2f}"
    elif defect == "back_view":
        view = View.BACK
    elif defect == "monochrome":
        look = replace(person.look, bottom_colour=garment.colour)
        garment = replace(garment, pattern=type(garment.pattern)("solid"), front_graphic=type(garment.front_graphic)(
            "none"))
        person = replace(person, look=look)
        detail = "top and bottom one colour"
    elif defect == "low_contrast":
        colour = np.array(garment.colour)
        near = tuple(tuple(float(c) for c in np.clip(colour + rng.normal(0, 0.03, 3), 0, 1)) for _ in range(2))
        look = replace(person.look, background_colours=near, bottom_colour=near[1],
                       background=type(person.look.background)("studio"))
        person = replace(person, look=look)
        detail = "background≈garment"
    render = render_person(person, garment, view, size)
    image = render.image
    height, width = size
    if defect == "blur":
        sigma = float(rng.uniform(0.006, 0.014) * height)
        image = cv2.GaussianBlur(image, (0, 0), sigma)
        detail = f"sigma={sigma:.1f}px"
    elif defect == "dark":
        gain = float(rng.uniform(0.12, 0.3))
        image = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        detail = f"gain={gain:.2f}"
    elif defect == "bright":
        gain = float(rng.uniform(1.9, 2.8))
        image = np.clip(image.astype(np.float32) * gain + 40, 0, 255).astype(np.uint8)
        detail = f"gain={gain:.2f}"
    elif defect == "second_person":
        other = sample_spec(seed + 2_000_003, index, allow_crossed=False)
        other_person = with_pose(other.person, View.FRONT, centre_x=float(rng.choice([0.12, 0.88])),
                                 feet_y=float(rng.uniform(0.9, 0.99)))
        second = render_person(other_person, other.garment, View.FRONT, size)
        keep = second.person_mask & ~render.person_mask
        image = image.copy()
        image[keep] = second.image[keep]
        detail = f"second at x={other_person.pose(View.FRONT).centre_x:.2f}"
    elif defect == "cropped":
        knee_y = float(render.keypoints[10, 1] if render.keypoints[10, 2] > 0 else 0.7 * height)
        bottom = int(knee_y - rng.uniform(0.02, 0.08) * height)
        top = 0
        crop_height = bottom - top
        crop_width = int(crop_height * width / height)
        centre = int(render.keypoints[1, 0])
        left = int(np.clip(centre - crop_width // 2, 0, width - crop_width))
        image = imaging.resize(image[top:bottom, left:left + crop_width], size, "image")
        detail = f"cut at y={bottom / height:.2f}"
    return image, detail


def write_problem_set(out: Path, count: int, size: tuple[int, int] = (512, 384), seed: int = 0,
                      progress: bool = True) -> Path:
    """Write ``count`` photos (defects in turn) and ``labels.csv`` under ``out``; returns the labels file."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in tqdm(range(count), desc="problem photos", disable=not progress):
        defect = DEFECTS[index % len(DEFECTS)]
        image, detail = render_problem(seed, index, defect, size)
        name = f"{index:05d}_{defect}.jpg"
        imaging.save_image(out / name, image)
        rows.append({"file": name, "defect": defect, "detail": detail})
    labels = out / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "defect", "detail"])
        writer.writeheader()
        writer.writerows(rows)
    logger.info("wrote %d problem photos to %s", count, out)
    return labels
