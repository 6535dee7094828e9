"""Pose transfer: turning a skeleton to another view, the drawn target pose, the model folder's task, the
pose-transfer training stage on rendered front/back pairs, and the commands (``fitroom pose-transfer``,
``fitroom tryon --views``)."""

import json

import numpy as np
import pytest
import torch

from fitroom.engines.pose_transfer import (
    FACE_JOINTS, SIDE_WIDTH, PoseTransfer, drawn_dense, regenerated_area, turn_keypoints,
)
from fitroom.errors import ConfigurationError
from fitroom.labels import Body25, DensePart, View
from fitroom.preprocess.dense import render_to_parts


@pytest.fixture(scope="module")
def rendered():
    """One rendered identity, front and back (the renderer's truth of both views)."""
    from fitroom.data.synthetic.render import render_person
    from fitroom.data.synthetic.spec import sample_spec

    spec = sample_spec(5, 1, allow_crossed=False)
    return {view: render_person(spec.person, spec.garment, view, (256, 192)) for view in (View.FRONT, View.BACK)}


def _tiny_folder(path, task: str, mask: str, size=(64, 48)):
    """A random tiny pixel-space Leffa folder, as the training stages export one."""
    from fitroom.models import create_model
    from fitroom.models.leffa_convert import save_leffa
    from fitroom.training.diffusion import SCHEDULE

    torch.manual_seed(0)
    save_leffa(path, create_model("test_leffa_pixel"), None, SCHEDULE, task=task, mask=mask, size=list(size))
    return path


def test_turning_to_the_back_mirrors_the_body_and_keeps_each_joints_side(rendered):
    front = rendered[View.FRONT].keypoints
    back = turn_keypoints(front, View.FRONT, View.BACK)
    centre = np.mean(front[[Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP], 0])
    # from the front the person's left shoulder is on the image's right; from behind, on its left
    assert front[Body25.L_SHOULDER, 0] > centre > front[Body25.R_SHOULDER, 0]
    assert back[Body25.L_SHOULDER, 0] < centre < back[Body25.R_SHOULDER, 0]
    np.testing.assert_allclose(back[:, 1], front[:, 1])
    assert (back[list(FACE_JOINTS), 2] == 0).all() and back[Body25.L_EAR, 2] > 0
    # and back again: every joint where it was (the face's joints are guessed again, not restored)
    again = turn_keypoints(back, View.BACK, View.FRONT)
    body = [j for j in range(25) if j not in FACE_JOINTS and front[j, 2] > 0]
    np.testing.assert_allclose(again[body, :2], front[body, :2], atol=1e-3)
    ears = (again[Body25.R_EAR, 0] + again[Body25.L_EAR, 0]) / 2
    assert again[Body25.NOSE, 2] > 0 and abs(again[Body25.NOSE, 0] - ears) < 1e-3
    # the real back view of the same person: the turned skeleton's shoulders are on the right sides
    truth = rendered[View.BACK].keypoints
    assert np.sign(back[Body25.L_SHOULDER, 0] - back[Body25.R_SHOULDER, 0]) == \
        np.sign(truth[Body25.L_SHOULDER, 0] - truth[Body25.R_SHOULDER, 0])


def test_a_side_view_narrows_the_body_and_faces_its_way(rendered):
    front = rendered[View.FRONT].keypoints
    width = abs(front[Body25.L_SHOULDER, 0] - front[Body25.R_SHOULDER, 0])
    left = turn_keypoints(front, View.FRONT, View.SIDE_LEFT)
    right = turn_keypoints(front, View.FRONT, View.SIDE_RIGHT)
    for side in (left, right):
        assert abs(side[Body25.L_SHOULDER, 0] - side[Body25.R_SHOULDER, 0]) == pytest.approx(SIDE_WIDTH * width,
                                                                                             rel=1e-4)
    assert left[Body25.NOSE, 0] < right[Body25.NOSE, 0]  # seen from the left side the face looks to the image's left


def test_the_drawn_target_uses_the_surface_of_its_view(rendered):
    front = rendered[View.FRONT]
    back = drawn_dense(turn_keypoints(front.keypoints, View.FRONT, View.BACK), (256, 192), View.BACK)
    parts = render_to_parts(back)
    assert (parts == DensePart.TORSO_BACK).sum() > 500 and not (parts == DensePart.TORSO_FRONT).any()
    # the body turned round is the front view's body mirrored about its axis, without holes at the joints
    facing = render_to_parts(drawn_dense(front.keypoints, (256, 192), View.FRONT)) > 0
    k = front.keypoints
    centre = np.mean(k[[Body25.R_SHOULDER, Body25.L_SHOULDER, Body25.R_HIP, Body25.L_HIP], 0])
    columns = np.clip(np.round(2 * centre - np.arange(192)).astype(int), 0, 191)
    mirrored, drawn = facing[:, columns], parts > 0
    assert (drawn & mirrored).sum() / (drawn | mirrored).sum() > 0.9
    for joint in (Body25.R_ELBOW, Body25.L_KNEE, Body25.MID_HIP):
        x, y = np.round(turn_keypoints(k, View.FRONT, View.BACK)[joint, :2]).astype(int)
        assert drawn[y, x], joint


