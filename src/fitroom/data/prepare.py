"""``fitroom prepare``: folders of raw photos -> a dataset in the VITON-HD layout, ready to train or evaluate on.

Each person photo gets every per-person modality (pose JSON and drawing, parse, agnostic parse, dense map,
agnostic person); each product photo its mask. Work is resumable (a photo whose outputs all exist is skipped),
spread over worker processes with a progress bar, and reported per file in ``prepare_report.csv``: a photo that
fails (no person, two people, corrupt, ...) is listed with the reason and never stops the batch.

Across machines: ``--shard I/N`` prepares the photos whose position (persons then garments, by name) is I modulo
N, writing only their files and its own report (``prepare_report.I-of-N.csv``); once every shard is done,
``--merge`` (the same folders, no ``--shard``) joins the reports into ``prepare_report.csv`` and writes the pair
list and views from them, as one unsharded run would have.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from fitroom import imaging
from fitroom.data.layout import (
    FOLDERS, PAIRS_FILE, VIEWS_FILE, file_name, read_views, write_keypoints, write_pairs,
)
from fitroom.data.shards import check_shard, finished_shards
from fitroom.errors import InputError
from fitroom.labels import CIHP_PALETTE, GarmentCategory, View

logger = logging.getLogger(__name__)

REPORT = "prepare_report.csv"
PERSON_ROLES = ("image", "parse", "parse_agnostic", "openpose_json", "openpose_img", "dense", "agnostic")
GARMENT_ROLES = ("cloth", "cloth_mask")


def output_name(path: Path) -> str:
    """The dataset name of a photo: its stem with unsafe characters replaced, as ``.jpg``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem) + ".jpg"


def output_names(paths: list[Path]) -> dict[Path, str]:
    """A distinct dataset name for every photo of a folder: :func:`output_name`, and where two photos would share it
    (``me.png`` and ``me.jpg``, or ``a b.jpg`` and ``a_b.jpg``) each gets its own extension too (``me_png.jpg``,
    ``me_jpg.jpg``), then a number if that still clashes. Names are compared ignoring case, as some file systems do."""
    plain = {path: output_name(path) for path in paths}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name.lower()] = counts.get(name.lower(), 0) + 1
    names: dict[Path, str] = {}
    taken: set[str] = {n.lower() for n in plain.values() if counts[n.lower()] == 1}
    for path in paths:
        name = plain[path]
        if counts[name.lower()] > 1:
            stem = name.removesuffix(".jpg") + "_" + re.sub(r"[^A-Za-z0-9]", "", path.suffix)
            name, number = stem + ".jpg", 2
            while name.lower() in taken:
                name, number = f"{stem}_{number}.jpg", number + 1
            taken.add(name.lower())
            logger.info("%s is written as %s (another photo of the folder has the same name)", path.name, name)
        names[path] = name
    return names


@dataclass(frozen=True)
class PrepareConfig:
    persons: Path
    garments: Path
    out: Path
    split: str = "test"
    view: View | None = None  # None: each photo's view is detected
    category: GarmentCategory | None = None
    pairs: Path | None = None
    workers: int = 1
    parser: str = "builtin"
    dense: str = "builtin"
    dense_dir: Path | None = None
    shard: tuple[int, int] = (0, 1)  # (I, N): the photos whose position is I modulo N

    def __post_init__(self) -> None:
        object.__setattr__(self, "shard", check_shard(self.shard))
        if self.view is not None:
            object.__setattr__(self, "view", View(self.view))
        if self.category is not None:
            object.__setattr__(self, "category", GarmentCategory(self.category))
        if self.split not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {self.split!r}")


_worker: dict = {}


def _init(config: PrepareConfig) -> None:
    import cv2

    cv2.setNumThreads(1)
    from fitroom.preprocess.pipeline import Preprocessor

    options = {"directory": config.dense_dir} if config.dense == "file" else {}
    _worker["pre"] = Preprocessor(parser=config.parser, dense=config.dense, dense_options=options)
    _worker["config"] = config


def _row(kind: str, path: Path, name: str, status: str, reason: str = "", start: float | None = None) -> dict:
    seconds = time.perf_counter() - start if start is not None else 0.0
    return {"kind": kind, "file": str(path), "name": name, "status": status, "reason": reason, "seconds": seconds}


