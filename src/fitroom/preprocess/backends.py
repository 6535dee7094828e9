"""The interchangeable parts of the preprocessing, by name: human parsers and dense-map backends.

Built in: parsers ``builtin`` (:mod:`fitroom.preprocess.parsing`) and ``schp`` (:mod:`fitroom.preprocess.schp`,
imports torch only when chosen); dense backends ``builtin`` and ``file`` (:mod:`fitroom.preprocess.dense`). Others
register with ``PARSERS.register(name)`` / ``DENSE.register(name)`` or the entry-point groups
``fitroom.parsers`` / ``fitroom.dense``.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from fitroom.labels import View
from fitroom.registry import Registry


class HumanParser(Protocol):
    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray,
                 view: View = View.FRONT, face: np.ndarray | None = None) -> np.ndarray:
        """``image`` ``(H, W, 3)`` uint8, ``keypoints`` ``(25, 3)``, ``mask`` ``(H, W)`` bool, ``face`` ``(H, W)``
        bool face oval when known -> ``(H, W)`` uint8 CIHP labels."""


class DenseMapper(Protocol):
    def __call__(self, image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, view: View = View.FRONT,
                 name: str = "") -> np.ndarray:
        """-> ``(H, W, 3)`` uint8 DensePose-coloured render."""


PARSERS: Registry[Callable[..., HumanParser]] = Registry(
    "parsers", builtin=("fitroom.preprocess.parsing", "fitroom.preprocess.schp"))
DENSE: Registry[Callable[..., DenseMapper]] = Registry("dense", builtin=("fitroom.preprocess.dense",),
                                                      noun="dense-map backend")


def create_parser(name: str = "builtin", **options) -> HumanParser:
    """Build a human parser by name (``builtin`` or ``schp``)."""
    return PARSERS.create(name, **options)


def create_dense_mapper(name: str = "builtin", **options) -> DenseMapper:
    """Build a dense-map backend by name (``builtin`` or ``file``)."""
    return DENSE.create(name, **options)
