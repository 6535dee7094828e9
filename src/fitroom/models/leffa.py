"""Leffa's two UNets (a generative UNet guided by a reference UNet) on diffusers' own ``UNet2DConditionModel``.

Paper: Zhou et al., "Learning Flow Fields in Attention for Controllable Person Image Generation", 2024; public code
``franciszzj/Leffa`` (MIT). This is fitroom's implementation from the facts the team wrote down; it forks no UNet
file: the stock diffusers UNet is built from a base model's ``unet/config.json`` and only its attention processors
change.

* The **reference UNet** (``in_channels`` 4: the garment latent) runs its blocks normally; in every transformer
  block the input of self-attention (the ``norm1`` output, ``(B, N, C)``) is recorded, in execution order (down
  blocks, mid block, up blocks).
* The **generative UNet** (``in_channels`` 12: noisy latent 4, mask 1, masked-image latent 4, DensePose 3) runs the
  k-th transformer block's self-attention with its own tokens as queries over ``[own tokens ; reference feature
  k]`` as keys and values (the reference tokens are not re-normalised).
* In both, **cross-attention is skipped but not removed**: the ``attn2`` processor returns its input, so the block
  computes ``h + norm2(h)`` (the published weights of ``attn2`` stay in the state dict, unused).
* ``addition_embed_type`` is switched off (SDXL's micro-conditioning is never computed).

Classifier-free guidance drops the garment by zeroing its latent; the published pipeline then applies the rescale
of Lin et al. with phi equal to the guidance scale (:func:`guide`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from fitroom.models import register_model


class _Features:
    """The reference UNet's block features of one forward pass, and the generative UNet's position in them."""

    def __init__(self) -> None:
        self.recorded: list[torch.Tensor] = []
        self.injected: list[torch.Tensor] | None = None
        self.position = 0
        self.flows: list[torch.Tensor] | None = None  # a list: receives each block's attention to the reference

    def take(self) -> torch.Tensor:
        if self.injected is None or self.position >= len(self.injected):
            count = 0 if self.injected is None else len(self.injected)
            raise ValueError(f"the generative UNet has more transformer blocks than the {count} reference features "
                             f"given; build both UNets from the same base configuration")
        feature = self.injected[self.position]
        self.position += 1
        return feature


class SkipCrossAttention:
    """``attn2`` as the reference runs it: the processor returns its (``norm2``-ed) input, which the transformer
    block adds to its hidden states: ``h + norm2(h)``."""

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        return hidden_states


class RecordingSelfAttention:
    """``attn1`` of the reference UNet: plain self-attention, its input recorded as that block's feature."""

    def __init__(self, features: _Features) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.features, self.attend = features, AttnProcessor2_0()

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        self.features.recorded.append(hidden_states)
        return self.attend(attn, hidden_states, None, attention_mask, temb)


class InjectingSelfAttention:
    """``attn1`` of the generative UNet: queries from its own tokens, keys and values from its own tokens followed
    by the reference feature of the same block."""

    def __init__(self, features: _Features) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.features, self.attend = features, AttnProcessor2_0()

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None, *args, **kwargs) -> torch.Tensor:
        reference = self.features.take().to(hidden_states.dtype)
        if self.features.flows is not None:
            self.features.flows.append(reference_attention(attn, hidden_states, reference))
        return self.attend(attn, hidden_states, torch.cat([hidden_states, reference], 1), attention_mask, temb)


