"""The DressCode layout: a synthetic dataset written in it reads back as it was, and a broken file is named."""

import json

import numpy as np
import pytest

from fitroom.data.dresscode import (
    CIHP_TO_DRESSCODE, DRESSCODE_TO_CIHP, DressCodeLayout, DressCodeLabel, convert_viton_to_dresscode,
    read_dresscode_keypoints, write_dresscode_keypoints,
)
from fitroom.data.layout import DatasetError, VitonLayout
from fitroom.labels import Body25, Cihp, GarmentCategory
from fitroom.preprocess.dense import render_to_parts


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("dresscode")
    synthesize(SynthConfig(out=root / "viton", count=4, size=(256, 192), seed=5, workers=1, test_fraction=0.5),
               progress=False)
    ids = convert_viton_to_dresscode(root / "viton", root / "dc", progress=False)
    return root, ids


def test_a_dataset_written_in_the_dresscode_layout_reads_back_as_it_was(converted):
    root, ids = converted
    folder = root / "dc" / "upper_body"
    assert sorted(p.name for p in folder.iterdir()) == [
        "cloth_mask", "dense", "fitroom", "images", "keypoints", "label_maps", "skeletons",
        "test_pairs_paired.txt", "test_pairs_unpaired.txt", "train_pairs.txt", "unpaired-gt", "views.txt"]
    checked = 0
    for split in ("train", "test"):
        viton = VitonLayout(root / "viton", split)
        dresscode = DressCodeLayout(root / "dc", split)
        assert dresscode.check() == []
        for person, cloth, category in dresscode.pairs():
            assert category is GarmentCategory.UPPER and person.endswith("_0.jpg") and cloth.endswith("_1.jpg")
            name = next(n for n, i in ids.items() if f"{i}_0.jpg" == person)
            before, after = viton.read(name), dresscode.read(person, cloth, category)
            for field in ("person", "garment", "garment_mask", "parse"):
                np.testing.assert_array_equal(getattr(after, field), getattr(before, field), err_msg=field)
            # the dense map as part indices (the VITON-HD layout keeps a JPEG render of them, DressCode the indices)
            np.testing.assert_array_equal(render_to_parts(after.dense), render_to_parts(before.dense))
            np.testing.assert_allclose(after.keypoints, before.keypoints, atol=1e-3)
            assert after.view == before.view and after.category is GarmentCategory.UPPER
            checked += 1
    assert checked == len(ids)
    unpaired = DressCodeLayout(root / "dc", "test", "unpaired")
    pairs = unpaired.pairs()
    assert pairs and all(p[0].split("_")[0] != p[1].split("_")[0] for p in pairs)  # each with another's garment
    assert (root / "dc" / "upper_body" / "unpaired-gt").is_dir()


def test_the_official_files_alone_are_enough_and_close_to_fitrooms_own(converted, tmp_path):
    """Without fitroom's extra folder (as in the published dataset) the parse comes from DressCode's labels and the
    keypoints from the COCO file in its 384x512 frame; a cloth mask folder is optional."""
    import shutil

    root, _ = converted
    copy = tmp_path / "dc"
    shutil.copytree(root / "dc", copy)
    shutil.rmtree(copy / "upper_body" / "fitroom")
    shutil.rmtree(copy / "upper_body" / "cloth_mask")
    with_extra, official = DressCodeLayout(root / "dc", "train"), DressCodeLayout(copy, "train")
    person, cloth, category = official.pairs()[0]
    a, b = with_extra.read(person, cloth, category), official.read(person, cloth, category)
    # labels DressCode has map one to one; torso skin (no DressCode label) reads as background
    same = a.parse != Cihp.TORSO_SKIN
    np.testing.assert_array_equal(b.parse[same], a.parse[same])
    coco = [j for j in Body25 if j <= Body25.L_EAR and j != Body25.MID_HIP]
    np.testing.assert_allclose(b.keypoints[coco, :2], a.keypoints[coco, :2], atol=0.01)
    assert b.garment_mask.shape == a.garment_mask.shape and (b.garment_mask == a.garment_mask).mean() > 0.95