def test_the_regenerated_area_covers_the_person_in_both_poses():
    person = np.zeros((100, 80), bool)
    person[20:80, 10:30] = True
    target = np.zeros((100, 80, 3), np.uint8)
    target[20:80, 50:70] = 200
    area = regenerated_area(person, target)
    assert area[20:80, 10:30].all() and area[20:80, 50:70].all() and area[17, 20]  # grown by 3 px
    assert not area[0:10].any() and not area[:, 40].all()


def test_pose_transfer_keeps_the_background_and_the_seed_fixes_the_image(tmp_path, rendered):
    front = rendered[View.FRONT]
    folder = _tiny_folder(tmp_path / "pose", "pose", "person")
    target = drawn_dense(turn_keypoints(front.keypoints, View.FRONT, View.BACK), (256, 192), View.BACK)
    results = [PoseTransfer(folder, steps=2, seed=seed, progress=False)(front.image, front.person_mask, target)
               for seed in (1, 1, 2)]
    first = results[0]
    assert first.image.shape == front.image.shape and first.image.dtype == np.uint8
    assert np.array_equal(first.image[~first.mask], front.image[~first.mask])  # bit-exact outside the area
    assert first.mask[front.person_mask].all() and 0.1 < first.mask.mean() < 0.9
    assert np.array_equal(first.image, results[1].image)
    assert not np.array_equal(first.image, results[2].image)
    assert set(first.timings) >= {"inputs", "encode", "denoise", "decode"}
    # the published model's setting: the whole picture is drawn
    whole = PoseTransfer(_tiny_folder(tmp_path / "whole", "pose", "whole"), steps=1, progress=False)
    assert whole(front.image, front.person_mask, target).mask.all()


def test_a_folder_for_the_other_task_is_refused_in_one_sentence(tmp_path):
    from fitroom.engines.diffusion import DiffusionEngine

    tryon = _tiny_folder(tmp_path / "tryon", "tryon", "garment")
    pose = _tiny_folder(tmp_path / "pose", "pose", "person")
    with pytest.raises(ConfigurationError, match="holds a Leffa model for try-on; pose transfer needs one for pose"):
        PoseTransfer(tryon)
    with pytest.raises(ConfigurationError, match="for pose transfer; the diffusion engine needs one for try-on"):
        DiffusionEngine(pose)
    with pytest.raises(ConfigurationError, match="fitroom train pose_transfer"):
        PoseTransfer(None)
    assert DiffusionEngine(tryon, progress=False).size == (64, 48)  # the size it was trained at, by default


def test_pose_pairs_join_the_views_of_one_person(synth_dataset, tmp_path):
    from fitroom.data.dataset import PoseTransferDataset
    from fitroom.data.layout import DatasetError

    dataset = PoseTransferDataset(synth_dataset, "train", size=(64, 48))
    assert ("00000_00.jpg", "00000_01.jpg") in dataset.pairs and ("00000_01.jpg", "00000_00.jpg") in dataset.pairs
    assert all(a.split("_")[0] == b.split("_")[0] and a != b for a, b in dataset.pairs)
    item = dataset[0]
    assert item["source"].shape == item["person"].shape == (3, 64, 48) and item["source_parse"].shape == (64, 48)
    dataset.keep_views({View.BACK})
    assert dataset.pairs and all(b.endswith("_01.jpg") for _, b in dataset.pairs)
    (synth_dataset / "train" / "pose_pairs.txt").write_text("00001_01.jpg 00001_00.jpg\n")
    try:
        assert PoseTransferDataset(synth_dataset, "train").pairs == [("00001_01.jpg", "00001_00.jpg")]
        (synth_dataset / "train" / "pose_pairs.txt").write_text("")
        with pytest.raises(DatasetError, match="no pairs of photos of one person in two views"):
            PoseTransferDataset(synth_dataset, "train")
    finally:
        (synth_dataset / "train" / "pose_pairs.txt").unlink()


