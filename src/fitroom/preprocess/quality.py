"""Photo guidance: tell the shopper, before they wait, why a photo will give a bad try-on and how to fix it.

One check per cause the Virton team found behind bad results: resolution, blur, exposure, other people, not full
length for the garment, crossed arms, crossed legs, body turned away, person blending into the background, an
outfit of one colour. Each returns ``pass``, ``warn`` or ``fail`` with the measured value, its threshold, one
sentence for the shopper and one sentence saying what to do. Thresholds live in ``guidance.json`` beside this
file, calibrated on labelled photos by ``benchmarks/guidance.py --calibrate``, which also lists the checks whose
precision is too low (under 0.9) to refuse a photo: those only warn.

Checks work on a :class:`PhotoObservation` (pose, silhouette, faces, person regions, parse), which the
:class:`~fitroom.preprocess.pipeline.Preprocessor` makes once per photo and try-on reuses.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from fitroom import imaging
from fitroom.labels import Body25, Cihp, GarmentCategory, View

#: BODY_25 joints that must be in the picture for each garment category (fail) and that should be (warn)
REQUIRED_JOINTS = {
    GarmentCategory.UPPER: ((Body25.R_SHOULDER, Body25.L_SHOULDER), (Body25.R_HIP, Body25.L_HIP)),
    GarmentCategory.LOWER: ((Body25.R_HIP, Body25.L_HIP, Body25.R_KNEE, Body25.L_KNEE, Body25.R_ANKLE,
                             Body25.L_ANKLE), ()),
    GarmentCategory.DRESS: ((Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP, Body25.R_KNEE,
                             Body25.L_KNEE), (Body25.R_ANKLE, Body25.L_ANKLE)),
}
#: a CIELAB distance under which the person's edge blends into the background (about twice a just-noticeable one)
BLEND_DISTANCE = 10.0
#: the photo is analysed at this height, so sharpness does not depend on the camera's resolution
WORKING_HEIGHT = 512
#: how far (working pixels) the silhouette contrast's blur (sigma 6) and its 7x7 erosion reach
SILHOUETTE_REACH = 4 * 6 + 3 + 1


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # could not be measured (e.g. no person)

    @property
    def severity(self) -> int:
        return {"pass": 0, "skip": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the checks (see ``guidance.json``)."""

    min_side_fail: float
    min_side_warn: float
    sharpness_fail: float
    sharpness_warn: float
    dark_fail: float
    dark_warn: float
    bright_fail: float
    bright_warn: float
    ankle_gap_fail: float
    face_score_min: float
    contrast_fail: float
    contrast_warn: float
    outfit_contrast_warn: float
    shoulder_ratio_fail: float
    shoulder_ratio_warn: float
    crossing_margin: float
    #: a part of the person segmentation this large (in main-person areas) that the main person does not explain
    #: makes the people check warn: someone else may be there
    others_warn: float
    #: checks whose measured precision is too low to refuse a photo: their failures are reported as warnings
    warn_only: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Thresholds":
        text = Path(path).read_text() if path else (resources.files("fitroom.preprocess") / "guidance.json").read_text()
        values = json.loads(text)
        numbers = {f.name for f in fields(cls)} - {"warn_only"}
        missing = numbers - set(values)
        if missing:
            raise ValueError(f"guidance thresholds are missing {sorted(missing)}")
        return cls(**{k: float(v) for k, v in values.items() if k in numbers},
                   warn_only=tuple(values.get("warn_only", ())))

    def save(self, path: str | Path, comment: str) -> None:
        Path(path).write_text(json.dumps({"_comment": comment, **asdict(self)}, indent=2) + "\n")


@dataclass
class CheckResult:
    """One check's verdict. ``value`` is the measurement (None when it could not be made)."""

    name: str
    status: Status
    value: float | None
    threshold: str
    message: str
    fix: str

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value}


@dataclass
class Intersection:
    """Two body segments that cross, and where (photo pixels)."""

    part_a: str
    part_b: str
    point: tuple[float, float]