def test_every_label_dresscode_has_survives_the_round_trip():
    for label in DressCodeLabel:
        if label in (DressCodeLabel.BELT, DressCodeLabel.BAG):  # CIHP has neither
            continue
        assert CIHP_TO_DRESSCODE[DRESSCODE_TO_CIHP[label]] == label, label


@pytest.mark.parametrize("damage, problem", [
    ("json", "not valid JSON"), ("frame", "outside the 384x512 frame"), ("rows", "18 rows"),
    ("image", "cannot"), ("missing", "not found"), ("label", "label 30 found"),
])
def test_a_broken_file_is_named(converted, tmp_path, damage, problem):
    import shutil

    from PIL import Image

    root, _ = converted
    copy = tmp_path / "dc"
    shutil.copytree(root / "dc", copy)
    folder = copy / "upper_body"
    shutil.rmtree(folder / "fitroom")  # the official files are read
    person = (folder / "train_pairs.txt").read_text().split()[0]
    sample = person.split("_")[0]
    keypoints = folder / "keypoints" / f"{sample}_2.json"
    broken = {"json": keypoints, "frame": keypoints, "rows": keypoints, "image": folder / "images" / person,
              "missing": folder / "images" / person, "label": folder / "label_maps" / f"{sample}_4.png"}[damage]
    if damage == "json":
        broken.write_text("{not json")
    elif damage == "frame":
        document = json.loads(broken.read_text())
        document["keypoints"][1][0] = 700.0
        broken.write_text(json.dumps(document))
    elif damage == "rows":
        broken.write_text(json.dumps({"keypoints": [[1, 2, 1, 0]] * 17}))
    elif damage == "image":
        broken.write_bytes(broken.read_bytes()[:200])
    elif damage == "missing":
        broken.unlink()
    else:
        Image.fromarray(np.full((64, 48), 30, np.uint8), mode="L").save(broken)
    problems = DressCodeLayout(copy, "train").check()
    assert len(problems) == 1 and problems[0].path == broken and problem in problems[0].problem, problems


def test_keypoints_are_scaled_into_the_dresscode_frame_and_back(tmp_path):
    keypoints = np.zeros((25, 3), np.float32)
    keypoints[Body25.NOSE] = (383.0, 100.0, 0.9)
    keypoints[Body25.R_HIP], keypoints[Body25.L_HIP] = (300.0, 500.0, 0.8), (460.0, 500.0, 0.7)
    write_dresscode_keypoints(tmp_path / "k.json", keypoints, (1024, 768))
    rows = json.loads((tmp_path / "k.json").read_text())["keypoints"]
    assert rows[0][:2] == [191.5, 50.0] and rows[2] == [0.0, 0.0, 0.0, 2.0]  # absent joints stay 0
    back = read_dresscode_keypoints(tmp_path / "k.json", (1024, 768))
    np.testing.assert_allclose(back[Body25.NOSE], keypoints[Body25.NOSE], atol=1e-3)
    np.testing.assert_allclose(back[Body25.MID_HIP, :2], [380.0, 500.0], atol=1e-3)  # made from both hips
    assert (back[Body25.R_SHOULDER] == 0).all()
    with pytest.raises(DatasetError, match="not found"):
        read_dresscode_keypoints(tmp_path / "none.json", (1024, 768))


def test_synth_writes_the_dresscode_layout_and_dataset_check_reads_it(tmp_path, capsys):
    from fitroom.cli import main

    out = tmp_path / "dc"
    assert main(["-q", "synth", "--out", str(out), "--count", "2", "--size", "256x192", "--layout", "dresscode",
                 "--workers", "1", "--test-fraction", "0.5"]) == 0
    assert main(["-q", "dataset", "check", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: v["problems"] for k, v in report.items()} == {"train (paired)": [], "test (paired)": [],
                                                            "test (unpaired)": []}
    assert report["train (paired)"]["pairs"] == 2  # one identity, front and back
    (out / "upper_body" / "fitroom").rename(out / "upper_body" / "fitroom-away")
    keypoints = sorted((out / "upper_body" / "keypoints").glob("*.json"))[0]
    keypoints.write_text("{}")
    assert main(["-q", "dataset", "check", str(out), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert any(str(keypoints) in problem for v in report.values() for problem in v["problems"])
