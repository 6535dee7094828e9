"""``fitroom eval``: one command from an engine and a dataset to a report with its protocol written beside it.

For every pair of the split (paired: the person's own garment; unpaired: the partner listed in the pairs file) the
engine's result is written as a lossless PNG under ``OUT/images/`` (a result already there is reused, so a killed
evaluation resumes where it stopped) and scored against the truth: the person's photo (paired) or, on synthetic
data, the renderer's picture of the person wearing the other garment (unpaired). Scores per sample: RGB SSIM,
HR-VITON's greyscale SSIM, PSNR, LPIPS (AlexNet-lin) at the evaluation resolution. FID and KID compare all results
with the split's real person photos. Every figure is given overall and per view (front/back), and, when the
data holds several garment categories, per category and per category and view ("lower back"). The data may be in
the VITON-HD layout or in DressCode's (:class:`~fitroom.data.dresscode.DressCodeSplit`).

Written to ``OUT``: ``results.json`` (figures and protocol), ``results.md`` (the same as tables),
``per_sample.csv`` (for finding failures), ``grid.png`` (garment, person, result, truth for the first samples).
A metric whose backbone weights are missing is reported as unavailable with the reason, never computed on random
features and never left out silently.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.metadata
import inspect
import json
import logging
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.layout import DatasetError, VitonLayout
from fitroom.data.shards import check_shard, finished_shards
from fitroom.files import written_at_once
from fitroom.weights import sha256

logger = logging.getLogger(__name__)

PER_SAMPLE_METRICS = ("ssim", "ssim_gray_hrviton", "psnr", "lpips")
GRID_SAMPLES = 8


@dataclass
class EvalConfig:
    engine: str
    data: str
    out: str
    pairs: str = "paired"  # "paired" or "unpaired"
    checkpoint: str = ""
    split: str = "test"
    limit: int = 0  # evaluate the first N pairs only (0: all)
    seed: int = 0  # KID's subset sampling
    device: str = "auto"  # where a learned engine runs (fitroom.devices.resolve_device)
    options: dict = dataclasses.field(default_factory=dict)  # the engine's own options (e.g. diffusion steps)
    shard: tuple[int, int] = (0, 1)  # (I, N): the pairs whose position is I modulo N, kept for a merge
    merge: bool = False  # join the finished shards' samples and features into the results

    def __post_init__(self) -> None:
        if self.pairs not in ("paired", "unpaired"):
            raise ValueError(f"pairs must be paired or unpaired, got {self.pairs!r}")
        self.shard = check_shard(self.shard)
        if self.merge and self.shard[1] > 1:
            raise ValueError("merge joins the shards once they are all done: give it without a shard")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("fitroom", "torch", "torchmetrics", "torch-fidelity", "lpips", "kornia"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def checkpoint_digest(path: str | Path) -> str:
    """The sha256 of a checkpoint's content: of the file, or of every file of a folder (their relative paths and
    bytes, in sorted order). Results made with other weights are never reused."""
    path = Path(path)
    if path.is_file():
        return sha256(path)
    if not path.is_dir():
        return ""  # the engine says what is missing
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


def engine_settings(engine) -> dict:
    """An engine's plain settings (numbers, strings, flags its constructor takes and it keeps under the same
    names), which change its results as much as its weights do."""
    try:
        names = inspect.signature(type(engine).__init__).parameters
    except (TypeError, ValueError):
        return {}
    return {name: getattr(engine, name) for name in sorted(names)
            if isinstance(getattr(engine, name, None), (bool, int, float, str))}


def _tensor(image: np.ndarray) -> torch.Tensor:
    """``(1, 3, H, W)`` in [0, 1] from an RGB uint8 image."""
    return imaging.image_to_tensor(image)[None] * 0.5 + 0.5


class _Metrics:
    """The metric objects, or the reason each is unavailable."""

    def __init__(self) -> None:
        from fitroom.metrics import LPIPS, MetricUnavailable
        from fitroom.metrics.perceptual import InceptionFeatures
        from fitroom.weights import sha256

        self.unavailable: dict[str, str] = {}
        self.backbones: dict[str, dict] = {}
        self.lpips = self.extractor = None
        try:
            self.lpips = LPIPS()
            self.backbones["lpips"] = {"network": "AlexNet-lin v0.1 (lpips package)", "file": str(self.lpips.path),
                                       "sha256": sha256(self.lpips.path)}
        except MetricUnavailable as error:
            self.unavailable["lpips"] = str(error)
        try:
            self.extractor = InceptionFeatures()
            self.backbones["fid_kid"] = {"network": "Inception-v3 pool3, 2048-d (torch-fidelity, TF 2015-12-05)",
                                         "file": str(self.extractor.path), "sha256": sha256(self.extractor.path)}
        except MetricUnavailable as error:
            self.unavailable["fid"] = self.unavailable["kid_x1000"] = str(error)


def _save_png(image: np.ndarray, path: Path) -> None:
    # a killed run never leaves a half-written result that a resumed run would score
    with written_at_once(path, keep_suffix=True) as temporary:
        imaging.save_image(temporary, image)


def evaluate(config: EvalConfig, engine=None, progress: bool = True) -> dict:
    """Run the evaluation ``config`` describes (``engine`` overrides ``config.engine``); returns the results."""
    from fitroom.engines import create_engine
    from fitroom.fitting import try_on
    from fitroom.metrics import psnr, ssim_gray_hrviton, ssim_rgb

    from fitroom.data.dresscode import DressCodeSplit, is_dresscode

    layout = (DressCodeSplit(config.data, config.split, config.pairs) if is_dresscode(config.data)
              else VitonLayout(config.data, config.split))
    listed = layout.pairs()
    if config.limit:
        listed = listed[:config.limit]
    if not listed:
        raise DatasetError(layout.directory, "the pairs file lists no samples")
    pairs = [(person, person if config.pairs == "paired" else partner) for person, partner in listed]
    if engine is None:
        engine = create_engine(config.engine, checkpoint=config.checkpoint, device=config.device, progress=False,
                               **config.options)
    out = Path(config.out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    # results already written are reused only for the same engine and settings, checkpoint weights, data and pairing
    weights = checkpoint_digest(config.checkpoint) if config.checkpoint else ""
    identity = {"engine": config.engine, "settings": engine_settings(engine), "checkpoint": config.checkpoint,
                "checkpoint_sha256": weights, "data": str(Path(config.data).resolve()), "split": config.split,
                "pairs": config.pairs}
    marker = images / "made_by.json"
    if marker.is_file():
        previous = json.loads(marker.read_text())
        same_run = {k: v for k, v in previous.items() if k not in ("checkpoint_sha256", "settings")} == \
            {k: v for k, v in identity.items() if k not in ("checkpoint_sha256", "settings")}
        if not same_run:
            raise ValueError(f"{images} holds results of another evaluation ({marker.read_text().strip()}); give "
                             f"another --out")
        if previous.get("checkpoint_sha256") != weights or previous.get("settings") != identity["settings"]:
            stale = list(images.glob("*__*.png"))
            logger.warning("the checkpoint's weights or the engine's settings changed since the %d results in %s "
                           "were made: they are made again", len(stale), images)
            for path in stale:
                path.unlink()
    marker.write_text(json.dumps(identity) + "\n")
    metrics = _Metrics()
    if config.merge:
        rows, fake, real, reused = _load_shards(out)
        return _finish(config, layout, rows, fake, real, reused, metrics, identity, weights)
    index, count = config.shard
    fake: dict[int, torch.Tensor] = {}  # Inception features by pair position
    real: dict[str, tuple[torch.Tensor, str, str]] = {}  # by person: features, view, category
    rows: list[dict] = []
    reused = 0
    for position, (person, cloth) in tqdm(list(enumerate(pairs))[index::count],
                                          desc=f"evaluating {config.engine} ({config.pairs})", unit="pair",
                                          disable=not progress):
        view = layout.view(person).value
        path = images / f"{person}__{cloth}.png"
        seconds = float("nan")
        inputs = layout.read(person, cloth)
        category = inputs.category.value
        if path.is_file():
            result = imaging.load_image(path)
            reused += 1
        else:
            start = time.perf_counter()
            try:
                result = try_on(engine, inputs).image
            except (ValueError, RuntimeError) as error:  # one sample the engine cannot handle: listed, not fatal
                logger.warning("%s / %s: %s", person, cloth, error)
                rows.append({"person": person, "garment": cloth, "view": view, "category": category,
                             "seconds": float("nan"), "error": str(error), "position": position})
                continue
            seconds = time.perf_counter() - start
            _save_png(result, path)
        truth = inputs.person if config.pairs == "paired" else layout.unpaired_ground_truth(person, cloth)
        row: dict = {"person": person, "garment": cloth, "view": view, "category": category, "seconds": seconds,
                     "position": position, "resolution": result.shape[:2]}
        generated = _tensor(result)
        if truth is not None:
            target = _tensor(imaging.resize(truth, result.shape[:2], "image"))
            row["ssim"] = float(ssim_rgb(generated, target)[0])
            row["ssim_gray_hrviton"] = float(ssim_gray_hrviton(generated, target)[0])
            row["psnr"] = float(psnr(generated, target)[0])
            if metrics.lpips is not None:
                row["lpips"] = float(metrics.lpips(generated, target)[0])
        if metrics.extractor is not None:
            fake[position] = metrics.extractor(generated).cpu()
        rows.append(row)
    if metrics.extractor is not None:  # the split's real photos, every person once (a shard: its share of them)
        for name in tqdm(sorted({p for p, _ in listed})[index::count], desc="real photos", unit="photo",
                         disable=not progress):
            sample = layout.read(name)
            real[name] = (metrics.extractor(_tensor(sample.person)).cpu(), layout.view(name).value,
                          sample.category.value)
    if count > 1:
        shards = out / "shards"
        shards.mkdir(parents=True, exist_ok=True)
        with written_at_once(shards / f"{index}-of-{count}.pt") as temporary:
            torch.save({"rows": rows, "fake": fake, "real": real, "reused": reused}, temporary)
        logger.info("shard %d of %d: %d pairs evaluated, kept in %s; run with --merge once every shard is done",
                    index, count, len(rows), shards)
        return {"shard": [index, count], "samples": len(rows)}
    return _finish(config, layout, rows, fake, real, reused, metrics, identity, weights)


def _load_shards(out: Path) -> tuple[list[dict], dict, dict, int]:
    """Every shard's rows, generated and real features and reused count (``OUT/shards/I-of-N.pt``)."""
    files = finished_shards(out / "shards", "*-of-*.pt", "shard files")
    rows: list[dict] = []
    fake: dict = {}
    real: dict = {}
    reused = 0
    for file in files:
        part = torch.load(file, map_location="cpu", weights_only=True)
        rows += part["rows"]
        fake.update(part["fake"])
        real.update(part["real"])
        reused += part["reused"]
    return rows, fake, real, reused


