"""The service's ``/metrics`` in Prometheus' text format (``prometheus_client``), one registry per server process.

* ``fitroom_queue_depth``: try-ons queued or running, in all processes (the database's count);
* ``fitroom_workers``: try-on workers alive, in all processes and on all machines;
* ``fitroom_tryons_total{outcome}``: try-ons this process's workers finished, ``done`` or ``failed``;
* ``fitroom_tryon_seconds``: a histogram of how long they took (queue wait excluded);
* ``fitroom_check_seconds``: a histogram of photo checks (an upload's guidance, and the check before a try-on).

Aggregates only: no ids, names or photos.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: bucket bounds in seconds: a check takes tenths of a second, a try-on from a tenth (warp) to minutes (diffusion)
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
TRYON_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The metrics of one :class:`~fitroom.service.core.FittingRoom`.

    Args:
        queue_depth: reads the number of try-ons queued or running.
        workers: reads the number of workers alive.
    """

    def __init__(self, queue_depth: Callable[[], int], workers: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        depth = Gauge("fitroom_queue_depth", "try-ons queued or running, in all processes", registry=self.registry)
        depth.set_function(lambda: float(queue_depth()))
        alive = Gauge("fitroom_workers", "try-on workers alive, in all processes", registry=self.registry)
        alive.set_function(lambda: float(workers()))
        self.tryons = Counter("fitroom_tryons", "try-ons this process finished, by outcome", ["outcome"],
                              registry=self.registry)
        for outcome in ("done", "failed"):  # both series exist from the start, at 0
            self.tryons.labels(outcome)
        self.tryon_seconds = Histogram("fitroom_tryon_seconds", "seconds a finished try-on took (queue wait "
                                       "excluded)", buckets=TRYON_BUCKETS, registry=self.registry)
        self.check_seconds = Histogram("fitroom_check_seconds", "seconds a photo check took",
                                       buckets=CHECK_BUCKETS, registry=self.registry)

    def finished(self, outcome: str, seconds: float) -> None:
        self.tryons.labels(outcome).inc()
        self.tryon_seconds.observe(seconds)

    def text(self) -> bytes:
        """Everything, in Prometheus' text exposition format."""
        return generate_latest(self.registry)
