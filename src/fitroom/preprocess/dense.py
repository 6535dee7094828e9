"""Dense body-part maps behind one interface, rendered in the DensePose colouring HR-VITON's data uses.

* ``builtin``: a part-index map drawn from the skeleton (head, torso, upper and lower arms, hands, upper and lower
  legs, feet), clipped to the person's silhouette, each part coloured as detectron2's ``dp_segm`` render colours
  its DensePose index (front or back surface by view).
* ``file``: renders made by detectron2 DensePose elsewhere, read from a folder by the photo's file name.

Both return ``(H, W, 3)`` uint8 RGB; :func:`render_to_parts` turns a render back into part indices.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fitroom import imaging
from fitroom.labels import DENSE_COLORMAP, DENSE_PART_BY_VIEW, BodyPart, View
from fitroom.preprocess.backends import DENSE, create_dense_mapper  # noqa: F401  (create_dense_mapper: here too)
from fitroom.preprocess.body import BodyGeometry, box_around

#: drawing order: what is drawn later is in front
_ORDER = (
    BodyPart.LEFT_UPPER_LEG, BodyPart.RIGHT_UPPER_LEG, BodyPart.LEFT_LOWER_LEG, BodyPart.RIGHT_LOWER_LEG,
    BodyPart.LEFT_FOOT, BodyPart.RIGHT_FOOT, BodyPart.TORSO, BodyPart.LEFT_UPPER_ARM, BodyPart.RIGHT_UPPER_ARM,
    BodyPart.LEFT_LOWER_ARM, BodyPart.RIGHT_LOWER_ARM, BodyPart.LEFT_HAND, BodyPart.RIGHT_HAND, BodyPart.HEAD,
)


def parts_to_render(parts: np.ndarray) -> np.ndarray:
    """``(H, W)`` DensePose indices 0..24 -> ``(H, W, 3)`` uint8 render."""
    return DENSE_COLORMAP[parts]


def render_to_parts(render: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` render -> ``(H, W)`` indices, each pixel taking the nearest colour of the colormap (JPEG-safe)."""
    colours = DENSE_COLORMAP.astype(np.int32)
    flat = render.reshape(-1, 3).astype(np.int32)
    distances = ((flat[:, None, :] - colours[None]) ** 2).sum(-1)
    return distances.argmin(1).reshape(render.shape[:2]).astype(np.uint8)


class BuiltinDenseMapper:
    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, view: View = View.FRONT,
                 name: str = "") -> np.ndarray:
        body = BodyGeometry.from_keypoints(keypoints, scale=1.2)
        render = np.zeros((*mask.shape, 3), np.uint8)  # DENSE_COLORMAP[0], the background, is black
        if not mask.any():
            return render
        # every part is cut to the silhouette: worked on the box of the silhouette and the parts' shapes (shapes
        # cut by the box's edge would be drawn a pixel off there)
        y0, y1, x0, x1 = box_around(mask, body, margin=2)
        inside = mask[y0:y1, x0:x1]
        parts = np.zeros(inside.shape, np.uint8)
        for part in _ORDER:
            region = body.mask(inside.shape, part, origin=(x0, y0))
            parts[region] = DENSE_PART_BY_VIEW[part][View(view).surface.index]
        parts[~inside] = 0
        render[y0:y1, x0:x1] = parts_to_render(imaging.fill_nearest(parts, inside & (parts == 0)))
        return render


class FileDenseMapper:
    """Read DensePose renders from ``directory``: the photo's name, or its stem with ``.png`` / ``.jpg``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ValueError(f"dense map folder {self.directory} does not exist")

    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, view: View = View.FRONT,
                 name: str = "") -> np.ndarray:
        stem = Path(name).stem
        for candidate in (name, f"{stem}.png", f"{stem}.jpg"):
            path = self.directory / candidate
            if candidate and path.is_file():
                render = imaging.load_image(path)
                if render.shape[:2] != image.shape[:2]:
                    raise ValueError(f"{path}: the dense map is {render.shape[1]}x{render.shape[0]} but the photo "
                                     f"is {image.shape[1]}x{image.shape[0]}")
                return render
        raise ValueError(f"no dense map for {name!r} in {self.directory} (looked for {stem}.png and {stem}.jpg)")


DENSE.register("builtin")(BuiltinDenseMapper)
DENSE.register("file")(FileDenseMapper)
