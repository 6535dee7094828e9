"""The shop's catalogue: garments with their product photos (front, optional back) and masks, segmented once
when added; deleting one removes its files and keeps its row for the try-ons and statistics that refer to it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fitroom import imaging
from fitroom.labels import GarmentCategory
from fitroom.preprocess.garment import GarmentError
from fitroom.service import storage
from fitroom.service.errors import NotFound, ServiceError
from fitroom.service.storage import garments

logger = logging.getLogger(__name__)


class Catalogue:
    """Garments in the database ``db`` and their files under ``root``.

    Args:
        segment: ``segment(image, category or None) -> (mask, category)``, the garment analysis (the preprocessing's
            ``analyse_garment``, behind whatever lock it needs).
    """

    def __init__(self, db: Engine, root: Path, segment: Callable[[np.ndarray, str | None], tuple]) -> None:
        self.db, self.root, self.segment = db, root, segment

    def add(self, name: str, category: str | None, front: np.ndarray, back: np.ndarray | None) -> dict:
        """Store a garment's product photos with their masks (segmented once, here)."""
        garment_id = storage.new_id()
        paths: dict[str, str | None] = {"back": None, "back_mask": None}
        try:
            for side, image in (("front", front), ("back", back)):
                if image is None:
                    continue
                mask, guessed = self.segment(image, category)
                category = category or guessed.value
                paths[side] = f"garments/{garment_id}_{side}.png"
                paths[f"{side}_mask"] = f"garments/{garment_id}_{side}_mask.png"
                imaging.save_image(self.root / paths[side], image)
                imaging.save_image(self.root / paths[f"{side}_mask"], mask.astype(np.uint8) * 255)
        except GarmentError as error:
            storage.remove_files(self.root, *paths.values())
            raise ServiceError(str(error), status=422, code="bad_garment") from None
        row = {"id": garment_id, "name": name[:200], "category": str(GarmentCategory(category).value),
               "created_at": storage.now(), **paths}
        with self.db.begin() as connection:
            connection.execute(garments.insert().values(**row))
        return self._document(row)

    @staticmethod
    def _document(row) -> dict:
        row = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
        return {"id": row["id"], "name": row["name"], "category": row["category"],
                "views": ["front"] + (["back"] if row["back"] else []),
                "created_at": storage.aware(row["created_at"]).isoformat()}

    def list(self) -> list[dict]:
        with self.db.connect() as connection:
            rows = connection.execute(sa.select(garments).where(garments.c.deleted_at.is_(None))
                                      .order_by(garments.c.created_at)).fetchall()
        return [self._document(r) for r in rows]

    def delete(self, garment_id: str) -> None:
        """Take a garment out of the catalogue: its photos and masks are removed; the row stays, marked deleted,
        because its try-ons (and the statistics) refer to it."""
        row = self.get(garment_id)
        with self.db.begin() as connection:
            connection.execute(garments.update().where(garments.c.id == garment_id).values(deleted_at=storage.now()))
        storage.remove_files(self.root, row.front, row.front_mask, row.back, row.back_mask)

    def image(self, garment_id: str, view: str) -> Path:
        row = self.get(garment_id)
        path = row.front if view == "front" else row.back
        if path is None:
            raise NotFound(f"garment {garment_id} has no {view} photo")
        if not (self.root / path).is_file():
            logger.warning("garment %s: its %s photo is missing from the data folder", garment_id, view)
            raise NotFound(f"garment {garment_id}'s {view} photo is missing on the server")
        return self.root / path

    def get(self, garment_id: str):
        with self.db.connect() as connection:
            row = connection.execute(sa.select(garments).where((garments.c.id == garment_id)
                                                                & garments.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no garment {garment_id}")
        return row
