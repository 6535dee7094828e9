"""Photo checks in separate processes (``FITROOM_CHECK_PROCESSES``): each process has its own mediapipe graphs, so
checks run side by side instead of one at a time behind the server's lock.

The processes are started with ``spawn`` (a fork of a threaded server could inherit held locks); each builds its
:class:`~fitroom.preprocess.pipeline.Preprocessor` once, on its first check. A check sends the decoded photo and
gets back the report and the models' findings (:class:`~fitroom.fitting.Checked`), from which the try-on job
finishes the analysis.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

_preprocessor = None  # one per checker process


def _start() -> None:
    """In each checker process: build the preprocessing chain (its mediapipe graphs) before the first request."""
    global _preprocessor
    from fitroom.preprocess.pipeline import Preprocessor

    _preprocessor = Preprocessor(allow_several_people=True)


def _check(photo: np.ndarray, category, view, name: str, findings: bool):
    from fitroom import fitting

    checked = fitting.check(_preprocessor, photo, category, view, name)
    if not findings:  # not sent back when only the report is wanted (a photo-sized segmentation)
        checked.detections = None
    return checked


def _ready() -> bool:
    return _preprocessor is not None


class CheckerPool:
    """``processes`` checker processes; :meth:`check` blocks its caller (a server thread) until one has answered."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start)
        # start every process now (spawn, imports, models), not on the first shoppers' requests
        for future in [self.pool.submit(_ready) for _ in range(processes)]:
            future.result()

    def check(self, photo: np.ndarray, category, view, name: str = "upload", findings: bool = True):
        """:func:`fitroom.fitting.check` in one of the processes (``category`` and ``view`` as it takes them);
        without ``findings`` the result's ``detections`` are None."""
        return self.pool.submit(_check, photo, category, view, name, findings).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
