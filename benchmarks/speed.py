"""Benchmark: how fast fitroom tries on, on this machine, every figure side by side in one process.

1. **HR-VITON's networks at ``--size``** (default 512x384), full-size networks with random weights (timing does
   not depend on the values), SPADE noise off, the same rendered inputs for every variant, median of ``--runs``
   after a warm-up, variants interleaved run by run so that the machine's drift hits them alike:
   ``before`` (the networks as trained: spectral norms recomputed, separate SPADE convolutions, the engine's
   path before the exact path existed), ``exact`` (the engine's default: :func:`~fitroom.models.hrviton.
   prepare_generator` and ``prepare_condition_generator``), ``compiled`` (exact + ``torch.compile`` of the image
   generator, weights frozen, as the engine's float32 compile), ``bf16`` (exact, its image generator under bf16
   autocast, as the engine's bf16), ``bf16 compiled`` (both networks compiled, as the engine's bf16 compile),
   ``onnxruntime`` (the exported graph of the prepared networks) and ``onnxruntime int8`` (its image generator's
   SPADE-norm convolutions quantized, calibrated on another rendered picture). Each with its ratio to ``before`` and its
   largest difference from ``before``'s output (``[-1, 1]``), beside the float32 noise floor (``before`` in
   float64 against float32).
2. **Fidelity on a trained checkpoint** (``--checkpoint``, e.g. one made by ``fitroom train condition`` and
   ``fitroom train generator``; ``--data`` its dataset): on ``--pairs`` held-out test pairs at ``--size``, each
   variant's picture against float32's (SSIM, largest difference; noise off; int8 calibrated on 2 training pairs),
   and the paired evaluation's SSIM against the photos for float32, bf16 and int8 (noise on, as the engine runs);
   ``--variants`` picks the variants.
3. **A catalogue**: one bundled person photo and 1 or 8 rendered product photos through
   :func:`fitroom.fitting.dress_catalogue` (photo checked once, garments segmented once), images per second for the
   warp engine and for hrviton (random full-size networks at ``--size``) in batches of 1 and of 8.
4. **The ``fitroom tryon`` command** with the warp engine on the bundled 1024x768 person photo: the whole
   process (start-up included) as a shopper's script runs it, and, in this process after a warm-up, the
   preprocessing plus engine alone.

The public reference networks are not timed here (their code is not a dependency and is not on this machine); the
issue that asked for this measured them at 1.3x the time of the engine's ``before`` path on a 2-core AVX-512
machine, which is how ``before`` relates to them.

Run: ``python benchmarks/speed.py [--size 512 384] [--threads 2] [--runs 3] [--checkpoint DIR --data DS]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _median(times: list[float]) -> float:
    return float(np.median(times))


def networks(args: argparse.Namespace) -> dict:
    import torch

    from fitroom.bench import rendered_inputs
    from fitroom.models import create_model
    from fitroom.models.hrviton import (
        HrvitonTryOn, choose_upsampling, prepare_condition_generator, prepare_generator,
    )
    from fitroom.bench import CALIBRATION_VARIANTS
    from fitroom.models.hrviton_onnx import OnnxTryOn, batched, export_onnx, feed, quantize_onnx

    size = tuple(args.size)
    torch.manual_seed(0)
    condition = create_model("hrviton_condition").eval()
    generator = create_model("hrviton_generator", num_upsampling_layers=choose_upsampling(*size)).eval()
    before = HrvitonTryOn(condition, generator).eval().set_noise(False)
    exact = HrvitonTryOn(prepare_condition_generator(condition), prepare_generator(generator)).eval().set_noise(False)
    inputs = rendered_inputs(size)
    values = batched(inputs.to_tensors(size))
    # int8 calibrated on other rendered pictures than the one timed (as `fitroom bench --precision int8`)
    calibration = [feed(rendered_inputs(size, variant).to_tensors(size)) for variant in CALIBRATION_VARIANTS]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        # the engine's export: the prepared networks (the SPADE convolutions fused, as int8 quantizes them)
        runner = OnnxTryOn(export_onnx(exact, size, Path(folder) / "hrviton.onnx"))
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        int8 = OnnxTryOn(quantize_onnx(Path(folder) / "hrviton.onnx", Path(folder) / "int8.onnx", calibration))
        quantize_seconds = time.perf_counter() - start
    # as the engine's compile option: the image generator compiled, its weights frozen; under bf16 the condition
    # generator too (in float32 its compiled warp was not exact enough)
    compiled_generator = torch.compile(exact.generator, options={"freezing": True})
    compiled = HrvitonTryOn(exact.condition_generator, compiled_generator).eval()
    compiled_both = HrvitonTryOn(torch.compile(exact.condition_generator, options={"freezing": True}),
                                 compiled_generator).eval()

    def in_bf16(module):
        """As the engine's bf16: the condition generator in float32, the image generator under bf16 autocast."""
        def run(garment, garment_mask, parse_agnostic, dense, agnostic, view, *category):
            conditions = module.conditions(garment, garment_mask, parse_agnostic, dense, view, *category)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                x = module.generator_input(agnostic, dense, conditions["warped_cloth"], view, *category)
                return {"image": module.generator(x, conditions["seg7"]).float()}
        return run

    variants = {"before": before, "exact": exact, "compiled": compiled, "bf16": in_bf16(exact),
                "bf16 compiled": in_bf16(compiled_both), "onnxruntime": runner, "onnxruntime int8": int8}
    first, outputs, times = {}, {}, {name: [] for name in variants}
    with torch.no_grad():
        for name, work in variants.items():
            start = time.perf_counter()
            outputs[name] = work(*values)["image"].float()
            first[name] = time.perf_counter() - start
        for _ in range(args.runs):
            for name, work in variants.items():
                start = time.perf_counter()
                work(*values)
                times[name].append(time.perf_counter() - start)
        floor = (HrvitonTryOn(copy.deepcopy(condition).double(), copy.deepcopy(generator).double()).eval()
                 .set_noise(False)(*(v.double() if v.is_floating_point() else v for v in values))["image"].float()
                 - outputs["before"]).abs().max().item()
    base = _median(times["before"])
    rows = {name: {"seconds": _median(times[name]), "ratio": _median(times[name]) / base,
                   "first_seconds": first[name],
                   "max_abs_diff_vs_before": float((outputs[name] - outputs["before"]).abs().max())}
            for name in variants}
    print(f"\n1. HR-VITON networks at {size[0]}x{size[1]}, random full-size weights, {torch.get_num_threads()} "
          f"threads, median of {args.runs}; float32 noise floor (float64 vs float32 of 'before'): {floor:.2e}; "
          f"ONNX export took {export_seconds:.1f} s, int8 quantization {quantize_seconds:.1f} s")
    print(f"   {'variant':16} {'s/image':>8} {'ratio':>6} {'first call s':>12} {'max |diff| vs before':>21}")
    for name, row in rows.items():
        print(f"   {name:16} {row['seconds']:8.3f} {row['ratio']:6.2f} {row['first_seconds']:12.2f} "
              f"{row['max_abs_diff_vs_before']:21.2e}")
    return {"size": list(size), "float32_noise_floor": floor, "onnx_export_seconds": export_seconds,
            "int8_quantize_seconds": quantize_seconds, "variants": rows}


