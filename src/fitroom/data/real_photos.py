"""Real photos of people that ship inside installable packages: the review set for the try-on on real photos.

No photo is stored in this repository beyond the bundled astronaut: each is read from the package that ships it,
with its source and licence as that package states them (:data:`REVIEW_SET`). Python packages come with the
project's environment (scikit-image with the test extras, matplotlib with mediapipe); the Debian package
``opencv-doc`` is downloaded and unpacked into a cache folder by :func:`fetch_debian_photos` (``apt-get
download``, no root needed), which the review script calls.

Besides single-person photos the set has **two-people composites**, made from two of these photos: a second person
cut by the frame's edge, or faceless (only the body) at the edge. Every photo carries hand labels in the photo
checks' vocabulary (``second_person``, ``cropped`` for not full length, ``sideways``, ...: see
``benchmarks/guidance.py``), so the checks can be scored on real photos apart from renders.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from fitroom import imaging

logger = logging.getLogger(__name__)

#: where Debian's opencv-doc package installs its documentation
OPENCV_DOC = "/usr/share/doc/opencv-doc"


@dataclass(frozen=True)
class RealPhoto:
    """One real photo of the review set.

    Attributes:
        name: short identifier. source: where it ships. licence: as that package states it.
        labels: the defects a shopper's photo like it has, by hand (empty: a good photo for any garment).
        cases: what it exercises for the try-on (hat, glasses, beard, profile, greyscale, ...).
    """

    name: str
    source: str
    licence: str
    labels: frozenset[str]
    cases: tuple[str, ...]
    load: Callable[[Path | None], np.ndarray | None]


def _skimage(name: str) -> Callable[[Path | None], np.ndarray | None]:
    def load(_: Path | None) -> np.ndarray | None:
        try:
            from skimage import data
        except ImportError:
            return None
        image = getattr(data, name)()
        return np.ascontiguousarray(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3])
    return load


def _matplotlib(filename: str) -> Callable[[Path | None], np.ndarray | None]:
    def load(_: Path | None) -> np.ndarray | None:
        try:
            import matplotlib
        except ImportError:
            return None
        path = Path(matplotlib.get_data_path()) / "sample_data" / filename
        return imaging.load_image(path) if path.exists() else None
    return load


def _debian(relative: str) -> Callable[[Path | None], np.ndarray | None]:
    """A photo at ``relative`` under opencv-doc's folder: from the cache, or where the package is installed."""
    def load(cache: Path | None) -> np.ndarray | None:
        for path in ([cache / "opencv-doc" / relative] if cache else []) + [Path(OPENCV_DOC) / relative]:
            if path.exists():
                return imaging.load_image(path)
        return None
    load.relative = relative  # type: ignore[attr-defined]
    return load


def _side_by_side(left: Callable, right: Callable, right_share: float, faceless: bool
                  ) -> Callable[[Path | None], np.ndarray | None]:
    """The main photo with a strip of another photo's person at its right edge (cut by the frame), only the body
    when ``faceless`` (the strip's top third is replaced by the main photo's own edge colour)."""
    def load(cache: Path | None) -> np.ndarray | None:
        main, other = left(cache), right(cache)
        if main is None or other is None:
            return None
        height = main.shape[0]
        other = cv2.resize(other, (round(other.shape[1] * height / other.shape[0]), height),
                           interpolation=cv2.INTER_AREA)
        strip = other[:, : max(int(right_share * other.shape[1]), 1)].copy()
        if faceless:
            top = height // 3
            strip[:top] = main[:top, -1:].mean(axis=0, keepdims=True).astype(np.uint8)
        return np.ascontiguousarray(np.concatenate([main, strip], axis=1))
    return load


PD_NASA = "public domain (NASA), as shipped in scikit-image's skimage.data.astronaut()"
CC0_CAMERA = "CC0 by the photographer (Lav Varshney), as stated in scikit-image's skimage.data.camera()"
PD_HOPPER = "public domain (U.S. Navy photograph), as shipped in matplotlib's sample_data/grace_hopper.jpg"
DEBIAN_OPENCV = ("OpenCV sample data, Apache-2.0 AND BSD-3-Clause as stated by Debian's opencv-doc package "
                 "copyright file")

