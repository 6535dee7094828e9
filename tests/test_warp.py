import cv2
import numpy as np
import pytest
from scipy import ndimage

from fitroom.data.synthetic import render_garment, render_person, sample_spec
from fitroom.engines import available_engines, create_engine
from fitroom import imaging
from fitroom.engines.compositing import nearest_smoothed
from fitroom.engines.warp import garment_landmarks, tps_warp
from fitroom.inputs import InputsError, TryOnInputs
from fitroom.labels import UPPER_GARMENT_LABELS, Body25, Cihp


def test_registry():
    assert "warp" in available_engines()
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine("nope")


def test_tps_moves_points_where_asked():
    image = np.zeros((64, 48, 1), np.float32)
    image[10, 12] = 1.0
    source = [np.array([12.0, 10.0]), np.array([2.0, 2.0]), np.array([45.0, 2.0]), np.array([2.0, 60.0]),
              np.array([45.0, 60.0])]
    target = [np.array([30.0, 40.0])] + source[1:]
    warped = tps_warp(image, source, target)
    y, x = np.unravel_index(np.argmax(warped[..., 0]), warped.shape[:2])
    assert abs(x - 30) <= 1 and abs(y - 40) <= 1



def test_tps_within_a_box_gives_the_whole_warps_values_there():
    rng = np.random.default_rng(0)
    image = rng.random((101, 77, 4)).astype(np.float32)
    source = [np.array(p, float) for p in ((10, 10), (60, 12), (30, 80), (50, 90), (5, 50))]
    target = [p + rng.normal(0, 4, 2) for p in source]
    whole = tps_warp(image, source, target)
    for y0, y1, x0, x1 in ((20, 60, 10, 50), (21, 61, 11, 52), (0, 101, 0, 77), (1, 100, 3, 70), (0, 9, 70, 77)):
        part = tps_warp(image, source, target, within=(y0, y1, x0, x1))
        np.testing.assert_array_equal(part[y0:y1, x0:x1], whole[y0:y1, x0:x1])
        outside = np.ones(part.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert not part[outside].any()


@pytest.mark.parametrize("sampling", [(1.0, 1.0), (8.0, 1.0)])
def test_nearest_smoothed_matches_the_whole_array_computation(sampling):
    rng = np.random.default_rng(1)
    values = rng.normal(0.5, 0.6, (90, 120, 3)).astype(np.float32)
    source = np.zeros((90, 120), bool)
    source[30:50, 40:70] = True
    targets = np.zeros_like(source)
    targets[52:60, 20:45] = targets[10:14, 100:118] = True
    _, (iy, ix) = ndimage.distance_transform_edt(~source, sampling=sampling, return_indices=True)
    reach = cv2.GaussianBlur(np.clip(values[iy, ix], 0, 1), (0, 0), 3.0)
    expected = np.where(targets[..., None], reach, values)
    np.testing.assert_array_equal(nearest_smoothed(values, source, targets, 3.0, sampling, clip=True), expected)
    assert nearest_smoothed(values, source, np.zeros_like(source), 3.0) is values


def test_composite_told_what_changed_converts_only_that():
    """With the photo and the box where the float result was changed, the composite gives the whole
    conversion's pixels (a photo's pixels convert back to themselves)."""
    from fitroom.engines.compositing import composite

    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)
    result = photo.astype(np.float32) / 255.0
    result[5:15, 10:30] = rng.random((10, 20, 3))
    warped = rng.random((60, 50, 3)).astype(np.float32)
    drawn = np.zeros((60, 50), bool)
    drawn[20:40, 15:35] = True
    front = np.zeros_like(drawn)
    front[25:30, 20:25] = True
    expected = composite(result, warped, drawn, front)
    np.testing.assert_array_equal(composite(result, warped, drawn, front, photo=photo, changed=(5, 15, 10, 30)),
                                  expected)
    assert (expected == photo).all(axis=2).mean() > 0.5