def fidelity(args: argparse.Namespace) -> dict:
    """Each precision / runtime against float32 on a trained checkpoint's held-out pairs, and eval SSIM."""
    import torch
    from kornia.metrics import ssim

    from fitroom import imaging
    from fitroom.data.layout import VitonLayout
    from fitroom.engines import create_engine
    from fitroom.evaluation import EvalConfig, evaluate
    from fitroom.models.hrviton import HrvitonTryOn, prepare_condition_generator, prepare_generator
    from fitroom.models.hrviton_onnx import batched
    from fitroom.models.io import load_parts

    size = tuple(args.size)
    layout = VitonLayout(args.data, "test")
    pairs = layout.pairs()[:args.pairs]
    # int8 measures its activations' ranges on training pairs, never on the held-out ones it is judged on
    train = VitonLayout(args.data, "train")
    calibration = [train.read(person, person) for person, _ in train.pairs()[:2]]  # (~3 GB each at 512x384)
    variants = {"fp32": {}, "bf16": {"precision": "bf16"}, "onnxruntime": {"runtime": "onnxruntime"},
                "compiled": {"compile": True}, "bf16 compiled": {"precision": "bf16", "compile": True},
                "int8": {"precision": "int8", "calibration": calibration}}
    variants = {name: options for name, options in variants.items()
                if name == "fp32" or name in args.variants.split(",")}
    engines = {name: create_engine("hrviton", checkpoint=args.checkpoint, size=size, **options)
               for name, options in variants.items()}
    for engine in engines.values():
        for each in engine.per_view.values() or [engine]:
            each.model.set_noise(False)
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in variants if name != "fp32"}
    # the exact path against the networks as trained (the engine before it), on the same tensors
    parts = load_parts(args.checkpoint, ("condition_generator", "generator"))
    before = HrvitonTryOn(parts["condition_generator"].eval(), parts["generator"].eval()).eval().set_noise(False)
    exact = HrvitonTryOn(prepare_condition_generator(before.condition_generator),
                         prepare_generator(before.generator)).eval().set_noise(False)
    compiled = HrvitonTryOn(exact.condition_generator,  # (as the engine's float32 compile)
                            torch.compile(exact.generator, options={"freezing": True})).eval()
    exact_difference = compiled_difference = 0.0
    for person, _ in pairs:
        inputs = layout.read(person, person)
        values = batched(inputs.to_tensors(size))
        with torch.no_grad():
            exact_image = exact(*values)["image"]
            exact_difference = max(exact_difference, float((exact_image - before(*values)["image"]).abs().max()))
            compiled_difference = max(compiled_difference, float((compiled(*values)["image"] - exact_image)
                                                                 .abs().max()))
        pictures = {name: imaging.image_to_tensor(engine(inputs).image)[None] * 0.5 + 0.5
                    for name, engine in engines.items()}
        for name in scores:
            value = float(ssim(pictures[name], pictures["fp32"], 11).mean())
            scores[name].append((value, float((pictures[name] - pictures["fp32"]).abs().max())))
    result = {name: {"ssim_min": min(s for s, _ in rows), "ssim_mean": float(np.mean([s for s, _ in rows])),
                     "max_abs_diff": max(d for _, d in rows)} for name, rows in scores.items()}
    evals = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, options in {"fp32": {}, "bf16": {"precision": "bf16"},
                              "bf16 compiled": {"precision": "bf16", "compile": True},
                              "int8": {"precision": "int8"}}.items():
            if name != "fp32" and name not in variants:
                continue
            config = EvalConfig(engine="hrviton", data=args.data, out=str(Path(folder) / name), pairs="paired",
                                checkpoint=args.checkpoint, limit=args.pairs, device="cpu",
                                options={"size": size, **options})
            # int8 calibrated on the training pairs, as above, not on the first held-out pair it is judged on
            engine = create_engine("hrviton", checkpoint=args.checkpoint, size=size, **options,
                                   **({"calibration": calibration} if name == "int8" else {}))
            torch.manual_seed(0)
            evals[name] = evaluate(config, engine=engine, progress=False)["summary"]["all"]["ssim"]
    print(f"\n2. fidelity on {args.checkpoint} at {size[0]}x{size[1]}, {len(pairs)} held-out pairs (noise off)")
    print(f"   exact path against the networks as trained: max |diff| {exact_difference:.2e} (output in [-1, 1])")
    print(f"   compiled (frozen weights) against the exact path: max |diff| {compiled_difference:.2e}")
    for name, row in result.items():
        print(f"   {name:12} SSIM vs fp32 min {row['ssim_min']:.4f} mean {row['ssim_mean']:.4f}, max |diff| "
              f"{row['max_abs_diff']:.3f} (picture in [0, 1])")
    print("   paired eval SSIM against the photos: " + ", ".join(
        f"{name} {value:.4f}" + ("" if name == "fp32" else f" ({value - evals['fp32']:+.4f})")
        for name, value in evals.items()))
    return {"pairs": len(pairs), "exact_vs_before_max_abs_diff": exact_difference,
            "compiled_vs_exact_max_abs_diff": compiled_difference, "against_fp32": result, "eval_ssim": evals}


