"""The built-in training stages: HR-VITON's ``condition`` and ``generator``, CP-VTON's ``gmm`` and ``tom``.

Each is a :class:`~fitroom.training.tasks.TrainingTask` registered under its stage name, with the reference's
settings as its defaults (``shared/reference/hrviton`` section 2.6 for HR-VITON; CP-VTON's own scripts).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from fitroom.errors import ConfigurationError, MissingWeightsError
from fitroom.imaging import one_hot
from fitroom.labels import CONDITION_SIZE, Parse13
from fitroom.models import create_model
from fitroom.models.cpvton import cpvton_inputs, gmm_warp
from fitroom.models.hrviton import (
    CATEGORY_PLANES, HrvitonTryOn, choose_upsampling, cloth_input, parse13_of, pose_input,
)
from fitroom.models.io import copy_model_folder, load_pretrained, model_name, save_pretrained, write_parts_index
from fitroom.training.losses import (
    CONDITION_WEIGHTS, GENERATOR_WEIGHTS, VGGPerceptualLoss, feature_matching_loss, hinge_loss, layout_cross_entropy,
    lsgan_loss, total_variation,
)
from fitroom.training.tasks import TASKS, Batch, TrainingTask


@TASKS.register("condition")
class ConditionTask(TrainingTask):
    """HR-VITON's first stage: the condition generator against its discriminator (reference losses)."""

    defaults = {"model": "hrviton_condition", "discriminator": "hrviton_condition_discriminator",
                "lr": 2e-4, "lr_discriminator": 2e-4, "betas": (0.5, 0.999), "steps": 300_000,
                "lr_decay_steps": 0, "loss_weights": CONDITION_WEIGHTS}
    trainable = ("generator", "discriminator")

    def __init__(self, config) -> None:
        super().__init__(config)
        extra = (1 if config.view_input else 0) + (CATEGORY_PLANES if config.category_input else 0)
        self.generator = create_model(config.model, **{"pose_channels": 16 + extra, "view_input": config.view_input,
                                                       "category_input": config.category_input,
                                                       "categories": tuple(config.categories),
                                                       **config.model_options})
        self.discriminator = create_model(config.discriminator,
                                          **{"input_channels": 4 + 16 + extra + len(Parse13),
                                             **config.discriminator_options})
        self.vgg = None
        if config.loss_weights.get("vgg", 0) > 0:
            self.vgg = VGGPerceptualLoss(config.vgg_weights or None)

    def inputs(self, batch: Batch) -> dict:
        """Model inputs and targets from a dataset batch (tensors at the training size)."""
        # the view, for a weight-shared model, as a constant plane: 0 front, 1 back; the category likewise; the
        # garment tried on is the layout's garment class whatever its category
        category = batch["category"]
        pose = pose_input(batch["parse_agnostic"], batch["dense"], batch["view"] if self.config.view_input else None,
                          category, self.config.category_input)
        parse13 = parse13_of(batch["parse"], category)
        cloth_mask_truth = (parse13 == Parse13.UPPER).float()[:, None]
        return {
            "cloth": cloth_input(batch["garment"], batch["garment_mask"]),
            "pose": pose,
            "parse13": parse13,
            "cloth_mask_truth": cloth_mask_truth,
            # the person's garment on white, what the warped cloth should look like
            "cloth_truth": batch["person"] * cloth_mask_truth + (1 - cloth_mask_truth),
        }

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        w = self.config.loss_weights
        flows, seg, warped_cloth, warped_mask = self.generator(x["cloth"], x["pose"])
        # condition aligning and occlusion handling, as in HR-VITON's training
        seg = torch.cat([seg[:, :3], seg[:, 3:4] * warped_mask, seg[:, 4:]], 1)
        losses = {
            "l1_mask": F.l1_loss(warped_mask, x["cloth_mask_truth"]),
            "tv": total_variation(flows[-1]),
            "ce": layout_cross_entropy(seg, x["parse13"]),
        }
        if self.vgg is not None:
            losses["vgg"] = self.vgg(warped_cloth, x["cloth_truth"])
        if w.get("l1_cloth", 0) > 0:  # not in the reference: a stand-in when the VGG weights are missing
            losses["l1_cloth"] = F.l1_loss(warped_cloth, x["cloth_truth"])
        fake = torch.cat([x["cloth"], x["pose"], F.softmax(seg, 1)], 1)
        losses["gan"] = lsgan_loss(self.discriminator(fake), real=True)
        x["fake"] = fake.detach()
        x["warped_cloth"] = warped_cloth.detach()
        return weighted_total(losses, w)

    def discriminator_loss(self, x: dict) -> torch.Tensor:
        real = torch.cat([x["cloth"], x["pose"], one_hot(x["parse13"], len(Parse13))], 1)
        return (lsgan_loss(self.discriminator(x["fake"]), real=False)
                + lsgan_loss(self.discriminator(real), real=True)) / 2

    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The warped cloth ``(B, 3, H, W)`` and what it should look like (the person's garment on white)."""
        return generator(x["cloth"], x["pose"])[2], x["cloth_truth"]

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        """Rows of a sample grid: the flat cloth, the warped cloth, the person's cloth region."""
        return [x["cloth"][:, :3], x["warped_cloth"], x["cloth_truth"]]

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        save_pretrained(generator, out / "model", self.config.model)


def weighted_total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> tuple[torch.Tensor, dict]:
    """The weighted sum of a stage's losses, and each loss as a float for logging."""
    total = sum(weights.get(name, 0.0) * value for name, value in losses.items())
    return total, {k: float(v.detach()) for k, v in losses.items()}


def condition_folder(path: str | Path) -> Path:
    """The model folder of a trained condition generator: a condition run folder's ``model/``, or the folder."""
    path = Path(path)
    folder = path / "model" if (path / "model" / "config.json").is_file() else path
    if not (folder / "config.json").is_file():
        raise MissingWeightsError(f"no condition generator at {path}: give the condition stage's run folder (it "
                                  f"holds model/) or a model folder with config.json and model.safetensors")
    return folder


def load_first_stage(config) -> tuple[torch.nn.Module, str]:
    """The frozen first stage a second stage builds on (``config.condition``): the network in eval mode without
    gradients, and its registered model name."""
    folder = condition_folder(config.condition)
    return load_pretrained(folder).eval().requires_grad_(False), model_name(folder)


@TASKS.register("generator")
class GeneratorTask(TrainingTask):
    """HR-VITON's second stage: the SPADE image generator against its discriminator, the condition generator frozen
    (reference losses: hinge GAN 1, discriminator feature matching 10, VGG 10).

    The frozen condition generator runs on inputs down-sampled to 256x192 (or the training size, when smaller) and
    gives the layout and the warped cloth exactly as at inference (:meth:`HrvitonTryOn.conditions`)."""

    # TTUR, 100k steps at a constant rate then 100k decaying linearly to zero
    defaults = {"model": "hrviton_generator", "discriminator": "hrviton_image_discriminator",
                "lr": 1e-4, "lr_discriminator": 4e-4, "betas": (0.0, 0.9), "steps": 200_000,
                "lr_decay_steps": 100_000, "loss_weights": GENERATOR_WEIGHTS}
    needs = "condition"
    size_multiple = 64
    trainable = ("generator", "discriminator")

    def __init__(self, config) -> None:
        super().__init__(config)
        extra = (1 if config.view_input else 0) + (CATEGORY_PLANES if config.category_input else 0)
        self.condition_generator, self.condition_generator_name = load_first_stage(config)
        self.frozen_exported = False  # its folder is copied beside the trained one at the first checkpoint
        for field in ("view_input", "category_input"):
            trained = bool(getattr(self.condition_generator.config, field))
            if trained != bool(getattr(config, field)):
                raise ConfigurationError(f"the condition generator at {config.condition} was trained "
                                         f"{'with' if trained else 'without'} the {field.split('_')[0]} input; "
                                         f"train both stages with the same {field}")
        missing = set(config.categories) - set(self.condition_generator.config.categories)
        if missing:
            raise ConfigurationError(f"the condition generator at {config.condition} was trained on "
                                     f"{', '.join(self.condition_generator.config.categories)}, not on "
                                     f"{', '.join(sorted(missing))}: train both stages on the same categories")
        self.generator = create_model(config.model, **{"input_channels": 9 + extra, "view_input": config.view_input,
                                                       "category_input": config.category_input,
                                                       "categories": tuple(config.categories),
                                                       "num_upsampling_layers": choose_upsampling(*config.size),
                                                       **config.model_options})
        # the try-on module the engine runs: the conditions come from it exactly as at inference
        self.tryon = HrvitonTryOn(self.condition_generator, self.generator, CONDITION_SIZE)
        self.discriminator = create_model(config.discriminator, **{"input_channels": 7 + 3,
                                                                   **config.discriminator_options})
        self.vgg = None
        if config.loss_weights.get("vgg", 0) > 0:
            self.vgg = VGGPerceptualLoss(config.vgg_weights or None)

    @property
    def frozen(self) -> list[torch.nn.Module]:
        return [self.condition_generator]

    @torch.no_grad()
    def inputs(self, batch: Batch) -> dict:
        self.condition_generator.to(batch["person"].device)
        category = batch["category"]
        conditions = self.tryon.conditions(batch["garment"], batch["garment_mask"], batch["parse_agnostic"],
                                           batch["dense"], batch["view"], category)
        x = self.tryon.generator_input(batch["agnostic"], batch["dense"], conditions["warped_cloth"], batch["view"],
                                       category)
        return {"x": x, "seg7": conditions["seg7"], "person": batch["person"],
                "warped_cloth": conditions["warped_cloth"], "agnostic": batch["agnostic"]}

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        w = self.config.loss_weights
        fake = self.generator(x["x"], x["seg7"])
        predicted_fake = self.discriminator(torch.cat([x["seg7"], fake], 1))
        predicted_real = self.discriminator(torch.cat([x["seg7"], x["person"]], 1))
        losses = {
            "gan": hinge_loss(predicted_fake, real=True, for_discriminator=False),
            "feature_matching": feature_matching_loss(predicted_fake, predicted_real),
        }
        if self.vgg is not None:
            losses["vgg"] = self.vgg(fake, x["person"])
        if w.get("l1", 0) > 0:  # declared by the reference (lambda_l1) but unused there; off by default
            losses["l1"] = F.l1_loss(fake, x["person"])
        x["fake"] = fake.detach()
        return weighted_total(losses, w)

    def discriminator_loss(self, x: dict) -> torch.Tensor:
        fake = hinge_loss(self.discriminator(torch.cat([x["seg7"], x["fake"]], 1)), real=False, for_discriminator=True)
        real = hinge_loss(self.discriminator(torch.cat([x["seg7"], x["person"]], 1)), real=True,
                          for_discriminator=True)
        return fake + real  # the reference (SPADE) sums the two, unhalved

    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The try-on image ``(B, 3, H, W)`` and the person's photo (paired: the same garment)."""
        return generator(x["x"], x["seg7"]), x["person"]

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        """Rows of a sample grid: agnostic person, warped cloth, try-on, the photo."""
        return [x["agnostic"], x["warped_cloth"], x["fake"], x["person"]]

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        """``model/`` (the image generator) and ``hrviton/`` (both networks: ``--engine hrviton --checkpoint``)."""
        save_pretrained(generator, out / "model", self.config.model)
        save_pretrained(generator, out / "hrviton" / "generator", self.config.model)
        if not self.frozen_exported:
            copy_model_folder(condition_folder(self.config.condition), out / "hrviton" / "condition_generator")
            write_parts_index(out / "hrviton", "hrviton", {"condition_generator": self.condition_generator_name,
                                                           "generator": self.config.model})
            self.frozen_exported = True


@TASKS.register("gmm")
class GMMTask(TrainingTask):
    """CP-VTON's first stage: the geometric matching module, L1 between the warped garment and the person's garment
    region (no discriminator)."""

    # CP-VTON: Adam (0.5, 0.999) lr 1e-4; its scheduler is never stepped, so the rate is constant
    defaults = {"model": "cpvton_gmm", "discriminator": "", "lr": 1e-4, "lr_discriminator": 0.0,
                "betas": (0.5, 0.999), "steps": 200_000, "lr_decay_steps": 0, "loss_weights": {"l1": 1.0}}
    size_multiple = 64

    def __init__(self, config) -> None:
        super().__init__(config)
        self.generator = create_model(config.model, **{"size": tuple(config.size),
                                                       "categories": tuple(config.categories), **config.model_options})

    def inputs(self, batch: Batch) -> dict:
        return cpvton_inputs(batch)

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        warped, _ = gmm_warp(self.generator, x)
        losses = {"l1": F.l1_loss(warped, x["cloth_truth"])}
        x["warped_cloth"] = warped.detach()
        return weighted_total(losses, self.config.loss_weights)

    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The warped garment and the person's garment region on white."""
        return gmm_warp(generator, x)[0], x["cloth_truth"]

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        return [x["garment"], x["warped_cloth"], x["cloth_truth"]]

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        save_pretrained(generator, out / "model", self.config.model)


@TASKS.register("tom")
class TOMTask(TrainingTask):
    """CP-VTON's second stage: the try-on module with the GMM frozen; L1 + VGG on the try-on and L1 between the
    composition mask and the warped garment's mask (no discriminator)."""

    defaults = {"model": "cpvton_tom", "discriminator": "", "lr": 1e-4, "lr_discriminator": 0.0,
                "betas": (0.5, 0.999), "steps": 200_000, "lr_decay_steps": 0,
                "loss_weights": {"l1": 1.0, "vgg": 1.0, "mask": 1.0}}
    needs = "gmm"
    size_multiple = 64

    def __init__(self, config) -> None:
        super().__init__(config)
        self.gmm, self.gmm_name = load_first_stage(config)
        self.frozen_exported = False  # its folder is copied beside the trained one at the first checkpoint
        self.generator = create_model(config.model, **{"categories": tuple(config.categories),
                                                       **config.model_options})
        if tuple(self.gmm.config.categories) != tuple(config.categories):
            raise ConfigurationError(f"the GMM at {config.condition} was trained on "
                                     f"{', '.join(self.gmm.config.categories)}, not on "
                                     f"{', '.join(config.categories)}: train both stages on the same category")
        self.vgg = None
        if config.loss_weights.get("vgg", 0) > 0:
            self.vgg = VGGPerceptualLoss(config.vgg_weights or None)

    @property
    def frozen(self) -> list[torch.nn.Module]:
        return [self.gmm]

    @torch.no_grad()
    def inputs(self, batch: Batch) -> dict:
        x = cpvton_inputs(batch)
        self.gmm.to(batch["person"].device)
        x["warped_cloth"], x["warped_mask"] = gmm_warp(self.gmm, x)
        return x

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        try_on, _, mask = self.generator(x["representation"], x["warped_cloth"])
        losses = {"l1": F.l1_loss(try_on, x["person"]), "mask": F.l1_loss(mask, x["warped_mask"])}
        if self.vgg is not None:
            losses["vgg"] = self.vgg(try_on, x["person"])
        x["fake"] = try_on.detach()
        return weighted_total(losses, self.config.loss_weights)

    def predict(self, generator: torch.nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return generator(x["representation"], x["warped_cloth"])[0], x["person"]

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        return [x["representation"][:, 1:4], x["warped_cloth"], x["fake"], x["person"]]

    def export(self, generator: torch.nn.Module, out: Path) -> None:
        """``model/`` (TOM) and ``cpvton/`` (both modules: ``--engine cpvton --checkpoint``)."""
        save_pretrained(generator, out / "model", self.config.model)
        save_pretrained(generator, out / "cpvton" / "tom", self.config.model)
        if not self.frozen_exported:
            copy_model_folder(condition_folder(self.config.condition), out / "cpvton" / "gmm")
            write_parts_index(out / "cpvton", "cpvton", {"gmm": self.gmm_name, "tom": self.config.model})
            self.frozen_exported = True
