"""The shop's catalogue: garments with their product photos (front, optional back) and masks, segmented once
when added; deleting one removes its images and keeps its row for the try-ons and statistics that refer to it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fitroom.labels import GarmentCategory, View
from fitroom.preprocess.garment import GarmentError
from fitroom.service import storage
from fitroom.service.errors import NotFound, ServiceError
from fitroom.service.objects import ObjectStore
from fitroom.service.storage import garment_photos, garments

logger = logging.getLogger(__name__)


class Catalogue:
    """Garments in the database ``db`` and their images in ``store``.

    Args:
        segment: ``segment(image, category or None) -> (mask, category)``, the garment analysis (the preprocessing's
            ``analyse_garment``, behind whatever lock it needs); None where garments are only read (workers).
    """

    def __init__(self, db: Engine, store: ObjectStore,
                 segment: Callable[[np.ndarray, str | None], tuple] | None = None) -> None:
        self.db, self.store, self.segment = db, store, segment

    def _store(self, garment_id: str, view: View, image: np.ndarray, category: str | None
               ) -> tuple[str, dict[str, str]]:
        """Segment and write one product photo and its mask; returns the category and the row's paths."""
        if self.segment is None:
            raise RuntimeError("this catalogue only reads garments")
        mask, guessed = self.segment(image, category)
        stem = f"garments/{garment_id}_{view.value}"
        paths = {"photo": f"{stem}.png", "mask": f"{stem}_mask.png"}
        self.store.put_image(paths["photo"], image)
        self.store.put_image(paths["mask"], mask.astype(np.uint8) * 255)
        return category or guessed.value, paths

    def add(self, name: str, category: str | None, front: np.ndarray, back: np.ndarray | None) -> dict:
        """Store a garment's product photos with their masks (segmented once, here); more views can be added
        with :meth:`set_photo`."""
        garment_id = storage.new_id()
        written: dict[View, dict[str, str]] = {}
        try:
            for view, image in ((View.FRONT, front), (View.BACK, back)):
                if image is not None:
                    category, written[view] = self._store(garment_id, view, image, category)
        except GarmentError as error:
            self.store.delete(*(p for paths in written.values() for p in paths.values()))
            raise ServiceError(str(error), status=422, code="bad_garment") from None
        back_paths = written.get(View.BACK, {})
        row = {"id": garment_id, "name": name[:200], "category": str(GarmentCategory(category).value),
               "created_at": storage.now(), "front": written[View.FRONT]["photo"],
               "front_mask": written[View.FRONT]["mask"], "back": back_paths.get("photo"),
               "back_mask": back_paths.get("mask")}
        with self.db.begin() as connection:
            connection.execute(garments.insert().values(**row))
            for view, paths in written.items():
                connection.execute(garment_photos.insert().values(garment_id=garment_id, view=view.value, **paths))
        return self.document(garment_id)

    def set_photo(self, garment_id: str, view: View, image: np.ndarray) -> dict:
        """Add or replace the product photo of any declared view."""
        row = self.get(garment_id)
        try:
            _, paths = self._store(garment_id, View(view), image, row.category)
        except GarmentError as error:
            raise ServiceError(str(error), status=422, code="bad_garment") from None
        with self.db.begin() as connection:
            connection.execute(garment_photos.delete().where((garment_photos.c.garment_id == garment_id)
                                                             & (garment_photos.c.view == View(view).value)))
            connection.execute(garment_photos.insert().values(garment_id=garment_id, view=View(view).value, **paths))
            if View(view) in (View.FRONT, View.BACK):  # the schema-3 columns, kept in step
                connection.execute(garments.update().where(garments.c.id == garment_id).values(
                    **{View(view).value: paths["photo"], f"{View(view).value}_mask": paths["mask"]}))
        return self.document(garment_id)

    def _photos(self, connection, garment_id: str) -> dict[str, tuple[str, str]]:
        rows = connection.execute(sa.select(garment_photos).where(garment_photos.c.garment_id == garment_id))
        return {r.view: (r.photo, r.mask) for r in rows}

    def document(self, garment_id: str) -> dict:
        row = self.get(garment_id)
        with self.db.connect() as connection:
            views = self._photos(connection, garment_id)
        return self._document(row, views)

    @staticmethod
    def _document(row, views) -> dict:
        order = [v.value for v in View]
        return {"id": row.id, "name": row.name, "category": row.category,
                "views": sorted(views, key=order.index),
                "created_at": storage.aware(row.created_at).isoformat()}

    def list(self) -> list[dict]:
        with self.db.connect() as connection:
            rows = connection.execute(sa.select(garments).where(garments.c.deleted_at.is_(None))
                                      .order_by(garments.c.created_at)).fetchall()
            return [self._document(r, self._photos(connection, r.id)) for r in rows]

    def delete(self, garment_id: str) -> None:
        """Take a garment out of the catalogue: its photos and masks are removed; the row stays, marked deleted,
        because its try-ons (and the statistics) refer to it."""
        self.get(garment_id)
        with self.db.begin() as connection:
            photos = self._photos(connection, garment_id)
            connection.execute(garments.update().where(garments.c.id == garment_id).values(deleted_at=storage.now()))
        self.store.delete(*(p for pair in photos.values() for p in pair))

    def photo(self, garment_id: str, view: View | str) -> tuple[str, str]:
        """The keys of the product photo of ``view`` and of its mask in the image store, or NotFound naming the
        views the garment has."""
        self.get(garment_id)
        with self.db.connect() as connection:
            photos = self._photos(connection, garment_id)
        view = View(view)
        if view.value not in photos:
            raise NotFound(f"garment {garment_id} has no {view.value} photo (it has {', '.join(sorted(photos))})")
        photo, mask = photos[view.value]
        return photo, mask

    def image(self, garment_id: str, view: str) -> bytes:
        """The product photo's bytes (PNG), or NotFound."""
        key = self.photo(garment_id, view)[0]
        try:
            return self.store.get(key)
        except FileNotFoundError:
            logger.warning("garment %s: its %s photo is missing from the image storage", garment_id, view)
            raise NotFound(f"garment {garment_id}'s {View(view).value} photo is missing on the server") from None

    def get(self, garment_id: str):
        with self.db.connect() as connection:
            row = connection.execute(sa.select(garments).where((garments.c.id == garment_id)
                                                                & garments.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no garment {garment_id}")
        return row
