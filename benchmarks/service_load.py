"""Benchmark: the fitting-room service under load, on loopback only.

Starts ``fitroom serve`` (the ``warp`` engine, a fresh data folder, the rate limit lifted, a queue long enough for
the largest level) as a separate process on 127.0.0.1, adds one garment, then for each concurrency level sends a
bounded number of requests from that many client threads:

* checks: ``POST /v1/checks`` with the bundled full-length photo;
* try-ons: ``POST /v1/tryons`` then polling ``GET /v1/tryons/{id}`` every ``--poll-s`` seconds (0.7 s, as the
  shopper page does) until done (latency = submit to result).

With ``--worker-processes 1,2,4`` the try-ons run in that many ``fitroom worker`` processes beside a server without
workers (``--workers 0``), one configuration after the other. Prints requests per second and p50/p95 latency per
level, and the count of errors (any non-2xx answer or failed job); the run fails if there is any. Every request is
counted, none is dropped from the figures.

``--drain N`` measures the workers alone: N try-ons are queued (their uploads checked) before any worker runs,
then ``--worker-processes`` workers start, and the try-ons per second from the moment all are registered until the
queue is empty are printed, side by side.

``--fault`` runs the fault drill instead: a server without workers and two worker processes; while clients submit
try-ons, one worker is killed (SIGKILL) and replaced, and then (on PostgreSQL) every database connection of the
service is cut (``pg_terminate_backend``). Afterwards every accepted try-on must end ``done`` or ``failed`` with a
reason, with exactly one result file per finished try-on; it prints what happened to each.

Run: ``python benchmarks/service_load.py [--requests 16] [--levels 1,4,16] [--workers 1] [--check-processes N]
[--kinds checks,tryons] [--worker-processes 1,2,4] [--database-url URL] [--fault] [--drain N] [--poll-s 0.7]``. A
PostgreSQL URL gets a new database of its own on that server (dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

KEY = "benchmark-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(url: str | None, data: str):
    """The service's database URL: a SQLite file in ``data``, or a new database on the given PostgreSQL server."""
    if not url or not url.startswith("postgresql"):
        yield url or f"sqlite:///{data}/fitroom.db"
        return
    import psycopg
    import sqlalchemy as sa

    server = sa.engine.make_url(url)
    name = f"fitroom_bench_{uuid.uuid4().hex[:8]}"
    admin = dict(host=server.host, port=server.port or 5432, user=server.username, password=server.password,
                 dbname=server.database or "postgres", autocommit=True)
    with psycopg.connect(**admin) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(**admin) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Service:
    """``fitroom serve`` and ``fitroom worker`` processes on one data folder and database."""

    def __init__(self, data: str, database_url: str, workers: int, check_processes: int, queue: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.environment = {**os.environ, "FITROOM_RATE_LIMIT_PER_MINUTE": "1000000", "FITROOM_QUEUE_SIZE": str(queue),
                            "OMP_NUM_THREADS": "1", "FITROOM_API_KEY": KEY, "FITROOM_DATABASE_URL": database_url,
                            "FITROOM_LEASE_S": "10", "FITROOM_POLL_S": "0.1"}
        self.server = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "-q", "serve", "--port", str(self.port),
                                        "--data-dir", data, "--workers", str(workers),
                                        "--check-processes", str(check_processes)], env=self.environment)
        self.workers: list[subprocess.Popen] = []
        import httpx

        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            self.close()
            sys.exit("the server did not become ready in 120 s")

    def add_worker(self) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "-q", "worker", "--data-dir", self.data],
                                   env=self.environment)
        self.workers.append(process)
        return process

    def close(self) -> None:
        for process in self.workers:
            process.terminate()
        for process in self.workers:
            process.wait(120)
        self.server.terminate()
        self.server.wait(30)


def clients(base: str, poll_s: float = 0.7):
    import httpx

    from fitroom.demo import sample_path

    person = sample_path("person_front.jpg").read_bytes()
    garment = sample_path("garment_tee_front.jpg").read_bytes()
    client = httpx.Client(base_url=base, timeout=300, limits=httpx.Limits(max_connections=128))
    garment_id = client.post("/v1/garments", files={"front": ("tee.jpg", garment, "image/jpeg")},
                             data={"name": "tee", "category": "upper"},
                             headers={"Authorization": f"Bearer {KEY}"}).json()["id"]

    def check() -> bool:
        response = client.post("/v1/checks", files={"photo": ("me.jpg", person, "image/jpeg")})
        return response.status_code == 200

    def submit() -> str | None:
        response = client.post("/v1/tryons", files={"photo": ("me.jpg", person, "image/jpeg")},
                               data={"garment_id": garment_id, "force": "true"})
        return response.json()["id"] if response.status_code == 202 else None

    def wait(job: str) -> dict:
        while True:
            try:
                document = client.get(f"/v1/tryons/{job}").json()
            except Exception:  # the server is busy recovering (fault run): ask again
                document = {"status": "queued"}
            if document.get("status") not in ("queued", "running", None):
                return document
            time.sleep(poll_s)

    def tryon() -> bool:
        job = submit()
        if job is None:
            return False
        document = wait(job)
        return document["status"] == "done" and client.get(document["result_url"]).status_code == 200

    return client, check, submit, wait, tryon


