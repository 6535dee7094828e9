"""``fitroom import aihub``: AI Hub's "fashion products and wearing images" set -> the VITON-HD layout.

The set (AI Hub, ``dataSetSn=78``, the data the front/back HR-VITON paper trained on) could not be seen while this
was written: its layout comes from public loaders and converters, and every assumption is checked on the files
given, each record that fails a check is skipped and named in ``aihub_report.csv`` with the reason:

* folders are found by loose name (``*Item-Image*``, ``*Model-Image*``, ``*Model-Parse*``, ``*odel-Pose*``,
  ``*Item-Parse*``, ``wearing_info*.json``), whatever the Korean, the brackets or the spelling around them;
  ``wearing_info_train.json`` records go to ``train``, any other pairing file's to ``test``;
* a pairing record names a model photo (``wearing``) and item ids (``main_top`` for upper garments, ``bottom``
  for lower ones); a null id, a missing photo or a missing ``_F``/``_B`` product photo skips the record;
* a model photo stored landscape is turned upright (270 degrees); its label files' coordinates are used in the
  frame they fit (upright, or the stored one, then turned): points that fit neither skip the record;
* parse files hold ``region1`` ... ``regionN`` with ``category_name`` and ``segmentation`` polygons, matched by
  name (:func:`cihp_label`: inner/outer/dress torso and sleeves, pants, skirt, arms, legs, shoes, hair, face, neck,
  hat); an unknown name is left out and counted; the person's own left and right are assumed, checked in each
  front view by where the arms, legs and shoes lie (a photo whose labelled "right" parts lie on the image's right
  by most of them is mirrored in its labels and noted);
* pose files hold 17 keypoints ``[x, y, v]`` taken to be in COCO's order; a record whose joints do not stand
  head over shoulders over hips over knees over ankles is skipped;
* the view: a name ending ``_000`` is a front photo to one public converter; fitroom decides from the parse (a
  face region of at least 30 % of the head is a front view) and notes where the two disagree;
* the 9:16 photos are padded to 3:4 (the edge pixels carried outwards, the parse's padding background) and resized
  to ``--size``; product photos likewise.

Work is resumable (a record whose files all exist is skipped as done) and can be split into shards
(``--shard I/N``: the records whose position is I modulo N).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.layout import (
    FOLDERS, PAIRS_FILE, VIEWS_FILE, file_name, read_views, write_pairs, write_sample,
)
from fitroom.data.shards import check_shard
from fitroom.errors import InputError
from fitroom.inputs import TryOnInputs
from fitroom.labels import Body25, Cihp, GarmentCategory, View

logger = logging.getLogger(__name__)

REPORT = "aihub_report.csv"
#: COCO's 17 joints -> BODY_25 index (the neck and mid hip are made from the shoulders and hips)
COCO17_TO_BODY25 = (Body25.NOSE, Body25.L_EYE, Body25.R_EYE, Body25.L_EAR, Body25.R_EAR, Body25.L_SHOULDER,
                    Body25.R_SHOULDER, Body25.L_ELBOW, Body25.R_ELBOW, Body25.L_WRIST, Body25.R_WRIST, Body25.L_HIP,
                    Body25.R_HIP, Body25.L_KNEE, Body25.R_KNEE, Body25.L_ANKLE, Body25.R_ANKLE)
#: the item a record pairs for each category
PAIRING_KEY = {GarmentCategory.UPPER: "main_top", GarmentCategory.LOWER: "bottom", GarmentCategory.DRESS: "main_top"}
#: the order regions are filled in, back to front (a later one wins where two overlap)
FILL_ORDER = (Cihp.LEFT_LEG, Cihp.RIGHT_LEG, Cihp.PANTS, Cihp.SKIRT, Cihp.DRESS, Cihp.UPPER_CLOTHES, Cihp.COAT,
              Cihp.TORSO_SKIN, Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE, Cihp.HAIR,
              Cihp.FACE, Cihp.HAT)
#: the loose names of the folders an AI Hub download holds
FOLDER_PATTERNS = {"model_images": "model-image", "item_images": "item-image", "model_parse": "model-parse",
                   "model_pose": "model-pose", "item_parse": "item-parse"}


#: class-name words and their CIHP labels, in the order they are looked for
_KEYWORDS = (("hair", Cihp.HAIR), ("face", Cihp.FACE), ("neck", Cihp.TORSO_SKIN), ("skirt", Cihp.SKIRT),
             ("pants", Cihp.PANTS), ("dress", Cihp.DRESS))


def cihp_label(name: str) -> Cihp | None:
    """The CIHP label of an AI Hub parse class name, or None when the name is not known."""
    key = re.sub(r"[^a-z]+", "_", name.lower()).strip("_")
    words = set(key.split("_"))
    joined = key.replace("_", "")
    side = ("left" if ("left" in joined or re.search(r"(^|_)l_?(arm|leg|shoe|sleeve)", key)) else
            "right" if ("right" in joined or re.search(r"(^|_)r_?(arm|leg|shoe|sleeve)", key)) else None)
    if "hat" in words or joined == "hat":
        return Cihp.HAT
    for word, label in _KEYWORDS:  # the first word found decides (a dress's sleeve is the dress)
        if word in joined:
            return label
    if "torso" in joined or "sleeve" in joined:
        return Cihp.COAT if "outer" in joined else Cihp.UPPER_CLOTHES
    for part, (left, right) in (("arm", (Cihp.LEFT_ARM, Cihp.RIGHT_ARM)), ("leg", (Cihp.LEFT_LEG, Cihp.RIGHT_LEG)),
                                ("shoe", (Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE))):
        if part in joined and side is not None:
            return left if side == "left" else right
    return None


def coco17_to_body25(values) -> np.ndarray:
    """17 ``[x, y, v]`` (flat or nested) -> ``(25, 3)`` BODY_25 with confidence 1 where ``v > 0``."""
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.size != 51:
        raise ValueError(f"{array.size} numbers; 17 keypoints of [x, y, v] are 51")
    coco = array.reshape(17, 3)
    body = np.zeros((25, 3), np.float32)
    for index, joint in enumerate(COCO17_TO_BODY25):
        if coco[index, 2] > 0:
            body[joint] = (coco[index, 0], coco[index, 1], 1.0)
    for target, (a, b) in ((Body25.NECK, (Body25.R_SHOULDER, Body25.L_SHOULDER)),
                           (Body25.MID_HIP, (Body25.R_HIP, Body25.L_HIP))):
        if body[a, 2] > 0 and body[b, 2] > 0:
            body[target] = ((body[a, 0] + body[b, 0]) / 2, (body[a, 1] + body[b, 1]) / 2, 1.0)
    return body


def standing_order(keypoints: np.ndarray) -> bool:
    """Whether the joints stand in order from the head down (nose over shoulders over hips over knees over ankles,
    where both of a pair are present): the check that the 17 keypoints are in COCO's order."""
    levels = [(Body25.NOSE,), (Body25.R_SHOULDER, Body25.L_SHOULDER), (Body25.R_HIP, Body25.L_HIP),
              (Body25.R_KNEE, Body25.L_KNEE), (Body25.R_ANKLE, Body25.L_ANKLE)]
    heights = []
    for joints in levels:
        present = [keypoints[j, 1] for j in joints if keypoints[j, 2] > 0]
        if present:
            heights.append(float(np.mean(present)))
    return len(heights) >= 3 and all(a < b for a, b in zip(heights, heights[1:]))


