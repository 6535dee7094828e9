"""Benchmark: the fitting-room service under load, on loopback only.

Starts ``fitroom serve`` (the ``warp`` engine, a fresh data folder, the rate limit lifted, a queue long enough for
the largest level) as a separate process on 127.0.0.1, adds one garment, then for concurrency 1, 4 and 16 sends a
bounded number of requests from that many client threads:

* checks: ``POST /v1/checks`` with the bundled full-length photo;
* try-ons: ``POST /v1/tryons`` then polling ``GET /v1/tryons/{id}`` until done (latency = submit to result).

Prints requests per second and p50/p95 latency per level, and the count of errors (any non-2xx answer or failed
job); the run fails if there is any. Every request is counted, none is dropped from the figures.

Run: ``python benchmarks/service_load.py [--requests 16] [--workers 1] [--check-processes N] [--kinds checks]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

LEVELS = (1, 4, 16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16, help="requests per level and kind (at least the level)")
    parser.add_argument("--workers", type=int, default=1, help="the server's try-on worker threads")
    parser.add_argument("--check-processes", type=int, default=0,
                        help="the server's photo-check processes (0: checks in the server, one at a time)")
    parser.add_argument("--kinds", default="checks,tryons", help="what to load: checks, tryons or both")
    args = parser.parse_args()
    import httpx

    from fitroom.demo import sample_path

    person = sample_path("person_front.jpg").read_bytes()
    garment = sample_path("garment_tee_front.jpg").read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        key = "benchmark-key"
        environment = {**os.environ, "FITROOM_RATE_LIMIT_PER_MINUTE": "1000000", "FITROOM_QUEUE_SIZE": "64",
                       "OMP_NUM_THREADS": "1", "FITROOM_API_KEY": key}
        server = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "-q", "serve", "--port", str(port),
                                   "--data-dir", data, "--workers", str(args.workers),
                                   "--check-processes", str(args.check_processes)], env=environment)
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
            else:
                sys.exit("the server did not become ready in 120 s")
            client = httpx.Client(base_url=base, timeout=300)
            garment_id = client.post("/v1/garments", files={"front": ("tee.jpg", garment, "image/jpeg")},
                                     data={"name": "tee", "category": "upper"},
                                     headers={"Authorization": f"Bearer {key}"}).json()["id"]

            def check() -> bool:
                response = client.post("/v1/checks", files={"photo": ("me.jpg", person, "image/jpeg")})
                return response.status_code == 200

            def tryon() -> bool:
                response = client.post("/v1/tryons", files={"photo": ("me.jpg", person, "image/jpeg")},
                                       data={"garment_id": garment_id, "force": "true"})
                if response.status_code != 202:
                    return False
                job = response.json()
                while job["status"] in ("queued", "running"):
                    time.sleep(0.05)
                    job = client.get(f"/v1/tryons/{job['id']}").json()
                return job["status"] == "done" and client.get(job["result_url"]).status_code == 200

            print(f"# loopback, {os.cpu_count()} cores, warp engine, {args.workers} try-on worker(s), "
                  f"{args.check_processes} check process(es); {args.requests} requests per level (or the level, "
                  f"if larger)")
            print(f"{'kind':8s} {'clients':>7s} {'requests':>8s} {'req/s':>7s} {'p50 s':>7s} {'p95 s':>7s} "
                  f"{'errors':>6s}")
            errors_total = 0
            kinds = [(k, c) for k, c in (("checks", check), ("try-ons", tryon)) if k.replace("-", "") in args.kinds]
            for kind, call in kinds:
                for level in LEVELS:
                    count = max(args.requests, level)
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
                    print(f"{kind:8s} {level:7d} {count:8d} {count / wall:7.2f} {np.percentile(latencies, 50):7.3f} "
                          f"{np.percentile(latencies, 95):7.3f} {errors:6d}")
            stats = client.get("/v1/stats", headers={"Authorization": f"Bearer {key}"}).json()
            print(f"try-ons done according to the server: {stats['tryons'].get('done', 0)}")
            checks = [line for line in client.get("/metrics").text.splitlines()
                      if line.startswith(("fitroom_check_seconds_count", "fitroom_check_seconds_sum"))]
            print("server's /metrics: " + ", ".join(checks))
        finally:
            server.terminate()
            server.wait(30)
    if errors_total:
        sys.exit(f"{errors_total} requests failed")


if __name__ == "__main__":
    main()
