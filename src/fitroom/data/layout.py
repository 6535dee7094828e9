"""The VITON-HD / HR-VITON dataset layout: read it, write it, validate it.

```
ROOT/
  train_pairs.txt, test_pairs.txt     "person.jpg cloth.jpg" per line
  train/ | test/
    image/ cloth/ cloth-mask/          JPEG, same file name per sample
    image-parse-v3/                    P-mode PNG, values 0..19 (CIHP)
    image-parse-agnostic-v3.2/         P-mode PNG
    openpose_json/ NAME_keypoints.json people[0].pose_keypoints_2d: 75 numbers (BODY_25)
    openpose_img/  NAME_rendered.png   skeleton drawing
    image-densepose/                   DensePose part-index render (JPEG)
    agnostic-v3.2/                     cloth-agnostic person (JPEG)
    views.txt                          fitroom's addition: "NAME front|back" per sample
    categories.txt                     fitroom's addition: "NAME upper|lower|dress" (absent: every garment upper)
    unpaired-gt/   PERSON_CLOTH.png    fitroom's addition (synthetic only): the person wearing the other garment
```
VITON-HD's own release spells some folders with hyphens (``image-parse``, ``openpose-img``, ``openpose-json``);
both spellings are read. fitroom writes the HR-VITON spelling, so code written for the official layout reads a
fitroom dataset unchanged; ``views.txt`` and ``unpaired-gt/`` are extra files such code ignores.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fitroom import imaging
from fitroom.data import DatasetWarning
from fitroom.errors import InputError
from fitroom.inputs import TryOnInputs
from fitroom.labels import CIHP_PALETTE, NUM_BODY25, NUM_PARSE_LABELS, GarmentCategory, View

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
PAIRS_FILE = "{split}_pairs.txt"
VIEWS_FILE = "views.txt"
CATEGORIES_FILE = "categories.txt"
UNPAIRED_GT = "unpaired-gt"

#: folder roles and their accepted spellings, the first one being what fitroom writes
FOLDERS: dict[str, tuple[str, ...]] = {
    "image": ("image",),
    "cloth": ("cloth",),
    "cloth_mask": ("cloth-mask",),
    "parse": ("image-parse-v3", "image-parse"),
    "parse_agnostic": ("image-parse-agnostic-v3.2", "image-parse-agnostic"),
    "openpose_json": ("openpose_json", "openpose-json"),
    "openpose_img": ("openpose_img", "openpose-img"),
    "dense": ("image-densepose",),
    "agnostic": ("agnostic-v3.2",),
}
#: folders every sample needs for training HR-VITON (the rest are optional)
REQUIRED = ("image", "cloth", "cloth_mask", "parse", "openpose_json", "dense")


class DatasetError(InputError):
    """A dataset file is missing or broken. ``path`` names the file; the message says what is wrong with it."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def file_name(role: str, name: str) -> str:
    """The file name of sample ``name`` (e.g. ``00001_00.jpg``) in the folder of ``role``."""
    stem = Path(name).stem
    if role in ("parse", "parse_agnostic"):
        return f"{stem}.png"
    if role == "openpose_json":
        return f"{stem}_keypoints.json"
    if role == "openpose_img":
        return f"{stem}_rendered.png"
    return name


def unpaired_name(person: str, cloth: str) -> str:
    return f"{Path(person).stem}_{Path(cloth).stem}.png"


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a pairs file: one ``person cloth`` pair per non-empty line."""
    pairs = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise DatasetError(path, "pairs file not found") from None
    except UnicodeDecodeError:
        raise DatasetError(path, "the pairs file is not text") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(path, f"line {number} must be 'person cloth', got {line!r}")
        pairs.append((fields[0], fields[1]))
    return pairs


def write_pairs(path: str | os.PathLike, pairs: list[tuple[str, str]]) -> None:
    Path(path).write_text("".join(f"{person} {cloth}\n" for person, cloth in pairs))


def read_optional_image(path: Path) -> np.ndarray | None:
    """The image at ``path``, None when there is no file, DatasetError naming it when it is broken."""
    if not path.is_file():
        return None
    try:
        return imaging.load_image(path)
    except imaging.ImageError as error:
        raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None


def read_json(path: str | os.PathLike, what: str):
    """A JSON file's document; DatasetError naming the file when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DatasetError(path, f"{what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(path, f"not valid JSON ({error})") from None


