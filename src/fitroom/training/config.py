"""Training configuration: one typed dataclass, one YAML file per experiment, ``--set key=value`` on top, and the
resolved configuration saved in every run folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fitroom.errors import ConfigurationError
from fitroom.labels import GarmentCategory
from fitroom.training.tasks import TASKS



def stage_task(stage: str):
    """The :class:`~fitroom.training.tasks.TrainingTask` class registered as ``stage``."""
    from fitroom.errors import InputError

    try:
        return TASKS.get(stage)
    except InputError as error:
        raise ConfigurationError(str(error)) from None


@dataclass
class TrainConfig:
    # HR-VITON: "condition" (the try-on condition generator), then "generator" (the image generator);
    # CP-VTON: "gmm" (geometric matching), then "tom" (try-on module)
    stage: str = "condition"
    data: str = ""  # a VITON-HD layout dataset (e.g. from `fitroom synth`)
    size: tuple[int, int] = (256, 192)  # (H, W), multiples of 32 (condition) or 64 (generator)
    views: tuple[str, ...] = ("front", "back")  # which samples to train on
    view_input: bool = True  # one set of weights for both views: the view is an extra input plane
    # the garment categories to train on (the dataset's samples of other categories are left out); recorded in
    # the exported model, whose engine tries on those only. CP-VTON: one per network
    categories: tuple[str, ...] = ("upper",)
    # HR-VITON: one set of weights for several categories, the category as two more input planes (needed for more
    # than one category)
    category_input: bool = False
    condition: str = ""  # generator / tom stage: the first stage's run folder (or its model folder), kept frozen
    # None: the stage's reference value (its task's ``defaults``)
    model: str | None = None
    model_options: dict = field(default_factory=dict)
    discriminator: str | None = None
    discriminator_options: dict = field(default_factory=dict)
    task_options: dict = field(default_factory=dict)  # the stage's own settings (its task's ``options``)
    batch_size: int = 8
    grad_accum: int = 1  # micro-batches per optimizer step; the effective batch is batch_size * grad_accum
    mixed_precision: str = "no"  # "no", "bf16" or "fp16" (fp16 needs a GPU)
    steps: int | None = None  # optimizer steps
    lr: float | None = None
    lr_discriminator: float | None = None
    betas: tuple[float, float] | None = None
    lr_decay_steps: int | None = None  # the last N steps decay both rates linearly to zero
    clip_grad: float = 0.0  # 0: no clipping
    ema: float = 0.0  # 0: no exponential moving average of the generator; e.g. 0.999
    loss_weights: dict | None = None
    vgg_weights: str = ""  # default: the weights folder; unused when loss_weights.vgg is 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    validate_every: int = 1000  # SSIM on held-out samples (the test split) every N steps
    validation_samples: int = 16
    log_every: int = 10
    seed: int = 0
    out: str = "runs/condition"
    workers: int = 0

    def __post_init__(self) -> None:
        task = stage_task(self.stage)
        defaults = task.defaults
        decay_defaulted = self.lr_decay_steps is None
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, dict(value) if isinstance(value, dict) else value)
        self._numbers()
        if decay_defaulted and self.lr_decay_steps > self.steps:  # a short run decays over the same share of it
            self.lr_decay_steps = self.steps * defaults["lr_decay_steps"] // defaults["steps"]
        self.size = tuple(self.size)  # type: ignore[assignment]
        self.views = tuple(self.views)  # type: ignore[assignment]
        if isinstance(self.categories, str):  # categories=upper,lower on the command line
            self.categories = tuple(c.strip() for c in self.categories.split(","))
        try:
            self.categories = tuple(GarmentCategory(c).value for c in self.categories)  # type: ignore[assignment]
        except ValueError:
            raise ConfigurationError(f"categories must be among upper, lower and dress, got "
                                     f"{', '.join(map(str, self.categories))}") from None
        if not self.categories:
            raise ConfigurationError("categories must name at least one garment category")
        # what the stage's networks accept (their own configs check it again when built): refused here, before
        # anything is loaded
        from fitroom.models.cpvton import one_category
        from fitroom.models.hrviton import trained_categories

        try:
            if self.stage in ("condition", "generator"):
                trained_categories(self.categories, self.category_input)
            elif self.stage in ("gmm", "tom"):
                one_category(self.categories)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.mixed_precision in (False, None):  # YAML 1.1 reads a bare `no` as false
            self.mixed_precision = "no"
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigurationError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.grad_accum < 1 or self.batch_size < 1 or self.steps < 1:
            raise ConfigurationError("grad_accum, batch_size and steps must be at least 1")
        unknown = sorted(set(self.task_options) - set(task.options))
        if unknown:
            raise ConfigurationError(f"the {self.stage} stage has no option {', '.join(unknown)}; its options: "
                                     f"{', '.join(sorted(task.options)) or 'none'}")
        multiple = task.size_multiple
        if self.size[0] % multiple or self.size[1] % multiple:
            raise ConfigurationError(f"size must be multiples of {multiple} for the {self.stage} stage, got "
                                     f"{self.size}")
        if not 0 <= self.lr_decay_steps <= self.steps:
            raise ConfigurationError(f"lr_decay_steps must be between 0 and steps ({self.steps}), got "
                                     f"{self.lr_decay_steps}")
        if not 0 <= self.ema < 1:
            raise ConfigurationError(f"ema is a decay in [0, 1), got {self.ema}")
        if task.needs and not self.condition:
            raise ConfigurationError(f"the {self.stage} stage needs condition=<the {task.needs} stage's run folder or "
                                     f"model folder>")

    def _numbers(self) -> None:
        """Numeric settings as numbers: YAML reads ``2e-4`` (no dot) as a string, so a string that reads as a number
        is taken as one; anything else is refused in one sentence naming the setting."""
        for kind, names in ((float, ("lr", "lr_discriminator", "clip_grad", "ema")),
                            (int, ("batch_size", "grad_accum", "steps", "lr_decay_steps", "checkpoint_every",
                                   "keep_checkpoints", "validate_every", "validation_samples", "log_every", "seed",
                                   "workers"))):
            for name in names:
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise ConfigurationError(f"{name} must be a number, got {value!r}")
                try:
                    number = float(value)
                except ValueError:
                    raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
                if kind is int and number != int(number):
                    raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
                setattr(self, name, kind(number))

    def lr_factor(self, step: int) -> float:
        """The learning-rate multiplier after ``step`` optimizer steps: 1, then a linear decay to 0 over the last
        ``lr_decay_steps`` (stepped every step; the reference steps it every 1,000)."""
        if self.lr_decay_steps == 0:
            return 1.0
        start = self.steps - self.lr_decay_steps
        return 1.0 - max(0, step - start) / self.lr_decay_steps


def _parse(value: str):
    return yaml.safe_load(value)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A YAML file (optional), then ``key=value`` overrides (``loss_weights.vgg=0`` reaches into a dict)."""
    if path and not Path(path).is_file():
        raise ConfigurationError(f"{path}: no such configuration file (the examples are in configs/)")
    try:
        values: dict = yaml.safe_load(Path(path).read_text()) if path else {}
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, (dict, type(None))):
        raise ConfigurationError(f"{path} must hold settings as 'key: value' lines")
    values = values or {}
    stage_overrides = [o for o in overrides or [] if o.startswith("stage=")]
    if stage_overrides:  # the stage decides what a dotted override starts from
        values["stage"] = _parse(stage_overrides[-1].split("=", 1)[1])
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for override in overrides or []:
        if "=" not in override:
            raise ConfigurationError(f"an override is key=value, got {override!r}")
        key, raw = override.split("=", 1)
        head, _, rest = key.partition(".")
        if head not in known:
            raise ConfigurationError(f"unknown setting {head!r}; known: {', '.join(sorted(known))}")
        if rest:
            base = values.get(head) or dict(stage_task(values.get("stage", "condition")).defaults.get(head) or {})
            values[head] = {**base, rest: _parse(raw)}
        else:
            values[head] = _parse(raw)
    unknown = set(values) - known
    if unknown:
        raise ConfigurationError(f"unknown settings {sorted(unknown)}")
    try:
        return TrainConfig(**values)
    except TypeError as error:  # a value of the wrong type, e.g. steps=abc
        raise ConfigurationError(f"a training setting has the wrong type ({error}); see configs/*.yaml for the "
                                 f"expected values") from None


def save_config(config: TrainConfig, path: str | Path) -> None:
    data = dataclasses.asdict(config)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


#: settings a resumed run may change (how long, how often it logs, saves and validates, where things are); the rest
#: define the run, and a run folder resumed with other values would continue another trajectory
RESUME_MAY_CHANGE = frozenset({"steps", "lr_decay_steps", "checkpoint_every", "keep_checkpoints", "validate_every",
                               "validation_samples", "log_every", "workers", "out", "data", "vgg_weights",
                               "condition"})


def changed_settings(before: TrainConfig, now: TrainConfig) -> dict[str, tuple]:
    """The run-defining settings whose values differ: ``{name: (before, now)}``."""
    old, new = dataclasses.asdict(before), dataclasses.asdict(now)
    return {k: (old[k], new[k]) for k in old if k not in RESUME_MAY_CHANGE and old[k] != new[k]}
