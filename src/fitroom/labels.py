"""Named constants shared by every part of fitroom.

Parse labels, keypoint layouts, DensePose part indices, views, garment categories and default resolutions live
here and nowhere else, so that no module carries a bare ``13`` or ``(1024, 768)``.

Sources (facts, not code): the CIHP and LIP label sets as used by VITON-HD / HR-VITON's data
(``image-parse-v3``), the 20 -> 13 -> 7 merges HR-VITON applies (see ``shared/reference/hrviton`` section 3.1), the
OpenPose BODY_25 and COCO-18 layouts, mediapipe's 33 BlazePose landmarks, and DensePose's 24 body-part indices.
"""

from __future__ import annotations

import dataclasses
import enum
from types import MappingProxyType
from typing import Final, Mapping

import numpy as np

# --------------------------------------------------------------------------------------------------------------
# Resolutions, as (height, width). Every try-on dataset of this family is portrait 4:3.
# --------------------------------------------------------------------------------------------------------------
SIZE_1024: Final = (1024, 768)
SIZE_512: Final = (512, 384)
SIZE_256: Final = (256, 192)
DEFAULT_SIZE: Final = SIZE_1024
#: the resolution HR-VITON's condition generator works at, whatever the output size
CONDITION_SIZE: Final = SIZE_256
#: height / width of every supported canvas
ASPECT_HEIGHT_OVER_WIDTH: Final = 4 / 3


class View(str, enum.Enum):
    """Which side of the person (and of the garment) the camera sees. Every property of a view is declared once,
    in :data:`VIEW_SPECS`; code asks the view rather than comparing it with ``FRONT`` or ``BACK``."""

    FRONT = "front"
    BACK = "back"
    SIDE_LEFT = "side-left"  # the person's left side towards the camera
    SIDE_RIGHT = "side-right"

    @property
    def spec(self) -> ViewSpec:
        return VIEW_SPECS[self]

    @property
    def index(self) -> int:
        """The integer models receive (the view plane of a weight-shared model): 0 front, 1 back, 2 and 3 the
        sides."""
        return self.spec.index

    @property
    def surface(self) -> View:
        """The body surface the camera mostly sees, front or back: which DensePose surface, which product photo
        and which left/right convention the view uses."""
        return self.spec.surface


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """What a view is to the code.

    Attributes:
        index: the integer models receive.
        surface: ``View.FRONT`` or ``View.BACK`` (see :attr:`View.surface`).
        rendered: whether the synthetic renderer draws it.
        label: in words, for people.
    """

    index: int
    surface: View
    rendered: bool
    label: str


VIEW_SPECS: Final[Mapping[View, ViewSpec]] = MappingProxyType({
    View.FRONT: ViewSpec(0, View.FRONT, True, "from the front"),
    View.BACK: ViewSpec(1, View.BACK, True, "from behind"),
    View.SIDE_LEFT: ViewSpec(2, View.FRONT, False, "from the left side"),
    View.SIDE_RIGHT: ViewSpec(3, View.FRONT, False, "from the right side"),
})
#: the views the synthetic renderer draws (and the default training views)
RENDERED_VIEWS: Final[tuple[View, ...]] = tuple(v for v in View if VIEW_SPECS[v].rendered)


class GarmentCategory(str, enum.Enum):
    """Garment categories, as in DressCode / VITON-HD."""

    UPPER = "upper"
    LOWER = "lower"
    DRESS = "dress"


# --------------------------------------------------------------------------------------------------------------
# Human parsing: CIHP's 20 labels (what image-parse-v3 holds), and LIP's, which differ only at label 10.
# --------------------------------------------------------------------------------------------------------------
class Cihp(enum.IntEnum):
    """The 20 CIHP human-parsing labels (CIHP_PGN / Graphonomy), values of a ``P``-mode parse PNG."""

    BACKGROUND = 0
    HAT = 1
    HAIR = 2
    GLOVE = 3
    SUNGLASSES = 4
    UPPER_CLOTHES = 5
    DRESS = 6
    COAT = 7
    SOCKS = 8
    PANTS = 9
    TORSO_SKIN = 10  # neck and other visible skin of the torso; LIP has "jumpsuits" here
    SCARF = 11
    SKIRT = 12
    FACE = 13
    LEFT_ARM = 14
    RIGHT_ARM = 15
    LEFT_LEG = 16
    RIGHT_LEG = 17
    LEFT_SHOE = 18
    RIGHT_SHOE = 19


