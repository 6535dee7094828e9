"""The ``hrviton`` engine: HR-VITON's inference, from ``TryOnInputs`` at any size.

Steps (``shared/reference/hrviton/README.md`` section 2.7):
1. tensors at the generator's working size (a multiple of 64 or 128 with the person's 4:3 canvas); the
   condition generator's inputs are down-sampled from them to 256x192 (cloth and DensePose bilinear, masks and
   parse nearest, on tensors as the reference and the trainer do) by :class:`~fitroom.models.hrviton.HrvitonTryOn`,
   which runs steps 2-5;
2. the condition generator: flows, layout logits, warped cloth and mask; condition aligning (the upper-cloth
   logit times the warped mask);
3. the layout up-sampled to full size, blurred (15x15 Gaussian, sigma 3), arg-maxed and regrouped to 7 classes;
4. the last flow up-sampled to full size warps the full-size cloth and mask; occlusion by body parts is removed
   with the blurred layout's probabilities; the cloth is composited on white;
5. the SPADE generator renders the person from (agnostic person, DensePose, warped cloth) and the layout;
6. the result is resized back to the photo's size, and every pixel of ``inputs.keep`` is copied back from the
   photo.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import torch

from fitroom import imaging
from fitroom.engines import register_engine
from fitroom.errors import ConfigurationError, InputError
from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import CONDITION_SIZE, GarmentCategory, View
from fitroom.models.hrviton import (
    ConditionGenerator, HrvitonTryOn, SPADEGenerator, prepare_condition_generator, prepare_generator,
)
from fitroom.models.io import load_parts, part_categories

logger = logging.getLogger(__name__)

#: the parts of an hrviton checkpoint folder
PARTS = ("condition_generator", "generator")
PRECISIONS = ("fp32", "bf16", "int8", "auto")
RUNTIMES = ("torch", "onnxruntime")
#: int8's calibration holds one picture's convolution activations at once: the whole process peaked at 15.5 GB
#: quantizing full-size networks at 1024x768 with one picture (2.9 GB at 512x384 for a small trained checkpoint);
#: ``auto`` does not calibrate when less than this per working-size pixel and picture is free
INT8_CALIBRATION_BYTES_PER_PIXEL = 15.5e9 / (1024 * 768)

#: ``precision="auto"`` keeps bf16 only when its first picture has at least this SSIM against float32's
AUTO_MIN_SSIM = 0.99


def onnx_cache() -> Path:
    """Where the onnxruntime runtime keeps its exports: ``$FITROOM_ONNX_CACHE``, else ``~/.cache/fitroom/onnx``."""
    return Path(os.environ.get("FITROOM_ONNX_CACHE") or Path.home() / ".cache" / "fitroom" / "onnx")


def _has_onnxruntime() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx", "onnxscript"))


def _run_onnx(runner, full: dict[str, torch.Tensor], view: torch.Tensor) -> dict[str, torch.Tensor]:
    """``runner`` (an :class:`~fitroom.models.hrviton_onnx.OnnxTryOn`) on the engine's working-size tensors."""
    return runner(full["garment"], full["garment_mask"], full["parse_agnostic"], full["dense"], full["agnostic"],
                  view)


def _cached(path: Path, make, again: str):
    """An :class:`~fitroom.models.hrviton_onnx.OnnxTryOn` of the model file ``path``, made first by ``make(path)``
    when there is none or the cached one cannot be read (logged with ``again``: what is done again)."""
    from fitroom.models.hrviton_onnx import OnnxTryOn

    if path.is_file():
        try:
            return OnnxTryOn(path)
        except InputError:  # a damaged cache file: made again
            logger.warning("the cached ONNX model %s cannot be read; %s", path, again)
            path.unlink()
    make(path)
    return OnnxTryOn(path)


def _export_path(model: HrvitonTryOn, size: tuple[int, int]) -> Path:
    from fitroom.models.hrviton_onnx import fingerprint

    return onnx_cache() / f"hrviton-{size[0]}x{size[1]}-{fingerprint(model, size)}.onnx"


