"""Benchmark: how often the view fitroom guesses for a photo (front, back, side) is the one it shows.

Rendered people (``fitroom synth``: every identity from the front and from the back, views known) and the real
review photos (:mod:`fitroom.data.real_photos`: taken from the front, the cameraman in profile) go through
``Preprocessor.observe(view=None)``; the guess (:func:`fitroom.preprocess.quality.guess_view`) is compared with the
truth. A photo without a person found has no guess and counts as a miss. Prints one table and the misses.

Run: ``python benchmarks/view_detection.py [--count 24] [--size 512x384] [--cache outputs/real_photos_cache]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from pathlib import Path


def _guessed(observation) -> tuple[str, str]:
    if observation.keypoints is None:
        return "no person", "none"
    return observation.view_guess.seen, observation.view_guess.view.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=24, help="rendered identities (each front and back)")
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=Path("outputs/real_photos_cache"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    from fitroom import imaging
    from fitroom.data.layout import read_views
    from fitroom.data.real_photos import load_review_set
    from fitroom.data.synthetic.writer import SynthConfig, synthesize
    from fitroom.preprocess.pipeline import Preprocessor

    height, width = (int(v) for v in args.size.split("x"))
    rows: list[tuple[str, str, str, str, str]] = []  # (set, name, truth, guess, the view used)
    with tempfile.TemporaryDirectory() as folder, Preprocessor(allow_several_people=True) as preprocess:
        config = SynthConfig(out=Path(folder), count=args.count, size=(height, width), seed=args.seed,
                             test_fraction=0.0, workers=1)
        synthesize(config, progress=False)
        views = read_views(Path(folder) / "train" / "views.txt")
        for name, view in sorted(views.items()):
            observation, _ = preprocess.observe(imaging.load_image(Path(folder) / "train" / "image" / name), None)
            rows.append(("rendered", name, view.value, *_guessed(observation)))
        for photo, image in load_review_set(args.cache):
            if photo.name.startswith("two_people"):  # composites of the same photos
                continue
            observation, _ = preprocess.observe(image, None)
            rows.append(("real", photo.name, "side" if "sideways" in photo.labels else "front", *_guessed(observation)))
    # "right": the guess is the truth; "used right": the view the try-on then uses (a side guess still picks the
    # front or the back) is the truth
    print(f"{'set':9s} {'truth':6s} {'photos':>6s} {'right':>6s} {'share':>6s} {'used right':>10s}   guesses")
    for group in sorted({(r[0], r[2]) for r in rows}):
        chosen = [r for r in rows if (r[0], r[2]) == group]
        right = sum(r[2] == r[3] for r in chosen)
        used = sum(r[2] == r[4] for r in chosen)
        counts = ", ".join(f"{k} {v}" for k, v in Counter(r[3] for r in chosen).most_common())
        print(f"{group[0]:9s} {group[1]:6s} {len(chosen):6d} {right:6d} {right / len(chosen):6.1%} "
              f"{used / len(chosen):10.1%}   {counts}")
    for row in rows:
        if row[2] != row[3]:
            print(f"miss: {row[0]} {row[1]}: {row[2]} seen as {row[3]}")


if __name__ == "__main__":
    main()
