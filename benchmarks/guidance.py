"""Benchmark and calibration of the photo checks (`fitroom check`).

The labelled set: synthetic photos rendered with one known defect each (``fitroom.data.synthetic.problems``:
clean, blur, dark, bright, second person, cropped above the knees, crossed arms, crossed legs, low contrast,
sideways, back view, one-colour outfit), plus variants of the real astronaut photo (blurred, darkened, brightened,
duplicated side by side, pasted on a background of its own colours, and untouched). A photo may carry several
labels: the astronaut is half-body (not full length for trousers); low-contrast renders also wear one colour.

``--calibrate`` picks each threshold on a separate calibration set (other seeds, other astronaut parameters) to
maximise F1 and writes ``src/fitroom/preprocess/guidance.json``; then precision and recall per check are measured
on the evaluation set, with the full-length check asked for a ``lower`` garment (feet in the picture). A check
"detects" when it fails; a check that only warns (the outfit check, and those listed under ``warn_only``)
detects when it warns. A dark, bright or blurred photo
also spoils colour measurements, so the contrast and outfit checks are scored on photos without those defects.

The same table is then made on real photos, apart: the review set of ``fitroom.data.real_photos`` (hand-labelled;
the Debian ``opencv-doc`` photos are fetched into ``--cache``), each untouched and as a darkened, a brightened and
a blurred copy. Calibration never sees them.

Run: ``python benchmarks/guidance.py [--per-defect 25] [--calibrate]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

#: which check should catch which label
CHECK_OF = {"blur": "blur", "dark": "exposure", "bright": "exposure", "second_person": "people",
            "cropped": "full_length", "crossed_arms": "crossed_arms", "crossed_legs": "crossed_legs",
            "low_contrast": "contrast", "sideways": "facing", "back_view": "facing", "monochrome": "outfit"}
#: photo-wide defects that also spoil colour and face measurements; those checks are scored on photos without them
OWNED_BY_OTHERS = {"dark", "bright", "blur"}
COLOUR_CHECKS = ("contrast", "outfit", "facing")
THRESHOLDS_FILE = Path(__file__).resolve().parents[1] / "src" / "fitroom" / "preprocess" / "guidance.json"


def astronaut_variants(astronaut: np.ndarray, mask: np.ndarray, strength: float):
    """(image, labels) pairs made from the real photo; ``strength`` varies the parameters between sets."""
    yield astronaut, {"cropped"}
    for sigma in (2.5 * strength, 4.0 * strength):
        yield cv2.GaussianBlur(astronaut, (0, 0), sigma), {"blur", "cropped"}
    for gain in (0.22 * strength, 0.3 * strength):
        yield np.clip(astronaut * gain, 0, 255).astype(np.uint8), {"dark", "cropped"}
    yield np.clip(astronaut * (2.3 * strength) + 40, 0, 255).astype(np.uint8), {"bright", "cropped"}
    yield np.ascontiguousarray(np.concatenate([astronaut, astronaut], axis=1)), {"second_person", "cropped"}
    colour = np.median(astronaut[mask], axis=0)
    yield np.where(mask[..., None], astronaut, colour.astype(np.uint8)[None, None]), {"low_contrast", "cropped"}


def labelled_set(seed: int, per_defect: int, strength: float, astronaut: np.ndarray, mask: np.ndarray):
    from fitroom.data.synthetic.problems import DEFECTS, render_problem

    for index in range(per_defect * len(DEFECTS)):
        defect = DEFECTS[index % len(DEFECTS)]
        image, _ = render_problem(seed, index, defect, (512, 384))
        labels = set() if defect == "clean" else {defect}
        if defect == "low_contrast":
            labels.add("monochrome")
        yield image, labels
    yield from astronaut_variants(astronaut, mask, strength)


def real_labelled_set(cache: Path):
    """The real review photos with their hand labels, each also darkened, brightened and blurred."""
    from fitroom.data.real_photos import fetch_debian_photos, load_review_set

    fetch_debian_photos(cache)
    for photo, image in load_review_set(cache):
        yield image, set(photo.labels)
        yield np.clip(image * 0.25, 0, 255).astype(np.uint8), set(photo.labels) | {"dark"}
        yield np.clip(image * 2.3 + 40, 0, 255).astype(np.uint8), set(photo.labels) | {"bright"}
        yield cv2.GaussianBlur(image, (0, 0), 3.0 * image.shape[0] / 512), set(photo.labels) | {"blur"}


def print_scores(rows: list, thresholds) -> None:
    print(f"\n{'label':15s} {'check':13s} {'photos':>6s} {'positives':>9s} {'precision':>9s} {'recall':>7s}")
    # the facing check answers both "turned sideways" and "back to the camera"; its rows count both as positives
    for label, (photos, positives, precision, recall, sources) in score(rows, thresholds).items():
        false = ", ".join(f"{k} {v}" for k, v in sorted(sources.items(), key=lambda kv: -kv[1]))
        print(f"{label:15s} {CHECK_OF[label]:13s} {photos:6d} {positives:9d} {precision:9.3f} {recall:7.3f}   "
              f"false alarms: {false or 'none'}")


def observe_all(preprocess, photos) -> list:
    from fitroom.preprocess.quality import (
        arms_crossed, clipped, highlights, legs_crossed, outfit_contrast, sharpness, shoulder_ratio,
        silhouette_contrast,
    )

    rows = []
    for image, labels in photos:
        start = time.perf_counter()
        observation, _ = preprocess.glance(image)  # what the checks look at (fitroom.fitting.check)
        seconds = time.perf_counter() - start
        observation = observation.at_photo_size()
        features = {"sharpness": sharpness(image, observation.mask), "highlights": highlights(image),
                    "clipped": clipped(image, observation.mask, observation.faces),
                    "face_score": float(observation.faces[:, 4].max()) if len(observation.faces) else 0.0,
                    # the weaker evidence of someone else, for the photos the people count says are alone
                    "others": observation.others if observation.people == 1 else None}
        if observation.mask is not None and observation.mask.any():
            features["contrast"] = silhouette_contrast(image, observation.mask)
        if observation.parse is not None:
            features["outfit"] = outfit_contrast(image, observation.parse)
        if observation.keypoints is not None:
            features["shoulder_ratio"] = shoulder_ratio(observation.keypoints)
            features["ankle_gap"] = legs_crossed(observation.raw_keypoints)[1]
            features["overshoot"] = arms_crossed(observation.raw_keypoints, 0.0)[1]
        rows.append({"observation": observation, "labels": labels, "features": features, "seconds": seconds})
    return rows


def best_threshold(values: np.ndarray, positive: np.ndarray, low_is_bad: bool = True) -> float:
    """The threshold (a midpoint between sorted values) with the best F1 for "value < t" (or "> t")."""
    finite = np.isfinite(values)
    values, positive = values[finite], positive[finite]
    order = np.unique(values)
    candidates = (order[:-1] + order[1:]) / 2 if len(order) > 1 else order
    best, best_f1 = float(candidates[0]), -1.0
    for t in candidates:
        predicted = values < t if low_is_bad else values > t
        tp = (predicted & positive).sum()
        f1 = 2 * tp / max(predicted.sum() + positive.sum(), 1)
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


#: checks that always refuse: without the body parts, or with someone else in the picture, no try-on can work
ALWAYS_REFUSE = {"resolution", "people", "full_length"}
MIN_PRECISION_TO_REFUSE = 0.9


def score(rows: list, thresholds, category: str = "lower") -> dict[str, tuple[int, int, float, float, dict]]:
    """Per label: (photos scored, positives, precision, recall, false alarms by the photo's labels)."""
    from fitroom.preprocess.quality import Status, check_photo

    for row in rows:
        row["hits"] = set()
        report = check_photo(row["observation"], category, "front", thresholds)
        for check in set(CHECK_OF.values()):
            result = report.result(check)
            hit = result.status is Status.FAIL or (
                result.status is Status.WARN and (check == "outfit" or check in thresholds.warn_only))
            if check == "exposure" and hit:  # split by direction, so dark and bright are scored apart
                row["hits"].add("dark" if "dark" in result.message else "bright")
            elif check == "people" and result.status is Status.FAIL and (result.value or 0) < 2:
                row["hits"].add("no person")  # not a second person
            elif check == "people" and result.status in (Status.WARN, Status.FAIL):
                row["hits"].add(check)  # "someone else seems to be there" is the people check's warning
            elif hit:
                row["hits"].add(check)
    scores = {}
    for label, check in CHECK_OF.items():
        key = label if check == "exposure" else check
        scored = [r for r in rows if check not in COLOUR_CHECKS or not OWNED_BY_OTHERS & r["labels"]]
        labels = [bool(label in r["labels"] or (check == "facing" and {"sideways", "back_view"} & r["labels"]))
                  for r in scored]
        hits = [key in r["hits"] for r in scored]
        tp = sum(a and b for a, b in zip(labels, hits))
        sources: dict[str, int] = {}
        for row, is_label, hit in zip(scored, labels, hits):
            if hit and not is_label:
                source = ",".join(sorted(row["labels"])) or "clean"
                sources[source] = sources.get(source, 0) + 1
        scores[label] = (len(scored), sum(labels), tp / max(sum(hits), 1), tp / max(sum(labels), 1), sources)
    return scores


def calibrate(rows: list, current):
    def column(name: str) -> np.ndarray:
        return np.array([r["features"].get(name, np.nan) if r["features"].get(name) is not None else np.nan
                         for r in rows], dtype=float)

    def labelled(label: str) -> np.ndarray:
        return np.array([label in r["labels"] for r in rows])

    def owned_elsewhere() -> np.ndarray:
        return np.array([bool(OWNED_BY_OTHERS & r["labels"]) for r in rows])

    sharp = best_threshold(np.log(column("sharpness") + 1e-6), labelled("blur"))
    dark = best_threshold(column("highlights"), labelled("dark"))
    bright = best_threshold(column("clipped"), labelled("bright"), low_is_bad=False)
    keep = ~owned_elsewhere()
    contrast = best_threshold(column("contrast")[keep], labelled("low_contrast")[keep], low_is_bad=False)
    outfit = best_threshold(column("outfit")[keep], labelled("monochrome")[keep])
    face = best_threshold(column("face_score")[keep], labelled("back_view")[keep])
    turned = best_threshold(column("shoulder_ratio"), labelled("sideways"))
    gap = best_threshold(column("ankle_gap"), labelled("crossed_legs"))
    crossing = best_threshold(column("overshoot"), labelled("crossed_arms"), low_is_bad=False)
    others = best_threshold(column("others"), labelled("second_person"), low_is_bad=False)
    # warn a little before fail, on the healthy side
    fitted = replace(
        current,
        sharpness_fail=float(np.exp(sharp)), sharpness_warn=float(np.exp(sharp + 0.25)),
        dark_fail=dark, dark_warn=dark + 15, bright_fail=bright, bright_warn=bright / 2,
        contrast_fail=contrast, contrast_warn=contrast * 0.75, outfit_contrast_warn=outfit, crossing_margin=crossing,
        shoulder_ratio_fail=turned, shoulder_ratio_warn=turned + 0.05, ankle_gap_fail=gap, face_score_min=face,
        others_warn=others,
        warn_only=(),
    )
    # a check may refuse a photo only if it is right often enough when it fails
    weak = sorted({CHECK_OF[label] for label, (_, _, precision, _, _) in score(rows, fitted).items()
                   if precision < MIN_PRECISION_TO_REFUSE} - ALWAYS_REFUSE)
    return replace(fitted, warn_only=tuple(weak))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-defect", type=int, default=25, help="evaluation photos per defect (12 defects)")
    parser.add_argument("--calibration-per-defect", type=int, default=10)
    parser.add_argument("--calibrate", action="store_true", help="re-fit the thresholds and write guidance.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("outputs/real_photos_cache"),
                        help="where the real review photos from Debian packages are kept")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cv2.setNumThreads(args.threads)
    from fitroom import imaging
    from fitroom.demo import sample_path
    from fitroom.preprocess.pipeline import Preprocessor
    from fitroom.preprocess.quality import Status, Thresholds, check_photo

    astronaut = imaging.load_image(sample_path("astronaut.jpg"))
    with Preprocessor(allow_several_people=True) as preprocess:
        mask = preprocess.observe(astronaut)[0].mask
        thresholds = Thresholds.load()
        if args.calibrate:
            rows = observe_all(preprocess, labelled_set(1001, args.calibration_per_defect, 1.15, astronaut, mask))
            thresholds = calibrate(rows, thresholds)
            thresholds.save(THRESHOLDS_FILE, f"Photo-check thresholds, fitted by `python benchmarks/guidance.py "
                                             f"--calibrate` on {len(rows)} labelled photos (seed 1001).")
            print(f"calibrated on {len(rows)} photos; wrote {THRESHOLDS_FILE}")
        rows = observe_all(preprocess, labelled_set(1, args.per_defect, 1.0, astronaut, mask))
        real_rows = observe_all(preprocess, real_labelled_set(args.cache))

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads")
    print(f"evaluation set: {len(rows)} photos ({args.per_defect} per synthetic defect + 8 astronaut variants)")
    print(f"checks that only warn (precision under {MIN_PRECISION_TO_REFUSE} on the calibration set): "
          f"{', '.join(thresholds.warn_only) or 'none'}")
    print_scores(rows, thresholds)
    print(f"\nreal photos (hand-labelled, never used for calibration): {len(real_rows)} photos "
          f"({len(real_rows) // 4} photos, each untouched, darkened, brightened, blurred)")
    print_scores(real_rows, thresholds)
    clean = [r for r in rows if not r["labels"]]
    clean_pass = sum(check_photo(r["observation"], "upper", "front", thresholds).status is Status.PASS for r in clean)
    print(f"\nclean synthetic photos passing every check (upper garment): {clean_pass}/{len(clean)}")
    seconds = [r["seconds"] for r in rows]
    print(f"seconds per photo (analysis + checks, median / mean): {np.median(seconds):.3f} / {np.mean(seconds):.3f}")


if __name__ == "__main__":
    main()
