"""Benchmark: the `hrviton` engine's networks in float32, channels-last float32 and bf16 autocast, side by side on
this machine, with each variant's difference from the float32 output.

Full-size networks (condition generator ngf 96, SPADE generator ngf 64) with random weights (timing does not depend
on the weights' values; fidelity on random weights says little about a trained model's, so only the difference
is printed, not a verdict), inputs from a rendered person. Median of ``--runs`` after one warm-up, every variant in
the same process, one after another, so the ratios are comparable on a noisy machine. The ISA torch reports and
whether bf16 is native are printed first.

Run: ``python benchmarks/hrviton_precision.py [--size 512 384] [--threads 2] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from fitroom import imaging
    from fitroom.bench import rendered_inputs
    from fitroom.devices import native_bf16
    from fitroom.engines import create_engine
    from fitroom.metrics.image import ssim_rgb
    from fitroom.models import create_model
    from fitroom.models.hrviton import choose_upsampling

    size = tuple(args.size)
    torch.manual_seed(0)
    condition = create_model("hrviton_condition").eval()
    generator = create_model("hrviton_generator", num_upsampling_layers=choose_upsampling(*size)).eval()
    engine = create_engine("hrviton", condition_generator=condition, generator=generator, size=size)
    inputs = rendered_inputs(size)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16 "
          f"{native_bf16('cpu')}, {args.threads} threads, {size[0]}x{size[1]}, random weights")

    def run(context) -> tuple[float, np.ndarray, dict]:
        with context():
            engine(inputs)  # warm-up
            times, steps, image = [], [], None
            for _ in range(args.runs):
                start = time.perf_counter()
                result = engine(inputs)
                times.append(time.perf_counter() - start)
                steps.append(result.timings)
                image = result.image
        return float(np.median(times)), image, {k: float(np.median([s[k] for s in steps])) for k in steps[0]}

    def channels_last():
        for network in (condition, generator):
            network.to(memory_format=torch.channels_last)
        try:
            yield
        finally:
            for network in (condition, generator):
                network.to(memory_format=torch.contiguous_format)

    variants = {
        "fp32": contextlib.nullcontext,
        "fp32 channels-last": contextlib.contextmanager(channels_last),
        "bf16 autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    }
    reference = None
    print(f"{'variant':>20s} {'s/image':>8s} {'vs fp32':>8s} {'max |diff|':>10s} {'SSIM vs fp32':>12s}   steps (s)")
    for name, context in variants.items():
        seconds, image, steps = run(context)
        if reference is None:
            reference = (seconds, image)
        diff = np.abs(image.astype(int) - reference[1].astype(int)).max() / 255
        ssim = float(ssim_rgb(imaging.image_to_tensor(image)[None] * 0.5 + 0.5,
                              imaging.image_to_tensor(reference[1])[None] * 0.5 + 0.5)[0])
        print(f"{name:>20s} {seconds:8.2f} {seconds / reference[0]:8.2f} {diff:10.4f} {ssim:12.4f}   "
              + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))


if __name__ == "__main__":
    main()
