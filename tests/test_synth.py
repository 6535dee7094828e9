import json

import numpy as np
import pytest
from PIL import Image

from fitroom.data.layout import FOLDERS, VitonLayout, read_pairs
from fitroom.data.synthetic import render_garment, render_person, sample_spec
from fitroom.data.synthetic.problems import DEFECTS, render_problem, write_problem_set
from fitroom.data.synthetic.spec import ArmPose, with_pose
from fitroom.data.synthetic.writer import SynthConfig
from fitroom.labels import ARM_LABELS, UPPER_GARMENT_LABELS, Body25, Cihp, View


def test_complete_layout_is_written(synth_dataset):
    for split, expected in (("train", 12), ("test", 4)):
        directory = synth_dataset / split
        for spellings in FOLDERS.values():
            files = list((directory / spellings[0]).iterdir())
            assert len(files) == expected, (split, spellings[0])
        pairs = read_pairs(synth_dataset / f"{split}_pairs.txt")
        assert len(pairs) == expected
    for path in (synth_dataset / "train" / "image-parse-v3").iterdir():
        with Image.open(path) as image:
            assert image.mode == "P" and image.size == (192, 256)
            assert int(np.asarray(image).max()) <= 19
    for path in (synth_dataset / "train" / "openpose_json").iterdir():
        document = json.loads(path.read_text())
        assert len(document["people"][0]["pose_keypoints_2d"]) == 75
    # test pairs are unpaired and each has its rendered ground truth
    for person, cloth in read_pairs(synth_dataset / "test_pairs.txt"):
        assert person != cloth and person[-6:] == cloth[-6:]  # same view suffix
        truth = synth_dataset / "test" / "unpaired-gt" / f"{person[:-4]}_{cloth[:-4]}.png"
        assert truth.is_file()


def test_unpaired_truth_is_the_same_person_in_the_other_garment(synth_dataset):
    layout = VitonLayout(synth_dataset, "test")
    person, cloth = layout.pairs()[0]
    own = layout.read(person)
    truth = layout.unpaired_ground_truth(person, cloth)
    assert truth is not None and truth.shape == own.person.shape
    # background and face are identical in spirit (same render, other garment); the garment region differs
    face = own.parse == Cihp.FACE
    assert np.abs(truth[face].astype(int) - own.person[face].astype(int)).mean() < 6
    garment = np.isin(own.parse, UPPER_GARMENT_LABELS)
    assert np.abs(truth[garment].astype(int) - own.person[garment].astype(int)).mean() > 8


def test_rendering_is_deterministic_and_seed_dependent():
    spec = sample_spec(5, 2)
    first = render_person(spec.person, spec.garment, "back", (128, 96))
    again = render_person(spec.person, spec.garment, "back", (128, 96))
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.parse, again.parse)
    other = sample_spec(6, 2)
    assert other != spec


def test_labels_agree_with_keypoints_and_views():
    """The person's left wrist lies on the left-arm label in both views (left is mirrored in the back view)."""
    for index in range(6):
        spec = sample_spec(21, index, allow_crossed=False)
        for view in ("front", "back"):
            person = with_pose(spec.person, view, arm_a=ArmPose.A_POSE, arm_b=ArmPose.A_POSE,
                               arm_a_angles=(35.0, 0.0), arm_b_angles=(35.0, 0.0))
            render = render_person(person, spec.garment, view, (256, 192))
            for joint, label in ((Body25.L_WRIST, Cihp.LEFT_ARM), (Body25.R_WRIST, Cihp.RIGHT_ARM)):
                x, y, confidence = render.keypoints[joint]
                assert confidence > 0
                window = render.parse[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]
                assert (window == label).any() or np.isin(window, UPPER_GARMENT_LABELS).any(), (index, view, joint)
            left_x = render.keypoints[Body25.L_SHOULDER, 0]
            right_x = render.keypoints[Body25.R_SHOULDER, 0]
            assert (left_x > right_x) == (view == "front")  # the person's left is on the image's right in front
            if view == "back":
                assert render.keypoints[Body25.NOSE, 2] == 0  # no face seen from behind


def test_every_modality_is_consistent():
    spec = sample_spec(8, 4)
    render = render_person(spec.person, spec.garment, "front", (256, 192))
    garment, mask = render_garment(spec.garment, "front", (256, 192))
    assert render.image.shape == (256, 192, 3) and render.parse.shape == (256, 192)
    assert 0.05 < mask.mean() < 0.8
    # the product photo is white outside the garment
    assert garment[~mask].mean() > 230
    # the dense map covers the body: the person's pixels mostly have a body part
    assert (render.dense[render.person_mask] > 0).mean() > 0.85
    assert set(np.unique(render.dense)) <= set(range(25))
    assert np.isin(render.parse, ARM_LABELS).any() and np.isin(render.parse, UPPER_GARMENT_LABELS).any()


@pytest.mark.parametrize("size", [(64, 48), (200, 150)])
def test_any_4_by_3_size_renders(size):
    spec = sample_spec(0, 0)
    assert render_person(spec.person, spec.garment, View.BACK, size).image.shape[:2] == size


def test_config_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="4:3"):
        SynthConfig(out=tmp_path, count=2, size=(256, 256))
    with pytest.raises(ValueError, match="count"):
        SynthConfig(out=tmp_path, count=0)


def test_problem_photos_are_labelled(tmp_path):
    labels = write_problem_set(tmp_path, len(DEFECTS), size=(128, 96), progress=False)
    rows = labels.read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == list(DEFECTS)
    clean, _ = render_problem(0, 0, "clean", (128, 96))
    dark, _ = render_problem(0, 2, "dark", (128, 96))
    blurred, _ = render_problem(0, 1, "blur", (128, 96))
    assert dark.mean() < clean.mean() * 0.5
    import cv2

    sharpness = lambda image: cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()  # noqa: E731
    assert sharpness(blurred) < sharpness(clean)


def test_four_identities_give_unpaired_ground_truth(tmp_path):
    """`fitroom synth --count 4` used to put one identity in the test split, which has no partner to swap
    garments with, and wrote 0 unpaired truths."""
    from fitroom.cli import main
    from fitroom.data.layout import UNPAIRED_GT, read_pairs

    assert main(["-q", "synth", "--out", str(tmp_path), "--count", "4", "--size", "64x48", "--workers", "1"]) == 0
    truths = sorted(p.name for p in (tmp_path / "test" / UNPAIRED_GT).iterdir())
    pairs = read_pairs(tmp_path / "test_pairs.txt")
    assert len(truths) == 4 and len(pairs) == 4  # 2 test identities x front and back
    assert all(person != cloth for person, cloth in pairs)


def test_two_shards_render_the_dataset_one_run_renders(tmp_path):
    """--shard 0/2 and 1/2 into one folder (two machines sharing it): byte for byte the unsharded dataset, lists
    included, without a merge step; a shard with another layout is refused in words."""
    from fitroom.cli import main

    common = ["-q", "synth", "--count", "5", "--size", "64x48", "--categories", "upper,lower", "--workers", "1"]
    assert main([*common, "--out", str(tmp_path / "whole")]) == 0
    for shard in ("1/2", "0/2"):
        assert main([*common, "--out", str(tmp_path / "sharded"), "--shard", shard]) == 0

    def tree(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    whole, sharded = tree(tmp_path / "whole"), tree(tmp_path / "sharded")
    assert whole.keys() == sharded.keys() and all(whole[k] == sharded[k] for k in whole)
    assert main([*common, "--out", str(tmp_path / "dc"), "--shard", "0/2", "--layout", "dresscode"]) == 3