def _finish(config: EvalConfig, layout, rows: list[dict], fake: dict, real: dict, reused: int, metrics,
            identity: dict, weights: str) -> dict:
    """The results of a whole evaluation from every pair's row and features (one run's or the shards' merged):
    FID and KID over the features in the pairs' order, then the real photos' by name, as one run adds them."""
    from fitroom.metrics import FeatureDistances

    out = Path(config.out)
    rows = sorted(rows, key=lambda r: r["position"])
    distances = FeatureDistances(extractor=metrics.extractor, seed=config.seed) if metrics.extractor else None
    per_view_distances: dict[str, object] = {}
    if distances is not None:
        for row in rows:
            if row["position"] not in fake:
                continue
            features = fake[row["position"]]
            distances.add_features(features, real=False)
            view, category = row["view"], row["category"]
            for group in (view, category, f"{category} {view}"):
                per_view_distances.setdefault(group, FeatureDistances(extractor=metrics.extractor,
                                                                      seed=config.seed))
                per_view_distances[group].add_features(features, real=False)
        for name in sorted(real):
            features, view, category = real[name]
            distances.add_features(features, real=True)
            for group in (view, category, f"{category} {view}"):
                if group in per_view_distances:
                    per_view_distances[group].add_features(features, real=True)
    real_count = len(real)
    # the resolution of the last result, and the grid from the first results written (read back: a merge has
    # only the files)
    scored = [row for row in rows if "error" not in row]
    resolution = tuple(scored[-1]["resolution"]) if scored else (0, 0)
    grid: list[list[np.ndarray]] = []
    for row in scored[:GRID_SAMPLES]:
        result = imaging.load_image(out / "images" / f"{row['person']}__{row['garment']}.png")
        inputs = layout.read(row["person"], row["garment"])
        truth = inputs.person if config.pairs == "paired" else \
            layout.unpaired_ground_truth(row["person"], row["garment"])
        grid.append([inputs.garment, inputs.person, result, truth if truth is not None else result * 0])
    rows = [{k: v for k, v in row.items() if k not in ("position", "resolution")} for row in rows]

    results = _summarise(config, rows, metrics, distances, per_view_distances)
    results["protocol"] = {
        "engine": config.engine, "engine_settings": identity["settings"], "checkpoint": config.checkpoint,
        "checkpoint_sha256": weights or None, "data": str(Path(config.data).resolve()),
        "split": config.split, "pairs": config.pairs, "samples": len(rows), "results_reused": reused,
        "real_photos_for_fid": real_count,
        "resolution": f"{resolution[0]}x{resolution[1]}",
        "image_format": "PNG (lossless), 8-bit RGB, scored as written",
        "truth": "the person's photo" if config.pairs == "paired" else "the renderer's unpaired ground truth "
                                                                          "(synthetic data only)",
        "ssim": "RGB, 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1, mean over the valid area "
                "(= scikit-image structural_similarity with gaussian_weights, use_sample_covariance=False)",
        "ssim_gray_hrviton": "the same SSIM on 8-bit BT.601 luma, data range 255 (HR-VITON's evaluate.py)",
        "psnr": "dB, data range 1",
        "lpips": "AlexNet-lin v0.1 on [-1, 1] images at the evaluation resolution",
        "fid_kid": "Inception-v3 pool features of 8-bit images resized to 299x299 inside the network; KID: cubic "
                   "polynomial kernel, unbiased MMD^2, mean over 100 subsets, reported x1000",
        "backbones": metrics.backbones, "versions": _versions(), "config": asdict(config),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results) + "\n")
    with open(out / "per_sample.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["person", "garment", "view", "category", *PER_SAMPLE_METRICS,
                                                    "seconds", "error"])
        writer.writeheader()
        writer.writerows(rows)
    if grid:
        imaging.save_image(out / "grid.png", _grid(grid))
    return results


