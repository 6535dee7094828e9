"""The fitting room without HTTP: guidance, garments, try-on jobs, ratings, statistics, retention.

Heavy work (preprocessing, the engine) runs in a bounded pool of ``workers`` threads; at most ``queue_size``
try-ons wait or run, a further one raises :class:`QueueFull` (the API answers 429 with Retry-After). Jobs are rows
in the database: a job that was queued or running when the server stopped is queued again at start-up. Shoppers'
photos and results are deleted ``retention_hours`` after the try-on unless the shopper agreed to share them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from fitroom import fitting, imaging
from fitroom.errors import FitroomError
from fitroom.labels import GarmentCategory, View
from fitroom.preprocess.errors import PhotoError
from fitroom.service import storage
from fitroom.service.settings import Settings
from fitroom.service.storage import garments, ratings, tryons

logger = logging.getLogger(__name__)


class ServiceError(FitroomError):
    """An error with an HTTP status and a code, whose message is safe to show (no file names, no image data)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status or self.status
        self.code = code or self.code


class NotFound(ServiceError):
    status, code = 404, "not_found"


class QueueFull(ServiceError):
    status, code = 429, "queue_full"


class PhotoRefused(ServiceError):
    status, code = 422, "photo_refused"

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][\w.\-]+){2,}")


def public_message(error: BaseException, root: Path) -> str:
    """``error``'s message for a client: no path of the server's file system (in the data folder or elsewhere)
    is passed on; each becomes "a file on the server"."""
    message = str(error)
    if not root.is_absolute():  # a relative data folder's paths are made absolute, so the pattern finds them
        message = message.replace(str(root), str(root.resolve()))
    return _PATH.sub("a file on the server", message)


