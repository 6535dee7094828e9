"""LPIPS, FID and KID with published backbones read from the weights cache.

* :class:`LPIPS`: the ``lpips`` package's AlexNet-lin v0.1 (its linear layers ship inside the wheel); the AlexNet
  backbone is torchvision's ``alexnet-owt-7be5be79.pth`` from the cache (``fitroom weights fetch alexnet``).
  Inputs in [0, 1] are mapped to [-1, 1] as LPIPS expects; ``size`` resizes both images first (HR-VITON's
  evaluation used 128x128).
* :class:`FeatureDistances`: FID and KID (torchmetrics) on the 2048-d pool features of torch-fidelity's
  Inception-v3 (``weights-inception-2015-12-05-6726825d.pth``, the TensorFlow FID graph ported; inputs as 8-bit
  RGB, resized to 299x299 inside the network). Features are computed once and shared by both metrics. KID: the
  cubic polynomial kernel ``(x.y / d + 1)^3``, unbiased MMD^2 over ``subsets`` random subsets of
  ``min(subset_size, n)`` samples, seeded; reported x1000 with its standard deviation over subsets.

Every weight file is opened with ``torch.load(weights_only=True)`` before use; a missing file raises
:class:`MetricUnavailable` naming it and the command that provides it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fitroom.errors import SetupError
from fitroom.weights import entry, find, verify, weights_dir


class MetricUnavailable(SetupError, RuntimeError):
    """A metric cannot be computed here; the message says which file is missing and how to get it."""


def weight_file(name: str, path: str | Path | None, metric: str) -> Path:
    """The local file of published weight ``name`` (``path`` if given), checked, or :class:`MetricUnavailable`."""
    known = entry(name)
    resolved = Path(path) if path else find(name)
    if resolved is None or not resolved.is_file():
        raise MetricUnavailable(
            f"{metric} unavailable: {known.filename} ({known.used_by}) is not in {weights_dir()}. Run `fitroom "
            f"weights fetch {name}` where {known.source} can be reached, or download it elsewhere and run `fitroom "
            f"weights import {name} PATH/{known.filename}`")
    if path is None:
        verify(known, resolved)
    return resolved


#: torchvision AlexNet ``features`` index -> LPIPS slice
_ALEX_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


class LPIPS(nn.Module):
    """LPIPS AlexNet-lin v0.1. ``forward(prediction, target)``: ``(B, 3, H, W)`` in [0, 1] -> ``(B,)``.

    Args:
        backbone: the torchvision AlexNet weights file (default: ``alexnet`` from the weights cache).
        size: resize both images to ``(H, W)`` first (``(128, 128)`` reproduces HR-VITON's evaluation).
    """

    def __init__(self, backbone: str | Path | None = None, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        import lpips

        self.path = path = weight_file("alexnet", backbone, "LPIPS")
        state = torch.load(path, map_location="cpu", weights_only=True)
        # the backbone is left random here (no download) and replaced by the cached published weights below;
        # lpips still calls torchvision's deprecated `pretrained=` argument, whose warnings say nothing to users
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        features = {}
        for key, value in state.items():
            if key.startswith("features."):
                index, parameter = key.split(".")[1:]
                features[f"slice{_ALEX_SLICES[int(index)]}.{index}.{parameter}"] = value
        try:
            self.model.net.load_state_dict(features, strict=True)
        except RuntimeError as error:
            raise ValueError(f"{path} is not torchvision's AlexNet weights: {error}") from None
        self.model.eval().requires_grad_(False)
        self.size = size

    @torch.no_grad()
    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape or prediction.ndim != 4 or prediction.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) images, got {tuple(prediction.shape)}, {tuple(target.shape)}")
        if self.size is not None:
            prediction = F.interpolate(prediction, size=self.size, mode="bilinear", antialias=True)
            target = F.interpolate(target, size=self.size, mode="bilinear", antialias=True)
        return self.model(prediction * 2 - 1, target * 2 - 1, normalize=False).flatten()


class InceptionFeatures(nn.Module):
    """torch-fidelity's Inception-v3 (FID graph): ``(B, 3, H, W)`` in [0, 1] -> ``(B, 2048)`` pool features."""

    num_features = 2048

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        self.path = path = weight_file("inception-fid", weights, "FID and KID")
        torch.load(path, map_location="cpu", weights_only=True)  # tensors only, before torch-fidelity opens it
        self.model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                 feature_extractor_weights_path=str(path))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        eight_bit = (images.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.model(eight_bit)[0].reshape(len(images), -1)


class _Given(nn.Module):
    """Passes already computed features through (the metrics' "feature extractor")."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class FeatureDistances:
    """FID and KID between real and generated images.

    ``add(images, real)`` with ``(B, 3, H, W)`` in [0, 1] (or ``add_features`` with ``(B, D)``), then
    ``compute()`` -> ``{"fid", "kid_x1000", "kid_std_x1000", "n_real", "n_fake", "kid_subset_size"}``.
    """

    def __init__(self, extractor: nn.Module | None = None, weights: str | Path | None = None,
                 kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> None:
        self.extractor = extractor if extractor is not None else InceptionFeatures(weights)
        self.kid_subsets, self.kid_subset_size, self.seed = kid_subsets, kid_subset_size, seed
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []

    def add(self, images: torch.Tensor, real: bool) -> None:
        self.add_features(self.extractor(images), real)

    def add_features(self, features: torch.Tensor, real: bool) -> None:
        (self.real if real else self.fake).append(features.detach().double().cpu())

    def compute(self) -> dict:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        real, fake = torch.cat(self.real), torch.cat(self.fake)
        if len(real) < 2 or len(fake) < 2:
            raise ValueError(f"FID and KID need at least 2 real and 2 generated images, got {len(real)} and "
                             f"{len(fake)}")
        size = min(self.kid_subset_size, len(real), len(fake))
        given = _Given(real.shape[1])
        fid = FrechetInceptionDistance(feature=given, reset_real_features=True)
        with warnings.catch_warnings():  # "will save all extracted features": they are already held here
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=given, subsets=self.kid_subsets, subset_size=size)
        for metric in (fid, kid):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            kid_mean, kid_std = kid.compute()
        return {"fid": float(fid.compute()), "kid_x1000": float(kid_mean) * 1000,
                "kid_std_x1000": float(kid_std) * 1000,
                "n_real": len(real), "n_fake": len(fake), "kid_subset_size": size}
