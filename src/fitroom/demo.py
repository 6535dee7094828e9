"""Pictures for the quick start and the README: a contact sheet of a rendered dataset."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from fitroom import imaging
from fitroom.data.layout import VitonLayout
from fitroom.data.synthetic.writer import sample_name
from fitroom.labels import CIHP_PALETTE, View
from fitroom.viz import grid, label_tile

TILE = (192, 144)


def contact_sheet(root: Path, rows: int = 8, tile: tuple[int, int] = TILE) -> np.ndarray:
    """One row per identity: person, garment, parse, dense map and agnostic, front then back."""
    layouts = [VitonLayout(root, split) for split in ("train", "test") if (Path(root) / split / "image").is_dir()]
    sheet_rows = []
    identities = sorted({name.split("_")[0] for layout in layouts for name in layout.names()})[:rows]
    for identity in identities:
        row = []
        for view in (View.FRONT, View.BACK):
            name = sample_name(int(identity), view)
            layout = next((lay for lay in layouts if (lay.directory / "image" / name).is_file()), None)
            if layout is None:
                continue
            sample = layout.read(name)
            parse = imaging.colorize_labels(sample.parse, CIHP_PALETTE)
            tiles = {"person": sample.person, "garment": sample.garment, "parse": parse, "dense": sample.dense,
                     "agnostic": sample.agnostic}
            for caption, image in tiles.items():
                row.append(label_tile(imaging.resize(image, tile, "image"), f"{view.value} {caption}"))
        sheet_rows.append(row)
    return grid(sheet_rows)


def sample_path(name: str) -> Path:
    """A bundled sample photo (see ``fitroom/assets/samples/README.md``)."""
    return Path(str(resources.files("fitroom") / "assets" / "samples" / name))


#: the try-ons the demo runs: (person photo, garment photo, view)
DEMO_TRYONS = (
    ("astronaut.jpg", "garment_long_sleeve_front.jpg", View.FRONT),
    ("astronaut.jpg", "garment_tee_front.jpg", View.FRONT),
    ("person_front.jpg", "garment_tee_front.jpg", View.FRONT),
    ("person_back.jpg", "garment_tee_back.jpg", View.BACK),
)


def tryon_sheet(out: Path, engine_name: str = "warp", tile: tuple[int, int] = (256, 192)) -> np.ndarray:
    """Run the demo try-ons on the bundled photos; write each result to ``out`` and return a sheet of
    (person, garment, result) rows."""
    from fitroom.engines import create_engine
    from fitroom.preprocess.pipeline import Preprocessor

    engine = create_engine(engine_name)
    rows = []
    with Preprocessor() as preprocess:
        for person_name, garment_name, view in DEMO_TRYONS:
            person = imaging.load_image(sample_path(person_name))
            garment = imaging.load_image(sample_path(garment_name))
            inputs = preprocess(person, garment, view=view, name=person_name, garment_name=garment_name)
            result = engine(inputs)
            imaging.save_image(out / f"{Path(person_name).stem}__{Path(garment_name).stem}.png", result.image)
            height = tile[0]
            row = []
            for caption, image in (("person", person), ("garment", garment), (f"{engine_name} result", result.image)):
                width = round(image.shape[1] * height / image.shape[0])
                row.append(label_tile(imaging.resize(image, (height, width), "image"), caption))
            rows.append(np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in row],
                                       axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)
