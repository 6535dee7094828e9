"""Benchmark: the built-in preprocessing and the `warp` engine on synthetic people with ground truth.

For N identities (front and back views, so 2N samples) at 512x384:
* the real preprocessing chain (mediapipe pose and masks, built-in parser) on the rendered photo, its per-class
  IoU against the renderer's parse and the silhouette IoU;
* the `warp` engine, paired (the person's own garment; ground truth = the photo) and unpaired (the next
  identity's garment; ground truth = the same person rendered in it), SSIM on RGB in [0, 1] with an 11x11 Gaussian
  window (kornia), with and without shading transfer, and once more on the renderer's true pose and parse (the
  engine alone, without preprocessing errors); "input unchanged" is the SSIM of doing nothing, for scale;
* seconds per photo for preprocessing (the work of `fitroom prepare`) and for the engine, and end to end
  (`fitroom tryon` less file I/O), in this one process.

Run: ``python benchmarks/preprocess.py [--identities 100] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import defaultdict

import numpy as np


def accumulate(predicted: np.ndarray, truth: np.ndarray, intersection: np.ndarray, union: np.ndarray) -> None:
    """Add one sample's per-label intersection and union counts (labels 0..len(union)-1)."""
    for label in range(len(union)):
        a, b = predicted == label, truth == label
        intersection[label] += (a & b).sum()
        union[label] += (a | b).sum()


def report(names, intersection: np.ndarray, union: np.ndarray) -> None:
    """Print the IoU of each label present in the truth, and their mean over the person labels (not 0)."""
    present = np.nonzero(union > 0)[0]
    for label in present:
        print(f"  {label:2d} {names[label]:14s} {intersection[label] / union[label]:.3f}")
    person = [label for label in present if label != 0]
    print(f"  mean over {len(person)} person classes: {np.mean(intersection[person] / union[person]):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import cv2
    import torch
    from kornia.metrics import ssim

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.engines import create_engine
    from fitroom.inputs import TryOnInputs
    from fitroom.labels import CIHP_NAMES, CIHP_TO_13, Parse13
    from fitroom.preprocess.pipeline import Preprocessor

    def score(a: np.ndarray, b: np.ndarray) -> float:
        ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
        tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
        return float(ssim(ta, tb, 11).mean())

    size = (512, 384)
    engines = {"warp": create_engine("warp"), "warp, no shading": create_engine("warp", shading=False)}
    ssim_scores: dict[str, list[float]] = defaultdict(list)
    by_view: dict[str, list[float]] = defaultdict(list)
    intersection, union = np.zeros(20), np.zeros(20)
    merged_intersection, merged_union = np.zeros(13), np.zeros(13)
    mask_iou, times_pre, times_engine = [], [], []
    failures = 0
    with Preprocessor() as preprocess:
        for index in range(args.identities):
            spec = sample_spec(args.seed, index, allow_crossed=False)
            other = sample_spec(args.seed, index + args.identities, allow_crossed=False).garment
            for view in ("front", "back"):
                render = render_person(spec.person, spec.garment, view, size)
                own, own_mask = render_garment(spec.garment, view, size)
                new, new_mask = render_garment(other, view, size)
                truth = render_person(spec.person, other, view, size)
                start = time.perf_counter()
                try:
                    analysis = preprocess.analyse_person(render.image, view)
                except ValueError:
                    failures += 1
                    continue
                times_pre.append(time.perf_counter() - start)
                accumulate(analysis.parse, render.parse, intersection, union)
                accumulate(CIHP_TO_13[analysis.parse], CIHP_TO_13[render.parse], merged_intersection, merged_union)
                mask_iou.append((analysis.mask & render.person_mask).sum() / (analysis.mask | render.person_mask).sum())
                for setting, garment, mask, target in (("paired", own, own_mask, render.image),
                                                       ("unpaired", new, new_mask, truth.image)):
                    inputs = TryOnInputs(person=render.image, garment=garment, garment_mask=mask,
                                         keypoints=analysis.keypoints, parse=analysis.parse, view=view)
                    for name, engine in engines.items():
                        start = time.perf_counter()
                        result = engine(inputs)
                        if name == "warp":
                            times_engine.append(time.perf_counter() - start)
                        value = score(result.image, target)
                        ssim_scores[f"{name} | {setting}"].append(value)
                        if name == "warp":
                            by_view[f"{setting} {view}"].append(value)
                    ssim_scores[f"input unchanged | {setting}"].append(score(render.image, target))
                    # the engine alone: the renderer's true pose and parse instead of the estimated ones
                    exact = inputs.replace(keypoints=render.keypoints, parse=render.parse)
                    ssim_scores[f"warp, true pose+parse | {setting}"].append(score(engines["warp"](exact).image,
                                                                                   target))

    samples = 2 * args.identities
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch/OpenCV threads: {args.threads}")
    print(f"samples: {samples} at {size[0]}x{size[1]} ({args.identities} identities x front/back); "
          f"preprocessing refused {failures}")
    print("\nSSIM against ground truth (mean over samples)")
    for key in sorted(ssim_scores):
        print(f"  {key:34s} {np.mean(ssim_scores[key]):.4f}")
    for key in sorted(by_view):
        print(f"  warp {key:29s} {np.mean(by_view[key]):.4f}")
    print("\nbuilt-in parser per-class IoU (real pose and masks from mediapipe; classes present in the truth)")
    report(CIHP_NAMES, intersection, union)
    print("\nthe same, merged into HR-VITON's 13 classes (upper = upper clothes + dress + coat, neck = background)")
    report([label.name.lower() for label in Parse13], merged_intersection, merged_union)
    print(f"\n  silhouette IoU: {np.mean(mask_iou):.3f}")
    print("\nseconds per photo (median / mean)")
    print(f"  preprocessing (prepare): {np.median(times_pre):.3f} / {np.mean(times_pre):.3f}")
    print(f"  warp engine:             {np.median(times_engine):.3f} / {np.mean(times_engine):.3f}")
    total = np.array(times_pre) + np.array(times_engine[::2])  # one engine run per sample: the paired one
    print(f"  try-on end to end:       {np.median(total):.3f} / {np.mean(total):.3f}")


if __name__ == "__main__":
    main()