def catalogue(args: argparse.Namespace) -> dict:
    import torch

    from fitroom import fitting, imaging
    from fitroom.data.synthetic import render_garment, sample_spec
    from fitroom.demo import sample_path
    from fitroom.engines import create_engine
    from fitroom.models import create_model
    from fitroom.models.hrviton import choose_upsampling
    from fitroom.preprocess.pipeline import Preprocessor

    size = tuple(args.size)
    person = imaging.load_image(sample_path("person_front.jpg"))
    garments = [(f"g{seed}", render_garment(sample_spec(seed, 3).garment, "front", (1024, 768))[0])
                for seed in range(8)]
    torch.manual_seed(0)
    hrviton = create_engine("hrviton", condition_generator=create_model("hrviton_condition").eval(),
                            generator=create_model("hrviton_generator",
                                                   num_upsampling_layers=choose_upsampling(*size)).eval(), size=size)
    rows = []
    with Preprocessor() as preprocess:
        fitting.check(preprocess, person, "upper", "front")  # warm-up: the models' first calls
        for engine_name, engine, batches in (("warp", create_engine("warp"), (1,)), ("hrviton", hrviton, (1, 8))):
            for count in (1, 8):
                for batch in batches:
                    start = time.perf_counter()
                    items = list(fitting.dress_catalogue(engine, preprocess, person, garments[:count],
                                                         category="upper", view="front", batch_size=batch))
                    seconds = time.perf_counter() - start
                    assert all(item.result is not None for item in items), [item.error for item in items]
                    rows.append({"engine": engine_name, "garments": count, "batch": batch, "seconds": seconds,
                                 "images_per_s": count / seconds})
    print(f"\n3. a catalogue on one 1024x768 photo (checked once; hrviton at {size[0]}x{size[1]}, random weights)")
    for row in rows:
        print(f"   {row['engine']:8} {row['garments']} garment(s), batch {row['batch']}: {row['seconds']:.2f} s, "
              f"{row['images_per_s']:.2f} images/s")
    return {"rows": rows}