class FittingRoom:
    """One per server process. ``engine`` may be given (tests inject a tiny one); else created from settings."""

    def __init__(self, settings: Settings, engine=None, preprocessor=None) -> None:
        from fitroom.engines import create_engine
        from fitroom.preprocess.pipeline import Preprocessor

        self.settings = settings
        # the engine first: a missing checkpoint stops the start before anything is written
        self.engine = engine or create_engine(settings.engine, checkpoint=settings.checkpoint, device=settings.device)
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
        self._engine_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="fitroom-job")
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._seconds = 5.0  # a running estimate of one try-on, for Retry-After
        self._analyses: dict = {}  # try-on id -> the person analysis made by the upload's check
        self.ready = True
        self._requeue()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
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

    def _check(self, photo: np.ndarray, category: GarmentCategory, view: View) -> fitting.Checked:
        """The checks, and the person analysis made on the way (see :func:`fitroom.fitting.check`)."""
        with self._preprocess_lock:
            return fitting.check(self.preprocessor, photo, category, view, "upload")

    # ---------------------------------------------------------------------------------------------- garments
    def add_garment(self, name: str, category: str | None, front: np.ndarray, back: np.ndarray | None) -> dict:
        """Store a garment's product photos with their masks (segmented once, here)."""
        from fitroom.preprocess.garment import GarmentError

        garment_id = storage.new_id()
        paths: dict[str, str | None] = {"back": None, "back_mask": None}
        try:
            for side, image in (("front", front), ("back", back)):
                if image is None:
                    continue
                with self._preprocess_lock:
                    mask, guessed = self.preprocessor.analyse_garment(image, category)
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
        return self._garment_document(row)

    @staticmethod
    def _garment_document(row) -> dict:
        row = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
        return {"id": row["id"], "name": row["name"], "category": row["category"],
                "views": ["front"] + (["back"] if row["back"] else []),
                "created_at": storage.aware(row["created_at"]).isoformat()}

    def list_garments(self) -> list[dict]:
        with self.db.connect() as connection:
            rows = connection.execute(sa.select(garments).where(garments.c.deleted_at.is_(None))
                                      .order_by(garments.c.created_at)).fetchall()
        return [self._garment_document(r) for r in rows]

    def delete_garment(self, garment_id: str) -> None:
        """Take a garment out of the catalogue: its photos and masks are removed; the row stays, marked deleted,
        because its try-ons (and the statistics) refer to it."""
        row = self._garment(garment_id)
        with self.db.begin() as connection:
            connection.execute(garments.update().where(garments.c.id == garment_id).values(deleted_at=storage.now()))
        storage.remove_files(self.root, row.front, row.front_mask, row.back, row.back_mask)

    def garment_image(self, garment_id: str, view: str) -> Path:
        row = self._garment(garment_id)
        path = row.front if view == "front" else row.back
        if path is None:
            raise NotFound(f"garment {garment_id} has no {view} photo")
        if not (self.root / path).is_file():
            logger.warning("garment %s: its %s photo is missing from the data folder", garment_id, view)
            raise NotFound(f"garment {garment_id}'s {view} photo is missing on the server")
        return self.root / path

    def _garment(self, garment_id: str):
        with self.db.connect() as connection:
            row = connection.execute(sa.select(garments).where((garments.c.id == garment_id)
                                                                & garments.c.deleted_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no garment {garment_id}")
        return row

    # ----------------------------------------------------------------------------------------------- try-ons
    def submit(self, photo: np.ndarray, garment_id: str, view: View, share: bool, force: bool = False) -> dict:
        """Check the photo, then queue a try-on; raises PhotoRefused (guidance said fail), QueueFull or NotFound."""
        garment = self._garment(garment_id)
        if view is View.BACK and garment.back is None:
            raise ServiceError(f"garment {garment_id} has no back photo; choose the front view", code="no_back_view")
        checked = self._check(photo, GarmentCategory(garment.category), view)
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
            row = {"id": tryon_id, "garment_id": garment_id, "view": view.value, "status": "queued",
                   "photo": photo_path, "guidance": report["status"], "engine": self.settings.engine,
                   "model_version": self.model_version, "share": bool(share), "created_at": storage.now()}
            with self.db.begin() as connection:
                connection.execute(tryons.insert().values(**row))
        except Exception:  # the place in the queue is given back, the photo not kept
            with self._pending_lock:
                self._pending -= 1
            storage.remove_files(self.root, photo_path)
            raise
        if analysis is not None:  # the job reuses it instead of analysing the photo again (in memory only)
            self._analyses[tryon_id] = analysis
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
        try:
            with self.db.begin() as connection:
                row = connection.execute(sa.select(tryons).where(tryons.c.id == tryon_id)).first()
                if row is None or row.status != "queued" or row.photo is None:
                    self._analyses.pop(tryon_id, None)
                    return  # deleted or expired meanwhile
                connection.execute(tryons.update().where(tryons.c.id == tryon_id).values(status="running"))
            garment = self._garment(row.garment_id)
            side = "front" if row.view == "front" else "back"
            garment_image = imaging.load_image(self.root / getattr(garment, side))
            garment_mask = imaging.load_mask(self.root / getattr(garment, f"{side}_mask"))
            person = imaging.load_image(self.root / row.photo)
            analysis = self._analyses.pop(tryon_id, None)
            with self._preprocess_lock:
                if analysis is None:  # e.g. a job queued again after a restart
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
            message = (public_message(error, self.root) if isinstance(error, (ValueError, TimeoutError))
                       else "the try-on failed")
            values = {"status": "failed", "error": message, "seconds": time.perf_counter() - start}
        finally:
            with self._pending_lock:
                self._pending -= 1
        with self.db.begin() as connection:
            connection.execute(tryons.update().where((tryons.c.id == tryon_id) & (tryons.c.status == "running"))
                               .values(finished_at=storage.now(), **values))

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
        storage.remove_files(self.root, row.photo, row.result)

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

    # ------------------------------------------------------------------------------------------- statistics
    def stats(self) -> dict:
        """Success rate (good ratings / ratings) by day, by engine and model version, and by guidance outcome."""
        with self.db.connect() as connection:
            rows = connection.execute(sa.select(ratings.c.good, ratings.c.created_at, tryons.c.engine,
                                                tryons.c.model_version, tryons.c.guidance)
                                      .select_from(ratings.join(tryons, ratings.c.tryon_id == tryons.c.id))).fetchall()
            counts = dict(connection.execute(sa.select(tryons.c.status, sa.func.count())
                                             .group_by(tryons.c.status)).fetchall())

        def rate_of(groups: dict[str, list[bool]]) -> list[dict]:
            return [{"key": key, "ratings": len(v), "good": sum(v), "success_rate": sum(v) / len(v)}
                    for key, v in sorted(groups.items())]

        by_day, by_model, by_guidance = defaultdict(list), defaultdict(list), defaultdict(list)
        for row in rows:
            by_day[storage.aware(row.created_at).date().isoformat()].append(row.good)
            by_model[f"{row.engine} {row.model_version}"].append(row.good)
            by_guidance[row.guidance or "unknown"].append(row.good)
        total = [row.good for row in rows]
        return {"ratings": len(total), "success_rate": (sum(total) / len(total)) if total else None,
                "tryons": counts, "by_day": rate_of(by_day), "by_model": rate_of(by_model),
                "by_guidance": rate_of(by_guidance)}

    def latest_rated(self, limit: int = 20) -> list[dict]:
        with self.db.connect() as connection:
            rows = connection.execute(sa.select(tryons.c.id).select_from(
                ratings.join(tryons, ratings.c.tryon_id == tryons.c.id)).order_by(ratings.c.created_at.desc())
                .limit(limit)).fetchall()
        return [self.tryon(r.id) for r in rows]

    # ---------------------------------------------------------------------------------------------- retention
    def expire(self, at: dt.datetime | None = None) -> int:
        """Delete the photos and results of try-ons older than the retention period whose shoppers did not agree
        to share them; the rows stay (for the statistics) marked ``expired``. Returns how many were expired."""
        cutoff = (at or storage.now()) - dt.timedelta(hours=self.settings.retention_hours)
        with self.db.begin() as connection:
            rows = connection.execute(sa.select(tryons.c.id, tryons.c.photo, tryons.c.result).where(
                (tryons.c.created_at < cutoff) & (tryons.c.share.is_(False)) & (tryons.c.photo.is_not(None))
                & tryons.c.status.in_(("done", "failed")))).fetchall()
            for row in rows:
                connection.execute(tryons.update().where(tryons.c.id == row.id)
                                   .values(photo=None, result=None, status="expired"))
        for row in rows:
            storage.remove_files(self.root, row.photo, row.result)
        if rows:
            logger.info("retention: removed the photos of %d try-ons", len(rows))
        return len(rows)
