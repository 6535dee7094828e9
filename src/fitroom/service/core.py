"""The fitting room without HTTP: guidance and try-on jobs, with the catalogue (:mod:`.catalogue`), the statistics
and retention (:mod:`.stats`) and the errors (:mod:`.errors`) in their own modules.

Try-ons are jobs in the database (:mod:`.queue`), run by workers (:mod:`.worker`): ``workers`` threads of this
process, and any number of ``fitroom worker`` processes elsewhere that see the same database and image storage
(:mod:`.objects`). At most ``queue_size`` try-ons wait or run; a further one raises :class:`QueueFull` (the API
answers 429 with Retry-After). A job whose worker died is run again once its lease runs out. Shoppers' photos and
results are deleted ``retention_hours`` after the try-on unless the shopper agreed to share them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from fitroom import fitting, imaging
from fitroom.labels import GarmentCategory, View
from fitroom.preprocess.errors import PhotoError
from fitroom.preprocess.pipeline import detections_bytes
from fitroom.service import stats, storage
from fitroom.service.catalogue import Catalogue
from fitroom.service.checkers import CheckerPool
from fitroom.service.metrics import ServiceMetrics
from fitroom.service.errors import (  # noqa: F401  (the service's errors, also reachable here)
    NotFound, PhotoRefused, QueueFull, ServiceError, public_message,
)
from fitroom.service.objects import open_store
from fitroom.service.queue import JobQueue
from fitroom.service.settings import Settings
from fitroom.service.storage import ratings, tryons
from fitroom.service.worker import TryOnRunner, WorkerLoop

logger = logging.getLogger(__name__)

#: a garment category in a shopper's words
CATEGORY_NOUNS = {GarmentCategory.UPPER: "tops", GarmentCategory.LOWER: "trousers, shorts and skirts",
                  GarmentCategory.DRESS: "dresses"}


class FittingRoom:
    """One per server process. ``engine`` may be given (tests inject a tiny one); else created from settings when
    this process runs workers (``settings.workers > 0``)."""

    def __init__(self, settings: Settings, engine=None, preprocessor=None) -> None:
        from fitroom.engines import create_engine
        from fitroom.preprocess.pipeline import Preprocessor

        self.settings = settings
        # the engine first: a missing checkpoint stops the start before anything is written
        if engine is None and settings.workers:
            engine = create_engine(settings.engine, checkpoint=settings.checkpoint, device=settings.device,
                                   progress=False, **settings.engine_options)
        self.engine = engine
        from fitroom.engines import engine_categories

        #: the garment categories this fitting room dresses (its engine's)
        self.categories = frozenset(getattr(engine, "categories", None)
                                    or engine_categories(settings.engine, settings.checkpoint))
        self.root = Path(settings.data_dir)
        self.store = open_store(settings.storage, self.root)
        self.db, self.schema = storage.open_database(settings.database)
        self.queue = JobQueue(self.db, lease_s=settings.lease_s)
        self.model_version = settings.model_version or (f"{settings.engine}:{Path(settings.checkpoint).name}"
                                                        if settings.checkpoint else settings.engine)
        self._own_preprocessor = preprocessor is None
        self.preprocessor = preprocessor or Preprocessor(allow_several_people=True)
        # mediapipe's graphs and the engines are not thread-safe: one photo at a time through each
        self._preprocess_lock = threading.Lock()
        self.catalogue = Catalogue(self.db, self.store, self._segment)
        # photo checks in their own processes (FITROOM_CHECK_PROCESSES), else here, one at a time
        self._checkers = CheckerPool(settings.check_processes) if settings.check_processes else None
        self.metrics = ServiceMetrics(self.queue.depth, self.queue.alive)
        self.runner = TryOnRunner(settings, self.queue, self.store, self.catalogue, self.engine, self.preprocessor,
                                  self._preprocess_lock, self.metrics)
        self._stop, self._wake = threading.Event(), threading.Event()
        self._workers = [WorkerLoop(self.runner, self._stop, self._wake, poll_s=settings.poll_s)
                         for _ in range(settings.workers)]
        self._threads = [threading.Thread(target=w.run, name=f"fitroom-worker-{i}", daemon=True)
                         for i, w in enumerate(self._workers)]
        for thread in self._threads:
            thread.start()
        self.ready = True

    def unready(self) -> str | None:
        """What keeps this process from serving (``/readyz``): None when the database answers and the image
        storage can be used, else the reason in words (no server detail)."""
        try:
            with self.db.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception:  # any driver's error: the database cannot be reached or used
            return "the database is unreachable"
        return self.store.problem()

    def close(self) -> None:
        """Stop: the workers finish the try-ons they run (queued ones wait in the database for the next start)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        if self._checkers is not None:
            self._checkers.close()
        if self._own_preprocessor:
            self.preprocessor.close()
        self.db.dispose()

    # ------------------------------------------------------------------------------------------------ photos
    def read_photo(self, data: bytes) -> np.ndarray:
        """Decode an upload (format sniffed from the bytes, size and pixel limits) or raise a 4xx error."""
        if not data:
            raise ServiceError("the photo is empty", code="empty_image")
        try:
            return imaging.load_image(data, max_pixels=self.settings.max_pixels,
                                      max_bytes=self.settings.max_upload_bytes)
        except imaging.ImageTooLargeError as error:
            raise ServiceError(str(error), status=413, code="image_too_large") from None
        except imaging.UnsupportedImageError as error:
            raise ServiceError(str(error), status=415, code="unsupported_image") from None
        except imaging.ImageError as error:
            raise ServiceError(str(error), status=422, code="bad_image") from None

    def check(self, photo: np.ndarray, category: GarmentCategory = GarmentCategory.UPPER,
              view: View = View.FRONT) -> dict:
        """The guidance report (``PhotoReport.to_dict()``) for a person photo."""
        return self._check(photo, category, view, findings=False).report.to_dict()

    def _segment(self, image: np.ndarray, category: str | None):
        with self._preprocess_lock:
            return self.preprocessor.analyse_garment(image, category)

    def _check(self, photo: np.ndarray, category: GarmentCategory, view: View, findings: bool = True
               ) -> fitting.Checked:
        """The checks, and the models' findings they were made from (:func:`fitroom.fitting.check` without the full
        analysis: the try-on job finishes it from those)."""
        with self.metrics.check_seconds.time():
            if self._checkers is not None:
                return self._checkers.check(photo, category, view, findings=findings)
            with self._preprocess_lock:
                return fitting.check(self.preprocessor, photo, category, view, "upload")

    # ----------------------------------------------------------------------------------------------- try-ons
    def submit(self, photo: np.ndarray, garment_id: str, view: View, share: bool, force: bool = False) -> dict:
        """Check the photo, then queue a try-on; raises PhotoRefused (guidance said fail), QueueFull or NotFound."""
        garment = self.catalogue.document(garment_id)  # its category and the views it has, in one read
        if GarmentCategory(garment["category"]) not in self.categories:
            dressed = " and ".join(CATEGORY_NOUNS[c] for c in GarmentCategory if c in self.categories)
            raise ServiceError(f"this fitting room's {self.settings.engine} engine tries on {dressed} only, not "
                               f"{CATEGORY_NOUNS[GarmentCategory(garment['category'])]}", status=422,
                               code="unsupported_category")
        if View(view).value not in garment["views"]:
            raise ServiceError(f"garment {garment_id} has no {View(view).value} photo; choose one of its views: "
                               f"{', '.join(garment['views'])}", code="no_such_view")
        checked = self._check(photo, GarmentCategory(garment["category"]), view)
        report = checked.report.to_dict()
        try:
            fitting.admit(checked, force)
        except fitting.PhotoRefusedError as error:
            raise PhotoRefused(str(error), report) from None
        except PhotoError:  # forced, but nobody to dress: the job says why
            pass
        waiting = self.queue.depth()  # in all processes; a burst from several API processes may pass it by a few
        if waiting >= self.settings.queue_size:
            raise QueueFull(f"{waiting} try-ons are already waiting; try again shortly")
        tryon_id = storage.new_id()
        photo_key = f"photos/{tryon_id}.png"
        try:
            self.store.put_image(photo_key, photo)
            # the job finishes the analysis from the check's findings instead of running the models again, on any
            # machine
            self.store.put(storage.analysis_file(photo_key), detections_bytes(checked.detections))
            row = {"id": tryon_id, "garment_id": garment_id, "view": view.value, "status": "queued",
                   "photo": photo_key, "guidance": report["status"], "engine": self.settings.engine,
                   "model_version": self.model_version, "share": bool(share), "created_at": storage.now()}
            with self.db.begin() as connection:
                connection.execute(tryons.insert().values(**row))
        except Exception:  # the photo is not kept
            self.store.delete(photo_key, storage.analysis_file(photo_key))
            raise
        self._wake.set()  # a worker of this process takes it at once
        return self.tryon(tryon_id) | {"guidance_report": report}

    def retry_after(self) -> int:
        waiting = self.queue.depth()
        return max(1, int(np.ceil(self.runner.seconds * max(1, waiting) / max(1, self.queue.alive()))))

    def tryon(self, tryon_id: str) -> dict:
        with self.db.connect() as connection:
            row = connection.execute(sa.select(tryons, ratings.c.good, ratings.c.reason)
                                     .select_from(tryons.outerjoin(ratings, ratings.c.tryon_id == tryons.c.id))
                                     .where(tryons.c.id == tryon_id)).first()
        if row is None:
            raise NotFound(f"no try-on {tryon_id}")
        created = storage.aware(row.created_at)
        document = {"id": row.id, "status": row.status, "garment_id": row.garment_id, "view": row.view,
                    "guidance": row.guidance, "engine": row.engine, "model_version": row.model_version,
                    "share": row.share, "created_at": created.isoformat(), "error": row.error,
                    "seconds": row.seconds, "attempts": row.attempts,
                    "expires_at": None if row.share else
                    (created + dt.timedelta(hours=self.settings.retention_hours)).isoformat(),
                    "rating": None if row.good is None else {"good": row.good, "reason": row.reason}}
        if row.status == "queued":
            document["queue_length"] = self.queue.depth()
        return document

    @staticmethod
    def _row(connection, tryon_id: str):
        """The try-on's row, or NotFound."""
        row = connection.execute(sa.select(tryons).where(tryons.c.id == tryon_id)).first()
        if row is None:
            raise NotFound(f"no try-on {tryon_id}")
        return row

    def tryon_file(self, tryon_id: str, which: str) -> bytes:
        """The PNG bytes of the try-on's ``result`` or ``photo``, or NotFound."""
        with self.db.connect() as connection:
            row = self._row(connection, tryon_id)
        key = row.result if which == "result" else row.photo
        if key is None:
            raise NotFound(f"try-on {tryon_id} has no {which} image ({row.status})")
        try:
            return self.store.get(key)
        except FileNotFoundError:
            raise NotFound(f"try-on {tryon_id}'s {which} image is missing on the server") from None

    def delete(self, tryon_id: str) -> None:
        """Everything of a try-on at once: its photo, its result, its row and its rating."""
        with self.db.begin() as connection:
            row = self._row(connection, tryon_id)
            connection.execute(ratings.delete().where(ratings.c.tryon_id == tryon_id))
            connection.execute(tryons.delete().where(tryons.c.id == tryon_id))
        self.store.delete(row.photo, row.result, storage.analysis_file(row.photo))

    def rate(self, tryon_id: str, good: bool, reason: str | None) -> dict:
        with self.db.begin() as connection:
            row = self._row(connection, tryon_id)
            if row.status != "done":
                raise ServiceError(f"only a finished try-on can be rated; this one is {row.status}", status=409,
                                   code="not_finished")
            connection.execute(ratings.delete().where(ratings.c.tryon_id == tryon_id))
            connection.execute(ratings.insert().values(tryon_id=tryon_id, good=good, reason=(reason or None),
                                                       created_at=storage.now()))
        return self.tryon(tryon_id)

    # --------------------------------------------------------------------------- catalogue, statistics, retention
    def _can_try_on(self, document: dict) -> dict:
        """The garment's document with ``can_try_on``: whether this fitting room's engine dresses its category."""
        return document | {"can_try_on": GarmentCategory(document["category"]) in self.categories}

    def add_garment(self, name: str, category: str | None, front: np.ndarray, back: np.ndarray | None) -> dict:
        return self._can_try_on(self.catalogue.add(name, category, front, back))

    def set_garment_photo(self, garment_id: str, view: View, image: np.ndarray) -> dict:
        return self._can_try_on(self.catalogue.set_photo(garment_id, view, image))

    def list_garments(self) -> list[dict]:
        return [self._can_try_on(document) for document in self.catalogue.list()]

    def delete_garment(self, garment_id: str) -> None:
        self.catalogue.delete(garment_id)

    def garment_image(self, garment_id: str, view: str) -> bytes:
        return self.catalogue.image(garment_id, view)

    def stats(self) -> dict:
        return stats.success_rates(self.db)

    def latest_rated(self, limit: int = 20) -> list[dict]:
        return [self.tryon(tryon_id) for tryon_id in stats.latest_rated(self.db, limit)]

    def expire(self, at: dt.datetime | None = None) -> int:
        return stats.expire(self.db, self.store, self.settings.retention_hours, at)
