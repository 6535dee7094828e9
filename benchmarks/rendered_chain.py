"""Benchmark: the whole `fitroom tryon` chain on rendered people, unpaired, beside returning the photo unchanged.

For N identities (default 12) seen from the front and from the back at 512x384: the person is rendered in their
own garment (the photo), the next identity's garment is rendered flat (the product photo), and the same person is
rendered wearing it (the truth, which only a renderer has). With ``--categories upper,lower,dress`` each category
is measured on the same people: a lower garment's photo shows the person in their top and a lower garment of
their own, tried in another's (the top kept); a dress's photo shows them in their top and their own bottom (a
shopper as they come), tried in a dress. The chain runs as ``fitroom tryon`` does: mediapipe pose and masks, face
mesh and hands, built-in parser, the `warp` engine. Measured per sample:

* SSIM (``fitroom.metrics.ssim_rgb``: RGB, 11x11 Gaussian window, valid area) of the try-on and of the unchanged
  photo against the truth;
* the share of the true face and hair pixels (the renderer's parse) whose grey level changed by more than 25.

The issue's criteria: SSIM at least 0.02 above the unchanged photo; no sample changes more than 1 % of its face
and hair pixels.

Run: ``python benchmarks/rendered_chain.py [--identities 12] [--threads 2] [--categories upper,lower,dress]``.
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--categories", default="upper", help="comma-separated: upper, lower, dress")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from fitroom import imaging
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.data.synthetic.lower import render_lower_product
    from fitroom.data.synthetic.writer import dress_spec, lower_spec
    from fitroom.engines import create_engine
    from fitroom.inputs import InputsError
    from fitroom.labels import Cihp, GarmentCategory, View
    from fitroom.metrics import ssim_rgb
    from fitroom.preprocess.errors import PhotoError
    from fitroom.preprocess.garment import GarmentError
    from fitroom.preprocess.pipeline import Preprocessor

    size = (512, 384)
    engine = create_engine("warp")
    rows = []
    categories = [GarmentCategory(c.strip()) for c in args.categories.split(",")]

    def scene(index: int, view: View, category: GarmentCategory):
        """(photo, product photo, truth) renders of identity ``index`` trying on ``category``."""
        spec = sample_spec(args.seed, index, allow_crossed=False)
        partner = index + args.identities
        if category is GarmentCategory.LOWER:
            mine, other = lower_spec(args.seed, index), lower_spec(args.seed, partner)
            return (render_person(spec.person, spec.garment, view, size, lower=mine),
                    render_lower_product(other, view, size)[0],
                    render_person(spec.person, spec.garment, view, size, lower=other))
        other = (dress_spec(args.seed, partner) if category is GarmentCategory.DRESS else
                 sample_spec(args.seed, partner, allow_crossed=False).garment)
        return (render_person(spec.person, spec.garment, view, size), render_garment(other, view, size)[0],
                render_person(spec.person, other, view, size))

    with Preprocessor() as preprocess:
        for category in categories:
            for index in range(args.identities):
                for view in (View.FRONT, View.BACK):
                    photo, garment, truth = scene(index, view, category)
                    try:
                        inputs = preprocess(photo.image, garment, view=view, category=category)
                    except (PhotoError, GarmentError) as error:
                        print(f"{category.value} identity {index} {view.value}: refused ({error})")
                        continue
                    try:
                        result = engine(inputs).image
                    except InputsError as error:
                        print(f"{category.value} identity {index} {view.value}: refused ({error})")
                        continue
                    truth_tensor = imaging.image_to_tensor(truth.image)[None]

                    def ssim(image: np.ndarray) -> float:
                        return float(ssim_rgb(imaging.image_to_tensor(image)[None], truth_tensor).mean())

                    head = np.isin(photo.parse, (Cihp.FACE, Cihp.HAIR))
                    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.int16) for x in (photo.image, result)]
                    changed = float((np.abs(grey[1] - grey[0]) > 25)[head].mean()) if head.any() else 0.0
                    rows.append((index, view.value, ssim(result), ssim(photo.image), changed, category.value))
                    print(f"{category.value:5s} identity {index:2d} {view.value:5s}: SSIM try-on {rows[-1][2]:.4f}"
                          f"  unchanged {rows[-1][3]:.4f}  face+hair changed {100 * changed:.2f}%")
    tryon, unchanged, changed = (np.array([r[k] for r in rows]) for k in (2, 3, 4))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads")
    print(f"{len(rows)} samples ({args.identities} identities x front/back, {size[0]}x{size[1]}, seed {args.seed})")
    print(f"unpaired SSIM, whole chain: {tryon.mean():.4f}   unchanged photo: {unchanged.mean():.4f}   "
          f"difference {tryon.mean() - unchanged.mean():+.4f}")
    print(f"{'category':9s} {'view':6s} {'n':>3s} {'try-on':>7s} {'unchanged':>9s} {'diff':>8s}")
    for category in categories:
        for view in ("front", "back", None):
            sel = np.array([r[5] == category.value and (view is None or r[1] == view) for r in rows])
            if sel.any():
                print(f"{category.value:9s} {view or 'both':6s} {sel.sum():3d} {tryon[sel].mean():7.4f} "
                      f"{unchanged[sel].mean():9.4f} {tryon[sel].mean() - unchanged[sel].mean():+8.4f}")
    print(f"true face and hair pixels changed: max {100 * changed.max():.2f}%  mean {100 * changed.mean():.3f}%  "
          f"samples over 1%: {(changed > 0.01).sum()}")


if __name__ == "__main__":
    main()
