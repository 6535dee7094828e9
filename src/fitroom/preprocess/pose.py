"""Pose, faces and the person's silhouette from the models that ship inside the ``mediapipe`` wheel (offline).

* :class:`PoseEstimator`: BlazePose full (``model_complexity=1``; 0 and 2 would download and fail offline) ->
  33 landmarks with visibility -> BODY_25 keypoints (neck and mid-hip derived) with confidences, plus
  BlazePose's segmentation mask of the detected person.
* :class:`FaceDetector`: the full-range face detector, to count people.
* :class:`FaceMesh`: the 468-point face landmark model (face oval, chin and jaw line), to find the face exactly.
* :class:`HandLandmarks`: the 21-point hand landmark model, to find hands in front of the body.
* :func:`person_mask`: the segmentation refined at full resolution with a guided filter, so the silhouette follows
  the photo's edges rather than the model's 256-pixel grid.

Photos larger than ``max_side`` are analysed on a reduced copy (the models work at 256 pixels anyway); every
output is in the original photo's pixels.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import types
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from fitroom import geometry, imaging
from fitroom.labels import MEDIAPIPE_TO_BODY25, NUM_BODY25, NUM_MEDIAPIPE

logger = logging.getLogger(__name__)

#: a joint whose BlazePose visibility is below this is written as undetected (0, 0, 0), as OpenPose does
VISIBILITY_THRESHOLD = 0.3
DEFAULT_MAX_SIDE = 1024


def _mediapipe():
    # quiet the TFLite/absl start-up chatter before the first import
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # mediapipe 0.10.14 calls protobuf's deprecated GetPrototype on every graph; nothing for a user to act on
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
    # mediapipe.solutions imports its drawing helpers, and they import matplotlib (half a second of a two-second
    # try-on); fitroom draws with its own code, so those two modules are lazy until something touches them
    for name in _DRAWING_MODULES:
        sys.modules.setdefault(name, _LazyModule(name))
    import mediapipe

    for name in _DRAWING_MODULES:
        module = sys.modules.get(name)
        if isinstance(module, _LazyModule):
            setattr(mediapipe.solutions, name.rsplit(".", 1)[1], module)
    return mediapipe


_DRAWING_MODULES = ("mediapipe.python.solutions.drawing_utils", "mediapipe.python.solutions.drawing_styles")


class _LazyModule(types.ModuleType):
    """Stands in for a module in ``sys.modules`` until an attribute is read, then imports the real one."""

    def __getattr__(self, attribute: str):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, real)  # (mediapipe.solutions is that package)
        return getattr(real, attribute)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null for a while: mediapipe's C++ side (absl, TF Lite) writes its start-up
    notes there (an XNNPACK line, "log messages before absl::InitializeLog()", a feedback-manager warning per
    model), which neither GLOG_minloglevel nor TF_CPP_MIN_LOG_LEVEL reach. Left alone under ``-v`` (DEBUG)."""
    if logger.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _start(build):
    """Build a mediapipe solution with ``build(mp.solutions)`` and run it once on a blank image, so that its graph
    starts (and says what it says on starting) here, silenced, rather than on the shopper's photo."""
    solutions = _mediapipe().solutions
    with _native_stderr_silenced():
        solution = build(solutions)
        solution.process(np.zeros((64, 64, 3), np.uint8))
    return solution


