"""Try-on workers: claim a job from the queue (:mod:`fitroom.service.queue`), run the engine, store the result.

They run as threads of ``fitroom serve`` (``--workers N``) or as processes of their own on any machine that sees
the database and the image storage (``fitroom worker``, :func:`run_worker`). A failure that is the photo's or the
garment's (nobody to dress, a job over the time limit) fails the job at once with its reason; any other failure
(storage or database out of reach, a crash) counts as an attempt, and the job is run again, at most
:data:`~fitroom.service.queue.MAX_ATTEMPTS` times. The result is written under a name of its own attempt and
recorded only when the worker still holds the job, so that each job has one result.
"""

from __future__ import annotations

import logging
import signal
import zipfile
import threading
import time
from pathlib import Path

from fitroom import fitting
from fitroom.labels import View
from fitroom.preprocess.errors import PhotoError
from fitroom.preprocess.pipeline import load_detections
from fitroom.service.catalogue import Catalogue
from fitroom.service.errors import ServiceError, public_message
from fitroom.service.metrics import ServiceMetrics
from fitroom.service.objects import MissingObject, ObjectStore
from fitroom.service.queue import Claim, Heartbeat, JobQueue, new_worker_id
from fitroom.service.settings import Settings
from fitroom.service.storage import analysis_file, tryons

logger = logging.getLogger(__name__)

#: failures that are the job's own (its photo, its garment, its time): retrying would fail the same way
FINAL_ERRORS = (ValueError, TimeoutError, ServiceError, PhotoError)


