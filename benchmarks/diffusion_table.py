"""Benchmark: the diffusion engine (Leffa's two UNets) and pose transfer, trained on this CPU on rendered front/back
people, evaluated beside the other engines.

1. Data: the same 64 synthetic identities x front/back at 256x192 as ``benchmarks/train_compare.py`` (seed 11; 96
   training samples, 32 held out), and the paper table's evaluation set (``benchmarks/paper_table.py``: 32 unseen
   identities x front/back, seed 2024).
2. Training (skipped when the run folder already holds the last checkpoint): ``fitroom train diffusion`` and
   ``fitroom train pose_transfer`` with the small pixel-space model (``leffa_pixel``) at 128x96, batch 4,
   ``--steps`` optimizer steps, lr 2e-4.
3. Try-on: ``fitroom eval`` of the ``diffusion`` engine (``--sample-steps`` DDPM steps, guidance 2.5, seed 42),
   paired and unpaired, on the first ``--limit`` pairs, with the ``warp`` engine beside it on the same pairs.
4. Pose transfer: the first ``--limit`` pairs of evaluation photos (identities turned front -> back and back ->
   front), judged against the renderer's picture of that view (SSIM, RGB, 11x11 Gaussian window, as ``fitroom
   eval``), with two targets: the dense map of the true target photo, and the person's own skeleton turned (no
   target photo); beside it the input photo returned unchanged.
5. A sheet of results: ``docs/diffusion_sheet.png``.

Run: ``python benchmarks/diffusion_table.py [--out runs/diffusion_table] [--steps 600]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np


def train(stage: str, data: Path, out: Path, args: argparse.Namespace) -> float:
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    if (out / f"step_{args.steps}.pt").is_file():
        return float("nan")
    config = load_config(None, [f"stage={stage}", f"data={data}", f"out={out}", "model=leffa_pixel",
                                f"size=[{args.size[0]}, {args.size[1]}]", "batch_size=4", f"steps={args.steps}",
                                "lr=2e-4", "validate_every=100", "validation_samples=8", "checkpoint_every=100",
                                "seed=0"])
    start = time.perf_counter()
    Trainer(config, progress=True).run()
    return time.perf_counter() - start


def score(image: np.ndarray, truth: np.ndarray) -> float:
    """SSIM (RGB, 11x11 Gaussian window, as ``fitroom eval``) of two ``(H, W, 3)`` uint8 pictures."""
    from fitroom import imaging
    from fitroom.metrics.image import ssim_rgb

    return float(ssim_rgb(imaging.image_to_tensor(image)[None] * 0.5 + 0.5,
                          imaging.image_to_tensor(truth)[None] * 0.5 + 0.5)[0])


def pose_rows(model, layout, names: list[tuple[str, str]]) -> list[dict]:
    """Each identity turned both ways: SSIM against the true target photo, for a target from the true photo's dense
    map and from the turned skeleton, and for the source photo unchanged."""
    import torch

    from fitroom.engines.pose_transfer import drawn_dense, turn_keypoints

    rows = []
    for source_name, target_name in names:
        source, target = layout.read(source_name), layout.read(target_name)
        mask = source.parse > 0
        shape = source.person.shape[:2]
        drawn = drawn_dense(turn_keypoints(source.keypoints, source.view, target.view), shape, target.view)
        with torch.no_grad():
            from_photo = model(source.person, mask, target.dense)
            from_skeleton = model(source.person, mask, drawn)
        rows.append({"source": source_name, "target": target_name,
                     "direction": f"{source.view.value}->{target.view.value}",
                     "ssim_target_photo": score(from_photo.image, target.person),
                     "ssim_turned_skeleton": score(from_skeleton.image, target.person),
                     "ssim_unchanged": score(source.person, target.person),
                     "images": (source.person, target.dense, from_photo.image, drawn, from_skeleton.image,
                                target.person)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/diffusion_table"))
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps of each training stage")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 96), help="training size H W")
    parser.add_argument("--sample-steps", type=int, default=25, help="DDPM steps at evaluation")
    parser.add_argument("--limit", type=int, default=32, help="pairs evaluated (try-on and pose transfer)")
    parser.add_argument("--eval-identities", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from fitroom import imaging
    from fitroom.data.dataset import pose_pairs
    from fitroom.data.layout import VitonLayout
    from fitroom.data.synthetic.writer import SynthConfig, synthesize
    from fitroom.engines.pose_transfer import PoseTransfer
    from fitroom.evaluation import EvalConfig, checkpoint_digest, evaluate

    data, evaluation_set = args.out / "data", args.out / "eval_data"
    if not (data / "train_pairs.txt").is_file():
        synthesize(SynthConfig(out=data, count=64, size=(256, 192), seed=11, workers=args.threads), progress=False)
    if not (evaluation_set / "test_pairs.txt").is_file():
        count = args.eval_identities + 1  # all but one identity in the test split, as benchmarks/paper_table.py
        synthesize(SynthConfig(out=evaluation_set, count=count, size=(256, 192), seed=2024,
                               test_fraction=args.eval_identities / count, workers=args.threads), progress=False)
    seconds = {stage: train(stage, data, args.out / stage, args) for stage in ("diffusion", "pose_transfer")}

    # try-on: the paper table's row, with warp beside it on the same pairs
    # DDPM as published: with DDIM these briefly trained models leave high-frequency noise in every picture
    sampling = {"steps": args.sample_steps, "scheduler": "ddpm", "guidance": 2.5, "seed": 42}
    table: dict[str, dict] = {}
    for name, engine, checkpoint, options in (
            ("diffusion (leffa_pixel)", "diffusion", args.out / "diffusion" / "diffusion", sampling),
            ("warp", "warp", "", {})):
        for pairs in ("paired", "unpaired"):
            report = args.out / "reports" / f"{engine}_{pairs}"
            results = evaluate(EvalConfig(engine=engine, checkpoint=str(checkpoint), data=str(evaluation_set),
                                          out=str(report), pairs=pairs, limit=args.limit, options=options),
                               progress=False)
            table.setdefault(name, {})[pairs] = results["summary"]

    # the input photo unchanged, against the unpaired truth of the same pairs
    layout = VitonLayout(evaluation_set, "test")
    unchanged = [score(layout.read(person).person, layout.unpaired_ground_truth(person, cloth))
                 for person, cloth in layout.pairs()[:args.limit]]

    # pose transfer against the renderer's truth of the other view (scores kept in pose_rows.json and reused for the
    # same model, sampling and pairs; the sheet's first rows are drawn again)
    folder = args.out / "pose_transfer" / "diffusion"
    model = PoseTransfer(folder, progress=False, **sampling)
    chosen_pairs = pose_pairs(layout)[:args.limit]
    identity = {"weights": checkpoint_digest(folder), "sampling": sampling, "pairs": chosen_pairs}
    cache = args.out / "pose_rows.json"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    if cached.get("identity") == json.loads(json.dumps(identity)):
        rows = pose_rows(model, layout, chosen_pairs[:4]) + cached["rows"][4:]
    else:
        rows = pose_rows(model, layout, chosen_pairs)
        cache.write_text(json.dumps({"identity": identity,
                                     "rows": [{k: v for k, v in r.items() if k != "images"} for r in rows]}))
    summary = {}
    for direction in sorted({r["direction"] for r in rows}) + ["all"]:
        chosen = [r for r in rows if direction in ("all", r["direction"])]
        summary[direction] = {key: float(np.mean([r[key] for r in chosen])) for key in
                              ("ssim_target_photo", "ssim_turned_skeleton", "ssim_unchanged")}
        summary[direction]["count"] = len(chosen)
    (args.out / "results.json").write_text(json.dumps({"tryon": table, "tryon_unchanged_unpaired": np.mean(unchanged),
                                                       "pose_transfer": summary, "training_seconds": seconds},
                                                      indent=1, default=float))

    # the sheet: pose transfers (source, true target's dense map, result, turned skeleton, result, truth), then
    # unpaired try-ons (person, garment, diffusion, warp, truth) of the first identities
    sheet_rows = [np.hstack(row["images"]) for row in rows[:4]]
    reports = args.out / "reports"
    for person, cloth in layout.pairs()[:4]:
        sample = layout.read(person, cloth)
        name = f"{person}__{cloth}.png"
        pictures = [sample.person, sample.garment]
        pictures += [imaging.load_image(reports / f"{engine}_unpaired" / "images" / name) for engine in
                     ("diffusion", "warp")]
        truth = layout.unpaired_ground_truth(person, cloth)
        pictures.append(truth if truth is not None else np.full_like(sample.person, 255))
        line = np.hstack(pictures)
        sheet_rows.append(np.pad(line, ((0, 0), (0, sheet_rows[0].shape[1] - line.shape[1]), (0, 0)),
                                 constant_values=255))
    Path("docs").mkdir(exist_ok=True)
    imaging.save_image(Path("docs") / "diffusion_sheet.png", np.vstack(sheet_rows))

    def cell(summary: dict, key: str, view: str = "all") -> str:
        value = summary.get(view, {}).get(key)
        return f"{value:.4f}" if isinstance(value, float) else "n/a"

    print(f"# trained {args.steps} steps per stage at {args.size[0]}x{args.size[1]} (s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()) + "); evaluation: "
          f"{args.sample_steps} DDPM steps, guidance 2.5, seed 42, at the training size, the first {args.limit} pairs")
    print("| engine | SSIM paired | front / back | SSIM grey (HR-VITON's) | SSIM unpaired | s/image |")
    print("|---|---|---|---|---|---|")
    for name, result in table.items():
        paired, unpaired = result["paired"], result["unpaired"]
        timing = paired["all"].get("seconds_per_image")
        print(f"| {name} | {cell(paired, 'ssim')} | {cell(paired, 'ssim', 'front')} / {cell(paired, 'ssim', 'back')}"
              f" | {cell(paired, 'ssim_gray_hrviton')} | {cell(unpaired, 'ssim')} | "
              + (f"{timing:.3f} |" if timing is not None else "- (reused) |"))
    print(f"| the input photo unchanged | - | - | - | {np.mean(unchanged):.4f} | - |")
    print("| pose transfer | target from the true photo | from the turned skeleton | the photo unchanged | pairs |")
    print("|---|---|---|---|---|")
    for direction, values in summary.items():
        print(f"| {direction} | {values['ssim_target_photo']:.4f} | {values['ssim_turned_skeleton']:.4f} | "
              f"{values['ssim_unchanged']:.4f} | {values['count']} |")
    print("sheet: docs/diffusion_sheet.png; results: " + str(args.out / "results.json"))


if __name__ == "__main__":
    main()
