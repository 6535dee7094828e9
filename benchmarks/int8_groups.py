"""Benchmark: which of the image generator's convolutions can be int8, measured by simulated quantization.

On a trained hrviton checkpoint (``--checkpoint``, e.g. the speed checkpoint of ``benchmarks/speed.py``; ``--data``
its dataset), the prepared image generator runs with a group of its convolutions quantized as ONNX Runtime's QDQ
int8 does it, simulated in torch: int8 weights per output channel (symmetric), uint8 inputs and outputs with
ranges measured on 2 training pairs (by default the 99.9th percentile of a 2048-bin histogram over
``[-max|x|, max|x|]``, as onnxruntime's percentile calibrator; ``minmax``: the extremes). Each group's pictures are
compared with float32's on ``--pairs`` held-out pairs (SSIM min / mean, largest difference; noise off).

Groups: everything but the last convolution, weights only, inputs only, outputs only, the SPADE norms' gamma/beta
(``modulation``) and shared features (``shared``), the residual blocks' own convolutions (``conv_0``, ``conv_1``,
``conv_s``, together and one kind at a time), the input injections, each block alone, and the choice
``--precision int8`` makes (:data:`fitroom.models.hrviton_onnx.INT8_ROLES`). ``benchmarks/speed.py`` measures that
choice with ONNX Runtime itself; this script says why it is that choice (the README has the figures).

Run: ``python benchmarks/int8_groups.py --checkpoint runs/speed/generator/hrviton --data runs/speed/data
[--pairs 8] [--size 512 384]`` (about 25 s a group at 512x384 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def _percentile_range(values: torch.Tensor, percentile: float) -> tuple[float, float]:
    """onnxruntime's asymmetric percentile range of ``values``: 2048 bins over ``[-t, t]`` (t = max |x|), cut
    ``(100 - percentile) / 2`` % off each side, clipped to the extremes."""
    low, high = float(values.min()), float(values.max())
    top = max(abs(low), abs(high)) or 1.0
    cdf = torch.cumsum(torch.histc(values, 2048, -top, top), 0)
    cdf = cdf / cdf[-1]
    edges = torch.linspace(-top, top, 2049)
    cut = (100 - percentile) / 200
    left = int(torch.searchsorted(cdf, torch.tensor(cut)))
    right = int(torch.searchsorted(cdf, torch.tensor(1 - cut)))
    return max(low, float(edges[left])), min(high, float(edges[right]))


def _fake_uint8(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    low, high = min(low, 0.0), max(high, 0.0)  # (onnxruntime's ranges always hold zero)
    scale = (high - low) / 255 or 1e-8
    zero = round(-low / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def _fake_int8_weight(weight: torch.Tensor) -> torch.Tensor:
    scale = weight.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return torch.clamp(torch.round(weight / scale), -127, 127) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 384))
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    from kornia.metrics import ssim

    from fitroom.data.layout import VitonLayout
    from fitroom.models.hrviton import HrvitonTryOn, prepare_condition_generator, prepare_generator
    from fitroom.models.hrviton_onnx import INT8_ROLES, batched
    from fitroom.models.io import load_parts

    torch.set_num_threads(args.threads)
    size = tuple(args.size)
    parts = load_parts(args.checkpoint, ("condition_generator", "generator"))
    model = HrvitonTryOn(prepare_condition_generator(parts["condition_generator"].eval()),
                         prepare_generator(parts["generator"].eval())).eval().set_noise(False)
    convolutions = {name: module for name, module in model.generator.named_modules()
                    if isinstance(module, torch.nn.Conv2d) and name != "conv_img"}

    def values(layout: VitonLayout, person: str) -> tuple:
        return batched(layout.read(person, person).to_tensors(size))

    train, test = VitonLayout(args.data, "train"), VitonLayout(args.data, "test")
    held_out = [values(test, person) for person, _ in test.pairs()[:args.pairs]]
    seen: dict[tuple[str, str], list[torch.Tensor]] = {}  # (convolution, "in" | "out") -> its calibration values
    hooks = []
    for name, module in convolutions.items():
        hooks.append(module.register_forward_pre_hook(
            lambda m, a, name=name: seen.setdefault((name, "in"), []).append(a[0].detach().flatten())))
        hooks.append(module.register_forward_hook(
            lambda m, a, out, name=name: seen.setdefault((name, "out"), []).append(out.detach().flatten())))
    with torch.no_grad():
        for person, _ in train.pairs()[:2]:
            model(*values(train, person))
        for hook in hooks:  # (the ranges are the training pairs' alone, never the held-out pictures')
            hook.remove()
        reference = [model(*inputs)["image"] * 0.5 + 0.5 for inputs in held_out]
    measured = {key: torch.cat(parts) for key, parts in seen.items()}
    ranges = {"p99.9": {key: _percentile_range(v, 99.9) for key, v in measured.items()},
              "minmax": {key: (float(v.min()), float(v.max())) for key, v in measured.items()}}
    used = {name for name, _ in measured}  # (a never-read injection has no calibration values)

    def run(chosen, method: str = "p99.9", weights: bool = True, inputs: bool = True, outputs: bool = True) -> dict:
        saved, hooks = {}, []
        for name, module in convolutions.items():
            if name not in used or not chosen(name):
                continue
            if weights:
                saved[name] = module.weight.data
                module.weight.data = _fake_int8_weight(module.weight.data)
            if inputs:
                low, high = ranges[method][(name, "in")]
                hooks.append(module.register_forward_pre_hook(
                    lambda m, a, low=low, high=high: (_fake_uint8(a[0], low, high),)))
            if outputs:
                low, high = ranges[method][(name, "out")]
                hooks.append(module.register_forward_hook(
                    lambda m, a, out, low=low, high=high: _fake_uint8(out, low, high)))
        try:
            scores, differences = [], []
            with torch.no_grad():
                for inputs_, picture in zip(held_out, reference):
                    image = model(*inputs_)["image"] * 0.5 + 0.5
                    scores.append(float(ssim(image, picture, 11).mean()))
                    differences.append(float((image - picture).abs().max()))
        finally:
            for hook in hooks:
                hook.remove()
            for name, weight in saved.items():
                convolutions[name].weight.data = weight
        return {"ssim_min": min(scores), "ssim_mean": float(np.mean(scores)), "max_abs_diff": max(differences)}

    def role(name: str) -> str:
        return name.split(".")[1] if "." in name else "injection"

    residual = ("conv_0", "conv_1", "conv_s")
    groups = {
        "all but the last": {"chosen": lambda n: True},
        "all, min-max ranges": {"chosen": lambda n: True, "method": "minmax"},
        "all, weights only": {"chosen": lambda n: True, "inputs": False, "outputs": False},
        "all, inputs only": {"chosen": lambda n: True, "weights": False, "outputs": False},
        "all, outputs only": {"chosen": lambda n: True, "weights": False, "inputs": False},
        "SPADE gamma/beta (modulation)": {"chosen": lambda n: role(n) == "modulation"},
        "SPADE shared features": {"chosen": lambda n: role(n) == "shared"},
        "residual conv_0/conv_1/conv_s": {"chosen": lambda n: role(n) in residual},
        **{f"residual {kind} only": {"chosen": lambda n, kind=kind: role(n) == kind} for kind in residual},
        "input injections and conv_0": {"chosen": lambda n: "." not in n},
        **{f"block {block}": {"chosen": lambda n, block=block: n.startswith(block + ".")}
           for block in dict.fromkeys(n.split(".")[0] for n in convolutions if "." in n)},
        "--precision int8's choice (INT8_ROLES)": {"chosen": lambda n: role(n) in INT8_ROLES},
    }
    print(f"simulated int8 on {args.checkpoint} at {size[0]}x{size[1]}, {len(held_out)} held-out pairs, ranges from "
          f"2 training pairs; SSIM against float32 (picture in [0, 1])")
    figures = {}
    for label, options in groups.items():
        figures[label] = row = run(**options)
        print(f"  {label:42} min {row['ssim_min']:.4f} mean {row['ssim_mean']:.4f} "
              f"max |diff| {row['max_abs_diff']:.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
