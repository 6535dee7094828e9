"""Pictures for the quick start and the README: a contact sheet of a rendered dataset."""

from __future__ import annotations

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
