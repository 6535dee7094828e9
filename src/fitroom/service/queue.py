"""The try-on job queue, in the service's database: any number of workers, in any process on any machine, claim
queued try-ons, run them and write their results.

* **Claim**: one statement takes the oldest queued job (or one whose lease ran out), marks it ``running`` under the
  worker's id with a lease, and counts the attempt. PostgreSQL skips rows another worker is claiming (``FOR UPDATE
  SKIP LOCKED``); SQLite runs the statement under its database write lock (one host).
* **Lease**: a running job belongs to its worker until ``lease_until``; the worker extends it while it works
  (:class:`Heartbeat`). A worker that dies (SIGKILL, a lost machine) stops extending it, and the job is claimed
  again once it runs out; a job started :data:`MAX_ATTEMPTS` times without an end is marked failed with the reason.
* **Finish**: the result is recorded only if the worker still holds the job at that attempt (compare-and-set), so a
  job never ends twice, even when a paused worker wakes after its lease was taken over.
* **Workers** register in the ``workers`` table and say they are alive there (``/metrics`` counts them); the
  leases of workers of this host whose process is gone are ended at once, so that a restarted server does not wait.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fitroom.service import storage
from fitroom.service.storage import tryons, workers

logger = logging.getLogger(__name__)

#: a try-on started this many times without finishing (its worker died, or it failed for a passing reason) fails
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: the try-on's id, which start of it this is (1, 2, ...), and the worker's id."""

    id: str
    attempt: int
    worker: str


#: this process among all that ran with its pid (a container's restarted server often gets the same one)
_PROCESS = uuid.uuid4().hex[:8]


def new_worker_id() -> str:
    """``host-pid-process-random``: unique among workers, and says where a worker runs."""
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{_PROCESS}-{uuid.uuid4().hex[:4]}"