def load(label: str, call, levels: list[int], requests: int) -> int:
    errors_total = 0
    for level in levels:
        count = max(requests, level)
        latencies: list[float] = []
        errors = 0

        def timed(_: int) -> tuple[bool, float]:
            start = time.perf_counter()
            ok = call()
            return ok, time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(level) as pool:
            for ok, seconds in pool.map(timed, range(count)):
                latencies.append(seconds)
                errors += not ok
        wall = time.perf_counter() - start
        errors_total += errors
        print(f"{label:22s} {level:7d} {count:8d} {count / wall:7.2f} {np.percentile(latencies, 50):7.3f} "
              f"{np.percentile(latencies, 95):7.3f} {errors:6d}", flush=True)
    return errors_total


def header() -> None:
    print(f"{'what':22s} {'clients':>7s} {'requests':>8s} {'req/s':>7s} {'p50 s':>7s} {'p95 s':>7s} {'errors':>6s}")


def fault_run(data: str, database_url: str, count: int) -> int:
    """The fault drill; returns the number of try-ons that ended without a reason or with two results."""
    service = Service(data, database_url, workers=0, check_processes=0, queue=count + 8)
    try:
        service.add_worker()
        service.add_worker()
        client, _, submit, wait, _ = clients(service.base)
        accepted: list[str] = []
        refused = 0
        lock = threading.Lock()
        events: list[str] = []

        def finished() -> int:
            done = 0
            for job in list(accepted):
                try:
                    done += client.get(f"/v1/tryons/{job}").json().get("status") in ("done", "failed")
                except Exception:
                    pass
            return done

        def holder() -> subprocess.Popen | None:
            """A worker process that holds a running try-on now (worker ids are host-pid-process-n)."""
            import sqlalchemy as sa

            from fitroom.service.storage import tryons

            engine = sa.create_engine(database_url)
            try:
                with engine.connect() as connection:
                    held = connection.execute(sa.select(tryons.c.worker).where(tryons.c.status == "running")).all()
            finally:
                engine.dispose()
            pids = {int(w.split("-")[-3]) for (w,) in held if w}
            return next((p for p in service.workers if p.pid in pids and p.poll() is None), None)

        def faults() -> None:
            while finished() < count // 5:
                time.sleep(0.2)
            deadline = time.time() + 120
            while (victim := holder()) is None and time.time() < deadline:
                time.sleep(0.005)
            if victim is None:
                events.append("no worker was caught holding a try-on: none killed")
            else:
                victim.send_signal(signal.SIGKILL)
                victim.wait(30)
                events.append(f"SIGKILL to worker pid {victim.pid} while it ran a try-on, after {finished()} had "
                              f"ended; a new worker started")
                service.add_worker()
            while finished() < count // 2:
                time.sleep(0.2)
            if database_url.startswith("postgresql"):
                import psycopg
                import sqlalchemy as sa

                url = sa.engine.make_url(database_url)
                with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                     password=url.password, dbname=url.database, autocommit=True) as connection:
                    cut = connection.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                                             ).fetchone()[0]
                events.append(f"cut {cut} database connections after {finished()} try-ons had ended")
            else:
                events.append("database connections not cut: SQLite has none (give --database-url postgresql://)")

        def one(_: int) -> None:
            nonlocal refused
            job = submit()
            with lock:
                if job is None:
                    refused += 1
                else:
                    accepted.append(job)

        fault = threading.Thread(target=faults)
        fault.start()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
        fault.join(600)
        ends = [wait(job) for job in accepted]
        outcome = Counter(d["status"] for d in ends)
        reasons = Counter(d["error"] for d in ends if d["status"] == "failed")
        attempts = Counter(d.get("attempts") for d in ends)
        results = Counter(p.name.split("-")[0] for p in Path(data, "results").glob("*.png"))
        done = {d["id"] for d in ends if d["status"] == "done"}
        twice = [job for job, n in results.items() if n > 1]
        orphans = [job for job in results if job not in done]
        without_reason = [d["id"] for d in ends if d["status"] == "failed" and not d.get("error")]
        print("# fault run: " + "; ".join(events))
        print(f"submitted {count}, accepted {len(accepted)}, refused at submission {refused}")
        print(f"ended: {dict(outcome)}; attempts: {dict(sorted(attempts.items()))}")
        for reason, n in reasons.items():
            print(f"  failed x{n}: {reason}")
        print(f"result files: {sum(results.values())} for {len(done)} done try-ons; written twice: {len(twice)}; "
              f"orphans: {len(orphans)}; failed without a reason: {len(without_reason)}")
        lost = [d["id"] for d in ends if d["status"] not in ("done", "failed")]
        return len(twice) + len(orphans) + len(without_reason) + len(lost) + (len(done) - len(results))
    finally:
        service.close()


