"""Pose transfer: the person of a photo, seen from another view or in another pose (Leffa's second use of the two
UNets).

The reference UNet sees the person's photo (where a try-on shows it the garment); the generative UNet draws the
target pose given as a DensePose render. The target comes either from another photo (its dense map, from the same
preprocessing as a try-on) or from the person's own skeleton turned to the asked view (:func:`turn_keypoints`,
:func:`drawn_dense`).

What is regenerated depends on the model folder (``parts.json``'s ``mask``): ``whole``, the whole picture, as the
published ``pose_transfer.pth`` was trained; ``person``, the area of the person in the photo and in the target pose,
grown by a margin, the background kept bit for bit (what fitroom's ``pose_transfer`` training stage learns).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from fitroom import imaging
from fitroom.engines.diffusion import LeffaRunner
from fitroom.errors import InputError
from fitroom.labels import Body25, View
from fitroom.preprocess.body import BodyGeometry
from fitroom.preprocess.dense import BuiltinDenseMapper

#: joints only seen from the front: a back view has no nose or eyes
FACE_JOINTS = (Body25.NOSE, Body25.R_EYE, Body25.L_EYE)
#: how much of the body's width a side view keeps
SIDE_WIDTH = 0.35
#: how far the regenerated area reaches beyond the person, as a share of the picture's height
MARGIN = 0.03


def _centre_x(keypoints: np.ndarray) -> float:
    seen = [j for j in (Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP) if keypoints[j, 2] > 0]
    if not seen:
        raise InputError("the person's shoulders and hips were not found, so the pose cannot be turned")
    return float(np.mean(keypoints[seen, 0]))


def turn_keypoints(keypoints: np.ndarray, source: View, target: View) -> np.ndarray:
    """The BODY_25 skeleton ``(25, 3)`` of a photo seen from ``source``, as seen from ``target`` (same size).

    From the front to the back (or back), every joint is mirrored about the body's vertical axis, so each joint keeps
    its own side (the person's left moves to the image's left); the face's joints are hidden from behind and placed
    between the ears when turning to the front. A side view keeps ``SIDE_WIDTH`` of the body's width, the face
    turned the way the person faces.
    """
    k = np.asarray(keypoints, np.float32).copy()
    source, target = View(source), View(target)
    centre = _centre_x(k)
    if source.surface is not target.surface:
        k[:, 0] = np.where(k[:, 2] > 0, 2 * centre - k[:, 0], k[:, 0])
    if target.surface is View.BACK:
        k[list(FACE_JOINTS), 2] = 0.0
    elif source.surface is View.BACK:
        ears = [j for j in (Body25.R_EAR, Body25.L_EAR) if k[j, 2] > 0]
        if ears and k[Body25.NOSE, 2] == 0:
            middle = k[ears, :2].mean(0)
            k[Body25.NOSE] = (middle[0], middle[1] + 0.02 * k.shape[0], 0.5)
    if target in (View.SIDE_LEFT, View.SIDE_RIGHT):
        seen = k[:, 2] > 0
        k[seen, 0] = centre + (k[seen, 0] - centre) * SIDE_WIDTH
        # seen from its left side a person faces the image's left; from the right side, its right
        facing = -1.0 if target is View.SIDE_LEFT else 1.0
        head = [j for j in (Body25.NOSE, Body25.R_EYE, Body25.L_EYE) if k[j, 2] > 0]
        shoulder = abs(float(k[Body25.L_SHOULDER, 0] - k[Body25.R_SHOULDER, 0])) / SIDE_WIDTH
        k[head, 0] += facing * 0.15 * shoulder
    return k


def body_silhouette(keypoints: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the union of every body part drawn from the skeleton (a stand-in silhouette where there is
    no photo of the pose)."""
    body = BodyGeometry.from_keypoints(keypoints, scale=1.1)
    silhouette = np.zeros(shape, bool)
    for part in body.parts:  # part by part: polygons filled together leave their overlaps out
        silhouette |= body.mask(shape, part)
    return silhouette


def drawn_dense(keypoints: np.ndarray, shape: tuple[int, int], view: View) -> np.ndarray:
    """``(H, W, 3)`` uint8: the DensePose render of a skeleton with no photo, as the builtin dense backend draws it
    (the part colours of ``view``'s surface), inside :func:`body_silhouette`."""
    image = np.zeros((*shape, 3), np.uint8)
    return BuiltinDenseMapper()(image, keypoints, body_silhouette(keypoints, shape), View(view))


def regenerated_area(person_mask: np.ndarray, target_dense: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """``(H, W)`` bool: the person of the photo and the body of the target pose, grown by ``margin`` of the height."""
    body = np.asarray(target_dense).max(-1) > 0
    return imaging.dilate(person_mask.astype(bool) | body, max(1, round(margin * person_mask.shape[0])))


@dataclass
class PoseResult:
    """The person in the target pose ``(H, W, 3)`` uint8 at the photo's size, the regenerated area ``(H, W)`` bool,
    and seconds per stage."""

    image: np.ndarray
    mask: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


class PoseTransfer(LeffaRunner):
    """Leffa pose transfer from a model folder (see :class:`~fitroom.engines.diffusion.LeffaRunner` for the options:
    steps, guidance, seed, scheduler, size, reference_once, device, progress, precision)."""

    task = "pose"
    purpose = "pose transfer"
    missing_checkpoint = ("pose transfer needs a model folder (--checkpoint DIR): train one with `fitroom train "
                          "pose_transfer` on front and back photos of the same people, or convert the published "
                          "pose_transfer.pth with `fitroom convert leffa --checkpoint pose_transfer.pth --base "
                          "stable-diffusion-xl-1.0-inpainting-0.1 --out DIR`")

    @torch.no_grad()
    def __call__(self, person: np.ndarray, person_mask: np.ndarray, target_dense: np.ndarray) -> PoseResult:
        """The person of ``person`` ``(H, W, 3)`` uint8 (their silhouette ``person_mask`` ``(H, W)`` bool) in the
        pose of ``target_dense`` ``(H', W', 3)`` (resized to the photo by nearest neighbour)."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        size = person.shape[:2]
        if target_dense.shape[:2] != size:
            target_dense = imaging.resize(target_dense, size, "labels")
        if self.meta["mask"] == "whole":
            mask = np.ones(size, bool)
        else:
            mask = regenerated_area(person_mask, target_dense)
        photo = imaging.image_to_tensor(imaging.resize(person, self.size, "image"))[None]
        dense = imaging.image_to_tensor(imaging.resize(target_dense, self.size, "labels"))[None]
        pixel_mask = torch.from_numpy(imaging.resize(mask, self.size, "mask")).float()[None, None]
        timings["inputs"] = time.perf_counter() - clock
        decoded = self.generate(photo * (pixel_mask < 0.5), pixel_mask, dense, photo, timings)
        clock = time.perf_counter()
        image = imaging.resize(imaging.tensor_to_image(decoded[0]), size, "image")
        image = np.where(mask[..., None], image, person)  # the background outside the area is the photo's own
        timings["decode"] += time.perf_counter() - clock
        return PoseResult(image=image, mask=mask, timings=timings)