@dataclass
class PhotoObservation:
    """What the checks look at, in the photo's pixels (the silhouette and the parse may be smaller: the checks
    scale them to the photo).

    Attributes:
        image: ``(H, W, 3)`` uint8. keypoints: ``(25, 3)`` BODY_25 or None when no person was found.
        mask: ``(H, W)`` or ``(h, w)`` bool silhouette of the main person, or None. faces: ``(N, 5)`` boxes.
        people: count. parse: ``(H, W)`` or ``(h, w)`` CIHP labels, or None. raw_keypoints: ``(25, 3)`` with every
        joint's position even when its visibility is low (crossed arms hide the wrists, but their geometry still
        tells). others: see :func:`fitroom.preprocess.pose.unexplained_share`. face_found: the face mesh found a
        face on the person.
    """

    image: np.ndarray
    keypoints: np.ndarray | None
    mask: np.ndarray | None
    faces: np.ndarray
    people: int
    parse: np.ndarray | None = None
    raw_keypoints: np.ndarray | None = None  # every joint's position, however unsure (for pose geometry)
    #: the largest part of the any-person segmentation the main person does not explain (in their areas)
    others: float = 0.0
    #: whether the face mesh found the main person's face (None: not looked for)
    face_found: bool | None = None
    #: the view the photo seems to show (see :func:`guess_view`), when it was guessed
    view_guess: "ViewGuess | None" = None

    def at_photo_size(self) -> "PhotoObservation":
        """This observation with its silhouette and parse at the photo's size (nearest neighbour), as the checks
        measure it."""
        shape = self.image.shape[:2]
        if (self.mask is None or self.mask.shape == shape) and (self.parse is None or self.parse.shape == shape):
            return self
        return replace(self, mask=None if self.mask is None else imaging.resize(self.mask, shape, "mask"),
                       parse=None if self.parse is None else imaging.resize(self.parse, shape, "labels"))


@dataclass(frozen=True)
class ViewGuess:
    """Which side of the person a photo shows.

    Attributes:
        seen: ``"front"``, ``"back"`` or ``"side"`` (turned so far that the shoulders nearly overlap).
        view: the view to try on with: ``seen``, and for a side view the front when a face is seen, else the back.
        reason: why, in words (``"a face was found"``, ``"no face, and the left shoulder is on the image's left"``).
    """

    seen: str
    view: View
    reason: str


@dataclass
class PhotoReport:
    results: list[CheckResult]
    intersections: list[Intersection] = field(default_factory=list)
    #: the view the photo seems to show, when it was guessed
    view: ViewGuess | None = None
    #: the view the checks were made for: the one asked for, else the one seen, else the front
    view_used: View = View.FRONT

    @property
    def status(self) -> Status:
        worst = max(self.results, key=lambda r: r.status.severity)
        return worst.status if worst.status is not Status.SKIP else Status.PASS

    @property
    def exit_code(self) -> int:
        return self.status.severity

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)

    def to_dict(self) -> dict:
        return {"status": self.status.value, "checks": [r.to_dict() for r in self.results],
                "intersections": [asdict(i) for i in self.intersections],
                "view": None if self.view is None else {"seen": self.view.seen, "view": self.view.view.value,
                                                        "reason": self.view.reason}}


# ------------------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------------------
def _working(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    scale = WORKING_HEIGHT / image.shape[0]
    size = (max(int(round(image.shape[1] * scale)), 1), WORKING_HEIGHT)
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    small_mask = None if mask is None else cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST
                                                      ).astype(bool)
    return small, small_mask


