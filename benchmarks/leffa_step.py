"""Benchmark: seconds per denoising step and peak memory of Leffa's full-size SD-1.5 try-on layout on this CPU
(random weights; both UNets, classifier-free guidance batch of 2, the reference UNet run at every step).

Prints one row per size: seconds for the reference UNet, the generative UNet and the whole step (median of
``--runs``), and the process's peak resident memory after the step. Sizes are the person image's; latents are 1/8.

Run: ``python benchmarks/leffa_step.py [--sizes 512x384,1024x768] [--runs 1] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512x384,1024x768")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from fitroom.models import create_model
    from fitroom.models.leffa import guide, unet_input

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    model = create_model("leffa_sd15").eval()
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores, torch threads {args.threads}; random weights; "
          f"built both UNets ({sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters) in "
          f"{time.perf_counter() - start:.1f} s")
    print(f"{'size':>9s} {'latent':>7s} {'reference s':>12s} {'generative s':>13s} {'step s':>7s} {'peak RSS GB':>12s}")
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.split("x"))
        h, w = height // 8, width // 8
        reference, generative, total = [], [], []
        with torch.no_grad():
            for _ in range(args.runs):
                latent, garment = torch.randn(1, 4, h, w), torch.randn(1, 4, h, w)
                mask, masked, dense = torch.rand(1, 1, h, w), torch.randn(1, 4, h, w), torch.randn(1, 3, h, w)
                clock = time.perf_counter()
                features = model.reference_features(torch.cat([torch.zeros_like(garment), garment]), 500)
                reference.append(time.perf_counter() - clock)
                clock = time.perf_counter()
                x = unet_input(torch.cat([latent] * 2), *(torch.cat([v] * 2) for v in (mask, masked, dense)))
                guide(model(x, 500, features), 2.5)
                generative.append(time.perf_counter() - clock)
                total.append(reference[-1] + generative[-1])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{size:>9s} {h:>3d}x{w:<3d} {statistics.median(reference):12.1f} {statistics.median(generative):13.1f} "
              f"{statistics.median(total):7.1f} {peak:12.1f}")


if __name__ == "__main__":
    main()
