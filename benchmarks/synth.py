"""Benchmark: synthetic samples per second (`fitroom synth`), at 1024x768 and 256x192, with 1 and 2 workers.

A sample is one person in one view with every modality written to disk (person, garment, mask, parse, agnostic
parse, keypoints, skeleton drawing, dense render, agnostic person). The test split is turned off so that no
unpaired ground truth is rendered. Run: ``python benchmarks/synth.py [--identities-1024 N --identities-256 N]``.
Each process renders with one OpenMP/OpenCV thread; the workers are the parallelism.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from fitroom.data.synthetic.writer import SynthConfig, synthesize  # noqa: E402


def measure(size: tuple[int, int], identities: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        config = SynthConfig(out=Path(directory), count=identities, size=size, workers=workers, test_fraction=0.0,
                             seed=123)
        start = time.perf_counter()
        report = synthesize(config, progress=False)
        seconds = time.perf_counter() - start
    return (report.samples["train"] + report.samples["test"]) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--identities-1024", type=int, default=6)
    parser.add_argument("--identities-256", type=int, default=24)
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; 1 thread per process")
    print(f"{'size':>10} {'workers':>8} {'samples/s':>10} {'s/sample':>9} {'speed-up':>9}")
    for size, identities in (((1024, 768), args.identities_1024), ((256, 192), args.identities_256)):
        base = None
        for workers in (1, 2):
            rate = measure(size, identities, workers)
            base = base or rate
            print(f"{size[0]}x{size[1]:<5} {workers:>8} {rate:>10.2f} {1 / rate:>9.2f} {rate / base:>8.2f}x")


if __name__ == "__main__":
    main()