def find_folders(root: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """The download's folders by role (the train and validation halves each have theirs), and its pairing files;
    InputError naming what is missing."""
    found: dict[str, list[Path]] = {}
    for directory in sorted(p for p in root.rglob("*") if p.is_dir()):
        loose = directory.name.lower().replace("_", "-")
        for role, pattern in FOLDER_PATTERNS.items():
            if pattern in loose:
                found.setdefault(role, []).append(directory)
    pairing = sorted(p for p in root.rglob("*.json") if p.name.lower().startswith("wearing_info"))
    missing = [FOLDER_PATTERNS[r] for r in ("model_images", "item_images", "model_parse", "model_pose")
               if r not in found]
    if missing or not pairing:
        raise InputError(f"{root} does not look like AI Hub's fashion set: no folder named like "
                         f"{', '.join('*' + m + '*' for m in missing) or '-'}"
                         f"{'' if pairing else ' and no wearing_info*.json pairing file'}")
    return found, pairing


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name} is not valid JSON ({error})") from None


def _regions(document) -> list[tuple[str, list[np.ndarray]]]:
    if not isinstance(document, dict):
        raise ValueError("the parse file is not a JSON object")
    regions = []
    for key in sorted((k for k in document if re.fullmatch(r"region\d+", k)), key=lambda k: int(k[6:])):
        region = document[key]
        try:
            polygons = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in region["segmentation"]]
            regions.append((str(region["category_name"]), polygons))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{key} has no category_name or its segmentation is not polygons of [x, y]") from None
    if not regions:
        raise ValueError("the parse file has no region")
    return regions