class TryOnRunner:
    """Runs claimed try-ons; shared by every worker thread of a process (the engine and the preprocessing behind
    the given locks, which the process's photo checks share).

    Args:
        settings: the service's settings (job time limit, data folder for error messages).
        queue: the job queue.
        store: the image store.
        catalogue: the garments (read only here).
        engine: the try-on engine (``engine(inputs) -> TryOnResult``).
        preprocessor: the person and garment analysis.
        metrics: where finished jobs are counted (None: nowhere).
    """

    def __init__(self, settings: Settings, queue: JobQueue, store: ObjectStore, catalogue: Catalogue, engine,
                 preprocessor, preprocess_lock: threading.Lock | None = None, metrics: ServiceMetrics | None = None,
                 ) -> None:
        self.settings, self.queue, self.store, self.catalogue = settings, queue, store, catalogue
        self.engine, self.preprocessor, self.metrics = engine, preprocessor, metrics
        self.preprocess_lock = preprocess_lock or threading.Lock()
        self.engine_lock = threading.Lock()
        self.seconds = 5.0  # a running estimate of one try-on, for Retry-After

    def run(self, claim: Claim) -> str | None:
        """Run one claimed job to its end; returns its new status (``done``, ``failed``, ``queued`` for another
        attempt), or None when the job was no longer this worker's by then (nothing recorded)."""
        start = time.perf_counter()
        result_key = None
        with self.queue.db.connect() as connection:
            row = connection.execute(tryons.select().where(tryons.c.id == claim.id)).first()
        if row is None or row.photo is None:  # deleted or expired meanwhile
            self.queue.finish(claim, "failed", error="the try-on's photo was deleted before it ran")
            return None
        try:
            garment = self.catalogue.get(row.garment_id)
            photo_key, mask_key = self.catalogue.photo(garment.id, row.view)
            try:
                garment_image, garment_mask = self.store.get_image(photo_key), self.store.get_mask(mask_key)
            except MissingObject:
                raise ServiceError(f"the garment's {row.view} product photo is missing on the server") from None
            try:
                person = self.store.get_image(row.photo)
            except MissingObject:
                raise ServiceError("the try-on's person photo is missing on the server") from None
            detections = self._saved_detections(row.photo)
            with self.preprocess_lock:
                if detections is None:  # a missing or damaged file: the models run again
                    detections = self.preprocessor.detect(person)
                analysis = self.preprocessor.finish(person, detections, View(row.view), claim.id)
                inputs = fitting.prepare(self.preprocessor, analysis, person, garment_image, garment_mask,
                                         garment.category, row.view, claim.id, garment.id)
            with self.engine_lock:
                result = fitting.try_on(self.engine, inputs)
            seconds = time.perf_counter() - start
            # the engine cannot be interrupted mid-call; a try-on over the limit is reported failed, not shown late
            if seconds > self.settings.job_timeout_s:
                raise TimeoutError(f"the try-on took {seconds:.0f} s, over the {self.settings.job_timeout_s:.0f} s "
                                   f"limit")
            result_key = f"results/{claim.id}-{claim.attempt}.png"  # this attempt's own: no two writers of one name
            self.store.put_image(result_key, result.image)
            status = "done" if self.queue.finish(claim, "done", result=result_key, seconds=seconds, error=None) \
                else None
            if status is None:  # taken over meanwhile: the other attempt's result stands, this one is removed
                self.store.delete(result_key)
            else:  # and what an earlier attempt that died may have left
                self.store.delete(*(f"results/{claim.id}-{n}.png" for n in range(1, claim.attempt)))
                self.seconds = 0.8 * self.seconds + 0.2 * seconds
        except FINAL_ERRORS as error:
            logger.warning("try-on %s failed: %s", claim.id, type(error).__name__)
            status = "failed" if self.queue.finish(claim, "failed", error=self._message(error),
                                                   seconds=time.perf_counter() - start) else None
        except Exception as error:  # may pass: another attempt (storage, database, a crash in the engine)
            logger.warning("try-on %s attempt %d failed: %s: %s", claim.id, claim.attempt, type(error).__name__,
                           public_message(error, Path(self.settings.data_dir)),
                           exc_info=not isinstance(error, OSError))  # a bug's traceback, for whoever fixes it
            if result_key is not None:
                self.store.delete(result_key)
            status = self.queue.retry(claim, self._message(error), time.perf_counter() - start)
        if status in ("done", "failed"):
            self.store.delete(analysis_file(row.photo))
            if self.metrics is not None:
                self.metrics.finished(status, time.perf_counter() - start)
        return status

    def _message(self, error: Exception) -> str:
        """What the shopper is told; no server paths, no internals of an unexpected error."""
        if isinstance(error, FINAL_ERRORS) or isinstance(error, OSError):
            return public_message(error, Path(self.settings.data_dir))
        return "an unexpected error (it was logged on the server)"

    def _saved_detections(self, photo: str):
        """The models' findings the upload's check was made from, or None."""
        try:
            return load_detections(self.store.get(analysis_file(photo)))
        except MissingObject:
            return None
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:  # damaged or unreadable:
            # analysed again, nothing lost
            logger.warning("the saved detections of %s cannot be read (%s); running the models again",
                           Path(photo).stem, type(error).__name__)
            return None


