"""The try-on job queue on SQLite and on a throwaway PostgreSQL server: claims, leases, attempts, workers."""

import datetime as dt
import multiprocessing
import threading
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from fitroom.service import storage
from fitroom.service.queue import JobQueue, new_worker_id


@pytest.fixture
def db(database_url):
    engine, _ = storage.open_database(database_url)
    with engine.begin() as connection:
        connection.execute(storage.garments.insert().values(id="g1", name="tee", category="upper",
                                                            front="garments/f.png", front_mask="garments/m.png",
                                                            created_at=storage.now()))
    yield engine
    engine.dispose()


def add_jobs(db, count: int) -> list[str]:
    ids = [f"job{n:03d}" for n in range(count)]
    start = storage.now()
    with db.begin() as connection:
        for n, job in enumerate(ids):
            connection.execute(storage.tryons.insert().values(
                id=job, garment_id="g1", view="front", status="queued", photo=f"photos/{job}.png", engine="warp",
                model_version="warp", share=False, created_at=start + dt.timedelta(milliseconds=n)))
    return ids


def row(db, job: str):
    with db.connect() as connection:
        return connection.execute(sa.select(storage.tryons).where(storage.tryons.c.id == job)).first()


def test_workers_side_by_side_take_each_job_once_oldest_first(db):
    jobs = add_jobs(db, 40)
    queue = JobQueue(db, lease_s=30)
    taken: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work() -> None:
        worker = new_worker_id()
        while (claim := queue.claim(worker)) is not None:
            with lock:
                taken.append((claim.id, worker))
            assert queue.finish(claim, "done", result=f"results/{claim.id}-1.png")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = Counter(job for job, _ in taken)
    assert sorted(counts) == jobs and set(counts.values()) == {1}  # every job once, none twice
    assert len({worker for _, worker in taken}) > 1  # the workers really shared the queue
    assert {row(db, job).status for job in jobs} == {"done"} and queue.depth() == 0


def test_a_job_whose_worker_stopped_runs_again_and_fails_after_three_starts(db):
    (job,) = add_jobs(db, 1)
    queue = JobQueue(db, lease_s=0.2)
    first = queue.claim("w1")
    assert (first.id, first.attempt) == (job, 1) and queue.claim("w2") is None  # held: nobody else gets it
    time.sleep(0.3)  # w1 stopped renewing its lease
    second = queue.claim("w2")
    assert (second.id, second.attempt) == (job, 2)
    # w1 wakes up: it can neither renew nor finish what is no longer its own
    assert not queue.extend(first) and not queue.finish(first, "done", result="results/x-1.png")
    assert queue.extend(second)
    time.sleep(0.3)
    third = queue.claim("w3")
    assert third.attempt == 3
    time.sleep(0.3)
    assert queue.claim("w4") is None  # three starts without an end: failed, with the reason
    ended = row(db, job)
    assert ended.status == "failed" and "started 3 times" in ended.error and ended.result is None


def test_a_passing_failure_is_retried_and_the_third_one_fails_the_job_with_its_reason(db):
    (job,) = add_jobs(db, 1)
    queue = JobQueue(db, lease_s=30)
    for attempt in (1, 2):
        claim = queue.claim("w")
        assert claim.attempt == attempt
        assert queue.retry(claim, "the image storage could not read an image") == "queued"
        assert row(db, job).status == "queued"
    claim = queue.claim("w")
    assert queue.retry(claim, "the image storage could not read an image") == "failed"
    ended = row(db, job)
    assert ended.status == "failed" and ended.error.startswith("the try-on failed 3 times; the last time: the image")


def test_a_job_handed_back_does_not_count_as_an_attempt(db):
    (job,) = add_jobs(db, 1)
    queue = JobQueue(db, lease_s=30)
    assert queue.release(queue.claim("w"))
    ended = row(db, job)
    assert (ended.status, ended.attempts, ended.worker) == ("queued", 0, None)
    assert queue.claim("w").attempt == 1


def _exit() -> None:
    pass


def test_the_jobs_of_a_dead_worker_of_this_host_are_freed_at_once(db):
    (job,) = add_jobs(db, 1)
    queue = JobQueue(db, lease_s=3600)  # without the freeing, the job would wait an hour
    process = multiprocessing.get_context("spawn").Process(target=_exit)
    process.start()
    process.join(60)
    dead = f"host-{process.pid}-deadbeef-0000"  # a worker id of that process
    queue.register(dead)
    with db.begin() as connection:  # the dead process's worker, holding the job
        connection.execute(storage.workers.update().where(storage.workers.c.id == dead).values(pid=process.pid))
    claim = queue.claim(dead)
    assert claim.id == job and queue.claim("other") is None and queue.alive() == 1
    live = new_worker_id()
    queue.register(live)  # a new worker on this host: the dead one's job is free again, the dead one forgotten
    again = queue.claim(live)
    assert (again.id, again.attempt) == (job, 2) and queue.alive() == 1
    queue.unregister(live)
    assert queue.alive() == 0
