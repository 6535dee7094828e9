"""Benchmark: the whole `fitroom tryon` chain on rendered people, unpaired, beside returning the photo unchanged.

For N identities (default 12) seen from the front and from the back at 512x384: the person is rendered in their
own garment (the photo), the next identity's garment is rendered flat (the product photo), and the same person is
rendered wearing it (the truth, which only a renderer has). The chain runs as ``fitroom tryon`` does: mediapipe
pose and masks, face mesh and hands, built-in parser, the `warp` engine. Measured per sample:

* SSIM (``fitroom.metrics.ssim_rgb``: RGB, 11x11 Gaussian window, valid area) of the try-on and of the unchanged
  photo against the truth;
* the share of the true face and hair pixels (the renderer's parse) whose grey level changed by more than 25.

The issue's criteria: SSIM at least 0.02 above the unchanged photo; no sample changes more than 1 % of its face
and hair pixels.

Run: ``python benchmarks/rendered_chain.py [--identities 12] [--threads 2]``.
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
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from fitroom import imaging
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.engines import create_engine
    from fitroom.labels import Cihp, View
    from fitroom.metrics import ssim_rgb
    from fitroom.preprocess.errors import PhotoError
    from fitroom.preprocess.garment import GarmentError
    from fitroom.preprocess.pipeline import Preprocessor

    size = (512, 384)
    engine = create_engine("warp")
    rows = []
    with Preprocessor() as preprocess:
        for index in range(args.identities):
            spec = sample_spec(args.seed, index, allow_crossed=False)
            other = sample_spec(args.seed, index + args.identities, allow_crossed=False).garment
            for view in (View.FRONT, View.BACK):
                photo = render_person(spec.person, spec.garment, view, size)
                garment, _ = render_garment(other, view, size)
                truth = render_person(spec.person, other, view, size)
                try:
                    inputs = preprocess(photo.image, garment, view=view, category="upper")
                except (PhotoError, GarmentError) as error:
                    print(f"identity {index} {view.value}: refused ({error})")
                    continue
                result = engine(inputs).image
                truth_tensor = imaging.image_to_tensor(truth.image)[None]

                def ssim(image: np.ndarray) -> float:
                    return float(ssim_rgb(imaging.image_to_tensor(image)[None], truth_tensor).mean())

                head = np.isin(photo.parse, (Cihp.FACE, Cihp.HAIR))
                grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.int16) for x in (photo.image, result)]
                changed = float((np.abs(grey[1] - grey[0]) > 25)[head].mean()) if head.any() else 0.0
                rows.append((index, view.value, ssim(result), ssim(photo.image), changed))
                print(f"identity {index:2d} {view.value:5s}: SSIM try-on {rows[-1][2]:.4f}  unchanged "
                      f"{rows[-1][3]:.4f}  face+hair changed {100 * changed:.2f}%")
    tryon, unchanged, changed = (np.array([r[k] for r in rows]) for k in (2, 3, 4))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads")
    print(f"{len(rows)} samples ({args.identities} identities x front/back, {size[0]}x{size[1]}, seed {args.seed})")
    print(f"unpaired SSIM, whole chain: {tryon.mean():.4f}   unchanged photo: {unchanged.mean():.4f}   "
          f"difference {tryon.mean() - unchanged.mean():+.4f}")
    for view in ("front", "back"):
        sel = np.array([r[1] == view for r in rows])
        if sel.any():
            print(f"  {view}: try-on {tryon[sel].mean():.4f}, unchanged {unchanged[sel].mean():.4f}")
    print(f"true face and hair pixels changed: max {100 * changed.max():.2f}%  mean {100 * changed.mean():.3f}%  "
          f"samples over 1%: {(changed > 0.01).sum()}")


if __name__ == "__main__":
    main()
