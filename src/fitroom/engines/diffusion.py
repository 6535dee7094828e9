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

import numpy as np
import torch

from fitroom import imaging
from fitroom.devices import native_bf16
from fitroom.engines import register_engine
from fitroom.errors import ConfigurationError
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import REGENERATED_LABELS, Body25, GarmentCategory

SCHEDULERS = ("ddpm", "ddim", "dpm")


def garment_area(parse: np.ndarray, keypoints: np.ndarray | None, category: GarmentCategory | str,
                 margin: float = 0.03) -> np.ndarray:
    """``(H, W)`` bool: where a garment of ``category`` is drawn: the category's labels of the ``parse``, grown by
    ``margin`` of the image's height, never above the neck (``keypoints``, BODY_25 in the parse's pixels). The
    engine and the training stage both use it, so a model learns the region it is asked to fill."""
    labels = np.isin(parse, [int(label) for label in REGENERATED_LABELS[GarmentCategory(category)]])
    mask = imaging.dilate(labels, max(1, int(round(margin * parse.shape[0]))))
    k = keypoints
    if k is not None and k[Body25.NECK, 2] > 0:  # no garment reaches above the neck, whatever the parse says
        shoulders = [j for j in (Body25.R_SHOULDER, Body25.L_SHOULDER) if k[j, 2] > 0]
        width = abs(k[shoulders[0], 0] - k[shoulders[-1], 0]) if len(shoulders) == 2 else 0.1 * mask.shape[0]
        mask[: max(0, int(k[Body25.NECK, 1] - 0.15 * width))] = False
    return mask


def regeneration_mask(inputs: TryOnInputs, margin: float = 0.03) -> np.ndarray:
    """``(H, W)`` bool: :func:`garment_area` of the inputs, minus every pixel the preprocessing keeps."""
    mask = garment_area(inputs.parse, inputs.keypoints, inputs.category, margin)
    if inputs.keep is not None:
        mask &= ~inputs.keep
    return mask


