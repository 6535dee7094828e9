"""`fitroom tryon` and `fitroom prepare` on real and broken photos: results, messages, exit codes."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from fitroom import imaging
from fitroom.cli import main
from fitroom.data.layout import VitonLayout
from fitroom.demo import sample_path
from fitroom.labels import Cihp

GARMENT = str(sample_path("garment_tee_front.jpg"))


def _write(path, image: Image.Image, fmt: str, **kwargs):
    image.save(path, format=fmt, **kwargs)
    return str(path)


def test_tryon_on_the_astronaut(tmp_path, astronaut, preprocessor):
    out = tmp_path / "result.png"
    assert main(["-q", "tryon", "--person", str(sample_path("astronaut.jpg")), "--garment", GARMENT, "--out",
                 str(out), "--save-intermediates"]) == 0
    result = imaging.load_image(out)
    assert result.shape == astronaut.shape
    parse = preprocessor.analyse_person(astronaut).parse
    face = parse == Cihp.FACE
    np.testing.assert_array_equal(result[face], astronaut[face])  # the face is untouched
    top_left = (slice(0, 60), slice(0, 60))  # the flag in the background
    np.testing.assert_array_equal(result[top_left], astronaut[top_left])
    garment = parse == Cihp.UPPER_CLOTHES
    assert np.abs(result[garment].astype(int) - astronaut[garment].astype(int)).mean() > 20  # the torso changed
    for name in ("pose.png", "parse.png", "dense.png", "agnostic.png", "warped_garment.png"):
        assert (tmp_path / "result_intermediates" / name).is_file()


def test_quiet_tryon_prints_the_result_path_and_nothing_else(tmp_path):
    """Run as a shopper's script would: a new process, so mediapipe's native start-up output is seen too."""
    import os
    import subprocess
    import sys

    out = tmp_path / "result.png"
    done = subprocess.run([sys.executable, "-m", "fitroom.cli", "-q", "tryon", "--person",
                           str(sample_path("astronaut.jpg")), "--garment", GARMENT, "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(out.resolve())]
    assert done.stderr == ""


@pytest.mark.parametrize("kind", ["grey", "cmyk", "exif"])
def test_convertible_photos_work(tmp_path, astronaut, kind):
    image = Image.fromarray(astronaut)
    if kind == "grey":
        person = _write(tmp_path / "p.png", image.convert("L"), "PNG")
    elif kind == "cmyk":
        person = _write(tmp_path / "p.jpg", image.convert("CMYK"), "JPEG")
    else:  # stored sideways with an EXIF orientation that turns it upright
        exif = Image.Exif()
        exif[0x0112] = 8
        person = _write(tmp_path / "p.jpg", image.rotate(-90, expand=True), "JPEG", exif=exif.tobytes())
    out = tmp_path / "out.png"
    assert main(["-q", "tryon", "--person", person, "--garment", GARMENT, "--out", str(out)]) == 0
    assert imaging.load_image(out).shape == astronaut.shape


def _broken(tmp_path, astronaut, kind):
    path = tmp_path / f"{kind}.jpg"
    if kind == "corrupt":
        data = io.BytesIO()
        Image.fromarray(astronaut).save(data, "JPEG")
        path.write_bytes(data.getvalue()[:2000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge":
        Image.new("L", (9000, 6000)).save(path.with_suffix(".png"))
        path = path.with_suffix(".png")
    elif kind == "personless":
        Image.fromarray(np.ascontiguousarray(astronaut[:, 380:])).save(path)
    elif kind == "two_people":
        Image.fromarray(np.concatenate([astronaut, astronaut], axis=1)).save(path)
    return path


MESSAGES = {"corrupt": "damaged or incomplete", "empty": "empty", "huge": "megapixels", "personless": "no person",
            "two_people": "2 people"}


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_bad_photos_give_a_message_and_exit_2(tmp_path, astronaut, caplog, capsys, kind):
    path = _broken(tmp_path, astronaut, kind)
    code = main(["-q", "tryon", "--person", str(path), "--garment", GARMENT, "--out", str(tmp_path / "o.png")])
    assert code == 2
    assert MESSAGES[kind] in caplog.text.lower()
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_prepare_reports_failures_and_resumes(tmp_path, astronaut):
    persons, garments = tmp_path / "persons", tmp_path / "garments"
    persons.mkdir()
    garments.mkdir()
    Image.fromarray(astronaut).save(persons / "astronaut.jpg")
    Image.fromarray(imaging.load_image(sample_path("person_front.jpg"))).save(persons / "synthetic person.jpg")
    for kind in ("corrupt", "personless"):
        _broken(persons, astronaut, kind)
    (garments / "tee.jpg").write_bytes(open(GARMENT, "rb").read())
    out = tmp_path / "dataset"
    code = main(["-q", "--strict", "prepare", "--persons", str(persons), "--garments", str(garments), "--out",
                 str(out)])
    assert code == 1  # some photos failed (warnings: exit status 1 under --strict), and the batch still finished
    with open(out / "prepare_report.csv") as handle:
        rows = {row["file"].split("/")[-1]: row for row in csv.DictReader(handle)}
    assert rows["astronaut.jpg"]["status"] == "ok" and rows["synthetic person.jpg"]["status"] == "ok"
    assert rows["corrupt.jpg"]["status"] == "failed" and "damaged" in rows["corrupt.jpg"]["reason"]
    assert rows["personless.jpg"]["status"] == "failed" and "no person" in rows["personless.jpg"]["reason"]
    layout = VitonLayout(out, "test")
    pairs = layout.pairs()
    assert sorted(p for p, _ in pairs) == ["astronaut.jpg", "synthetic_person.jpg"]
    assert layout.check() == []
    assert main(["-q", "dataset", "check", str(out)]) == 0  # the split prepare wrote, not a missing 'train'
    # a second run skips what is done
    assert main(["-q", "prepare", "--persons", str(persons), "--garments", str(garments), "--out", str(out)]) == 0
    with open(out / "prepare_report.csv") as handle:
        statuses = {row["file"].split("/")[-1]: row["status"] for row in csv.DictReader(handle)}
    assert statuses["astronaut.jpg"] == "skipped" and statuses["tee.jpg"] == "skipped"


def test_prepare_keeps_every_photo_detects_views_and_writes_a_trainable_split(tmp_path):
    """me.png and me.jpg used to become one me.jpg (the second 'already done'); `dataset check` looked for a
    'train' folder a test-split output lacks; and the views were all the --view given (front by default)."""
    import shutil

    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    persons, garments, out = tmp_path / "persons", tmp_path / "garments", tmp_path / "dataset"
    persons.mkdir()
    garments.mkdir()
    shutil.copyfile(sample_path("person_front.jpg"), persons / "me.jpg")
    Image.open(sample_path("person_back.jpg")).save(persons / "me.png")
    shutil.copyfile(sample_path("garment_tee_front.jpg"), garments / "me_jpg.jpg")  # each person's own garment
    shutil.copyfile(sample_path("garment_tee_back.jpg"), garments / "me_png.jpg")
    assert main(["-q", "prepare", "--persons", str(persons), "--garments", str(garments), "--out", str(out),
                 "--split", "train"]) == 0
    layout = VitonLayout(out, "train")
    assert sorted(layout.pairs()) == [("me_jpg.jpg", "me_jpg.jpg"), ("me_png.jpg", "me_png.jpg")]
    assert (layout.view("me_jpg.jpg").value, layout.view("me_png.jpg").value) == ("front", "back")
    assert main(["-q", "dataset", "check", str(out)]) == 0
    config = load_config(None, [f"data={out}", f"out={tmp_path / 'run'}", "size=[128, 96]", "batch_size=2",
                                "model=test_hrviton_condition", "steps=1", "loss_weights.vgg=0",
                                "validate_every=100"])
    trainer = Trainer(config, progress=False)
    trainer.run()
    assert trainer.step == 1


def test_two_shards_of_prepare_merged_are_the_unsharded_run(tmp_path):
    """--shard 0/2 and 1/2 (as two machines would run them) then --merge: the same files, pair list, views and
    report rows as one run; --merge before every shard is done is refused in words."""
    import shutil

    persons, garments = tmp_path / "persons", tmp_path / "garments"
    persons.mkdir()
    garments.mkdir()
    shutil.copyfile(sample_path("person_front.jpg"), persons / "a.jpg")
    shutil.copyfile(sample_path("person_back.jpg"), persons / "b.jpg")
    shutil.copyfile(sample_path("garment_tee_front.jpg"), garments / "a.jpg")
    shutil.copyfile(sample_path("garment_long_sleeve_front.jpg"), garments / "c.jpg")
    common = ["-q", "prepare", "--persons", str(persons), "--garments", str(garments)]
    assert main([*common, "--out", str(tmp_path / "whole")]) == 0
    sharded = tmp_path / "sharded"
    assert main([*common, "--out", str(sharded), "--shard", "1/2"]) == 0
    assert main([*common, "--out", str(sharded), "--merge"]) == 2  # shard 0 is not done yet
    assert main([*common, "--out", str(sharded), "--shard", "0/2"]) == 0
    assert not (sharded / "test_pairs.txt").exists()  # a shard writes its own files only
    assert main([*common, "--out", str(sharded), "--merge"]) == 0

    def tree(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and "prepare_report" not in p.name}

    whole, merged = tree(tmp_path / "whole"), tree(sharded)
    assert whole.keys() == merged.keys() and all(whole[k] == merged[k] for k in whole)

    def report(root):
        with open(root / "prepare_report.csv") as handle:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]

    assert report(tmp_path / "whole") == report(sharded)


def test_a_catalogue_is_one_try_on_per_garment_and_a_broken_garment_fails_alone(tmp_path, capsys, caplog):
    """tryon --garments DIR: each product photo's picture is the one a single tryon makes; an unreadable photo is
    named with its reason and the others are still made; --garment and --garments together are refused."""
    import json
    import shutil

    folder = tmp_path / "catalogue"
    folder.mkdir()
    for name in ("garment_tee_front.jpg", "garment_long_sleeve_front.jpg"):
        shutil.copy(sample_path(name), folder / name)
    (folder / "broken.jpg").write_bytes(b"not a photo")
    person = str(sample_path("astronaut.jpg"))
    out = tmp_path / "out"
    assert main(["-q", "tryon", "--person", person, "--garments", str(folder), "--out", str(out), "--json",
                 "--batch-size", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["garment"]: row for row in report["garments"]}
    assert set(rows) == {"broken.jpg", "garment_long_sleeve_front.jpg", "garment_tee_front.jpg"}
    assert "result" not in rows["broken.jpg"] and "not a photo in a format" in rows["broken.jpg"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["garment_long_sleeve_front.png", "garment_tee_front.png"]
    single = tmp_path / "single.png"
    assert main(["-q", "tryon", "--person", person, "--garment", GARMENT, "--out", str(single)]) == 0
    np.testing.assert_array_equal(imaging.load_image(out / "garment_tee_front.png"), imaging.load_image(single))
    assert main(["-q", "tryon", "--person", person, "--garment", GARMENT, "--garments", str(folder), "--out",
                 str(out)]) != 0
    assert "one of --garment" in caplog.text
