"""CP-VTON (Wang et al., ECCV 2018), the baseline of the HR-VITON comparison: a geometric matching module (GMM)
that warps the garment with a 5x5 thin-plate spline, and a try-on module (TOM), a U-Net that renders the person
and a composition mask. Facts from ``shared/reference/hrviton`` section 6; written from those facts.

* :func:`person_representation`: CP-VTON's cloth-agnostic input, 22 channels: the body shape (the parse's
  foreground down-sampled by 16 and up again, bilinear), the head (hair and face) in RGB on -1, and 18 COCO
  keypoint maps (squares of radius 5 at 256x192, scaled with the height; 1 inside, -1 outside).
* :class:`GMM`: two feature extractors (4 stride-2 convolutions 64 -> 512 and two 3x3 convolutions, each followed
  by ReLU and BatchNorm except the last; L2-normalised features), a correlation volume (one channel per position
  of the 1/16 grid), a regression CNN and a linear layer to 50 numbers: offsets, squashed by tanh, of a regular
  5x5 grid of control points. The thin-plate spline through them (kornia, differentiable) gives the sampling grid
  at the input size.
* :class:`TOM`: a 6-level U-Net (ngf 64, InstanceNorm, bilinear up-sampling + 3x3 convolutions) from the
  representation and the warped cloth (25 channels) to a rendered person (tanh) and a composition mask (sigmoid);
  the try-on is ``cloth * mask + rendered * (1 - mask)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from fitroom.labels import BODY25_TO_COCO18, Cihp
from fitroom.models import register_model

GRID_SIZE = 5
#: the upper-garment labels whose region is the GMM's target (CP-VTON: LIP's upper-clothes, dress, coat)
CLOTH_LABELS = (Cihp.UPPER_CLOTHES, Cihp.DRESS, Cihp.COAT)
HEAD_LABELS = (Cihp.HAT, Cihp.HAIR, Cihp.SUNGLASSES, Cihp.FACE)
REPRESENTATION_CHANNELS = 1 + 3 + 18


def person_representation(person: torch.Tensor, parse: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """CP-VTON's 22-channel person representation.

    Args:
        person: ``(B, 3, H, W)`` in [-1, 1].
        parse: ``(B, H, W)`` CIHP labels.
        keypoints: ``(B, 25, 3)`` BODY_25 ``(x, y, confidence)`` in pixels of the same size.

    Returns:
        ``(B, 22, H, W)``: shape (1), head RGB (3), 18 keypoint maps; all in [-1, 1].
    """
    batch, _, height, width = person.shape
    foreground = (parse > 0).float()[:, None]
    shape = F.interpolate(F.interpolate(foreground, size=(max(1, height // 16), max(1, width // 16)),
                                        mode="bilinear", antialias=True), size=(height, width), mode="bilinear")
    head = torch.zeros_like(foreground)
    for label in HEAD_LABELS:
        head = head + (parse == label).float()[:, None]
    head_rgb = person * head - (1 - head)
    coco = keypoints[:, list(BODY25_TO_COCO18)]
    radius = max(1, round(5 * height / 256))
    ys = torch.arange(height, device=person.device).view(1, 1, height, 1)
    xs = torch.arange(width, device=person.device).view(1, 1, 1, width)
    x, y = coco[..., 0, None, None], coco[..., 1, None, None]
    present = ((coco[..., 0] > 1) & (coco[..., 1] > 1) & (coco[..., 2] > 0))[..., None, None]
    square = (ys >= y - radius) & (ys <= y + radius) & (xs >= x - radius) & (xs <= x + radius)
    pose = (square & present).float() * 2 - 1
    return torch.cat([shape * 2 - 1, head_rgb, pose], 1)


def cloth_region(person: torch.Tensor, parse: torch.Tensor, category: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The person's garment on white ``(B, 3, H, W)`` and its mask ``(B, 1, H, W)`` (the GMM's targets): the
    region of each sample's ``category`` ``(B,)`` (upper: ``CLOTH_LABELS``; lower: trousers and skirts; dress:
    every garment, as ``GARMENT_CIHP_TO_13`` groups them; None: tops)."""
    from fitroom.labels import GARMENT_CIHP_TO_13, Parse13

    garment = torch.tensor(GARMENT_CIHP_TO_13[:, :] == int(Parse13.UPPER), device=parse.device)
    rows = torch.zeros(parse.shape[0], dtype=torch.long, device=parse.device) if category is None else \
        category.to(parse.device).reshape(-1)
    mask = garment[rows.reshape(-1, 1, 1), parse].to(person.dtype)[:, None]
    return person * mask + (1 - mask), mask


def cpvton_inputs(batch: dict) -> dict:
    """CP-VTON's inputs and the GMM's targets from a dataset batch (its ``category``, when present, picks the
    garment region)."""
    truth, truth_mask = cloth_region(batch["person"], batch["parse"], batch.get("category"))
    return {"representation": person_representation(batch["person"], batch["parse"], batch["keypoints"]),
            "garment": batch["garment"], "garment_mask": batch["garment_mask"], "cloth_truth": truth,
            "cloth_mask_truth": truth_mask, "person": batch["person"]}