def drain_run(data: str, database_url: str, processes: int, count: int) -> float:
    """Queue ``count`` try-ons with no worker running (their photo checks done), then start ``processes`` workers:
    try-ons per second from the moment all of them are registered until the queue is empty."""
    import re

    service = Service(data, database_url, workers=0, check_processes=0, queue=count + 8)
    try:
        client, _, submit, wait, _ = clients(service.base)
        jobs = [submit() for _ in range(count)]
        assert all(jobs), "a submission was refused"
        for _ in range(processes):
            service.add_worker()

        def metric(name: str) -> float:
            found = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.M)
            return float(found.group(1)) if found else 0.0

        while metric("fitroom_workers") < processes:
            time.sleep(0.05)
        start = time.perf_counter()
        waiting_at_start = metric("fitroom_queue_depth")
        while metric("fitroom_queue_depth") > 0:
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        ends = [wait(job)["status"] for job in jobs]
        assert ends == ["done"] * count, Counter(ends)
        rate = waiting_at_start / seconds
        print(f"drain, {processes} worker proc {int(waiting_at_start):>10d} try-ons {seconds:7.2f} s {rate:7.2f} "
              f"try-ons/s", flush=True)
        return rate
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per level and kind (at least the level)")
    parser.add_argument("--levels", default="1,4,16", help="client counts, e.g. 1,4,16,64")
    parser.add_argument("--workers", type=int, default=1, help="the server's own try-on worker threads")
    parser.add_argument("--worker-processes", default="",
                        help="e.g. 1,2,4: try-ons in that many `fitroom worker` processes, the server without any")
    parser.add_argument("--check-processes", type=int, default=0,
                        help="the server's photo-check processes (0: checks in the server, one at a time)")
    parser.add_argument("--kinds", default="checks,tryons", help="what to load: checks, tryons or both")
    parser.add_argument("--poll-s", type=float, default=0.7,
                        help="how often a client asks for its try-on's status (the shopper page: every 0.7 s)")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server to use (a new database on it)")
    parser.add_argument("--fault", action="store_true", help="run the fault drill instead")
    parser.add_argument("--fault-tryons", type=int, default=40)
    parser.add_argument("--drain", type=int, default=0,
                        help="N: queue N try-ons, then time how fast --worker-processes workers empty the queue")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    errors = 0
    print(f"# loopback, {os.cpu_count()} cores, warp engine, "
          f"{'PostgreSQL' if args.database_url.startswith('postgresql') else 'SQLite'}; {args.requests} requests "
          f"per level (or the level, if larger)", flush=True)
    if args.fault:
        with tempfile.TemporaryDirectory() as data, database(args.database_url, data) as url:
            errors = fault_run(data, url, args.fault_tryons)
        if errors:
            sys.exit(f"{errors} try-ons lost, ended without a reason or with two results")
        return
    if args.drain:
        rates = {}
        for processes in [int(n) for n in (args.worker_processes or "1,2").split(",")]:
            with tempfile.TemporaryDirectory() as data, database(args.database_url, data) as url:
                rates[processes] = drain_run(data, url, processes, args.drain)
        first = min(rates)
        print(f"  vs {first} worker(s): " + ", ".join(f"{k}: {v / rates[first]:.2f}x" for k, v in rates.items()))
        return
    configurations = ([(0, int(n)) for n in args.worker_processes.split(",")] if args.worker_processes
                      else [(args.workers, 0)])
    header()
    for threads, processes in configurations:
        with tempfile.TemporaryDirectory() as data, database(args.database_url, data) as url:
            service = Service(data, url, threads, args.check_processes, queue=max(levels) * 2 + 8)
            try:
                for _ in range(processes):
                    service.add_worker()
                client, check, _, _, tryon = clients(service.base, args.poll_s)
                where = f"{processes} worker proc" if processes else f"{threads} worker thr"
                if "checks" in args.kinds:
                    errors += load(f"checks, {where}", check, levels, args.requests)
                if "tryons" in args.kinds:
                    errors += load(f"try-ons, {where}", tryon, levels, args.requests)
                lines = [line for line in client.get("/metrics").text.splitlines()
                         if line.startswith(("fitroom_check_seconds_count", "fitroom_workers"))]
                print("  server's /metrics: " + ", ".join(lines), flush=True)
            finally:
                service.close()
    if errors:
        sys.exit(f"{errors} requests failed")


if __name__ == "__main__":
    main()