NUM_PARSE_LABELS: Final = 20
CIHP_NAMES: Final[tuple[str, ...]] = tuple(label.name.lower().replace("_", "-") for label in Cihp)
#: LIP's names: identical to CIHP's except label 10
LIP_NAMES: Final[tuple[str, ...]] = CIHP_NAMES[:10] + ("jumpsuits",) + CIHP_NAMES[11:]
#: the label whose meaning differs between LIP and CIHP
LIP_CIHP_DIFFERENT_LABEL: Final = 10

#: the palette used to colour CIHP parses for display (index -> RGB); the label values are what matter
CIHP_PALETTE: Final = np.array(
    [
        (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85), (0, 119, 221),
        (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221),
        (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0),
    ],
    dtype=np.uint8,
)

#: labels that are the upper garment (what try-on replaces for the ``upper`` category)
UPPER_GARMENT_LABELS: Final = (Cihp.UPPER_CLOTHES, Cihp.DRESS, Cihp.COAT)
LOWER_GARMENT_LABELS: Final = (Cihp.PANTS, Cihp.SKIRT)
ARM_LABELS: Final = (Cihp.LEFT_ARM, Cihp.RIGHT_ARM)
HEAD_LABELS: Final = (Cihp.SUNGLASSES, Cihp.FACE)
#: the parse labels a garment of each category replaces, with the skin it may cover (what the diffusion engine
#: regenerates and its training stage masks)
REGENERATED_LABELS: Final[Mapping[GarmentCategory, tuple[Cihp, ...]]] = MappingProxyType({
    GarmentCategory.UPPER: (Cihp.UPPER_CLOTHES, Cihp.COAT, Cihp.DRESS, Cihp.TORSO_SKIN, Cihp.LEFT_ARM, Cihp.RIGHT_ARM,
                            Cihp.SCARF),
    GarmentCategory.LOWER: (Cihp.PANTS, Cihp.SKIRT, Cihp.DRESS, Cihp.LEFT_LEG, Cihp.RIGHT_LEG),
    GarmentCategory.DRESS: (Cihp.UPPER_CLOTHES, Cihp.COAT, Cihp.DRESS, Cihp.PANTS, Cihp.SKIRT, Cihp.TORSO_SKIN,
                            Cihp.LEFT_ARM, Cihp.RIGHT_ARM, Cihp.LEFT_LEG, Cihp.RIGHT_LEG, Cihp.SCARF),
})
#: what HR-VITON's clothing-agnostic image pastes back from the original below the waist
LOWER_BODY_LABELS: Final = (Cihp.PANTS, Cihp.SKIRT, Cihp.LEFT_LEG, Cihp.RIGHT_LEG, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE)


class Parse13(enum.IntEnum):
    """HR-VITON's 13 merged classes, the condition generator's segmentation output."""

    BACKGROUND = 0
    HAIR = 1
    FACE = 2
    UPPER = 3
    BOTTOM = 4
    LEFT_ARM = 5
    RIGHT_ARM = 6
    LEFT_LEG = 7
    RIGHT_LEG = 8
    LEFT_SHOE = 9
    RIGHT_SHOE = 10
    SOCKS = 11
    NOISE = 12


class Parse7(enum.IntEnum):
    """HR-VITON's 7 generator classes, regrouped from the 13."""

    BACKGROUND = 0
    PASTE = 1  # face, bottom, legs, shoes, socks: copied from the person
    UPPER = 2
    HAIR = 3
    LEFT_ARM = 4
    RIGHT_ARM = 5
    NOISE = 6