def test_photo_tint_counts_what_the_sorted_pixels_give():
    """The histogram's median and 95th percentile are numpy's on the whole photo, to the float32 bit, with
    OpenCV's histogram and, on a photo of more than 2^24 pixels (where OpenCV's float32 counts could round),
    numpy's."""
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    photos = [rng.integers(0, 256, (41, 37, 3), dtype=np.uint8),
              np.dstack([grey] * 3),
              np.dstack([grey, (grey * 0.9).astype(np.uint8), (grey * 0.7).astype(np.uint8)]),
              rng.integers(100, 140, (33, 41, 3), dtype=np.uint8),
              np.clip(np.dstack([grey] * 3).astype(int) + rng.integers(-4, 5, (60, 80, 3)), 0, 255).astype(np.uint8)]
    photos.append(np.tile(photos[2], (69, 52, 1)))  # 4140 x 4160
    assert photos[-1].shape[0] * photos[-1].shape[1] > 2 ** 24
    for photo in photos:
        ab = cv2.cvtColor(photo, cv2.COLOR_RGB2Lab)[..., 1:].reshape(-1, 2).astype(np.float32)
        tint = np.median(ab, axis=0)
        spread = float(np.percentile(np.hypot(*(ab - tint).T), 95))
        assert imaging.photo_tint(photo, max_chroma=spread) is not None
        np.testing.assert_array_equal(imaging.photo_tint(photo, max_chroma=spread), tint)
        if spread > 0:
            below = float(np.nextafter(np.float32(spread), np.float32(0)))
            assert imaging.photo_tint(photo, max_chroma=below) is None


def test_garment_landmarks_on_a_flat_tee():
    spec = sample_spec(0, 1).garment  # a tee
    _, mask = render_garment(spec, "front", (512, 384))
    marks = garment_landmarks(mask)
    assert marks.shoulder["a"][0] < marks.neck["a"][0] < marks.neck["b"][0] < marks.shoulder["b"][0]
    assert marks.shoulder["a"][1] < marks.armpit["a"][1] < marks.hem["a"][1]
    assert set(marks.cuff) == {"a", "b"} and marks.cuff["a"][0] < marks.shoulder["a"][0]


@pytest.mark.parametrize("view", ["front", "back"])
def test_warp_engine_changes_only_the_garment_region(view):
    person_spec = sample_spec(9, 0, allow_crossed=False)
    other = sample_spec(9, 1).garment
    render = render_person(person_spec.person, person_spec.garment, view, (256, 192))
    garment, mask = render_garment(other, view, (256, 192))
    truth = render_person(person_spec.person, other, view, (256, 192))
    inputs = TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints,
                         parse=render.parse, view=view)
    result = create_engine("warp")(inputs)
    assert result.image.shape == render.image.shape
    # outside the old garment (and neck) and the newly drawn garment, nothing changed: face, legs, background
    import cv2

    edited = np.isin(render.parse, [*UPPER_GARMENT_LABELS, Cihp.TORSO_SKIN]) | result.warped_mask
    edited = cv2.dilate(edited.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    far = ~edited
    assert far.mean() > 0.5
    np.testing.assert_array_equal(result.image[far], render.image[far])
    face = render.parse == Cihp.FACE
    np.testing.assert_array_equal(result.image[face], render.image[face])
    # on the garment, the result is closer to the truth than the untouched photo is
    region = np.isin(truth.parse, UPPER_GARMENT_LABELS)
    error_result = np.abs(result.image[region].astype(int) - truth.image[region].astype(int)).mean()
    error_input = np.abs(render.image[region].astype(int) - truth.image[region].astype(int)).mean()
    assert error_result < error_input
    assert result.warped_mask.any() and result.parse.shape == render.parse.shape


def _piecewise_affine_whole(source, source_points, target_points, triangles, out_shape):
    """The plain form: every triangle rasterised on the whole frame, the whole source sampled."""
    index = np.full(out_shape, -1, np.int32)
    inverse = np.zeros((len(triangles), 2, 3))
    for i, triangle in enumerate(triangles):
        dst, src = target_points[triangle].astype(np.float32), source_points[triangle].astype(np.float32)
        u, v = dst[1] - dst[0], dst[2] - dst[0]
        if abs(float(u[0] * v[1] - u[1] * v[0])) >= 1e-3:
            inverse[i] = cv2.getAffineTransform(dst, src)
            cv2.fillConvexPoly(index, np.round(dst * 4).astype(np.int32), i, lineType=cv2.LINE_8, shift=2)
    ys, xs = np.mgrid[:out_shape[0], :out_shape[1]].astype(np.float64)
    affine = inverse[np.clip(index, 0, None)]
    map_x = affine[..., 0, 0] * xs + affine[..., 0, 1] * ys + affine[..., 0, 2]
    map_y = affine[..., 1, 0] * xs + affine[..., 1, 1] * ys + affine[..., 1, 2]
    out = cv2.remap(source, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out[index < 0] = 0
    return out, index >= 0


def test_piecewise_affine_on_boxes_is_the_whole_frame_computation():
    """The warp on the triangles' box, reading only the source's box the covered pixels sample (with another
    alpha made for that box only), gives the plain whole-frame values bit for bit: meshes of random shapes and
    scales, thin triangles included, partly outside the frame."""
    from fitroom import geometry

    rng = np.random.default_rng(5)
    triangles = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]])
    for _ in range(200):
        source = rng.random((120, 90, 4)).astype(np.float32)
        alpha = rng.random((120, 90)) > 0.5
        points = rng.random((6, 2)) * [90, 120] * rng.uniform(0.5, 1.3)
        targets = points * rng.uniform(0.3, 2.0) + rng.normal(0, 8, (6, 2)) + rng.normal(0, 25, 2)
        expected, covered = _piecewise_affine_whole(source, points, targets, triangles, (120, 90))
        warped, warped_covered = geometry.piecewise_affine(source, points, targets, triangles, (120, 90))
        assert (warped == expected).all() and (warped_covered == covered).all()
        other = source.copy()
        other[..., 3] = alpha
        expected, _ = _piecewise_affine_whole(other, points, targets, triangles, (120, 90))
        found = geometry.piecewise_affine_patch(source, points, targets, triangles, (120, 90),
                                                alpha=lambda box: alpha[box])
        whole = np.zeros_like(expected)
        if found is not None:
            patch, _, (y0, y1, x0, x1) = found
            whole[y0:y1, x0:x1] = patch
        assert (whole == expected).all()


