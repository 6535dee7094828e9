"""Losses of HR-VITON's two stages, with the reference weights (``shared/reference/hrviton`` section 2.5).

* :class:`VGGPerceptualLoss`: L1 between VGG19 features at relu1_1..relu5_1, weights 1/32, 1/16, 1/8, 1/4, 1.
  The torchvision weights are read from a local file (``vgg19-dcbb9e9d.pth``; no download here); a missing file
  is an error naming it. Images in [-1, 1] are mapped to ImageNet's normalisation first (fitroom's choice: the
  torchvision weights were trained on it).
* LSGAN (the condition stage) and hinge (the image stage) adversarial losses, discriminator feature matching.
* Total variation of a flow, and pixel-wise cross-entropy of the layout.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fitroom.errors import MissingWeightsError
from fitroom.weights import entry, find, weights_dir

VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
#: torchvision vgg19.features slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: the reference's loss weights
CONDITION_WEIGHTS = {"l1_mask": 10.0, "vgg": 1.0, "tv": 2.0, "ce": 10.0, "gan": 1.0}
GENERATOR_WEIGHTS = {"gan": 1.0, "feature_matching": 10.0, "vgg": 10.0}


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 feature maps of two ``(B, 3, H, W)`` images in [-1, 1]."""

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        path = Path(weights_path) if weights_path else find("vgg19")
        if path is None or not Path(path).is_file():
            known = entry("vgg19")
            raise MissingWeightsError(
                f"VGG19 weights not found ({path or weights_dir() / known.filename}): run "
                f"`fitroom weights fetch vgg19` "
                f"(or download {known.filename} from {known.source} and run `fitroom weights import vgg19 FILE`), or "
                f"train without the perceptual loss: --set loss_weights.vgg=0")
        network = vgg19(weights=None)
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state, strict=True)
        features = network.features.eval()
        self.slices = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)]) for a, b in VGG_SLICES)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None])
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None])

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected two (B, 3, H, W) images of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
        x = ((x + 1) / 2 - self.mean) / self.std
        y = ((y + 1) / 2 - self.mean) / self.std
        loss = x.new_zeros(())
        for weight, block in zip(VGG_LAYER_WEIGHTS, self.slices):
            x, y = block(x), block(y)
            loss = loss + weight * F.l1_loss(x, y.detach())
        return loss


def lsgan_loss(prediction: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss over every scale's patch map (the last feature of each)."""
    target = 1.0 if real else 0.0
    return sum(F.mse_loss(scale[-1], torch.full_like(scale[-1], target)) for scale in prediction) / len(prediction)


def hinge_loss(prediction: list[list[torch.Tensor]], real: bool, for_discriminator: bool) -> torch.Tensor:
    """Hinge GAN loss: for the discriminator ``relu(1 - D)`` / ``relu(1 + D)``, for the generator ``-D``."""
    losses = []
    for scale in prediction:
        patch = scale[-1]
        if for_discriminator:
            losses.append(F.relu(1 - patch).mean() if real else F.relu(1 + patch).mean())
        else:
            losses.append(-patch.mean())
    return sum(losses) / len(losses)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminator's intermediate features on fake and real inputs, averaged over scales."""
    loss = fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake, real):
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            loss = loss + F.l1_loss(f, r.detach())
    return loss / len(fake)


def total_variation(flow: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring flow vectors; ``flow`` is ``(B, H, W, 2)``."""
    return (flow[:, 1:] - flow[:, :-1]).abs().mean() + (flow[:, :, 1:] - flow[:, :, :-1]).abs().mean()


def layout_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of ``(B, C, H, W)`` logits against ``(B, H, W)`` class indices."""
    return F.cross_entropy(logits, labels)