class JobQueue:
    """Jobs are rows of ``tryons`` (``queued`` -> ``running`` -> ``done`` | ``failed``).

    Args:
        db: the service's database.
        lease_s: how long a claimed job stays its worker's without the worker saying it still works on it.
        max_attempts: starts of a job before it is failed.
    """

    def __init__(self, db: Engine, lease_s: float = 60.0, max_attempts: int = MAX_ATTEMPTS) -> None:
        self.db, self.lease_s, self.max_attempts = db, lease_s, max_attempts

    def _lease_over(self, now: dt.datetime):
        return (tryons.c.status == "running") & (tryons.c.lease_until.is_(None) | (tryons.c.lease_until < now))

    def _held(self, claim: Claim):
        return ((tryons.c.id == claim.id) & (tryons.c.status == "running") & (tryons.c.worker == claim.worker)
                & (tryons.c.attempts == claim.attempt))

    def claim(self, worker: str) -> Claim | None:
        """The oldest job that is queued or whose lease ran out, now held by ``worker``; None when there is none."""
        now = storage.now()
        with self.db.begin() as connection:
            # a job whose worker stopped during its last allowed start ends here, with the reason
            failed = connection.execute(
                tryons.update().where(self._lease_over(now) & (tryons.c.attempts >= self.max_attempts))
                .values(status="failed", worker=None, lease_until=None, finished_at=now,
                        error=f"the try-on was started {self.max_attempts} times and never finished (the machine "
                              f"running it stopped); please try again"))
            if failed.rowcount:
                logger.warning("%d try-ons failed: started %d times without finishing", failed.rowcount,
                               self.max_attempts)
            waiting = (tryons.c.status == "queued") | self._lease_over(now)
            oldest = (sa.select(tryons.c.id).where(waiting).order_by(tryons.c.created_at).limit(1)
                      .with_for_update(skip_locked=True).scalar_subquery())
            row = connection.execute(
                tryons.update().where((tryons.c.id == oldest) & waiting)
                .values(status="running", worker=worker, attempts=tryons.c.attempts + 1,
                        lease_until=now + dt.timedelta(seconds=self.lease_s))
                .returning(tryons.c.id, tryons.c.attempts)).first()
        if row is None:
            return None
        if row.attempts > 1:
            logger.info("try-on %s: attempt %d (the last one did not finish)", row.id, row.attempts)
        return Claim(row.id, row.attempts, worker)

    def extend(self, claim: Claim) -> bool:
        """Renew the lease; False when the job is no longer this worker's (taken over, or deleted)."""
        with self.db.begin() as connection:
            done = connection.execute(tryons.update().where(self._held(claim)).values(
                lease_until=storage.now() + dt.timedelta(seconds=self.lease_s)))
        return done.rowcount == 1

    def finish(self, claim: Claim, status: str, **values) -> bool:
        """Record the job's end (``done`` or ``failed`` and its columns) if the worker still holds it; False (and
        nothing written) when it does not."""
        with self.db.begin() as connection:
            done = connection.execute(tryons.update().where(self._held(claim)).values(
                status=status, worker=None, lease_until=None, finished_at=storage.now(), **values))
        return done.rowcount == 1

    def retry(self, claim: Claim, error: str, seconds: float | None = None) -> str | None:
        """After a failure that may pass (storage or database out of reach, a crash): the job waits for another
        attempt, or fails with ``error`` when it had its last. Returns the new status, or None when the job was no
        longer this worker's."""
        if claim.attempt >= self.max_attempts:
            ended = self.finish(claim, "failed", seconds=seconds,
                                error=f"the try-on failed {claim.attempt} times; the last time: {error}")
            return "failed" if ended else None
        with self.db.begin() as connection:
            done = connection.execute(tryons.update().where(self._held(claim)).values(
                status="queued", worker=None, lease_until=None, error=error))
        return "queued" if done.rowcount == 1 else None

    def release(self, claim: Claim) -> bool:
        """Hand a job back unstarted (a worker told to stop at once): queued again, the attempt not counted."""
        with self.db.begin() as connection:
            done = connection.execute(tryons.update().where(self._held(claim)).values(
                status="queued", worker=None, lease_until=None, attempts=tryons.c.attempts - 1))
        return done.rowcount == 1

    def depth(self) -> int:
        """Try-ons queued or running, in all processes."""
        with self.db.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(tryons)
                                          .where(tryons.c.status.in_(("queued", "running")))).scalar())

    # ----------------------------------------------------------------------------------------------- workers
    def register(self, worker: str) -> None:
        """Add a worker; first end the leases of this host's workers whose process is gone."""
        self.reclaim_dead_local()
        now = storage.now()
        with self.db.begin() as connection:
            connection.execute(workers.insert().values(id=worker, host=socket.gethostname()[:200], pid=os.getpid(),
                                                       started_at=now, seen_at=now))

    def beat(self, worker: str) -> None:
        with self.db.begin() as connection:
            connection.execute(workers.update().where(workers.c.id == worker).values(seen_at=storage.now()))

    def unregister(self, worker: str) -> None:
        with self.db.begin() as connection:
            connection.execute(workers.delete().where(workers.c.id == worker))

    def alive(self) -> int:
        """Workers that said they were alive within two leases."""
        since = storage.now() - dt.timedelta(seconds=2 * self.lease_s)
        with self.db.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(workers)
                                          .where(workers.c.seen_at >= since)).scalar())

    def reclaim_dead_local(self) -> int:
        """End the leases of jobs held by workers of this host whose process no longer runs (a killed server
        restarted), and forget those workers; workers silent for ten leases are forgotten too. Returns how many
        jobs were freed."""
        host, own, freed = socket.gethostname()[:200], os.getpid(), 0
        now = storage.now()
        with self.db.begin() as connection:
            rows = connection.execute(sa.select(workers.c.id, workers.c.pid).where(workers.c.host == host)).fetchall()
            # a worker of this host is dead when its process is gone, or when its pid is ours but it is not ours
            dead = [r.id for r in rows if (f"-{own}-{_PROCESS}-" not in r.id) if r.pid == own or not _running(r.pid)]
            if dead:
                freed = connection.execute(tryons.update().where(
                    (tryons.c.status == "running") & tryons.c.worker.in_(dead)).values(lease_until=now)).rowcount
                connection.execute(workers.delete().where(workers.c.id.in_(dead)))
            connection.execute(workers.delete().where(
                workers.c.seen_at < now - dt.timedelta(seconds=10 * self.lease_s)))
        if freed:
            logger.info("%d try-ons held by stopped workers of this host are free to run again", freed)
        return freed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return True


class Heartbeat:
    """While a worker lives: says so every ``lease_s / 3`` seconds, and renews the lease of the job it holds
    (``holding``). A renewal that fails (the database out of reach, the job taken over) is logged; the job's
    end is then refused by :meth:`JobQueue.finish` if the job is no longer the worker's."""

    def __init__(self, queue: JobQueue, worker: str) -> None:
        self.queue, self.worker = queue, worker
        self.holding: Claim | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"fitroom-heartbeat-{worker}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.queue.lease_s / 3):
            try:
                self.queue.beat(self.worker)
                claim = self.holding
                if claim is not None and not self.queue.extend(claim):
                    logger.warning("try-on %s is no longer held by this worker (its lease ran out)", claim.id)
            except sa.exc.SQLAlchemyError as error:  # the database is away: the lease may run out meanwhile
                logger.warning("worker %s could not renew its lease: %s", self.worker, type(error).__name__)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
