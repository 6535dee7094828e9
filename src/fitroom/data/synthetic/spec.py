"""What a synthetic person and a synthetic garment are, and how they are sampled.

A spec is a small frozen dataclass of numbers and names, independent of resolution. Rendering a spec is a pure
function of the spec, the view and the size, so the same person can be rendered in another garment (unpaired
ground truth) or at another resolution, and a seed gives the same dataset on every machine.

Lengths are in "head units" (``hu``): the height of the head, the unit artists use for body proportions.
Colours are RGB tuples of floats in [0, 1].
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import numpy as np

from fitroom.labels import View

RGB = tuple[float, float, float]

#: a dress's hip line (the crotch's height), in hu below the shoulder line: its skirt hangs from here
DRESS_HIP = 2.9
#: hip joint to ankle, in hu (the renderer's legs are about this long)
LEG = 3.7


# ------------------------------------------------------------------------------------------------------------
# Palettes
# ------------------------------------------------------------------------------------------------------------
#: skin tones from very light to very dark (sRGB)
SKIN_TONES: tuple[RGB, ...] = (
    (0.96, 0.84, 0.76), (0.93, 0.78, 0.67), (0.89, 0.72, 0.60), (0.84, 0.64, 0.52), (0.76, 0.56, 0.42),
    (0.67, 0.47, 0.34), (0.56, 0.38, 0.27), (0.45, 0.30, 0.21), (0.36, 0.24, 0.17), (0.27, 0.18, 0.13),
)
HAIR_COLOURS: tuple[RGB, ...] = (
    (0.08, 0.06, 0.05), (0.16, 0.11, 0.08), (0.30, 0.19, 0.11), (0.45, 0.30, 0.17), (0.72, 0.56, 0.34),
    (0.86, 0.74, 0.52), (0.55, 0.22, 0.10), (0.62, 0.62, 0.62), (0.85, 0.85, 0.83),
)
EYE_COLOURS: tuple[RGB, ...] = ((0.25, 0.16, 0.09), (0.12, 0.08, 0.05), (0.25, 0.40, 0.55), (0.30, 0.42, 0.28))
FABRIC_COLOURS: tuple[RGB, ...] = (
    (0.95, 0.95, 0.94), (0.10, 0.10, 0.11), (0.55, 0.56, 0.58), (0.80, 0.10, 0.12), (0.10, 0.22, 0.55),
    (0.10, 0.45, 0.25), (0.95, 0.78, 0.20), (0.95, 0.50, 0.15), (0.55, 0.20, 0.55), (0.90, 0.55, 0.65),
    (0.45, 0.70, 0.90), (0.60, 0.75, 0.40), (0.20, 0.20, 0.35), (0.70, 0.55, 0.40), (0.40, 0.25, 0.15),
    (0.95, 0.90, 0.78), (0.20, 0.55, 0.60), (0.75, 0.25, 0.30),
)
DENIM_COLOURS: tuple[RGB, ...] = (
    (0.18, 0.26, 0.42), (0.30, 0.42, 0.60), (0.12, 0.14, 0.20), (0.10, 0.10, 0.10), (0.62, 0.58, 0.48),
    (0.40, 0.40, 0.42), (0.30, 0.33, 0.22), (0.85, 0.83, 0.78),
)
SHOE_COLOURS: tuple[RGB, ...] = ((0.08, 0.08, 0.08), (0.95, 0.95, 0.95), (0.40, 0.25, 0.15), (0.60, 0.10, 0.10),
                                 (0.20, 0.25, 0.45), (0.75, 0.70, 0.60))
LOGO_WORDS = ("FITROOM", "NOVA", "SUN 88", "WAVE", "TOKYO", "NORTH", "ACE", "BLOOM", "LAB 7", "ORBIT", "MILO",
              "SEOUL", "RIVER", "PEAK", "99", "HELLO", "URBAN", "ZEN")


class GarmentKind(str, enum.Enum):
    TEE = "tee"
    LONG_SLEEVE = "long_sleeve"
    TANK = "tank"
    SHIRT = "shirt"
    JACKET = "jacket"
    DRESS = "dress"  # one piece from the shoulders down the legs (sleeveless, short or long sleeves)


#: the kinds of tops :func:`sample_garment` draws from (a dress is drawn by :func:`sample_dress`)
TOP_KINDS = (GarmentKind.TEE, GarmentKind.LONG_SLEEVE, GarmentKind.TANK, GarmentKind.SHIRT, GarmentKind.JACKET)


class Pattern(str, enum.Enum):
    SOLID = "solid"
    STRIPES = "stripes"
    CHECKS = "checks"
    DOTS = "dots"
    PRINT = "print"


class Graphic(str, enum.Enum):
    NONE = "none"
    TEXT = "text"  # a word, as a text logo
    BADGE = "badge"  # a small emblem on the chest
    BIG_PRINT = "big_print"  # a large geometric print
    NUMBER = "number"  # a big number, as on the back of a sports shirt


class Neckline(str, enum.Enum):
    CREW = "crew"
    V = "v"
    COLLAR = "collar"


class ArmPose(str, enum.Enum):
    DOWN = "down"
    A_POSE = "a_pose"
    HAND_ON_HIP = "hand_on_hip"
    ACROSS = "across"  # forearm across the belly, in front of the torso
    POCKET = "pocket"  # hand at the front of the thigh
    RAISED = "raised"
    CROSSED = "crossed"  # both arms folded across the chest (set for both arms together)


class LegPose(str, enum.Enum):
    STAND = "stand"
    WIDE = "wide"
    CROSSED = "crossed"


class Bottom(str, enum.Enum):
    TROUSERS = "trousers"
    SHORTS = "shorts"
    SKIRT = "skirt"


class HairStyle(str, enum.Enum):
    SHORT = "short"
    LONG = "long"
    BUN = "bun"
    BUZZ = "buzz"


class Background(str, enum.Enum):
    STUDIO = "studio"
    WALL = "wall"
    ROOM = "room"
    OUTDOOR = "outdoor"


@dataclass(frozen=True)
class GarmentSpec:
    """An upper garment, its cut, fabric and graphics (front and back differ)."""

    kind: GarmentKind
    colour: RGB
    pattern: Pattern
    pattern_colour: RGB
    pattern_scale: float  # period as a fraction of the torso width
    pattern_angle: float  # degrees
    neckline: Neckline
    front_graphic: Graphic
    back_graphic: Graphic
    graphic_colour: RGB
    text: str
    length: float  # hu from the shoulder line to the hem
    looseness: float  # extra half-width as a fraction of the body's
    sleeve_length: float  # fraction of the arm (0 for sleeveless, 1 to the wrist)
    seed: int  # fabric grain and print layout
    skirt: float = 0.0  # a dress's hem reach down the leg: 0 at the crotch, 1 at the ankle
    flare: float = 0.0  # how much wider a dress's hem is than its hips, in hu per hu of length

    @property
    def label_is_coat(self) -> bool:
        return self.kind is GarmentKind.JACKET

    @property
    def is_dress(self) -> bool:
        return self.kind is GarmentKind.DRESS

    @property
    def strapped(self) -> bool:
        """Cut with straps and deep armholes: a tank top or a sleeveless dress."""
        return self.kind is GarmentKind.TANK or (self.is_dress and self.sleeve_length <= 0)


@dataclass(frozen=True)
class BodySpec:
    """Body proportions (widths are half-widths in hu)."""

    height: float  # fraction of the canvas height from the sole to the top of the head
    head_units: float  # body height in head units
    shoulder: float
    chest: float
    waist: float
    hip: float
    limb: float  # thickness factor for arms and legs


@dataclass(frozen=True)
class PoseSpec:
    """A 2D pose. Angles are degrees; "a" is the arm/leg on the image's left, "b" on the image's right."""

    arm_a: ArmPose
    arm_b: ArmPose
    arm_a_angles: tuple[float, float]  # (upper arm out from vertical, elbow bend)
    arm_b_angles: tuple[float, float]
    legs: LegPose
    leg_spread: float  # degrees each thigh leans out
    turn: float  # -0.4..0.4, torso narrowing and shift for a three-quarter turn
    head_tilt: float  # degrees
    centre_x: float  # fraction of the canvas width
    feet_y: float  # fraction of the canvas height


@dataclass(frozen=True)
class LookSpec:
    """Skin, hair, face, what is worn below, and where the person stands."""

    skin: RGB
    hair: RGB
    hair_style: HairStyle
    hair_length: float  # hu below the chin, for long hair
    eyes: RGB
    beard: bool
    bottom: Bottom
    bottom_colour: RGB
    shoes: RGB
    background: Background
    background_colours: tuple[RGB, RGB]
    light: float  # -1..1: light from the image's left (negative) or right
    seed: int


@dataclass(frozen=True)
class PersonSpec:
    body: BodySpec
    look: LookSpec
    poses: tuple[PoseSpec, PoseSpec]  # one for the front view, one for the back view

    def pose(self, view: View) -> PoseSpec:
        return self.poses[View(view).index]


# ------------------------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, options: tuple | list):
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour: RGB, amount: float = 0.04) -> RGB:
    return tuple(float(np.clip(c + rng.normal(0, amount), 0, 1)) for c in colour)  # type: ignore[return-value]


def sample_garment(rng: np.random.Generator) -> GarmentSpec:
    kind = _pick(rng, TOP_KINDS)
    colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    pattern = Pattern(_pick(rng, ["solid", "solid", "stripes", "stripes", "checks", "dots", "print"]))
    pattern_colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    while np.abs(np.subtract(pattern_colour, colour)).sum() < 0.45:
        pattern_colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    neckline = {
        GarmentKind.SHIRT: Neckline.COLLAR, GarmentKind.JACKET: Neckline.COLLAR,
    }.get(kind, Neckline(_pick(rng, ["crew", "crew", "v"])))
    front = Graphic(_pick(rng, ["none", "text", "badge", "big_print"]))
    back = Graphic(_pick(rng, ["none", "none", "text", "number"]))
    sleeve = {
        GarmentKind.TEE: float(rng.uniform(0.28, 0.45)),
        GarmentKind.TANK: 0.0,
        GarmentKind.SHIRT: float(_pick(rng, [0.35, 0.95, 0.95])),
    }.get(kind, float(rng.uniform(0.9, 0.97)))
    return GarmentSpec(
        kind=kind, colour=colour, pattern=pattern, pattern_colour=pattern_colour,
        pattern_scale=float(rng.uniform(0.06, 0.16)), pattern_angle=float(_pick(rng, [0.0, 0.0, 90.0, 45.0])),
        neckline=neckline, front_graphic=front, back_graphic=back,
        graphic_colour=_jitter(rng, _pick(rng, FABRIC_COLOURS)), text=str(_pick(rng, LOGO_WORDS)),
        length=float(rng.uniform(2.5, 3.1)) + (0.25 if kind is GarmentKind.JACKET else 0.0),
        looseness=float(rng.uniform(0.04, 0.18)), sleeve_length=sleeve, seed=int(rng.integers(2**31)),
    )


def sample_dress(rng: np.random.Generator) -> GarmentSpec:
    """A plausible dress: sleeveless, short or long sleeves, from mid-thigh to mid-calf, straight to A-line."""
    colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    pattern = Pattern(_pick(rng, ["solid", "solid", "stripes", "checks", "dots", "print", "print"]))
    pattern_colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    while np.abs(np.subtract(pattern_colour, colour)).sum() < 0.45:
        pattern_colour = _jitter(rng, _pick(rng, FABRIC_COLOURS))
    sleeve = float(_pick(rng, [0.0, 0.0, float(rng.uniform(0.25, 0.4)), float(rng.uniform(0.9, 0.97))]))
    skirt = float(rng.uniform(0.15, 0.75))
    return GarmentSpec(
        kind=GarmentKind.DRESS, colour=colour, pattern=pattern, pattern_colour=pattern_colour,
        pattern_scale=float(rng.uniform(0.06, 0.14)), pattern_angle=float(_pick(rng, [0.0, 0.0, 90.0, 45.0])),
        neckline=Neckline(_pick(rng, ["crew", "crew", "v"])), front_graphic=Graphic(_pick(rng, ["none", "none",
                                                                                                  "badge"])),
        back_graphic=Graphic.NONE, graphic_colour=_jitter(rng, _pick(rng, FABRIC_COLOURS)),
        text=str(_pick(rng, LOGO_WORDS)), length=DRESS_HIP + skirt * LEG, looseness=float(rng.uniform(0.02, 0.1)),
        sleeve_length=sleeve, seed=int(rng.integers(2**31)), skirt=skirt,
        flare=float(_pick(rng, [rng.uniform(0.03, 0.08), rng.uniform(0.15, 0.3)])),
    )


def sample_pose(rng: np.random.Generator, allow_crossed: bool = True) -> PoseSpec:
    """A plausible standing pose. Crossed arms and legs are rare in the try-on set (they are problem photos)."""
    choices = [ArmPose.DOWN, ArmPose.DOWN, ArmPose.A_POSE, ArmPose.HAND_ON_HIP, ArmPose.ACROSS, ArmPose.POCKET,
               ArmPose.RAISED]
    if allow_crossed and rng.random() < 0.08:
        arm_a = arm_b = ArmPose.CROSSED
    else:
        arm_a, arm_b = _pick(rng, choices), _pick(rng, choices)
        if arm_a is ArmPose.RAISED and arm_b is ArmPose.RAISED:
            arm_b = ArmPose.DOWN

    def angles(pose: ArmPose) -> tuple[float, float]:
        if pose is ArmPose.DOWN:
            return float(rng.uniform(6, 20)), float(rng.uniform(0, 18))
        if pose is ArmPose.A_POSE:
            return float(rng.uniform(24, 42)), float(rng.uniform(-8, 8))
        if pose is ArmPose.RAISED:
            return float(rng.uniform(110, 150)), float(rng.uniform(-10, 40))
        return float(rng.uniform(0, 1)), float(rng.uniform(0, 1))  # solved by inverse kinematics; used as jitter

    legs = LegPose.CROSSED if (allow_crossed and rng.random() < 0.06) else _pick(rng, [LegPose.STAND,
                                                                                       LegPose.STAND, LegPose.WIDE])
    return PoseSpec(
        arm_a=arm_a, arm_b=arm_b, arm_a_angles=angles(arm_a), arm_b_angles=angles(arm_b), legs=legs,
        leg_spread=float(rng.uniform(1, 4) if legs is LegPose.STAND else rng.uniform(6, 11)),
        turn=float(rng.choice([0.0, 0.0, 1.0]) * rng.uniform(-0.35, 0.35)),
        head_tilt=float(rng.normal(0, 3)), centre_x=float(rng.uniform(0.44, 0.56)),
        feet_y=float(rng.uniform(0.94, 0.975)),
    )


def sample_person(rng: np.random.Generator, allow_crossed: bool = True) -> PersonSpec:
    build = float(rng.uniform(0.88, 1.25))
    masculine = rng.random() < 0.5
    shoulder = (1.08 if masculine else 0.95) * float(rng.uniform(0.94, 1.08))
    hip = (0.78 if masculine else 0.90) * float(rng.uniform(0.93, 1.1)) * (0.85 + 0.15 * build)
    body = BodySpec(
        height=float(rng.uniform(0.84, 0.9)), head_units=float(rng.uniform(7.3, 8.0)), shoulder=shoulder,
        chest=shoulder * 0.86 * (0.9 + 0.1 * build), waist=(0.70 if masculine else 0.62) * build,
        hip=hip, limb=build,
    )
    skin = _jitter(rng, _pick(rng, SKIN_TONES), 0.02)
    hair_style = _pick(rng, [HairStyle.SHORT, HairStyle.BUZZ] if masculine else
                       [HairStyle.LONG, HairStyle.LONG, HairStyle.BUN, HairStyle.SHORT])
    background = _pick(rng, list(Background))
    base = _jitter(rng, _pick(rng, [(0.92, 0.92, 0.9), (0.85, 0.87, 0.9), (0.80, 0.76, 0.70), (0.62, 0.70, 0.78),
                                    (0.75, 0.82, 0.74), (0.55, 0.55, 0.58), (0.90, 0.85, 0.80)]), 0.05)
    second = _jitter(rng, tuple(c * float(rng.uniform(0.55, 0.9)) for c in base), 0.04)  # type: ignore[arg-type]
    look = LookSpec(
        skin=skin, hair=_jitter(rng, _pick(rng, HAIR_COLOURS), 0.02), hair_style=hair_style,
        hair_length=float(rng.uniform(0.6, 2.2)), eyes=_pick(rng, EYE_COLOURS),
        beard=bool(masculine and rng.random() < 0.25),
        bottom=_pick(rng, [Bottom.TROUSERS, Bottom.TROUSERS, Bottom.SHORTS] if masculine else list(Bottom)),
        bottom_colour=_jitter(rng, _pick(rng, DENIM_COLOURS), 0.03), shoes=_pick(rng, SHOE_COLOURS),
        background=background, background_colours=(base, second), light=float(rng.uniform(-1, 1)),
        seed=int(rng.integers(2**31)),
    )
    return PersonSpec(body=body, look=look, poses=(sample_pose(rng, allow_crossed), sample_pose(rng, allow_crossed)))


def with_pose(person: PersonSpec, view: View, **changes) -> PersonSpec:
    """The same person with some pose fields changed for one view."""
    poses = list(person.poses)
    poses[View(view).index] = replace(poses[View(view).index], **changes)
    return replace(person, poses=tuple(poses))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SampleSpec:
    """One synthetic identity: a person, the garment they wear, and their index in the dataset."""

    index: int
    person: PersonSpec
    garment: GarmentSpec
    extras: dict = field(default_factory=dict, compare=False)


def sample_spec(seed: int, index: int, allow_crossed: bool = True) -> SampleSpec:
    """The identity ``index`` of a dataset made with ``seed``: independent of how many are made and in what order."""
    rng = np.random.default_rng([seed, index])
    return SampleSpec(index=index, person=sample_person(rng, allow_crossed), garment=sample_garment(rng))