_CIHP_TO_13: Final = {
    Parse13.BACKGROUND: (Cihp.BACKGROUND, Cihp.TORSO_SKIN),  # HR-VITON drops the neck into background
    Parse13.HAIR: (Cihp.HAT, Cihp.HAIR),
    Parse13.FACE: (Cihp.SUNGLASSES, Cihp.FACE),
    Parse13.UPPER: (Cihp.UPPER_CLOTHES, Cihp.DRESS, Cihp.COAT),
    Parse13.BOTTOM: (Cihp.PANTS, Cihp.SKIRT),
    Parse13.LEFT_ARM: (Cihp.LEFT_ARM,),
    Parse13.RIGHT_ARM: (Cihp.RIGHT_ARM,),
    Parse13.LEFT_LEG: (Cihp.LEFT_LEG,),
    Parse13.RIGHT_LEG: (Cihp.RIGHT_LEG,),
    Parse13.LEFT_SHOE: (Cihp.LEFT_SHOE,),
    Parse13.RIGHT_SHOE: (Cihp.RIGHT_SHOE,),
    Parse13.SOCKS: (Cihp.SOCKS,),
    Parse13.NOISE: (Cihp.GLOVE, Cihp.SCARF),
}
_13_TO_7: Final = {
    Parse7.BACKGROUND: (Parse13.BACKGROUND,),
    Parse7.PASTE: (Parse13.FACE, Parse13.BOTTOM, Parse13.LEFT_LEG, Parse13.RIGHT_LEG, Parse13.LEFT_SHOE,
                   Parse13.RIGHT_SHOE, Parse13.SOCKS),
    Parse7.UPPER: (Parse13.UPPER,),
    Parse7.HAIR: (Parse13.HAIR,),
    Parse7.LEFT_ARM: (Parse13.LEFT_ARM,),
    Parse7.RIGHT_ARM: (Parse13.RIGHT_ARM,),
    Parse7.NOISE: (Parse13.NOISE,),
}


def _lookup(groups: Mapping[int, tuple[int, ...]], size: int) -> np.ndarray:
    table = np.full(size, -1, dtype=np.int64)
    for target, sources in groups.items():
        for source in sources:
            table[int(source)] = int(target)
    assert (table >= 0).all(), "every source label must be mapped"
    table.setflags(write=False)
    return table


#: ``CIHP_TO_13[parse]`` merges a 20-label parse into HR-VITON's 13 classes
CIHP_TO_13: Final = _lookup(_CIHP_TO_13, NUM_PARSE_LABELS)


def _garment_groups(category: GarmentCategory) -> dict[int, tuple[int, ...]]:
    """The 13-class groups with ``Parse13.UPPER`` as the garment tried on and ``Parse13.BOTTOM`` as the garment
    kept: for a lower garment, trousers and skirts (and a dress worn now) go to the first, tops to the second;
    for a dress, every garment goes to the first."""
    groups = dict(_CIHP_TO_13)
    if category is GarmentCategory.LOWER:
        groups[Parse13.UPPER] = (Cihp.PANTS, Cihp.SKIRT, Cihp.DRESS)
        groups[Parse13.BOTTOM] = (Cihp.UPPER_CLOTHES, Cihp.COAT)
    elif category is GarmentCategory.DRESS:
        groups[Parse13.UPPER] = (Cihp.UPPER_CLOTHES, Cihp.DRESS, Cihp.COAT, Cihp.PANTS, Cihp.SKIRT)
        groups[Parse13.BOTTOM] = ()
    return groups


#: ``GARMENT_CIHP_TO_13[category_index, parse]``: ``CIHP_TO_13`` with the garment tried on in ``Parse13.UPPER``
#: whatever its category (rows in ``GarmentCategory`` order; row 0, upper, is ``CIHP_TO_13``). A model with the
#: category as an input learns one layout channel for "the new garment" and one for "the garment kept", so its
#: generator makes the first and pastes the second (``Parse7.PASTE``) for every category.
GARMENT_CIHP_TO_13: Final = np.stack([_lookup(_garment_groups(c), NUM_PARSE_LABELS) for c in GarmentCategory])
GARMENT_CIHP_TO_13.setflags(write=False)
#: ``PARSE13_TO_7[parse13]`` regroups the 13 classes into the generator's 7
PARSE13_TO_7: Final = _lookup(_13_TO_7, len(Parse13))
#: body parts whose probability is subtracted from the warped garment mask (HR-VITON's occlusion handling)
OCCLUDING_PARSE13: Final = (Parse13.HAIR, Parse13.FACE, Parse13.LEFT_ARM, Parse13.RIGHT_ARM, Parse13.LEFT_LEG,
                            Parse13.RIGHT_LEG, Parse13.LEFT_SHOE, Parse13.RIGHT_SHOE, Parse13.SOCKS,
                            Parse13.NOISE)