def _reduce(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy no larger than ``max_side`` and the factor from it back to the original."""
    height, width = image.shape[:2]
    scale = max(height, width) / max_side
    if scale <= 1:
        return image, 1.0
    small = cv2.resize(image, (round(width / scale), round(height / scale)), interpolation=cv2.INTER_AREA)
    return small, scale


def mediapipe_to_body25(landmarks: np.ndarray, threshold: float = VISIBILITY_THRESHOLD) -> np.ndarray:
    """Convert ``(33, 3)`` landmarks ``(x_px, y_px, visibility)`` to ``(25, 3)`` BODY_25 ``(x, y, confidence)``.

    A derived joint (neck, mid-hip) has the lower visibility of its sources; joints under ``threshold`` are
    ``(0, 0, 0)``.
    """
    if landmarks.shape != (NUM_MEDIAPIPE, 3):
        raise ValueError(f"expected (33, 3) landmarks, got {landmarks.shape}")
    out = np.zeros((NUM_BODY25, 3), dtype=np.float32)
    for joint, sources in MEDIAPIPE_TO_BODY25.items():
        points = landmarks[list(sources)]
        confidence = float(points[:, 2].min())
        if confidence >= threshold:
            out[joint] = (*points[:, :2].mean(axis=0), confidence)
    return out


@dataclass
class PoseResult:
    """One person's pose in photo pixels.

    Attributes:
        keypoints: ``(25, 3)`` BODY_25 ``(x, y, confidence)``.
        landmarks: ``(33, 3)`` BlazePose ``(x, y, visibility)`` (may lie outside the photo).
        segmentation: ``(H, W)`` float32 probability that a pixel is this person, or None.
    """

    keypoints: np.ndarray
    landmarks: np.ndarray
    segmentation: np.ndarray | None


class PoseEstimator:
    """BlazePose on one photo at a time. Not thread-safe: use one per thread or process."""

    def __init__(self, min_confidence: float = 0.5, max_side: int = DEFAULT_MAX_SIDE,
                 with_segmentation: bool = True) -> None:
        self._pose = _start(lambda solutions: solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=with_segmentation,
            min_detection_confidence=min_confidence))
        self.max_side = max_side

    def __call__(self, image: np.ndarray) -> PoseResult | None:
        """Estimate the pose of the most prominent person in ``image`` ``(H, W, 3)`` uint8 RGB; None if nobody."""
        small, scale = _reduce(image, self.max_side)
        result = self._pose.process(np.ascontiguousarray(small))
        if result.pose_landmarks is None:
            return None
        height, width = small.shape[:2]
        landmarks = np.array([(p.x * width * scale, p.y * height * scale, p.visibility)
                              for p in result.pose_landmarks.landmark], dtype=np.float32)
        # a landmark BlazePose places outside the photo was guessed, not seen
        full_h, full_w = image.shape[:2]
        outside = ((landmarks[:, 0] < 0) | (landmarks[:, 1] < 0) | (landmarks[:, 0] > full_w - 1)
                   | (landmarks[:, 1] > full_h - 1))
        landmarks[outside, 2] = 0.0
        segmentation = None
        if result.segmentation_mask is not None:
            segmentation = cv2.resize(result.segmentation_mask.astype(np.float32), (full_w, full_h),
                                      interpolation=cv2.INTER_LINEAR)
        return PoseResult(keypoints=mediapipe_to_body25(landmarks), landmarks=landmarks, segmentation=segmentation)

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> "PoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FaceDetector:
    """mediapipe's full-range face detector: boxes ``(x0, y0, x1, y1, score)`` in photo pixels."""

    def __init__(self, min_confidence: float = 0.6, max_side: int = DEFAULT_MAX_SIDE) -> None:
        self._detector = _start(lambda solutions: solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence))
        self.max_side = max_side

    def __call__(self, image: np.ndarray) -> np.ndarray:
        small, scale = _reduce(image, self.max_side)
        result = self._detector.process(np.ascontiguousarray(small))
        height, width = small.shape[:2]
        boxes = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            x0, y0 = box.xmin * width * scale, box.ymin * height * scale
            boxes.append((x0, y0, x0 + box.width * width * scale, y0 + box.height * height * scale,
                          detection.score[0]))
        return np.array(boxes, dtype=np.float32).reshape(-1, 5)

    def close(self) -> None:
        self._detector.close()


class _LandmarkModel:
    """A mediapipe landmark solution run on one photo: one ``(N, 2)`` array of ``(x, y)`` photo pixels per face or
    hand found. Subclasses build ``self._model`` and name the result field that lists them."""

    field = ""

    def __init__(self, model, max_side: int) -> None:
        self._model = model
        self.max_side = max_side

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        small, scale = _reduce(image, self.max_side)
        result = self._model.process(np.ascontiguousarray(small))
        height, width = small.shape[:2]
        return [np.array([(p.x * width * scale, p.y * height * scale) for p in found.landmark], dtype=np.float32)
                for found in getattr(result, self.field) or []]

    def close(self) -> None:
        self._model.close()


class FaceMesh(_LandmarkModel):
    """mediapipe's face landmark model: one ``(468, 2)`` array of ``(x, y)`` photo pixels per face found.

    The landmarks include the face oval (the outline from the forehead down the jaw line to the chin), so the
    face's exact region is their convex hull. A face turned far away from the camera is not found: callers fall
    back on the pose's head keypoints.
    """

    field = "multi_face_landmarks"

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5, max_side: int = DEFAULT_MAX_SIDE) -> None:
        super().__init__(_start(lambda solutions: solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=max_faces, refine_landmarks=False,
            min_detection_confidence=min_confidence)), max_side)


class HandLandmarks(_LandmarkModel):
    """mediapipe's hand landmark model: one ``(21, 2)`` array of ``(x, y)`` photo pixels per hand found."""

    field = "multi_hand_landmarks"

    def __init__(self, max_hands: int = 4, min_confidence: float = 0.5, max_side: int = DEFAULT_MAX_SIDE) -> None:
        super().__init__(_start(lambda solutions: solutions.hands.Hands(
            static_image_mode=True, max_num_hands=max_hands, model_complexity=1,
            min_detection_confidence=min_confidence)), max_side)