def _grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    height, width = rows[0][1].shape[:2]
    return np.concatenate([np.concatenate([imaging.resize(i, (height, width), "image") for i in row], 1)
                           for row in rows], 0)


def _summarise(config: EvalConfig, rows: list[dict], metrics: _Metrics, distances, per_view: dict) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    several = len({row["category"] for row in rows}) > 1
    for row in rows:
        groups["all"].append(row)
        groups[row["view"]].append(row)
    if several:  # by garment category, and by category and view
        for row in rows:
            groups[row["category"]].append(row)
            groups[f"{row['category']} {row['view']}"].append(row)
    failed = [r for r in rows if "error" in r]
    summary: dict[str, dict] = {}
    for group, members in groups.items():
        entry: dict = {"samples": len(members), "failed": sum("error" in r for r in members)}
        for name in PER_SAMPLE_METRICS:
            values = [r[name] for r in members if name in r]
            if values:
                entry[name] = float(np.mean(values))
            elif name in metrics.unavailable:
                entry[name] = {"available": False, "reason": metrics.unavailable[name]}
            elif all("error" in r for r in members):
                entry[name] = {"available": False, "reason": "the engine failed on every sample"}
            else:
                entry[name] = {"available": False, "reason": "no ground truth for these pairs"}
        source = distances if group == "all" else per_view.get(group)
        if source is None:
            reason = metrics.unavailable.get("fid", "no samples")
            entry["fid"] = entry["kid_x1000"] = {"available": False, "reason": reason}
        else:
            try:
                computed = source.compute()
                entry.update({k: computed[k] for k in ("fid", "kid_x1000", "kid_std_x1000", "kid_subset_size")})
            except ValueError as error:
                entry["fid"] = entry["kid_x1000"] = {"available": False, "reason": str(error)}
        timed = [r["seconds"] for r in members if np.isfinite(r["seconds"])]
        entry["seconds_per_image"] = float(np.median(timed)) if timed else None
        summary[group] = entry
    return {"engine": config.engine, "pairs": config.pairs, "summary": summary,
            "failed_samples": [{"person": r["person"], "garment": r["garment"], "error": r["error"]} for r in failed]}


