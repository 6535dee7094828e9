"""HR-VITON's networks: the try-on condition generator and the SPADE image generator.

Paper: Lee, Gu, Park, Choi, Choo, "High-Resolution Virtual Try-On with Misalignment and Occlusion-Handled
Conditions", ECCV 2022. Original code and weights: https://github.com/sangyun884/HR-VITON (CC BY-NC 4.0; the
weights carry that licence). This is fitroom's own implementation from the facts in
``shared/reference/hrviton/README.md``; its parameter names are the official ones, so released checkpoints load
strictly (see :mod:`fitroom.models.hrviton_convert`), and it reproduces the official outputs (parity test).

* :class:`ConditionGenerator` (``tocg``): a cloth encoder and a person encoder (5 down-sampling residual blocks
  each), a feature-fusion decoder that predicts an appearance-flow pyramid (5 levels) and a 13-class layout
  together, and the warped cloth and mask.
* :class:`SPADEGenerator`: SPADE residual blocks (spectral-norm convolutions; noise, instance norm and a
  segmentation-conditioned affine in every norm), the 9-channel input re-injected at every scale. The number of
  up-sampling stages is chosen from the output size (``"more"`` = 6, ``"most"`` = 7) so every multiple of 64 (or
  128) works; the reference silently produced a wrong width at 256x192 with ``"most"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from fitroom.models import register_model

PARSE_CLASSES = 13
GENERATOR_SEMANTIC_CLASSES = 7


# ------------------------------------------------------------------------------------------------------------
# Condition generator
# ------------------------------------------------------------------------------------------------------------
class ResBlock(nn.Module):
    """A scale step (3x3 stride-2 down, bilinear x2 + 1x1 up, or 1x1 same), then conv-BN-ReLU-conv-BN, residual
    add and ReLU."""

    def __init__(self, cin: int, cout: int, scale: str, norm_layer: type[nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        bias = norm_layer is nn.InstanceNorm2d  # convolutions before a batch norm need no bias
        if scale == "down":
            self.scale = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias)
        elif scale == "up":
            self.scale = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(cin, cout, 1))
        elif scale == "same":
            self.scale = nn.Conv2d(cin, cout, 1)
        else:
            raise ValueError(f"scale must be down, up or same, got {scale!r}")
        self.block = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), norm_layer(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), norm_layer(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale(x)
        return F.relu(x + self.block(x))


def identity_grid(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 2)`` sampling grid of the identity in [-1, 1], corners included (HR-VITON's ``make_grid``)."""
    ys = torch.linspace(-1.0, 1.0, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)[None].expand(batch, -1, -1, -1)