class LeffaRunner:
    """What the diffusion engine and pose transfer share: a Leffa folder loaded, its scheduler, and one guided
    sampling run from pixel-space conditions, every random draw from one generator seeded with ``seed``.

    Args:
        checkpoint: a Leffa folder (``fitroom convert leffa``, or the ``diffusion`` / ``pose_transfer`` training
            stages' ``diffusion/`` export). model: ``(unets, vae, scheduler)`` instead (tests).
        steps, guidance, seed, scheduler, reference_once, device, progress, precision: see :class:`DiffusionEngine`.
        size: the working ``(H, W)``; None: the size the model was trained at, else 1024x768 (Leffa's).

    A subclass says which ``task`` it runs (``tryon`` or ``pose``); a folder made for the other one is refused.
    """

    task = "tryon"

    def __init__(self, checkpoint: str | Path | None = None, steps: int = 30, guidance: float = 2.5, seed: int = 42,
                 scheduler: str = "ddpm", size: tuple[int, int] | None = None, reference_once: bool = False,
                 device: str | torch.device = "cpu", progress: bool = True, precision: str = "auto",
                 model=None) -> None:
        from fitroom.models.leffa_convert import leffa_meta, load_leffa

        self.meta = {"task": self.task, "mask": "garment" if self.task == "tryon" else "person"}
        if model is None:
            if checkpoint is None:
                raise ConfigurationError(self.missing_checkpoint)
            self.meta = leffa_meta(checkpoint)  # refused before any weights are read
            if self.meta["task"] != self.task:
                made_for = "pose transfer" if self.meta["task"] == "pose" else "try-on"
                raise ConfigurationError(f"{checkpoint} holds a Leffa model for {made_for}; {self.purpose} needs "
                                         f"one for {'pose transfer' if self.task == 'pose' else 'try-on'}")
            model = load_leffa(checkpoint)
        if scheduler not in SCHEDULERS:
            raise ConfigurationError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
        self.unets, self.vae, published = model
        # settings under their constructor names (the evaluation's result cache is keyed on them)
        self.sampler = _scheduler(published, scheduler)
        self.steps, self.guidance, self.seed = int(steps), float(guidance), int(seed)
        self.scheduler, self.reference_once, self.progress = scheduler, bool(reference_once), progress
        from fitroom.models.leffa import PixelSpace

        factor = 1 if isinstance(self.vae, PixelSpace) else 8  # the VAE's down-sampling
        grid = factor * 2 ** (len(self.unets.unet.config.block_out_channels) - 1)
        if size is None:
            size = tuple(self.meta.get("size") or (1024, 768))
        if size[0] % grid or size[1] % grid:
            raise ConfigurationError(f"size must be multiples of {grid} for this UNet, got {size[0]}x{size[1]}")
        self.size = tuple(size)
        self.device = torch.device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise ConfigurationError(f"precision must be auto, fp32 or bf16, got {precision!r}")
        self.precision = ("bf16" if native_bf16(self.device) else "fp32") if precision == "auto" else precision
        self.unets.to(self.device).eval()
        self.vae.to(self.device).eval()

    missing_checkpoint = ("the diffusion engine needs a checkpoint folder (--checkpoint DIR): make one with "
                          "`fitroom convert leffa --checkpoint virtual_tryon.pth --base stable-diffusion-inpainting "
                          "--out DIR`, or train one (`fitroom train diffusion`)")
    purpose = "the diffusion engine"

    @torch.no_grad()
    def generate(self, masked: torch.Tensor, mask: torch.Tensor, dense: torch.Tensor, reference: torch.Tensor,
                 timings: dict[str, float]) -> torch.Tensor:
        """One guided sampling run at the working size.

        Args:
            masked: ``(1, 3, H, W)`` the picture with the regenerated area zeroed, in [-1, 1].
            mask: ``(1, 1, H, W)`` 1 where the picture is regenerated. dense: ``(1, 3, H, W)`` the DensePose
                render in [-1, 1]. reference: ``(1, 3, H, W)`` what the reference UNet sees (the garment, or the
                person for pose transfer), in [-1, 1].
            timings: receives ``encode``, ``denoise`` and ``decode`` seconds.

        Returns:
            ``(1, 3, H, W)`` the decoded picture in [-1, 1], on the CPU.
        """
        from fitroom.models.leffa import Conditions, sample

        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        clock = time.perf_counter()
        scaling = self.vae.config.scaling_factor
        masked_latent = self._encode(masked.to(self.device), generator)
        reference_latent = self._encode(reference.to(self.device), generator)
        conditions = Conditions.from_pixels(mask.to(self.device), dense.to(self.device), masked_latent,
                                            reference_latent, scaling)
        noise = torch.randn(masked_latent.shape, generator=generator).to(self.device)
        timings["encode"] = time.perf_counter() - clock

        clock = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            latent = sample(self.unets, self.sampler, noise, conditions, self.steps, self.guidance,
                            generator=generator, reference_once=self.reference_once, progress=self.progress)
        timings["denoise"] = time.perf_counter() - clock
        clock = time.perf_counter()
        decoded = self.vae.decode(latent.float() / scaling, return_dict=False)[0]
        timings["decode"] = time.perf_counter() - clock
        return decoded.float().clamp(-1, 1).cpu()

    def _encode(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A posterior sample of the VAE ``(1, 4, h, w)`` (before scaling), drawn from ``generator``."""
        posterior = self.vae.encode(image.to(self.vae.dtype), return_dict=False)[0]
        epsilon = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean.device)
        return posterior.mean + posterior.std * epsilon


@register_engine("diffusion")
class DiffusionEngine(LeffaRunner):
    """Leffa try-on.

    Args:
        checkpoint: a folder made by ``fitroom convert leffa`` (``unet/``, ``reference_unet/``, ``vae/``,
            ``scheduler/``) or by ``fitroom train diffusion`` (its ``diffusion/`` folder).
        steps: denoising steps (the published demo uses 30). guidance: the guidance scale (2.5).
        seed: every random draw (VAE posterior samples, the initial noise, the scheduler's noise) comes from one
            generator seeded with it: the same seed gives the same image.
        scheduler: ``ddpm`` (as published), ``ddim`` or ``dpm`` (DPM-Solver++, fewer steps).
        size: the working ``(H, W)`` (default: the size a fitroom-trained model was trained at, else 1024x768,
            Leffa's).
        reference_once: run the reference UNet once, at the middle timestep (faster), instead of at every step.
        device: where to run. progress: show a progress bar over the steps.
        precision: ``fp32``, ``bf16`` (autocast) or ``auto``: bf16 where the device computes it natively.
    """

    @torch.no_grad()
    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        for name in ("garment", "dense", "parse"):
            if getattr(inputs, name) is None:
                raise InputsError(f"the diffusion engine needs {name} (the preprocessing makes it)")
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        mask = regeneration_mask(inputs)
        tensors = inputs.to_tensors(self.size)
        person = tensors["person"][None]
        pixel_mask = torch.from_numpy(imaging.resize(mask, self.size, "mask")).float()[None, None]
        timings["inputs"] = time.perf_counter() - clock
        decoded = self.generate(person * (pixel_mask < 0.5), pixel_mask, tensors["dense"][None],
                                tensors["garment"][None], timings)
        clock = time.perf_counter()
        image = imaging.resize(imaging.tensor_to_image(decoded[0]), inputs.size, "image")
        # outside the mask the photo is returned as it was, and what the preprocessing keeps is the photo's too
        result = inputs.restore_kept(np.where(mask[..., None], image, inputs.person))
        timings["decode"] += time.perf_counter() - clock
        return TryOnResult(image=result, engine="diffusion", timings=timings,
                           extras={"mask": mask.astype(np.uint8) * 255})


def _scheduler(published, name: str):
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if name == "ddpm":
        return published
    kind = DDIMScheduler if name == "ddim" else DPMSolverMultistepScheduler
    return kind.from_config(published.config)

