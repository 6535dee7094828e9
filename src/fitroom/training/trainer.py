"""One trainer on accelerate for HR-VITON's two stages: mixed precision, gradient accumulation, atomic
checkpoints, exact resume, EMA, held-out validation.

The stages are training tasks (:mod:`fitroom.training.tasks`; the built-in ones in :mod:`fitroom.training.stages`):
HR-VITON's ``condition`` (the try-on condition generator) and ``generator`` (the SPADE image generator with a
trained condition generator frozen), CP-VTON's ``gmm`` and ``tom``. Each checkpoint
also exports the weights to use (the EMA copy when ``ema`` > 0) as model folders: ``model/``, and for the
generator stage ``hrviton/`` with both networks, ready for ``fitroom tryon --engine hrviton --checkpoint``.
Losses go to TensorBoard and ``log.jsonl``; every ``validate_every`` steps the SSIM of the output against its
target on up to ``validation_samples`` held-out (test split) samples is logged too.

An optimizer step consumes ``grad_accum`` micro-batches: each micro-batch's losses are divided by ``grad_accum``
before ``backward``; clipping and the optimizer steps happen once, after the last micro-batch. A window whose
losses or gradients are not finite is skipped (gradients dropped, logged, counted). Checkpoints hold the models,
optimizers, schedulers, scaler, EMA, step, data position and random-number states, taken from the unwrapped
models, written to a temporary file and renamed, so a killed run never leaves a half-written checkpoint and a
resumed run continues the same trajectory.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from fitroom.data.layout import DatasetError
from fitroom.errors import ConfigurationError
from fitroom.files import written_at_once
from fitroom.labels import View
from fitroom.training.config import TrainConfig, changed_settings, load_config, save_config
from fitroom.training.tasks import TASKS

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "step_"


class ResumableSampler(Sampler[int]):
    """A fresh permutation per epoch from ``(seed, epoch)``, able to start mid-epoch (for exact resume).

    With ``world`` processes, process ``rank`` takes every ``world``-th index of the permutation from its
    ``rank``-th (each epoch's last ``length % world`` left out, so that every process sees as many): the processes
    share no sample within an epoch, and together their first batches of B are the one process's first batch of
    ``world`` x B. ``position`` counts this process's samples."""

    def __init__(self, length: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.seed, self.rank, self.world = seed, rank, world
        self.length = length // world
        self.total = length
        self.epoch, self.position = 0, 0

    def permutation(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.total, generator=generator).tolist()[self.rank::self.world][:self.length]

    def __iter__(self):
        order = self.permutation()
        while self.position < self.length:
            index = order[self.position]
            self.position += 1
            yield index
        self.epoch, self.position = self.epoch + 1, 0

    def __len__(self) -> int:
        return self.length - self.position


class Trainer:
    """Runs a :class:`TrainConfig`; ``run(until=None)`` trains to ``config.steps`` (or ``until``), resuming from
    the latest checkpoint in ``config.out`` when there is one."""

    def __init__(self, config: TrainConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress
        # fp16 on the CPU: accelerate would run it in float32 without a word, so the trainer autocasts to float16
        # and scales the loss itself (torch's CPU autocast and GradScaler); on a GPU accelerate does both
        self.cpu_fp16 = config.mixed_precision == "fp16" and not torch.cuda.is_available()
        self.scaler = torch.amp.GradScaler("cpu") if self.cpu_fp16 else None
        # accelerate keeps one state per process; a second trainer in the same process (a notebook, the tests) may
        # ask for another precision, so the precision part is reset (the distributed part is kept)
        AcceleratorState._reset_state(reset_partial_state=False)
        self.accelerator = Accelerator(mixed_precision="no" if self.cpu_fp16 else config.mixed_precision,
                                       cpu=not torch.cuda.is_available())
        torch.manual_seed(config.seed)
        self.out = Path(config.out)
        self.task = TASKS.get(config.stage)(config)
        dataset = self._dataset("train")
        world = self.accelerator.num_processes
        if len(dataset) < config.batch_size * world:
            raise ValueError(f"{len(dataset)} training samples are fewer than one batch of {config.batch_size}"
                             + (f" for each of {world} processes" if world > 1 else ""))
        self.out.mkdir(parents=True, exist_ok=True)  # after the checks: a refused start leaves no folder behind
        # each process its own share of every epoch (the models are wrapped for DDP by accelerate; the loader is
        # not, so that the resumable order stays this trainer's)
        self.sampler = ResumableSampler(len(dataset), config.seed, self.accelerator.process_index, world)
        # the loader draws its workers' seeds from its own generator: a resumed run creates its iterators at other
        # moments than an uninterrupted one, and must not shift the models' random stream (dropout) by doing so
        self.loader = DataLoader(dataset, batch_size=config.batch_size, sampler=self.sampler, drop_last=True,
                                 num_workers=config.workers, generator=torch.Generator().manual_seed(config.seed))
        # the trained networks: the generator, and the discriminator where the stage is adversarial (CP-VTON's are not)
        self.names = list(self.task.trainable)
        if self.names[0] != "generator" or not set(self.names) <= {"generator", "discriminator"}:
            raise ConfigurationError(f"the {config.stage} stage trains {self.names}; this trainer runs a generator "
                                     f"and, for adversarial stages, a discriminator")
        rates = {"generator": config.lr, "discriminator": config.lr_discriminator}
        models = [getattr(self.task, name) for name in self.names]
        optimizers = [torch.optim.Adam(m.parameters(), lr=rates[n], betas=config.betas)
                      for n, m in zip(self.names, models)]
        prepared = self.accelerator.prepare(*models, *optimizers)
        for name, model in zip(self.names, prepared[:len(models)]):
            setattr(self.task, name, model)
        self.optimizers = dict(zip(self.names, prepared[len(models):]))
        # constant, or constant then a linear decay to zero (HR-VITON's generator stage)
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
                           for name, optimizer in self.optimizers.items()}
        self.ema = None
        if config.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            # buffers too: BatchNorm's running statistics belong to the averaged model
            self.ema = AveragedModel(self.accelerator.unwrap_model(self.task.generator),
                                     multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self.validation = None
        try:
            self.validation = self._dataset("test")
            self.validation.pairs = self.validation.pairs[:config.validation_samples]
        except (DatasetError, OSError) as error:
            logger.warning("no validation: the test split of %s cannot be read (%s)", config.data, error)
        self.step = 0
        self.skipped = 0
        self.writer = None
        if self.accelerator.is_main_process:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))
        self._resume()
        save_config(config, self.out / "config.yaml")

    def _dataset(self, split: str):
        dataset = self.task.dataset(split)
        dataset.keep_views({View(v) for v in self.config.views})
        if not dataset.pairs:
            raise ValueError(f"the {split} split has no samples of the views {', '.join(self.config.views)}")
        dataset.keep_categories(self.config.categories)
        if not dataset.pairs:
            raise ValueError(f"the {split} split has no samples of the garment categories "
                             f"{', '.join(self.config.categories)} (categories.txt names each sample's; unlisted "
                             f"samples are tops)")
        return dataset

    @property
    def log_path(self) -> Path:
        return self.out / "log.jsonl"

    def _log(self, record: dict) -> None:
        """One JSON line per logged step or validation (read by benchmarks; TensorBoard gets the same values)."""
        if self.accelerator.is_main_process:
            with self.log_path.open("a") as file:
                file.write(json.dumps({"step": self.step, **record}) + "\n")

    def history(self) -> list[dict]:
        """Every record of ``log.jsonl``: ``{"step", losses...}`` and ``{"step", "validation_ssim"}``."""
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def averaged_generator(self) -> torch.nn.Module:
        """The generator to evaluate and export: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.task.generator)

    @torch.no_grad()
    def validate(self) -> float:
        """Mean SSIM (RGB, 11x11 Gaussian window) of the model's output against its target on the held-out
        samples: the warped cloth (condition stage) or the try-on image (generator stage)."""
        from kornia.metrics import ssim

        generator = self.averaged_generator()
        was_training = generator.training
        generator.eval()
        loader = DataLoader(self.validation, batch_size=self.config.batch_size, shuffle=False)
        values = []
        for batch in loader:
            batch = {k: v.to(self.accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            with self._autocast():
                prediction, truth = self.task.predict(generator, self.task.inputs(batch))
            values.append(ssim(prediction.float().clamp(-1, 1) * 0.5 + 0.5, truth.float() * 0.5 + 0.5, 11)
                          .mean((1, 2, 3)))
        generator.train(was_training)
        return float(torch.cat(values).mean())

    @property
    def optimizer_g(self) -> torch.optim.Optimizer:
        return self.optimizers["generator"]

    @property
    def scheduler_g(self) -> torch.optim.lr_scheduler.LRScheduler:
        return self.schedulers["generator"]

    def _models(self) -> dict[str, torch.nn.Module]:
        return {name: getattr(self.task, name) for name in self.names}

    # ---------------------------------------------------------------------------------------------- checkpoints
    def checkpoints(self) -> list[Path]:
        return sorted(self.out.glob(f"{CHECKPOINT_PREFIX}*.pt"), key=lambda p: int(p.stem[len(CHECKPOINT_PREFIX):]))

    def save_checkpoint(self) -> Path:
        unwrap = self.accelerator.unwrap_model
        state = {
            "step": self.step, "skipped": self.skipped,
            **{name: unwrap(model).state_dict() for name, model in self._models().items()},
            **{f"optimizer_{name}": o.state_dict() for name, o in self.optimizers.items()},
            **{f"scheduler_{name}": s.state_dict() for name, s in self.schedulers.items()},
            "sampler": {"epoch": self.sampler.epoch, "position": self.sampler.position,
                        "processes": self.accelerator.num_processes},
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self._scaler.state_dict() if self._scaler is not None else None,
        }
        path = self.out / f"{CHECKPOINT_PREFIX}{self.step}.pt"
        with written_at_once(path) as temporary:  # a reader sees the old set or the new file, never half of one
            torch.save(state, temporary)
        for old in self.checkpoints()[:-self.config.keep_checkpoints]:
            old.unlink()
        # the weights to use (EMA when kept) as model folders beside the checkpoints
        self.task.export(self.averaged_generator(), self.out)
        return path

    def _resume(self) -> None:
        saved = self.out / "config.yaml"
        if self.checkpoints() and saved.is_file():
            changed = changed_settings(load_config(saved), self.config)
            if changed:
                listed = ", ".join(f"{k} {before!r} -> {now!r}" for k, (before, now) in changed.items())
                raise ConfigurationError(f"the run folder {self.out} was started with other settings ({listed}); "
                                         f"resume it with the settings in its config.yaml, or start a new run with "
                                         f"another out=")
        for path in reversed(self.checkpoints()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # a damaged file: fall back to the one before
                logger.warning("skipping unreadable checkpoint %s (%s)", path, error)
                continue
            unwrap = self.accelerator.unwrap_model
            try:
                for name, model in self._models().items():
                    unwrap(model).load_state_dict(state[name])
            except (RuntimeError, KeyError) as error:
                first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
                raise ValueError(f"{path} does not fit the models of this configuration ({first} ...): the run "
                                 f"folder {self.out} was started with other model settings; resume it with the "
                                 f"settings in its config.yaml, or start a new run with another out=") from None
            for name in self.names:
                self.optimizers[name].load_state_dict(state[f"optimizer_{name}"])
                self.schedulers[name].load_state_dict(state[f"scheduler_{name}"])
            processes = state["sampler"].get("processes", 1)
            if processes != self.accelerator.num_processes:
                raise ConfigurationError(f"{path} was written by a run of {processes} process(es): resume it with "
                                         f"{processes} (each process's place in the data depends on their number)")
            self.sampler.epoch, self.sampler.position = state["sampler"]["epoch"], state["sampler"]["position"]
            torch.set_rng_state(state["rng_cpu"])
            if state["rng_cuda"]:
                torch.cuda.set_rng_state_all(state["rng_cuda"])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            if self._scaler is not None and state["scaler"] is not None:
                self._scaler.load_state_dict(state["scaler"])
            self.step, self.skipped = state["step"], state["skipped"]
            if self.accelerator.is_main_process:  # records after the checkpoint will be written again
                kept = [r for r in self.history() if r["step"] <= self.step]
                self.log_path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            logger.info("resumed from %s at step %d", path, self.step)
            return
        if self.accelerator.is_main_process:
            self.log_path.unlink(missing_ok=True)  # a fresh run

    # -------------------------------------------------------------------------------------------------- training
    def _batches(self):
        while True:
            for batch in self.loader:
                yield {k: v.to(self.accelerator.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def run(self, until: int | None = None) -> dict:
        """Train to ``until`` (default ``config.steps``) optimizer steps; returns the last logged losses."""
        config, task = self.config, self.task
        target = min(until or config.steps, config.steps)
        batches = self._batches()
        bar = tqdm(total=target, initial=self.step, desc="training", unit="step",
                   disable=not (self.progress and self.accelerator.is_main_process))
        logs: dict = {}
        adversarial = "discriminator" in self.names
        discriminator_parameters = list(task.discriminator.parameters()) if adversarial else []
        while self.step < target:
            finite = losses_finite = True
            window: dict[str, float] = {}
            for micro in range(config.grad_accum):
                x = task.inputs(next(batches))
                # under DDP the gradients are all-reduced once per window: at its last micro-batch only
                with contextlib.ExitStack() as unsynced:
                    if micro < config.grad_accum - 1:
                        for model in self._models().values():
                            unsynced.enter_context(self.accelerator.no_sync(model))
                    # the generator's losses, with the discriminator frozen
                    for p in discriminator_parameters:
                        p.requires_grad_(False)
                    with self._autocast():
                        loss_g, parts = task.generator_losses(x)
                    self._backward(loss_g / config.grad_accum)
                    losses_finite &= bool(torch.isfinite(loss_g.detach()))
                    totals = {"generator": float(loss_g.detach())}
                    if adversarial:
                        for p in discriminator_parameters:
                            p.requires_grad_(True)
                        with self._autocast():
                            loss_d = task.discriminator_loss(x)
                        self._backward(loss_d / config.grad_accum)
                        losses_finite &= bool(torch.isfinite(loss_d.detach()))
                        totals["discriminator"] = float(loss_d.detach())
                for name, value in {**parts, **totals}.items():
                    window[name] = window.get(name, 0.0) + value / config.grad_accum
            # one optimizer step per window: (unscale,) clip, check, step
            if self.scaler is not None:
                for optimizer in self.optimizers.values():
                    self.scaler.unscale_(optimizer)
            for model in self._models().values():
                if config.clip_grad > 0:
                    self.accelerator.clip_grad_norm_(model.parameters(), config.clip_grad)
                finite &= all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
            finite, window = self._across_processes(finite and losses_finite, window)
            if finite:
                for name in self.names:
                    if self.scaler is not None:
                        self.scaler.step(self.optimizers[name])
                    else:
                        self.optimizers[name].step()
                    self.schedulers[name].step()
                if self.ema is not None:
                    self.ema.update_parameters(self.accelerator.unwrap_model(task.generator))
            else:
                self.skipped += 1
                if self._scaler is not None and losses_finite:  # fp16 overflow: the scale is lowered, as usual
                    logger.info("step %d: the fp16 gradients overflowed; the step was skipped and the loss scale "
                                "lowered (%d skipped so far)", self.step + 1, self.skipped)
                else:
                    logger.warning("step %d: a loss or gradient was not finite; the step was skipped (%d so far)",
                                   self.step + 1, self.skipped)
            if self.scaler is not None:
                self.scaler.update()  # a smaller scale after a non-finite window, a larger one after a long run
            for optimizer in self.optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            self.step += 1
            bar.update(1)
            logs = window
            if self.writer is not None and (self.step % config.log_every == 0 or self.step == target):
                for name, value in window.items():
                    self.writer.add_scalar(f"loss/{name}", value, self.step)
                self.writer.add_scalar("lr/generator", self.scheduler_g.get_last_lr()[0], self.step)
                self.writer.add_scalar("skipped_steps", self.skipped, self.step)
                self._log(window)
            if self.writer is not None and self.step % config.validate_every == 0:
                self._samples(x)
                if self.validation is not None:
                    value = self.validate()
                    self.writer.add_scalar("validation/ssim", value, self.step)
                    self._log({"validation_ssim": value})
                    logger.info("step %d: validation SSIM %.4f on %d held-out samples", self.step, value,
                                len(self.validation))
            if self.accelerator.is_main_process and (self.step % config.checkpoint_every == 0 or self.step == target):
                self.save_checkpoint()
        bar.close()
        if self.writer is not None:
            self.writer.flush()
        return logs

    @property
    def _scaler(self):
        """The loss scaler of fp16 training (the trainer's on the CPU, accelerate's on a GPU), or None."""
        return self.scaler if self.scaler is not None else self.accelerator.scaler

    def _autocast(self):
        if self.cpu_fp16:
            return torch.autocast("cpu", dtype=torch.float16)
        return self.accelerator.autocast()

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            self.accelerator.backward(loss)

    def _across_processes(self, finite: bool, window: dict[str, float]) -> tuple[bool, dict[str, float]]:
        """With several processes: the window is finite only where it is finite on every process (they step or
        skip together, so their weights stay equal), and each logged loss is the mean over the processes."""
        if self.accelerator.num_processes == 1:
            return finite, window
        names = sorted(window)
        values = torch.tensor([float(finite)] + [window[n] for n in names], device=self.accelerator.device)
        gathered = self.accelerator.gather(values[None]).reshape(self.accelerator.num_processes, -1)
        finite = bool(gathered[:, 0].min() > 0)
        return finite, dict(zip(names, (float(v) for v in gathered[:, 1:].mean(0))))

    def _samples(self, x: dict) -> None:
        """A grid of up to four training samples in TensorBoard, one row per stage of the task."""
        from torchvision.utils import make_grid

        rows = [row[:4].float() for row in self.task.sample_rows(x)]
        grid = make_grid(torch.cat(rows) * 0.5 + 0.5, nrow=rows[0].shape[0])
        self.writer.add_image("samples", grid.clamp(0, 1), self.step)