def _process(kind: str, path: Path, name: str, work) -> dict:
    """Skip a finished photo; else load it and run ``work(image, targets, name) -> reason``, reporting failures."""
    config: PrepareConfig = _worker["config"]
    targets = (person_paths if kind == "person" else garment_paths)(config.out, config.split, name)
    if all(p.is_file() for p in targets.values()):
        return _row(kind, path, name, "skipped", "already done")
    start = time.perf_counter()
    try:
        reason = work(imaging.load_image(path), targets, name)
    except (ValueError, OSError) as error:  # ImageError, PhotoError and friends are ValueErrors
        return _row(kind, path, name, "failed", str(error).removeprefix(f"{path}: "), start)
    return _row(kind, path, name, "ok", reason, start)


def person_paths(out: Path, split: str, name: str) -> dict[str, Path]:
    """Where each per-person file of sample ``name`` goes in a dataset at ``out``."""
    return {role: out / split / FOLDERS[role][0] / file_name(role, name) for role in PERSON_ROLES}


def garment_paths(out: Path, split: str, name: str) -> dict[str, Path]:
    return {role: out / split / FOLDERS[role][0] / file_name(role, name) for role in GARMENT_ROLES}


def write_person(preprocessor, image, targets: dict[str, Path], view: View | None, name: str) -> View:
    """Analyse a person photo and write every per-person modality (the photo itself last); returns the view it was
    analysed as (``view``, or the one detected when None)."""
    from fitroom.viz import draw_keypoints

    analysis = preprocessor.analyse_person(image, view, name)
    imaging.save_label_map(targets["parse"], analysis.parse, CIHP_PALETTE)
    imaging.save_label_map(targets["parse_agnostic"], analysis.parse_agnostic, CIHP_PALETTE)
    write_keypoints(targets["openpose_json"], analysis.keypoints)
    imaging.save_image(targets["openpose_img"], draw_keypoints(image.shape[:2], analysis.keypoints))
    imaging.save_image(targets["dense"], analysis.dense)
    imaging.save_image(targets["agnostic"], analysis.agnostic)
    # the image is written last, so a killed run leaves the photo unfinished and it is redone
    imaging.save_image(targets["image"], image)
    return analysis.view


def write_garment(preprocessor, image, targets: dict[str, Path], category: GarmentCategory | None) -> GarmentCategory:
    """Segment a product photo and write it with its mask."""
    mask, category = preprocessor.analyse_garment(image, category)
    imaging.save_image(targets["cloth_mask"], mask)
    imaging.save_image(targets["cloth"], image)
    return category


def _write_person(image, targets: dict[str, Path], name: str) -> str:
    return write_person(_worker["pre"], image, targets, _worker["config"].view, name).value


def _write_garment(image, targets: dict[str, Path], name: str) -> str:
    return write_garment(_worker["pre"], image, targets, _worker["config"].category).value


def _do(task: tuple[str, Path, str]) -> dict:
    kind, path, name = task
    return _process(kind, path, name, _write_person if kind == "person" else _write_garment)


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"{directory} is not a folder")
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _listed_pairs(path: Path, person_name: dict[Path, str], garment_name: dict[Path, str]) -> list[tuple[str, str]]:
    """The pairs of a ``person garment`` file, by the photos' file names, as dataset names."""
    # a photo's file name, or its name in the dataset
    persons = {**{n: n for n in person_name.values()}, **{p.name: n for p, n in person_name.items()}}
    garments = {**{n: n for n in garment_name.values()}, **{g.name: n for g, n in garment_name.items()}}
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise InputError(f"{path}, line {number}: a pair is 'PERSON GARMENT' (two file names), got {line!r}")
        person, garment = fields
        if person not in persons or garment not in garments:
            logger.warning("%s, line %d: %s not found among the photos; the pair is left out", path, number,
                           person if person not in persons else garment)
            continue
        pairs.append((persons[person], garments[garment]))
    return pairs


def shard_report(index: int, count: int) -> str:
    return f"prepare_report.{index}-of-{count}.csv"


