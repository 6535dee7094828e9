import numpy as np

from fitroom import labels
from fitroom.labels import (
    BODY25_TO_COCO18, CIHP_TO_13, MEDIAPIPE_TO_BODY25, PARSE13_TO_7, Body25, Cihp, Coco18, Mediapipe33, Parse7,
    Parse13,
)


def test_cihp_and_lip_differ_only_at_label_10():
    differing = [i for i, (a, b) in enumerate(zip(labels.CIHP_NAMES, labels.LIP_NAMES)) if a != b]
    assert differing == [labels.LIP_CIHP_DIFFERENT_LABEL]
    assert labels.CIHP_NAMES[10] == "torso-skin" and labels.LIP_NAMES[10] == "jumpsuits"
    assert len(labels.CIHP_NAMES) == labels.NUM_PARSE_LABELS == 20


def test_merges_follow_hrviton():
    # every CIHP label lands in one of the 13 classes; the neck becomes background
    assert CIHP_TO_13.shape == (20,) and set(CIHP_TO_13) <= set(range(13))
    assert CIHP_TO_13[Cihp.TORSO_SKIN] == Parse13.BACKGROUND
    assert {CIHP_TO_13[c] for c in (Cihp.UPPER_CLOTHES, Cihp.DRESS, Cihp.COAT)} == {Parse13.UPPER}
    assert {CIHP_TO_13[c] for c in (Cihp.GLOVE, Cihp.SCARF)} == {Parse13.NOISE}
    assert CIHP_TO_13[Cihp.SOCKS] == Parse13.SOCKS
    # 13 -> 7: legs, shoes, face and bottom are "paste"; arms stay separate
    assert {PARSE13_TO_7[c] for c in (Parse13.FACE, Parse13.BOTTOM, Parse13.LEFT_LEG, Parse13.RIGHT_SHOE)} == {
        Parse7.PASTE}
    assert PARSE13_TO_7[Parse13.LEFT_ARM] == Parse7.LEFT_ARM and PARSE13_TO_7[Parse13.HAIR] == Parse7.HAIR
    assert not CIHP_TO_13.flags.writeable


def test_keypoint_layouts():
    assert len(Body25) == 25 and len(Coco18) == 18 and len(Mediapipe33) == 33
    assert Body25.R_HIP == 9 and Body25.L_HIP == 12  # the indices HR-VITON uses
    coco = np.array(BODY25_TO_COCO18)
    assert coco[Coco18.R_HIP] == Body25.R_HIP and coco[Coco18.L_EAR] == Body25.L_EAR
    assert set(MEDIAPIPE_TO_BODY25) == set(Body25)
    assert MEDIAPIPE_TO_BODY25[Body25.NECK] == (Mediapipe33.L_SHOULDER, Mediapipe33.R_SHOULDER)
    # left stays left: every single-landmark mapping keeps the side in its name
    for joint, sources in MEDIAPIPE_TO_BODY25.items():
        if len(sources) == 1 and joint.name[:2] in ("L_", "R_"):
            assert sources[0].name[:2] == joint.name[:2], joint


def test_dense_colormap_is_distinct_and_black_background():
    assert labels.DENSE_COLORMAP.shape == (25, 3)
    assert (labels.DENSE_COLORMAP[0] == 0).all()
    assert len({tuple(c) for c in labels.DENSE_COLORMAP}) == 25
    # every body part has a DensePose index for each view
    assert set(labels.DENSE_PART_BY_VIEW) == set(labels.BodyPart)