def reference_attention(attn, hidden_states: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``(B, N, M)``: how each of the generative UNet's ``N`` tokens attends to the ``M`` reference tokens of the same
    block (the block's own queries and keys, softmax over the reference tokens, averaged over heads): the attention
    whose flow field the Leffa loss supervises."""
    query, key = attn.to_q(hidden_states), attn.to_k(reference)
    batch, heads = query.shape[0], attn.heads
    query = query.view(batch, query.shape[1], heads, -1).transpose(1, 2)
    key = key.view(batch, key.shape[1], heads, -1).transpose(1, 2)
    return (query @ key.transpose(-1, -2) * attn.scale).softmax(-1).mean(1)


def attention_flow_loss(attention: list[torch.Tensor], reference: torch.Tensor, target: torch.Tensor,
                        region: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The Leffa loss (Zhou et al., 2024, "learning flow fields in attention"): each block's attention to the
    reference, read as a flow field (every token's expected position in the reference grid), warps the reference
    image, which must then match the target inside ``region``.

    Args:
        attention: ``[(B, N_k, N_k)]`` :func:`reference_attention` of some blocks, each on a token grid of the
            picture's aspect ratio (``N_k = h_k * w_k``).
        reference: ``(B, 3, H, W)`` the reference UNet's picture (the garment). target: ``(B, 3, H, W)`` the picture
            to draw. region: ``(B, 1, H, W)`` where the loss applies (the regenerated area).
        weights: ``(B,)`` per sample (0: left out, e.g. a dropped garment or a noisy timestep).

    Returns:
        the mean squared error of the warped reference, over blocks and weighted samples (a scalar).
    """
    import torch.nn.functional as F

    height, width = target.shape[-2:]
    total = target.new_zeros(())
    for probs in attention:
        scale = (height * width / probs.shape[1]) ** 0.5
        h, w = round(height / scale), round(width / scale)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=probs.device),
                                torch.linspace(-1, 1, w, device=probs.device), indexing="ij")
        grid = torch.stack([xs, ys], -1).view(1, h * w, 2).to(probs.dtype)
        flow = (probs @ grid).view(-1, h, w, 2).permute(0, 3, 1, 2)
        flow = F.interpolate(flow.float(), size=(height, width), mode="bilinear", align_corners=True)
        warped = F.grid_sample(reference.float(), flow.permute(0, 2, 3, 1), align_corners=True)
        error = ((warped - target.float()) ** 2 * region).sum((1, 2, 3)) / (3 * region.sum((1, 2, 3)).clamp(min=1))
        total = total + (error * weights).sum() / weights.sum().clamp(min=1e-8)
    return total / max(1, len(attention))


def _processors(unet, self_attention) -> dict:
    return {name: self_attention if name.endswith("attn1.processor") else SkipCrossAttention()
            for name in unet.attn_processors}


@dataclass
class LeffaConfig:
    """The base UNet configuration both UNets are built from (a diffusers ``unet/config.json`` as a dict), with the
    input widths Leffa gives them."""

    unet: dict = field(default_factory=dict)
    generative_in_channels: int = 12  # noisy latent 4 + mask 1 + masked-image latent 4 + DensePose 3
    reference_in_channels: int = 4  # the garment latent

    def build(self, in_channels: int):
        from diffusers import UNet2DConditionModel

        values = {k: v for k, v in self.unet.items() if not k.startswith("_")}
        values["in_channels"] = in_channels
        unet = UNet2DConditionModel.from_config(values)
        # micro-conditioning off (the config may still say text_time, as SDXL's does; its weights stay)
        unet.config.addition_embed_type = None
        return unet


class LeffaUNets(nn.Module):
    """The generative and the reference UNet, with Leffa's attention processors.

    Parameter names: ``unet.*`` (generative) and ``unet_encoder.*`` (reference), as the published checkpoints
    prefix them (without their ``vae.*``).
    """

    def __init__(self, config: LeffaConfig) -> None:
        super().__init__()
        self.config = config
        self._features = _Features()
        self.unet = config.build(config.generative_in_channels)
        self.unet_encoder = config.build(config.reference_in_channels)
        self.unet.set_attn_processor(_processors(self.unet, InjectingSelfAttention(self._features)))
        self.unet_encoder.set_attn_processor(_processors(self.unet_encoder, RecordingSelfAttention(self._features)))

    def config_dict(self) -> dict:
        return {"unet": copy.deepcopy(self.config.unet), "generative_in_channels": self.config.generative_in_channels,
                "reference_in_channels": self.config.reference_in_channels}

    def reference_features(self, garment_latent: torch.Tensor, timestep: torch.Tensor | int) -> list[torch.Tensor]:
        """The reference UNet's block features ``[(B, N_k, C_k)]`` for ``garment_latent`` ``(B, 4, h, w)`` at
        ``timestep`` (down -> mid -> up)."""
        self._features.recorded = []
        self.unet_encoder(garment_latent, timestep, encoder_hidden_states=None, return_dict=False)
        features, self._features.recorded = self._features.recorded, []
        return features

    def forward(self, unet_input: torch.Tensor, timestep: torch.Tensor | int,
                reference_features: list[torch.Tensor], flows: list | None = None) -> torch.Tensor:
        """The generative UNet's noise prediction ``(B, 4, h, w)`` for ``unet_input`` ``(B, 12, h, w)``; ``flows``
        (a list) receives every block's :func:`reference_attention` (for :func:`attention_flow_loss`)."""
        self._features.injected, self._features.position = reference_features, 0
        self._features.flows = flows
        try:
            output = self.unet(unet_input, timestep, encoder_hidden_states=None, return_dict=False)[0]
            if self._features.position != len(reference_features):
                raise ValueError(f"{len(reference_features)} reference features were given, the generative UNet "
                                 f"used {self._features.position}")
            return output
        finally:
            self._features.injected, self._features.flows = None, None


