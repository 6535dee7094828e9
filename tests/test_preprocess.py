import numpy as np
import pytest

from fitroom.data.synthetic import render_garment, render_person, sample_spec
from fitroom.labels import UPPER_GARMENT_LABELS, Body25, Cihp, GarmentCategory, Mediapipe33, View
from fitroom.preprocess.dense import FileDenseMapper, create_dense_mapper, parts_to_render, render_to_parts
from fitroom.preprocess.errors import MissingBodyPartError, MultiplePeopleError, NoPersonError
from fitroom.preprocess.garment import GarmentError, garment_mask, guess_category
from fitroom.preprocess.parsing import create_parser
from fitroom.preprocess.pose import (count_people, fill_holes, mediapipe_to_body25, person_mask,
                                     unexplained_share)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def renders():
    spec = sample_spec(4, 3, allow_crossed=False)
    return {view: render_person(spec.person, spec.garment, view, (512, 384)) for view in ("front", "back")}


def test_mediapipe_to_body25_derives_neck_and_drops_unseen_joints():
    landmarks = np.zeros((33, 3), np.float32)
    landmarks[:, 2] = 0.9
    landmarks[Mediapipe33.L_SHOULDER, :2] = (200, 100)
    landmarks[Mediapipe33.R_SHOULDER, :2] = (100, 110)
    landmarks[Mediapipe33.L_KNEE, 2] = 0.1
    body = mediapipe_to_body25(landmarks)
    np.testing.assert_allclose(body[Body25.NECK, :2], (150, 105))
    np.testing.assert_allclose(body[Body25.L_SHOULDER, :2], (200, 100))
    assert (body[Body25.L_KNEE] == 0).all()


def test_pose_and_mask_on_synthetic_people(preprocessor, renders):
    for view, render in renders.items():
        analysis = preprocessor.analyse_person(render.image, view)
        for joint in (Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP):
            error = np.hypot(*(analysis.keypoints[joint, :2] - render.keypoints[joint, :2]))
            assert error < 25, (view, joint.name, error)  # 25 px at 512 high; left and right not swapped
        assert _iou(analysis.mask, render.person_mask) > 0.9
        assert analysis.people == 1
        assert analysis.parse.shape == render.parse.shape and analysis.dense.shape == (512, 384, 3)


def test_people_are_counted(preprocessor, astronaut):
    assert preprocessor.analyse_person(astronaut).people == 1
    with pytest.raises(MultiplePeopleError, match="2 people"):
        preprocessor.analyse_person(np.concatenate([astronaut, astronaut], axis=1))
    with pytest.raises(NoPersonError, match="no person"):
        preprocessor.analyse_person(np.full((300, 200, 3), 128, np.uint8))
    faces = np.array([[0, 0, 10, 30, 0.9]] * 3, np.float32)
    assert count_people(faces, np.zeros((100, 100), np.float32)) == 3


def test_people_count_sees_what_the_main_person_does_not_explain():
    main = np.zeros((100, 100), np.float32)
    main[20:100, 20:50] = 1.0
    everyone = main.copy()
    no_faces = np.zeros((0, 5), np.float32)
    assert count_people(no_faces, everyone, main) == 1
    # someone touching the shopper, without a face (turned away): one region for both, half of it unexplained
    touching = everyone.copy()
    touching[30:100, 50:80] = 1.0
    assert count_people(no_faces, touching) == 1  # one region, no face: nothing certain to count
    assert count_people(no_faces, touching, main) == 1
    # 70 rows x 28 columns (30 less the 2-pixel margin around the shopper) over the shopper's 80 x 30
    assert unexplained_share(touching, main) == pytest.approx(70 * 28 / (80 * 30))
    assert unexplained_share(everyone, main) == 0.0
    # someone apart from the shopper is a region of their own
    apart = everyone.copy()
    apart[30:100, 75:95] = 1.0
    assert count_people(no_faces, apart, main) == 2
    # a face off the main person counts; the shopper's own face does not
    own_face = np.array([[25, 20, 45, 40, 0.9]], np.float32)
    assert count_people(own_face, everyone, main) == 1
    other_face = np.array([[25, 20, 45, 40, 0.9], [80, 5, 95, 20, 0.9]], np.float32)
    assert count_people(other_face, everyone, main) == 2


