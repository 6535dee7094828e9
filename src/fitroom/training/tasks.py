"""What a training stage is to the trainer: a :class:`TrainingTask`, registered by name in :data:`TASKS`.

A task declares its reference settings (``defaults``), the stage it builds on (``needs``: that stage's run folder is
given as ``condition=`` and kept frozen), the size multiple its networks need, the networks the trainer optimises
(``trainable``: a generator, and a discriminator for adversarial stages), and implements inputs, losses, validation
output, sample rows and export. A new stage is a new module::

    from fitroom.training.tasks import TASKS, TrainingTask

    @TASKS.register("my_stage")
    class MyStage(TrainingTask):
        defaults = {"model": "my_model", "discriminator": "", "lr": 1e-4, "lr_discriminator": 0.0,
                    "betas": (0.9, 0.999), "steps": 10_000, "lr_decay_steps": 0, "loss_weights": {"l1": 1.0}}
        ...

and ``fitroom train my_stage`` runs it (the module must be imported first, or named by an entry point in the group
``fitroom.tasks``). No file of fitroom changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypedDict

import torch
import torch.nn as nn

from fitroom.registry import Registry

if TYPE_CHECKING:
    from fitroom.training.config import TrainConfig


class Batch(TypedDict, total=False):
    """A batch of :class:`~fitroom.data.dataset.TryOnDataset` (paired samples), on the training device.

    ``B`` samples at the training size ``(H, W)``; images in [-1, 1].
    """

    person: torch.Tensor  # (B, 3, H, W)
    garment: torch.Tensor  # (B, 3, H, W)
    garment_mask: torch.Tensor  # (B, 1, H, W) in {0, 1}
    parse: torch.Tensor  # (B, H, W) long, CIHP labels
    parse_agnostic: torch.Tensor  # (B, H, W) long, CIHP labels
    dense: torch.Tensor  # (B, 3, H, W)
    agnostic: torch.Tensor  # (B, 3, H, W)
    keypoints: torch.Tensor  # (B, 25, 3)
    view: torch.Tensor  # (B,) long: View.index
    name: list[str]
    garment_name: list[str]
    source: torch.Tensor  # (B, 3, H, W) pose transfer: the photo the person is taken from
    source_parse: torch.Tensor  # (B, H, W) long, its CIHP labels


class TrainingTask:
    """Base of a training stage (see the module docstring). ``inputs`` turns a :class:`Batch` into the task's own
    dict of model inputs and targets, which its loss methods may add to (``fake`` for the discriminator)."""

    #: the settings used where the configuration says nothing: model, discriminator, lr, lr_discriminator, betas,
    #: steps, lr_decay_steps, loss_weights
    defaults: ClassVar[dict] = {}
    #: the stage this one builds on (its run folder is ``condition=``), or ""
    needs: ClassVar[str] = ""
    #: the training size's height and width must be multiples of this
    size_multiple: ClassVar[int] = 32
    #: the networks the trainer optimises, by attribute name; with "discriminator" the stage is adversarial
    trainable: ClassVar[tuple[str, ...]] = ("generator",)
    #: the stage's own settings and their defaults (``--set task_options.NAME=VALUE``; see :meth:`option`)
    options: ClassVar[dict] = {}

    generator: nn.Module
    discriminator: nn.Module | None = None

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def option(self, name: str):
        """The value of the stage's option ``name``: the configuration's ``task_options``, else the default."""
        return self.config.task_options.get(name, self.options[name])

    @property
    def frozen(self) -> list[nn.Module]:
        """Networks the task uses but does not train (e.g. the first stage's), in eval mode, without gradients."""
        return []

    def dataset(self, split: str):
        """The samples the stage learns from: paired try-on samples (:class:`~fitroom.data.dataset.TryOnDataset`)
        unless the stage says otherwise. The trainer keeps those of the configured views (``keep_views``)."""
        from fitroom.data.dataset import TryOnDataset

        return TryOnDataset(self.config.data, split, "paired", size=self.config.size)

    def inputs(self, batch: Batch) -> dict:
        raise NotImplementedError

    def generator_losses(self, x: dict) -> tuple[torch.Tensor, dict]:
        """The generator's weighted total loss and each loss as a float (for logging)."""
        raise NotImplementedError

    def discriminator_loss(self, x: dict) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")

    def predict(self, generator: nn.Module, x: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation: the output ``(B, 3, H, W)`` in [-1, 1] and what it should be."""
        raise NotImplementedError

    def sample_rows(self, x: dict) -> list[torch.Tensor]:
        """Rows of the TensorBoard sample grid, each ``(B, 3, H, W)`` in [-1, 1]."""
        raise NotImplementedError

    def export(self, generator: nn.Module, out: Path) -> None:
        """Write the weights to use as model folders under the run folder ``out``."""
        raise NotImplementedError


#: every training stage by name (built in: condition, generator, gmm, tom, diffusion)
TASKS: Registry[type[TrainingTask]] = Registry(
    "tasks", builtin=("fitroom.training.stages", "fitroom.training.diffusion"), noun="training stage")
