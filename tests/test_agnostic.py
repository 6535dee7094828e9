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


def _renders_by_bottom():
    from fitroom.data.synthetic.spec import Bottom

    found = {}
    for index in range(80):
        spec = sample_spec(3, index)
        found.setdefault(spec.person.look.bottom, spec)
        if len(found) == len(Bottom):
            break
    return found


@pytest.mark.parametrize("size", [(256, 192), (512, 384)])
def test_lower_and_dress_agnostic_cover_what_the_garment_replaces_and_keep_the_rest(size):
    """On rendered people in trousers, shorts and a skirt, front and back: a lower garment's grey covers the worn
    lower garment and keeps the top, the head, the hands and the shoes; a dress's covers both garments."""
    from fitroom.labels import LOWER_GARMENT_LABELS, GarmentCategory

    for bottom, spec in _renders_by_bottom().items():
        for view in ("front", "back"):
            render = render_person(spec.person, spec.garment, view, size)
            parse = render.parse
            lower = agnostic_mask(parse, render.keypoints, GarmentCategory.LOWER)
            dress = agnostic_mask(parse, render.keypoints, GarmentCategory.DRESS)
            worn_lower = np.isin(parse, LOWER_GARMENT_LABELS)
            worn_upper = np.isin(parse, UPPER_GARMENT_LABELS)
            assert lower[worn_lower].mean() > 0.97, (bottom, view)
            assert dress[worn_lower].mean() > 0.97 and dress[worn_upper].mean() > 0.9, (bottom, view)
            for label in (Cihp.FACE, Cihp.HAIR, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE, Cihp.UPPER_CLOTHES):
                assert not lower[parse == label].any(), (bottom, view, label)
            for label in (Cihp.FACE, Cihp.LEFT_SHOE, Cihp.RIGHT_SHOE):  # hair at the neck goes, as for upper
                assert not dress[parse == label].any(), (bottom, view, label)
            # nothing above the shoulders for either, nothing above the waist for the lower garment
            neck_y = render.keypoints[Body25.NECK, 1]
            hip_y = render.keypoints[[Body25.R_HIP, Body25.L_HIP], 1].mean()
            assert not lower[: int(neck_y + 0.5 * (hip_y - neck_y))].any()
            # the agnostic parse drops the lower garment and keeps the top for trousers; drops both for a dress
            labels = parse_agnostic(parse, render.keypoints, GarmentCategory.LOWER)
            assert not np.isin(labels, LOWER_GARMENT_LABELS).any()
            np.testing.assert_array_equal(labels == Cihp.UPPER_CLOTHES, parse == Cihp.UPPER_CLOTHES)
            labels = parse_agnostic(parse, render.keypoints, GarmentCategory.DRESS)
            assert not np.isin(labels, [*LOWER_GARMENT_LABELS, *UPPER_GARMENT_LABELS]).any()
            np.testing.assert_array_equal(labels == Cihp.FACE, parse == Cihp.FACE)


def test_the_lower_agnostic_is_resolution_independent():
    from fitroom.labels import GarmentCategory

    spec = next(iter(_renders_by_bottom().values()))
    fractions = [agnostic_mask(r.parse, r.keypoints, GarmentCategory.LOWER).mean()
                 for r in (render_person(spec.person, spec.garment, "front", size) for size in ((256, 192),
                                                                                               (512, 384)))]
    assert fractions[0] == pytest.approx(fractions[1], rel=0.08)


def test_a_body_mask_is_the_union_of_its_parts_even_where_they_overlap():
    """A thigh's and a shin's capsules overlap at the knee: the leg's mask covers the knee (polygons filled in one
    call by parity used to leave a hole there)."""
    from fitroom import geometry
    from fitroom.labels import Body25, BodyPart
    from fitroom.preprocess.body import BodyGeometry

    square = np.array([[10, 10], [50, 10], [50, 50], [10, 50]], float)
    assert geometry.polygon_mask((80, 80), square, square + 20)[35, 35]
    keypoints = np.zeros((25, 3))
    for joint, (x, y) in {Body25.R_SHOULDER: (80, 60), Body25.L_SHOULDER: (120, 60), Body25.NECK: (100, 60),
                          Body25.R_HIP: (90, 130), Body25.R_KNEE: (92, 180), Body25.R_ANKLE: (90, 230)}.items():
        keypoints[joint] = (x, y, 1.0)
    leg = BodyGeometry.from_keypoints(keypoints).mask((260, 200), BodyPart.RIGHT_UPPER_LEG, BodyPart.RIGHT_LOWER_LEG)
    assert leg[175:186, 88:97].all()