def _onnx_runner(model: HrvitonTryOn, size: tuple[int, int]):
    """An :class:`~fitroom.models.hrviton_onnx.OnnxTryOn` for ``model`` at ``size``: the cached export of these
    weights at this size, made first when there is none."""
    from fitroom.models.hrviton_onnx import export_onnx

    def make(path: Path) -> None:
        logger.info("exporting the networks to ONNX for onnxruntime (once for these weights at %dx%d): %s",
                    size[0], size[1], path)
        export_onnx(model, size, path)

    return _cached(_export_path(model, size), make, "exporting again")


def _int8_runner(model: HrvitonTryOn, size: tuple[int, int], calibration: list[dict], percentile: float = 99.9):
    """An :class:`~fitroom.models.hrviton_onnx.OnnxTryOn` of the int8 copy of ``model``'s export at ``size``,
    calibrated on the ``calibration`` feeds: cached like the export, under a name that holds the calibration's hash
    (other pictures, other ranges)."""
    import hashlib

    from fitroom.models.hrviton_onnx import INT8_SCHEME, quantize_onnx

    source = _export_path(model, size)
    digest = hashlib.sha256(f"{INT8_SCHEME} {percentile}".encode())
    for one in calibration:
        for name in sorted(one):
            digest.update(one[name].tobytes())

    def make(path: Path) -> None:
        # the float32 export it is made from, made first when there is none (only now: with the int8 copy cached,
        # neither the export nor its onnxruntime session is needed)
        _onnx_runner(model, size)
        logger.info("quantizing the image generator to int8 for onnxruntime (once for these weights, size and "
                    "calibration): %s", path)
        quantize_onnx(source, path, calibration, percentile)

    return _cached(_int8_path(source, digest.hexdigest()[:12]), make, "quantizing again")


def _int8_path(source: Path, calibration: str) -> Path:
    """Where the int8 copy of the export ``source`` calibrated as ``calibration`` (a hash, or ``*`` to match any)
    is cached: beside it, named with :data:`~fitroom.models.hrviton_onnx.INT8_SCHEME`."""
    from fitroom.models.hrviton_onnx import INT8_SCHEME

    return source.with_name(f"{source.stem}-int8-{INT8_SCHEME}-{calibration}.onnx")