def test_the_pose_transfer_stage_trains_and_its_export_runs(tmp_path, rendered):
    """fitroom train pose_transfer: two steps on rendered front/back pairs, a validation SSIM, and the exported
    folder runs as a pose-transfer model (and is refused as a try-on engine)."""
    from fitroom.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["-q", "synth", "--out", str(data), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    assert main(["-q", "train", "pose_transfer", "--set", f"data={data}", f"out={run}", "size=[32, 24]",
                 "batch_size=2", "validate_every=2", "checkpoint_every=2", "log_every=1", "steps=2"]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "mse" in r] == [1, 2]
    assert any(0 <= r.get("validation_ssim", -1) <= 1 for r in records)
    meta = json.loads((run / "diffusion" / "parts.json").read_text())
    assert (meta["task"], meta["mask"], meta["size"]) == ("pose", "person", [32, 24])
    front = rendered[View.FRONT]
    result = PoseTransfer(run / "diffusion", steps=2, progress=False)(front.image, front.person_mask,
                                                                   rendered[View.BACK].image * 0 + 60)
    assert result.image.shape == front.image.shape


def test_the_commands(tmp_path, astronaut):
    """fitroom pose-transfer on a real photo; tryon --views front,back (the back view by pose transfer); a missing
    model and a --views name that is no view are one sentence each."""
    import subprocess
    import sys

    from fitroom import imaging
    from fitroom.demo import sample_path

    folder = _tiny_folder(tmp_path / "pose", "pose", "person", size=(128, 96))
    person = sample_path("astronaut.jpg")
    out = tmp_path / "back.png"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "fitroom.cli", *args], capture_output=True, text=True,
                              timeout=600)

    done = run("pose-transfer", "--person", str(person), "--target", "back", "--checkpoint", str(folder), "--out",
               str(out), "--steps", "2", "--json", "--save-intermediates")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["from_view"] == "front" and report["target"] == "back"
    assert imaging.load_image(out).shape == astronaut.shape
    drawn = render_to_parts(imaging.load_image(tmp_path / "back_intermediates" / "target_dense.png"))
    assert (drawn == DensePart.TORSO_BACK).any() and not (drawn == DensePart.TORSO_FRONT).any()

    views = run("tryon", "--person", str(person), "--garment", str(sample_path("garment_tee_front.jpg")), "--out",
                str(tmp_path / "dressed.png"), "--views", "front,back", "--pose-checkpoint", str(folder),
                "--steps", "2", "--json")
    assert views.returncode == 0, views.stderr
    made = json.loads(views.stdout)["views"]
    assert made["front"]["made_by"] == "try-on" and made["back"]["made_by"] == "pose transfer"
    assert (tmp_path / "dressed_front.png").is_file() and (tmp_path / "dressed_back.png").is_file()

    missing = run("pose-transfer", "--person", str(person), "--target", "back", "--out", str(tmp_path / "x.png"))
    assert missing.returncode == 3 and "fitroom train pose_transfer" in missing.stderr
    assert "Traceback" not in missing.stderr and not (tmp_path / "x.png").exists()
    wrong = run("tryon", "--person", str(person), "--garment", str(sample_path("garment_tee_front.jpg")), "--out",
                str(tmp_path / "y.png"), "--views", "front,upside-down", "--pose-checkpoint", str(folder))
    assert wrong.returncode == 2 and "--views takes views separated by commas" in wrong.stderr


def test_dress_views_tries_the_back_product_on_the_turned_person(preprocessor):
    """tryon --views front,back with the garment's back photo: the front is the try-on, the back the turned person
    dressed again with the back product photo (a stand-in pose model returns the same person's real back photo)."""
    from fitroom import fitting, imaging
    from fitroom.demo import sample_path
    from fitroom.engines import create_engine
    from fitroom.engines.pose_transfer import PoseResult

    person = imaging.load_image(sample_path("person_front.jpg"))
    back = imaging.load_image(sample_path("person_back.jpg"))
    front_garment = imaging.load_image(sample_path("garment_tee_front.jpg"))
    back_garment = imaging.load_image(sample_path("garment_tee_back.jpg"))
    targets = []

    def turn(image, mask, dense):
        targets.append(render_to_parts(dense))
        return PoseResult(imaging.resize(back, image.shape[:2], "image"), np.ones(image.shape[:2], bool), {})

    prepared = fitting.check_and_prepare(preprocessor, person, front_garment, category="upper", view="front",
                                         force=True)
    results = fitting.dress_views(create_engine("warp"), turn, preprocessor, prepared, [View.FRONT, View.BACK],
                                  {View.FRONT: front_garment, View.BACK: back_garment})
    assert [(r.view, r.how) for r in results] == [(View.FRONT, "try-on"), (View.BACK, "pose transfer + try-on")]
    assert (targets[0] == DensePart.TORSO_BACK).any()  # the pose model was asked for the back view
    turned = imaging.resize(back, person.shape[:2], "image")
    changed = np.abs(results[1].image.astype(int) - turned.astype(int)).max(-1) > 30
    assert 0.02 < changed.mean() < 0.5  # the back garment drawn on the torso, the rest of the turned photo kept
    without = fitting.dress_views(create_engine("warp"), turn, preprocessor, prepared, [View.BACK],
                                  {View.FRONT: front_garment})
    assert [(r.view, r.how) for r in without] == [(View.BACK, "pose transfer")]  # only the views asked for