def _upright(stored_shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Points of a landscape photo's stored frame in the upright frame (the photo turned 270 degrees)."""
    width = stored_shape[1]
    return np.stack([points[..., 1], width - 1 - points[..., 0]], -1)


def _frame(points: np.ndarray, upright: tuple[int, int], stored: tuple[int, int]) -> str:
    """``upright`` or ``stored``: the frame all ``points`` (x, y) fit in; ValueError when neither."""
    def fits(shape):
        return (points[:, 0] >= -1).all() and (points[:, 1] >= -1).all() and (points[:, 0] <= shape[1] + 1).all() \
            and (points[:, 1] <= shape[0] + 1).all()

    if fits(upright):
        return "upright"
    if stored != upright and fits(stored):
        return "stored"
    raise ValueError("the label coordinates lie outside the photo, turned or not")


def pad_to_3x4(image: np.ndarray, parse: np.ndarray | None, keypoints: np.ndarray | None,
                size: tuple[int, int]):
    """Pad (H, W) to a 4:3 height:width by carrying the edge pixels outwards, then resize to ``size``."""
    height, width = image.shape[:2]
    target_w = int(round(height * 3 / 4))
    pad_x = max(target_w - width, 0)
    target_h = int(round(width * 4 / 3)) if target_w < width else height
    pad_y = max(target_h - height, 0)
    left, top = pad_x // 2, pad_y // 2
    padded = cv2.copyMakeBorder(image, top, pad_y - top, left, pad_x - left, cv2.BORDER_REPLICATE)
    out_image = imaging.resize(padded, size, "image")
    out_parse = None
    if parse is not None:
        out_parse = imaging.resize(cv2.copyMakeBorder(parse, top, pad_y - top, left, pad_x - left,
                                                      cv2.BORDER_CONSTANT, value=0), size, "labels")
    out_points = None
    if keypoints is not None:
        out_points = keypoints.copy()
        present = out_points[:, 2] > 0
        scale = np.array([size[1] / padded.shape[1], size[0] / padded.shape[0]])
        out_points[present, :2] = (out_points[present, :2] + [left, top]) * scale
    return out_image, out_parse, out_points


@dataclass
class AihubConfig:
    root: Path
    out: Path
    category: GarmentCategory = GarmentCategory.UPPER
    size: tuple[int, int] = (1024, 768)
    shard: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        self.root, self.out = Path(self.root), Path(self.out)
        self.category = GarmentCategory(self.category)
        self.shard = check_shard(self.shard)


@dataclass
class _Record:
    split: str
    wearing: str
    garment: str | None
    row: dict = field(default_factory=dict)


def _records(pairing: list[Path], category: GarmentCategory) -> list[_Record]:
    records: list[_Record] = []
    for path in pairing:
        split = "train" if "train" in path.stem.lower() else "test"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: the pairing file is not valid JSON ({error})") from None
        if isinstance(document, dict):  # a list under some key
            document = next((v for v in document.values() if isinstance(v, list)), [])
        for item in document if isinstance(document, list) else []:
            if isinstance(item, dict) and item.get("wearing"):
                garment = item.get(PAIRING_KEY[category])
                records.append(_Record(split, str(item["wearing"]), None if garment in (None, "") else str(garment)))
    return sorted(records, key=lambda r: (r.split, r.wearing))


def _find_file(folders: list[Path], name: str, any_suffix: bool = True) -> Path | None:
    """``name`` in the first of ``folders`` that has it (or, with ``any_suffix``, a file of its stem)."""
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    if any_suffix:
        escaped = re.sub(r"([\[\]*?])", r"[\1]", Path(name).stem)  # a name with glob characters matches itself
        for folder in folders:
            match = next(iter(sorted(folder.glob(f"{escaped}.*"))), None)
            if match is not None:
                return match
    return None


def _label_file(folders: dict[str, list[Path]], role: str, stem: str) -> Path:
    """The label file ``stem.json`` of ``role`` (its first folder's path when no folder has it: named as missing)."""
    return _find_file(folders.get(role, []), f"{stem}.json", any_suffix=False) or folders[role][0] / f"{stem}.json"


def _label_map(regions, shape: tuple[int, int], stored: tuple[int, int], notes: list[str]) -> np.ndarray:
    """Fill the regions' polygons into an ``shape`` CIHP map, in :data:`FILL_ORDER`."""
    everything = np.concatenate([p for _, polygons in regions for p in polygons]) if regions else np.zeros((0, 2))
    frame = _frame(everything, shape, stored)
    if frame == "stored":
        notes.append("labels in the stored (landscape) frame")
    by_label: dict[Cihp, list[np.ndarray]] = {}
    unknown = set()
    for name, polygons in regions:
        label = cihp_label(name)
        if label is None:
            unknown.add(name)
            continue
        if frame == "stored":
            polygons = [_upright(stored, p) for p in polygons]
        by_label.setdefault(label, []).extend(polygons)
    if unknown:
        notes.append(f"unknown classes left out: {', '.join(sorted(unknown))}")
    parse = np.zeros(shape, np.uint8)
    for label in FILL_ORDER:
        polygons = [np.round(p).astype(np.int32) for p in by_label.get(label, []) if len(p) >= 3]
        if polygons:
            cv2.fillPoly(parse, polygons, int(label))
    return parse


def _mirror_sides(parse: np.ndarray) -> np.ndarray:
    swapped = parse.copy()
    for a, b in ((Cihp.LEFT_ARM, Cihp.RIGHT_ARM), (Cihp.LEFT_LEG, Cihp.RIGHT_LEG),
                 (Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE)):
        swapped[parse == a], swapped[parse == b] = b, a
    return swapped


def _view(parse: np.ndarray) -> View:
    """Front when the face is at least 30 % of the head (face and hair): seen from behind, only the ears and the
    neck's edge show (under 20 % on the renderer's people, who also have 40 % and more from the front with long
    hair)."""
    face, hair = int((parse == Cihp.FACE).sum()), int((parse == Cihp.HAIR).sum())
    return View.FRONT if face > 0 and face >= 0.3 * (face + hair) else View.BACK


def _sides_are_the_images(parse: np.ndarray) -> bool | None:
    """In a front view the person's right arm, leg and shoe lie on the image's left. Each pair votes by where its
    two sides' pixels lie (crossed arms or legs mislead one pair, rarely two): True when most say "right" is on
    the image's right, None when fewer than two pairs can say."""
    votes = []
    for right, left in ((Cihp.RIGHT_ARM, Cihp.LEFT_ARM), (Cihp.RIGHT_LEG, Cihp.LEFT_LEG),
                        (Cihp.RIGHT_SHOE, Cihp.LEFT_SHOE)):
        xs = [np.nonzero(parse == label)[1] for label in (right, left)]
        if all(len(x) for x in xs):
            votes.append(xs[0].mean() > xs[1].mean())
    if len(votes) < 2:
        return None
    return sum(votes) > len(votes) / 2


def _import_record(config: AihubConfig, folders: dict[str, list[Path]], record: _Record, name: str
                   ) -> tuple[str, str, View | None]:
    """Import one record; returns (status, reason or notes, the view written)."""
    from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic
    from fitroom.preprocess.dense import BuiltinDenseMapper
    from fitroom.viz import draw_keypoints

    notes: list[str] = []
    if record.garment is None:
        return "skipped", f"the pairing record has no {PAIRING_KEY[config.category]} item", None
    photo_path = _find_file(folders["model_images"], record.wearing)
    if photo_path is None:
        return "skipped", f"the model photo {record.wearing} is missing", None
    stem = photo_path.stem
    try:
        stored = imaging.load_image(photo_path)
    except imaging.ImageError as error:
        return "skipped", f"the model photo cannot be read ({error.__class__.__name__})", None
    upright = np.ascontiguousarray(np.rot90(stored, 1)) if stored.shape[1] > stored.shape[0] else stored
    if upright is not stored:
        notes.append("photo turned upright")
    try:
        parse = _label_map(_regions(_read_json(_label_file(folders, "model_parse", stem))), upright.shape[:2],
                           stored.shape[:2], notes)
        pose = _read_json(_label_file(folders, "model_pose", stem))
        values = pose.get("landmarks") if isinstance(pose, dict) else None
        if values is None:
            raise ValueError("the pose file has no 'landmarks'")
        try:
            keypoints = coco17_to_body25(values)
        except ValueError as error:
            raise ValueError(f"the pose file's landmarks hold {error}") from None
    except ValueError as error:
        return "skipped", str(error), None
    present = keypoints[:, 2] > 0
    if present.any():
        if _frame(keypoints[present, :2], upright.shape[:2], stored.shape[:2]) == "stored":
            keypoints[present, :2] = _upright(stored.shape[:2], keypoints[present, :2])
    if not standing_order(keypoints):
        return "skipped", "the keypoints do not stand head over feet: not in COCO's 17-joint order", None
    view = _view(parse)
    if stem.endswith("_000") != (view is View.FRONT):
        notes.append(f"the name says {'front' if stem.endswith('_000') else 'not front'}, the parse says "
                     f"{view.value}; taken as {view.value}")
    if view is View.FRONT and _sides_are_the_images(parse):
        parse = _mirror_sides(parse)  # labelled by the image's sides: made the person's own
        notes.append("left and right were the image's sides; mirrored to the person's")
    if not (parse > 0).any():
        return "skipped", "the parse is empty", None
    suffix = "_F" if view is View.FRONT else "_B"
    product_path = _find_file(folders["item_images"], f"{record.garment}{suffix}.jpg")
    if product_path is None:
        return "skipped", f"the product photo {record.garment}{suffix}.jpg ({view.value} view) is missing", None
    try:
        product = imaging.load_image(product_path)
    except imaging.ImageError as error:
        return "skipped", f"the product photo cannot be read ({error.__class__.__name__})", None
    garment_mask = None
    item_parse = _find_file(folders.get("item_parse", []), f"{product_path.stem}.json", any_suffix=False)
    if item_parse is not None:
        try:
            item = _label_map(_regions(_read_json(item_parse)), product.shape[:2], product.shape[:2], [])
            garment_mask = item > 0
        except ValueError as error:
            notes.append(f"item parse unusable ({error}); mask made from the photo")
    if garment_mask is None or not garment_mask.any():
        from fitroom.preprocess.garment import garment_mask as segment

        garment_mask = segment(product)
    person, parse, keypoints = pad_to_3x4(upright, parse, keypoints, config.size)
    garment, mask_image, _ = pad_to_3x4(product, garment_mask.astype(np.uint8), None, config.size)
    dense = BuiltinDenseMapper()(person, keypoints, parse > 0, view)
    try:
        inputs = TryOnInputs(person=person, garment=garment, garment_mask=mask_image > 0, keypoints=keypoints,
                             parse=parse, dense=dense,
                             agnostic=agnostic_person(person, parse, keypoints, config.category),
                             parse_agnostic=parse_agnostic(parse, keypoints, config.category), view=view,
                             category=config.category, name=name, garment_name=name)
    except ValueError as error:
        return "skipped", str(error), None
    write_sample(config.out, record.split, inputs, openpose_drawing=draw_keypoints(config.size, keypoints),
                 dense_render=dense)
    return "imported", "; ".join(notes), view


def import_aihub(config: AihubConfig, progress: bool = True) -> list[dict]:
    """Import the download under ``config.root`` into ``config.out``; returns the report rows (also written to
    ``OUT/aihub_report.csv``; with shards, ``aihub_report.I-of-N.csv``)."""
    folders, pairing = find_folders(config.root)
    records = _records(pairing, config.category)
    index, count = config.shard
    mine = [r for position, r in enumerate(records) if position % count == index]
    rows = []
    for record in tqdm(mine, desc="importing AI Hub records", unit="record", disable=not progress):
        name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(record.wearing).stem) + ".jpg"
        directory = config.out / record.split
        done = all((directory / FOLDERS[role][0] / file_name(role, name)).is_file()
                   for role in ("image", "cloth", "cloth_mask", "parse", "openpose_json", "dense", "agnostic"))
        view = None
        if done:
            status, reason = "done", "imported before"
        else:
            try:
                status, reason, view = _import_record(config, folders, record, name)
            except (OSError, ValueError) as error:  # never stops the batch; named in the report
                status, reason = "skipped", f"{type(error).__name__}: {error}"
        rows.append({"split": record.split, "record": record.wearing, "garment": record.garment or "",
                     "name": name if status != "skipped" else "", "status": status, "reason": reason,
                     "view": view.value if view else ""})
    _finish(config, rows)
    return rows


