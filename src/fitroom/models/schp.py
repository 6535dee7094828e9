"""Self-Correction Human Parsing (SCHP): the A-CE2P network, for the published LIP and ATR checkpoints.

Paper: Li, Dong, Yang, Shi, "Self-Correction for Human Parsing", TPAMI 2020. Original code and weights:
https://github.com/GoGoDuck912/Self-Correction-Human-Parsing (MIT licence for the code; see that repository for
the weights' terms). This is fitroom's own implementation of the published architecture, written so that the
released ``exp-schp-*.pth`` files load into it strictly (after removing DataParallel's ``module.`` prefix):

* a ResNet-101 with a three-convolution stem, the last stage dilated (output stride 8);
* a pyramid pooling context module (bins 1, 2, 3, 6) on the last stage;
* a parsing decoder fusing the context with the first stage, an edge branch over stages 1-3, and a fusion head
  over both, whose output is the parse.

Normalisation layers are "activated batch norm" (batch norm then an optional leaky ReLU), stored as ``weight``,
``bias``, ``running_mean`` and ``running_var`` (no ``num_batches_tracked``), as in the released files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from fitroom.models import register_model

#: input normalisation of the released models: BGR channel order, these means and deviations
BGR_MEAN = (0.406, 0.456, 0.485)
BGR_STD = (0.225, 0.224, 0.229)
#: input sizes the released models were trained at, (height, width)
INPUT_SIZE = {"lip": (473, 473), "atr": (512, 512)}
NUM_CLASSES = {"lip": 20, "atr": 18}


class ActivatedBatchNorm(nn.Module):
    """Batch norm followed by an optional leaky ReLU (slope 0.01), with the released files' buffer layout."""

    def __init__(self, channels: int, activation: bool = True, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.activation = activation
        self.eps, self.momentum = eps, momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                         self.momentum, self.eps)
        return F.leaky_relu(x, 0.01) if self.activation else x


def _norm(channels: int) -> ActivatedBatchNorm:
    return ActivatedBatchNorm(channels, activation=False)


