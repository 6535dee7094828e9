"""The DressCode layout (Morelli et al., CVPR-W 2022): read it, write it, check it.

```
ROOT/
  upper_body/ | lower_body/ | dresses/        one folder per garment category
    images/      NNNNNN_0.jpg                 the person
                 NNNNNN_1.jpg                 the garment's product photo
    keypoints/   NNNNNN_2.json                {"keypoints": [[x, y, score, index], ...]}: 18 OpenPose COCO joints
    label_maps/  NNNNNN_4.png                 the person's parse, DressCode's 18 labels (:class:`DressCodeLabel`)
    dense/       NNNNNN_5.png                 DensePose part indices 0..24 (L-mode PNG)
    skeletons/   NNNNNN_5.jpg                 the skeleton drawn
    cloth_mask/  NNNNNN_1.png                 the garment's mask (written by the community's tools; fitroom too)
    train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt     "NNNNNN_0.jpg NNNNNN_1.jpg" per line
    fitroom/     NNNNNN_0.json                fitroom's addition: the BODY_25 keypoints in image pixels, the view
                 NNNNNN_0.png                 fitroom's addition: the CIHP parse (DressCode's labels lose some)
```

Facts about the published files fitroom relies on, and how it checks them when reading: the keypoints are stored
in a 384 x 512 (width x height) frame, the resolution the dataset's own loader scales them from (every joint must
lie in that frame, else the file is named); the label maps may come at any size (resized to the image with nearest
neighbour, as that loader does); a missing ``cloth_mask`` is computed from the product photo. Code written for the
official layout reads a fitroom-written dataset unchanged: ``fitroom/`` and ``views.txt`` are extra files it
ignores. When ``fitroom/`` is present, reading it gives back exactly the CIHP parse and BODY_25 keypoints written.
"""

from __future__ import annotations

import enum
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fitroom import imaging
from fitroom.data.layout import DatasetError, read_garment_mask, read_json, read_pairs, read_views, write_pairs
from fitroom.inputs import TryOnInputs
from fitroom.labels import BODY25_TO_COCO18, CIHP_PALETTE, NUM_BODY25, Body25, Cihp, GarmentCategory, View

logger = logging.getLogger(__name__)

#: the folder of each garment category
CATEGORY_FOLDERS: dict[GarmentCategory, str] = {GarmentCategory.UPPER: "upper_body",
                                                GarmentCategory.LOWER: "lower_body",
                                                GarmentCategory.DRESS: "dresses"}
#: the pair lists: (split, which pairs) -> file name
PAIR_FILES: dict[tuple[str, str], str] = {("train", "paired"): "train_pairs.txt",
                                          ("test", "paired"): "test_pairs_paired.txt",
                                          ("test", "unpaired"): "test_pairs_unpaired.txt"}
#: the frame (height, width) the keypoint files' coordinates are in
KEYPOINT_FRAME = (512, 384)
EXTRA = "fitroom"  # fitroom's own files, beside the official ones
VIEWS_FILE = "views.txt"


class DressCodeLabel(enum.IntEnum):
    """DressCode's 18 parse labels (``label_maps``)."""

    BACKGROUND = 0
    HAT = 1
    HAIR = 2
    SUNGLASSES = 3
    UPPER_CLOTHES = 4
    SKIRT = 5
    PANTS = 6
    DRESS = 7
    BELT = 8
    LEFT_SHOE = 9
    RIGHT_SHOE = 10
    HEAD = 11
    LEFT_LEG = 12
    RIGHT_LEG = 13
    LEFT_ARM = 14
    RIGHT_ARM = 15
    BAG = 16
    SCARF = 17