# --------------------------------------------------------------------------------------------------------------
# Keypoints
# --------------------------------------------------------------------------------------------------------------
class Body25(enum.IntEnum):
    """OpenPose BODY_25 keypoints; "left" and "right" are the person's own sides."""

    NOSE = 0
    NECK = 1
    R_SHOULDER = 2
    R_ELBOW = 3
    R_WRIST = 4
    L_SHOULDER = 5
    L_ELBOW = 6
    L_WRIST = 7
    MID_HIP = 8
    R_HIP = 9
    R_KNEE = 10
    R_ANKLE = 11
    L_HIP = 12
    L_KNEE = 13
    L_ANKLE = 14
    R_EYE = 15
    L_EYE = 16
    R_EAR = 17
    L_EAR = 18
    L_BIG_TOE = 19
    L_SMALL_TOE = 20
    L_HEEL = 21
    R_BIG_TOE = 22
    R_SMALL_TOE = 23
    R_HEEL = 24


NUM_BODY25: Final = 25
#: limbs drawn by OpenPose's renderer and by ``openpose_img``
BODY25_LIMBS: Final = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12), (12, 13), (13, 14),
    (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)
#: the chains HR-VITON's parse-agnostic draws for each arm: (parse label, BODY_25 joints in order)
AGNOSTIC_ARM_CHAINS: Final = (
    (Cihp.LEFT_ARM, (Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.L_ELBOW, Body25.L_WRIST)),
    (Cihp.RIGHT_ARM, (Body25.L_SHOULDER, Body25.R_SHOULDER, Body25.R_ELBOW, Body25.R_WRIST)),
)


class Coco18(enum.IntEnum):
    """OpenPose's COCO-18 layout, the pose input of CP-VTON."""

    NOSE = 0
    NECK = 1
    R_SHOULDER = 2
    R_ELBOW = 3
    R_WRIST = 4
    L_SHOULDER = 5
    L_ELBOW = 6
    L_WRIST = 7
    R_HIP = 8
    R_KNEE = 9
    R_ANKLE = 10
    L_HIP = 11
    L_KNEE = 12
    L_ANKLE = 13
    R_EYE = 14
    L_EYE = 15
    R_EAR = 16
    L_EAR = 17


#: ``keypoints_coco18 = keypoints_body25[BODY25_TO_COCO18]``
BODY25_TO_COCO18: Final = tuple(int(Body25[joint.name]) for joint in Coco18)


class Mediapipe33(enum.IntEnum):
    """mediapipe BlazePose's 33 landmarks."""

    NOSE = 0
    L_EYE_INNER = 1
    L_EYE = 2
    L_EYE_OUTER = 3
    R_EYE_INNER = 4
    R_EYE = 5
    R_EYE_OUTER = 6
    L_EAR = 7
    R_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    L_SHOULDER = 11
    R_SHOULDER = 12
    L_ELBOW = 13
    R_ELBOW = 14
    L_WRIST = 15
    R_WRIST = 16
    L_PINKY = 17
    R_PINKY = 18
    L_INDEX = 19
    R_INDEX = 20
    L_THUMB = 21
    R_THUMB = 22
    L_HIP = 23
    R_HIP = 24
    L_KNEE = 25
    R_KNEE = 26
    L_ANKLE = 27
    R_ANKLE = 28
    L_HEEL = 29
    R_HEEL = 30
    L_FOOT_INDEX = 31
    R_FOOT_INDEX = 32