def command(args: argparse.Namespace) -> dict:
    from fitroom import fitting, imaging
    from fitroom.demo import sample_path
    from fitroom.engines import create_engine
    from fitroom.preprocess.pipeline import Preprocessor

    person, garment = sample_path("person_front.jpg"), sample_path("garment_tee_front.jpg")
    walls = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "fitroom.cli", "-q", "tryon", "--person", str(person),
                                   "--garment", str(garment), "--out", str(Path(folder) / "out.png")],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            walls.append(time.perf_counter() - start)
            if done.returncode:
                raise RuntimeError(done.stderr)
    photo, product = imaging.load_image(person), imaging.load_image(garment)
    inside = []
    with Preprocessor() as preprocess:
        engine = create_engine("warp")
        for k in range(args.runs + 1):
            start = time.perf_counter()
            prepared = fitting.check_and_prepare(preprocess, photo, product, view="front", engine=engine)
            fitting.try_on(engine, prepared.inputs)
            if k:  # the first is the warm-up
                inside.append(time.perf_counter() - start)
    print(f"\n4. fitroom tryon, warp engine, {photo.shape[1]}x{photo.shape[0]} photo: whole command "
          f"{_median(walls):.2f} s (median of {args.runs}, start-up included); preprocessing + engine in a warm "
          f"process {_median(inside):.2f} s")
    return {"command_seconds": _median(walls), "preprocess_and_engine_seconds": _median(inside)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--checkpoint", help="a trained hrviton checkpoint for the fidelity part")
    parser.add_argument("--data", help="its dataset (VITON-HD layout with a test split)")
    parser.add_argument("--pairs", type=int, default=16, help="held-out pairs for the fidelity part")
    parser.add_argument("--variants", default="bf16,onnxruntime,compiled,bf16 compiled,int8",
                        help="the fidelity part's variants besides fp32 (comma-separated)")
    parser.add_argument("--parts", default="networks,fidelity,catalogue,command")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    from fitroom.bench import machine, rates

    torch.set_num_threads(args.threads)
    about = {**machine(), **rates()}
    print(f"machine: {about['capability']} ({', '.join(about['features'])}), native bf16 {about['native_bf16']}, "
          f"{args.threads} threads; matmul {about['matmul_gflops']:.0f} GFLOP/s, 3x3 conv "
          f"{about['conv3x3_gflops']:.0f} GFLOP/s; torch {torch.__version__}")
    parts = args.parts.split(",")
    figures: dict = {"machine": about}
    if "networks" in parts:
        figures["networks"] = networks(args)
    if "fidelity" in parts and args.checkpoint:
        figures["fidelity"] = fidelity(args)
    if "catalogue" in parts:
        figures["catalogue"] = catalogue(args)
    if "command" in parts:
        figures["command"] = command(args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