def unet_input(noisy_latent: torch.Tensor, mask_latent: torch.Tensor, masked_image_latent: torch.Tensor,
               densepose_latent: torch.Tensor) -> torch.Tensor:
    """The generative UNet's 12 input channels, in Leffa's order: noisy latent (4), mask (1), masked-image latent
    (4), DensePose (3)."""
    return torch.cat([noisy_latent, mask_latent, masked_image_latent, densepose_latent], 1)


def guide(noise_pred: torch.Tensor, scale: float, rescale: float | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Classifier-free guidance on a ``[unconditional ; conditional]`` batch ``(2B, C, h, w)``: ``(guided,
    rescaled)``, each ``(B, C, h, w)``.

    The rescale (Lin et al. 2023) uses phi = ``rescale``, which the published pipeline sets to the guidance scale
    (its default here): ``phi * guided * std(cond) / std(guided) + (1 - phi) * guided``, with per-sample unbiased
    standard deviations over (C, h, w).
    """
    unconditional, conditional = noise_pred.chunk(2)
    guided = unconditional + scale * (conditional - unconditional)
    phi = scale if rescale is None else rescale
    ratio = conditional.std(dim=(1, 2, 3), keepdim=True) / guided.std(dim=(1, 2, 3), keepdim=True)
    return guided, phi * (guided * ratio) + (1 - phi) * guided


#: the UNet layout of the SD-1.5 inpainting base (Leffa's try-on checkpoints), as its ``unet/config.json`` gives it
SD15_INPAINTING_UNET: dict = {
    "sample_size": 64, "in_channels": 9, "out_channels": 4, "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 2, "cross_attention_dim": 768, "attention_head_dim": 8, "norm_num_groups": 32,
    "flip_sin_to_cos": True, "freq_shift": 0,
}
#: the UNet layout of the SDXL inpainting base (Leffa's pose-transfer checkpoint)
SDXL_INPAINTING_UNET: dict = {
    "sample_size": 128, "in_channels": 9, "out_channels": 4, "block_out_channels": [320, 640, 1280],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "layers_per_block": 2, "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816, "norm_num_groups": 32,
    "flip_sin_to_cos": True, "freq_shift": 0,
}


@register_model("leffa_sd15")
def leffa_sd15(**overrides) -> LeffaUNets:
    """Both UNets at the SD-1.5 inpainting layout (Leffa's virtual try-on)."""
    return LeffaUNets(LeffaConfig(**{"unet": SD15_INPAINTING_UNET, **overrides}))


@register_model("leffa_sdxl")
def leffa_sdxl(**overrides) -> LeffaUNets:
    """Both UNets at the SDXL inpainting layout (Leffa's pose transfer)."""
    return LeffaUNets(LeffaConfig(**{"unet": SDXL_INPAINTING_UNET, **overrides}))


@register_model("test_leffa_sd15")
def test_leffa_sd15(**overrides) -> LeffaUNets:
    return test_leffa(**overrides)


@register_model("test_leffa_sdxl")
def test_leffa_sdxl(**overrides) -> LeffaUNets:
    """A tiny SDXL-like layout: linear projections, two transformer layers in the last level, text_time switched
    off."""
    unet = {**SDXL_INPAINTING_UNET, "sample_size": 16, "block_out_channels": [32, 64],
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "transformer_layers_per_block": [1, 2],
            "attention_head_dim": [2, 4], "cross_attention_dim": 32, "norm_num_groups": 8,
            "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 32 + 6 * 8}
    return LeffaUNets(LeffaConfig(**{"unet": unet, **overrides}))


@register_model("test_leffa")
def test_leffa(**overrides) -> LeffaUNets:
    """A tiny random configuration of both UNets (the layout of the team's parity fixture)."""
    unet = {"sample_size": 16, "in_channels": 9, "out_channels": 4, "block_out_channels": [32, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "mid_block_type": "UNetMidBlock2DCrossAttn",
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 2, "norm_num_groups": 8,
            "cross_attention_dim": 32, "attention_head_dim": 4, "flip_sin_to_cos": True, "freq_shift": 0}
    config = {"unet": unet, **overrides}
    return LeffaUNets(LeffaConfig(**config))


@register_model("test_leffa_pixel")
def test_leffa_pixel(**overrides) -> LeffaUNets:
    """A tiny configuration in pixel space (no VAE): 3 "latent" channels are the RGB image itself, so the generative
    UNet takes 3 + 1 + 3 + 3 = 10 channels and the reference UNet 3; for training on the CPU at small sizes."""
    unet = {"sample_size": 32, "out_channels": 3, "block_out_channels": [32, 64],
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "mid_block_type": "UNetMidBlock2DCrossAttn",
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1, "norm_num_groups": 8,
            "cross_attention_dim": 32, "attention_head_dim": 4, "flip_sin_to_cos": True, "freq_shift": 0}
    return LeffaUNets(LeffaConfig(**{"unet": unet, "generative_in_channels": 10, "reference_in_channels": 3,
                                     **overrides}))


class PixelSpace(nn.Module):
    """The identity in place of a VAE, for models trained in pixel space (``leffa_pixel``, ``test_leffa_pixel``):
    "encoding" an image ``(B, 3, H, W)`` in [-1, 1] returns it as the posterior's mean with zero spread, decoding
    returns its input. Offers what the engine uses of diffusers' ``AutoencoderKL`` (``config.scaling_factor``,
    ``encode``, ``decode``, ``dtype``), so one engine serves both spaces."""

    class _Posterior:
        def __init__(self, image: torch.Tensor) -> None:
            self.mean, self.std = image, torch.zeros_like(image)

    def __init__(self) -> None:
        super().__init__()
        self.config = type("PixelSpaceConfig", (), {"scaling_factor": 1.0, "latent_channels": 3})()
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device / dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    def encode(self, image: torch.Tensor, return_dict: bool = False) -> tuple:
        return (self._Posterior(image),)

    def decode(self, latent: torch.Tensor, return_dict: bool = False) -> tuple:
        return (latent,)


@register_model("leffa_pixel")
def leffa_pixel(**overrides) -> LeffaUNets:
    """A small pixel-space configuration for training on the CPU (at 128x96 here): three levels (32, 64, 128 channels),
    attention only at the lowest one (a quarter of the picture's size: 3,072 tokens at 256x192, the
    generative UNet's self-attention over 6,144 with the reference's), as Leffa attends at an eighth (its latent
    grid) and never at full resolution. 10 input channels (3 + 1 + 3 + 3) and 3 reference channels, as
    ``test_leffa_pixel``."""
    unet = {"sample_size": 64, "out_channels": 3, "block_out_channels": [32, 64, 128],
            "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
            "mid_block_type": "UNetMidBlock2DCrossAttn",
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"], "layers_per_block": 1,
            "norm_num_groups": 8, "cross_attention_dim": 32, "attention_head_dim": 8, "flip_sin_to_cos": True,
            "freq_shift": 0}
    return LeffaUNets(LeffaConfig(**{"unet": unet, "generative_in_channels": 10, "reference_in_channels": 3,
                                     **overrides}))


@register_model("leffa")
def leffa(**overrides) -> LeffaUNets:
    """Both UNets from a base model's UNet configuration (``unet=`` the ``unet/config.json`` dict)."""
    return LeffaUNets(LeffaConfig(**overrides))


@dataclass
class Conditions:
    """What the generative UNet is conditioned on, in latent space, for ``B`` samples.

    Attributes:
        mask: ``(B, 1, h, w)`` 1 where the picture is regenerated (the pixel mask, nearest-down-sampled).
        masked_image: ``(B, 4, h, w)`` the masked person's latent, times the VAE's scaling factor.
        densepose: ``(B, 3, h, w)`` the DensePose image in [-1, 1], nearest-down-sampled (not VAE-encoded).
        garment: ``(B, 4, h, w)`` the garment's latent, times the VAE's scaling factor (the reference UNet's input).
    """

    mask: torch.Tensor
    masked_image: torch.Tensor
    densepose: torch.Tensor
    garment: torch.Tensor

    @classmethod
    def from_pixels(cls, mask: torch.Tensor, densepose: torch.Tensor, masked_image_latent: torch.Tensor,
                    garment_latent: torch.Tensor, scaling_factor: float) -> "Conditions":
        """From pixel-size ``mask`` ``(B, 1, H, W)`` and ``densepose`` ``(B, 3, H, W)`` and the VAE's raw latents
        ``(B, 4, H/8, W/8)`` (before scaling), as the published pipeline forms them (nearest keeps pixel (8i, 8j))."""
        import torch.nn.functional as F

        size = masked_image_latent.shape[-2:]
        return cls(F.interpolate(mask, size=size, mode="nearest"), masked_image_latent * scaling_factor,
                   F.interpolate(densepose, size=size, mode="nearest"), garment_latent * scaling_factor)


def sample(model: LeffaUNets, scheduler, noise: torch.Tensor, conditions: Conditions, steps: int,
           guidance_scale: float = 2.5, generator: torch.Generator | None = None, reference_once: bool = False,
           progress: bool = False, record: list | None = None) -> torch.Tensor:
    """Leffa's sampling loop: classifier-free guidance with a zero garment latent for the unconditional half, the
    rescale with phi = ``guidance_scale``, and ``scheduler`` steps (a diffusers scheduler, DDPM in the published
    pipeline) whose random draws come from ``generator``.

    Args:
        noise: ``(B, 4, h, w)`` the initial latent.
        reference_once: run the reference UNet once, at the middle timestep, and reuse its features (the published
            ``ref_acceleration``); else at every step, at that step's timestep.
        record: a list that receives, per step, ``{"t", "unet_input", "noise_pred", "noise_pred_cfg",
            "noise_pred_rescaled", "prev_sample"}``.

    Returns:
        ``(B, 4, h, w)`` the final latent (divide by the VAE's scaling factor to decode).
    """
    from tqdm import tqdm

    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    garment = torch.cat([torch.zeros_like(conditions.garment), conditions.garment])
    cfg = [torch.cat([value, value]) for value in (conditions.mask, conditions.masked_image, conditions.densepose)]
    features = model.reference_features(garment, timesteps[steps // 2]) if reference_once else None
    latent = noise * scheduler.init_noise_sigma
    for t in tqdm(timesteps, desc="denoising", unit="step", disable=not progress):
        latent_in = scheduler.scale_model_input(torch.cat([latent, latent]), t)
        x = unet_input(latent_in, *cfg)
        step_features = features if reference_once else model.reference_features(garment, t)
        noise_pred = model(x, t, step_features)
        guided, rescaled = guide(noise_pred, guidance_scale)
        latent = scheduler.step(rescaled, t, latent, generator=generator, return_dict=False)[0]
        if record is not None:
            record.append({"t": t, "unet_input": x, "noise_pred": noise_pred, "noise_pred_cfg": guided,
                           "noise_pred_rescaled": rescaled, "prev_sample": latent})
    return latent
