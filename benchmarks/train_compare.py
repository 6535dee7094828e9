"""Benchmark: one weight-shared HR-VITON for front and back vs two per-view models vs the ``warp`` engine, trained
on the CPU on synthetic front/back data at 256x192.

Every model goes through both stages of the real trainer (condition generator, then image generator with it
frozen) with the same batch size, steps and settings:

* ``shared``: one model on front and back samples, the view as an extra input plane (``view_input: true``);
* ``front`` and ``back``: a model per view, each trained only on its view's samples (``view_input: false``).

So the per-view pair costs twice the optimizer steps of the shared model; their validation curves are logged
every ``--validate-every`` steps, so the figure at half the steps (equal total compute) is printed too.

The widths are small (condition generator ``--ngf-condition``, image generator ``--ngf-generator`` with a
``--spade-hidden`` SPADE convolution) so the run takes minutes. The VGG19 weights are not on this machine, so the
perceptual losses are replaced by L1 terms (``l1_cloth`` 10 in the condition stage, ``l1`` 10 in the image stage);
with ``--vgg`` the reference losses are used instead.

Afterwards every model runs through the ``hrviton`` engine on the whole test split (paired: the person's own
garment; unpaired: another identity's garment, scored against the renderer's ground truth), and the ``warp``
engine on the same inputs. SSIM: RGB, 11x11 Gaussian window, images in [0, 1] (kornia).

Run: ``python benchmarks/train_compare.py [--identities 64] [--condition-steps 200] [--generator-steps 200]``;
the figure of the curves goes to ``--figure`` (default docs/train_compare.png), the numbers to
``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

ARMS = {"shared": (["front", "back"], True), "front": (["front"], False), "back": (["back"], False)}


def train(args: argparse.Namespace, data: Path, arm: str) -> dict:
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    views, view_input = ARMS[arm]
    common = [f"data={data}", f"views={json.dumps(views)}", f"view_input={str(view_input).lower()}",
              f"batch_size={args.batch}", f"validate_every={args.validate_every}",
              f"validation_samples={args.validation_samples}", "log_every=5", f"seed={args.seed}",
              f"checkpoint_every={max(args.condition_steps, args.generator_steps)}"]
    out = args.out / arm
    timings = {}
    condition = load_config(None, common + [
        f"out={out / 'condition'}", f"steps={args.condition_steps}",
        f"model_options={{ngf: {args.ngf_condition}}}"] + ([] if args.vgg else ["loss_weights.vgg=0",
                                                                                "loss_weights.l1_cloth=10"]))
    trainer = Trainer(condition, progress=True)
    start = time.perf_counter()
    trainer.run()
    timings["condition_s"] = time.perf_counter() - start
    condition_history = trainer.history()
    generator = load_config(None, common + [
        "stage=generator", f"condition={out / 'condition'}", f"out={out / 'generator'}",
        f"steps={args.generator_steps}", f"lr_decay_steps={args.generator_steps // 2}",
        f"model_options={{ngf: {args.ngf_generator}, spade_hidden: {args.spade_hidden}}}"]
        + ([] if args.vgg else ["loss_weights.vgg=0", "loss_weights.l1=10"]))
    trainer = Trainer(generator, progress=True)
    start = time.perf_counter()
    trainer.run()
    timings["generator_s"] = time.perf_counter() - start
    return {"condition": condition_history, "generator": trainer.history(), **timings}


def evaluate(args: argparse.Namespace, data: Path) -> dict:
    """SSIM per engine, pairing and view on the whole test split."""
    import numpy as np
    import torch
    from kornia.metrics import ssim

    from fitroom import imaging
    from fitroom.data.layout import VitonLayout
    from fitroom.engines import create_engine
    from fitroom.engines.hrviton import HrvitonEngine

    def score(a: np.ndarray, b: np.ndarray) -> float:
        ta = imaging.image_to_tensor(a)[None] * 0.5 + 0.5
        tb = imaging.image_to_tensor(imaging.resize(b, a.shape[:2], "image"))[None] * 0.5 + 0.5
        return float(ssim(ta, tb, 11).mean())

    layout = VitonLayout(data, "test")
    engines = {arm: HrvitonEngine(args.out / arm / "generator" / "hrviton", size=(256, 192)) for arm in ARMS}
    warp = create_engine("warp")
    scores: dict[str, list[float]] = defaultdict(list)
    for person, partner in layout.pairs():
        view = layout.view(person).value
        for pairing, cloth in (("paired", person), ("unpaired", partner)):
            truth = layout.read(person).person if pairing == "paired" else layout.unpaired_ground_truth(person, cloth)
            if truth is None:
                continue
            inputs = layout.read(person, cloth)
            results = {"shared": engines["shared"](inputs).image, "per-view": engines[view](inputs).image,
                       "warp": warp(inputs).image}
            if pairing == "unpaired":
                results["input unchanged"] = inputs.person
            for name, image in results.items():
                value = score(image, truth)
                scores[f"{name}|{pairing}|{view}"].append(value)
                scores[f"{name}|{pairing}|all"].append(value)
    torch.set_grad_enabled(True)
    return {key: (float(np.mean(values)), len(values)) for key, values in scores.items()}


def at_step(history: list[dict], step: int, key: str) -> float | None:
    values = [r[key] for r in history if key in r and r["step"] <= step]
    return values[-1] if values else None


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    panels = (("condition", "generator", "condition stage: generator loss"),
              ("condition", "validation_ssim", "condition stage: warped-cloth SSIM (held out)"),
              ("generator", "generator", "image stage: generator loss"),
              ("generator", "validation_ssim", "image stage: try-on SSIM (held out)"))
    for axis, (stage, key, title) in zip(axes, panels):
        for arm in ARMS:
            points = [(r["step"], r[key]) for r in results[arm][stage] if key in r]
            if points:
                axis.plot(*zip(*points), label=arm)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("optimizer step")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=64, help="synthetic people, each seen front and back")
    parser.add_argument("--condition-steps", type=int, default=200)
    parser.add_argument("--generator-steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--validate-every", type=int, default=25)
    parser.add_argument("--validation-samples", type=int, default=16)
    parser.add_argument("--ngf-condition", type=int, default=16)
    parser.add_argument("--ngf-generator", type=int, default=8)
    parser.add_argument("--spade-hidden", type=int, default=32)
    parser.add_argument("--vgg", action="store_true", help="the reference VGG losses (needs vgg19-dcbb9e9d.pth)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/train_compare"))
    parser.add_argument("--figure", type=Path, default=Path("docs/train_compare.png"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    data = args.out / "data"
    if not (data / "test_pairs.txt").is_file():
        synthesize(SynthConfig(out=data, count=args.identities, size=(256, 192), seed=11, workers=args.threads))
    results = {arm: train(args, data, arm) for arm in ARMS}
    start = time.perf_counter()
    scores = evaluate(args, data)
    evaluation_s = time.perf_counter() - start
    (args.out / "results.json").write_text(json.dumps({"training": results, "test_ssim": scores,
                                                       "settings": {k: str(v) for k, v in vars(args).items()}},
                                                      indent=1))
    plot(results, args.figure)

    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads; {args.identities} identities "
          f"x front/back at 256x192; batch {args.batch}; condition {args.condition_steps} + image "
          f"{args.generator_steps} steps per model; losses: {'reference (VGG)' if args.vgg else 'VGG -> L1'}")
    print("\n## training (seconds; validation SSIM on held-out samples of the model's own views)")
    print(f"{'model':8s} {'cond s':>7s} {'image s':>8s} {'cond SSIM':>10s} {'cond SSIM@1/2':>14s} "
          f"{'image SSIM':>11s} {'image SSIM@1/2':>15s}")
    for arm, r in results.items():
        half_c, half_g = args.condition_steps // 2, args.generator_steps // 2
        cells = [at_step(r["condition"], args.condition_steps, "validation_ssim"),
                 at_step(r["condition"], half_c, "validation_ssim"),
                 at_step(r["generator"], args.generator_steps, "validation_ssim"),
                 at_step(r["generator"], half_g, "validation_ssim")]
        print(f"{arm:8s} {r['condition_s']:7.0f} {r['generator_s']:8.0f} " + " ".join(
            f"{c:>{w}.4f}" if c is not None else f"{'-':>{w}s}" for c, w in zip(cells, (10, 14, 11, 15))))
    print(f"\n## test split through the engines (SSIM, mean; {evaluation_s:.0f} s)")
    print(f"{'engine':16s} {'pairing':9s} {'front':>7s} {'back':>7s} {'all':>7s}  n")
    for name in ("shared", "per-view", "warp", "input unchanged"):
        for pairing in ("paired", "unpaired"):
            cells = [scores.get(f"{name}|{pairing}|{view}") for view in ("front", "back", "all")]
            if cells[2] is None:
                continue
            print(f"{name:16s} {pairing:9s} " + " ".join(f"{c[0]:7.4f}" if c else f"{'-':>7s}" for c in cells)
                  + f"  {cells[2][1]}")
    print(f"\nfigure: {args.figure}; numbers: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
