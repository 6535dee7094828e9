"""Judging a try-on of a real photo with models that are not the try-on's own.

There is no ground truth for a real photo in another garment, but some things must not change and one thing must:
the face, the hair and the background stay as they were, and the torso takes the garment's colour. These are
measured with mediapipe's models in settings the preprocessing does not use (the short-range face detector,
falling back on the full-range one for small faces; the landscape selfie segmenter), so that a region the
try-on protects is not also the region it is judged on.

* ``face_change``: the mean absolute grey-level change inside the face detector's box.
* ``head_changed``: the share of head pixels (the person's pixels in the face box widened by a quarter on each
  side and raised by 60 % of its height, hair included) whose grey level changed by more than 25.
* ``background_change``: the mean absolute change (over RGB) outside the segmenter's person, dilated by 2 % of
  the photo's height.
* ``torso_moved``: how far the torso's colours moved towards the garment's, in CIELAB: 1 - (mean distance of
  the torso's pixels to the nearest of the garment's 4 main colours after) / (the same before); 1 = all the way,
  0 = not at all, negative = further away. Main colours (k-means) rather than one median, so that a print on the
  chest counts as the garment. Lightness only for a greyscale or toned photo. The torso is the middle of the part
  of the quadrilateral between shoulders and hips (BlazePose) that the photo shows below the face box.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from fitroom import imaging

#: a grey-level change above this counts as a changed pixel (as the review's criteria say)
CHANGED_LEVELS = 25


@dataclass
class PhotoJudgement:
    face_found: bool
    face_change: float | None
    head_changed: float | None
    background_change: float
    torso_moved: float | None

    def to_dict(self) -> dict:
        return asdict(self)


class PhotoJudge:
    """Loads mediapipe's judging models once; ``judge(before, after, garment, garment_mask)``."""

    def __init__(self) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp

        self._near = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        self._far = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)

    def close(self) -> None:
        for model in (self._near, self._far, self._segmenter, self._pose):
            model.close()

    def face_box(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        """The largest face's box ``(x0, y0, x1, y1)`` in pixels, or None."""
        height, width = image.shape[:2]
        for detector in (self._near, self._far):
            detections = detector.process(np.ascontiguousarray(image)).detections or []
            if detections:
                boxes = [d.location_data.relative_bounding_box for d in detections]
                box = max(boxes, key=lambda b: b.width * b.height)
                return (box.xmin * width, box.ymin * height, (box.xmin + box.width) * width,
                        (box.ymin + box.height) * height)
        return None

    def person(self, image: np.ndarray) -> np.ndarray:
        mask = self._segmenter.process(np.ascontiguousarray(image)).segmentation_mask
        return cv2.resize(mask, (image.shape[1], image.shape[0])) > 0.5

    def torso(self, image: np.ndarray, below: float) -> np.ndarray | None:
        """The middle of the shoulders-hips quadrilateral, below row ``below``; None without a pose."""
        height, width = image.shape[:2]
        result = self._pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return None
        points = np.array([(p.x * width, p.y * height) for p in result.pose_landmarks.landmark])
        right_shoulder, left_shoulder, right_hip, left_hip = points[12], points[11], points[24], points[23]
        shoulder_width = float(np.hypot(*(left_shoulder - right_shoulder)))
        if shoulder_width < 4:
            return None
        # hips outside the photo (half-body portraits): one shoulder width below the shoulders
        down = np.array([0.0, shoulder_width])
        if not (0 <= right_hip[1] < height and 0 <= left_hip[1] < height):
            right_hip, left_hip = right_shoulder + down, left_shoulder + down
        quad = np.array([right_shoulder, left_shoulder, left_hip, right_hip])
        mask = np.zeros((height, width), np.uint8)
        cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
        mask[: int(np.ceil(below))] = 0
        # the middle of what the photo shows of it (55 % of its width and height)
        rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        if len(rows) < 4 or len(columns) < 4:
            return None
        keep = np.zeros_like(mask)
        cy, cx = (rows[0] + rows[-1]) / 2, (columns[0] + columns[-1]) / 2
        hy, hx = 0.275 * (rows[-1] - rows[0]), 0.275 * (columns[-1] - columns[0])
        keep[int(cy - hy):int(cy + hy) + 1, int(cx - hx):int(cx + hx) + 1] = 1
        mask &= keep
        return mask.astype(bool) if mask.sum() > 30 else None

    def judge(self, before: np.ndarray, after: np.ndarray, garment: np.ndarray, garment_mask: np.ndarray
              ) -> PhotoJudgement:
        """Compare a try-on ``after`` with its photo ``before`` (both ``(H, W, 3)`` uint8)."""
        grey_before = cv2.cvtColor(before, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grey_after = cv2.cvtColor(after, cv2.COLOR_RGB2GRAY).astype(np.float32)
        change = np.abs(grey_after - grey_before)
        height, width = grey_before.shape
        person = self.person(before)
        box = self.face_box(before)
        face_change = head_changed = None
        chin = 0.0
        if box is not None:
            x0, y0, x1, y1 = box
            chin = y1
            face = np.zeros((height, width), bool)
            face[max(int(y0), 0):max(int(np.ceil(y1)), 0), max(int(x0), 0):max(int(np.ceil(x1)), 0)] = True
            face_change = float(change[face].mean()) if face.any() else None
            w, h = x1 - x0, y1 - y0
            head = np.zeros((height, width), bool)
            head[max(int(y0 - 0.6 * h), 0):max(int(np.ceil(y1)), 0),
                 max(int(x0 - 0.25 * w), 0):max(int(np.ceil(x1 + 0.25 * w)), 0)] = True
            head &= person | face
            head_changed = float((change[head] > CHANGED_LEVELS).mean()) if head.any() else None
        radius = max(int(0.02 * height), 1)
        near = cv2.dilate(person.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)).astype(bool)
        background = ~near
        background_change = float(np.abs(after.astype(np.float32) - before.astype(np.float32))[background].mean()) \
            if background.any() else 0.0
        torso = self.torso(before, chin)
        moved = None
        if torso is not None and garment_mask.any():
            channels = [0] if imaging.photo_tint(before) is not None else [0, 1, 2]
            palette = _palette(cv2.cvtColor(garment, cv2.COLOR_RGB2Lab)[garment_mask].astype(np.float32)[:, channels])

            def distance(image: np.ndarray) -> float:
                pixels = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)[torso].astype(np.float32)[:, channels]
                return float(np.linalg.norm(pixels[:, None] - palette[None], axis=2).min(axis=1).mean())

            start, end = distance(before), distance(after)
            moved = 1.0 if start < 1e-6 else float(1 - end / start)
        return PhotoJudgement(face_found=box is not None, face_change=face_change, head_changed=head_changed,
                              background_change=background_change, torso_moved=moved)


def _palette(pixels: np.ndarray, colours: int = 4) -> np.ndarray:
    """The garment's ``colours`` main colours ``(K, C)`` (k-means, seeded), from its pixels ``(N, C)``."""
    cv2.setRNGSeed(0)
    k = min(colours, len(pixels))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(np.ascontiguousarray(pixels), k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    return centres
