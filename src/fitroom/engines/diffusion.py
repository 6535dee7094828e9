"""The ``diffusion`` engine: Leffa's generative UNet guided by its reference UNet (:mod:`fitroom.models.leffa`),
from a folder ``fitroom convert leffa`` made.

Steps:
1. the person, the garment and the DensePose render at the working size (multiples of the UNet's latent grid);
2. the mask of what is regenerated: the garment's category's clothing and the arms (upper), legs (lower) or both
   (dress) of the parse, grown by a margin, never covering what the preprocessing keeps (face, hair, hands);
3. the masked person and the garment encoded by the VAE (a posterior sample), the mask and the DensePose image
   nearest-down-sampled to the latent grid;
4. the sampling loop (classifier-free guidance with a zero garment latent, the published rescale; DDPM as
   published, or DDIM / DPM-Solver by option), every random draw from one generator seeded with ``seed``;
5. the VAE decodes; the result is resized back to the photo, and every pixel outside the mask (and every kept
   pixel) is the photo's own, bit for bit.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from fitroom import imaging
from fitroom.devices import native_bf16
from fitroom.engines import register_engine
from fitroom.errors import ConfigurationError
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import REGENERATED_LABELS, Body25, GarmentCategory

SCHEDULERS = ("ddpm", "ddim", "dpm")


def regeneration_mask(inputs: TryOnInputs, margin: float = 0.03) -> np.ndarray:
    """``(H, W)`` bool: where the garment is drawn. The category's labels of the parse, grown by ``margin`` of the
    image's height, never above the neck, minus every pixel the preprocessing keeps."""
    labels = np.isin(inputs.parse, [int(label) for label in REGENERATED_LABELS[GarmentCategory(inputs.category)]])
    radius = max(1, int(round(margin * inputs.person.shape[0])))
    grown = cv2.dilate(labels.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                          (2 * radius + 1, 2 * radius + 1)))
    mask = grown.astype(bool)
    k = inputs.keypoints
    if k is not None and k[Body25.NECK, 2] > 0:  # no garment reaches above the neck, whatever the parse says
        shoulders = [j for j in (Body25.R_SHOULDER, Body25.L_SHOULDER) if k[j, 2] > 0]
        width = abs(k[shoulders[0], 0] - k[shoulders[-1], 0]) if len(shoulders) == 2 else 0.1 * mask.shape[0]
        mask[: max(0, int(k[Body25.NECK, 1] - 0.15 * width))] = False
    if inputs.keep is not None:
        mask &= ~inputs.keep
    return mask


@register_engine("diffusion")
class DiffusionEngine:
    """Leffa try-on.

    Args:
        checkpoint: a folder made by ``fitroom convert leffa`` (``unet/``, ``reference_unet/``, ``vae/``,
            ``scheduler/``).
        steps: denoising steps (the published demo uses 30). guidance: the guidance scale (2.5).
        seed: every random draw (VAE posterior samples, the initial noise, the scheduler's noise) comes from one
            generator seeded with it: the same seed gives the same image.
        scheduler: ``ddpm`` (as published), ``ddim`` or ``dpm`` (DPM-Solver++, fewer steps).
        size: the working ``(H, W)`` (default 1024x768, Leffa's).
        reference_once: run the reference UNet once, at the middle timestep (faster), instead of at every step.
        device: where to run. progress: show a progress bar over the steps.
        precision: ``fp32``, ``bf16`` (autocast) or ``auto``: bf16 where the device computes it natively.
    """

    def __init__(self, checkpoint: str | Path | None = None, steps: int = 30, guidance: float = 2.5, seed: int = 42,
                 scheduler: str = "ddpm", size: tuple[int, int] = (1024, 768), reference_once: bool = False,
                 device: str | torch.device = "cpu", progress: bool = True, precision: str = "auto",
                 model=None) -> None:
        from fitroom.models.leffa_convert import load_leffa

        if model is None:
            if checkpoint is None:
                raise ConfigurationError("the diffusion engine needs a checkpoint folder (--checkpoint DIR): make one "
                                         "with `fitroom convert leffa --checkpoint virtual_tryon.pth --base "
                                         "stable-diffusion-inpainting --out DIR`")
            model = load_leffa(checkpoint)
        if scheduler not in SCHEDULERS:
            raise ConfigurationError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
        self.unets, self.vae, published = model
        # settings under their constructor names (the evaluation's result cache is keyed on them)
        self.sampler = _scheduler(published, scheduler)
        self.steps, self.guidance, self.seed = int(steps), float(guidance), int(seed)
        self.scheduler, self.reference_once, self.progress = scheduler, bool(reference_once), progress
        grid = 8 * 2 ** (len(self.unets.unet.config.block_out_channels) - 1)
        if size[0] % grid or size[1] % grid:
            raise ConfigurationError(f"size must be multiples of {grid} for this UNet, got {size[0]}x{size[1]}")
        self.size = tuple(size)
        self.device = torch.device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise ConfigurationError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.precision = ("bf16" if native_bf16(self.device) else "fp32") if precision == "auto" else precision
        self.unets.to(self.device).eval()
        self.vae.to(self.device).eval()

    @torch.no_grad()
    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        from fitroom.models.leffa import Conditions, sample

        for name in ("garment", "dense", "parse"):
            if getattr(inputs, name) is None:
                raise InputsError(f"the diffusion engine needs {name} (the preprocessing makes it)")
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        mask = regeneration_mask(inputs)
        tensors = inputs.to_tensors(self.size)
        person = tensors["person"][None].to(self.device)
        garment = tensors["garment"][None].to(self.device)
        dense = tensors["dense"][None].to(self.device)
        pixel_mask = torch.from_numpy(imaging.resize(mask, self.size, "mask")).float()[None, None].to(self.device)
        masked_person = person * (pixel_mask < 0.5)
        timings["inputs"] = time.perf_counter() - clock

        clock = time.perf_counter()
        scaling = self.vae.config.scaling_factor
        masked_latent = self._encode(masked_person, generator)
        garment_latent = self._encode(garment, generator)
        conditions = Conditions.from_pixels(pixel_mask, dense, masked_latent, garment_latent, scaling)
        noise = torch.randn(masked_latent.shape, generator=generator).to(self.device)
        timings["encode"] = time.perf_counter() - clock

        clock = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            latent = sample(self.unets, self.sampler, noise, conditions, self.steps, self.guidance,
                            generator=generator, reference_once=self.reference_once, progress=self.progress)
        latent = latent.float()
        timings["denoise"] = time.perf_counter() - clock

        clock = time.perf_counter()
        decoded = self.vae.decode(latent / scaling, return_dict=False)[0]
        image = imaging.resize(imaging.tensor_to_image(decoded[0].float().clamp(-1, 1).cpu()), inputs.size, "image")
        # outside the mask the photo is returned as it was, and what the preprocessing keeps is the photo's too
        result = inputs.restore_kept(np.where(mask[..., None], image, inputs.person))
        timings["decode"] = time.perf_counter() - clock
        return TryOnResult(image=result, engine="diffusion", timings=timings,
                           extras={"mask": mask.astype(np.uint8) * 255})

    def _encode(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A posterior sample of the VAE ``(1, 4, h, w)`` (before scaling), drawn from ``generator``."""
        posterior = self.vae.encode(image.to(self.vae.dtype), return_dict=False)[0]
        epsilon = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean.device)
        return posterior.mean + posterior.std * epsilon


def _scheduler(published, name: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if name == "ddpm":
        return published
    kind = DDIMScheduler if name == "ddim" else DPMSolverMultistepScheduler
    return kind.from_config(published.config)

