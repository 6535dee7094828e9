"""Training configuration: one typed dataclass, one YAML file per experiment, ``--set key=value`` on top, and the
resolved configuration saved in every run folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fitroom.training.losses import CONDITION_WEIGHTS


@dataclass
class TrainConfig:
    stage: str = "condition"  # "condition" (the generator stage comes next)
    data: str = ""  # a VITON-HD layout dataset (e.g. from `fitroom synth`)
    size: tuple[int, int] = (256, 192)  # (H, W), multiples of 32
    views: tuple[str, ...] = ("front", "back")  # which samples to train on
    view_input: bool = True  # one set of weights for both views: the view is an extra input plane
    model: str = "hrviton_condition"
    model_options: dict = field(default_factory=dict)
    discriminator: str = "hrviton_condition_discriminator"
    discriminator_options: dict = field(default_factory=dict)
    batch_size: int = 8
    grad_accum: int = 1  # micro-batches per optimizer step; the effective batch is batch_size * grad_accum
    mixed_precision: str = "no"  # "no", "bf16" or "fp16" (fp16 needs a GPU)
    steps: int = 300_000  # optimizer steps
    lr: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    clip_grad: float = 0.0  # 0: no clipping
    ema: float = 0.0  # 0: no exponential moving average of the generator
    loss_weights: dict = field(default_factory=lambda: dict(CONDITION_WEIGHTS))
    vgg_weights: str = ""  # default: the weights folder; unused when loss_weights.vgg is 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    validate_every: int = 1000
    log_every: int = 10
    seed: int = 0
    out: str = "runs/condition"
    workers: int = 0

    def __post_init__(self) -> None:
        self.size = tuple(self.size)  # type: ignore[assignment]
        self.views = tuple(self.views)  # type: ignore[assignment]
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.mixed_precision in (False, None):  # YAML 1.1 reads a bare `no` as false
            self.mixed_precision = "no"
        if self.stage != "condition":
            raise ValueError(f"stage {self.stage!r} is not implemented yet; only 'condition' is")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision must be no, bf16 or fp16, got {self.mixed_precision!r}")
        if self.grad_accum < 1 or self.batch_size < 1 or self.steps < 1:
            raise ValueError("grad_accum, batch_size and steps must be at least 1")
        if self.size[0] % 32 or self.size[1] % 32:
            raise ValueError(f"size must be multiples of 32 for the condition generator, got {self.size}")


def _parse(value: str):
    return yaml.safe_load(value)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A YAML file (optional), then ``key=value`` overrides (``loss_weights.vgg=0`` reaches into a dict)."""
    values: dict = yaml.safe_load(Path(path).read_text()) if path else {}
    values = values or {}
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for override in overrides or []:
        if "=" not in override:
            raise ValueError(f"an override is key=value, got {override!r}")
        key, raw = override.split("=", 1)
        head, _, rest = key.partition(".")
        if head not in known:
            raise ValueError(f"unknown setting {head!r}; known: {', '.join(sorted(known))}")
        if rest:
            base = values.get(head) or dict(getattr(TrainConfig(), head))
            values[head] = {**base, rest: _parse(raw)}
        else:
            values[head] = _parse(raw)
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    return TrainConfig(**values)


def save_config(config: TrainConfig, path: str | Path) -> None:
    data = dataclasses.asdict(config)
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