def test_a_garment_prepared_beforehand_gives_the_same_try_on(monkeypatch):
    """prepare_garment (made on another thread while the person's photo is analysed) keeps the garment's canvas
    for the try-on of those very arrays: the same picture as without it, the canvas made once, read-only; other
    arrays or another size make their own; a garment the landmarks cannot read is left for the try-on to
    refuse."""
    import fitroom.engines.warp as warp

    spec = sample_spec(9, 0, allow_crossed=False)
    render = render_person(spec.person, spec.garment, "front", (256, 192))
    garment, mask = render_garment(sample_spec(9, 1).garment, "front", (256, 192))
    inputs = TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints,
                         parse=render.parse)
    expected = create_engine("warp")(inputs).image
    made, real = [], warp.garment_canvas
    monkeypatch.setattr(warp, "garment_canvas", lambda *args, **kwargs: made.append(args[2]) or real(*args, **kwargs))
    engine = create_engine("warp")
    engine.prepare_garment(garment, mask, (256, 192))
    assert made == [(256, 192)]
    canvas = engine._prepared(garment, mask, (256, 192))
    assert not canvas.source.flags.writeable and not canvas.parts.flags.writeable
    for _ in range(2):
        np.testing.assert_array_equal(engine(inputs).image, expected)
    assert len(made) == 1  # both try-ons used the prepared canvas
    np.testing.assert_array_equal(engine(inputs.replace(garment_mask=mask.copy())).image, expected)
    assert len(made) == 2  # another array: its own canvas
    engine.prepare_garment(garment, np.zeros_like(mask), (256, 192))  # unreadable: nothing kept, no error
    with pytest.raises(ValueError, match="empty"):
        engine(inputs.replace(garment_mask=np.zeros_like(mask)))
    for size in range(warp.WarpEngine.KEPT_CANVASES + 1):
        engine.prepare_garment(garment, mask, (100 + size, 80))
    assert engine._prepared(garment, mask, (256, 192)) is None  # the oldest left