def _kept_int8(model: HrvitonTryOn, size: tuple[int, int]):
    """The newest readable int8 copy of ``model``'s export at ``size`` already in the cache (whatever it was
    calibrated on), as an :class:`~fitroom.models.hrviton_onnx.OnnxTryOn`, or None."""
    from fitroom.models.hrviton_onnx import OnnxTryOn

    pattern = _int8_path(_export_path(model, size), "*")
    for path in sorted(pattern.parent.glob(pattern.name), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            return OnnxTryOn(path)
        except InputError:
            logger.warning("the cached ONNX model %s cannot be read; not used", path)
    return None


def working_size(generator: SPADEGenerator, requested: tuple[int, int] | None) -> tuple[int, int]:
    if requested is not None:
        return requested
    return (1024, 768) if generator.config.num_upsampling_layers == "most" else CONDITION_SIZE


@register_engine("hrviton")
class HrvitonEngine:
    """HR-VITON try-on.

    Args:
        checkpoint: a folder with ``condition_generator/`` and ``generator/`` model folders (``fitroom convert
            hrviton`` or ``fitroom train generator`` makes them), or a folder with ``front/`` and ``back/`` such
            folders: two per-view models, each photo handled by its view's.
        condition_generator, generator: already built networks instead of a checkpoint (tests use tiny ones).
        size: the generator's working ``(H, W)`` (default 1024x768 for a 7-up-sampling generator, else 256x192).
        device: where to run.
        precision: ``fp32`` (default: the exact path), ``bf16`` (the image generator under bf16 autocast, the
            condition generator in float32: its flow moves the garment and its layout decides each pixel's class,
            and in bf16 they moved whole regions, SSIM down to 0.98 against float32's picture, while it costs a
            fraction of the generator's time) or ``auto``: the fastest of bf16 (where
            the device computes it natively) and, on the CPU with no ``runtime`` given, int8 and ONNX Runtime
            float32, whose first picture keeps SSIM >= :data:`AUTO_MIN_SSIM` against float32's (that first picture
            is made each way and the float32 one is returned); float32 on torch when none does. The choice is
            logged and reported in every result's ``extras["precision"]`` and ``extras["runtime"]``.
            ``int8``: the ONNX graph in ONNX Runtime with the image generator's SPADE-norm convolutions in int8
            (static quantization: int8 weights per channel, uint8 activations whose ranges are measured on
            ``calibration``, by default on the first picture given; made once and cached like the export; VNNI
            where the CPU has it); the generator's residual convolutions and the condition generator stay float32.
            ``auto``'s int8 is the cached copy of these weights when there is one (see :meth:`_int8_for_auto`).
        calibration: the pictures (``TryOnInputs``) ``int8`` measures its activations' ranges on.
        runtime: ``torch`` (default) or ``onnxruntime``: steps 2-5 as one ONNX graph run by ONNX Runtime (exported
            at the first load of a checkpoint at a size, about 20 s at 512x384, and cached under
            ``$FITROOM_ONNX_CACHE``, default ``~/.cache/fitroom/onnx``); float32 only, and without SPADE's noise.
        compile: run the image generator (and, under bf16, the condition generator too) through
            ``torch.compile`` (inductor) with their weights frozen into the compiled code (``freezing``: constants
            folded, oneDNN's convolution weights packed once). In float32 the condition generator stays uncompiled:
            compiled, its warp moved by up to 6.5e-4 on an AVX2 machine and one layout pixel changed class on 1 of
            16 held-out pairs (picture 3.7e-2 off there), past the exact path's 1e-4; the image generator compiled
            stays within 4e-6. The first picture pays the compilation (50-110 s at 512x384 on 2 cores in float32
            with inductor's cache cold, 15 s warm; each precision compiles its own); afterwards the networks
            measured 0.70x the time of the exact path in float32 and 0.75x of bf16's under bf16
            (benchmarks/speed.py, a CPU with AMX). For a service or a catalogue, not a single try-on.

    Both networks always run in their prepared forms (:func:`~fitroom.models.hrviton.prepare_generator`:
    spectral norms folded, SPADE convolutions fused, channels-last; :func:`~fitroom.models.hrviton.
    prepare_condition_generator`: batch norms folded): the same functions as the trained networks within float
    rounding.
    """

    #: what it tries on: the categories its networks were trained on (``fitroom train ... categories=``; tops for
    #: the official release and older checkpoints)
    categories = frozenset({GarmentCategory.UPPER})

    @staticmethod
    def checkpoint_categories(checkpoint: str | Path) -> frozenset[GarmentCategory] | None:
        """The categories the networks in ``checkpoint`` were trained on (None: no such networks there)."""
        trained = part_categories(checkpoint, PARTS)
        return None if trained is None else frozenset(GarmentCategory(c) for c in trained)

    def __init__(self, checkpoint: str | Path | None = None, condition_generator: ConditionGenerator | None = None,
                 generator: SPADEGenerator | None = None, size: tuple[int, int] | None = None,
                 device: str = "cpu", precision: str = "fp32", compile: bool = False,
                 runtime: str | None = None, calibration: list[TryOnInputs] | None = None) -> None:
        from fitroom.devices import native_bf16

        if precision not in PRECISIONS:
            raise ConfigurationError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if runtime is not None and runtime not in RUNTIMES:
            raise ConfigurationError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if precision == "int8":
            if runtime == "torch" or compile:
                raise ConfigurationError("int8 runs in onnxruntime (the exported graph, quantized): it takes "
                                         "neither runtime torch nor compile")
            runtime = "onnxruntime"
        if runtime == "onnxruntime" and (precision == "bf16" or compile):  # (int8 is onnxruntime's own)
            raise ConfigurationError("the onnxruntime runtime runs float32 as exported: it takes neither "
                                     "precision bf16 nor compile")
        self.per_view: dict[View, HrvitonEngine] = {}
        views = [v for v in View if checkpoint is not None and (Path(checkpoint) / v.value).is_dir()]
        if views:
            # per-view models (front/, back/, ... each a checkpoint folder): each photo goes to its view's model
            self.per_view = {v: HrvitonEngine(Path(checkpoint) / v.value, size=size, device=device,
                                              precision=precision, compile=compile, runtime=runtime,
                                              calibration=calibration)
                             for v in views}
            self.size = self.per_view[views[0]].size
            self.categories = frozenset.intersection(*(e.categories for e in self.per_view.values()))
            return
        if checkpoint is not None:
            parts = load_parts(checkpoint, PARTS, "the hrviton engine needs a checkpoint folder with "
                               "condition_generator/ and generator/, made by `fitroom convert hrviton "
                               "--condition-generator mtviton.pth --generator gen.pth --out DIR` from the official "
                               "release, or by `fitroom train generator`")
            condition_generator, generator = parts["condition_generator"], parts["generator"]
        if condition_generator is None or generator is None:
            raise ConfigurationError("the hrviton engine needs a checkpoint folder (--checkpoint DIR, or "
                                     "FITROOM_CHECKPOINT for the service): one made by `fitroom train condition` and "
                                     "`fitroom train generator`, or by `fitroom convert hrviton` from the official "
                                     "release")
        trained = set(condition_generator.config.categories) & set(generator.config.categories)
        if not trained:
            raise ConfigurationError(f"the condition generator was trained on "
                                     f"{', '.join(condition_generator.config.categories)} and the image generator on "
                                     f"{', '.join(generator.config.categories)}: a checkpoint needs both trained on "
                                     f"the same category")
        self.categories = frozenset(GarmentCategory(c) for c in trained)
        if runtime == "onnxruntime" and generator.config.category_input:
            raise ConfigurationError("the onnxruntime runtime exports networks without the category input; this "
                                     "checkpoint takes the category: run it on torch")
        self.device = torch.device(device)
        self.model = HrvitonTryOn(prepare_condition_generator(condition_generator.eval()),
                                  prepare_generator(generator.to(self.device)))
        self.model = self.model.to(self.device).eval()
        self.size = working_size(generator, size)
        self.precision = precision
        # what precision auto may try on the first picture, fastest first (as measured on a 2-core AVX-512 machine:
        # bf16 0.41-0.49x, onnxruntime 0.64-0.76x the time of float32 in torch)
        self.candidates = []
        if precision == "auto" and runtime != "onnxruntime" and native_bf16(self.device):
            self.candidates.append("bf16")
        onnx_possible = (runtime is None and not compile and self.device.type == "cpu"
                         and not generator.config.category_input)
        if precision == "auto" and onnx_possible and _has_onnxruntime():
            self.candidates += ["int8", "onnxruntime"]
        if precision == "auto" and not self.candidates:
            logger.info("precision auto: float32 on torch (bf16 is not native on %s%s)", self._device_name(),
                        "; onnxruntime is not installed: pip install 'fitroom[onnx]'" if onnx_possible else "")
            self.precision = "fp32"
        # frozen weights are what makes compiling pay on the CPU (6-17 % faster without, 30 % with them in float32)
        self.compiled = torch.compile(self.model.generator, options={"freezing": True}) if compile else None
        # (the condition generator's compiled form is used under bf16 only: in float32 it was not exact enough)
        self.compiled_condition = (torch.compile(self.model.condition_generator, options={"freezing": True})
                                   if compile else None)
        self.runtime = runtime or "torch"
        self.onnx = None
        self.calibration = calibration
        if runtime == "onnxruntime":
            if self.device.type != "cpu":
                raise ConfigurationError(f"the onnxruntime runtime runs on the CPU, not on {self.device}")
            if precision != "int8":  # (int8's copy is made at the first picture: it may calibrate on it)
                self.onnx = _onnx_runner(self.model, self.size)

    def _device_name(self) -> str:
        if self.device.type == "cpu":
            return f"this CPU ({torch.backends.cpu.get_cpu_capability()})"
        return str(self.device)

    def _networks(self, full: dict[str, torch.Tensor], view: torch.Tensor, bf16: bool,
                  tick=lambda step: None) -> dict[str, torch.Tensor]:
        """Steps 2-5 on the working-size tensors (``bf16``: the image generator under bf16 autocast, the condition
        generator in float32); ``tick(step)`` after each network."""
        if self.precision == "int8" and self.onnx is None:
            self.onnx = _int8_runner(self.model, self.size, self._calibration_feeds(full, view))
            tick("int8 quantization (once)")
        if self.onnx is not None:
            outputs = _run_onnx(self.onnx, full, view)
            tick("networks (onnxruntime)")
            return outputs
        conditions = self.model.conditions(full["garment"], full["garment_mask"], full["parse_agnostic"],
                                           full["dense"], view, full["category"],
                                           self.compiled_condition if bf16 else None)
        tick("condition and warp")
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            x = self.model.generator_input(full["agnostic"], full["dense"], conditions["warped_cloth"], view,
                                           full["category"])
            generator = self.model.generator if self.compiled is None else self.compiled
            image = generator(x, conditions["seg7"]).float()
            tick("generator")
        return {**conditions, "image": image}

    def _choose_precision(self, full: dict[str, torch.Tensor], view: torch.Tensor) -> dict[str, torch.Tensor]:
        """``auto``: this first picture in float32 on torch, then in each candidate, fastest first (bf16 where native,
        from the same random state, SPADE's noise drawn in bf16 differing a little, which only makes the test
        stricter; then the ONNX graph in onnxruntime, exported once for these weights, without noise); the first whose
        picture reaches SSIM :data:`AUTO_MIN_SSIM` against float32's is used from now on, else float32. Returns the
        float32 outputs."""
        from kornia.metrics import ssim

        state = torch.random.get_rng_state()
        exact = self._networks(full, view, bf16=False)
        scores = []
        self.precision = "fp32"
        for candidate in self.candidates:
            torch.random.set_rng_state(state)
            if candidate == "onnxruntime":
                runner = _onnx_runner(self.model, self.size)
                picture = _run_onnx(runner, full, view)["image"]
            elif candidate == "int8":
                try:
                    runner = self._int8_for_auto(full, view)
                except Exception as error:  # (an optional speed-up: its failure must not fail the try-on)
                    logger.warning("precision auto: int8 could not be made (%s); trying the next profile", error)
                    scores.append("int8 failed")
                    continue
                if runner is None:
                    scores.append("int8 skipped")
                    continue
                picture = _run_onnx(runner, full, view)["image"]
            else:
                picture = self._networks(full, view, bf16=True)["image"]
            score = float(ssim(exact["image"] * 0.5 + 0.5, picture.clamp(-1, 1) * 0.5 + 0.5, 11).mean())
            scores.append(f"{candidate} {score:.4f}")
            if score >= AUTO_MIN_SSIM:
                if candidate in ("int8", "onnxruntime"):
                    self.onnx, self.runtime = runner, "onnxruntime"
                if candidate != "onnxruntime":
                    self.precision = candidate
                break
        logger.info("precision auto: %s on %s on %s (SSIM of the first picture against float32's: %s; the bar is "
                    "%.2f)", self.precision, self.runtime, self._device_name(), ", ".join(scores), AUTO_MIN_SSIM)
        return exact

    def _int8_for_auto(self, full: dict[str, torch.Tensor], view: torch.Tensor):
        """``auto``'s int8 candidate: calibrated on the engine's ``calibration`` pictures when given, else the int8
        copy of these weights at this size already cached (calibrated on an earlier first picture, so judged here
        on another), else calibrated on this first picture (and then judged on it: on held-out pictures its SSIM
        against float32 measured 0.998, see the README). None (logged) when calibrating would need more memory
        than the machine has free (:data:`INT8_CALIBRATION_BYTES_PER_PIXEL`): the process could be killed."""
        import psutil

        if not self.calibration:
            kept = _kept_int8(self.model, self.size)
            if kept is not None:
                return kept
        need = INT8_CALIBRATION_BYTES_PER_PIXEL * self.size[0] * self.size[1] * max(1, len(self.calibration or []))
        free = psutil.virtual_memory().available
        if free < need:
            logger.info("precision auto: int8 not tried: calibrating it at %dx%d needs about %.1f GB of memory and "
                        "%.1f GB is free", self.size[0], self.size[1], need / 1e9, free / 1e9)
            return None
        return _int8_runner(self.model, self.size, self._calibration_feeds(full, view))

    def _calibration_feeds(self, full: dict[str, torch.Tensor], view: torch.Tensor) -> list[dict]:
        """int8's calibration: the ``calibration`` pictures given, else the first picture of this batch."""
        from fitroom.models.hrviton_onnx import feed

        first = {**{name: value[0] for name, value in full.items()}, "view": view[0]}
        return [feed(inputs.to_tensors(self.size)) for inputs in self.calibration or []] or [feed(first)]

    @property
    def condition_generator(self) -> ConditionGenerator:
        return self.model.condition_generator

    @property
    def generator(self) -> SPADEGenerator:
        return self.model.generator

    @torch.no_grad()
    def __call__(self, inputs: TryOnInputs) -> TryOnResult:
        return self.batch([inputs])[0]

    @torch.no_grad()
    def batch(self, many: list[TryOnInputs]) -> list[TryOnResult]:
        """Several try-ons through the networks together (a catalogue: one person, many garments; any mix of
        photos of one working size works). With the onnxruntime runtime (exported for one picture) they run one
        after another. Each result's ``timings`` are the batch's, divided by the number of pictures."""
        if not many:
            return []
        if self.per_view:
            missing = sorted({i.view.value for i in many if i.view not in self.per_view})
            if missing:
                raise InputsError(f"this checkpoint has models for the {', '.join(v.value for v in self.per_view)} "
                                  f"view(s), not for {', '.join(missing)}")
            results: dict[int, TryOnResult] = {}
            for view, engine in self.per_view.items():
                chosen = [k for k, i in enumerate(many) if i.view is view]
                results.update(zip(chosen, engine.batch([many[k] for k in chosen])))
            return [results[k] for k in range(len(many))]
        if (self.onnx is not None or self.precision == "int8") and len(many) > 1:
            return [self.batch([one])[0] for one in many]
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def tick(step: str) -> None:
            nonlocal clock
            timings[step] = (time.perf_counter() - clock) / len(many)
            clock = time.perf_counter()

        # 1. tensors at the working size (the module down-samples the condition generator's inputs itself)
        untrained = sorted({i.category.value for i in many if i.category not in self.categories})
        if untrained:
            raise InputsError(f"this hrviton checkpoint was trained on "
                              f"{' and '.join(c.value for c in GarmentCategory if c in self.categories)}, not on "
                              f"{', '.join(untrained)} garments")
        for inputs in many:
            for field in ("garment", "garment_mask", "dense", "agnostic", "parse_agnostic"):
                if getattr(inputs, field) is None:
                    raise InputsError(f"the hrviton engine needs {field} (the preprocessing makes it)")
        tensors = [inputs.to_tensors(self.size) for inputs in many]
        full = {k: torch.stack([t[k] for t in tensors]).to(self.device) for k in tensors[0]}
        view = full.pop("view").reshape(len(many))
        tick("inputs")

        # 2.-4. condition generator, condition aligning, full-size layout and warp, occlusion removal;
        # 5. the image generator
        if self.precision == "auto":
            outputs = self._choose_precision(full, view)
            tick("networks (auto: float32 and each profile tried)")
        else:
            outputs = self._networks(full, view, self.precision == "bf16", tick)

        # 6. back to the photo's size; what the preprocessing protects (face, hair, hands, background) comes back
        #    from the photo itself
        results = []
        for k, inputs in enumerate(many):
            size = inputs.size
            image = imaging.tensor_to_image(outputs["image"][k].float().cpu())
            results.append(TryOnResult(
                image=inputs.restore_kept(imaging.resize(image, size, "image")), engine="hrviton",
                warped_garment=imaging.resize(imaging.tensor_to_image(outputs["warped_cloth"][k].float().cpu()), size,
                                              "image"),
                warped_mask=imaging.resize(outputs["warped_mask"][k, 0].cpu().numpy() > 0.5, size, "mask"),
                timings=timings,
                extras={"layout13": imaging.resize(outputs["layout13"][k].byte().cpu().numpy(), size, "labels"),
                        "precision": self.precision, "runtime": self.runtime}))
        tick("output")
        return results
