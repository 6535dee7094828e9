"""``fitroom synth``: write a synthetic front/back try-on dataset in the VITON-HD layout, in parallel.

Identity ``i`` of seed ``s`` is the same whatever the count, the worker count or the order of work, so a dataset
can be grown or regenerated piece by piece. Each identity gives one sample per view (``NNNNN_00.jpg`` front,
``NNNNN_01.jpg`` back). Identities are split into train and test; test pairs each person with the garment of the
next test identity of the same category and view, and ``test/unpaired-gt/`` holds the rendered truth of that
pairing. With several garment categories (``categories``), identity ``i`` tries on one of category
``categories[i % len(categories)]``: a lower garment's identity wears it (its own fabric, :mod:`.lower`) with their
top, the product photo is the lower garment's; a dress's identity wears a dress instead of top and bottom; each
split's ``categories.txt`` names the category of every sample (fitroom's addition, as ``views.txt``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.layout import (
    CATEGORIES_FILE, UNPAIRED_GT, VIEWS_FILE, PAIRS_FILE, unpaired_name, write_sample,
)
from fitroom.data.shards import check_shard
from fitroom.data.synthetic.lower import render_lower_product, sample_lower
from fitroom.data.synthetic.render import render_garment, render_person
from fitroom.data.synthetic.spec import sample_dress, sample_spec
from fitroom.files import written_at_once
from fitroom.inputs import TryOnInputs
from fitroom.labels import DENSE_COLORMAP, RENDERED_VIEWS, GarmentCategory, View
from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic
from fitroom.viz import draw_keypoints

logger = logging.getLogger(__name__)

VIEW_SUFFIX = {View.FRONT: "00", View.BACK: "01"}


def sample_name(index: int, view: View) -> str:
    return f"{index:05d}_{VIEW_SUFFIX[View(view)]}.jpg"


@dataclass(frozen=True)
class SynthConfig:
    """What to render. ``size`` is ``(height, width)`` with a 4:3 aspect."""

    out: Path
    count: int
    size: tuple[int, int] = (1024, 768)
    views: tuple[View, ...] = (View.FRONT, View.BACK)
    seed: int = 0
    test_fraction: float = 0.25
    workers: int = 1
    categories: tuple[GarmentCategory, ...] = (GarmentCategory.UPPER,)
    shard: tuple[int, int] = (0, 1)  # (I, N): render the identities i with i % N == I (one machine's share)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shard", check_shard(self.shard))
        if not self.categories:
            raise ValueError("at least one garment category is needed")
        height, width = self.size
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if height < 64 or width < 48 or height * 3 != width * 4:
            raise ValueError(f"size must be HxW with a 4:3 aspect and at least 64x48 (e.g. 1024x768), got "
                             f"{height}x{width}")
        if not self.views:
            raise ValueError("at least one view is needed")
        if not set(self.views) <= set(RENDERED_VIEWS):
            raise ValueError(f"the renderer draws {', '.join(v.value for v in RENDERED_VIEWS)} views only")
        if not 0 <= self.test_fraction < 1:
            raise ValueError("test_fraction must be in [0, 1)")

    @property
    def test_count(self) -> int:
        """Identities in the test split: ``count * test_fraction`` rounded, and at least 2 when there are 3 or
        more identities (each test identity wears the next one's garment in the unpaired pairs, so one alone would
        have no unpaired ground truth), always leaving one for training."""
        if self.count == 1 or self.test_fraction == 0:
            return 0
        least = 2 if self.count >= 3 else 1
        return int(min(max(round(self.count * self.test_fraction), least), self.count - 1))

    def split_of(self, index: int) -> str:
        return "test" if index >= self.count - self.test_count else "train"

    def category_of(self, index: int) -> GarmentCategory:
        return GarmentCategory(self.categories[index % len(self.categories)])


def lower_spec(seed: int, index: int):
    """The lower garment identity ``index`` of seed ``seed`` tries on (its own random stream: the person, the top
    and every upper-garment dataset stay as they were)."""
    return sample_lower(np.random.default_rng([seed, index, 17]))


def dress_spec(seed: int, index: int):
    """The dress identity ``index`` of seed ``seed`` wears and tries on (its own random stream, as
    :func:`lower_spec`)."""
    return sample_dress(np.random.default_rng([seed, index, 19]))


def worn_garment(seed: int, index: int, category: GarmentCategory):
    """What identity ``index`` wears on top in a dataset of ``seed``: a dress for the dress category, else its
    sampled top."""
    return dress_spec(seed, index) if category is GarmentCategory.DRESS else sample_spec(seed, index).garment


@dataclass
class SynthReport:
    samples: dict[str, int] = field(default_factory=lambda: {"train": 0, "test": 0})
    unpaired: int = 0
    seconds: float = 0.0


def _partner(config: SynthConfig, index: int) -> int | None:
    """The test identity whose garment ``index`` wears in ``test_pairs.txt`` (the next one of the same category,
    cyclically), or None when it is the only one."""
    if config.split_of(index) != "test" or config.test_count < 2:
        return None
    first = config.count - config.test_count
    same = [i for i in range(first, config.count) if config.category_of(i) is config.category_of(index)]
    if len(same) < 2:
        return None
    return same[(same.index(index) + 1) % len(same)]


def _render_identity(args: tuple[SynthConfig, int]) -> tuple[int, int]:
    config, index = args
    spec = sample_spec(config.seed, index)
    split = config.split_of(index)
    partner = _partner(config, index)
    written = unpaired = 0
    category = config.category_of(index)
    lower = lower_spec(config.seed, index) if category is GarmentCategory.LOWER else None
    top = worn_garment(config.seed, index, category)
    for view in config.views:
        render = render_person(spec.person, top, view, config.size, lower=lower)
        garment, garment_mask = (render_lower_product(lower, view, config.size) if lower is not None else
                                 render_garment(top, view, config.size))
        inputs = TryOnInputs(
            person=render.image, garment=garment, garment_mask=garment_mask, keypoints=render.keypoints,
            parse=render.parse, dense=DENSE_COLORMAP[render.dense],
            agnostic=agnostic_person(render.image, render.parse, render.keypoints, category),
            parse_agnostic=parse_agnostic(render.parse, render.keypoints, category), view=view, category=category,
            name=sample_name(index, view), garment_name=sample_name(index, view),
        )
        write_sample(config.out, split, inputs, openpose_drawing=draw_keypoints(config.size, render.keypoints),
                     dense_render=inputs.dense)  # type: ignore[arg-type]
        written += 1
        if partner is not None:
            if lower is not None:  # the partner's lower garment, with this person's own top
                truth = render_person(spec.person, spec.garment, view, config.size,
                                      lower=lower_spec(config.seed, partner))
            else:
                truth = render_person(spec.person, worn_garment(config.seed, partner, category), view, config.size)
            path = config.out / split / UNPAIRED_GT / unpaired_name(sample_name(index, view),
                                                                    sample_name(partner, view))
            imaging.save_image(path, truth.image)  # PNG: ground truth for metrics is never lossy
            unpaired += 1
    return written, unpaired


def synthesize(config: SynthConfig, progress: bool = True) -> SynthReport:
    """Render the dataset described by ``config`` and write its pairs and views files."""
    start = time.perf_counter()
    config.out.mkdir(parents=True, exist_ok=True)
    report = SynthReport()
    index, count = config.shard
    tasks = [(config, i) for i in range(index, config.count, count)]
    bar = tqdm(total=len(tasks), desc="rendering identities", unit="id", disable=not progress)
    if config.workers > 1:
        # spawn: no fork of a process that may hold torch/OpenMP threads
        context = multiprocessing.get_context("spawn")
        with context.Pool(config.workers, initializer=_init_worker) as pool:
            for written, unpaired in pool.imap_unordered(_render_identity, tasks):
                report.unpaired += unpaired
                bar.update(1)
    else:
        for task in tasks:
            _render_identity(task)
            bar.update(1)
            report.unpaired += len(config.views) if _partner(config, task[1]) is not None else 0
    bar.close()

    # every shard writes the whole lists (they follow from the settings alone), each file at once: the dataset is
    # complete when the last shard ends, with no merge step
    for split in ("train", "test"):
        indices = [i for i in range(config.count) if config.split_of(i) == split]
        (config.out / split).mkdir(parents=True, exist_ok=True)
        names = [(sample_name(i, v), v) for i in indices for v in config.views]
        _write_at_once(config.out / split / VIEWS_FILE, "".join(f"{n} {v.value}\n" for n, v in names))
        if config.categories != (GarmentCategory.UPPER,):
            _write_at_once(config.out / split / CATEGORIES_FILE, "".join(
                f"{sample_name(i, v)} {config.category_of(i).value}\n" for i in indices for v in config.views))
        if split == "train":
            pairs = [(n, n) for n, _ in names]
        else:
            pairs = []
            for i in indices:
                partner = _partner(config, i)
                for v in config.views:
                    pairs.append((sample_name(i, v), sample_name(partner if partner is not None else i, v)))
        _write_at_once(config.out / PAIRS_FILE.format(split=split), "".join(f"{a} {b}\n" for a, b in pairs))
        report.samples[split] = len(names)
    report.seconds = time.perf_counter() - start
    if config.test_count < 2 and report.samples["test"]:
        logger.warning("one test identity only: the test split has no unpaired pairs with ground truth (use "
                       "--count 3 or more)")
    if count > 1:
        logger.info("shard %d of %d: rendered %d of %d identities to %s in %.1f s (the lists name all of them)",
                    index, count, len(tasks), config.count, config.out, report.seconds)
    else:
        logger.info("wrote %d train and %d test samples (%d unpaired ground truths) to %s in %.1f s",
                    report.samples["train"], report.samples["test"], report.unpaired, config.out, report.seconds)
    return report


def _write_at_once(path: Path, text: str) -> None:
    """``text`` into ``path``: shards writing the same list at once never leave a mixed one."""
    with written_at_once(path) as temporary:
        temporary.write_text(text)


def _init_worker() -> None:
    # one thread per worker process: the workers are the parallelism
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
