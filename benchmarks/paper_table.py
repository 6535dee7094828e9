"""Benchmark: the paper's comparison table (CP-VTON vs HR-VITON per view vs weight-shared HR-VITON), reproduced on
what this machine can do, plus the ``warp`` engine.

1. The HR-VITON models come from ``benchmarks/train_compare.py`` (its run folder, ``--runs``): ``shared`` (one model,
   the view as an input plane) and ``front`` / ``back`` (one model per view), trained on the same synthetic
   front/back set with the same steps. They are trained here first if the folder lacks them.
2. CP-VTON (GMM, then TOM with the GMM frozen) is trained on the same data, the same batch size and the same
   number of steps per stage, at small width (``--ngf``).
3. Every engine is evaluated with ``fitroom eval`` (the same code path as the command) on a separate synthetic
   evaluation set of ``--eval-identities`` unseen identities x front/back, paired and unpaired.

Without VGG19, AlexNet and Inception weights on this machine the perceptual training losses are replaced by L1
terms, and LPIPS / FID / KID are reported as unavailable (with the reason) unless ``fitroom weights import`` put
the files in the cache. The table's SSIM is RGB SSIM; HR-VITON's greyscale variant is printed beside it.

Run: ``python benchmarks/paper_table.py [--runs runs/train_compare] [--out runs/paper_table]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ENGINES = ("cpvton", "hrviton per view", "hrviton shared", "warp")


def train_cpvton(args: argparse.Namespace, data: Path) -> Path:
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    common = [f"data={data}", f"batch_size={args.batch}", f"validate_every={args.validate_every}",
              "validation_samples=16", "log_every=5", f"seed={args.seed}", "loss_weights.vgg=0",
              f"model_options={{ngf: {args.ngf}}}"]
    out = args.out / "cpvton"
    gmm = load_config(None, common + ["stage=gmm", f"out={out / 'gmm'}", f"steps={args.condition_steps}",
                                      f"checkpoint_every={args.condition_steps}"])
    Trainer(gmm, progress=True).run()
    tom = load_config(None, common + ["stage=tom", f"condition={out / 'gmm'}", f"out={out / 'tom'}",
                                      f"steps={args.generator_steps}", f"checkpoint_every={args.generator_steps}"])
    Trainer(tom, progress=True).run()
    return out / "tom" / "cpvton"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/train_compare"),
                        help="benchmarks/train_compare.py's output folder (its data and HR-VITON runs)")
    parser.add_argument("--out", type=Path, default=Path("runs/paper_table"))
    parser.add_argument("--condition-steps", type=int, default=200, help="GMM steps (= HR-VITON condition steps)")
    parser.add_argument("--generator-steps", type=int, default=200, help="TOM steps (= HR-VITON image steps)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--ngf", type=int, default=16, help="CP-VTON width (the published one is 64)")
    parser.add_argument("--validate-every", type=int, default=25)
    parser.add_argument("--eval-identities", type=int, default=32, help="evaluation set: identities x front/back")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from fitroom.data.synthetic.writer import SynthConfig, synthesize
    from fitroom.evaluation import EvalConfig, evaluate

    hrviton = {arm: args.runs / arm / "generator" / "hrviton" for arm in ("shared", "front", "back")}
    if not all(path.is_dir() for path in hrviton.values()):
        sys.exit(f"HR-VITON runs missing under {args.runs}: run benchmarks/train_compare.py first "
                 f"(python benchmarks/train_compare.py --out {args.runs})")
    data = args.runs / "data"
    start = time.perf_counter()
    checkpoint = args.out / "cpvton" / "tom" / "cpvton"
    if not checkpoint.is_dir():
        checkpoint = train_cpvton(args, data)
    cpvton_seconds = time.perf_counter() - start
    per_view = args.out / "hrviton_per_view"  # front/ and back/: the hrviton engine's per-view form
    per_view.mkdir(parents=True, exist_ok=True)
    for view in ("front", "back"):
        link = per_view / view
        if not link.exists():
            link.symlink_to(hrviton[view].resolve(), target_is_directory=True)
    evaluation_set = args.out / "eval_data"
    if not (evaluation_set / "test_pairs.txt").is_file():
        count = args.eval_identities + 1  # all but one identity in the test split
        synthesize(SynthConfig(out=evaluation_set, count=count, size=(256, 192), seed=2024,
                               test_fraction=args.eval_identities / count, workers=args.threads), progress=False)
    engines = {"cpvton": ("cpvton", checkpoint), "hrviton per view": ("hrviton", per_view),
               "hrviton shared": ("hrviton", hrviton["shared"]), "warp": ("warp", "")}
    table: dict[str, dict] = {}
    for name, (engine, folder) in engines.items():
        for pairs in ("paired", "unpaired"):
            report = args.out / "reports" / f"{name.replace(' ', '_')}_{pairs}"
            begin = time.perf_counter()
            results = evaluate(EvalConfig(engine=engine, checkpoint=str(folder), data=str(evaluation_set),
                                          out=str(report), pairs=pairs))
            table.setdefault(name, {})[pairs] = results["summary"]
            table[name][f"{pairs}_eval_seconds"] = time.perf_counter() - begin
    (args.out / "table.json").write_text(json.dumps(table, indent=1))

    def cell(summary: dict, key: str, view: str = "all") -> str:
        value = summary.get(view, {}).get(key)
        return f"{value:.4f}" if isinstance(value, float) else "n/a"

    print(f"# evaluation set: {args.eval_identities} unseen identities x front/back at 256x192 "
          f"({2 * args.eval_identities} pairs); "
          f"CP-VTON trained in {cpvton_seconds:.0f} s ({args.condition_steps} + {args.generator_steps} steps, "
          f"ngf {args.ngf})")
    print("| engine | SSIM paired | SSIM front / back | SSIM grey (HR-VITON) | LPIPS | SSIM unpaired vs rendered "
          "truth | FID unpaired | KID x1000 unpaired | s/image |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result in table.items():
        paired, unpaired = result["paired"], result["unpaired"]
        seconds = paired["all"].get("seconds_per_image")
        timing = f"{seconds:.3f}" if seconds is not None else "- (reused)"
        print(f"| {name} | {cell(paired, 'ssim')} | {cell(paired, 'ssim', 'front')} / {cell(paired, 'ssim', 'back')} "
              f"| {cell(paired, 'ssim_gray_hrviton')} | {cell(paired, 'lpips')} | {cell(unpaired, 'ssim')} "
              f"| {cell(unpaired, 'fid')} | {cell(unpaired, 'kid_x1000')} | {timing} |")
    missing = {k: v["reason"] for k, v in table["warp"]["paired"]["all"].items() if isinstance(v, dict)}
    missing.update({k: v["reason"] for k, v in table["warp"]["unpaired"]["all"].items() if isinstance(v, dict)})
    for metric, reason in missing.items():
        print(f"- {metric}: {reason}")
    print("fitroom eval wall time per engine (paired + unpaired, scoring included; results reused when the "
          "reports existed): " + ", ".join(f"{name} {r['paired_eval_seconds'] + r['unpaired_eval_seconds']:.0f} s"
                                           for name, r in table.items()))
    print(f"reports: {args.out / 'reports'}")


if __name__ == "__main__":
    main()