def prepare(config: PrepareConfig, progress: bool = True) -> list[dict]:
    """Run the preparation (or this shard of it); returns the report rows (also written to
    ``OUT/prepare_report.csv``, or the shard's report)."""
    persons, garments = _files(config.persons), _files(config.garments)
    if not persons or not garments:
        raise InputError(f"{config.persons if not persons else config.garments} holds no photos")
    person_name, garment_name = output_names(persons), output_names(garments)
    tasks = [("person", p, person_name[p]) for p in persons] + [("garment", g, garment_name[g]) for g in garments]
    index, count = config.shard
    tasks = tasks[index::count]
    rows: list[dict] = []
    bar = tqdm(total=len(tasks), desc="preparing photos", unit="photo", disable=not progress)
    if config.workers > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(config.workers, initializer=_init, initargs=(config,)) as pool:
            for row in pool.imap_unordered(_do, tasks):
                rows.append(row)
                bar.update(1)
    else:
        _init(config)
        try:
            for task in tasks:
                rows.append(_do(task))
                bar.update(1)
        finally:
            _worker.pop("pre").close()
    bar.close()
    rows.sort(key=lambda r: (r["kind"], r["file"]))
    if count > 1:
        config.out.mkdir(parents=True, exist_ok=True)
        _write_report(config.out / shard_report(index, count), rows)
        logger.info("shard %d of %d: %d photos (%d failed); run --merge once every shard is done", index, count,
                    len(rows), sum(r["status"] == "failed" for r in rows))
        return rows
    return _finish(config, rows, persons, garments, person_name, garment_name)


def merge(config: PrepareConfig) -> list[dict]:
    """Join the shards' reports (``prepare_report.I-of-N.csv``) into the dataset's report, pair list and views."""
    rows = []
    for report in finished_shards(config.out, "prepare_report.*-of-*.csv", "shard reports"):
        with report.open(newline="") as handle:
            rows += [{**row, "seconds": float(row["seconds"])} for row in csv.DictReader(handle)]
    rows.sort(key=lambda r: (r["kind"], r["file"]))
    persons, garments = _files(config.persons), _files(config.garments)
    return _finish(config, rows, persons, garments, output_names(persons), output_names(garments))


def _write_report(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["kind", "file", "name", "status", "reason", "seconds"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "seconds": f"{row['seconds']:.3f}"})


def _finish(config: PrepareConfig, rows: list[dict], persons: list[Path], garments: list[Path],
            person_name: dict[Path, str], garment_name: dict[Path, str]) -> list[dict]:
    """The pair list, the views and the report of a whole run, from every photo's report row."""
    done = {(r["kind"], r["name"]) for r in rows if r["status"] in ("ok", "skipped")}
    person_names = [person_name[p] for p in persons if ("person", person_name[p]) in done]
    garment_names = [garment_name[g] for g in garments if ("garment", garment_name[g]) in done]
    if config.pairs is not None:
        pairs = _listed_pairs(config.pairs, person_name, garment_name)
    else:
        by_stem = set(garment_names)
        pairs = [(n, n if n in by_stem else garment_names[i % len(garment_names)])
                 for i, n in enumerate(person_names)] if garment_names else []
    pairs = [(a, b) for a, b in pairs if a in person_names and b in garment_names]
    split_dir = config.out / config.split
    split_dir.mkdir(parents=True, exist_ok=True)
    # each person's view: the one given, else the one detected (a skipped photo keeps the one recorded before)
    before = read_views(split_dir / VIEWS_FILE)
    detected = {r["name"]: View(r["reason"]) for r in rows if r["kind"] == "person" and r["status"] == "ok"}
    views = {n: config.view or detected.get(n) or before.get(n, View.FRONT) for n in person_names}
    write_pairs(config.out / PAIRS_FILE.format(split=config.split), pairs)
    (split_dir / VIEWS_FILE).write_text("".join(f"{n} {views[n].value}\n" for n in person_names))
    _write_report(config.out / REPORT, rows)
    failed = [r for r in rows if r["status"] == "failed"]
    for row in failed:
        logger.warning("%s: %s", row["file"], row["reason"])
    logger.info("prepared %d persons and %d garments (%d failed, %d skipped as done); %d pairs; report: %s",
                len(person_names), len(garment_names), len(failed),
                sum(r["status"] == "skipped" for r in rows), len(pairs), config.out / REPORT)
    return rows
