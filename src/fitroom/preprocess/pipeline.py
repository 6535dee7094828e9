"""Photos to :class:`TryOnInputs`: the whole preprocessing chain behind one object.

``Preprocessor`` loads mediapipe's models once and reuses them. For a person photo: pose (BODY_25), people
count (faces and person regions off the main person; more than one is refused; what the main person does not
explain of the any-person segmentation is measured for the photo checks), face mesh and hand landmarks,
silhouette refined at full resolution, human parse, the regions every try-on must return unchanged
(:mod:`fitroom.preprocess.regions`), dense body map, agnostic parse and cloth-agnostic person. For a product
photo: the garment mask and its category. Every output keeps the input photo's own resolution.

A photo's analysis uses both cores of a small machine: work that does not need the step before it (the face
detector, the any-person segmentation and the hand model beside the pose model, the dense map and the parse's
distances to the body's parts beside the parse; in :func:`fitroom.fitting.check_and_prepare` the product photo
beside the person's models and the checks beside the analysis) runs on the ``Preprocessor``'s two side threads
(:meth:`Preprocessor.beside`). OpenCV, numpy's large operations and mediapipe's graphs release Python's lock while
they work.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fitroom import imaging
from fitroom.files import written_at_once
from fitroom.inputs import TryOnInputs
from fitroom.labels import Body25, GarmentCategory, View
from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic
from fitroom.preprocess.backends import create_dense_mapper, create_parser
from fitroom.preprocess.errors import MissingBodyPartError, MultiplePeopleError, NoPersonError
from fitroom.preprocess.garment import garment_mask, guess_category
from fitroom.preprocess.quality import WORKING_HEIGHT, PhotoObservation, ViewGuess, guess_view
from fitroom.preprocess.pose import (
    FaceDetector, FaceMesh, HandLandmarks, PoseEstimator, PoseResult, SelfieSegmenter, count_people,
    mediapipe_to_body25, near, person_mask, unexplained_share,
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


@dataclass
class Detections:
    """What the models found in a person photo (:meth:`Preprocessor.detect`), in its pixels: all the photo checks
    need, and what the rest of the analysis starts from. The service keeps them with an upload
    (:func:`detections_bytes`), so that its try-on job finishes the analysis without running the models again.

    Attributes:
        pose: the main person's pose and segmentation, or None when nobody was found.
        faces: ``(N, 5)`` face boxes ``(x0, y0, x1, y1, score)``.
        people: how many people the photo shows (:func:`~fitroom.preprocess.pose.count_people`); -1 until counted
            (:meth:`Preprocessor.detect` with ``count=False``).
        others: the share of the any-person segmentation the main person leaves unexplained
            (:func:`~fitroom.preprocess.pose.unexplained_share`; 0 when nobody was found).
        meshes: the face meshes found, ``(468, 2)`` each (not looked for when nobody was found).
        everyone: ``(H, W)`` float32 probability of any person, kept only when the pose has no segmentation (the
            silhouette is made from it then; nothing else needs it once ``people`` and ``others`` are known) and
            until the people are counted.
        seconds: the models' time.
        hands: the hands found, ``(21, 2)`` each, for the analysis (None: not looked for yet; the analysis does).
    """

    pose: PoseResult | None
    faces: np.ndarray
    people: int
    others: float = 0.0
    meshes: list[np.ndarray] = field(default_factory=list)
    everyone: np.ndarray | None = None
    seconds: float = 0.0
    hands: list[np.ndarray] | None = None

    @property
    def shoulders_found(self) -> bool:
        """Whether both shoulders were found: the least a try-on needs."""
        return self.pose is not None and all(self.pose.keypoints[j, 2] > 0
                                             for j in (Body25.R_SHOULDER, Body25.L_SHOULDER))

    @property
    def silhouette_source(self) -> np.ndarray:
        """``(H, W)`` float32: the person probability the silhouette is refined from."""
        if self.pose is not None and self.pose.segmentation is not None:
            return self.pose.segmentation
        if self.everyone is None:
            raise ValueError("these detections have neither the pose's segmentation nor the any-person one")
        return self.everyone


def _npz_bytes(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """One ``.npz`` file's bytes: ``arrays`` as arrays, ``meta`` as JSON (no pickle), written member by member at
    zlib level 1 (np.savez_compressed's level 6 took 0.26 s of an upload for a 1024x768 photo)."""
    import io
    import json
    import zipfile

    arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    return buffer.getvalue()


def _npz_load(source: str | Path | bytes) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the JSON ``meta`` of a file :func:`_npz_bytes` made."""
    import io
    import json

    with np.load(io.BytesIO(source) if isinstance(source, bytes) else Path(source), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return arrays, json.loads(arrays.pop("meta").tobytes().decode())


def detections_bytes(detections: Detections) -> bytes:
    """``detections`` as the bytes of one ``.npz`` file (:func:`load_detections` reads them back)."""
    d = detections
    arrays: dict[str, np.ndarray] = {"faces": np.asarray(d.faces, np.float32)}
    if d.pose is not None:
        arrays.update(keypoints=d.pose.keypoints, landmarks=d.pose.landmarks)
        if d.pose.segmentation is not None:
            arrays["segmentation"] = d.pose.segmentation
    if d.everyone is not None:
        arrays["everyone"] = d.everyone
    for i, mesh in enumerate(d.meshes):
        arrays[f"mesh.{i}"] = np.asarray(mesh)
    for i, hand in enumerate(d.hands or []):
        arrays[f"hand.{i}"] = np.asarray(hand)
    meta = {"kind": "detections", "people": int(d.people), "others": float(d.others), "meshes": len(d.meshes),
            "hands": None if d.hands is None else len(d.hands), "seconds": float(d.seconds)}
    return _npz_bytes(arrays, meta)


def load_detections(source: str | Path | bytes) -> Detections:
    """The detections :func:`detections_bytes` made (an ``OSError``, ``KeyError`` or ``ValueError`` when the file
    is missing, damaged or of another kind)."""
    arrays, meta = _npz_load(source)
    if meta.get("kind") != "detections":
        raise ValueError("not a file of detections")
    pose = None
    if "keypoints" in arrays:
        pose = PoseResult(keypoints=arrays["keypoints"], landmarks=arrays["landmarks"],
                          segmentation=arrays.get("segmentation"))
    hands = meta.get("hands")  # (None: not looked for, as in files written before hands were kept)
    return Detections(pose=pose, faces=arrays["faces"], people=int(meta["people"]), others=float(meta["others"]),
                      meshes=[arrays[f"mesh.{i}"] for i in range(int(meta["meshes"]))],
                      everyone=arrays.get("everyone"), seconds=float(meta["seconds"]),
                      hands=None if hands is None else [arrays[f"hand.{i}"] for i in range(int(hands))])


def save_analysis(analysis: PersonAnalysis, path: str | Path) -> Path:
    """Write ``analysis`` to one ``.npz`` file (:func:`analysis_bytes`), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_at_once(path) as partial:
        partial.write_bytes(analysis_bytes(analysis))
    return path


def analysis_bytes(analysis: PersonAnalysis) -> bytes:
    """``analysis`` as the bytes of one ``.npz`` file (arrays as arrays, the rest as JSON; no pickle)."""
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
    return _npz_bytes(arrays, meta)


def load_analysis(source: str | Path | bytes) -> PersonAnalysis:
    """The analysis :func:`save_analysis` wrote to a file, or :func:`analysis_bytes` made (an ``OSError`` or
    ``ValueError`` when the file is missing or damaged)."""
    arrays, meta = _npz_load(source)
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


#: the height of the parse the photo checks take the garments' colours from (:meth:`Preprocessor.glance`)
PARSE_HEIGHT = 256


def _shrunk(image: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    """``image`` no taller than ``height`` (area-averaged) and the scale from the photo to it."""
    scale = min(1.0, height / image.shape[0])
    if scale == 1:
        return image, 1.0
    return imaging.resize(image, (height, max(round(image.shape[1] * scale), 1))), scale


def _scaled(points: np.ndarray, scale: float) -> np.ndarray:
    """``points`` ``(..., >= 2)`` with their x and y multiplied by ``scale`` (a float64 copy)."""
    points = np.array(points, dtype=np.float64)
    points[..., :2] *= scale
    return points


_SIDE_THREADS = "fitroom-preprocess"


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
        if hasattr(self.parser, "beside"):  # (the built-in parser overlaps its own steps)
            self.parser.beside = self.beside
        self.dense = create_dense_mapper(dense, **(dense_options or {}))
        self.allow_several_people = allow_several_people
        self._side: ThreadPoolExecutor | None = None

    def beside(self, function, *args, **kwargs) -> Future:
        """Run ``function(*args, **kwargs)`` on one of this preprocessor's two side threads (made on first use)
        while the caller goes on; ``.result()`` gives its value or raises its error. Called from a side thread
        itself, it runs the function there and then (a job waiting for a job queued behind it could wait for
        ever)."""
        if threading.current_thread().name.startswith(_SIDE_THREADS):
            done = Future()
            try:
                done.set_result(function(*args, **kwargs))
            except BaseException as error:  # handed to whoever asks for the result, as a thread would
                done.set_exception(error)
            return done
        if self._side is None:
            self._side = ThreadPoolExecutor(max_workers=2, thread_name_prefix=_SIDE_THREADS)
        return self._side.submit(function, *args, **kwargs)

    def close(self) -> None:
        if self._side is not None:
            self._side.shutdown(wait=True)
            self._side = None
        for model in (self.pose, self.faces, self.selfie, self.face_mesh, self.hands):
            model.close()

    def __enter__(self) -> "Preprocessor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, image: np.ndarray, count: bool = True) -> Detections:
        """Run the models on a person photo ``(H, W, 3)`` uint8 RGB: pose and silhouette, faces, anyone else, and
        (when there is a person) the face meshes; never raises for the photo's content. ``count`` False leaves the
        people uncounted (``people`` -1, the any-person segmentation kept) for :meth:`count` to do, on another
        thread while the analysis, which does not need it, goes on."""
        start = time.perf_counter()
        # beside the pose model (about as long as these three): the faces, anyone else and the hands (for the
        # analysis, so that it need not wait for them)
        others = self.beside(lambda: (self.faces(image), self.selfie(image), self.hands(image)))
        pose = self.pose(image)
        faces, everyone, hands = others.result()
        meshes = self.face_mesh(image) if pose is not None else []
        found = Detections(pose=pose, faces=faces, people=-1, meshes=meshes, everyone=everyone,
                           seconds=time.perf_counter() - start, hands=hands if pose is not None else None)
        return self.count(found) if count else found

    @staticmethod
    def count(found: Detections) -> Detections:
        """``found`` with its people counted (:func:`~fitroom.preprocess.pose.count_people`) and what the main
        person does not explain measured (:func:`~fitroom.preprocess.pose.unexplained_share`); as it is when
        counted already."""
        if found.people >= 0:
            return found
        main = found.pose.segmentation if found.pose is not None else None
        around = near(main > 0.5) if main is not None else None  # the main person widened: both counts use it
        people = count_people(found.faces, found.everyone, main, around=around)
        others = unexplained_share(found.everyone, main, around) if main is not None else 0.0
        return replace(found, people=people, others=others, everyone=found.everyone if main is None else None)

    def _complete(self, image: np.ndarray, view: View | None, name: str, found: Detections) -> PersonAnalysis:
        pose = found.pose
        keypoints = pose.keypoints
        if not found.shoulders_found:
            raise MissingBodyPartError("shoulders")
        # (the hand model, when the detections lack its hands, and the dense map run on the side threads, beside
        # the silhouette and the parse: the timings are each step's wall time on the main thread, waits included)
        timings = {"detect": found.seconds}
        clock = time.perf_counter()
        hands = self.beside(self.hands, image) if found.hands is None else None
        mask = person_mask(image, found.silhouette_source, keypoints)
        timings["mask"] = time.perf_counter() - clock
        clock = time.perf_counter()
        regions = find_regions(mask.shape, mask, keypoints, pose.landmarks, found.meshes,
                               found.hands if hands is None else hands.result(),
                               face_boxes=found.faces, image=image)
        timings["regions"] = time.perf_counter() - clock
        guess = guess_view(mediapipe_to_body25(pose.landmarks, threshold=0.0), found.faces, regions.face_found)
        view = guess.view if view is None else View(view)
        dense = self.beside(self.dense, image, keypoints, mask, view, name)
        clock = time.perf_counter()
        parse = self.parser(image, keypoints, mask, view, face=regions.face if regions.face_found else None)
        timings["parse"] = time.perf_counter() - clock
        regions = with_parsed_hair(regions, parse)
        keep = keep_mask(regions, mask, keypoints, parse)
        clock = time.perf_counter()
        dense = dense.result()
        timings["dense"] = time.perf_counter() - clock
        clock = time.perf_counter()
        agnostic = agnostic_person(image, parse, keypoints)
        agnostic_labels = parse_agnostic(parse, keypoints)
        timings["agnostic"] = time.perf_counter() - clock
        return PersonAnalysis(keypoints=keypoints, landmarks=pose.landmarks, mask=mask, parse=parse, dense=dense,
                              agnostic=agnostic, parse_agnostic=agnostic_labels, faces=found.faces,
                              people=found.people, regions=regions, keep=keep, timings=timings, view=view,
                              view_guess=guess)

    def analyse_person(self, image: np.ndarray, view: View | None = View.FRONT, name: str = "") -> PersonAnalysis:
        """Analyse a person photo ``(H, W, 3)`` uint8 RGB as seen from ``view`` (None: the view it seems to show,
        see :func:`~fitroom.preprocess.quality.guess_view`; the result's ``view`` says which).

        Raises:
            NoPersonError, MultiplePeopleError, MissingBodyPartError: with a message for the shopper.
        """
        found = self.detect(image)
        if found.pose is not None and found.people > 1 and not self.allow_several_people:
            raise MultiplePeopleError(found.people)
        return self.finish(image, found, view, name)

    def finish(self, image: np.ndarray, detections: Detections, view: View | None = View.FRONT, name: str = ""
               ) -> PersonAnalysis:
        """The full analysis of a photo whose models' findings were made already (:meth:`detect`, :meth:`glance`,
        or :func:`load_detections`), as :meth:`analyse_person` makes it, whoever else is in the photo (the checks
        report them).

        Raises:
            NoPersonError, MissingBodyPartError: with a message for the shopper.
        """
        if detections.pose is None:
            raise NoPersonError()
        return self._complete(image, None if view is None else View(view), name, detections)

    def observe(self, image: np.ndarray, view: View | None = View.FRONT, name: str = ""
                ) -> tuple[PhotoObservation, PersonAnalysis | None]:
        """The photo checks' observation made from the full analysis, and the analysis when the photo allows one
        (never raises for content: no person, several people or hidden shoulders are for the checks to report).
        ``view`` None: analysed as the view the photo seems to show (``observation.view_guess``). The checks
        themselves look at :meth:`glance`'s quicker observation."""
        found = self.detect(image)
        if not found.shoulders_found:
            return self._observation(image, found, None), None
        analysis = self._complete(image, None if view is None else View(view), name, found)
        return self._observation(image, found, analysis.mask, analysis.parse, analysis.regions.face_found,
                                 analysis.view_guess), analysis

    def glance(self, image: np.ndarray, view: View | None = View.FRONT, name: str = "",
               detections: Detections | None = None) -> tuple[PhotoObservation, Detections]:
        """What the photo checks need, quickly, and the models' findings to finish the analysis with later
        (:meth:`finish`). The models see the photo as in :meth:`analyse_person`; the silhouette the checks look at
        is made on a copy ``WORKING_HEIGHT`` pixels tall (they measure at that height anyway), and the parse, of
        which they only take the garments' median colours, on one ``PARSE_HEIGHT`` tall (0.12 s instead of 0.54 s for
        the checks on a 1024x768 photo, and far less of the work grows with the photo's size). ``detections``: the
        models' findings on this photo, made already (:meth:`detect`)."""
        found = detections if detections is not None else self.detect(image)
        if not found.shoulders_found:
            return self._observation(image, found, None), found
        pose = found.pose
        small, scale = _shrunk(image, WORKING_HEIGHT)
        keypoints = _scaled(pose.keypoints, scale)
        source = found.silhouette_source
        mask = person_mask(small, imaging.resize(source, small.shape[:2]), keypoints)
        tiny, tiny_scale = _shrunk(image, PARSE_HEIGHT)
        tiny_mask = imaging.resize(mask, tiny.shape[:2], "mask")
        tiny_keypoints = _scaled(pose.keypoints, tiny_scale)
        regions = find_regions(tiny_mask.shape, tiny_mask, tiny_keypoints, _scaled(pose.landmarks, tiny_scale),
                               [_scaled(m, tiny_scale) for m in found.meshes], [],
                               face_boxes=_scaled(found.faces, tiny_scale), image=tiny)
        guess = guess_view(mediapipe_to_body25(pose.landmarks, threshold=0.0), found.faces, regions.face_found)
        parse = self.parser(tiny, tiny_keypoints, tiny_mask, guess.view if view is None else View(view),
                            face=regions.face if regions.face_found else None)
        return self._observation(image, found, mask, parse, regions.face_found, guess), found

    @staticmethod
    def _observation(image: np.ndarray, found: Detections, mask: np.ndarray | None, parse: np.ndarray | None = None,
                     face_found: bool | None = None, guess: ViewGuess | None = None) -> PhotoObservation:
        """The checks' observation; without a mask (nobody, or no shoulders) the silhouette is made here."""
        pose = found.pose
        if pose is None:
            return PhotoObservation(image=image, keypoints=None, mask=None, faces=found.faces, people=0,
                                    view_guess=guess_view(None, found.faces, None))
        raw = mediapipe_to_body25(pose.landmarks, threshold=0.0)
        if mask is None:
            mask = person_mask(image, found.silhouette_source, pose.keypoints)
        return PhotoObservation(image=image, keypoints=pose.keypoints, mask=mask, faces=found.faces,
                                people=found.people, parse=parse, raw_keypoints=raw, others=found.others,
                                face_found=face_found, view_guess=guess or guess_view(raw, found.faces, None))

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
