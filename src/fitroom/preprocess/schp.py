"""The ``schp`` parser backend: the published SCHP checkpoints (LIP 20 classes, ATR 18) on a local file.

The files are not downloadable here; get them from the SCHP repository's model zoo and place them in the weights
folder (``fitroom env`` shows it) or pass ``weights=PATH``. Loading is strict: a file whose keys or shapes do not
match the published layout is refused with the differences listed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fitroom.labels import ATR_TO_CIHP, LIP_TO_CIHP, View
from fitroom.models.io import load_pretrained
from fitroom.models.schp import BGR_MEAN, BGR_STD, INPUT_SIZE
from fitroom.models.schp_convert import load_schp_checkpoint
from fitroom.preprocess.backends import PARSERS
from fitroom.weights import entry, find, weights_dir

__all__ = ["SchpParser", "load_schp_checkpoint"]

logger = logging.getLogger(__name__)

REMAP = {"lip": LIP_TO_CIHP, "atr": ATR_TO_CIHP}


@PARSERS.register("schp")
class SchpParser:
    """Human parsing with a released SCHP network, labels remapped to CIHP.

    Args:
        weights: the released checkpoint's path (default: the weights folder's ``exp-schp-*-{dataset}.pth``), or a
            model folder made from it by ``fitroom convert schp``.
        dataset: ``"lip"`` or ``"atr"``.
        model: an already loaded network (tests inject a tiny one).
    """

    def __init__(self, weights: str | Path | None = None, dataset: str = "lip",
                 model: torch.nn.Module | None = None) -> None:
        if dataset not in REMAP:
            raise ValueError(f"dataset must be 'lip' or 'atr', got {dataset!r}")
        self.dataset = dataset
        if model is None:
            if weights is None:
                weights = find(f"schp-{dataset}") or weights_dir() / entry(f"schp-{dataset}").filename
            converted = Path(weights).is_dir() and (Path(weights) / "config.json").is_file()
            model = load_pretrained(weights) if converted else load_schp_checkpoint(weights, dataset)
        self.model = model.eval()
        self.input_size = INPUT_SIZE[dataset]

    @torch.no_grad()
    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray,
                 view: View = View.FRONT, face: np.ndarray | None = None) -> np.ndarray:
        """``face`` is not used: the network finds the face itself."""
        height, width = image.shape[:2]
        # a square crop around the person (10 % margin), as SCHP's own inference centres the person
        ys, xs = np.nonzero(mask)
        if len(xs):
            centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2])
            side = 1.1 * max(xs.max() - xs.min(), ys.max() - ys.min())
        else:
            centre, side = np.array([width / 2, height / 2]), float(max(height, width))
        size_h, size_w = self.input_size
        scale = size_w / side
        forward = np.array([[scale, 0, size_w / 2 - scale * centre[0]], [0, scale, size_h / 2 - scale * centre[1]]])
        crop = cv2.warpAffine(image, forward, (size_w, size_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        bgr = torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0
        bgr = (bgr - torch.tensor(BGR_MEAN)[:, None, None]) / torch.tensor(BGR_STD)[:, None, None]
        logits = self.model(bgr[None]).fusion
        logits = F.interpolate(logits, size=(size_h, size_w), mode="bilinear", align_corners=True)
        labels = logits[0].argmax(0).byte().numpy()
        back = cv2.warpAffine(labels, cv2.invertAffineTransform(forward), (width, height), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return REMAP[self.dataset][back]