def test_builtin_parser_on_ground_truth_pose(renders):
    """Given the true pose and silhouette, the parser's garment, pants and arms overlap the truth."""
    parser = create_parser("builtin")
    for view, render in renders.items():
        parse = parser(render.image, render.keypoints, render.person_mask, view)
        assert set(np.unique(parse)) <= set(range(20))
        garment = np.isin(render.parse, UPPER_GARMENT_LABELS)
        assert _iou(np.isin(parse, UPPER_GARMENT_LABELS), garment) > 0.8, view
        assert _iou(np.isin(parse, [Cihp.PANTS, Cihp.SKIRT]), np.isin(render.parse, [Cihp.PANTS, Cihp.SKIRT])) > 0.7
        # the person's left arm is labelled left in both views
        for label in (Cihp.LEFT_ARM, Cihp.RIGHT_ARM):
            if (render.parse == label).sum() > 200:
                assert _iou(parse == label, render.parse == label) > 0.3, (view, label)
    with pytest.raises(ValueError, match="unknown parser"):
        create_parser("nope")


def test_builtin_parse_and_person_mask_do_not_depend_on_where_the_person_stands(renders):
    """Both work on the box around the person: on the photo moved inside a wider canvas (blank margins of
    different widths) they give the same pixels, moved, but for the rounding of shapes computed from moved
    keypoints (2 pixels of 60 000 here, as before the box); a forgotten offset anywhere in the box arithmetic (a
    row's height, a shape's position, the skirt test's band) would move thousands."""
    import cv2

    parser = create_parser("builtin")
    for view, render in renders.items():
        for top, left in ((0, 0), (37, 120), (150, 3)):
            canvas = np.full((render.image.shape[0] + 200, render.image.shape[1] + 240, 3), 255, np.uint8)
            box = (slice(top, top + render.image.shape[0]), slice(left, left + render.image.shape[1]))
            canvas[box] = render.image
            silhouette = np.zeros(canvas.shape[:2], bool)
            silhouette[box] = render.person_mask
            keypoints = render.keypoints.copy()
            keypoints[keypoints[:, 2] > 0, :2] += (left, top)
            parse = parser(canvas, keypoints, silhouette, view)
            if (top, left) == (0, 0):
                first = parse[box]
                assert not parse[:, render.image.shape[1]:].any()
            assert (parse[box] != first).sum() <= 10, (view, top, left)
            assert not np.delete(parse, np.r_[box[0]], axis=0).any()  # nothing outside the person's place
    # the mask's guided filter on its box: the same pixels as the filter over the whole photo
    render = renders["front"]
    probability = cv2.GaussianBlur(render.person_mask.astype(np.float32), (0, 0), 4)
    radius = max(int(round(min(probability.shape) / 100)), 2)
    whole = cv2.ximgproc.guidedFilter(render.image.astype(np.float32) / 255, probability, radius, 1e-3) > 0.5
    _, components = cv2.connectedComponents(whole.astype(np.uint8), connectivity=8)
    neck = render.keypoints[Body25.NECK, :2].astype(int)
    expected = fill_holes(components == components[neck[1], neck[0]])
    assert (person_mask(render.image, probability, render.keypoints) == expected).all()


def test_parser_needs_shoulders(renders):
    keypoints = renders["front"].keypoints.copy()
    keypoints[Body25.L_SHOULDER] = 0
    with pytest.raises(MissingBodyPartError, match="shoulders"):
        create_parser()(renders["front"].image, keypoints, renders["front"].person_mask)


def test_dense_maps(renders, tmp_path):
    render = renders["front"]
    mapper = create_dense_mapper("builtin")
    front = mapper(render.image, render.keypoints, render.person_mask, View.FRONT)
    back = mapper(render.image, render.keypoints, render.person_mask, View.BACK)
    parts = render_to_parts(front)
    assert (parts[~render.person_mask] == 0).all() and (parts[render.person_mask] > 0).mean() > 0.99
    assert (front != back).any()  # torso and limbs use the other surface from behind
    np.testing.assert_array_equal(render_to_parts(parts_to_render(render.dense)), render.dense)
    from fitroom import imaging

    imaging.save_image(tmp_path / "photo.png", front)
    reader = FileDenseMapper(tmp_path)
    np.testing.assert_array_equal(reader(render.image, render.keypoints, render.person_mask, name="photo.jpg"), front)
    with pytest.raises(ValueError, match="no dense map"):
        reader(render.image, render.keypoints, render.person_mask, name="other.jpg")