def normalise_flow(flow: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Flow in pixels of an ``(height, width)`` grid -> grid_sample offsets (HR-VITON's ``(W/2 - 1) / 2``)."""
    return torch.cat([flow[..., 0:1] / ((width / 2 - 1.0) / 2.0), flow[..., 1:2] / ((height / 2 - 1.0) / 2.0)], -1)


def upsample_flow(flow: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 2)`` -> ``(B, 2H, 2W, 2)``, bilinear (values unchanged, as the reference does)."""
    return F.interpolate(flow.permute(0, 3, 1, 2), scale_factor=2, mode="bilinear").permute(0, 2, 3, 1)


def warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``features`` ``(B, C, H, W)`` at identity + ``flow`` ``(B, H, W, 2)`` pixels (border padding)."""
    batch, _, height, width = features.shape
    grid = identity_grid(batch, height, width, features) + normalise_flow(flow, height, width)
    return F.grid_sample(features, grid, padding_mode="border", align_corners=False)


def trained_categories(categories, category_input: bool) -> tuple[str, ...]:
    """``categories`` checked and in ``GarmentCategory`` order; several need the category input (a network
    without it cannot tell a top's layout from a dress's)."""
    from fitroom.labels import GarmentCategory

    names = {GarmentCategory(c).value for c in categories}
    if not names:
        raise ValueError("a model is trained on at least one garment category")
    ordered = tuple(c.value for c in GarmentCategory if c.value in names)
    if len(names) > 1 and not category_input:
        raise ValueError(f"training on several garment categories ({', '.join(ordered)}) needs category_input=true "
                         f"(one network then takes the category as an input)")
    return ordered


@dataclass
class ConditionGeneratorConfig:
    cloth_channels: int = 4  # cloth RGB + cloth mask
    pose_channels: int = 16  # 13-class agnostic parse + DensePose RGB (+ the view plane, + 2 category planes)
    parse_classes: int = PARSE_CLASSES
    ngf: int = 96
    #: one set of weights for both views: the view is an extra pose channel (None: read from ``pose_channels``,
    #: for model folders written before this field)
    view_input: bool | None = None
    #: one set of weights for tops, lower garments and dresses: the category is two more pose channels
    #: (:func:`category_planes`) and the layout's garment class is the garment tried on (``GARMENT_CIHP_TO_13``)
    category_input: bool = False
    #: the garment categories it was trained on (what an engine running it tries on)
    categories: tuple[str, ...] = ("upper",)

    def __post_init__(self) -> None:
        self.categories = trained_categories(self.categories, self.category_input)
        plain = self.parse_classes + 3
        extra = CATEGORY_PLANES * int(self.category_input)
        if self.view_input is None:
            self.view_input = self.pose_channels == plain + 1 + extra
        if self.pose_channels != plain + int(self.view_input) + extra:
            raise ValueError(f"pose_channels {self.pose_channels} do not fit view_input={self.view_input} and "
                             f"category_input={self.category_input} ({self.parse_classes}-class parse + DensePose "
                             f"= {plain}, + 1 with the view, + {CATEGORY_PLANES} with the category)")


class ConditionGenerator(nn.Module):
    """HR-VITON's try-on condition generator.

    ``forward(cloth, pose)`` with ``cloth`` ``(B, 4, H, W)`` (garment and mask) and ``pose`` ``(B, 16, H, W)``
    (agnostic parse one-hot and DensePose), H and W multiples of 32 (256x192 in HR-VITON), returns
    ``(flows, seg_logits, warped_cloth, warped_mask)``: 5 flows ``(B, H/32 * 2^i, W/32 * 2^i, 2)`` in pixels,
    ``(B, 13, H, W)`` non-negative logits, ``(B, 3, H, W)`` and ``(B, 1, H, W)``.
    """

    def __init__(self, config: ConditionGeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or ConditionGeneratorConfig()
        n = c.ngf
        widths = (n, 2 * n, 4 * n, 4 * n, 4 * n)

        def encoder(cin: int) -> nn.ModuleList:
            chans = (cin,) + widths
            return nn.ModuleList(ResBlock(chans[i], chans[i + 1], "down") for i in range(5))

        self.ClothEncoder = encoder(c.cloth_channels)
        self.PoseEncoder = encoder(c.pose_channels)
        self.conv = ResBlock(4 * n, 8 * n, "same")
        self.SegDecoder = nn.ModuleList([
            ResBlock(8 * n, 4 * n, "up"), ResBlock(4 * n * 2 + 4 * n, 4 * n, "up"),
            ResBlock(4 * n * 2 + 4 * n, 2 * n, "up"), ResBlock(2 * n * 2 + 4 * n, n, "up"),
            ResBlock(n * 2 + 4 * n, n, "up")])
        self.out_layer = ResBlock(n + c.cloth_channels + c.pose_channels, c.parse_classes, "same")
        # feature-pyramid laterals, one per encoder level 0..3, to the fused width 4n
        self.conv1 = nn.ModuleList(nn.Conv2d(w, 4 * n, 1) for w in widths[:4])
        self.conv2 = nn.ModuleList(nn.Conv2d(w, 4 * n, 1) for w in widths[:4])
        # never read with warp_feature "T1" (see forward): kept so that released checkpoints load, frozen so that
        # training (DDP above all, which stops at parameters without a gradient) leaves it alone
        self.conv2.requires_grad_(False)
        self.flow_conv = nn.ModuleList(nn.Conv2d(8 * n, 2, 3, padding=1) for _ in range(5))
        self.bottleneck = nn.ModuleList(
            nn.Sequential(nn.Conv2d(w, 4 * n, 3, padding=1), nn.ReLU(inplace=True)) for w in (4 * n, 4 * n, 2 * n, n))

    def forward(self, cloth: torch.Tensor, pose: torch.Tensor
                ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        c = self.config
        if cloth.ndim != 4 or cloth.shape[1] != c.cloth_channels or pose.shape[1] != c.pose_channels:
            raise ValueError(f"expected cloth (B, {c.cloth_channels}, H, W) and pose (B, {c.pose_channels}, H, W), "
                             f"got {tuple(cloth.shape)} and {tuple(pose.shape)}")
        if cloth.shape[-2:] != pose.shape[-2:] or cloth.shape[-2] % 32 or cloth.shape[-1] % 32:
            raise ValueError(f"cloth and pose must share an (H, W) that is a multiple of 32, got "
                             f"{tuple(cloth.shape[-2:])} and {tuple(pose.shape[-2:])}")
        cloth_features, pose_features = [], []
        x1, x2 = cloth, pose
        for i in range(5):  # the two feature pyramids, 1/2 .. 1/32
            x1, x2 = self.ClothEncoder[i](x1), self.PoseEncoder[i](x2)
            cloth_features.append(x1)
            pose_features.append(x2)

        # level 0 (1/32): first flow from both streams, first layout features from the person stream
        t1, t2 = cloth_features[4], pose_features[4]
        flows = [self.flow_conv[0](torch.cat([t1, t2], 1)).permute(0, 2, 3, 1)]
        x = self.SegDecoder[0](self.conv(t2))
        # levels 1..4: the feature-fusion block, flow and layout refining each other
        for i in range(1, 5):
            # (the reference also merges the person stream through conv2 here, but never reads the result with
            # warp_feature "T1"; conv2 is kept only so that released checkpoints load)
            t1 = F.interpolate(t1, scale_factor=2, mode="bilinear") + self.conv1[4 - i](cloth_features[4 - i])
            flow = upsample_flow(flows[-1])
            warped_t1 = warp(t1, flow)
            flow = flow + self.flow_conv[i](torch.cat([warped_t1, self.bottleneck[i - 1](x)], 1)).permute(0, 2, 3, 1)
            flows.append(flow)
            x = self.SegDecoder[i](torch.cat([x, pose_features[4 - i], warped_t1], 1))

        warped = warp(cloth, upsample_flow(flows[-1]))
        seg = self.out_layer(torch.cat([x, pose, warped], 1))
        return flows, seg, warped[:, :-1], warped[:, -1:]

    def config_dict(self) -> dict:
        return asdict(self.config)


# ------------------------------------------------------------------------------------------------------------
# SPADE image generator
# ------------------------------------------------------------------------------------------------------------
class SPADENorm(nn.Module):
    """Noise, parameter-free instance norm, then ``x * (1 + gamma(seg)) + beta(seg)``."""

    def __init__(self, channels: int, semantic_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.noise_scale = nn.Parameter(torch.zeros(channels))
        self.noise = True  # False: no random noise, the output is a function of the inputs (export, tests)
        self.param_free_norm = nn.InstanceNorm2d(channels, affine=False)
        self.conv_shared = nn.Sequential(nn.Conv2d(semantic_channels, hidden, 3, padding=1), nn.ReLU())
        self.conv_gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.conv_beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        if self.noise:  # one spatial noise map per image, scaled per channel (zero-initialised scales)
            x = x + torch.randn(batch, 1, height, width, device=x.device, dtype=x.dtype) * self.noise_scale[
                None, :, None, None]
        x = self.param_free_norm(x)
        seg = F.interpolate(seg, size=(height, width), mode="nearest")
        features = self.conv_shared(seg)
        return x * (1 + self.conv_gamma(features)) + self.conv_beta(features)


class SPADEResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, semantic_channels: int, hidden: int = 128) -> None:
        super().__init__()
        middle = min(cin, cout)
        self.learned_shortcut = cin != cout
        self.conv_0 = spectral_norm(nn.Conv2d(cin, middle, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(middle, cout, 3, padding=1))
        self.norm_0 = SPADENorm(cin, semantic_channels, hidden)
        self.norm_1 = SPADENorm(middle, semantic_channels, hidden)
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(cin, cout, 1, bias=False))
            self.norm_s = SPADENorm(cin, semantic_channels, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class FusedSPADEResBlock(nn.Module):
    """The inference form of a :class:`SPADEResBlock`: the same function in fewer, wider convolutions.

    * the segmentation map is resized once per block instead of once per norm (the norms all read the same
      resized map);
    * each norm's shared features come from a convolution of their own (``semantic -> hidden``): one convolution
      making all of them (``hidden * norms`` channels) measured 4-12 % slower for the image generator at 512x384
      (side by side, float32 and bf16), because a channel slice of a channels-last tensor is not contiguous and
      oneDNN copied each;
    * each norm's gamma and beta come from one convolution (``hidden -> 2 * channels``), split afterwards, the
      ``1 +`` of ``x * (1 + gamma)`` folded into gamma's bias;
    * the spectral norms are folded into plain weights (in eval mode the same numbers);
    * the instance norm is written out (``var_mean``), so that channels-last activations (which
      :func:`prepare_generator` uses: oneDNN's 3x3 convolutions measured 20-45 % faster in that layout) need no
      copy.

    The noise is drawn in the original order (shortcut norm, then ``norm_0``, then ``norm_1``), so with the same
    random state the output equals the original's up to float rounding (tested within 1e-4). Built from a trained
    block by :func:`prepare_generator`; it has no training form and is never saved.
    """

    def __init__(self, block: SPADEResBlock) -> None:
        super().__init__()
        self.learned_shortcut = block.learned_shortcut
        norms = ([block.norm_s] if block.learned_shortcut else []) + [block.norm_0, block.norm_1]
        first = norms[0].conv_shared[0]
        self.shared = nn.ModuleList(_folded(norm.conv_shared[0]) for norm in norms)
        self.hidden = first.out_channels
        self.modulation = nn.ModuleList()
        self.noise_scales = nn.ParameterList()
        self.noise: list[bool] = []
        with torch.no_grad():
            for norm in norms:
                conv = nn.Conv2d(self.hidden, 2 * norm.conv_gamma.out_channels, 3, padding=1)
                conv.weight.copy_(torch.cat([norm.conv_gamma.weight, norm.conv_beta.weight]))
                # "x * (1 + gamma)": the 1 goes into gamma's bias, so the modulation is one addcmul
                conv.bias.copy_(torch.cat([norm.conv_gamma.bias + 1, norm.conv_beta.bias]))
                self.modulation.append(conv)
                self.noise_scales.append(nn.Parameter(norm.noise_scale.detach().clone(), requires_grad=False))
                self.noise.append(norm.noise)
                self.eps = norm.param_free_norm.eps
        self.conv_0, self.conv_1 = _folded(block.conv_0), _folded(block.conv_1)
        self.conv_s = _folded(block.conv_s) if block.learned_shortcut else None

    def _norm(self, index: int, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        if self.noise[index]:
            batch, _, height, width = x.shape
            noise = torch.randn(batch, 1, height, width, device=x.device, dtype=x.dtype)
            x = torch.addcmul(x, noise, self.noise_scales[index][None, :, None, None])
        # the parameter-free instance norm, written out so that it works in any memory layout without a copy
        variance, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
        scale = torch.rsqrt(variance + self.eps)
        x = torch.addcmul(-mean * scale, x, scale)
        gamma_plus_one, beta = self.modulation[index](features[index]).chunk(2, dim=1)
        return torch.addcmul(beta, x, gamma_plus_one)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest").contiguous(memory_format=torch.channels_last)
        features = [F.relu(shared(seg), inplace=True) for shared in self.shared]
        first = 0
        if self.learned_shortcut:
            shortcut = self.conv_s(self._norm(0, x, features))
            first = 1
        else:
            shortcut = x
        dx = self.conv_0(F.leaky_relu(self._norm(first, x, features), 0.2, inplace=True))
        dx = self.conv_1(F.leaky_relu(self._norm(first + 1, dx, features), 0.2, inplace=True))
        return dx.add_(shortcut)


def _folded(conv: nn.Conv2d) -> nn.Conv2d:
    """A plain copy of ``conv`` with its spectral norm (if any) folded into the weight (eval-mode numbers)."""
    import copy

    from torch.nn.utils import remove_spectral_norm

    plain = copy.deepcopy(conv)
    if hasattr(plain, "weight_orig"):
        remove_spectral_norm(plain)  # weight_orig / sigma with the stored vectors, as the eval-mode hook computes
    return plain


UPSAMPLINGS = {"more": 6, "most": 7}


def choose_upsampling(height: int, width: int) -> str:
    """``"most"`` (7 up-samplings) when H and W are multiples of 128, else ``"more"`` (6, multiples of 64)."""
    if height % 128 == 0 and width % 128 == 0 and height >= 512:
        return "most"
    if height % 64 == 0 and width % 64 == 0:
        return "more"
    raise ValueError(f"the SPADE generator needs H and W that are multiples of 64, got {height}x{width}")


@dataclass
class SPADEGeneratorConfig:
    input_channels: int = 9  # agnostic person, DensePose, warped cloth (+ the view plane, + 2 category planes)
    semantic_channels: int = GENERATOR_SEMANTIC_CLASSES
    ngf: int = 64
    num_upsampling_layers: str = "most"
    spade_hidden: int = 128  # width of the SPADE normalisation's shared convolution (the reference's 128)
    #: one set of weights for both views: the view is a tenth input channel (None: read from ``input_channels``)
    view_input: bool | None = None
    #: one set of weights for every garment category: two more input channels (:func:`category_planes`)
    category_input: bool = False
    #: the garment categories it was trained on
    categories: tuple[str, ...] = ("upper",)

    def __post_init__(self) -> None:
        self.categories = trained_categories(self.categories, self.category_input)
        extra = CATEGORY_PLANES * int(self.category_input)
        if self.view_input is None:
            self.view_input = self.input_channels == 10 + extra
        if self.input_channels != 9 + int(self.view_input) + extra:
            raise ValueError(f"input_channels {self.input_channels} do not fit view_input={self.view_input} and "
                             f"category_input={self.category_input} (agnostic person, DensePose and warped cloth "
                             f"= 9, + 1 with the view, + {CATEGORY_PLANES} with the category)")


class SPADEGenerator(nn.Module):
    """HR-VITON's image generator. ``forward(x, seg)``: ``x`` ``(B, 9, H, W)``, ``seg`` ``(B, 7, H, W)`` one-hot ->
    ``(B, 3, H, W)`` in [-1, 1]. H and W must be multiples of 2^(number of up-samplings)."""

    def __init__(self, config: SPADEGeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SPADEGeneratorConfig()
        if c.num_upsampling_layers not in UPSAMPLINGS:
            raise ValueError(f"num_upsampling_layers must be one of {sorted(UPSAMPLINGS)}")
        n, s, h, inject = c.ngf, c.semantic_channels, c.spade_hidden, 16
        self.conv_0 = nn.Conv2d(c.input_channels, 16 * n, 3, padding=1)
        for i in range(1, 8):
            setattr(self, f"conv_{i}", nn.Conv2d(c.input_channels, inject, 3, padding=1))
        self.head_0 = SPADEResBlock(16 * n, 16 * n, s, h)
        self.G_middle_0 = SPADEResBlock(16 * n + inject, 16 * n, s, h)
        self.G_middle_1 = SPADEResBlock(16 * n + inject, 16 * n, s, h)
        self.up_0 = SPADEResBlock(16 * n + inject, 8 * n, s, h)
        self.up_1 = SPADEResBlock(8 * n + inject, 4 * n, s, h)
        self.up_2 = SPADEResBlock(4 * n + inject, 2 * n, s, h)
        self.up_3 = SPADEResBlock(2 * n + inject, n, s, h)
        last = n
        if c.num_upsampling_layers == "most":
            self.up_4 = SPADEResBlock(n + inject, n // 2, s, h)
            last = n // 2
        self.conv_img = nn.Conv2d(last, 3, 3, padding=1)
        # the injections past the last up-sampling stage are never read (conv_7 without up_4): kept so that
        # checkpoints of every setting share one layout, frozen so that training (DDP above all) leaves them alone
        for i in range(2 + 4 + int(c.num_upsampling_layers == "most") + 1, 8):
            getattr(self, f"conv_{i}").requires_grad_(False)

    @property
    def scale(self) -> int:
        return 2 ** UPSAMPLINGS[self.config.num_upsampling_layers]

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.input_channels or seg.shape[1] != c.semantic_channels:
            raise ValueError(f"expected x (B, {c.input_channels}, H, W) and seg (B, {c.semantic_channels}, H, W), got "
                             f"{tuple(x.shape)} and {tuple(seg.shape)}")
        height, width = x.shape[-2:]
        if height % self.scale or width % self.scale:
            raise ValueError(f"with '{c.num_upsampling_layers}' up-sampling, H and W must be multiples of "
                             f"{self.scale}; got {height}x{width} (use choose_upsampling)")
        sizes = [(height // self.scale * 2 ** k, width // self.scale * 2 ** k) for k in range(8)]
        if getattr(self, "channels_last", False):  # a prepared copy: every activation in one layout
            x = x.contiguous(memory_format=torch.channels_last)

        def inject(features: torch.Tensor, index: int, level: int) -> torch.Tensor:
            extra = getattr(self, f"conv_{index}")(F.interpolate(x, size=sizes[level], mode="nearest"))
            return torch.cat([features, extra], 1)

        def up(features: torch.Tensor) -> torch.Tensor:
            return F.interpolate(features, scale_factor=2, mode="nearest")

        out = self.head_0(self.conv_0(F.interpolate(x, size=sizes[0], mode="nearest")), seg)
        out = self.G_middle_0(inject(up(out), 1, 1), seg)
        out = self.G_middle_1(inject(up(out), 2, 2), seg)
        stages = [self.up_0, self.up_1, self.up_2, self.up_3] + ([self.up_4] if c.num_upsampling_layers == "most"
                                                                  else [])
        for k, stage in enumerate(stages):
            out = stage(inject(up(out), 3 + k, 3 + k), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(out, 0.2)))

    def config_dict(self) -> dict:
        return asdict(self.config)


def prepare_generator(generator: SPADEGenerator) -> SPADEGenerator:
    """An inference copy of ``generator`` for the exact path: every :class:`SPADEResBlock` replaced by a
    :class:`FusedSPADEResBlock` (its weights prepared once, here), in eval mode. The copy computes the same
    function (within float rounding) and keeps ``generator``'s config; it is for running, not for training or
    saving."""
    import copy

    prepared = copy.deepcopy(generator).eval()
    for name, child in list(prepared.named_children()):
        if isinstance(child, SPADEResBlock):
            setattr(prepared, name, FusedSPADEResBlock(child))
    prepared.channels_last = True
    return prepared.requires_grad_(False).to(memory_format=torch.channels_last)


def prepare_condition_generator(condition_generator: ConditionGenerator) -> ConditionGenerator:
    """An inference copy of ``condition_generator`` for the exact path: each residual block's batch norms folded
    into the convolutions before them (eval mode: their running statistics are constants), in eval mode. The same
    function within float rounding (9e-6 at most on random full-size weights at 512x384), 5 % faster there; for
    running, not for training or saving (its state dict lacks the norms). Instance-norm blocks stay as they are.
    Channels-last was measured slower for this network on the CPU and is not used."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    prepared = copy.deepcopy(condition_generator).eval()
    for module in prepared.modules():
        if isinstance(module, ResBlock) and isinstance(module.block[1], nn.BatchNorm2d):
            block = module.block
            module.block = nn.Sequential(fuse_conv_bn_eval(block[0], block[1]), block[2],
                                         fuse_conv_bn_eval(block[3], block[4]))
    return prepared.requires_grad_(False)


#: input planes a category-input model takes: one per category other than tops (lower, dress), 1 where it is
CATEGORY_PLANES = 2


def category_planes(category: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The garment category as constant input planes ``(B, 2, H, W)`` shaped like ``like`` ``(B, C, H, W)``:
    ``category`` ``(B,)`` indices in ``GarmentCategory`` order (0 upper, 1 lower, 2 dress); plane k is 1 for
    category k + 1, so a top is all zeros (as the view plane's front)."""
    index = category.to(like.device).reshape(-1, 1, 1, 1)
    planes = torch.arange(1, CATEGORY_PLANES + 1, device=like.device).reshape(1, -1, 1, 1)
    return (index == planes).to(like.dtype).expand(-1, -1, *like.shape[-2:])


def view_plane(view: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The view as a constant input plane ``(B, 1, H, W)`` shaped like ``like`` ``(B, C, H, W)``: 0 front, 1 back.

    fitroom's front/back weight sharing (``hrviton-shared``): one set of weights serves both views when this plane
    is an extra input channel of the condition generator (``pose_channels`` 17) and of the image generator
    (``input_channels`` 10)."""
    return view.to(like.device, like.dtype).reshape(-1, 1, 1, 1).expand(-1, 1, *like.shape[-2:])


def generator_conditions(condition_generator: ConditionGenerator, cloth_low: torch.Tensor, pose_low: torch.Tensor,
                         cloth_full: torch.Tensor) -> dict[str, torch.Tensor]:
    """HR-VITON's steps between the two networks (inference, and the image stage's training with the condition
    generator frozen).

    Args:
        cloth_low: ``(B, 4, 256, 192)`` garment and mask at the condition generator's size.
        pose_low: ``(B, 16 or 17, 256, 192)`` agnostic parse one-hot, DensePose (and the view plane).
        cloth_full: ``(B, 4, H, W)`` garment and mask at the image generator's size.

    Returns:
        ``seg7`` ``(B, 7, H, W)`` one-hot layout for the generator; ``layout13`` ``(B, H, W)`` int64;
        ``warped_cloth`` ``(B, 3, H, W)`` on white; ``warped_mask`` ``(B, 1, H, W)`` after occlusion removal.
    """
    from kornia.filters import gaussian_blur2d

    from fitroom.labels import OCCLUDING_PARSE13, PARSE13_TO_7

    height, width = cloth_full.shape[-2:]
    low_height, low_width = cloth_low.shape[-2:]
    flows, seg, _, warped_mask_low = condition_generator(cloth_low, pose_low)
    # condition aligning: the upper-cloth logit times the warped mask
    seg = torch.cat([seg[:, :3], seg[:, 3:4] * warped_mask_low, seg[:, 4:]], 1)
    # the layout at full size: up-sampled, blurred (15x15, sigma 3), arg-maxed, regrouped to 7 classes
    blurred = gaussian_blur2d(F.interpolate(seg, size=(height, width), mode="bilinear"), (15, 15), (3.0, 3.0),
                              border_type="constant")
    layout13 = blurred.argmax(1)
    layout7 = torch.tensor(PARSE13_TO_7, device=seg.device)[layout13]
    seg7 = F.one_hot(layout7, 7).permute(0, 3, 1, 2).to(cloth_full.dtype)
    # the last flow up-sampled warps the full-size cloth; body parts in front of it are removed; cloth on white
    flow = F.interpolate(flows[-1].permute(0, 3, 1, 2), size=(height, width), mode="bilinear").permute(0, 2, 3, 1)
    grid = identity_grid(cloth_full.shape[0], height, width, flow) + normalise_flow(flow, low_height, low_width)
    warped = F.grid_sample(cloth_full, grid.to(cloth_full.dtype), padding_mode="border", align_corners=False)
    warped_cloth, warped_mask = warped[:, :3], warped[:, 3:]
    occluders = F.softmax(blurred, dim=1)[:, list(OCCLUDING_PARSE13)].sum(1, keepdim=True)
    warped_mask = warped_mask - occluders * warped_mask
    warped_cloth = warped_cloth * warped_mask + (1 - warped_mask)
    return {"seg7": seg7, "layout13": layout13, "warped_cloth": warped_cloth, "warped_mask": warped_mask}


def cloth_input(garment: torch.Tensor, garment_mask: torch.Tensor) -> torch.Tensor:
    """The condition generator's cloth input ``(B, 4, H, W)``: the garment ``(B, 3, H, W)`` and its mask
    ``(B, 1, H, W)``."""
    return torch.cat([garment, garment_mask.to(garment.dtype)], 1)


def parse13_of(parse: torch.Tensor, category: torch.Tensor | None = None) -> torch.Tensor:
    """``(B, H, W)`` CIHP labels grouped into HR-VITON's 13 classes, the garment tried on in ``Parse13.UPPER``
    for each sample's ``category`` ``(B,)`` (``GARMENT_CIHP_TO_13``; None: every sample a top, ``CIHP_TO_13``)."""
    from fitroom.labels import GARMENT_CIHP_TO_13

    tables = torch.tensor(GARMENT_CIHP_TO_13, device=parse.device)
    if category is None:
        return tables[0][parse]
    return tables[category.to(parse.device).reshape(-1, 1, 1), parse]


def pose_input(parse_agnostic: torch.Tensor, dense: torch.Tensor, view: torch.Tensor | None = None,
               category: torch.Tensor | None = None, with_category: bool = False) -> torch.Tensor:
    """The condition generator's pose input ``(B, 16, H, W)``: ``(B, 17, H, W)`` with the view plane, 2 more with
    the category planes.

    Args:
        parse_agnostic: ``(B, H, W)`` int64 CIHP labels of the agnostic parse (grouped into 13 classes here).
        dense: ``(B, 3, H, W)`` DensePose render.
        view: ``(B,)`` view indices (0 front, 1 back) for a view-input model, else None.
        category: ``(B,)`` category indices (0 upper, 1 lower, 2 dress), or None for tops.
        with_category: add the category planes (a category-input model).
    """
    from fitroom.imaging import one_hot

    parse13 = one_hot(parse13_of(parse_agnostic, category), PARSE_CLASSES).to(dense.dtype)
    planes = [parse13, dense] + ([view_plane(view, dense)] if view is not None else [])
    if with_category:
        planes.append(category_planes(_tops_if_none(category, dense), dense))
    return torch.cat(planes, 1)


def _tops_if_none(category: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros(like.shape[0], dtype=torch.long, device=like.device) if category is None else category


class HrvitonTryOn(nn.Module):
    """HR-VITON from input tensors to the try-on, as one module: the condition generator (at ``condition_size``),
    condition aligning, the full-size warp with occlusion removal, and the SPADE generator. The engine runs it; the
    generator stage trains its ``generator`` with its ``condition_generator`` frozen, through the same
    :meth:`conditions` and :meth:`generator_input`.

    ``forward`` takes tensors at the generator's size ``(H, W)``: ``garment`` ``(B, 3, H, W)``, ``garment_mask``
    ``(B, 1, H, W)``, ``parse_agnostic`` ``(B, H, W)`` CIHP int64, ``dense`` and ``agnostic`` ``(B, 3, H, W)``,
    ``view`` ``(B,)`` int64, ``category`` ``(B,)`` int64 or None (tops); images in [-1, 1]. It returns
    :func:`generator_conditions`'s dict plus ``image`` ``(B, 3, H, W)``. With :meth:`set_noise` ``(False)`` the
    output depends on the inputs only (for export).
    """

    def __init__(self, condition_generator: ConditionGenerator, generator: SPADEGenerator,
                 condition_size: tuple[int, int] = (256, 192)) -> None:
        super().__init__()
        if condition_generator.config.view_input != generator.config.view_input:
            raise ValueError("the condition generator and the image generator disagree about the view input "
                             f"({condition_generator.config.view_input} and {generator.config.view_input}); train "
                             f"both stages with the same view_input")
        if condition_generator.config.category_input != generator.config.category_input:
            raise ValueError("the condition generator and the image generator disagree about the category input "
                             f"({condition_generator.config.category_input} and "
                             f"{generator.config.category_input}); train both stages with the same category_input")
        self.condition_generator = condition_generator
        self.generator = generator
        self.condition_size = tuple(condition_size)

    @property
    def view_input(self) -> bool:
        return bool(self.generator.config.view_input)

    @property
    def category_input(self) -> bool:
        return bool(self.generator.config.category_input)

    def set_noise(self, enabled: bool) -> "HrvitonTryOn":
        for module in self.generator.modules():
            if isinstance(module, SPADENorm):
                module.noise = enabled
            elif isinstance(module, FusedSPADEResBlock):
                module.noise = [enabled] * len(module.noise)
        return self

    def exportable(self) -> "HrvitonTryOn":
        """A copy for ``torch.export`` / ONNX: in eval mode, without SPADE noise, with each spectral norm folded
        into its weight (in eval mode the same numbers; nothing is recomputed at run time)."""
        import copy

        from torch.nn.utils import remove_spectral_norm

        model = copy.deepcopy(self).eval().set_noise(False)
        for module in model.modules():
            if hasattr(module, "weight_orig"):
                remove_spectral_norm(module)
        return model

    def condition_inputs(self, garment: torch.Tensor, garment_mask: torch.Tensor, parse_agnostic: torch.Tensor,
                         dense: torch.Tensor, view: torch.Tensor, category: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """The condition generator's ``(cloth, pose)`` at ``condition_size`` (images bilinear, masks and labels
        nearest, as the reference down-samples them)."""
        size = self.condition_size if garment.shape[-2] >= self.condition_size[0] else tuple(garment.shape[-2:])

        def low(value: torch.Tensor, mode: str) -> torch.Tensor:
            if tuple(value.shape[-2:]) == size:
                return value
            if value.ndim == 3:  # labels
                return F.interpolate(value[:, None].float(), size=size, mode="nearest")[:, 0].long()
            return F.interpolate(value, size=size, mode=mode)

        pose = pose_input(low(parse_agnostic, "nearest"), low(dense, "bilinear"),
                          view if self.view_input else None, category, self.category_input)
        return cloth_input(low(garment, "bilinear"), low(garment_mask, "nearest")), pose

    def conditions(self, garment: torch.Tensor, garment_mask: torch.Tensor, parse_agnostic: torch.Tensor,
                   dense: torch.Tensor, view: torch.Tensor, category: torch.Tensor | None = None,
                   network: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The layout and the warped garment at full size (:func:`generator_conditions`); ``network``: the
        condition generator to run instead of ``condition_generator`` (its compiled form)."""
        cloth_low, pose_low = self.condition_inputs(garment, garment_mask, parse_agnostic, dense, view, category)
        return generator_conditions(self.condition_generator if network is None else network, cloth_low, pose_low,
                                    cloth_input(garment, garment_mask))

    def generator_input(self, agnostic: torch.Tensor, dense: torch.Tensor, warped_cloth: torch.Tensor,
                        view: torch.Tensor, category: torch.Tensor | None = None) -> torch.Tensor:
        """The image generator's input ``(B, 9, H, W)``, 10 with the view plane, 2 more with the category's."""
        planes = [agnostic, dense, warped_cloth] + ([view_plane(view, warped_cloth)] if self.view_input else [])
        if self.category_input:
            planes.append(category_planes(_tops_if_none(category, warped_cloth), warped_cloth))
        return torch.cat(planes, 1)

    def forward(self, garment: torch.Tensor, garment_mask: torch.Tensor, parse_agnostic: torch.Tensor,
                dense: torch.Tensor, agnostic: torch.Tensor, view: torch.Tensor,
                category: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        conditions = self.conditions(garment, garment_mask, parse_agnostic, dense, view, category)
        x = self.generator_input(agnostic, dense, conditions["warped_cloth"], view, category)
        return {**conditions, "image": self.generator(x, conditions["seg7"])}


@register_model("hrviton_condition")
def hrviton_condition(**overrides) -> ConditionGenerator:
    return ConditionGenerator(ConditionGeneratorConfig(**overrides))


@register_model("hrviton_generator")
def hrviton_generator(**overrides) -> SPADEGenerator:
    return SPADEGenerator(SPADEGeneratorConfig(**overrides))


@register_model("test_hrviton_condition")
def test_hrviton_condition(**overrides) -> ConditionGenerator:
    return ConditionGenerator(ConditionGeneratorConfig(**{"ngf": 8, **overrides}))


@register_model("test_hrviton_generator")
def test_hrviton_generator(**overrides) -> SPADEGenerator:
    return SPADEGenerator(SPADEGeneratorConfig(**{"ngf": 4, "num_upsampling_layers": "more", **overrides}))


# ------------------------------------------------------------------------------------------------------------
# Discriminators
# ------------------------------------------------------------------------------------------------------------
def _patch_discriminator(cin: int, spectral: bool, final_stride_one_width: bool, dropout: bool) -> nn.Sequential:
    """A 4x4 PatchGAN (pix2pixHD/SPADE layout, padding 2).

    ``final_stride_one_width``: the condition discriminator's layout (64, 128, 256 at stride 2, 512 at stride 1,
    then 1; convolutions with bias); otherwise the image discriminator's (64 and 128 at stride 2, 256 at stride 1,
    then 1; spectral norm and no bias on the normalised convolutions).
    """
    def conv(a: int, b: int, stride: int, bias: bool = True) -> nn.Module:
        layer = nn.Conv2d(a, b, 4, stride=stride, padding=2, bias=bias)
        return spectral_norm(layer) if spectral else layer

    layers: list[nn.Module] = [nn.Sequential(conv(cin, 64, 2), nn.LeakyReLU(0.2))]
    widths = (64, 128, 256, 512) if final_stride_one_width else (64, 128, 256)
    for i in range(1, len(widths)):
        stride = 1 if i == len(widths) - 1 else 2
        block = [conv(widths[i - 1], widths[i], stride, bias=not spectral), nn.InstanceNorm2d(widths[i]),
                 nn.LeakyReLU(0.2)]
        if dropout and i in (1, 2):
            block.append(nn.Dropout(0.5))
        layers.append(nn.Sequential(*block))
    layers.append(nn.Sequential(conv(widths[-1], 1, 1)))
    return nn.Sequential(*layers)


@dataclass
class DiscriminatorConfig:
    input_channels: int = 33  # condition D: cloth 4 + pose 16 + layout 13; image D: layout 7 + image 3
    num_scales: int = 2
    image: bool = False  # the image generator's discriminator (spectral norm, hinge loss) instead of the condition one
    downsample_first: bool = True  # HR-VITON's --Ddownx2 (condition D only)
    dropout: bool = True  # HR-VITON's --Ddropout (condition D only)


class MultiscaleDiscriminator(nn.Module):
    """Patch discriminators on the input and on its 2x down-sampled copies.

    ``forward(x)`` ``(B, C, H, W)`` returns, per scale, the list of every layer's output (the last is the patch
    map; the others serve feature matching).
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DiscriminatorConfig()
        for i in range(c.num_scales):
            setattr(self, f"scale_{i}", _patch_discriminator(c.input_channels, spectral=c.image,
                                                            final_stride_one_width=not c.image,
                                                            dropout=c.dropout and not c.image))

    @staticmethod
    def _down(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.input_channels:
            raise ValueError(f"expected (B, {c.input_channels}, H, W), got {tuple(x.shape)}")
        if c.downsample_first and not c.image:
            x = self._down(x)
        outputs = []
        for i in range(c.num_scales):
            features, out = [], x
            for layer in getattr(self, f"scale_{i}"):
                out = layer(out)
                features.append(out)
            outputs.append(features)
            x = self._down(x)
        return outputs

    def config_dict(self) -> dict:
        return asdict(self.config)


@register_model("hrviton_condition_discriminator")
def hrviton_condition_discriminator(**overrides) -> MultiscaleDiscriminator:
    return MultiscaleDiscriminator(DiscriminatorConfig(**overrides))


@register_model("hrviton_image_discriminator")
def hrviton_image_discriminator(**overrides) -> MultiscaleDiscriminator:
    return MultiscaleDiscriminator(DiscriminatorConfig(**{"input_channels": GENERATOR_SEMANTIC_CLASSES + 3,
                                                         "image": True, "downsample_first": False,
                                                         "dropout": False, **overrides}))


@register_model("test_hrviton_condition_discriminator")
def test_hrviton_condition_discriminator(**overrides) -> MultiscaleDiscriminator:
    return hrviton_condition_discriminator(**{"num_scales": 1, **overrides})


@register_model("test_hrviton_image_discriminator")
def test_hrviton_image_discriminator(**overrides) -> MultiscaleDiscriminator:
    return hrviton_image_discriminator(**{"num_scales": 1, **overrides})