#: the review set (single people first, then two-people composites)
REVIEW_SET: tuple[RealPhoto, ...] = (
    RealPhoto("astronaut", "scikit-image skimage.data.astronaut()", PD_NASA, frozenset({"cropped"}),
              ("half body", "colour", "busy background", "gloved hands"), _skimage("astronaut")),
    RealPhoto("camera", "scikit-image skimage.data.camera()", CC0_CAMERA, frozenset({"cropped", "sideways"}),
              ("greyscale", "bent forward", "profile", "hands raised"), _skimage("camera")),
    RealPhoto("hopper", "matplotlib sample_data/grace_hopper.jpg", PD_HOPPER, frozenset({"cropped"}),
              ("hat", "glasses", "older face", "tie and medals"), _matplotlib("grace_hopper.jpg")),
    # the crowd in the stands are people too: the people check should say so
    RealPhoto("footballer", f"Debian opencv-doc {OPENCV_DOC}/examples/data/messi5.jpg", DEBIAN_OPENCV,
              frozenset({"second_person"}), ("small person", "head turned", "crowd behind", "limbs spread"),
              _debian("examples/data/messi5.jpg")),
    RealPhoto("bearded", f"Debian opencv-doc {OPENCV_DOC}/opencv4/html/face_swapped.jpg", DEBIAN_OPENCV,
              frozenset({"cropped"}), ("beard", "low V neckline", "dark background", "necklace"),
              _debian("opencv4/html/face_swapped.jpg")),
    RealPhoto("two_people_edge", "astronaut + a strip of hopper (composite)", f"{PD_NASA}; {PD_HOPPER}",
              frozenset({"second_person", "cropped"}), ("second person cut by the edge",),
              _side_by_side(_skimage("astronaut"), _matplotlib("grace_hopper.jpg"), 0.45, faceless=False)),
    RealPhoto("two_people_faceless", "hopper + a faceless strip of astronaut (composite)",
              f"{PD_HOPPER}; {PD_NASA}", frozenset({"second_person", "cropped"}),
              ("second person without a face, at the edge",),
              _side_by_side(_matplotlib("grace_hopper.jpg"), _skimage("astronaut"), 0.55, faceless=True)),
)


def fetch_debian_photos(cache: Path) -> bool:
    """Download Debian's ``opencv-doc`` and unpack its sample photos into ``cache/opencv-doc``.

    Returns whether they are there afterwards. Needs ``apt-get`` and ``dpkg-deb`` and the Debian archive; says
    what failed when they are not available (the review then runs without those photos).
    """
    target = cache / "opencv-doc"
    wanted = [p.load.relative for p in REVIEW_SET if hasattr(p.load, "relative")]
    if all((target / relative).exists() or (Path(OPENCV_DOC) / relative).exists() for relative in wanted):
        return True
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        logger.warning("apt-get/dpkg-deb are not available: the opencv-doc photos are left out")
        return False
    with tempfile.TemporaryDirectory() as work:
        try:
            subprocess.run(["apt-get", "download", "opencv-doc"], cwd=work, check=True, capture_output=True,
                           timeout=600)
            debs = list(Path(work).glob("opencv-doc_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(Path(work) / "x")], check=True, timeout=600)
        except (subprocess.SubprocessError, IndexError, OSError) as error:
            logger.warning("could not download opencv-doc (%s): its photos are left out", error)
            return False
        for relative in wanted:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(work) / "x" / OPENCV_DOC.lstrip("/") / relative, target / relative)
    return True


def load_review_set(cache: Path | None = None) -> list[tuple[RealPhoto, np.ndarray]]:
    """Every review photo that can be had here, as ``(photo, (H, W, 3) uint8)``; missing ones are logged."""
    found = []
    for photo in REVIEW_SET:
        image = photo.load(cache)
        if image is None:
            logger.warning("review photo %s is not available here (%s)", photo.name, photo.source)
            continue
        found.append((photo, image))
    return found