def test_garment_mask_and_category():
    for index in range(3):
        garment = sample_spec(2, index).garment
        image, truth = render_garment(garment, "front", (512, 384))
        mask = garment_mask(image)
        assert _iou(mask, truth) > 0.97
        assert guess_category(mask) is GarmentCategory.UPPER
    trousers = np.zeros((400, 300), bool)
    trousers[50:120, 60:240] = True
    trousers[120:380, 60:140] = True
    trousers[120:380, 160:240] = True
    assert guess_category(trousers) is GarmentCategory.LOWER
    dress = np.zeros((400, 300), bool)
    for y in range(40, 390):
        half = 30 + (y - 40) * 0.2
        dress[y, int(150 - half):int(150 + half)] = True
    assert guess_category(dress) is GarmentCategory.DRESS
    with pytest.raises(GarmentError, match="no garment"):
        garment_mask(np.full((100, 80, 3), 250, np.uint8))


def test_garment_on_a_busy_background_uses_grabcut():
    garment = sample_spec(2, 0).garment
    image, truth = render_garment(garment, "front", (256, 192))
    # a scene as background: stripes of colour and a gradient, nothing like a plain product-photo backdrop
    ys, xs = np.mgrid[0:256, 0:192]
    busy = np.stack([(xs * 3) % 256, (ys * 2) % 200 + 40, 128 + 100 * np.sin(xs / 9.0)], axis=-1).astype(np.uint8)
    composite = np.where(truth[..., None], image, busy)
    mask = garment_mask(composite)
    # rougher than on a plain backdrop (IoU 0.73 here), but the garment is found almost whole
    assert _iou(mask, truth) > 0.65 and (mask & truth).sum() / truth.sum() > 0.9


def test_person_mask_keeps_the_component_under_the_skeleton():
    probability = np.zeros((100, 100), np.float32)
    probability[10:90, 10:40] = 1
    probability[10:90, 60:95] = 1  # a bigger region without keypoints
    keypoints = np.zeros((25, 3), np.float32)
    keypoints[1] = (25, 50, 1)
    mask = person_mask(np.zeros((100, 100, 3), np.uint8), probability, keypoints)
    assert mask[50, 25] and not mask[50, 80]


def test_the_category_of_rendered_products_is_guessed_from_the_mask():
    """Every lower garment the renderer draws (trousers, shorts, three skirts) reads as lower, every top as upper
    (measured on 240 lower and 600 upper products while writing the skirt rule: no error)."""
    from fitroom.data.synthetic import sample_spec
    from fitroom.data.synthetic.lower import render_lower_product
    from fitroom.data.synthetic.render import render_garment
    from fitroom.data.synthetic.writer import lower_spec

    for index in range(20):
        for view in ("front", "back"):
            _, mask = render_lower_product(lower_spec(1, index), view, (256, 192))
            assert guess_category(mask) is GarmentCategory.LOWER, (lower_spec(1, index).kind, view)
            _, mask = render_garment(sample_spec(1, index).garment, view, (256, 192))
            assert guess_category(mask) is GarmentCategory.UPPER, (sample_spec(1, index).garment.kind, view)