class SelfieSegmenter:
    """mediapipe's selfie segmentation: every person in the photo, as a ``(H, W)`` float32 probability."""

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE) -> None:
        self._segmenter = _start(lambda solutions: solutions.selfie_segmentation.SelfieSegmentation(
            model_selection=0))
        self.max_side = max_side

    def __call__(self, image: np.ndarray) -> np.ndarray:
        small, _ = _reduce(image, self.max_side)
        mask = self._segmenter.process(np.ascontiguousarray(small)).segmentation_mask
        return cv2.resize(mask.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        self._segmenter.close()


def person_mask(image: np.ndarray, probability: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
    """Refine a low-resolution person probability at full resolution: ``(H, W)`` bool.

    A guided filter (guide = the photo) snaps the soft mask to the photo's edges; the result is thresholded at 0.5,
    small specks are removed (the component the skeleton lies on is kept, or the largest) and holes are filled.
    The filter runs on the box where the probability is over 1 % and twice its reach around it: farther out the
    refined probability stays near 0 (under 0.02 on the review photos), so the mask is the whole photo's.
    """
    height, width = probability.shape
    radius = max(int(round(min(height, width) / 100)), 2)
    mask = np.zeros((height, width), np.uint8)
    box = geometry.bbox(probability > 0.01, pad=4 * radius + 2)
    if box is None:
        return mask.astype(bool)
    guide = image[box].astype(np.float32) / 255.0
    refined = cv2.ximgproc.guidedFilter(guide, np.ascontiguousarray(probability[box], np.float32), radius, 1e-3)
    mask[box] = refined > 0.5
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask.astype(bool)
    keep = None
    if keypoints is not None:
        visible = keypoints[keypoints[:, 2] > 0]
        votes = np.zeros(count, int)
        for x, y, _ in visible:
            xi, yi = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
            votes[components[yi, xi]] += 1
        votes[0] = 0
        if votes.max() > 0:
            keep = int(votes.argmax())
    if keep is None:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return fill_holes(components == keep)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region that does not touch the border filled."""
    count, regions = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    return mask | ((regions > 0) & ~np.isin(regions, border))


def near(person: np.ndarray) -> np.ndarray:
    """``person`` ``(H, W)`` bool widened by 2 % of the photo's longer side: what counts as touching them."""
    return imaging.dilate(person, max(int(round(0.02 * max(person.shape))), 2))


def count_people(faces: np.ndarray, everyone: np.ndarray, main: np.ndarray | None = None, min_area: float = 0.02,
                 min_face_height: float = 0.03, around: np.ndarray | None = None) -> int:
    """How many people a photo shows, counting what is certain.

    Without ``main``: the larger of the number of faces and of separate person regions. With ``main`` (the
    probability that a pixel belongs to the person the pose model found): the main person, plus the larger of the
    number of faces whose centre lies off them and of person regions that hardly overlap them. Someone touching
    the shopper without a face of their own is not counted here: :func:`unexplained_share` measures that
    evidence, which is weaker.

    Args:
        faces: ``(N, 5)`` face boxes.
        everyone: ``(H, W)`` probability of any person (selfie segmentation).
        main: ``(H, W)`` probability of the main person, or None.
        min_area: smallest person region, as a fraction of the photo, that counts as a person.
        min_face_height: smallest face, as a fraction of the photo's height, that counts.
        around: :func:`near` of ``main > 0.5`` when the caller has it already.
    """
    height, width = everyone.shape
    big = faces[(faces[:, 3] - faces[:, 1]) >= min_face_height * height] if len(faces) else faces
    mask = (everyone > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    large = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area * height * width]
    person = main > 0.5 if main is not None else None
    if person is None or not person.any():
        return max(len(big), len(large))
    near_person = near(person) if around is None else around
    off = sum(1 for x0, y0, x1, y1, _ in big
              if not near_person[int(np.clip((y0 + y1) / 2, 0, height - 1)), int(np.clip((x0 + x1) / 2, 0, width - 1))])
    apart = sum(1 for i in large if person[labels == i].mean() < 0.2)
    return 1 + max(off, apart)


def unexplained_share(everyone: np.ndarray, main: np.ndarray, around: np.ndarray | None = None) -> float:
    """The largest part of the any-person segmentation ``everyone`` that the main person ``main`` (both ``(H, W)``
    probabilities) does not explain, as a share of the main person's area: about 0 for one person alone, large
    when someone stands close enough to merge with them, turned away, cut by the frame or behind them. ``around``:
    :func:`near` of ``main > 0.5`` when the caller has it already."""
    person = main > 0.5
    area = float(person.sum())
    if area == 0:
        return 0.0
    residual = ((everyone > 0.5) & ~(near(person) if around is None else around)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(residual, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max() / area) if count > 1 else 0.0
