"""Benchmark: seconds per image of the `hrviton` engine at 256x192 and 512x384 on this machine's CPU.

Full-size networks (condition generator ngf 96, SPADE generator ngf 64; 6 up-samplings at 256x192, 7 at 512x384)
with random weights: the time does not depend on the weights' values, and the released weights cannot be
downloaded here. Inputs are a synthetic person with every modality. The median of ``--runs`` runs after one
warm-up run is reported, with the engine's own step timings.

Run: ``python benchmarks/hrviton_inference.py [--threads 2] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from fitroom.bench import rendered_inputs
    from fitroom.engines import create_engine
    from fitroom.models import create_model
    from fitroom.models.hrviton import choose_upsampling

    torch.manual_seed(0)
    condition = create_model("hrviton_condition")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}; random weights")
    print(f"{'size':>9s} {'up-samplings':>12s} {'s/image':>8s}   steps (s)")
    for size in ((256, 192), (512, 384)):
        depth = choose_upsampling(*size)
        generator = create_model("hrviton_generator", num_upsampling_layers=depth)
        engine = create_engine("hrviton", condition_generator=condition, generator=generator, size=size)
        inputs = rendered_inputs(size)
        engine(inputs)  # warm-up
        times, steps = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = engine(inputs)
            times.append(time.perf_counter() - start)
            steps.append(result.timings)
        median_steps = {k: float(np.median([s[k] for s in steps])) for k in steps[0]}
        print(f"{size[0]}x{size[1]:<5d} {depth:>12s} {np.median(times):8.2f}   "
              + ", ".join(f"{k} {v:.2f}" for k, v in median_steps.items()))


if __name__ == "__main__":
    main()
