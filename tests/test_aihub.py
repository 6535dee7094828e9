"""AI Hub's fashion set: a set written in its layout by the renderer imports into the VITON-HD layout close to the
renderer's truth, every damaged record is named, and the import resumes and shards."""

import csv

import numpy as np
import pytest

from fitroom.data.aihub import AihubConfig, cihp_label, coco17_to_body25, import_aihub, pad_to_3x4
from fitroom.data.layout import VitonLayout
from fitroom.data.synthetic import render_person, sample_spec
from fitroom.data.synthetic.aihub import to_9x16, write_aihub
from fitroom.labels import Body25, Cihp, View

SIZE = (512, 384)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("aihub")
    broken = write_aihub(root / "download", 6, size=SIZE, seed=0, damaged=True, progress=False)
    rows = import_aihub(AihubConfig(root / "download", root / "out", size=SIZE), progress=False)
    return root, broken, rows


def _truth(name: str):
    """The renderer's truth of an imported photo, put through the same 9:16 -> 3:4 steps."""
    index = int(name.split("_")[0]) - 1100
    view = View.FRONT if name.removesuffix(".jpg").endswith("_000") else View.BACK
    spec = sample_spec(0, index)
    render = render_person(spec.person, spec.garment, view, SIZE)
    photo, parse, top = to_9x16(render.image, render.parse)
    keypoints = render.keypoints.copy()
    keypoints[keypoints[:, 2] > 0, 1] += top
    return pad_to_3x4(photo, parse, keypoints, SIZE), view


def test_the_import_matches_the_renderers_truth(imported):
    root, _, rows = imported
    done = [r for r in rows if r["status"] == "imported"]
    assert len(done) == 7
    ious = []
    for row in done:
        layout = VitonLayout(root / "out", row["split"])
        sample = layout.read(row["name"])
        (image, parse, keypoints), view = _truth(row["name"])
        assert sample.view is view and row["view"] == view.value
        for label in np.unique(parse):
            if label and (parse == label).sum() >= 100:
                a, b = sample.parse == label, parse == label
                ious.append((a & b).sum() / (a | b).sum())
        foreground = ((sample.parse > 0) & (parse > 0)).sum() / ((sample.parse > 0) | (parse > 0)).sum()
        assert foreground >= 0.97, row["name"]
        present = keypoints[:, 2] > 0
        coco = [j for j in Body25 if j <= Body25.L_EAR]
        np.testing.assert_allclose(sample.keypoints[coco][present[coco], :2], keypoints[coco][present[coco], :2],
                                   atol=1.0)
        assert np.abs(sample.person.astype(int) - image.astype(int)).mean() < 4  # JPEG twice
        assert sample.garment_mask.mean() > 0.05 and sample.agnostic is not None
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.9, (np.mean(ious), min(ious))  # measured 0.998, 0.93


def test_every_damaged_record_is_named_with_its_reason(imported):
    root, broken, rows = imported
    reasons = {r["record"]: r["reason"] for r in rows}
    expected = {"no main_top item": "has no main_top item", "no back product photo": "_B.jpg (back view) is missing",
                "missing model photo": "is missing", "16 keypoints": "landmarks hold 48 numbers",
                "parse not JSON": "is not valid JSON", "sides of the image": "mirrored to the person's",
                }
    for problem, names in broken.items():
        for name in names:
            assert expected[problem] in reasons[name], (problem, reasons[name])
    with open(root / "out" / "aihub_report.csv", newline="", encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert len(report) == 12 and sum(r["status"] == "skipped" for r in report) == 5
    assert any("unknown classes left out: mannequin_stand" in r["reason"] for r in report)
    assert any("labels in the stored (landscape) frame" in r["reason"] for r in report)
    # the mirrored photo's labels are the person's own again: equal to the truth's
    name = next(n for n in broken["sides of the image"])
    row = next(r for r in rows if r["record"] == name)
    sample = VitonLayout(root / "out", row["split"]).read(row["name"])
    (_, parse, _), _ = _truth(row["name"])
    right = parse == Cihp.RIGHT_ARM
    assert (sample.parse[right] == Cihp.RIGHT_ARM).mean() > 0.9


def test_the_import_resumes_and_shards_give_the_same_dataset(imported, tmp_path):
    root, _, rows = imported
    again = import_aihub(AihubConfig(root / "download", root / "out", size=SIZE), progress=False)
    assert [r["status"] for r in again if r["status"] != "skipped"] == ["done"] * 7
    for shard in range(2):
        import_aihub(AihubConfig(root / "download", tmp_path / "sharded", size=SIZE, shard=(shard, 2)),
                     progress=False)
    files = sorted(p.relative_to(root / "out").as_posix() for p in (root / "out").rglob("*")
                   if p.is_file() and not p.name.startswith("aihub_report"))
    sharded = sorted(p.relative_to(tmp_path / "sharded").as_posix() for p in (tmp_path / "sharded").rglob("*")
                     if p.is_file() and not p.name.startswith("aihub_report"))
    assert files == sharded
    for name in ("train_pairs.txt", "test_pairs.txt", "train/views.txt", "test/views.txt"):
        assert (root / "out" / name).read_text() == (tmp_path / "sharded" / name).read_text()
    assert (tmp_path / "sharded" / "aihub_report.0-of-2.csv").is_file()


@pytest.mark.parametrize("name, label", [
    ("inner_torso", Cihp.UPPER_CLOTHES), ("Outer Torso", Cihp.COAT), ("outer_rsleeve", Cihp.COAT),
    ("dress_lsleeve", Cihp.DRESS), ("pants_hip", Cihp.PANTS), ("pants_rsleeve", Cihp.PANTS), ("skirt", Cihp.SKIRT),
    ("left arm", Cihp.LEFT_ARM), ("right_leg", Cihp.RIGHT_LEG), ("left-shoe", Cihp.LEFT_SHOE), ("hair", Cihp.HAIR),
    ("face", Cihp.FACE), ("neck", Cihp.TORSO_SKIN), ("hat", Cihp.HAT), ("arm", None), ("bag", None),
])
def test_class_names_are_matched_loosely(name, label):
    assert cihp_label(name) == label


def test_coco_keypoints_become_body25_with_neck_and_mid_hip():
    values = np.zeros((17, 3))
    values[5], values[6] = (60, 50, 2), (40, 50, 2)  # left, right shoulder
    values[11], values[12] = (58, 100, 1), (42, 100, 2)
    body = coco17_to_body25(values.tolist())
    assert tuple(body[Body25.L_SHOULDER]) == (60, 50, 1) and tuple(body[Body25.R_SHOULDER]) == (40, 50, 1)
    assert tuple(body[Body25.NECK]) == (50, 50, 1) and tuple(body[Body25.MID_HIP]) == (50, 100, 1)
    with pytest.raises(ValueError, match="48 numbers"):
        coco17_to_body25([0] * 48)
