"""``fitroom synth --layout aihub``: rendered people written as AI Hub's fashion set is described to be laid out
(:mod:`fitroom.data.aihub`), so that the importer is tested on files whose truth is known.

Korean folder names with brackets (and the "Traing" misspelling), 9:16 model photos (the 3:4 render padded above
and below by carrying its edges outwards), some stored landscape, parse labels as polygons by class name, 17 COCO
keypoints, front (``_F``) and back (``_B``) product photos with their own parse, and a pairing file per split. With
``damaged=True`` a few records are broken on purpose, each in one way the importer must name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fitroom import imaging
from fitroom.data.aihub import COCO17_TO_BODY25
from fitroom.data.synthetic.render import render_garment, render_person
from fitroom.data.synthetic.spec import sample_spec
from fitroom.labels import Cihp, View

logger = logging.getLogger(__name__)

SPLIT_FOLDERS = {
    "train": ("[Traing 라벨링]2021_Fashion_train_labels", "[Traing 원천]2021_Fashion_train_itemimages",
              "[Traing 원천]2021_Fashion_train_modelimages", "wearing_info_train.json", "model-pose_f"),
    "test": ("[Validation 라벨링]2021_Fashion_validation_labels", "[Validation 원천]2021_Fashion_validation_itemimages",
             "[Validation 원천]2021_Fashion_validation_modelimages", "wearing_info.json", "Model-Pose_f"),
}
#: the class name written for each CIHP label (labels AI Hub lacks go to their nearest class)
CLASS_NAMES = {Cihp.HAT: "hat", Cihp.HAIR: "hair", Cihp.FACE: "face", Cihp.SUNGLASSES: "face",
               Cihp.TORSO_SKIN: "neck", Cihp.UPPER_CLOTHES: "inner_torso", Cihp.COAT: "outer_torso",
               Cihp.SCARF: "neck", Cihp.DRESS: "dress_torso", Cihp.PANTS: "pants_hip", Cihp.SKIRT: "skirt",
               Cihp.LEFT_ARM: "left_arm", Cihp.RIGHT_ARM: "right_arm", Cihp.GLOVE: "left_arm",
               Cihp.LEFT_LEG: "left_leg", Cihp.RIGHT_LEG: "right_leg", Cihp.SOCKS: "left_leg",
               Cihp.LEFT_SHOE: "left_shoe", Cihp.RIGHT_SHOE: "right_shoe"}


def photo_name(index: int, view: View) -> str:
    """A model photo name in the set's pattern (``_000`` for the front photo)."""
    return f"{1100 + index}_{1100 + index}_720_D_D{index % 1000:03d}_{458 + index}_{458 + index}_D{index % 1000:03d}" \
           f"_{'000' if View(view) is View.FRONT else '001'}.jpg"


def item_id(index: int) -> str:
    return f"{1000000 + index}"