def read_keypoints(path: str | os.PathLike) -> np.ndarray:
    """Read an OpenPose JSON file: the first person's BODY_25 keypoints as a ``(25, 3)`` float32 array.

    Accepts the ``pose_keypoints_2d`` key (OpenPose >= 1.2) and the older ``pose_keypoints`` (CP-VTON's data).
    """
    document = read_json(path, "keypoint file")
    people = document.get("people") if isinstance(document, dict) else None
    if not people:
        raise DatasetError(path, "no person in the keypoint file ('people' is empty or missing)")
    if len(people) > 1:
        warnings.warn(f"{path}: {len(people)} people in the keypoint file; using the first", DatasetWarning,
                      stacklevel=2)
    person = people[0]
    values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
    if values is None:
        raise DatasetError(path, "the person has no 'pose_keypoints_2d'")
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise DatasetError(path, "'pose_keypoints_2d' holds values that are not numbers") from None
    if array.size != NUM_BODY25 * 3:
        raise DatasetError(path, f"'pose_keypoints_2d' has {array.size} numbers; BODY_25 needs {NUM_BODY25 * 3}")
    return array.reshape(NUM_BODY25, 3)


def read_garment_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A garment's mask ``(H, W)`` bool for a product photo of ``size``; DatasetError when it is missing, broken,
    of another size or empty."""
    try:
        mask = imaging.load_mask(path)
    except imaging.ImageError as error:
        raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None
    if mask.shape != tuple(size):
        raise DatasetError(path, f"the mask is {mask.shape[1]}x{mask.shape[0]} but the garment is "
                                 f"{size[1]}x{size[0]}")
    if not mask.any():
        raise DatasetError(path, "the garment mask is empty")
    return mask


def write_keypoints(path: str | os.PathLike, keypoints: np.ndarray) -> None:
    """Write BODY_25 keypoints as an OpenPose JSON file (version 1.3 layout)."""
    person = {
        "person_id": [-1],
        "pose_keypoints_2d": [round(float(v), 3) for v in np.asarray(keypoints).reshape(-1)],
        "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
        "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": [],
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"version": 1.3, "people": [person]}))


def _read_table(path: Path, kind):
    """A ``NAME VALUE`` file whose values are members of the enum ``kind`` (absent: empty)."""
    table: dict = {}
    if not path.is_file():
        return table
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            name, value = fields
            table[name] = kind(value)
        except ValueError:
            raise DatasetError(path, f"line {number} must be 'name {'|'.join(v.value for v in kind)}', got "
                                     f"{line!r}") from None
    return table


def read_views(path: Path) -> dict[str, View]:
    """``views.txt``: the view of each sample (absent: none listed, every sample front)."""
    return _read_table(path, View)


def read_categories(path: Path) -> dict[str, GarmentCategory]:
    """``categories.txt``: the garment category of each sample (absent: none listed, every garment upper)."""
    return _read_table(path, GarmentCategory)


@dataclass
class VitonLayout:
    """One split of a dataset in the VITON-HD layout.

    Args:
        root: the dataset folder (holding ``train/``, ``test/`` and the pairs files).
        split: ``"train"`` or ``"test"``.
    """

    root: Path
    split: str = "train"

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not self.directory.is_dir():
            raise DatasetError(self.directory, f"no '{self.split}' folder: is this a VITON-HD layout dataset?")
        self._folders = {role: self._find(role) for role in FOLDERS}
        missing = [FOLDERS[role][0] for role in REQUIRED if self._folders[role] is None]
        if missing:
            raise DatasetError(self.directory, f"missing folders: {', '.join(missing)}")
        self.views = read_views(self.directory / VIEWS_FILE)
        self.categories = read_categories(self.directory / CATEGORIES_FILE)

    @property
    def directory(self) -> Path:
        return self.root / self.split

    @property
    def pairs_file(self) -> Path:
        return self.root / PAIRS_FILE.format(split=self.split)

    def _find(self, role: str) -> Path | None:
        for spelling in FOLDERS[role]:
            if (self.directory / spelling).is_dir():
                return self.directory / spelling
        return None

    def has(self, role: str) -> bool:
        return self._folders[role] is not None

    def path(self, role: str, name: str) -> Path:
        folder = self._folders[role]
        if folder is None:
            raise DatasetError(self.directory / FOLDERS[role][0], "folder not found")
        return folder / file_name(role, name)

    def pairs(self) -> list[tuple[str, str]]:
        return read_pairs(self.pairs_file)

    def names(self) -> list[str]:
        """Every person image in the split, sorted."""
        return sorted(p.name for p in self._folders["image"].iterdir() if p.is_file())  # type: ignore[union-attr]

    def view(self, name: str) -> View:
        return self.views.get(name, View.FRONT)

    def _image(self, role: str, name: str) -> np.ndarray:
        path = self.path(role, name)
        try:
            return imaging.load_image(path)
        except imaging.ImageError as error:
            raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None

    def _labels(self, role: str, name: str, size: tuple[int, int]) -> np.ndarray:
        path = self.path(role, name)
        try:
            labels = imaging.load_label_map(path)
        except imaging.ImageError as error:
            raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None
        if labels.shape != size:
            raise DatasetError(path, f"the parse is {labels.shape[1]}x{labels.shape[0]} but the image is "
                                     f"{size[1]}x{size[0]}")
        if labels.size and int(labels.max()) >= NUM_PARSE_LABELS:
            raise DatasetError(path, f"label {int(labels.max())} found; CIHP parses hold 0..{NUM_PARSE_LABELS - 1}")
        return labels

    def read(self, name: str, cloth: str | None = None) -> TryOnInputs:
        """Read the sample of person ``name`` with garment ``cloth`` (default: their own) as ``TryOnInputs``.

        Raises:
            DatasetError: naming the first missing or broken file.
        """
        cloth = cloth or name
        person = self._image("image", name)
        size = person.shape[:2]
        garment = self._image("cloth", cloth)
        garment_mask = read_garment_mask(self.path("cloth_mask", cloth), garment.shape[:2])
        parse = self._labels("parse", name, size)
        keypoints = read_keypoints(self.path("openpose_json", name))
        dense = self._image("dense", name)
        if dense.shape[:2] != size:
            raise DatasetError(self.path("dense", name), "the dense map's size differs from the image's")
        agnostic = parse_agnostic = None
        if self.has("agnostic") and self.path("agnostic", name).is_file():
            agnostic = self._image("agnostic", name)
        if self.has("parse_agnostic") and self.path("parse_agnostic", name).is_file():
            parse_agnostic = self._labels("parse_agnostic", name, size)
        try:
            return TryOnInputs(
                person=person, garment=garment, garment_mask=garment_mask, keypoints=keypoints, parse=parse,
                dense=dense, agnostic=agnostic, parse_agnostic=parse_agnostic, view=self.view(name),
                category=self.categories.get(cloth, GarmentCategory.UPPER), name=name, garment_name=cloth,
            )
        except ValueError as error:
            raise DatasetError(self.path("image", name), str(error)) from None

    def unpaired_ground_truth(self, person: str, cloth: str) -> np.ndarray | None:
        """The synthetic ground truth of ``person`` wearing ``cloth``, when the dataset has it."""
        return read_optional_image(self.directory / UNPAIRED_GT / unpaired_name(person, cloth))

    def check(self) -> list[DatasetError]:
        """Read every pair of the split; return the problems found (empty when the split is sound)."""
        problems: list[DatasetError] = []
        try:
            pairs = self.pairs()
        except DatasetError as error:
            return [error]
        for person, cloth in pairs:
            try:
                self.read(person, cloth)
            except DatasetError as error:
                problems.append(error)
        return problems


def write_sample(root: str | os.PathLike, split: str, inputs: TryOnInputs, *, openpose_drawing: np.ndarray,
                 dense_render: np.ndarray) -> None:
    """Write one sample's files into the layout (person, garment and every per-person modality).

    Args:
        inputs: the sample; ``name`` is the file name (``NNNNN_VV.jpg``), ``parse``, ``keypoints``, ``agnostic``
            and ``parse_agnostic`` must be present.
        openpose_drawing: ``(H, W, 3)`` uint8 skeleton render for ``openpose_img``.
        dense_render: ``(H, W, 3)`` uint8 DensePose render for ``image-densepose``.
    """
    directory = Path(root) / split
    name = inputs.name

    def target(role: str) -> Path:
        path = directory / FOLDERS[role][0] / file_name(role, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    imaging.save_image(target("image"), inputs.person)
    imaging.save_image(target("cloth"), inputs.garment)
    imaging.save_image(target("cloth_mask"), inputs.garment_mask)
    imaging.save_label_map(target("parse"), inputs.parse, CIHP_PALETTE)
    imaging.save_label_map(target("parse_agnostic"), inputs.parse_agnostic, CIHP_PALETTE)
    write_keypoints(target("openpose_json"), inputs.keypoints)
    imaging.save_image(target("openpose_img"), openpose_drawing)
    imaging.save_image(target("dense"), dense_render)
    imaging.save_image(target("agnostic"), inputs.agnostic)