def test_warp_engine_refuses_what_it_cannot_do():
    spec = sample_spec(9, 0)
    render = render_person(spec.person, spec.garment, "front", (128, 96))
    garment, mask = render_garment(spec.garment, "front", (128, 96))
    engine = create_engine("warp")
    with pytest.raises(InputsError, match="needs parse"):
        engine(TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints))
    with pytest.raises(InputsError, match="dress's photo cannot be read: the garment mask is empty"):
        engine(TryOnInputs(person=render.image, garment=garment, garment_mask=np.zeros_like(mask),
                           keypoints=render.keypoints, parse=render.parse, category="dress"))


def test_a_dress_is_cut_at_its_waist_and_worn_from_the_shoulders_down_the_legs():
    """Rendered dresses (sleeveless, short and long sleeves): the product is cut near the waist the renderer drew
    (hanging sleeves stay with the bodice); on people in a top and trousers or in another dress, front and back,
    the try-on's dress reaches from the shoulders to within a tenth of the body of the truth's hem, the head
    stays as it was and the old garments are gone; the result's parse says dress."""
    from fitroom.data.synthetic.garment import WAIST
    from fitroom.data.synthetic.writer import dress_spec
    from fitroom.engines.warp_dress import dress_parts

    engine = create_engine("warp")
    size = (256, 192)
    sleeves = set()
    for index in range(4):
        spec = sample_spec(11, index)
        dress = dress_spec(11, index + 100)
        sleeves.add(dress.sleeve_length > 0)
        wear = dress_spec(11, index) if index % 2 else spec.garment
        product, mask = render_garment(dress, "front", (512, 384))
        bodice, skirt, waist = dress_parts(mask)
        ys = np.nonzero(mask.any(1))[0]
        expected = ys.min() + WAIST / dress.length * (ys.max() - ys.min())
        assert abs(waist - expected) < 0.08 * (ys.max() - ys.min()), (index, waist, expected)
        assert not (bodice & skirt).any() and ((bodice | skirt) == mask).all()
        assert np.nonzero(bodice.any(1))[0].max() > waist or dress.sleeve_length < 0.5  # long sleeves hang low
        for view in ("front", "back"):
            render = render_person(spec.person, wear, view, size)
            truth = render_person(spec.person, dress, view, size)
            product, mask = render_garment(dress, view, size)
            result = engine(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                        keypoints=render.keypoints, parse=render.parse, view=view,
                                        category="dress"))
            worn = result.parse == Cihp.DRESS
            true = truth.parse == Cihp.DRESS
            centre = int(render.keypoints[Body25.NECK, 0])  # down the body's middle (not along a raised arm)
            rows, true_rows = np.nonzero(worn[:, centre])[0], np.nonzero(true[:, centre])[0]
            body = np.nonzero((truth.parse > 0).any(1))[0]
            assert abs(rows.max() - true_rows.max()) < 0.1 * (body.max() - body.min()), (index, view)
            # from the shoulders (an old higher neckline is filled with the dress's fabric, not skin)
            assert rows.min() < true_rows.min() + 0.05 * (body.max() - body.min()), (index, view)
            assert (worn & true).sum() > 0.7 * true.sum(), (index, view)
            head = np.isin(render.parse, (Cihp.FACE, Cihp.HAIR))
            assert (result.image[head] == render.image[head]).all()
            assert not np.isin(result.parse, (Cihp.UPPER_CLOTHES, Cihp.PANTS, Cihp.SKIRT)).any(), (index, view)
    assert sleeves == {True, False}