_D, _C = DressCodeLabel, Cihp
#: DressCode -> CIHP (a belt counts as trousers, a bag as background: CIHP has neither)
DRESSCODE_TO_CIHP = np.array([int(c) for c in (
    _C.BACKGROUND, _C.HAT, _C.HAIR, _C.SUNGLASSES, _C.UPPER_CLOTHES, _C.SKIRT, _C.PANTS, _C.DRESS, _C.PANTS,
    _C.LEFT_SHOE, _C.RIGHT_SHOE, _C.FACE, _C.LEFT_LEG, _C.RIGHT_LEG, _C.LEFT_ARM, _C.RIGHT_ARM, _C.BACKGROUND,
    _C.SCARF)], dtype=np.uint8)
#: CIHP -> DressCode: a glove counts as the left arm and a sock as the left leg (their side is not known), a coat as
#: upper clothes, torso skin as background (DressCode has no label for it); fitroom/ keeps the CIHP parse exactly
CIHP_TO_DRESSCODE = np.zeros(20, dtype=np.uint8)
for _cihp, _dc in ((_C.HAT, _D.HAT), (_C.HAIR, _D.HAIR), (_C.GLOVE, _D.LEFT_ARM), (_C.SUNGLASSES, _D.SUNGLASSES),
                   (_C.UPPER_CLOTHES, _D.UPPER_CLOTHES), (_C.DRESS, _D.DRESS), (_C.COAT, _D.UPPER_CLOTHES),
                   (_C.SOCKS, _D.LEFT_LEG), (_C.PANTS, _D.PANTS), (_C.TORSO_SKIN, _D.BACKGROUND),
                   (_C.SCARF, _D.SCARF), (_C.SKIRT, _D.SKIRT), (_C.FACE, _D.HEAD), (_C.LEFT_ARM, _D.LEFT_ARM),
                   (_C.RIGHT_ARM, _D.RIGHT_ARM), (_C.LEFT_LEG, _D.LEFT_LEG), (_C.RIGHT_LEG, _D.RIGHT_LEG),
                   (_C.LEFT_SHOE, _D.LEFT_SHOE), (_C.RIGHT_SHOE, _D.RIGHT_SHOE)):
    CIHP_TO_DRESSCODE[int(_cihp)] = int(_dc)


def person_file(sample_id: str) -> str:
    return f"{sample_id}_0.jpg"


def garment_file(sample_id: str) -> str:
    return f"{sample_id}_1.jpg"


def sample_id(file_name: str) -> str:
    """``NNNNNN`` of ``NNNNNN_0.jpg`` or ``NNNNNN_1.jpg``."""
    return Path(file_name).stem.rsplit("_", 1)[0]


def coco18_to_body25(coco: np.ndarray) -> np.ndarray:
    """``(18, 3)`` COCO joints -> ``(25, 3)`` BODY_25 (the mid hip from both hips; no feet)."""
    body = np.zeros((NUM_BODY25, 3), np.float32)
    body[list(BODY25_TO_COCO18)] = coco
    hips = body[[Body25.R_HIP, Body25.L_HIP]]
    if (hips[:, 2] > 0).all():
        body[Body25.MID_HIP] = [*hips[:, :2].mean(0), hips[:, 2].min()]
    return body