class WorkerLoop:
    """One worker: claims and runs jobs until ``stop`` is set, waiting ``poll_s`` between empty claims (or
    until ``wake`` is set: the API of the same process sets it when it queues a job). Registered in the
    ``workers`` table while it runs."""

    def __init__(self, runner: TryOnRunner, stop: threading.Event, wake: threading.Event | None = None,
                 poll_s: float = 0.5, worker_id: str | None = None) -> None:
        self.runner, self.stop, self.wake = runner, stop, wake or threading.Event()
        self.poll_s = poll_s
        self.id = worker_id or new_worker_id()
        self.jobs = 0
        self.heartbeat: Heartbeat | None = None

    def run(self, max_jobs: int | None = None) -> int:
        """Work until stopped (or ``max_jobs`` jobs ran); returns the number of jobs run."""
        queue = self.runner.queue
        queue.register(self.id)
        self.heartbeat = Heartbeat(queue, self.id).start()
        try:
            while not self.stop.is_set() and (max_jobs is None or self.jobs < max_jobs):
                try:
                    claim = queue.claim(self.id)
                except Exception as error:  # the database is away: wait, try again
                    logger.warning("worker %s cannot reach the queue: %s", self.id, type(error).__name__)
                    claim = None
                if claim is None:
                    self.wake.wait(self.poll_s)
                    self.wake.clear()
                    continue
                self.heartbeat.holding = claim
                try:
                    self.runner.run(claim)
                except Exception as error:  # the database went away mid-job: its lease runs out, it runs again
                    logger.warning("worker %s lost try-on %s: %s", self.id, claim.id, type(error).__name__)
                except BaseException:  # interrupted at once (a second signal): the job goes back to the queue
                    try:
                        queue.release(claim)
                        logger.warning("try-on %s handed back to the queue unfinished", claim.id)
                    except Exception:  # the database is away: the lease will run out instead
                        pass
                    raise
                finally:
                    self.heartbeat.holding = None
                self.jobs += 1
        finally:
            self.heartbeat.stop()
            try:
                queue.unregister(self.id)
            except Exception:  # the database is away: the row is forgotten after ten leases
                pass
        return self.jobs


def run_worker(settings: Settings, engine=None, preprocessor=None, max_jobs: int | None = None,
               stop: threading.Event | None = None, metrics_port: int | None = None,
               metrics_host: str = "127.0.0.1") -> int:
    """``fitroom worker``: one worker process on the service's database and image storage until SIGTERM or
    SIGINT (the job at hand is finished first; a second signal hands it back to the queue at once). Returns the
    number of jobs run. With ``metrics_port`` it serves its own ``/metrics`` (Prometheus text: the try-ons this
    worker finished and their latency, with the queue depth and live workers of the database) on
    ``metrics_host:metrics_port``, for a worker on a machine of its own."""
    from fitroom.engines import create_engine
    from fitroom.preprocess.pipeline import Preprocessor
    from fitroom.service.objects import open_store
    from fitroom.service.storage import open_database

    engine = engine or create_engine(settings.engine, checkpoint=settings.checkpoint, device=settings.device,
                                     progress=False, **settings.engine_options)
    db, _ = open_database(settings.database)
    store = open_store(settings.storage, settings.data_dir)
    queue = JobQueue(db, lease_s=settings.lease_s)
    own_preprocessor = preprocessor is None
    preprocessor = preprocessor or Preprocessor(allow_several_people=True)
    stop = stop or threading.Event()
    catalogue = Catalogue(db, store)
    metrics, server = None, None
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from fitroom.service.metrics import ServiceMetrics

        metrics = ServiceMetrics(queue.depth, queue.alive)
        server, _ = start_http_server(metrics_port, metrics_host, registry=metrics.registry)
        logger.info("worker metrics on http://%s:%d/metrics", metrics_host, server.server_port)
    runner = TryOnRunner(settings, queue, store, catalogue, engine, preprocessor, metrics=metrics)
    loop = WorkerLoop(runner, stop, poll_s=settings.poll_s)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(number, _frame) -> None:
            if stop.is_set():  # the second: stop now
                raise KeyboardInterrupt
            logger.info("%s: finishing the try-on at hand, then stopping (again to stop at once)",
                        signal.Signals(number).name)
            stop.set()

        for number in (signal.SIGTERM, signal.SIGINT):
            handlers[number] = signal.signal(number, on_signal)
    logger.info("worker %s: engine %s, images in %s", loop.id, settings.engine, store.describe())
    try:
        jobs = loop.run(max_jobs)
    except KeyboardInterrupt:
        jobs = loop.jobs
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
        if own_preprocessor:
            preprocessor.close()
        if server is not None:
            server.shutdown()
        db.dispose()
    logger.info("worker %s stopped after %d try-ons", loop.id, jobs)
    return jobs