def _conv_norm(cin: int, cout: int) -> nn.Sequential:
    """1x1 convolution + activated batch norm (the heads' building block)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), ActivatedBatchNorm(cout))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = _norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = _norm(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = _norm(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + identity)


class PyramidPooling(nn.Module):
    """Pool to 1x1, 2x2, 3x3, 6x6, project, upsample, concatenate with the input and fuse (PSPNet)."""

    def __init__(self, cin: int, cout: int = 512, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(cin, cout, 1, bias=False), ActivatedBatchNorm(cout))
            for b in bins)
        self.bottleneck = nn.Sequential(nn.Conv2d(cin + len(bins) * cout, cout, 3, padding=1, bias=False),
                                        ActivatedBatchNorm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=True) for stage in self.stages]
        return self.bottleneck(torch.cat(pooled + [x], dim=1))


class EdgeBranch(nn.Module):
    """Edge logits (2 classes) from stages 1-3; a shared 3x3 classifier per scale, then a 1x1 fusion."""

    def __init__(self, cins: tuple[int, int, int] = (256, 512, 1024), mid: int = 256, classes: int = 2) -> None:
        super().__init__()
        self.conv1 = _conv_norm(cins[0], mid)
        self.conv2 = _conv_norm(cins[1], mid)
        self.conv3 = _conv_norm(cins[2], mid)
        self.conv4 = nn.Conv2d(mid, classes, 3, padding=1, bias=True)
        self.conv5 = nn.Conv2d(classes * 3, classes, 1, bias=True)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = x1.shape[-2:]
        features = [self.conv1(x1), self.conv2(x2), self.conv3(x3)]
        edges = [self.conv4(f) for f in features]

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=True)

        features = [features[0]] + [up(f) for f in features[1:]]
        edges = [edges[0]] + [up(e) for e in edges[1:]]
        return self.conv5(torch.cat(edges, dim=1)), torch.cat(features, dim=1)


class ParsingDecoder(nn.Module):
    """Context features up-sampled onto stage-1 features, two 1x1 fusions, a classifier."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv1 = _conv_norm(512, 256)
        self.conv2 = _conv_norm(256, 48)
        self.conv3 = nn.Sequential(nn.Conv2d(304, 256, 1, bias=False), ActivatedBatchNorm(256),
                                   nn.Conv2d(256, 256, 1, bias=False), ActivatedBatchNorm(256))
        self.conv4 = nn.Conv2d(256, classes, 1, bias=True)

    def forward(self, context: torch.Tensor, low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context = F.interpolate(self.conv1(context), size=low.shape[-2:], mode="bilinear", align_corners=True)
        features = self.conv3(torch.cat([context, self.conv2(low)], dim=1))
        return self.conv4(features), features


class SchpOutput(NamedTuple):
    """Logits at a quarter of the input size: ``parsing`` and ``fusion`` ``(B, classes, H/4, W/4)`` (inference uses
    ``fusion``), ``edge`` ``(B, 2, H/4, W/4)``; training supervises all three."""

    parsing: torch.Tensor
    fusion: torch.Tensor
    edge: torch.Tensor


@dataclass
class SchpConfig:
    classes: int = 20
    layers: tuple[int, int, int, int] = (3, 4, 23, 3)  # ResNet-101


class SchpNet(nn.Module):
    """A-CE2P. ``forward(x)`` takes ``(B, 3, H, W)`` normalised BGR and returns a :class:`SchpOutput`."""

    def __init__(self, config: SchpConfig | None = None) -> None:
        super().__init__()
        self.config = config or SchpConfig()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = _norm(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = _norm(64)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn3 = _norm(128)
        self._channels = 128
        layers = self.config.layers
        self.layer1 = self._stage(64, layers[0])
        self.layer2 = self._stage(128, layers[1], stride=2)
        self.layer3 = self._stage(256, layers[2], stride=2)
        self.layer4 = self._stage(512, layers[3], dilation=2)
        self.context_encoding = PyramidPooling(2048, 512)
        self.edge = EdgeBranch()
        self.decoder = ParsingDecoder(self.config.classes)
        # the released name is "fushion" (sic); keeping it lets the published files load unchanged
        self.fushion = nn.Sequential(nn.Conv2d(1024, 256, 1, bias=False), ActivatedBatchNorm(256), nn.Dropout2d(0.1),
                                     nn.Conv2d(256, self.config.classes, 1, bias=True))

    def _stage(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._channels != planes * Bottleneck.expansion:
            downsample = nn.Sequential(nn.Conv2d(self._channels, planes * 4, 1, stride=stride, bias=False),
                                       _norm(planes * 4))
        stage = [Bottleneck(self._channels, planes, stride, dilation, downsample)]
        self._channels = planes * 4
        stage += [Bottleneck(self._channels, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> SchpOutput:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"SCHP expects (B, 3, H, W) normalised BGR images, got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        stage1 = self.layer1(x)
        stage2 = self.layer2(stage1)
        stage3 = self.layer3(stage2)
        stage4 = self.layer4(stage3)
        parsing, parse_features = self.decoder(self.context_encoding(stage4), stage1)
        edge, edge_features = self.edge(stage1, stage2, stage3)
        fusion = self.fushion(torch.cat([parse_features, edge_features], dim=1))
        return SchpOutput(parsing=parsing, fusion=fusion, edge=edge)

    def config_dict(self) -> dict:
        return asdict(self.config)


@register_model("schp_lip")
def schp_lip(**overrides) -> SchpNet:
    return SchpNet(SchpConfig(**{"classes": NUM_CLASSES["lip"], **overrides}))


@register_model("schp_atr")
def schp_atr(**overrides) -> SchpNet:
    return SchpNet(SchpConfig(**{"classes": NUM_CLASSES["atr"], **overrides}))


@register_model("test_schp")
def test_schp(**overrides) -> SchpNet:
    """One block per stage: the real code at a tenth of the depth, for tests."""
    return SchpNet(SchpConfig(**{"classes": NUM_CLASSES["lip"], "layers": (1, 1, 1, 1), **overrides}))


@register_model("test_schp_lip")
def test_schp_lip(**overrides) -> SchpNet:
    return test_schp(**{"classes": NUM_CLASSES["lip"], **overrides})


@register_model("test_schp_atr")
def test_schp_atr(**overrides) -> SchpNet:
    return test_schp(**{"classes": NUM_CLASSES["atr"], **overrides})
