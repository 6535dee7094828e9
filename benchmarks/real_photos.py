"""Benchmark and review sheet: the try-on on real photos, judged by models that are not the try-on's own.

For every photo of the review set (:mod:`fitroom.data.real_photos`; the Debian ``opencv-doc`` photos are
downloaded into ``--cache`` first) and each of three front-view garments (the two bundled product photos and a
rendered one of another colour), the try-on (``--engine``, default `warp`) runs as ``fitroom tryon --force``
does (checks reported, not obeyed; the most prominent person is dressed when others are in the frame), and
:class:`fitroom.metrics.photo_judge.PhotoJudge` measures the face's mean change, the share of head pixels
changed, the background's change and how far the torso's colour moved towards the garment's. The review's
criteria are printed beside each figure: face <= 1 grey level, head <= 1 %, background <= 0.5, torso >= 0.5.

The photo checks are scored too, against the set's hand labels: the people check, and the exposure and facing
checks on photos not labelled with those defects (any warning there is a false alarm). ``benchmarks/guidance.py``
scores every check on these photos and on darkened, brightened and blurred copies of them.

With ``--pose-checkpoint`` each result is also turned to the back view (``NAME__GARMENT__back.png``), to look at.

Run: ``python benchmarks/real_photos.py [--sheet docs/real_review_sheet.jpg] [--threads 2] [--engine diffusion
--checkpoint DIR --engine-options '{"steps": 25, "scheduler": "ddim"}'] [--pose-checkpoint DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

CRITERIA = {"face_change": 1.0, "head_changed": 0.01, "background_change": 0.5}
TORSO_CRITERION = 0.5


def garments(size: tuple[int, int] = (512, 384)) -> list[tuple[str, np.ndarray]]:
    """The bundled front product photos and one rendered garment of another colour."""
    from fitroom import imaging
    from fitroom.data.synthetic import render_garment, sample_spec
    from fitroom.demo import sample_path
    from fitroom.labels import View

    found = [(name, imaging.load_image(sample_path(f"{name}.jpg")))
             for name in ("garment_tee_front", "garment_long_sleeve_front")]
    image, _ = render_garment(sample_spec(3, 2).garment, View.FRONT, size)
    found.append(("rendered_seed3_2", image))
    return found


def passes(judgement: dict) -> bool:
    ok = all(judgement[k] is None or judgement[k] <= v for k, v in CRITERIA.items())
    return ok and judgement["torso_moved"] is not None and judgement["torso_moved"] >= TORSO_CRITERION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("outputs/real_photos_cache"))
    parser.add_argument("--out", type=Path, default=Path("outputs/real_review"))
    parser.add_argument("--sheet", type=Path, default=None, help="also write the review sheet here (JPEG)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", default="warp", help="the try-on engine (default warp)")
    parser.add_argument("--checkpoint", default=None, help="its model folder (a learned engine)")
    parser.add_argument("--engine-options", default="{}", help='its options as JSON, e.g. \'{"steps": 25}\'')
    parser.add_argument("--pose-checkpoint", default=None,
                        help="a pose-transfer model folder: each try-on is also turned to the back view")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    from fitroom import imaging
    from fitroom.data.real_photos import fetch_debian_photos, load_review_set
    from fitroom.engines import create_engine
    from fitroom.metrics.photo_judge import PhotoJudge
    from fitroom.preprocess.pipeline import Preprocessor
    from fitroom.preprocess.quality import Status, check_photo

    fetch_debian_photos(args.cache)
    photos = load_review_set(args.cache)
    products = garments()
    args.out.mkdir(parents=True, exist_ok=True)
    engine = create_engine(args.engine, checkpoint=args.checkpoint, progress=False, **json.loads(args.engine_options))
    turn = None
    if args.pose_checkpoint:
        from fitroom.engines.pose_transfer import PoseTransfer, drawn_dense, turn_keypoints
        from fitroom.labels import View

        pose_model = PoseTransfer(args.pose_checkpoint, progress=False,
                                  **{k: v for k, v in json.loads(args.engine_options).items() if k != "size"})

        def turn(analysis, dressed):
            """The dressed person turned to the back view (their skeleton mirrored)."""
            dense = drawn_dense(turn_keypoints(analysis.keypoints, analysis.view, View.BACK), dressed.shape[:2],
                                View.BACK)
            return pose_model(dressed, analysis.mask, dense).image
    judge = PhotoJudge()
    rows, tiles = [], []
    people_hits = Counter()
    false_alarms = {"exposure": [], "facing": []}
    with Preprocessor(allow_several_people=True) as preprocess:
        for photo, image in photos:
            start = time.perf_counter()
            observation, analysis = preprocess.observe(image, name=photo.name)
            report = check_photo(observation)
            detected = report.result("people").status is not Status.PASS
            truth = "second_person" in photo.labels
            people_hits[("t" if detected == truth else "f") + ("p" if detected else "n")] += 1
            if not photo.labels & {"dark", "bright", "sideways", "back_view"}:
                for name in false_alarms:
                    if report.result(name).status in (Status.WARN, Status.FAIL):
                        false_alarms[name].append(f"{photo.name}: {report.result(name).message}")
            print(f"{photo.name}: checks {report.status.value} "
                  f"({', '.join(f'{r.name} {r.status.value}' for r in report.results if r.status.value != 'pass')})"
                  f"; {observation.people} people")
            row_tiles = [image]
            for garment_name, garment in products:
                if analysis is None:
                    rows.append({"photo": photo.name, "garment": garment_name, "refused": True})
                    print(f"  {garment_name}: refused (no usable person)")
                    row_tiles.append(np.full_like(image, 255))
                    continue
                mask, category = preprocess.analyse_garment(garment, "upper")
                inputs = preprocess.inputs(analysis, image, garment, mask, category, name=photo.name)
                result = engine(inputs).image
                imaging.save_image(args.out / f"{photo.name}__{garment_name}.png", result)
                if turn is not None:
                    imaging.save_image(args.out / f"{photo.name}__{garment_name}__back.png", turn(analysis, result))
                verdict = judge.judge(image, result, garment, mask).to_dict()
                verdict.update(photo=photo.name, garment=garment_name, refused=False, passes=passes(verdict))
                rows.append(verdict)
                row_tiles.append(result)
                print(f"  {garment_name}: face {_fmt(verdict['face_change'])} head "
                      f"{_fmt(verdict['head_changed'], pct=True)} background {verdict['background_change']:.3f} "
                      f"torso {_fmt(verdict['torso_moved'])} -> {'ok' if verdict['passes'] else 'MISSES'}")
            print(f"  ({time.perf_counter() - start:.1f} s)")
            tiles.append((photo.name, row_tiles))
    judge.close()
    judged = [r for r in rows if not r.get("refused")]
    print(f"\n{len(judged)} try-ons on {len(photos)} photos x {len(products)} garments; "
          f"{sum(r['passes'] for r in judged)} meet every criterion")
    for key in ("face_change", "head_changed", "background_change", "torso_moved"):
        values = [r[key] for r in judged if r[key] is not None]
        if values:
            print(f"  {key:18s} max {max(values):.4f}  mean {np.mean(values):.4f}  min {min(values):.4f}")
    tp, fp, fn = people_hits["tp"], people_hits["fp"], people_hits["fn"]
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    print(f"people check on real photos: precision {precision:.2f}, recall {recall:.2f} "
          f"(tp {tp}, fp {fp}, fn {fn})")
    for name, alarms in false_alarms.items():
        print(f"{name} false alarms on good real photos: {len(alarms)}" + "".join(f"\n  {a}" for a in alarms))
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    if args.sheet:
        write_sheet(tiles, [name for name, _ in products], args.sheet)
        print(f"review sheet: {args.sheet}")


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if pct else f"{value:.3f}"


def write_sheet(tiles: list[tuple[str, list[np.ndarray]]], garment_names: list[str], path: Path,
                cell: tuple[int, int] = (240, 200)) -> None:
    """One row per photo: the photo, then its try-on in each garment, each letterboxed into ``cell``."""
    import cv2

    from fitroom import imaging

    height, width = cell
    sheet = np.full((height * len(tiles), width * (1 + len(garment_names)), 3), 255, np.uint8)
    for row, (_, images) in enumerate(tiles):
        for column, image in enumerate(images):
            scale = min(height / image.shape[0], width / image.shape[1])
            small = cv2.resize(image, (max(int(image.shape[1] * scale), 1), max(int(image.shape[0] * scale), 1)),
                               interpolation=cv2.INTER_AREA)
            y = row * height + (height - small.shape[0]) // 2
            x = column * width + (width - small.shape[1]) // 2
            sheet[y:y + small.shape[0], x:x + small.shape[1]] = small
    path.parent.mkdir(parents=True, exist_ok=True)
    imaging.save_image(path, sheet, quality=88)


if __name__ == "__main__":
    main()
