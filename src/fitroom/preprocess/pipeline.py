"""Photos to :class:`TryOnInputs`: the whole preprocessing chain behind one object.

``Preprocessor`` loads mediapipe's models once and reuses them. For a person photo: pose (BODY_25), people
count (faces and person regions off the main person; more than one is refused; what the main person does not
explain of the any-person segmentation is measured for the photo checks), face mesh and hand landmarks,
silhouette refined at full resolution, human parse, the regions every try-on must return unchanged
(:mod:`fitroom.preprocess.regions`), dense body map, agnostic parse and cloth-agnostic person. For a product
photo: the garment mask and its category. Every output keeps the input photo's own resolution.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fitroom.inputs import TryOnInputs
from fitroom.labels import Body25, GarmentCategory, View
from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic
from fitroom.preprocess.backends import create_dense_mapper, create_parser
from fitroom.preprocess.errors import MissingBodyPartError, MultiplePeopleError, NoPersonError
from fitroom.preprocess.garment import garment_mask, guess_category
from fitroom.preprocess.quality import PhotoObservation, ViewGuess, guess_view
from fitroom.preprocess.pose import (
    FaceDetector, FaceMesh, HandLandmarks, PoseEstimator, SelfieSegmenter, count_people, mediapipe_to_body25,
    person_mask, unexplained_share,
)
from fitroom.preprocess.regions import PersonRegions, find_regions, keep_mask, with_parsed_hair

logger = logging.getLogger(__name__)


@dataclass
class PersonAnalysis:
    """Everything preprocessing learns about a person photo (all at the photo's resolution)."""

    keypoints: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray
    parse: np.ndarray
    dense: np.ndarray
    agnostic: np.ndarray
    parse_agnostic: np.ndarray
    faces: np.ndarray
    people: int
    regions: PersonRegions | None = None
    keep: np.ndarray | None = None  # (H, W) bool: what a try-on returns unchanged
    timings: dict[str, float] = field(default_factory=dict)
    view: View = View.FRONT  # the view the parse and dense map were made for (given, or guessed)
    view_guess: ViewGuess | None = None  # the view the photo seems to show


def save_analysis(analysis: PersonAnalysis, path: str | Path) -> Path:
    """Write ``analysis`` to one ``.npz`` file (:func:`analysis_bytes`), atomically."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(analysis_bytes(analysis))
    os.replace(partial, path)
    return path


def analysis_bytes(analysis: PersonAnalysis) -> bytes:
    """``analysis`` as the bytes of one ``.npz`` file (arrays as arrays, the rest as JSON; no pickle): the service
    keeps the analysis its upload check made, so that the try-on job never repeats it, even in another process, on
    another machine or after a restart."""
    import io
    import json
    import zipfile

    arrays: dict[str, np.ndarray] = {}
    meta: dict = {}
    for name in ("keypoints", "landmarks", "mask", "parse", "dense", "agnostic", "parse_agnostic", "faces", "keep"):
        value = getattr(analysis, name)
        if value is not None:
            arrays[name] = np.asarray(value)
    meta.update(people=int(analysis.people), view=analysis.view.value, timings=analysis.timings)
    if analysis.view_guess is not None:
        guess = analysis.view_guess
        meta["view_guess"] = {"seen": guess.seen, "view": guess.view.value, "reason": guess.reason}
    if analysis.regions is not None:
        regions = analysis.regions
        for name in ("face", "head", "hands"):
            arrays[f"regions.{name}"] = getattr(regions, name)
        if regions.face_landmarks is not None:
            arrays["regions.face_landmarks"] = np.asarray(regions.face_landmarks)
        meta["regions"] = {"chin_y": float(regions.chin_y), "face_found": bool(regions.face_found)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    # an .npz written member by member at zlib level 1: np.savez_compressed's level 6 took 0.26 s of an upload for a
    # 1024x768 photo
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return buffer.getvalue()


def load_analysis(source: str | Path | bytes) -> PersonAnalysis:
    """The analysis :func:`save_analysis` wrote to a file, or :func:`analysis_bytes` made (an ``OSError`` or
    ``ValueError`` when the file is missing or damaged)."""
    import io
    import json

    with np.load(io.BytesIO(source) if isinstance(source, bytes) else Path(source), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    regions = None
    if "regions" in meta:
        regions = PersonRegions(face=arrays.pop("regions.face"), head=arrays.pop("regions.head"),
                                hands=arrays.pop("regions.hands"), chin_y=meta["regions"]["chin_y"],
                                face_found=meta["regions"]["face_found"],
                                face_landmarks=arrays.pop("regions.face_landmarks", None))
    guess = meta.get("view_guess")
    return PersonAnalysis(
        keypoints=arrays["keypoints"], landmarks=arrays["landmarks"], mask=arrays["mask"], parse=arrays["parse"],
        dense=arrays["dense"], agnostic=arrays["agnostic"], parse_agnostic=arrays["parse_agnostic"],
        faces=arrays["faces"], people=meta["people"], regions=regions, keep=arrays.get("keep"),
        timings=meta.get("timings", {}), view=View(meta["view"]),
        view_guess=ViewGuess(guess["seen"], View(guess["view"]), guess["reason"]) if guess else None)


class Preprocessor:
    """The preprocessing chain (see the module docstring).

    Args:
        parser: human-parsing backend name (``builtin`` or ``schp``); ``parser_options`` go to it.
        dense: dense-map backend name (``builtin`` or ``file``); ``dense_options`` go to it.
        allow_several_people: analyse the most prominent person even when others are in the photo.
    """

    def __init__(self, parser: str = "builtin", dense: str = "builtin", parser_options: dict | None = None,
                 dense_options: dict | None = None, allow_several_people: bool = False) -> None:
        self.pose = PoseEstimator()
        self.faces = FaceDetector()
        self.selfie = SelfieSegmenter()
        self.face_mesh = FaceMesh()
        self.hands = HandLandmarks()
        self.parser = create_parser(parser, **(parser_options or {}))
        self.dense = create_dense_mapper(dense, **(dense_options or {}))
        self.allow_several_people = allow_several_people

    def close(self) -> None:
        for model in (self.pose, self.faces, self.selfie, self.face_mesh, self.hands):
            model.close()

    def __enter__(self) -> "Preprocessor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _detect(self, image: np.ndarray):
        """Pose, faces, every person's probability and the people count."""
        start = time.perf_counter()
        pose = self.pose(image)
        faces = self.faces(image)
        everyone = self.selfie(image)
        main = pose.segmentation if pose is not None else None
        return pose, faces, everyone, count_people(faces, everyone, main), time.perf_counter() - start

    def _complete(self, image: np.ndarray, view: View | None, name: str, pose, faces: np.ndarray,
                  everyone: np.ndarray, people: int, timings: dict[str, float]) -> PersonAnalysis:
        keypoints = pose.keypoints
        if not all(keypoints[j, 2] > 0 for j in (Body25.R_SHOULDER, Body25.L_SHOULDER)):
            raise MissingBodyPartError("shoulders")
        clock = time.perf_counter()
        mask = person_mask(image, pose.segmentation if pose.segmentation is not None else everyone, keypoints)
        timings["mask"] = time.perf_counter() - clock
        clock = time.perf_counter()
        meshes, hands = self.face_mesh(image), self.hands(image)
        regions = find_regions(mask.shape, mask, keypoints, pose.landmarks, meshes, hands, face_boxes=faces,
                               image=image)
        timings["regions"] = time.perf_counter() - clock
        guess = guess_view(mediapipe_to_body25(pose.landmarks, threshold=0.0), faces, regions.face_found)
        view = guess.view if view is None else View(view)
        clock = time.perf_counter()
        parse = self.parser(image, keypoints, mask, view, face=regions.face if regions.face_found else None)
        timings["parse"] = time.perf_counter() - clock
        regions = with_parsed_hair(regions, parse)
        keep = keep_mask(regions, mask, keypoints, parse)
        clock = time.perf_counter()
        dense = self.dense(image, keypoints, mask, view, name)
        timings["dense"] = time.perf_counter() - clock
        clock = time.perf_counter()
        agnostic = agnostic_person(image, parse, keypoints)
        agnostic_labels = parse_agnostic(parse, keypoints)
        timings["agnostic"] = time.perf_counter() - clock
        return PersonAnalysis(keypoints=keypoints, landmarks=pose.landmarks, mask=mask, parse=parse, dense=dense,
                              agnostic=agnostic, parse_agnostic=agnostic_labels, faces=faces, people=people,
                              regions=regions, keep=keep, timings=timings, view=view, view_guess=guess)

    def analyse_person(self, image: np.ndarray, view: View | None = View.FRONT, name: str = "") -> PersonAnalysis:
        """Analyse a person photo ``(H, W, 3)`` uint8 RGB as seen from ``view`` (None: the view it seems to show,
        see :func:`~fitroom.preprocess.quality.guess_view`; the result's ``view`` says which).

        Raises:
            NoPersonError, MultiplePeopleError, MissingBodyPartError: with a message for the shopper.
        """
        pose, faces, everyone, people, seconds = self._detect(image)
        if pose is None:
            raise NoPersonError()
        if people > 1 and not self.allow_several_people:
            raise MultiplePeopleError(people)
        return self._complete(image, None if view is None else View(view), name, pose, faces, everyone, people,
                              {"detect": seconds})

    def observe(self, image: np.ndarray, view: View | None = View.FRONT, name: str = ""
                ) -> tuple[PhotoObservation, PersonAnalysis | None]:
        """What the photo checks need, and the full analysis when the photo allows one (never raises for content:
        no person, several people or hidden shoulders are for the checks to report). ``view`` None: analysed as
        the view the photo seems to show (``observation.view_guess``)."""
        pose, faces, everyone, people, seconds = self._detect(image)
        if pose is None:
            return PhotoObservation(image=image, keypoints=None, mask=None, faces=faces, people=0,
                                    view_guess=guess_view(None, faces, None)), None
        raw = mediapipe_to_body25(pose.landmarks, threshold=0.0)
        try:
            analysis = self._complete(image, None if view is None else View(view), name, pose, faces, everyone,
                                      people, {"detect": seconds})
        except MissingBodyPartError:
            mask = person_mask(image, pose.segmentation if pose.segmentation is not None else everyone,
                               pose.keypoints)
            return PhotoObservation(image=image, keypoints=pose.keypoints, mask=mask, faces=faces,
                                    people=people, raw_keypoints=raw,
                                    others=unexplained_share(everyone, pose.segmentation),
                                    view_guess=guess_view(raw, faces, None)), None
        observation = PhotoObservation(image=image, keypoints=analysis.keypoints, mask=analysis.mask, faces=faces,
                                       people=people, parse=analysis.parse, raw_keypoints=raw,
                                       others=unexplained_share(everyone, pose.segmentation),
                                       face_found=analysis.regions.face_found, view_guess=analysis.view_guess)
        return observation, analysis

    def inputs(self, analysis: PersonAnalysis, person: np.ndarray, garment: np.ndarray, garment_mask: np.ndarray,
               category: GarmentCategory | str, view: View = View.FRONT, name: str = "", garment_name: str = ""
               ) -> TryOnInputs:
        """``TryOnInputs`` from a person analysis and a garment already segmented (:meth:`analyse_garment`). The
        analysis holds the upper garment's agnostic person and parse; a lower garment's or a dress's are made here
        (:mod:`fitroom.preprocess.agnostic`)."""
        agnostic, labels, keep = analysis.agnostic, analysis.parse_agnostic, analysis.keep
        if GarmentCategory(category) is not GarmentCategory.UPPER:
            agnostic = agnostic_person(person, analysis.parse, analysis.keypoints, category)
            labels = parse_agnostic(analysis.parse, analysis.keypoints, category)
            if analysis.regions is not None and analysis.mask is not None:
                keep = keep_mask(analysis.regions, analysis.mask, analysis.keypoints, analysis.parse, category)
        return TryOnInputs(person=person, garment=garment, garment_mask=garment_mask, keypoints=analysis.keypoints,
                           parse=analysis.parse, dense=analysis.dense, agnostic=agnostic,
                           parse_agnostic=labels, keep=keep, view=View(view),
                           category=category, name=name,
                           garment_name=garment_name)

    def analyse_garment(self, image: np.ndarray, category: GarmentCategory | str | None = None
                        ) -> tuple[np.ndarray, GarmentCategory]:
        """The garment's mask and category (guessed from the mask when not given)."""
        mask = garment_mask(image)
        return mask, GarmentCategory(category) if category else guess_category(mask)

    def __call__(self, person: np.ndarray, garment: np.ndarray, view: View = View.FRONT,
                 category: GarmentCategory | str | None = None, name: str = "", garment_name: str = ""
                 ) -> TryOnInputs:
        analysis = self.analyse_person(person, view, name)
        mask, category = self.analyse_garment(garment, category)
        return self.inputs(analysis, person, garment, mask, category, view, name, garment_name)
