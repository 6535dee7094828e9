"""The try-on on real photos: the person comes back unchanged where promised, the garment is taken.

The photos ship in packages the test environment installs (scikit-image, matplotlib); the judge is
:class:`fitroom.metrics.photo_judge.PhotoJudge`, mediapipe models in settings the try-on does not use.
"""

import numpy as np
import pytest

from fitroom import imaging
from fitroom.data.real_photos import REVIEW_SET, load_review_set
from fitroom.data.synthetic import render_garment, sample_spec
from fitroom.engines import create_engine
from fitroom.labels import Body25, Cihp, View
from fitroom.preprocess.quality import Status, check_photo

#: the photos the test environment has (the Debian ones are for the benchmark)
PHOTOS = {photo.name: image for photo, image in load_review_set()}


@pytest.fixture(scope="module")
def judge():
    from fitroom.metrics.photo_judge import PhotoJudge

    instance = PhotoJudge()
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def garment():
    image, _ = render_garment(sample_spec(3, 2).garment, View.FRONT, (512, 384))
    return image


def tryon(preprocessor, photo: np.ndarray, garment: np.ndarray):
    _, analysis = preprocessor.observe(photo)
    assert analysis is not None
    mask, category = preprocessor.analyse_garment(garment, "upper")
    inputs = preprocessor.inputs(analysis, photo, garment, mask, category)
    return inputs, mask, create_engine("warp")(inputs)


def test_the_package_photos_are_there():
    assert {"astronaut", "camera", "hopper", "two_people_edge", "two_people_faceless"} <= set(PHOTOS)
    for photo in REVIEW_SET:
        assert photo.licence and photo.source


@pytest.mark.parametrize("name", ["astronaut", "hopper", "camera"])
def test_real_photo_keeps_face_hair_and_background(preprocessor, judge, garment, name):
    photo = PHOTOS[name]
    inputs, mask, result = tryon(preprocessor, photo, garment)
    # what the preprocessing promised is returned bit for bit
    assert inputs.keep is not None and inputs.keep.any()
    np.testing.assert_array_equal(result.image[inputs.keep], photo[inputs.keep])
    # and an independent judge agrees (the review's criteria)
    verdict = judge.judge(photo, result.image, garment, mask)
    assert verdict.face_found
    assert verdict.face_change <= 1.0
    assert verdict.head_changed <= 0.01
    assert verdict.background_change <= 0.5
    if name != "camera":  # bent forward behind his arms, the cameraman shows little torso to dress
        assert verdict.torso_moved >= 0.5


def test_face_mesh_drives_the_parse_and_the_protected_head(preprocessor):
    _, analysis = preprocessor.observe(PHOTOS["hopper"])
    regions = analysis.regions
    assert regions.face_found and regions.face_landmarks.shape == (468, 2)
    face = analysis.parse == Cihp.FACE
    # the face label is the mesh's oval (inside the silhouette), not a colour guess
    overlap = (face & regions.face).sum() / max((face | (regions.face & analysis.mask)).sum(), 1)
    assert overlap > 0.9
    assert regions.head.any() and analysis.keep[regions.head].all()
    # her hat and glasses lie inside the head region, above the chin
    ys, _ = np.nonzero(regions.head)
    assert ys.min() < regions.face_landmarks[:, 1].min()


def test_greyscale_photo_gives_a_greyscale_result(preprocessor, garment):
    photo = PHOTOS["camera"]
    assert imaging.photo_tint(photo) is not None
    assert imaging.photo_tint(garment) is None
    _, _, result = tryon(preprocessor, photo, garment)
    assert imaging.photo_tint(result.image) is not None
    assert not np.array_equal(result.image, photo)


def test_second_person_at_the_edge_is_reported(preprocessor):
    observation, analysis = preprocessor.observe(PHOTOS["two_people_edge"])
    # half of her is cut off by the frame and merges with the shopper: no face or region of her own, so the
    # evidence is the part of the person segmentation the shopper does not explain
    assert observation.others > 0.5
    result = check_photo(observation).result("people")
    assert result.status in (Status.WARN, Status.FAIL) and "Someone else" in result.message
    assert analysis is not None  # --force still dresses the main person


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_good_real_photos_get_no_exposure_or_facing_warning(preprocessor, name):
    report = check_photo(preprocessor.observe(PHOTOS[name])[0])
    assert report.result("exposure").status is Status.PASS
    assert report.result("facing").status in (Status.PASS, Status.SKIP)
    assert report.result("people").status is Status.PASS


def test_washed_out_face_is_still_too_bright(preprocessor):
    bright = np.clip(PHOTOS["hopper"] * 2.3 + 40, 0, 255).astype(np.uint8)
    assert check_photo(preprocessor.observe(bright)[0]).result("exposure").status in (Status.WARN, Status.FAIL)


def test_without_a_face_or_head_keypoints_everything_above_the_shoulders_is_kept():
    from fitroom.preprocess.regions import find_regions, keep_mask

    shape = (200, 160)
    mask = np.zeros(shape, bool)
    mask[40:200, 30:130] = True
    keypoints = np.zeros((25, 3), np.float32)
    keypoints[Body25.R_SHOULDER] = (50, 80, 0.9)
    keypoints[Body25.L_SHOULDER] = (110, 80, 0.9)
    keypoints[Body25.NECK] = (80, 80, 0.9)
    regions = find_regions(shape, mask, keypoints, None, [], [])
    assert not regions.face_found
    keep = keep_mask(regions, mask, keypoints)
    assert keep[:80].all()
    assert not keep[120, 80]  # the chest is free to dress
