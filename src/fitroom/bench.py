"""``fitroom bench``: how fast an engine runs on this machine, and what the machine can do.

One process measures, side by side: the machine (the instruction sets torch and the CPU report, whether bf16 is
native), its float32 matmul and 3x3-convolution rates (timed here, since vendors' peak figures say little about
what oneDNN reaches), and the engine on a rendered person at the asked size: median seconds per image and per
step, the networks' floating-point operations (counted by ``torch.utils.flop_counter``) and the rate they reach.
For a reduced precision or another runtime the same inputs also run in float32 on torch, and the result's largest
difference and SSIM against the float32 picture are reported (on random weights unless ``checkpoint`` is given: a
trained model's fidelity is what matters).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from fitroom.errors import ConfigurationError

#: CPU features that matter for the engines' speed, as /proc/cpuinfo names them
FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
#: the rendered pictures int8 is calibrated on: others than the one timed and compared (variant 0); one, as
#: onnxruntime holds every calibration picture's activations at once (several GB each at 512x384)
CALIBRATION_VARIANTS = (1,)


def machine() -> dict:
    """What this machine offers: torch's CPU capability, the CPU features of :data:`FEATURES` it has, native bf16,
    cores and torch threads."""
    from fitroom.devices import native_bf16

    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {"capability": torch.backends.cpu.get_cpu_capability(), "features": [f for f in FEATURES if f in flags],
            "native_bf16": native_bf16("cpu"), "cores": os.cpu_count(), "threads": torch.get_num_threads()}


def _median_seconds(work, runs: int, warm: bool = True) -> float:
    if warm:
        work()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@torch.no_grad()
def rates(runs: int = 5) -> dict:
    """GFLOP/s of a 1024 x 1024 float32 matmul and of a 3x3 convolution (64 -> 64 channels at 128x96)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    matmul = 2 * 1024 ** 3 / _median_seconds(lambda: a @ b, runs) / 1e9
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    x = torch.randn(1, 64, 128, 96)
    conv_rate = 2 * 64 * 64 * 9 * 128 * 96 / _median_seconds(lambda: conv(x), runs) / 1e9
    return {"matmul_gflops": matmul, "conv3x3_gflops": conv_rate}


def rendered_inputs(size: tuple[int, int], variant: int = 0):
    """``TryOnInputs`` of a rendered person ``size = (H, W)`` and another garment's product photo, with every
    modality (the benchmarks' fixed inputs; ``variant`` another person and garment, for calibration)."""
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.inputs import TryOnInputs
    from fitroom.labels import DENSE_COLORMAP
    from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic

    spec = sample_spec(variant, 5, allow_crossed=False)
    render = render_person(spec.person, spec.garment, "front", size)
    garment, mask = render_garment(sample_spec(variant, 1).garment, "front", size)
    return TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints,
                       parse=render.parse, dense=DENSE_COLORMAP[render.dense],
                       agnostic=agnostic_person(render.image, render.parse, render.keypoints),
                       parse_agnostic=parse_agnostic(render.parse, render.keypoints))


def _engine(name: str, size: tuple[int, int], checkpoint: str | None, networks: str, **options):
    from fitroom.engines import create_engine
    from fitroom.models import create_model
    from fitroom.models.hrviton import choose_upsampling

    if name == "warp":
        return create_engine("warp")
    if name != "hrviton":
        raise ConfigurationError(f"fitroom bench times the warp and hrviton engines, not {name!r}")
    if checkpoint:
        engine = create_engine("hrviton", checkpoint=checkpoint, size=size, **options)
    else:
        try:
            depth = choose_upsampling(*size)
        except ValueError as error:
            raise ConfigurationError(str(error)) from None
        torch.manual_seed(0)
        prefix = "test_" if networks == "test" else ""
        condition = create_model(f"{prefix}hrviton_condition").eval()
        generator = create_model(f"{prefix}hrviton_generator", num_upsampling_layers=depth).eval()
        engine = create_engine("hrviton", condition_generator=condition, generator=generator, size=size, **options)
    for each in engine.per_view.values() or [engine]:  # noise off: the same picture every run, comparable
        each.model.set_noise(False)
    return engine


def bench(engine_name: str = "hrviton", size: tuple[int, int] = (512, 384), precision: str = "fp32", runs: int = 3,
          threads: int | None = None, checkpoint: str | None = None, networks: str = "full",
          runtime: str | None = None, compile: bool = False) -> dict:
    """Time ``engine_name`` at ``size`` with the engine's ``precision`` (``auto``: the engine's choice),
    ``runtime`` and ``compile`` options, SPADE's noise off (so that every run makes the same picture).

    Returns:
        ``{"engine", "size", "precision" and "runtime" (the ones used), "compile", "seconds" (median per image),
        "seconds_by_step", "first_seconds" (the warm-up call: compilation, auto's two pictures), "gflop" (per
        image), "gflops_per_s", "max_abs_diff_vs_fp32" (of the picture in [0, 1], against the float32 torch
        engine), "ssim_vs_fp32", "weights" ("random" or the checkpoint), "machine", "matmul_gflops",
        "conv3x3_gflops"}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from fitroom import imaging
    from fitroom.metrics.image import ssim_rgb

    if precision not in PRECISIONS:
        raise ConfigurationError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if threads:
        torch.set_num_threads(threads)
    about = machine()
    options = {} if engine_name == "warp" else {"precision": precision, "runtime": runtime, "compile": compile}
    if precision == "int8" and engine_name != "warp":
        options["calibration"] = [rendered_inputs(tuple(size), variant) for variant in CALIBRATION_VARIANTS]
    engine = _engine(engine_name, tuple(size), checkpoint, networks, **options)
    inputs = rendered_inputs(tuple(size))
    steps: list[dict] = []
    used: list[str] = []
    runtimes: list[str] = []

    def once():
        result = engine(inputs)
        steps.append(result.timings)
        used.append(result.extras.get("precision", "fp32"))
        runtimes.append(result.extras.get("runtime", "torch"))
        return result

    with torch.no_grad():
        start = time.perf_counter()
        once()  # warm-up: compilation, auto's choice
        first = time.perf_counter() - start
        steps.clear()
        seconds = _median_seconds(once, runs, warm=False)
        image = once().image
        gflop = 0.0
        if runtimes[-1] == "torch":  # (onnxruntime's work is not visible to torch's counter)
            counter = FlopCounterMode(display=False)
            with counter:
                once()
            gflop = counter.get_total_flops() / 1e9
        exact = options == {} or (used[-1] == "fp32" and runtimes[-1] == "torch" and not compile)
        reference = image if exact else _engine(engine_name, tuple(size), checkpoint, networks)(inputs).image
    measured = steps[:runs]
    difference = float(np.abs(image.astype(int) - reference.astype(int)).max() / 255)
    similarity = float(ssim_rgb(imaging.image_to_tensor(image)[None] * 0.5 + 0.5,
                                imaging.image_to_tensor(reference)[None] * 0.5 + 0.5)[0])
    return {"engine": engine_name, "size": list(size), "precision": used[-1], "runtime": runtimes[-1],
            "compile": bool(compile), "seconds": seconds, "first_seconds": first,
            "seconds_by_step": {k: float(np.median([s[k] for s in measured])) for k in measured[0]},
            "gflop": gflop, "gflops_per_s": gflop / seconds if gflop else 0.0,
            "max_abs_diff_vs_fp32": difference, "ssim_vs_fp32": similarity,
            "weights": checkpoint or ("random" if engine_name != "warp" else "none"), "machine": about, **rates()}
