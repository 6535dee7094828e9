"""Benchmark: peak memory and time of one optimizer step at an effective batch of 16, HR-VITON condition stage.

Batch 16 directly, batch 2 x 8 micro-batches of gradient accumulation, and 2 x 8 with bf16 autocast, each in its
own process (peak resident memory above the process's memory before the step), through the real trainer on a
synthetic dataset at 256x192. The condition generator is built at width ``--ngf`` (the released one is 96) so a
CPU run takes seconds; the discriminator is the reference one. On this CPU bf16 is emulated, so its time is no
guide to a GPU; its memory is.

Run: ``python benchmarks/train_memory.py [--ngf 32] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = (("batch 16", 16, 1, "no"), ("batch 2 x 8 accumulation", 2, 8, "no"),
            ("batch 2 x 8 accumulation, bf16", 2, 8, "bf16"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(data: str, out: str, batch: int, accum: int, precision: str, ngf: int) -> None:
    import torch

    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    config = load_config(None, [f"data={data}", f"out={out}", f"batch_size={batch}", f"grad_accum={accum}",
                                f"mixed_precision={precision}", "steps=1", "loss_weights.vgg=0",
                                f"model_options={{ngf: {ngf}}}", "checkpoint_every=1000000", "log_every=1000000",
                                "validate_every=1000000"])
    trainer = Trainer(config, progress=False)
    before = _rss_mb()
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_above_start_mb": peak - before, "seconds": seconds, "torch_threads":
                      torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        data, out, batch, accum, precision, ngf = args.child
        child(data, out, int(batch), int(accum), precision, int(ngf))
        return
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "data"
        synthesize(SynthConfig(out=data, count=12, size=(256, 192), seed=1, workers=1), progress=False)
        results = []
        for name, batch, accum, precision in SETTINGS:
            command = [sys.executable, __file__, "--child", str(data), str(Path(directory) / name.replace(" ", "_")),
                       str(batch), str(accum), precision, str(args.ngf)]
            output = subprocess.run(command, capture_output=True, text=True, env=environment, check=True).stdout
            results.append((name, json.loads(output.strip().splitlines()[-1])))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; condition generator "
          f"ngf={args.ngf} at 256x192, reference discriminator; effective batch 16, one optimizer step")
    base_memory, base_time = results[0][1]["peak_above_start_mb"], results[0][1]["seconds"]
    print(f"{'setting':34s} {'peak MB':>9s} {'x batch 16':>10s} {'seconds':>8s} {'x batch 16':>10s}")
    for name, r in results:
        print(f"{name:34s} {r['peak_above_start_mb']:9.0f} {r['peak_above_start_mb'] / base_memory:10.2f} "
              f"{r['seconds']:8.2f} {r['seconds'] / base_time:10.2f}")


if __name__ == "__main__":
    main()