def gmm_warp(gmm: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The garment ``(B, 3, H, W)`` and its mask ``(B, 1, H, W)`` warped by the GMM's thin-plate spline."""
    grid, _ = gmm(x["representation"], x["garment"])
    warped = F.grid_sample(x["garment"], grid, padding_mode="border", align_corners=True)
    warped_mask = F.grid_sample(x["garment_mask"], grid, padding_mode="zeros", align_corners=True)
    return warped, warped_mask



# ------------------------------------------------------------------------------------------------------------
# GMM
# ------------------------------------------------------------------------------------------------------------
def _feature_extractor(cin: int, ngf: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    widths = [cin] + [min(ngf * 2 ** i, 512) for i in range(4)]
    for a, b in zip(widths[:-1], widths[1:]):  # 4 stride-2 convolutions
        layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(b)]
    last = widths[-1]
    layers += [nn.Conv2d(last, last, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(last),
               nn.Conv2d(last, last, 3, padding=1), nn.ReLU(inplace=True)]  # the last one without a norm
    return nn.Sequential(*layers)


def _l2_normalise(features: torch.Tensor) -> torch.Tensor:
    return features / (features.pow(2).sum(1, keepdim=True) + 1e-6).sqrt()


def regular_grid(size: int = GRID_SIZE, like: torch.Tensor | None = None) -> torch.Tensor:
    """``(size * size, 2)`` control points ``(x, y)`` on a regular grid over [-1, 1], row by row."""
    steps = torch.linspace(-1, 1, size, device=None if like is None else like.device,
                           dtype=torch.float32 if like is None else like.dtype)
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], -1)


@dataclass
class GMMConfig:
    representation_channels: int = REPRESENTATION_CHANNELS
    cloth_channels: int = 3
    ngf: int = 64
    size: tuple[int, int] = (256, 192)  # the correlation volume has one channel per position of the 1/16 grid
    categories: tuple[str, ...] = ("upper",)  # the garment category it was trained on (one: CP-VTON has no input
    # for it; train one GMM and TOM per category)

    def __post_init__(self) -> None:
        self.size = tuple(self.size)  # type: ignore[assignment]
        self.categories = one_category(self.categories)
        if self.size[0] % 64 or self.size[1] % 64:
            raise ValueError(f"the GMM needs a size that is a multiple of 64, got {self.size}")


