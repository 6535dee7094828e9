import numpy as np
import pytest

from fitroom.data.synthetic import render_person, sample_spec
from fitroom.labels import ARM_LABELS, UPPER_GARMENT_LABELS, Body25, Cihp
from fitroom.preprocess.agnostic import AGNOSTIC_GREY, agnostic_mask, agnostic_person, parse_agnostic


@pytest.fixture(scope="module")
def render():
    spec = sample_spec(11, 0)
    return render_person(spec.person, spec.garment, "front", (256, 192))


def test_parse_agnostic_removes_garment_neck_and_arms_near_the_skeleton(render):
    out = parse_agnostic(render.parse, render.keypoints)
    assert not np.isin(out, [*UPPER_GARMENT_LABELS, Cihp.TORSO_SKIN]).any()
    # everything that changed became background, and head and legs are untouched
    changed = out != render.parse
    assert (out[changed] == Cihp.BACKGROUND).all()
    for label in (Cihp.FACE, Cihp.HAIR, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE):
        np.testing.assert_array_equal(out == label, render.parse == label)
    arms_before = np.isin(render.parse, ARM_LABELS).sum()
    assert np.isin(out, ARM_LABELS).sum() < arms_before


def test_parse_agnostic_skips_undetected_joints(render):
    keypoints = render.keypoints.copy()
    keypoints[[Body25.L_ELBOW, Body25.L_WRIST]] = 0
    out = parse_agnostic(render.parse, keypoints)
    full = parse_agnostic(render.parse, render.keypoints)
    # less of the left arm can be removed without its elbow and wrist
    assert (out == Cihp.LEFT_ARM).sum() >= (full == Cihp.LEFT_ARM).sum()


def test_agnostic_person_greys_the_torso_and_keeps_the_head(render):
    out = agnostic_person(render.image, render.parse, render.keypoints)
    garment = np.isin(render.parse, UPPER_GARMENT_LABELS)
    grey = (out == AGNOSTIC_GREY).all(-1)
    assert grey[garment].mean() > 0.8  # most of the garment is hidden
    face = render.parse == Cihp.FACE
    np.testing.assert_array_equal(out[face], render.image[face])
    legs = np.isin(render.parse, [Cihp.PANTS, Cihp.SKIRT, Cihp.LEFT_LEG, Cihp.RIGHT_LEG])
    np.testing.assert_array_equal(out[legs], render.image[legs])


def test_agnostic_is_resolution_independent():
    spec = sample_spec(11, 1)
    small = render_person(spec.person, spec.garment, "front", (256, 192))
    large = render_person(spec.person, spec.garment, "front", (512, 384))
    fraction_small = agnostic_mask(small.parse, small.keypoints).mean()
    fraction_large = agnostic_mask(large.parse, large.keypoints).mean()
    assert fraction_small == pytest.approx(fraction_large, rel=0.08)
    parse_small = (parse_agnostic(small.parse, small.keypoints) == 0).mean()
    parse_large = (parse_agnostic(large.parse, large.keypoints) == 0).mean()
    assert parse_small == pytest.approx(parse_large, rel=0.03)


def test_agnostic_needs_shoulders(render):
    keypoints = render.keypoints.copy()
    keypoints[Body25.R_SHOULDER] = 0
    with pytest.raises(ValueError, match="shoulders"):
        agnostic_person(render.image, render.parse, keypoints)
