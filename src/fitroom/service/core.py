"""The fitting room without HTTP: guidance and try-on jobs, with the catalogue (:mod:`.catalogue`), the statistics
and retention (:mod:`.stats`) and the errors (:mod:`.errors`) in their own modules.

Heavy work (preprocessing, the engine) runs in a bounded pool of ``workers`` threads; at most ``queue_size``
try-ons wait or run, a further one raises :class:`QueueFull` (the API answers 429 with Retry-After). Jobs are rows
in the database: a job that was queued or running when the server stopped is queued again at start-up. Shoppers'
photos and results are deleted ``retention_hours`` after the try-on unless the shopper agreed to share them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from fitroom import fitting, imaging
from fitroom.labels import GarmentCategory, View
from fitroom.preprocess.errors import PhotoError
from fitroom.preprocess.pipeline import load_analysis, save_analysis
from fitroom.service import stats, storage
from fitroom.service.catalogue import Catalogue
from fitroom.service.checkers import CheckerPool
from fitroom.service.metrics import ServiceMetrics
from fitroom.service.errors import (  # noqa: F401  (the service's errors, also reachable here)
    NotFound, PhotoRefused, QueueFull, ServiceError, public_message,
)
from fitroom.service.settings import Settings
from fitroom.service.storage import ratings, tryons

logger = logging.getLogger(__name__)


class FittingRoom:
    """One per server process. ``engine`` may be given (tests inject a tiny one); else created from settings."""

    def __init__(self, settings: Settings, engine=None, preprocessor=None) -> None:
        from fitroom.engines import create_engine
        from fitroom.preprocess.pipeline import Preprocessor

        self.settings = settings
        # the engine first: a missing checkpoint stops the start before anything is written
        self.engine = engine or create_engine(settings.engine, checkpoint=settings.checkpoint, device=settings.device,
                                              progress=False, **settings.engine_options)
        self.root = Path(settings.data_dir)
        for folder in ("garments", "photos", "results"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.db, self.schema = storage.open_database(settings.database)
        self.model_version = settings.model_version or (f"{settings.engine}:{Path(settings.checkpoint).name}"
                                                        if settings.checkpoint else settings.engine)
        self._own_preprocessor = preprocessor is None
        self.preprocessor = preprocessor or Preprocessor(allow_several_people=True)
        # mediapipe's graphs and the engines are not thread-safe: one photo at a time through each
        self._preprocess_lock = threading.Lock()
        self.catalogue = Catalogue(self.db, self.root, self._segment)
        self._engine_lock = threading.Lock()
        # photo checks in their own processes (FITROOM_CHECK_PROCESSES), else here, one at a time
        self._checkers = CheckerPool(settings.check_processes) if settings.check_processes else None
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="fitroom-job")
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._seconds = 5.0  # a running estimate of one try-on, for Retry-After
        self.metrics = ServiceMetrics(lambda: self._pending, settings.workers)
        self.ready = True
        self._requeue()

    def unready(self) -> str | None:
        """What keeps this process from serving (``/readyz``): None when the database answers and the image folders
        are writable, else the reason in words (no server detail)."""
        try:
            with self.db.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception:  # any driver's error: the database cannot be reached or used
            return "the database is unreachable"
        if not all(os.access(self.root / folder, os.W_OK) for folder in ("garments", "photos", "results")):
            return "the image storage is not writable"
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
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
        return self._check(photo, category, view).report.to_dict()

    def _segment(self, image: np.ndarray, category: str | None):
        with self._preprocess_lock:
            return self.preprocessor.analyse_garment(image, category)

    def _check(self, photo: np.ndarray, category: GarmentCategory, view: View) -> fitting.Checked:
        """The checks, and the person analysis made on the way (see :func:`fitroom.fitting.check`)."""
        with self.metrics.check_seconds.time():
            if self._checkers is not None:
                return self._checkers.check(photo, category, view)
            with self._preprocess_lock:
                return fitting.check(self.preprocessor, photo, category, view, "upload")

    # ----------------------------------------------------------------------------------------------- try-ons
    def submit(self, photo: np.ndarray, garment_id: str, view: View, share: bool, force: bool = False) -> dict:
        """Check the photo, then queue a try-on; raises PhotoRefused (guidance said fail), QueueFull or NotFound."""
        garment = self.catalogue.document(garment_id)  # its category and the views it has, in one read
        if View(view).value not in garment["views"]:
            raise ServiceError(f"garment {garment_id} has no {View(view).value} photo; choose one of its views: "
                               f"{', '.join(garment['views'])}", code="no_such_view")
        checked = self._check(photo, GarmentCategory(garment["category"]), view)
        report = checked.report.to_dict()
        try:
            analysis = fitting.admit(checked, force)
        except fitting.PhotoRefusedError as error:
            raise PhotoRefused(str(error), report) from None
        except PhotoError:  # forced, but nobody to dress: the job analyses the photo again and says why
            analysis = None
        with self._pending_lock:
            if self._pending >= self.settings.queue_size:
                raise QueueFull(f"{self._pending} try-ons are already waiting; try again shortly")
            self._pending += 1
        tryon_id = storage.new_id()
        photo_path = f"photos/{tryon_id}.png"
        try:
            imaging.save_image(self.root / photo_path, photo)
            if analysis is not None:  # the job reuses it instead of analysing the photo again, in any process
                save_analysis(analysis, self.root / storage.analysis_file(photo_path))
            row = {"id": tryon_id, "garment_id": garment_id, "view": view.value, "status": "queued",
                   "photo": photo_path, "guidance": report["status"], "engine": self.settings.engine,
                   "model_version": self.model_version, "share": bool(share), "created_at": storage.now()}
            with self.db.begin() as connection:
                connection.execute(tryons.insert().values(**row))
        except Exception:  # the place in the queue is given back, the photo not kept
            with self._pending_lock:
                self._pending -= 1
            storage.remove_files(self.root, photo_path, storage.analysis_file(photo_path))
            raise
        self._pool.submit(self._run, tryon_id)
        return self.tryon(tryon_id) | {"guidance_report": report}

    def retry_after(self) -> int:
        with self._pending_lock:
            waiting = self._pending
        return max(1, int(np.ceil(self._seconds * max(1, waiting) / self.settings.workers)))

    def _requeue(self) -> None:
        """Jobs a stopped server left queued or running are queued again."""
        with self.db.begin() as connection:
            rows = connection.execute(sa.select(tryons.c.id).where(tryons.c.status.in_(("queued", "running")))
                                      .order_by(tryons.c.created_at)).fetchall()
            connection.execute(tryons.update().where(tryons.c.status == "running").values(status="queued"))
        for (tryon_id,) in rows:
            with self._pending_lock:
                self._pending += 1
            self._pool.submit(self._run, tryon_id)
        if rows:
            logger.info("queued again %d try-ons left unfinished by the last run", len(rows))

    def _run(self, tryon_id: str) -> None:
        start = time.perf_counter()
        row = None
        try:
            with self.db.begin() as connection:
                row = connection.execute(sa.select(tryons).where(tryons.c.id == tryon_id)).first()
                if row is None or row.status != "queued" or row.photo is None:
                    return  # deleted or expired meanwhile
                connection.execute(tryons.update().where(tryons.c.id == tryon_id).values(status="running"))
            garment = self.catalogue.get(row.garment_id)
            photo, mask = self.catalogue.photo(garment.id, row.view)
            garment_image, garment_mask = imaging.load_image(photo), imaging.load_mask(mask)
            person = imaging.load_image(self.root / row.photo)
            analysis = self._saved_analysis(row.photo)
            with self._preprocess_lock:
                if analysis is None:  # a forced photo with nobody found, or a damaged file
                    analysis = self.preprocessor.analyse_person(person, View(row.view), tryon_id)
                inputs = fitting.prepare(self.preprocessor, analysis, person, garment_image, garment_mask,
                                         garment.category, row.view, tryon_id, garment.id)
            with self._engine_lock:
                result = fitting.try_on(self.engine, inputs)
            seconds = time.perf_counter() - start
            # the engine cannot be interrupted mid-call; a try-on over the limit is reported failed, not shown late
            if seconds > self.settings.job_timeout_s:
                raise TimeoutError(f"the try-on took {seconds:.0f} s, over the {self.settings.job_timeout_s:.0f} s "
                                   f"limit")
            result_path = f"results/{tryon_id}.png"
            imaging.save_image(self.root / result_path, result.image)
            self._seconds = 0.8 * self._seconds + 0.2 * seconds
            values = {"status": "done", "result": result_path, "seconds": seconds}
        except Exception as error:  # the job fails with a message; the server goes on
            logger.warning("try-on %s failed: %s", tryon_id, type(error).__name__)
            message = (public_message(error, self.root) if isinstance(error, (ValueError, TimeoutError, ServiceError))
                       else "the try-on failed")
            values = {"status": "failed", "error": message, "seconds": time.perf_counter() - start}
        finally:
            with self._pending_lock:
                self._pending -= 1
            if row is not None:
                storage.remove_files(self.root, storage.analysis_file(row.photo))
        self.metrics.finished(values["status"], values["seconds"])
        with self.db.begin() as connection:
            connection.execute(tryons.update().where((tryons.c.id == tryon_id) & (tryons.c.status == "running"))
                               .values(finished_at=storage.now(), **values))

    def _saved_analysis(self, photo: str):
        """The analysis the upload's check made (:func:`~fitroom.preprocess.pipeline.save_analysis`), or None."""
        path = self.root / storage.analysis_file(photo)
        if not path.is_file():
            return None
        try:
            return load_analysis(path)
        except (OSError, ValueError, KeyError) as error:  # damaged: analysed again, nothing lost
            logger.warning("the saved analysis of %s cannot be read (%s); analysing the photo again",
                           Path(photo).stem, type(error).__name__)
            return None

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
                    "seconds": row.seconds,
                    "expires_at": None if row.share else
                    (created + dt.timedelta(hours=self.settings.retention_hours)).isoformat(),
                    "rating": None if row.good is None else {"good": row.good, "reason": row.reason}}
        if row.status == "queued":
            with self._pending_lock:
                document["queue_length"] = self._pending
        return document

    @staticmethod
    def _row(connection, tryon_id: str):
        """The try-on's row, or NotFound."""
        row = connection.execute(sa.select(tryons).where(tryons.c.id == tryon_id)).first()
        if row is None:
            raise NotFound(f"no try-on {tryon_id}")
        return row

    def tryon_file(self, tryon_id: str, which: str) -> Path:
        with self.db.connect() as connection:
            row = self._row(connection, tryon_id)
        path = row.result if which == "result" else row.photo
        if path is None:
            raise NotFound(f"try-on {tryon_id} has no {which} image ({row.status})")
        return self.root / path

    def delete(self, tryon_id: str) -> None:
        """Everything of a try-on at once: its photo, its result, its row and its rating."""
        with self.db.begin() as connection:
            row = self._row(connection, tryon_id)
            connection.execute(ratings.delete().where(ratings.c.tryon_id == tryon_id))
            connection.execute(tryons.delete().where(tryons.c.id == tryon_id))
        storage.remove_files(self.root, row.photo, row.result, storage.analysis_file(row.photo))

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
    def add_garment(self, name: str, category: str | None, front: np.ndarray, back: np.ndarray | None) -> dict:
        return self.catalogue.add(name, category, front, back)

    def set_garment_photo(self, garment_id: str, view: View, image: np.ndarray) -> dict:
        return self.catalogue.set_photo(garment_id, view, image)

    def list_garments(self) -> list[dict]:
        return self.catalogue.list()

    def delete_garment(self, garment_id: str) -> None:
        self.catalogue.delete(garment_id)

    def garment_image(self, garment_id: str, view: str) -> Path:
        return self.catalogue.image(garment_id, view)

    def stats(self) -> dict:
        return stats.success_rates(self.db)

    def latest_rated(self, limit: int = 20) -> list[dict]:
        return [self.tryon(tryon_id) for tryon_id in stats.latest_rated(self.db, limit)]

    def expire(self, at: dt.datetime | None = None) -> int:
        return stats.expire(self.db, self.root, self.settings.retention_hours, at)