NUM_MEDIAPIPE: Final = 33
#: each BODY_25 joint as the mean of these mediapipe landmarks (neck and mid-hip are derived; BlazePose has one
#: toe point per foot, which serves as both big and small toe)
MEDIAPIPE_TO_BODY25: Final[Mapping[Body25, tuple[Mediapipe33, ...]]] = MappingProxyType({
    Body25.NOSE: (Mediapipe33.NOSE,),
    Body25.NECK: (Mediapipe33.L_SHOULDER, Mediapipe33.R_SHOULDER),
    Body25.R_SHOULDER: (Mediapipe33.R_SHOULDER,),
    Body25.R_ELBOW: (Mediapipe33.R_ELBOW,),
    Body25.R_WRIST: (Mediapipe33.R_WRIST,),
    Body25.L_SHOULDER: (Mediapipe33.L_SHOULDER,),
    Body25.L_ELBOW: (Mediapipe33.L_ELBOW,),
    Body25.L_WRIST: (Mediapipe33.L_WRIST,),
    Body25.MID_HIP: (Mediapipe33.L_HIP, Mediapipe33.R_HIP),
    Body25.R_HIP: (Mediapipe33.R_HIP,),
    Body25.R_KNEE: (Mediapipe33.R_KNEE,),
    Body25.R_ANKLE: (Mediapipe33.R_ANKLE,),
    Body25.L_HIP: (Mediapipe33.L_HIP,),
    Body25.L_KNEE: (Mediapipe33.L_KNEE,),
    Body25.L_ANKLE: (Mediapipe33.L_ANKLE,),
    Body25.R_EYE: (Mediapipe33.R_EYE,),
    Body25.L_EYE: (Mediapipe33.L_EYE,),
    Body25.R_EAR: (Mediapipe33.R_EAR,),
    Body25.L_EAR: (Mediapipe33.L_EAR,),
    Body25.L_BIG_TOE: (Mediapipe33.L_FOOT_INDEX,),
    Body25.L_SMALL_TOE: (Mediapipe33.L_FOOT_INDEX,),
    Body25.L_HEEL: (Mediapipe33.L_HEEL,),
    Body25.R_BIG_TOE: (Mediapipe33.R_FOOT_INDEX,),
    Body25.R_SMALL_TOE: (Mediapipe33.R_FOOT_INDEX,),
    Body25.R_HEEL: (Mediapipe33.R_HEEL,),
})


# --------------------------------------------------------------------------------------------------------------
# DensePose part indices (the "I" channel) and the colouring of HR-VITON's image-densepose renders.
# --------------------------------------------------------------------------------------------------------------
class DensePart(enum.IntEnum):
    """DensePose's 24 surface parts; each body part has two surface patches."""

    TORSO_BACK = 1
    TORSO_FRONT = 2
    RIGHT_HAND = 3
    LEFT_HAND = 4
    LEFT_FOOT = 5
    RIGHT_FOOT = 6
    UPPER_LEG_RIGHT_A = 7
    UPPER_LEG_LEFT_A = 8
    UPPER_LEG_RIGHT_B = 9
    UPPER_LEG_LEFT_B = 10
    LOWER_LEG_RIGHT_A = 11
    LOWER_LEG_LEFT_A = 12
    LOWER_LEG_RIGHT_B = 13
    LOWER_LEG_LEFT_B = 14
    UPPER_ARM_LEFT_A = 15
    UPPER_ARM_RIGHT_A = 16
    UPPER_ARM_LEFT_B = 17
    UPPER_ARM_RIGHT_B = 18
    LOWER_ARM_LEFT_A = 19
    LOWER_ARM_RIGHT_A = 20
    LOWER_ARM_LEFT_B = 21
    LOWER_ARM_RIGHT_B = 22
    HEAD_A = 23
    HEAD_B = 24


NUM_DENSE_PARTS: Final = 24


class BodyPart(str, enum.Enum):
    """Body parts as fitroom's renderers and dense mappers name them."""

    TORSO = "torso"
    HEAD = "head"
    LEFT_UPPER_ARM = "left_upper_arm"
    RIGHT_UPPER_ARM = "right_upper_arm"
    LEFT_LOWER_ARM = "left_lower_arm"
    RIGHT_LOWER_ARM = "right_lower_arm"
    LEFT_HAND = "left_hand"
    RIGHT_HAND = "right_hand"
    LEFT_UPPER_LEG = "left_upper_leg"
    RIGHT_UPPER_LEG = "right_upper_leg"
    LEFT_LOWER_LEG = "left_lower_leg"
    RIGHT_LOWER_LEG = "right_lower_leg"
    LEFT_FOOT = "left_foot"
    RIGHT_FOOT = "right_foot"