def test_the_warp_engine_dresses_lower_garments_closer_to_the_truth_than_the_unchanged_photo():
    """Rendered people in one lower garment tried in another (trousers, shorts, skirts), front and back, against
    the rendered truth: SSIM above the unchanged photo's on average; the head and the top untouched; the result's
    parse says trousers or skirt by the product's cut."""
    from skimage.metrics import structural_similarity

    from fitroom.data.synthetic.lower import render_lower_product
    from fitroom.data.synthetic.writer import lower_spec
    from fitroom.engines.warp_lower import lower_landmarks

    engine = create_engine("warp")
    size = (512, 384)  # the benchmark's size (at 256x192 the two are level: 0.902 and 0.903)
    ours, unchanged = [], []
    for index in range(8):
        spec = sample_spec(11, index)
        mine, other = lower_spec(11, index), lower_spec(11, index + 100)
        for view in ("front", "back"):
            render = render_person(spec.person, spec.garment, view, size, lower=mine)
            truth = render_person(spec.person, spec.garment, view, size, lower=other)
            product, mask = render_lower_product(other, view, size)
            result = engine(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                        keypoints=render.keypoints, parse=render.parse, view=view, category="lower"))
            ours.append(structural_similarity(result.image, truth.image, channel_axis=2))
            unchanged.append(structural_similarity(render.image, truth.image, channel_axis=2))
            for label in (Cihp.FACE, Cihp.HAIR, Cihp.UPPER_CLOTHES):
                same = render.parse == label
                assert (result.image[same] == render.image[same]).all(), (index, view, label)
            legs = lower_landmarks(mask).crotch is not None
            assert legs == other.kind.legs
            assert (result.parse == (Cihp.PANTS if legs else Cihp.SKIRT)).sum() > 0.5 * (truth.parse == (
                Cihp.PANTS if legs else Cihp.SKIRT)).sum()
    assert np.mean(ours) > np.mean(unchanged), (np.mean(ours), np.mean(unchanged))


def test_a_lower_garment_needs_the_legs_in_the_photo():
    from fitroom.data.synthetic.lower import render_lower_product
    from fitroom.data.synthetic.writer import lower_spec

    spec = sample_spec(11, 0)
    render = render_person(spec.person, spec.garment, "front", (256, 192))
    product, mask = render_lower_product(lower_spec(11, 0), "front", (256, 192))
    keypoints = render.keypoints.copy()
    keypoints[[Body25.R_ANKLE, Body25.L_ANKLE]] = 0
    with pytest.raises(InputsError, match="knees and ankles"):
        create_engine("warp")(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                          keypoints=keypoints, parse=render.parse, category="lower"))


def test_a_dress_needs_the_legs_and_says_so():
    from fitroom.data.synthetic.writer import dress_spec

    spec = sample_spec(11, 0)
    render = render_person(spec.person, spec.garment, "front", (256, 192))
    product, mask = render_garment(dress_spec(11, 0), "front", (256, 192))
    keypoints = render.keypoints.copy()
    keypoints[Body25.L_ANKLE] = 0
    with pytest.raises(InputsError, match="a dress needs both legs' knees and ankles in the photo"):
        create_engine("warp")(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                          keypoints=keypoints, parse=render.parse, category="dress"))
    keypoints[Body25.R_HIP] = 0
    with pytest.raises(InputsError, match="a dress needs the hips and the neck in the photo"):
        create_engine("warp")(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                          keypoints=keypoints, parse=render.parse, category="dress"))


def test_a_tank_top_bares_the_shoulders_a_sleeved_top_covered():
    """People in a tee, a shirt or a jacket trying a tank top: of the skin the rendered truth shows where their
    top was, the try-on's parse says skin on over 30 % on average (14 % when the new garment's colour was spread
    over whatever the old top covered; measured 37 %)."""
    from fitroom.data.synthetic.spec import GarmentKind, sample_garment

    engine = create_engine("warp")
    size = (256, 192)
    rng = np.random.default_rng(21)
    tanks = []
    while len(tanks) < 4:
        garment = sample_garment(rng)
        if garment.kind is GarmentKind.TANK:
            tanks.append(garment)
    skin = (Cihp.TORSO_SKIN, Cihp.LEFT_ARM, Cihp.RIGHT_ARM)
    shares = []
    for index, tank in enumerate(tanks):
        spec = sample_spec(9, index)
        if spec.garment.kind is GarmentKind.TANK:
            continue
        for view in ("front", "back"):
            render = render_person(spec.person, spec.garment, view, size)
            truth = render_person(spec.person, tank, view, size)
            product, mask = render_garment(tank, view, size)
            result = engine(TryOnInputs(person=render.image, garment=product, garment_mask=mask,
                                        keypoints=render.keypoints, parse=render.parse, view=view))
            bared = np.isin(truth.parse, skin) & np.isin(render.parse, (Cihp.UPPER_CLOTHES, Cihp.COAT))
            shares.append(np.isin(result.parse, skin)[bared].mean())
    assert len(shares) >= 4 and np.mean(shares) > 0.3, shares