def _finish(config: AihubConfig, rows: list[dict]) -> None:
    """The report, and the pairs and views files of every split (from all shards' samples on disk)."""
    config.out.mkdir(parents=True, exist_ok=True)
    index, count = config.shard
    report = config.out / (REPORT if count == 1 else REPORT.replace(".csv", f".{index}-of-{count}.csv"))
    with open(report, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["split", "record", "garment", "name", "status", "reason", "view"])
        writer.writeheader()
        writer.writerows(rows)
    for split in ("train", "test"):
        directory = config.out / split
        images = directory / FOLDERS["image"][0]
        if not images.is_dir():
            continue
        names = sorted(p.name for p in images.iterdir() if p.is_file())
        views = read_views(directory / VIEWS_FILE)
        for row in rows:
            if row["split"] == split and row["view"]:
                views[row["name"]] = View(row["view"])
        (directory / VIEWS_FILE).write_text("".join(f"{n} {views.get(n, View.FRONT).value}\n" for n in names))
        write_pairs(config.out / PAIRS_FILE.format(split=split), [(n, n) for n in names])
    counts = {s: sum(r["status"] == s for r in rows) for s in ("imported", "done", "skipped")}
    logger.info("AI Hub: %d imported, %d done before, %d skipped (reasons in %s)", counts["imported"], counts["done"],
                counts["skipped"], report)