def to_9x16(image: np.ndarray, parse: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Pad a 3:4 render above and below to 9:16 (edges carried outwards); returns the top padding too."""
    height, width = image.shape[:2]
    tall = int(round(width * 16 / 9))
    top = (tall - height) // 2
    padded = cv2.copyMakeBorder(image, top, tall - height - top, 0, 0, cv2.BORDER_REPLICATE)
    labels = None if parse is None else cv2.copyMakeBorder(parse, top, tall - height - top, 0, 0,
                                                            cv2.BORDER_CONSTANT, value=0)
    return padded, labels, top


def _regions(parse: np.ndarray, unknown: str | None = None) -> dict:
    """The parse as ``region1..N``: one region per class name, its outer contours as polygons of [x, y]."""
    document: dict = {"dataset": {"name": "fitroom synthetic, AI Hub layout"}}
    masks: dict[str, np.ndarray] = {}
    for label in np.unique(parse):
        if label == 0:
            continue
        name = CLASS_NAMES[Cihp(int(label))]
        masks[name] = masks.get(name, np.zeros(parse.shape, bool)) | (parse == label)
    for number, (name, mask) in enumerate(sorted(masks.items()), 1):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1, 2).tolist() for c in contours if len(c) >= 3]
        document[f"region{number}"] = {"category_id": number, "category_name": name, "segmentation": polygons}
    if unknown:
        number = len(masks) + 1
        document[f"region{number}"] = {"category_id": 99, "category_name": unknown,
                                       "segmentation": [[[0, 0], [4, 0], [4, 4]]]}
    return document


def _landmarks(keypoints: np.ndarray, top: int) -> list[float]:
    flat: list[float] = []
    for joint in COCO17_TO_BODY25:
        x, y, confidence = (float(v) for v in keypoints[joint])
        flat += [round(x, 2), round(y + top, 2), 2.0] if confidence > 0 else [0.0, 0.0, 0.0]
    return flat


def write_aihub(out: str | Path, count: int, size: tuple[int, int] = (960, 720), seed: int = 0,
                test_fraction: float = 0.25, damaged: bool = True, progress: bool = True) -> dict[str, list[str]]:
    """Write ``count`` identities (a front and a back model photo each, wearing their own garment, whose front and
    back product photos are items). Returns the damaged records by what is wrong with them."""
    out = Path(out)
    tests = max(1, int(round(count * test_fraction))) if count > 1 else 0
    records: dict[str, list[dict]] = {"train": [], "test": []}
    broken: dict[str, list[str]] = {}
    for index in tqdm(range(count), desc="writing the AI Hub layout", unit="identity", disable=not progress):
        split = "test" if index >= count - tests else "train"
        labels_dir, items_dir, models_dir, _, pose_folder = SPLIT_FOLDERS[split]
        spec = sample_spec(seed, index)
        item = item_id(index)
        for view in (View.FRONT, View.BACK):
            garment, mask = render_garment(spec.garment, view, size)
            suffix = "_F" if view is View.FRONT else "_B"
            if not (damaged and index == 1 and view is View.BACK):  # identity 1 has no back product photo
                imaging.save_image(out / items_dir / "Item-Image" / f"{item}{suffix}.jpg", garment)
            else:
                broken.setdefault("no back product photo", []).append(photo_name(index, View.BACK))
            item_parse = _regions(mask.astype(np.uint8) * int(Cihp.UPPER_CLOTHES))
            _write_json(out / labels_dir / "Item-Parse_f" / f"{item}{suffix}.json", item_parse)
            _write_json(out / labels_dir / "Item-Pose_f" / f"{item}{suffix}.json", {"landmarks": []})

            render = render_person(spec.person, spec.garment, view, size)
            photo, parse, top = to_9x16(render.image, render.parse)
            name = photo_name(index, view)
            stem = Path(name).stem
            parse_document = _regions(parse, unknown="mannequin_stand" if index == 0 and view is View.FRONT
                                      else None)
            landmarks = _landmarks(render.keypoints, top)
            stored = photo
            if index % 3 == 2 and view is View.FRONT:  # stored landscape; labels in the upright frame
                stored = np.ascontiguousarray(np.rot90(photo, -1))
            if damaged and index == 2 and view is View.BACK:  # stored landscape, labels in the stored frame
                stored = np.ascontiguousarray(np.rot90(photo, -1))
                for key, region in parse_document.items():
                    if key.startswith("region"):
                        region["segmentation"] = [[[photo.shape[0] - 1 - y, x] for x, y in polygon]
                                                  for polygon in region["segmentation"]]
                landmarks = [v for i in range(17) for v in (
                    [photo.shape[0] - 1 - landmarks[3 * i + 1], landmarks[3 * i], landmarks[3 * i + 2]]
                    if landmarks[3 * i + 2] > 0 else [0.0, 0.0, 0.0])]
            if damaged and index == 5 and view is View.FRONT:  # left and right by the image's sides
                flip = {"left_arm": "right_arm", "right_arm": "left_arm", "left_leg": "right_leg",
                        "right_leg": "left_leg", "left_shoe": "right_shoe", "right_shoe": "left_shoe"}
                for key, region in parse_document.items():
                    if key.startswith("region"):
                        region["category_name"] = flip.get(region["category_name"], region["category_name"])
                broken.setdefault("sides of the image", []).append(name)
            record = {"wearing": name, "hat": None, "main_top": item, "inner_top": None, "bottom": None,
                      "shoes": None}
            if damaged and index == 0 and view is View.BACK:
                record["main_top"] = None
                broken.setdefault("no main_top item", []).append(name)
            if damaged and index == 3 and view is View.FRONT:
                broken.setdefault("missing model photo", []).append(name)
            else:
                imaging.save_image(out / models_dir / "Model-Image_deid" / name, stored)
            if damaged and index == 3 and view is View.BACK:
                landmarks = landmarks[:48]
                broken.setdefault("16 keypoints", []).append(name)
            if damaged and index == 4 and view is View.FRONT:
                (out / labels_dir / "Model-Parse_f").mkdir(parents=True, exist_ok=True)
                (out / labels_dir / "Model-Parse_f" / f"{stem}.json").write_text("{not json")
                broken.setdefault("parse not JSON", []).append(name)
            else:
                _write_json(out / labels_dir / "Model-Parse_f" / f"{stem}.json", parse_document)
            _write_json(out / labels_dir / pose_folder / f"{stem}.json", {"landmarks": landmarks})
            records[split].append(record)
    for split, rows in records.items():
        if rows:
            labels_dir, _, _, pairing, _ = SPLIT_FOLDERS[split]
            _write_json(out / labels_dir / pairing, rows)
    logger.info("AI Hub layout: %d identities in %s", count, out)
    return broken


def _write_json(path: Path, document) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