def read_dresscode_keypoints(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A DressCode keypoint file as ``(25, 3)`` BODY_25 in the pixels of an image of ``size`` (height, width)."""
    document = read_json(path, "keypoint file")
    values = document.get("keypoints") if isinstance(document, dict) else None
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise DatasetError(path, "'keypoints' holds values that are not numbers") from None
    if array.ndim != 2 or array.shape[0] != 18 or array.shape[1] < 3:
        raise DatasetError(path, f"'keypoints' must be 18 rows of [x, y, score, index], got shape {array.shape}")
    coco = array[:, :3].copy()
    frame_h, frame_w = KEYPOINT_FRAME
    if (coco[:, 0] > frame_w + 1).any() or (coco[:, 1] > frame_h + 1).any() or (coco[:, :2] < -1).any():
        raise DatasetError(path, f"joints lie outside the {frame_w}x{frame_h} frame DressCode's keypoints are "
                                 f"stored in")
    missing = (coco[:, 0] <= 0) & (coco[:, 1] <= 0) | (coco[:, 2] <= 0)
    coco[:, 0] *= size[1] / frame_w
    coco[:, 1] *= size[0] / frame_h
    coco[missing] = 0
    return coco18_to_body25(coco)


def write_dresscode_keypoints(path: str | os.PathLike, keypoints: np.ndarray, size: tuple[int, int]) -> None:
    """BODY_25 keypoints in an image of ``size`` as a DressCode keypoint file (COCO joints in the 384x512 frame)."""
    coco = np.asarray(keypoints, np.float64)[list(BODY25_TO_COCO18)]
    frame_h, frame_w = KEYPOINT_FRAME
    rows = []
    for index, (x, y, score) in enumerate(coco):
        present = score > 0 and (x, y) != (0, 0)
        rows.append([round(x * frame_w / size[1], 3) if present else 0.0,
                     round(y * frame_h / size[0], 3) if present else 0.0,
                     round(float(score), 4) if present else 0.0, float(index)])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({"keypoints": rows}))


def _pair_file(split: str, pairs: str) -> str:
    try:
        return PAIR_FILES[(split, pairs)]
    except KeyError:
        raise ValueError(f"DressCode has train (paired) and test (paired or unpaired) pair lists; not {split} "
                         f"{pairs}") from None


@dataclass
class DressCodeLayout:
    """One split of a dataset in the DressCode layout, across the category folders it has.

    Args:
        root: the dataset folder (holding ``upper_body/``, ``lower_body/``, ``dresses/``).
        split: ``"train"`` or ``"test"``.
        pairs: ``"paired"`` or ``"unpaired"`` (test only).
        categories: the categories to read (default: every category folder present).
    """

    root: Path
    split: str = "train"
    pairs_kind: str = "paired"
    categories: tuple[GarmentCategory, ...] | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        _pair_file(self.split, self.pairs_kind)
        present = tuple(c for c, folder in CATEGORY_FOLDERS.items() if (self.root / folder).is_dir())
        if not present:
            raise DatasetError(self.root, "no upper_body, lower_body or dresses folder: is this a DressCode "
                                          "layout dataset?")
        self.categories = tuple(GarmentCategory(c) for c in self.categories) if self.categories else present
        for category in self.categories:
            folder = self.folder(category)
            missing = [name for name in ("images", "keypoints", "label_maps", "dense") if not (folder / name).is_dir()]
            if missing:
                raise DatasetError(folder, f"missing folders: {', '.join(missing)}")
        self.views = {c: read_views(self.folder(c) / VIEWS_FILE) for c in self.categories}

    def folder(self, category: GarmentCategory | str) -> Path:
        return self.root / CATEGORY_FOLDERS[GarmentCategory(category)]

    def pairs_file(self, category: GarmentCategory | str) -> Path:
        return self.folder(category) / _pair_file(self.split, self.pairs_kind)

    def pairs(self) -> list[tuple[str, str, GarmentCategory]]:
        """``(person file, garment file, category)`` for every pair of the split."""
        return [(person, cloth, category) for category in self.categories
                for person, cloth in read_pairs(self.pairs_file(category))]

    def read(self, person: str, cloth: str | None = None,
             category: GarmentCategory | str = GarmentCategory.UPPER) -> TryOnInputs:
        """The sample of ``person`` (``NNNNNN_0.jpg``) with garment ``cloth`` (default: their own), its agnostic
        person and parse made for the category (:mod:`fitroom.preprocess.agnostic`).

        Raises:
            DatasetError: naming the first missing or broken file.
        """
        from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic

        category = GarmentCategory(category)
        folder = self.folder(category)
        person_id = sample_id(person)
        cloth = cloth or garment_file(person_id)
        image = self._image(folder / "images" / person)
        size = image.shape[:2]
        garment = self._image(folder / "images" / cloth)
        garment_mask = self._garment_mask(folder, cloth, garment)
        parse = self._parse(folder, person_id, size)
        keypoints = self._keypoints(folder, person_id, size)
        dense = self._dense(folder / "dense" / f"{person_id}_5.png", size)
        try:
            agnostic = agnostic_person(image, parse, keypoints, category)
            labels = parse_agnostic(parse, keypoints, category)
            return TryOnInputs(person=image, garment=garment, garment_mask=garment_mask, keypoints=keypoints,
                               parse=parse, dense=dense, agnostic=agnostic, parse_agnostic=labels,
                               view=self.views[category].get(person, View.FRONT), category=category, name=person,
                               garment_name=cloth)
        except ValueError as error:
            raise DatasetError(folder / "images" / person, str(error)) from None

    def check(self) -> list[DatasetError]:
        """Read every pair of the split; the problems found (empty when the split is sound)."""
        problems: list[DatasetError] = []
        for category in self.categories:
            try:
                pairs = read_pairs(self.pairs_file(category))
            except DatasetError as error:
                problems.append(error)
                continue
            for person, cloth in pairs:
                try:
                    self.read(person, cloth, category)
                except DatasetError as error:
                    problems.append(error)
        return problems

    # -------------------------------------------------------------------------------------------------- files
    @staticmethod
    def _image(path: Path) -> np.ndarray:
        try:
            return imaging.load_image(path)
        except imaging.ImageError as error:
            raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None

    def _garment_mask(self, folder: Path, cloth: str, garment: np.ndarray) -> np.ndarray:
        path = folder / "cloth_mask" / f"{Path(cloth).stem}.png"
        if not path.is_file():  # the official release has none: made from the product photo
            from fitroom.preprocess.garment import garment_mask

            return garment_mask(garment)
        return read_garment_mask(path, garment.shape[:2])

    def _parse(self, folder: Path, person_id: str, size: tuple[int, int]) -> np.ndarray:
        own = folder / EXTRA / f"{person_id}_0.png"
        path = own if own.is_file() else folder / "label_maps" / f"{person_id}_4.png"
        try:
            labels = imaging.load_label_map(path)
        except imaging.ImageError as error:
            raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None
        limit = 20 if path == own else len(DressCodeLabel)
        if labels.size and int(labels.max()) >= limit:
            raise DatasetError(path, f"label {int(labels.max())} found; this file holds labels 0..{limit - 1}")
        if path != own:
            labels = DRESSCODE_TO_CIHP[labels]
        if labels.shape != size:
            labels = imaging.resize(labels, size, kind="labels")
        return labels

    def _keypoints(self, folder: Path, person_id: str, size: tuple[int, int]) -> np.ndarray:
        own = folder / EXTRA / f"{person_id}_0.json"
        if own.is_file():
            try:
                values = json.loads(own.read_text())["pose_keypoints_2d"]
                return np.asarray(values, np.float32).reshape(NUM_BODY25, 3)
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
                raise DatasetError(own, f"not fitroom's keypoint file ({type(error).__name__})") from None
        return read_dresscode_keypoints(folder / "keypoints" / f"{person_id}_2.json", size)

    @staticmethod
    def _dense(path: Path, size: tuple[int, int]) -> np.ndarray:
        from fitroom.preprocess.dense import parts_to_render

        try:
            parts = imaging.load_label_map(path)
        except imaging.ImageError as error:
            raise DatasetError(path, str(error).removeprefix(f"{path}: ")) from None
        if parts.size and int(parts.max()) > 24:
            raise DatasetError(path, f"part index {int(parts.max())} found; DensePose has 0..24")
        if parts.shape != size:
            parts = imaging.resize(parts, size, kind="labels")
        return parts_to_render(parts)


def write_dresscode_sample(root: str | os.PathLike, sample: str, inputs: TryOnInputs, *,
                           skeleton_drawing: np.ndarray, jpeg: dict[str, bytes] | None = None) -> None:
    """Write one person with their own garment as DressCode sample ``sample`` (``NNNNNN``) of the garment's
    category, with fitroom's extra files (CIHP parse, BODY_25 keypoints). ``jpeg`` may hold the JPEG files the
    person and the garment came from (``{"person": ..., "garment": ...}``), copied as they are instead of encoded
    again (which would change their pixels)."""
    from fitroom.preprocess.dense import render_to_parts

    folder = Path(root) / CATEGORY_FOLDERS[GarmentCategory(inputs.category)]
    for name in ("images", "keypoints", "label_maps", "dense", "skeletons", "cloth_mask", EXTRA):
        (folder / name).mkdir(parents=True, exist_ok=True)
    size = inputs.person.shape[:2]
    jpeg = jpeg or {}
    for key, file, image in (("person", person_file(sample), inputs.person),
                             ("garment", garment_file(sample), inputs.garment)):
        if key in jpeg:
            (folder / "images" / file).write_bytes(jpeg[key])
        else:
            imaging.save_image(folder / "images" / file, image)
    imaging.save_image(folder / "cloth_mask" / f"{sample}_1.png", inputs.garment_mask)
    write_dresscode_keypoints(folder / "keypoints" / f"{sample}_2.json", inputs.keypoints, size)
    imaging.save_label_map(folder / "label_maps" / f"{sample}_4.png", CIHP_TO_DRESSCODE[inputs.parse],
                           CIHP_PALETTE[: len(DressCodeLabel)])
    imaging.save_label_map(folder / "dense" / f"{sample}_5.png", render_to_parts(inputs.dense),
                           np.stack([np.arange(25)] * 3, 1).astype(np.uint8) * 10)
    imaging.save_image(folder / "skeletons" / f"{sample}_5.jpg", skeleton_drawing)
    imaging.save_label_map(folder / EXTRA / f"{sample}_0.png", inputs.parse, CIHP_PALETTE)
    (folder / EXTRA / f"{sample}_0.json").write_text(json.dumps(
        {"pose_keypoints_2d": [round(float(v), 3) for v in np.asarray(inputs.keypoints).reshape(-1)],
         "view": View(inputs.view).value}))


def write_dresscode_lists(root: str | os.PathLike, category: GarmentCategory | str,
                          lists: dict[str, list[tuple[str, str]]], views: dict[str, View]) -> None:
    """The pair lists (``{"train_pairs.txt": [(person, cloth), ...], ...}``) and ``views.txt`` of a category."""
    folder = Path(root) / CATEGORY_FOLDERS[GarmentCategory(category)]
    folder.mkdir(parents=True, exist_ok=True)
    for file, pairs in lists.items():
        write_pairs(folder / file, pairs)
    (folder / VIEWS_FILE).write_text("".join(f"{name} {view.value}\n" for name, view in sorted(views.items())))


def convert_viton_to_dresscode(source: str | os.PathLike, out: str | os.PathLike, progress: bool = True) -> dict:
    """Write a VITON-HD layout dataset (:mod:`fitroom.data.layout`) in the DressCode layout: every person of
    each split becomes sample ``NNNNNN`` of its garment's category (``categories.txt``; upper when absent), in the
    order of the splits and names; ``train_pairs.txt`` and ``test_pairs_paired.txt`` pair each person with their
    own garment, ``test_pairs_unpaired.txt`` holds the source's test pairs (within one category). Returns
    ``{source name: sample id}``."""
    from tqdm import tqdm

    from fitroom.data.layout import UNPAIRED_GT, VitonLayout, unpaired_name
    from fitroom.viz import draw_keypoints

    source, out = Path(source), Path(out)
    ids: dict[str, str] = {}
    categories: dict[str, GarmentCategory] = {}
    lists: dict[GarmentCategory, dict[str, list[tuple[str, str]]]] = {}
    views: dict[GarmentCategory, dict[str, View]] = {}

    def listed(category: GarmentCategory) -> dict[str, list[tuple[str, str]]]:
        return lists.setdefault(category, {"train_pairs.txt": [], "test_pairs_paired.txt": [],
                                           "test_pairs_unpaired.txt": []})

    splits = [s for s in ("train", "test") if (source / s).is_dir()]
    if not splits:
        raise DatasetError(source, "neither a 'train' nor a 'test' folder: is this a VITON-HD layout dataset?")
    for split in splits:
        layout = VitonLayout(source, split)
        for name in tqdm(layout.names(), desc=f"DressCode layout: {split}", unit="sample", disable=not progress):
            ids[name] = f"{len(ids):06d}"
            inputs = layout.read(name)
            sources = {"person": layout.path("image", name), "garment": layout.path("cloth", name)}
            jpeg = {k: p.read_bytes() for k, p in sources.items() if p.suffix.lower() in (".jpg", ".jpeg")}
            write_dresscode_sample(out, ids[name], inputs, jpeg=jpeg,
                                   skeleton_drawing=draw_keypoints(inputs.person.shape[:2], inputs.keypoints))
            category = categories[name] = GarmentCategory(inputs.category)
            views.setdefault(category, {})[person_file(ids[name])] = inputs.view
            own = (person_file(ids[name]), garment_file(ids[name]))
            listed(category)["train_pairs.txt" if split == "train" else "test_pairs_paired.txt"].append(own)
        if split == "test" and layout.pairs_file.is_file():
            for person, cloth in layout.pairs():
                pair = (person_file(ids[person]), garment_file(ids[cloth]))
                if categories[person] is not categories[cloth]:
                    raise DatasetError(layout.pairs_file, f"{person} and {cloth} are of different garment "
                                                          f"categories; DressCode pairs within one")
                listed(categories[cloth])["test_pairs_unpaired.txt"].append(pair)
                truth = layout.unpaired_ground_truth(person, cloth)
                if truth is not None:  # the renderer's truth of the unpaired pair, under the new names
                    target = out / CATEGORY_FOLDERS[categories[cloth]] / UNPAIRED_GT / unpaired_name(*pair)
                    imaging.save_image(target, truth)
    for category, category_lists in lists.items():
        write_dresscode_lists(out, category, category_lists, views.get(category, {}))
    logger.info("%d samples written in the DressCode layout to %s", len(ids), out)
    return ids


class DressCodeSplit:
    """A DressCode split seen as :class:`~fitroom.data.layout.VitonLayout` is by ``fitroom eval``: ``pairs()`` as
    ``(person, garment)`` file names across every category folder, ``read(person, garment)`` (a person's own
    garment when ``garment`` is a person's file), ``view(person)`` and ``unpaired_ground_truth`` (fitroom's
    ``unpaired-gt/``, written for rendered sets)."""

    def __init__(self, root: str | os.PathLike, split: str = "test", pairs: str = "paired") -> None:
        self.layout = DressCodeLayout(Path(root), split, pairs)
        self.directory = self.layout.root
        self._category: dict[str, GarmentCategory] = {}
        self._pairs: list[tuple[str, str]] = []
        for person, cloth, category in self.layout.pairs():
            self._category[person] = self._category[cloth] = category
            self._pairs.append((person, cloth))

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def category(self, name: str) -> GarmentCategory:
        return self._category.get(name, GarmentCategory.UPPER)

    def read(self, person: str, cloth: str | None = None) -> TryOnInputs:
        cloth = cloth or person
        if cloth.endswith("_0.jpg"):  # a person's own garment
            cloth = garment_file(sample_id(cloth))
        return self.layout.read(person, cloth, self.category(person))

    def view(self, name: str) -> View:
        return self.layout.views.get(self.category(name), {}).get(name, View.FRONT)

    def unpaired_ground_truth(self, person: str, cloth: str) -> np.ndarray | None:
        from fitroom.data.layout import UNPAIRED_GT, read_optional_image, unpaired_name

        return read_optional_image(self.layout.folder(self.category(person)) / UNPAIRED_GT
                                   / unpaired_name(person, cloth))


def is_dresscode(root: str | os.PathLike) -> bool:
    """Whether ``root`` holds a DressCode layout (a category folder) rather than VITON-HD's."""
    return any((Path(root) / folder).is_dir() for folder in CATEGORY_FOLDERS.values())
