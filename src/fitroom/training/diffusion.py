"""The ``diffusion`` training stage: Leffa's two UNets learn to predict the noise of the person image, conditioned on
the masked person, the mask, the DensePose render and (through the reference UNet) the garment.

The default model works in pixel space (``leffa_pixel``, attention at a quarter of the picture's size; no VAE), so it
trains on the CPU on rendered front/back data; a converted Leffa model is not trained here (its VAE is not part of
the stage). Per sample: a timestep drawn uniformly, the person image noised by the DDPM schedule
(the published one: scaled-linear betas 0.00085 -> 0.012 over 1,000 steps), the garment zeroed with probability
``cfg_dropout`` (so classifier-free guidance has an unconditional model to subtract), the mean squared error
between the predicted and the drawn noise. Both UNets are trained, or the generative one only
(``--set task_options.freeze_reference=true``). With ``task_options.flow_loss=W`` the Leffa attention-flow loss
(:func:`~fitroom.models.leffa.attention_flow_loss`) is added with weight W for samples noised less than
``flow_max_timestep``. Validation samples with 4 DDIM steps and scores the result's SSIM against the photo, like
every stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fitroom.labels import GarmentCategory
from fitroom.models import create_model
from fitroom.models.io import save_pretrained
from fitroom.training.tasks import TASKS, Batch, TrainingTask

SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "clip_sample": False, "steps_offset": 1}


@TASKS.register("diffusion")
class DiffusionTask(TrainingTask):
    """Leffa's noise-prediction training (see the module docstring)."""

    defaults = {"model": "leffa_pixel", "discriminator": "", "lr": 1e-4, "lr_discriminator": 0.0,
                "betas": (0.9, 0.999), "steps": 20_000, "lr_decay_steps": 0, "loss_weights": {"mse": 1.0}}
    size_multiple = 8
    options = {
        "cfg_dropout": 0.1,  # the share of samples whose garment is zeroed (guidance's unconditional model)
        "freeze_reference": False,  # keep the reference UNet as it is (e.g. as converted) and train the generative
        "validation_steps": 4,  # DDIM steps of the validation samples
        "flow_loss": 0.0,  # weight of the Leffa attention-flow loss (0: off)
        "flow_max_timestep": 500,  # the flow loss applies to samples noised less than this
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
        from fitroom.engines.diffusion import garment_area

        # the region the diffusion engine regenerates for an upper garment, sample by sample
        parse, keypoints = batch["parse"].cpu().numpy(), batch["keypoints"].cpu().numpy()
        areas = [garment_area(labels, points, GarmentCategory.UPPER) for labels, points in zip(parse, keypoints)]
        person = batch["person"]
        mask = torch.from_numpy(np.stack(areas)).float()[:, None].to(person.device)
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

        from fitroom.models.leffa import attention_flow_loss

        model = self.generator
        features = _unwrap(model).reference_features(x["garment_in"], x["t"])
        weight = float(self.option("flow_loss"))
        flows: list | None = [] if weight > 0 else None
        predicted = model(unet_input(x["noisy"], x["mask"], x["masked"], x["dense"]), x["t"], features, flows)
        loss = F.mse_loss(predicted, x["noise"])
        x["fake"] = x["noisy"].detach()
        total = loss * self.config.loss_weights.get("mse", 1.0)
        parts = {"mse": float(loss.detach())}
        if flows:
            # the garment kept (a zeroed one has no flow) and little noise, as the Leffa loss is applied
            samples = ((x["garment_in"].flatten(1).abs().sum(1) > 0) & (x["t"] < self.option("flow_max_timestep")))
            flow = attention_flow_loss(flows, x["garment"], x["person"], x["mask"], samples.float())
            total = total + weight * flow
            parts["flow"] = float(flow.detach())
        return total, parts

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

    #: what the exported Leffa folder is for and what it regenerates (:func:`~fitroom.models.leffa_convert.save_leffa`)
    exported_task, exported_mask = "tryon", "garment"

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        """``model/`` (a fitroom model folder) and ``diffusion/`` (a Leffa folder: ``--engine diffusion
        --checkpoint``, or ``fitroom pose-transfer --checkpoint``), the working size recorded."""
        from fitroom.models.leffa_convert import save_leffa

        model = _unwrap(generator)
        save_pretrained(model, out / "model", self.config.model)
        save_leffa(out / "diffusion", model, None, SCHEDULE, task=self.exported_task, mask=self.exported_mask,
                   size=list(self.config.size))


@TASKS.register("pose_transfer")
class PoseTransferTask(DiffusionTask):
    """Leffa's pose transfer learnt from photos of one person in two views
    (:class:`~fitroom.data.dataset.PoseTransferDataset`): the reference UNet sees the source photo, the generative
    UNet the target's DensePose render and the source photo outside the regenerated area (the person in both poses,
    grown: :func:`~fitroom.engines.pose_transfer.regenerated_area`, or the whole picture with
    ``task_options.whole=true``, as the published model), and it learns to predict the noise of the target photo.
    The source photo is dropped (zeroed) with probability ``cfg_dropout`` for guidance."""

    options = {**DiffusionTask.options, "whole": False}
    exported_task = "pose"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.exported_mask = "whole" if self.option("whole") else "person"

    def dataset(self, split: str):
        from fitroom.data.dataset import PoseTransferDataset

        return PoseTransferDataset(self.config.data, split, size=self.config.size)

    def _conditions(self, batch: Batch) -> dict:
        from fitroom.engines.pose_transfer import regenerated_area

        target, dense = batch["person"], batch["dense"]
        if self.option("whole"):
            mask = torch.ones_like(target[:, :1])
        else:
            people = (batch["source_parse"] > 0).cpu().numpy()
            bodies = (dense > -1).any(1).cpu().numpy()  # the dense render's body: any channel above black
            areas = [regenerated_area(person, body[..., None]) for person, body in zip(people, bodies)]
            mask = torch.from_numpy(np.stack(areas)).float()[:, None].to(target.device)
        source = batch["source"]
        # outside the area the model sees the source photo (which the engine pastes back); the loss still covers the
        # whole target, whose background may differ there (the renderer draws each view's background anew)
        return {"person": target, "mask": mask, "masked": source * (mask < 0.5), "dense": dense, "garment": source}

    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        output, truth = super().predict(generator, x)
        return torch.where(x["mask"] > 0.5, output, x["masked"]), truth

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        return [x["garment"], x["dense"], x["person"]]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under a DDP / accelerate wrapper."""
    return getattr(model, "module", model)