class GMM(nn.Module):
    """CP-VTON's geometric matching module.

    ``forward(representation, cloth)``: ``(B, 22, H, W)`` and ``(B, 3, H, W)`` -> ``(grid, control_points)``:
    the ``(B, H, W, 2)`` sampling grid (``F.grid_sample`` of the flat garment gives it warped onto the person) and
    the ``(B, 25, 2)`` predicted control points in [-1, 1].
    """

    def __init__(self, config: GMMConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or GMMConfig()
        self.extractionA = _feature_extractor(c.representation_channels, c.ngf)
        self.extractionB = _feature_extractor(c.cloth_channels, c.ngf)
        cells = (c.size[0] // 16) * (c.size[1] // 16)
        self.regression = nn.Sequential(
            nn.Conv2d(cells, 512, 4, stride=2, padding=1), nn.BatchNorm2d(512), nn.ReLU(inplace=True),
            nn.Conv2d(512, 256, 4, stride=2, padding=1), nn.BatchNorm2d(256), nn.ReLU(inplace=True),
            nn.Conv2d(256, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.linear = nn.Linear(64 * (c.size[0] // 64) * (c.size[1] // 64), 2 * GRID_SIZE ** 2)

    def forward(self, representation: torch.Tensor, cloth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from kornia.geometry.transform import get_tps_transform

        c = self.config
        if tuple(cloth.shape[-2:]) != c.size or tuple(representation.shape[-2:]) != c.size:
            raise ValueError(f"this GMM was built for {c.size[0]}x{c.size[1]} inputs, got "
                             f"{tuple(representation.shape[-2:])} and {tuple(cloth.shape[-2:])}")
        person = _l2_normalise(self.extractionA(representation))
        garment = _l2_normalise(self.extractionB(cloth))
        batch, channels, h, w = person.shape
        # correlation: for each person position, the similarity to every garment position (one channel each)
        correlation = torch.einsum("bcp,bcq->bqp", person.flatten(2), garment.flatten(2)).reshape(batch, h * w, h, w)
        offsets = torch.tanh(self.linear(self.regression(correlation).flatten(1))).view(batch, GRID_SIZE ** 2, 2)
        base = regular_grid(like=offsets)[None].expand(batch, -1, -1)
        control = base + offsets
        # the spline maps each output (person) position to where it samples the garment: base -> control
        kernel_weights, affine_weights = get_tps_transform(base, control)
        grid = _tps_grid(base, kernel_weights, affine_weights, *c.size)
        return grid, control

    def config_dict(self) -> dict:
        data = asdict(self.config)
        data["size"] = list(data["size"])
        return data


def _tps_grid(centers: torch.Tensor, kernel_weights: torch.Tensor, affine_weights: torch.Tensor, height: int,
              width: int) -> torch.Tensor:
    """The ``(B, H, W, 2)`` sampling grid of a thin-plate spline (kornia's ``warp_points_tps`` on every pixel)."""
    from kornia.geometry.transform import warp_points_tps

    ys = torch.linspace(-1, 1, height, device=centers.device, dtype=centers.dtype)
    xs = torch.linspace(-1, 1, width, device=centers.device, dtype=centers.dtype)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([x.flatten(), y.flatten()], -1)[None].expand(centers.shape[0], -1, -1)
    return warp_points_tps(points, centers, kernel_weights, affine_weights).view(-1, height, width, 2)


# ------------------------------------------------------------------------------------------------------------
# TOM
# ------------------------------------------------------------------------------------------------------------
class UnetBlock(nn.Module):
    """One level of the U-Net: down (4x4 stride-2 convolution), the inner levels, up (bilinear x2 + 3x3 conv)."""

    def __init__(self, outer: int, inner: int, cin: int | None = None, inner_block: nn.Module | None = None,
                 outermost: bool = False, dropout: bool = False) -> None:
        super().__init__()
        cin = outer if cin is None else cin
        self.outermost = outermost
        down = nn.Conv2d(cin, inner, 4, stride=2, padding=1)
        up_in = inner if inner_block is None else inner * 2
        up = [nn.ReLU(True), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(up_in, outer, 3, padding=1)]
        if outermost:
            layers = [down, inner_block] + up
        elif inner_block is None:  # innermost
            layers = [nn.LeakyReLU(0.2, True), down] + up + [nn.InstanceNorm2d(outer)]
        else:
            layers = ([nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), inner_block] + up
                      + [nn.InstanceNorm2d(outer)] + ([nn.Dropout(0.5)] if dropout else []))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


@dataclass
class TOMConfig:
    input_channels: int = REPRESENTATION_CHANNELS + 3
    output_channels: int = 4
    ngf: int = 64
    num_downs: int = 6
    categories: tuple[str, ...] = ("upper",)  # as GMMConfig's

    def __post_init__(self) -> None:
        self.categories = one_category(self.categories)


def one_category(categories) -> tuple[str, ...]:
    """``categories`` checked to be exactly one garment category (a CP-VTON network's)."""
    from fitroom.labels import GarmentCategory

    names = tuple(dict.fromkeys(GarmentCategory(c).value for c in categories))
    if len(names) != 1:
        raise ValueError(f"CP-VTON has no input for the garment category: train one gmm and tom per category "
                         f"(categories=upper, lower or dress), not {', '.join(names) or 'none'}")
    return names


class TOM(nn.Module):
    """CP-VTON's try-on module. ``forward(representation, warped_cloth)``: ``(B, 22, H, W)``, ``(B, 3, H, W)`` ->
    ``(try_on, rendered, mask)``: ``(B, 3, H, W)`` in [-1, 1] twice and ``(B, 1, H, W)`` in [0, 1]. H and W
    must be multiples of ``2 ** num_downs``."""

    def __init__(self, config: TOMConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TOMConfig()
        n = c.ngf
        block = UnetBlock(n * 8, n * 8)
        for _ in range(c.num_downs - 5):
            block = UnetBlock(n * 8, n * 8, inner_block=block, dropout=True)
        block = UnetBlock(n * 4, n * 8, inner_block=block)
        block = UnetBlock(n * 2, n * 4, inner_block=block)
        block = UnetBlock(n, n * 2, inner_block=block)
        self.model = UnetBlock(c.output_channels, n, cin=c.input_channels, inner_block=block, outermost=True)

    def forward(self, representation: torch.Tensor, warped_cloth: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scale = 2 ** self.config.num_downs
        if representation.shape[-2] % scale or representation.shape[-1] % scale:
            raise ValueError(f"TOM needs H and W that are multiples of {scale}, got {tuple(representation.shape[-2:])}")
        out = self.model(torch.cat([representation, warped_cloth], 1))
        rendered, mask = torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:])
        return warped_cloth * mask + rendered * (1 - mask), rendered, mask

    def config_dict(self) -> dict:
        return asdict(self.config)


@register_model("cpvton_gmm")
def cpvton_gmm(**overrides) -> GMM:
    return GMM(GMMConfig(**overrides))


@register_model("cpvton_tom")
def cpvton_tom(**overrides) -> TOM:
    return TOM(TOMConfig(**overrides))


@register_model("test_cpvton_gmm")
def test_cpvton_gmm(**overrides) -> GMM:
    return GMM(GMMConfig(**{"ngf": 8, **overrides}))


@register_model("test_cpvton_tom")
def test_cpvton_tom(**overrides) -> TOM:
    return TOM(TOMConfig(**{"ngf": 8, **overrides}))
