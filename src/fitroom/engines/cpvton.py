"""The ``cpvton`` engine: CP-VTON's inference (GMM warp, then TOM composition) from ``TryOnInputs``.

The models run at the GMM's size (256x192 as published); inputs are resized to it and the result back to the
photo's size. The person representation needs the parse and the keypoints (the preprocessing makes them).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from fitroom import imaging
from fitroom.engines import register_engine
from fitroom.errors import ConfigurationError
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import GarmentCategory
from fitroom.models.cpvton import GMM, TOM, cpvton_inputs, gmm_warp
from fitroom.models.io import load_parts, part_categories


@register_engine("cpvton")
class CpvtonEngine:
    """CP-VTON try-on.

    Args:
        checkpoint: a folder with ``gmm/`` and ``tom/`` model folders (``fitroom train tom`` writes one as
            ``RUN/cpvton``).
        gmm, tom: already built modules instead of a checkpoint.
        device: where to run.
    """

    #: what it tries on: the one category its networks were trained on (``fitroom train gmm categories=...``;
    #: tops for VITON's and older checkpoints)
    categories = frozenset({GarmentCategory.UPPER})

    @staticmethod
    def checkpoint_categories(checkpoint: str | Path) -> frozenset[GarmentCategory] | None:
        """The categories the networks in ``checkpoint`` were trained on (None: no such networks there)."""
        trained = part_categories(checkpoint, ("gmm", "tom"))
        return None if trained is None else frozenset(GarmentCategory(c) for c in trained)

    def __init__(self, checkpoint: str | Path | None = None, gmm: GMM | None = None, tom: TOM | None = None,
                 device: str = "cpu") -> None:
        if checkpoint is not None:
            parts = load_parts(checkpoint, ("gmm", "tom"), "the cpvton engine needs a checkpoint folder with gmm/ "
                               "and tom/, made by `fitroom train gmm` then `fitroom train tom` (RUN/cpvton)")
            gmm, tom = parts["gmm"], parts["tom"]
        if gmm is None or tom is None:
            raise ConfigurationError("the cpvton engine needs a checkpoint folder (--checkpoint DIR, or "
                                     "FITROOM_CHECKPOINT for the service) with gmm/ and tom/, made by `fitroom train "
                                     "gmm` then `fitroom train tom`")
        self.device = torch.device(device)
        self.gmm = gmm.to(self.device).eval()
        self.tom = tom.to(self.device).eval()
        self.size = tuple(self.gmm.config.size)
        trained = set(self.gmm.config.categories) & set(self.tom.config.categories)
        if not trained:
            raise ConfigurationError(f"the GMM was trained on {', '.join(self.gmm.config.categories)} and the TOM on "
                                     f"{', '.join(self.tom.config.categories)}: a checkpoint needs both of one "
                                     f"category")
        self.categories = frozenset(GarmentCategory(c) for c in trained)

    @torch.no_grad()
    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        start = time.perf_counter()
        for field in ("garment", "garment_mask", "parse", "keypoints"):
            if getattr(inputs, field) is None:
                raise InputsError(f"the cpvton engine needs {field} (the preprocessing makes it)")
        if inputs.category not in self.categories:
            raise InputsError(f"this cpvton checkpoint was trained on {_nouns(self.categories)}, not on "
                              f"{inputs.category.value} garments")
        tensors = {k: v[None].to(self.device) for k, v in inputs.to_tensors(self.size).items()}
        x = cpvton_inputs(tensors)
        warped, warped_mask = gmm_warp(self.gmm, x)
        try_on, _, _ = self.tom(x["representation"], warped)
        size = inputs.size
        image = inputs.restore_kept(imaging.resize(imaging.tensor_to_image(try_on[0].float().cpu()), size, "image"))
        warped_image = imaging.resize(imaging.tensor_to_image(warped[0].float().cpu()), size, "image")
        mask = imaging.resize(warped_mask[0, 0].cpu().numpy() > 0.5, size, "mask")
        return TryOnResult(image=image, engine="cpvton", warped_garment=warped_image, warped_mask=mask,
                           timings={"total": time.perf_counter() - start})


def _nouns(categories) -> str:
    return " and ".join(c.value for c in GarmentCategory if c in categories)
