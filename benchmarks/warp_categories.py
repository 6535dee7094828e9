"""Benchmark: the `warp` engine per garment category on rendered people with the renderer's own parse and keypoints.

The engine alone (no preprocessing: `benchmarks/rendered_chain.py` measures the whole chain), unpaired, against
the rendered truth, beside returning the photo unchanged (SSIM as ``skimage.metrics.structural_similarity``, RGB):

* lower: a person in their top and one lower garment (trousers, shorts, three skirts) tries another's;
* dress: a person tries another's dress, from their own top and bottom (even identities) or from a dress of
  their own (odd ones).

Run: ``python benchmarks/warp_categories.py [--identities 12] [--no-shading]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=12)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-shading", action="store_true", help="do not carry the photo's light over")
    args = parser.parse_args()
    from skimage.metrics import structural_similarity

    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.data.synthetic.lower import render_lower_product
    from fitroom.data.synthetic.writer import dress_spec, lower_spec
    from fitroom.engines import create_engine
    from fitroom.inputs import TryOnInputs

    engine = create_engine("warp", shading=not args.no_shading)
    size = (512, 384)
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for index in range(args.identities):
        spec = sample_spec(args.seed, index)
        for view in ("front", "back"):
            scenes = {
                "lower": (render_person(spec.person, spec.garment, view, size, lower=lower_spec(args.seed, index)),
                          render_lower_product(lower_spec(args.seed, index + 100), view, size),
                          render_person(spec.person, spec.garment, view, size,
                                        lower=lower_spec(args.seed, index + 100))),
                f"dress from {'a dress' if index % 2 else 'top and bottom'}": (
                    render_person(spec.person, dress_spec(args.seed, index) if index % 2 else spec.garment, view,
                                  size),
                    render_garment(dress_spec(args.seed, index + 100), view, size),
                    render_person(spec.person, dress_spec(args.seed, index + 100), view, size)),
            }
            for name, (photo, (product, mask), truth) in scenes.items():
                start = time.perf_counter()
                result = engine(TryOnInputs(person=photo.image, garment=product, garment_mask=mask,
                                            keypoints=photo.keypoints, parse=photo.parse, view=view,
                                            category=name.split()[0]))
                seconds = time.perf_counter() - start
                rows.setdefault(name, []).append((
                    structural_similarity(result.image, truth.image, channel_axis=2),
                    structural_similarity(photo.image, truth.image, channel_axis=2), seconds))
    print(f"{args.identities} identities x front/back at {size[0]}x{size[1]}, seed {args.seed}, "
          f"light carried: {not args.no_shading}")
    print(f"{'scene':26s} {'n':>3s} {'warp':>7s} {'unchanged':>9s} {'better':>7s} {'s/try-on':>8s}")
    for name, values in rows.items():
        v = np.array(values)
        print(f"{name:26s} {len(v):3d} {v[:, 0].mean():7.4f} {v[:, 1].mean():9.4f} "
              f"{(v[:, 0] > v[:, 1]).mean():7.0%} {np.median(v[:, 2]):8.3f}")


if __name__ == "__main__":
    main()
