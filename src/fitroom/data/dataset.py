"""A torch ``Dataset`` over a VITON-HD layout split: paired or unpaired samples as model tensors."""

from __future__ import annotations

import logging
import os
from typing import Literal

import torch
from torch.utils.data import Dataset

from fitroom import imaging
from fitroom.data.layout import DatasetError, VitonLayout, read_pairs
from fitroom.labels import GarmentCategory

logger = logging.getLogger(__name__)

PairsMode = Literal["paired", "unpaired"]


class TryOnDataset(Dataset):
    """Samples of one split as tensors at ``size``, streamed from disk (nothing is held in memory).

    Args:
        root: dataset folder.
        split: ``"train"`` or ``"test"``.
        pairs: ``"paired"`` (each person with their own garment, for training and paired metrics) or
            ``"unpaired"`` (the pairs file's garment, for try-on and FID/KID).
        size: ``(H, W)`` of the tensors.
        skip_bad: when a sample's files are broken, log it, remember it in ``bad`` and serve the next good sample
            instead of stopping (one damaged file in 200,000 should not end a training run).

    Each item is :meth:`TryOnInputs.to_tensors`'s dict plus ``name`` and ``garment_name`` (str) and, on synthetic
    data in unpaired mode, ``unpaired_gt`` ``(3, H, W)``.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", pairs: PairsMode = "paired",
                 size: tuple[int, int] = (256, 192), skip_bad: bool = True) -> None:
        if pairs not in ("paired", "unpaired"):
            raise ValueError(f"pairs must be 'paired' or 'unpaired', got {pairs!r}")
        self.layout = VitonLayout(root, split)
        listed = self.layout.pairs()
        if pairs == "paired":
            listed = self._own_garments(listed)
        self.pairs = [(person, person if pairs == "paired" else cloth) for person, cloth in listed]
        self.mode = pairs
        self.size = size
        self.skip_bad = skip_bad
        self.bad: dict[str, str] = {}

    def _own_garments(self, listed: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The pairs whose person has their own garment (``cloth/`` under the person's name, as VITON-HD stores
        the garment each person wears); paired samples need it. None at all is an error that says so."""
        kept = [(person, cloth) for person, cloth in listed if self.layout.path("cloth", person).is_file()]
        if listed and not kept:
            raise DatasetError(self.layout.directory,
                               f"no person of the {self.layout.split} split has their own garment here (cloth/<the "
                               f"person's file name>): paired samples (training, paired metrics) need the garment "
                               f"each person wears, stored under the person's name; `fitroom prepare` does so for a "
                               f"garment photo named like its person photo")
        if len(kept) < len(listed):
            logger.warning("%d of %d persons of %s have no garment of their own (cloth/<name>) and are left out of "
                           "the paired samples", len(listed) - len(kept), len(listed), self.layout.directory)
        return kept

    def __len__(self) -> int:
        return len(self.pairs)

    def keep_views(self, views) -> None:
        """Keep the samples whose person is seen from one of ``views``."""
        self.pairs = [p for p in self.pairs if self.layout.view(p[0]) in set(views)]

    def keep_categories(self, categories) -> None:
        """Keep the samples whose garment is of one of ``categories`` (``categories.txt``; unlisted: upper)."""
        wanted = {GarmentCategory(c) for c in categories}
        self.pairs = [p for p in self.pairs if self.layout.categories.get(p[1], GarmentCategory.UPPER) in wanted]

    def _load(self, index: int) -> dict[str, torch.Tensor | str]:
        person, cloth = self.pairs[index]
        inputs = self.layout.read(person, cloth)
        item: dict[str, torch.Tensor | str] = dict(inputs.to_tensors(self.size))
        item["name"], item["garment_name"] = person, cloth
        if self.mode == "unpaired":
            truth = self.layout.unpaired_ground_truth(person, cloth)
            if truth is not None:
                item["unpaired_gt"] = imaging.image_to_tensor(imaging.resize(truth, self.size, "image"))
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        if not self.skip_bad:
            return self._load(index)
        for attempt in range(len(self)):
            current = (index + attempt) % len(self)
            try:
                return self._load(current)
            except DatasetError as error:
                name = self.pairs[current][0]
                if name not in self.bad:
                    logger.warning("skipping sample %s: %s", name, error)
                self.bad[name] = str(error)
        raise DatasetError(self.layout.directory, "every sample of the split is broken")


POSE_PAIRS_FILE = "pose_pairs.txt"


def pose_pairs(layout: VitonLayout) -> list[tuple[str, str]]:
    """``(source, target)`` photos of the same person in two views, for pose transfer.

    From the split's ``pose_pairs.txt`` ("SOURCE TARGET" per line) when it exists; else every two photos of one
    person (the file names up to their last ``_``, as VITON-HD-style names ``00012_00.jpg`` / ``00012_01.jpg`` and
    ``fitroom synth``'s front and back photos share them) whose views (``views.txt``) differ, both ways round.
    """
    from collections import defaultdict

    listed = layout.directory / POSE_PAIRS_FILE
    if listed.is_file():
        return read_pairs(listed)
    people: dict[str, list[str]] = defaultdict(list)
    for name in layout.names():
        people[name.rsplit("_", 1)[0]].append(name)
    return [(a, b) for names in people.values() for a in names for b in names
            if a != b and layout.view(a) is not layout.view(b)]


class PoseTransferDataset(Dataset):
    """Pairs of photos of one person in two views (:func:`pose_pairs`), as tensors at ``size``: the target sample's
    :meth:`TryOnInputs.to_tensors` dict (``person`` is the picture to draw, ``dense`` its pose) plus ``source``
    ``(3, H, W)`` (the photo the person is taken from), ``source_parse`` ``(H, W)``, ``name`` (the target) and
    ``source_name``."""

    def __init__(self, root: str | os.PathLike, split: str = "train", size: tuple[int, int] = (256, 192)) -> None:
        self.layout = VitonLayout(root, split)
        self.pairs = pose_pairs(self.layout)
        if not self.pairs:
            raise DatasetError(self.layout.directory,
                               f"no pairs of photos of one person in two views: pose transfer learns from them "
                               f"({POSE_PAIRS_FILE} with 'SOURCE TARGET' lines, or photos named PERSON_NN.jpg whose "
                               f"views in views.txt differ)")
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def keep_views(self, views) -> None:
        """Keep the pairs whose target is seen from one of ``views``."""
        self.pairs = [p for p in self.pairs if self.layout.view(p[1]) in set(views)]

    def keep_categories(self, categories) -> None:
        """Pose transfer changes no garment: every pair is kept whatever ``categories`` says."""

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        source, target = self.pairs[index]
        item: dict[str, torch.Tensor | str] = dict(self.layout.read(target).to_tensors(self.size))
        photo = self.layout.read(source)
        item["source"] = imaging.image_to_tensor(imaging.resize(photo.person, self.size, "image"))
        item["source_parse"] = imaging.labels_to_tensor(imaging.resize(photo.parse, self.size, "labels"))
        item["name"], item["source_name"] = target, source
        return item