def sharpness(image: np.ndarray, mask: np.ndarray | None) -> float:
    """Variance of the Laplacian over the variance of the grey levels (x1000), at a 512-pixel height, inside the
    person (whole photo if none). Dividing by the image's own contrast keeps a dark photo from reading as blurry."""
    small, small_mask = _working(image, mask)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    region = np.ones(grey.shape, bool)
    if small_mask is not None and small_mask.sum() > 100:
        inside = cv2.erode(small_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if inside.sum() > 100:
            region = inside
    return float(1000 * laplacian[region].var() / (grey[region].var() + 1.0))


def highlights(image: np.ndarray) -> float:
    """The 99th percentile of the grey levels (0..255): low when the whole photo is under-exposed, whatever the
    colours of the clothes or the wall (a well-lit photo still has bright skin and eye highlights)."""
    return float(np.percentile(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 99))


def clipped(image: np.ndarray, mask: np.ndarray | None, faces: np.ndarray | None = None) -> float:
    """The share of the face's pixels burnt out to white (grey >= 250): the largest face box when a face was
    found, else the person's pixels (else the whole photo). A white shirt or a bright wall is no exposure problem;
    a washed-out face is."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if faces is not None and len(faces):
        height, width = grey.shape
        x0, y0, x1, y1 = faces[int(np.argmax((faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]))), :4]
        box = grey[int(np.clip(y0, 0, height)):int(np.clip(np.ceil(y1), 0, height)),
                   int(np.clip(x0, 0, width)):int(np.clip(np.ceil(x1), 0, width))]
        if box.size >= 16:
            return float((box >= 250).mean())
    region = grey[mask] if mask is not None and mask.any() else grey
    return float((region >= 250).mean())


def silhouette_contrast(image: np.ndarray, mask: np.ndarray) -> float:
    """How much of the person's outline blends into the background: the share of edge pixels where the colours just
    inside and just outside the silhouette are closer than ``BLEND_DISTANCE`` in CIELAB (the photo at a 512-pixel
    height). 0 is a person who stands out everywhere."""
    small, small_mask = _working(image, mask)
    kernel = np.ones((7, 7), np.uint8)
    edge = cv2.dilate(small_mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~small_mask
    # the local means are only read on the outline: the outline's box, grown by the blur's reach (and the erosion's
    # and dilation's), is all that is worked on (the same values as on the whole photo)
    box = imaging.bounds(edge, SILHOUETTE_REACH)
    if box is None:
        return float("nan")
    y0, y1, x0, x1 = box
    crop = small[y0:y1, x0:x1]
    crop_mask = small_mask[y0:y1, x0:x1]
    edge = edge[y0:y1, x0:x1]
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    inner = cv2.erode(crop_mask.astype(np.uint8), kernel).astype(bool)
    outer = ~cv2.dilate(crop_mask.astype(np.uint8), kernel).astype(bool)

    def local_mean(region: np.ndarray) -> np.ndarray:
        weight = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 6)
        colour = cv2.GaussianBlur(lab * region[..., None], (0, 0), 6)
        return colour / np.maximum(weight, 1e-3)[..., None]

    if not edge.any() or not inner.any() or not outer.any():
        return float("nan")
    distance = np.linalg.norm(local_mean(inner)[edge] - local_mean(outer)[edge], axis=1)
    # the share of the outline that blends in: a problem when a good part does, even if the face stands out
    return float((distance < BLEND_DISTANCE).mean())


def outfit_contrast(image: np.ndarray, parse: np.ndarray) -> float | None:
    """CIELAB distance between the median colours of the upper and the lower garment (None if either is absent)."""
    upper = np.isin(parse, [Cihp.UPPER_CLOTHES, Cihp.COAT, Cihp.DRESS])
    lower = np.isin(parse, [Cihp.PANTS, Cihp.SKIRT])
    if upper.sum() < 200 or lower.sum() < 200:
        return None

    def lab(where: np.ndarray) -> np.ndarray:  # only those pixels converted, not the whole photo
        return cv2.cvtColor(image[where][:, None].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, 0]

    return float(np.linalg.norm(np.median(lab(upper), axis=0) - np.median(lab(lower), axis=0)))


def _segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray | None:
    """The crossing point of segments p1-p2 and q1-q2, or None."""
    r, s = p2 - p1, q2 - q1
    denominator = r[0] * s[1] - r[1] * s[0]
    if abs(denominator) < 1e-9:
        return None
    t = ((q1 - p1)[0] * s[1] - (q1 - p1)[1] * s[0]) / denominator
    u = ((q1 - p1)[0] * r[1] - (q1 - p1)[1] * r[0]) / denominator
    if 0 <= t <= 1 and 0 <= u <= 1:
        return p1 + t * r
    return None


SEGMENTS = {
    "right forearm": (Body25.R_ELBOW, Body25.R_WRIST), "left forearm": (Body25.L_ELBOW, Body25.L_WRIST),
    "right upper arm": (Body25.R_SHOULDER, Body25.R_ELBOW), "left upper arm": (Body25.L_SHOULDER, Body25.L_ELBOW),
    "right thigh": (Body25.R_HIP, Body25.R_KNEE), "left thigh": (Body25.L_HIP, Body25.L_KNEE),
    "right shin": (Body25.R_KNEE, Body25.R_ANKLE), "left shin": (Body25.L_KNEE, Body25.L_ANKLE),
}
_PAIRS = (("right forearm", "left forearm"), ("right forearm", "left upper arm"),
          ("left forearm", "right upper arm"), ("right shin", "left shin"), ("right thigh", "left thigh"),
          ("right shin", "left thigh"), ("left shin", "right thigh"))


def body_part_intersections(keypoints: np.ndarray) -> list[Intersection]:
    """Which body segments cross each other (forearms, upper arms, thighs, shins), and where."""
    k = np.asarray(keypoints, dtype=np.float64)
    found = []
    for a, b in _PAIRS:
        (a0, a1), (b0, b1) = SEGMENTS[a], SEGMENTS[b]
        if min(k[a0, 2], k[a1, 2], k[b0, 2], k[b1, 2]) <= 0:
            continue
        point = _segments_cross(k[a0, :2], k[a1, :2], k[b0, :2], k[b1, :2])
        if point is not None:
            found.append(Intersection(a, b, (float(point[0]), float(point[1]))))
    return found


def _side_of_midline(k: np.ndarray, joint: int, midline_x: float, person_right_sign: float, width: float) -> float:
    """Signed distance of a joint from the body's midline, positive on the person's own side, in shoulder widths."""
    return (k[joint, 0] - midline_x) * person_right_sign / width


def arms_crossed(keypoints: np.ndarray, margin: float) -> tuple[bool, float]:
    """Both wrists past the body's midline onto the other side (by ``margin`` shoulder widths), or the forearms
    crossing each other. Returns the verdict and the smaller overshoot (how far the wrists crossed)."""
    k = np.asarray(keypoints, dtype=np.float64)
    needed = (Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_WRIST, Body25.L_WRIST)
    if min(k[j, 2] for j in needed) <= 0:
        return False, float("nan")
    width = max(abs(k[Body25.L_SHOULDER, 0] - k[Body25.R_SHOULDER, 0]), 1.0)
    midline = (k[Body25.L_SHOULDER, 0] + k[Body25.R_SHOULDER, 0]) / 2
    right_sign = float(np.sign(k[Body25.R_SHOULDER, 0] - midline)) or -1.0
    overshoot_right = -_side_of_midline(k, Body25.R_WRIST, midline, right_sign, width)
    overshoot_left = _side_of_midline(k, Body25.L_WRIST, midline, right_sign, width)
    overshoot = min(overshoot_right, overshoot_left)
    forearms = any({i.part_a, i.part_b} == {"right forearm", "left forearm"} for i in body_part_intersections(k))
    return bool(forearms or overshoot > margin), float(overshoot)


def legs_crossed(keypoints: np.ndarray, min_gap: float = 0.0) -> tuple[bool, float]:
    """The ankles closer than ``min_gap`` hip widths (negative when swapped sides), or the legs' segments crossing.
    Returns the verdict and the ankle gap in hip widths."""
    k = np.asarray(keypoints, dtype=np.float64)
    needed = (Body25.R_HIP, Body25.L_HIP, Body25.R_ANKLE, Body25.L_ANKLE)
    if min(k[j, 2] for j in needed) <= 0:
        return False, float("nan")
    hip_gap = k[Body25.L_HIP, 0] - k[Body25.R_HIP, 0]
    ankle_gap = k[Body25.L_ANKLE, 0] - k[Body25.R_ANKLE, 0]
    ratio = float(ankle_gap / hip_gap) if abs(hip_gap) > 1 else float("nan")
    legs = any(i.part_a.endswith(("shin", "thigh")) for i in body_part_intersections(k))
    return bool(legs or (ratio == ratio and ratio < min_gap)), ratio


def facing_away(keypoints: np.ndarray) -> bool:
    """True when the person's left shoulder is on the image's left: seen from behind (BlazePose tells left from
    right by the body, not by the image side)."""
    k = np.asarray(keypoints, dtype=np.float64)
    width = abs(k[Body25.L_SHOULDER, 0] - k[Body25.R_SHOULDER, 0])
    return bool(k[Body25.L_SHOULDER, 0] < k[Body25.R_SHOULDER, 0] and width > 1.0)


def shoulder_ratio(keypoints: np.ndarray) -> float:
    """Shoulder width over torso height (neck to mid-hip): about 0.6-0.8 facing the camera, low when turned."""
    k = np.asarray(keypoints, dtype=np.float64)
    if min(k[j, 2] for j in (Body25.R_SHOULDER, Body25.L_SHOULDER)) <= 0:
        return float("nan")
    width = float(np.hypot(*(k[Body25.L_SHOULDER, :2] - k[Body25.R_SHOULDER, :2])))
    if min(k[j, 2] for j in (Body25.R_HIP, Body25.L_HIP)) > 0:
        hips = (k[Body25.L_HIP, :2] + k[Body25.R_HIP, :2]) / 2
        shoulders = (k[Body25.L_SHOULDER, :2] + k[Body25.R_SHOULDER, :2]) / 2
        height = float(np.hypot(*(hips - shoulders)))
        return width / max(height, 1.0)
    return float("nan")


def guess_view(keypoints: np.ndarray | None, faces: np.ndarray, face_found: bool | None,
               thresholds: "Thresholds | None" = None) -> ViewGuess:
    """The side of the person a photo shows, from the face and the shoulders' order.

    A face the mesh found on the person means the front; without one, a left shoulder on the image's left (BlazePose
    tells left from right by the body) or no confident face box means the back. Shoulders closer than
    ``shoulder_ratio_fail`` torso heights apart mean a side view.

    Args:
        keypoints: ``(25, 3)`` BODY_25 with every joint's position (``raw_keypoints``), or None.
        faces: ``(N, 5)`` face boxes with their scores in the last column.
        face_found: whether the face mesh found the person's face (None: not looked for).
    """
    t = thresholds or Thresholds.load()
    if keypoints is None:
        return ViewGuess("front", View.FRONT, "no person was found; the front is assumed")
    face_score = float(faces[:, 4].max()) if len(faces) else 0.0
    reversed_shoulders = facing_away(keypoints)
    if face_found:
        seen, reason = "front", "a face was found"
    elif reversed_shoulders:
        seen, reason = "back", "no face, and the left shoulder is on the image's left"
    elif face_score < t.face_score_min:
        seen, reason = "back", "no face was found"
    else:
        seen, reason = "front", "a face was found, and the right shoulder is on the image's left"
    ratio = shoulder_ratio(keypoints)
    if ratio == ratio and ratio < t.shoulder_ratio_fail:
        return ViewGuess("side", View(seen), f"the shoulders nearly overlap (turned to the side); {reason}")
    return ViewGuess(seen, View(seen), reason)


# ------------------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------------------
def _joint_words(joint: int) -> str:
    """``R_HIP`` -> ``right hip``."""
    side, _, part = Body25(joint).name.partition("_")
    return f"{ {'R': 'right', 'L': 'left'}[side]} {part.lower().replace('_', ' ')}" if side in "RL" and part else \
        Body25(joint).name.lower()


def _grade(value: float | None, fail: float, warn: float, low_is_bad: bool = True) -> Status:
    if value is None or value != value:
        return Status.SKIP
    if low_is_bad:
        return Status.FAIL if value < fail else Status.WARN if value < warn else Status.PASS
    return Status.FAIL if value > fail else Status.WARN if value > warn else Status.PASS


def check_photo(observation: PhotoObservation, category: GarmentCategory | str = GarmentCategory.UPPER,
                view: View | str | None = None, thresholds: Thresholds | None = None) -> PhotoReport:
    """Run every check on one photo. ``view`` is the view asked for; None: the one the photo seems to show
    (``observation.view_guess``, else the front)."""
    t = thresholds or Thresholds.load()
    o = observation.at_photo_size()
    guess = o.view_guess
    asked = view is not None
    category = GarmentCategory(category)
    view = View(view) if asked else guess.view if guess is not None else View.FRONT
    results: list[CheckResult] = []

    def add(name: str, status: Status, value, threshold: str, message: str, fix: str) -> None:
        if status is Status.FAIL and name in t.warn_only:
            status = Status.WARN
        ok = status in (Status.PASS, Status.SKIP)
        results.append(CheckResult(name, status, None if value is None or value != value else round(float(value), 3),
                                   threshold, "" if ok else message, "" if ok else fix))

    side = min(o.image.shape[:2])
    add("resolution", _grade(side, t.min_side_fail, t.min_side_warn), side,
        f"shorter side: fail < {t.min_side_fail:.0f} px, warn < {t.min_side_warn:.0f} px",
        f"The photo is small ({o.image.shape[1]}x{o.image.shape[0]} pixels), so details will be lost.",
        "Use the camera's full resolution, or a photo at least 512 pixels wide.")
    value = sharpness(o.image, o.mask)
    add("blur", _grade(value, t.sharpness_fail, t.sharpness_warn), value,
        f"sharpness: fail < {t.sharpness_fail:.3g}, warn < {t.sharpness_warn:.3g}",
        "The photo is blurry.", "Hold the camera still, or lean it on something, and make sure it focuses on you.")
    value = highlights(o.image)
    dark = _grade(value, t.dark_fail, t.dark_warn)
    burnt = clipped(o.image, o.mask, o.faces)
    if dark is not Status.PASS:
        add("exposure", dark, value, f"highlights (99th percentile, 0-255): fail < {t.dark_fail:.3g}, warn < "
            f"{t.dark_warn:.3g}", "The photo is too dark.", "Turn on more light or face a window.")
    else:
        add("exposure", _grade(burnt, t.bright_fail, t.bright_warn, low_is_bad=False), burnt,
            f"share of burnt-out face pixels (person pixels without a face): fail > {t.bright_fail:.3g}, warn > "
            f"{t.bright_warn:.3g}",
            "The photo is too bright: your face is washed out.",
            "Move out of direct sunlight or away from a bright lamp.")
    people = o.people if o.keypoints is not None else 0
    if people == 1 and o.others > t.others_warn:
        add("people", Status.WARN, people, f"exactly 1 person; warn when more than {t.others_warn:.2f} of a "
            f"person's area is unexplained", "Someone else seems to be in the photo, beside or behind you.",
            "Use a photo with only you in it, or crop the others out.")
    else:
        add("people", Status.PASS if people == 1 else Status.FAIL, people, "exactly 1 person",
            "No person was found in the photo." if people == 0 else f"{people} people were found in the photo.",
            "Use a photo of yourself alone, facing the camera." if people == 0 else
            "Use a photo with only you in it, or crop the others out.")
    report = PhotoReport(results, view=guess, view_used=view)
    if o.keypoints is None:
        for name in ("full_length", "crossed_arms", "crossed_legs", "facing", "contrast", "outfit"):
            add(name, Status.SKIP, None, "needs a person", "", "")
        return report
    k = o.keypoints
    height, width = o.image.shape[:2]
    needed, wanted = REQUIRED_JOINTS[category]

    def seen(joint: int) -> bool:
        margin = 0.01 * height
        return k[joint, 2] > 0 and margin <= k[joint, 1] <= height - margin and 0 <= k[joint, 0] <= width - 1

    missing = [_joint_words(j) for j in needed if not seen(j)]
    missing_wanted = [_joint_words(j) for j in wanted if not seen(j)]
    body = {GarmentCategory.UPPER: "from head to hips", GarmentCategory.LOWER: "from hips to feet",
            GarmentCategory.DRESS: "from shoulders to knees"}[category]
    garment_words = {GarmentCategory.UPPER: "a top", GarmentCategory.LOWER: "trousers or a skirt",
                     GarmentCategory.DRESS: "a dress"}[category]
    status = Status.FAIL if missing else Status.WARN if missing_wanted else Status.PASS
    add("full_length", status, len(needed) - len(missing), f"{category.value}: needs {body}",
        f"To try on {garment_words} the photo must show you {body}, but your "
        f"{', '.join(missing or missing_wanted)} cannot be seen.",
        "Step back so your whole body, down to your feet, is in the picture." if category is not GarmentCategory.UPPER
        else "Step back so your hips are in the picture.")
    geometry = o.raw_keypoints if o.raw_keypoints is not None else k
    ratio = shoulder_ratio(k)
    if ratio == ratio and ratio < t.shoulder_ratio_fail:
        # turned so far that left and right overlap: crossing cannot be judged, and "facing" reports the turn
        add("crossed_arms", Status.SKIP, None, "needs the body facing the camera or its back", "", "")
        add("crossed_legs", Status.SKIP, None, "needs the body facing the camera or its back", "", "")
    else:
        crossed, overshoot = arms_crossed(geometry, t.crossing_margin)
        add("crossed_arms", Status.FAIL if crossed else Status.PASS, overshoot,
            f"both wrists past the body's middle by more than {t.crossing_margin:.3g} shoulder widths (negative: "
            f"short of it), or forearms crossing",
            "Your arms are crossed, which hides the garment.", "Let your arms hang by your sides.")
        crossed, gap = legs_crossed(geometry, t.ankle_gap_fail)
        add("crossed_legs", Status.FAIL if crossed else Status.PASS, gap,
            f"ankle gap over hip width: fail < {t.ankle_gap_fail:.3g}, or legs crossing",
            "Your legs are crossed.", "Stand with your feet apart, about hip width.")
    # a front view asked of a photo of the back is the facing check's to report
    if asked and view.surface is View.BACK and guess is not None and guess.view is View.FRONT:
        add("view", Status.WARN, None, f"asked: back; seen: {guess.seen} ({guess.reason})",
            f"You chose the back view, but the photo seems to show your front ({guess.reason}).",
            "Choose the front view, or use a photo taken from behind you.")
    elif guess is not None:
        add("view", Status.PASS, None, f"{'asked: ' + view.value + '; ' if asked else ''}seen: {guess.seen} "
            f"({guess.reason})", "", "")
    # the back of the head has no face: a face the mesh found on this person outweighs the shoulders' order,
    # which BlazePose gets wrong on some frontal real photos (the rule of guess_view, with these thresholds)
    away = guess_view(geometry, o.faces, o.face_found, t).view is View.BACK
    if view.surface is not view:  # a side view: being turned is what was asked for
        add("facing", Status.SKIP, ratio, f"{view.value} view: turned to the side as asked", "", "")
    elif view is View.FRONT and away:
        add("facing", Status.FAIL, ratio, "front view: the face must be seen and the body face the camera",
            "You seem to have your back to the camera, but a front view was asked for.",
            "Face the camera, or choose the back view.")
    else:
        add("facing", _grade(ratio, t.shoulder_ratio_fail, t.shoulder_ratio_warn), ratio,
            f"shoulder width / torso height: fail < {t.shoulder_ratio_fail:.3g}, warn < {t.shoulder_ratio_warn:.3g}",
            "Your body is turned to the side.", "Turn to face the camera squarely.")
    value = silhouette_contrast(o.image, o.mask) if o.mask is not None and o.mask.any() else None
    add("contrast", _grade(value, t.contrast_fail, t.contrast_warn, low_is_bad=False), value,
        f"share of your outline that blends into the background: fail > {t.contrast_fail:.3g}, warn > "
        f"{t.contrast_warn:.3g}",
        "You blend into the background, so your outline cannot be found reliably.",
        "Stand in front of a plain wall whose colour differs from your clothes and skin.")
    value = outfit_contrast(o.image, o.parse) if o.parse is not None else None
    status = Status.SKIP if value is None else Status.WARN if value < t.outfit_contrast_warn else Status.PASS
    add("outfit", status, value, f"top/bottom colour difference (CIELAB): warn < {t.outfit_contrast_warn:.3g}",
        "Your top and your trousers or skirt are the same colour, so it is hard to tell where one ends.",
        "Wear a bottom whose colour differs from the top you try on.")
    report.intersections = body_part_intersections(geometry)
    return report