def test_a_check_then_its_findings_make_the_same_analysis_as_analysing_anew(preprocessor, tmp_path):
    """The checks look at a quick observation; the analysis finished from their detections (in this process, or
    after a round trip through the bytes the service stores) is the one ``analyse_person`` makes, array for array.
    A file of another kind is refused, not misread."""
    from fitroom import fitting, imaging
    from fitroom.demo import sample_path
    from fitroom.preprocess.pipeline import analysis_bytes, detections_bytes, load_detections
    from fitroom.preprocess.quality import check_photo

    photo = imaging.load_image(sample_path("person_front.jpg"))
    checked = fitting.check(preprocessor, photo, "upper", None)
    assert checked.analysis is None and checked.detections.shoulders_found and not checked.failed
    fresh = preprocessor.analyse_person(photo, checked.view)
    restored = load_detections(detections_bytes(checked.detections))
    # the hands the models found beside the pose travel with them (None would make the analysis look again)
    assert restored.hands is not None and len(restored.hands) == len(checked.detections.hands)
    assert all(np.array_equal(a, b) for a, b in zip(restored.hands, checked.detections.hands))
    for analysis in (fitting.analyse(preprocessor, photo, checked), preprocessor.finish(photo, restored,
                                                                                          checked.view)):
        for name in ("keypoints", "mask", "parse", "dense", "agnostic", "parse_agnostic", "keep"):
            assert np.array_equal(getattr(analysis, name), getattr(fresh, name)), name
        assert np.array_equal(analysis.regions.head, fresh.regions.head)
    # the quick observation's verdicts are the full one's on this photo, its figures close
    quick = checked.report.to_dict()["checks"]
    full = check_photo(preprocessor.observe(photo, None)[0], "upper", None).to_dict()["checks"]
    assert [c["status"] for c in quick] == [c["status"] for c in full]
    for a, b in zip(quick, full):
        if a["value"] is not None:
            assert a["value"] == pytest.approx(b["value"], rel=0.02, abs=0.01), a["name"]
    with pytest.raises(ValueError, match="not a file of detections"):
        load_detections(analysis_bytes(fresh))
    nobody = fitting.check(preprocessor, np.full((300, 200, 3), 128, np.uint8), "upper")
    assert not nobody.keypoints_found and load_detections(detections_bytes(nobody.detections)).pose is None
    with pytest.raises(NoPersonError):
        fitting.admit(nobody, force=True)


def test_the_side_thread_gives_what_one_thread_gives_and_its_errors_arrive(tmp_path):
    """check_and_prepare segments the product photo on the preprocessor's side threads while the person's models
    run and makes the checks (and counts the people) while the analysis runs its hand model and dense map there:
    the inputs are those made step by step on one thread; a product photo with no garment still raises its own
    error (and the preprocessor goes on working); closing stops the threads."""
    import threading

    from fitroom import fitting, imaging
    from fitroom.demo import sample_path
    from fitroom.preprocess.pipeline import Preprocessor

    photo = imaging.load_image(sample_path("person_front.jpg"))
    product = imaging.load_image(sample_path("garment_tee_front.jpg"))
    with Preprocessor() as preprocessor:
        prepared = fitting.check_and_prepare(preprocessor, photo, product, view="front")
        # the people, counted with the checks, reach the analysis made beside them
        assert prepared.checked.detections.people == prepared.checked.analysis.people == 1
        uncounted = preprocessor.detect(photo, count=False)
        counted = preprocessor.count(uncounted)
        assert uncounted.people == -1 and uncounted.everyone is not None
        whole = preprocessor.detect(photo)
        assert (counted.people, counted.others, counted.everyone) == (whole.people, whole.others, None)
        names = set()
        assert preprocessor.beside(lambda: names.add(threading.current_thread().name)).result() is None
        assert names and threading.current_thread().name not in names
        with pytest.raises(GarmentError, match="no garment"):
            fitting.check_and_prepare(preprocessor, photo, np.full_like(product, 255), view="front")
        again = fitting.check_and_prepare(preprocessor, photo, product, view="front")
        side = preprocessor._side
    assert preprocessor._side is None and side._shutdown
    with Preprocessor() as alone:
        alone.beside = lambda function, *args, **kwargs: _done(function(*args, **kwargs))  # everything in turn
        mask, category = alone.analyse_garment(product, None)
        analysis = alone.analyse_person(photo, "front")
        expected = alone.inputs(analysis, photo, product, mask, category, "front")
    for inputs in (prepared.inputs, again.inputs):
        for name in ("garment_mask", "keypoints", "parse", "dense", "agnostic", "parse_agnostic", "keep"):
            assert np.array_equal(getattr(inputs, name), getattr(expected, name)), name


def _done(value):
    from concurrent.futures import Future

    future = Future()
    future.set_result(value)
    return future