def _cell(value) -> str:
    if isinstance(value, dict):
        return "n/a"
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown(results: dict) -> str:
    """The results as Markdown tables, the protocol and the reasons for unavailable metrics."""
    columns = ("samples", "failed", "ssim", "ssim_gray_hrviton", "psnr", "lpips", "fid", "kid_x1000")
    lines = [f"# {results['engine']} ({results['pairs']})", "",
             "| group | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    reasons = {}
    for group, entry in results["summary"].items():
        lines.append(f"| {group} | " + " | ".join(_cell(entry.get(c)) for c in columns) + " |")
        reasons.update({c: entry[c]["reason"] for c in columns if isinstance(entry.get(c), dict)})
    if reasons:
        lines += ["", "Not available:"] + [f"- {name}: {reason}" for name, reason in reasons.items()]
    protocol = results.get("protocol", {})
    if protocol:
        lines += ["", "## Protocol"] + [f"- {k}: {v}" for k, v in protocol.items()
                                        if k not in ("config", "versions", "backbones")]
        lines.append(f"- versions: {', '.join(f'{k} {v}' for k, v in protocol['versions'].items())}")
        lines.append(f"- backbones: {json.dumps(protocol['backbones']) if protocol['backbones'] else 'none available'}")
    return "\n".join(lines)