#: the DensePose index of each body part seen from the front and from the back. Which of a limb's two patches
#: faces the camera is fitroom's convention (DensePose documents the pairs, not their orientation); hands, feet
#: have one patch each.
DENSE_PART_BY_VIEW: Final[Mapping[BodyPart, tuple[DensePart, DensePart]]] = MappingProxyType({
    BodyPart.TORSO: (DensePart.TORSO_FRONT, DensePart.TORSO_BACK),
    BodyPart.HEAD: (DensePart.HEAD_B, DensePart.HEAD_A),
    BodyPart.LEFT_UPPER_ARM: (DensePart.UPPER_ARM_LEFT_B, DensePart.UPPER_ARM_LEFT_A),
    BodyPart.RIGHT_UPPER_ARM: (DensePart.UPPER_ARM_RIGHT_B, DensePart.UPPER_ARM_RIGHT_A),
    BodyPart.LEFT_LOWER_ARM: (DensePart.LOWER_ARM_LEFT_B, DensePart.LOWER_ARM_LEFT_A),
    BodyPart.RIGHT_LOWER_ARM: (DensePart.LOWER_ARM_RIGHT_B, DensePart.LOWER_ARM_RIGHT_A),
    BodyPart.LEFT_HAND: (DensePart.LEFT_HAND, DensePart.LEFT_HAND),
    BodyPart.RIGHT_HAND: (DensePart.RIGHT_HAND, DensePart.RIGHT_HAND),
    BodyPart.LEFT_UPPER_LEG: (DensePart.UPPER_LEG_LEFT_B, DensePart.UPPER_LEG_LEFT_A),
    BodyPart.RIGHT_UPPER_LEG: (DensePart.UPPER_LEG_RIGHT_B, DensePart.UPPER_LEG_RIGHT_A),
    BodyPart.LEFT_LOWER_LEG: (DensePart.LOWER_LEG_LEFT_B, DensePart.LOWER_LEG_LEFT_A),
    BodyPart.RIGHT_LOWER_LEG: (DensePart.LOWER_LEG_RIGHT_B, DensePart.LOWER_LEG_RIGHT_A),
    BodyPart.LEFT_FOOT: (DensePart.LEFT_FOOT, DensePart.LEFT_FOOT),
    BodyPart.RIGHT_FOOT: (DensePart.RIGHT_FOOT, DensePart.RIGHT_FOOT),
})


def _dense_colormap() -> np.ndarray:
    """RGB colour of each DensePose index 0..24 as detectron2's ``dp_segm`` visualiser paints it: the index scaled
    by 255/24 through OpenCV's PARULA colormap, index 0 (background) black."""
    import cv2  # local import: labels stays importable without opencv for light users

    values = np.round(np.arange(NUM_DENSE_PARTS + 1) * 255.0 / NUM_DENSE_PARTS).astype(np.uint8)
    bgr = cv2.applyColorMap(values.reshape(-1, 1), cv2.COLORMAP_PARULA).reshape(-1, 3)
    rgb = bgr[:, ::-1].copy()
    rgb[0] = 0
    rgb.setflags(write=False)
    return rgb


DENSE_COLORMAP: Final = _dense_colormap()


# --------------------------------------------------------------------------------------------------------------
# Other parsers' label sets, remapped to CIHP
# --------------------------------------------------------------------------------------------------------------
#: LIP (SCHP-LIP) -> CIHP: the same names except LIP's 10 "jumpsuits", a one-piece garment, which becomes a dress
LIP_TO_CIHP: Final = np.array([*range(10), Cihp.DRESS, *range(11, 20)], dtype=np.uint8)
#: ATR's 18 labels (SCHP-ATR) in order
ATR_NAMES: Final = ("background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt",
                    "left-shoe", "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag",
                    "scarf")
#: ATR -> CIHP; a belt goes with the pants, a bag with the "noise" classes (CIHP has neither)
ATR_TO_CIHP: Final = np.array([
    Cihp.BACKGROUND, Cihp.HAT, Cihp.HAIR, Cihp.SUNGLASSES, Cihp.UPPER_CLOTHES, Cihp.SKIRT, Cihp.PANTS, Cihp.DRESS,
    Cihp.PANTS, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE, Cihp.FACE, Cihp.LEFT_LEG, Cihp.RIGHT_LEG, Cihp.LEFT_ARM,
    Cihp.RIGHT_ARM, Cihp.GLOVE, Cihp.SCARF], dtype=np.uint8)
