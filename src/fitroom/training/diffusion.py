"""The ``diffusion`` training stage: Leffa's two UNets learn to predict the noise of the person image, conditioned on
the masked person, the mask, the DensePose render and (through the reference UNet) the garment.

The tiny built-in configuration works in pixel space (``test_leffa_pixel``: no VAE), so it trains on the CPU on
rendered front/back data. Per sample: a timestep drawn uniformly, the person image noised by the DDPM schedule
(the published one: scaled-linear betas 0.00085 -> 0.012 over 1,000 steps), the garment zeroed with probability
``cfg_dropout`` (so classifier-free guidance has an unconditional model to subtract), the mean squared error
between the predicted and the drawn noise. Both UNets are trained, or the generative one only
(``--set task_options.freeze_reference=true``). Validation samples with 4 DDIM steps and scores the result's SSIM
against the photo, like every stage.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from fitroom.labels import REGENERATED_LABELS, GarmentCategory
from fitroom.models import create_model
from fitroom.models.io import save_pretrained
from fitroom.training.tasks import TASKS, Batch, TrainingTask

SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "clip_sample": False, "steps_offset": 1}


@TASKS.register("diffusion")
class DiffusionTask(TrainingTask):
    """Leffa's noise-prediction training (see the module docstring)."""

    defaults = {"model": "test_leffa_pixel", "discriminator": "", "lr": 1e-4, "lr_discriminator": 0.0,
                "betas": (0.9, 0.999), "steps": 20_000, "lr_decay_steps": 0, "loss_weights": {"mse": 1.0}}
    size_multiple = 8
    options = {
        "cfg_dropout": 0.1,  # the share of samples whose garment is zeroed (guidance's unconditional model)
        "freeze_reference": False,  # keep the reference UNet as it is (e.g. as converted) and train the generative
        "validation_steps": 4,  # DDIM steps of the validation samples
    }

    def __init__(self, config) -> None:
        from diffusers import DDIMScheduler, DDPMScheduler

        super().__init__(config)
        self.generator = create_model(config.model, **config.model_options)
        if self.option("freeze_reference"):
            self.generator.unet_encoder.requires_grad_(False)
        self.noise_schedule = DDPMScheduler.from_config(SCHEDULE)
        self.sampler = DDIMScheduler.from_config(SCHEDULE)

    def _conditions(self, batch: Batch) -> dict:
        parse = batch["parse"]
        upper = REGENERATED_LABELS[GarmentCategory.UPPER]  # as the diffusion engine masks an upper garment
        labels = torch.isin(parse, torch.tensor([int(label) for label in upper], device=parse.device))
        radius = max(1, round(0.03 * parse.shape[-2]))
        mask = F.max_pool2d(labels[:, None].float(), 2 * radius + 1, stride=1, padding=radius)
        person = batch["person"]
        return {"person": person, "mask": mask, "masked": person * (mask < 0.5), "dense": batch["dense"],
                "garment": batch["garment"]}

    def inputs(self, batch: Batch) -> dict:
        x = self._conditions(batch)
        size = x["person"].shape[0]
        x["noise"] = torch.randn_like(x["person"])
        x["t"] = torch.randint(0, self.noise_schedule.config.num_train_timesteps, (size,), device=x["person"].device)
        x["noisy"] = self.noise_schedule.add_noise(x["person"], x["noise"], x["t"])
        keep = (torch.rand(size, 1, 1, 1, device=x["person"].device) >= self.option("cfg_dropout")
                ).to(x["garment"].dtype)
        x["garment_in"] = x["garment"] * keep
        return x

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        from fitroom.models.leffa import unet_input

        model = self.generator
        features = _unwrap(model).reference_features(x["garment_in"], x["t"])
        predicted = model(unet_input(x["noisy"], x["mask"], x["masked"], x["dense"]), x["t"], features)
        loss = F.mse_loss(predicted, x["noise"])
        x["fake"] = x["noisy"].detach()
        return loss * self.config.loss_weights.get("mse", 1.0), {"mse": float(loss.detach())}

    @torch.no_grad()
    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """A few-step DDIM sample from fixed noise (seed 0), and the photo."""
        from fitroom.models.leffa import Conditions, sample

        noise = torch.randn(x["person"].shape, generator=torch.Generator().manual_seed(0)).to(x["person"].device)
        conditions = Conditions(x["mask"], x["masked"], x["dense"], x["garment"])
        output = sample(_unwrap(generator), self.sampler, noise, conditions, self.option("validation_steps"), 2.5,
                        generator=torch.Generator().manual_seed(0))
        # outside the mask the photo is kept, as the engine keeps it
        return torch.where(x["mask"] > 0.5, output.clamp(-1, 1), x["person"]), x["person"]

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        return [x["masked"], x["garment"], x["person"]]

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        save_pretrained(generator, out / "model", self.config.model)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under a DDP / accelerate wrapper."""
    return getattr(model, "module", model)
