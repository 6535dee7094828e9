"""Benchmark: the condition stage on 1 and 2 processes of this CPU (torchrun, gloo), side by side.

Each setting is run twice, for 2 and for ``--steps`` optimizer steps, and the time per step is the difference of
the two wall times over the difference of steps (process start-up, data loading and the checkpoints cancel out).
Both settings see the same global batch (1 process x batch 2B, 2 processes x batch B) and report the loss of
their first step (the processes' mean).

Run: ``python benchmarks/ddp_cpu.py [--steps 12] [--batch 2] [--size 128x96]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=2, help="per-process batch with 2 processes")
    parser.add_argument("--size", default="128x96")
    args = parser.parse_args()
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    height, width = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        synthesize(SynthConfig(out=data, count=16, size=(256, 192), seed=2, workers=1), progress=False)
        rows = []
        for processes in (1, 2):
            batch = args.batch * (2 // processes)
            times = {}
            for steps in (2, args.steps):
                out = Path(folder) / f"run{processes}_{steps}"
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={processes}", "-m", "fitroom.cli", "-q", "train", "condition",
                           "--set", f"data={data}", f"out={out}", "model=test_hrviton_condition",
                           f"size=[{height},{width}]", "loss_weights.vgg=0", f"batch_size={batch}",
                           f"steps={steps}", f"checkpoint_every={steps}", "validate_every=1000",
                           "mixed_precision=no", "log_every=1"]
                start = time.perf_counter()
                subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               capture_output=True)
                times[steps] = time.perf_counter() - start
                first = json.loads((out / "log.jsonl").read_text().splitlines()[0])
            per_step = (times[args.steps] - times[2]) / (args.steps - 2)
            rows.append((processes, batch, per_step, first["generator"]))
    print(f"condition stage, test model, {height}x{width}, global batch {2 * args.batch}, {os.cpu_count()} cores, "
          f"1 thread per process")
    print(f"{'processes':>9s} {'batch':>5s} {'s/step':>7s} {'vs 1':>5s} {'loss at step 1':>15s}")
    for processes, batch, per_step, loss in rows:
        print(f"{processes:9d} {batch:5d} {per_step:7.3f} {per_step / rows[0][2]:5.2f} {loss:15.4f}")


if __name__ == "__main__":
    main()
