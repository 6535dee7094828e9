import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from fitroom.data import DatasetWarning
from fitroom.data.layout import DatasetError, VitonLayout, read_keypoints
from fitroom.imaging import save_label_map


@pytest.fixture
def dataset_copy(synth_dataset, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(synth_dataset, target)
    return target


def test_reader_reads_every_sample_without_warnings(synth_dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for split in ("train", "test"):
            layout = VitonLayout(synth_dataset, split)
            assert layout.check() == []
            sample = layout.read(layout.pairs()[0][0])
            assert sample.keypoints.shape == (25, 3) and sample.agnostic is not None
    views = {VitonLayout(synth_dataset, "train").view(n) for n in VitonLayout(synth_dataset, "train").names()}
    assert {v.value for v in views} == {"front", "back"}


def test_official_style_reader_reads_it_unchanged(synth_dataset):
    """Read a sample the way code written for the official VITON-HD layout does: names from the pairs file,
    fixed folder names and suffixes, parse values straight from the P-mode PNG, the first person's keypoints."""
    root = synth_dataset
    person, cloth = (root / "test_pairs.txt").read_text().split("\n")[0].split()
    base = root / "test"
    image = Image.open(base / "image" / person)
    Image.open(base / "cloth" / cloth).convert("RGB")
    mask = np.array(Image.open(base / "cloth-mask" / cloth))
    assert set(np.unique(mask >= 128)) == {False, True}
    parse = np.array(Image.open(base / "image-parse-v3" / person.replace(".jpg", ".png")))
    assert parse.shape == (image.size[1], image.size[0]) and parse.max() <= 19
    agnostic_parse = np.array(Image.open(base / "image-parse-agnostic-v3.2" / person.replace(".jpg", ".png")))
    assert agnostic_parse.shape == parse.shape
    with open(base / "openpose_json" / person.replace(".jpg", "_keypoints.json")) as handle:
        pose = np.array(json.load(handle)["people"][0]["pose_keypoints_2d"]).reshape((-1, 3))[:, :2]
    assert pose.shape == (25, 2)
    Image.open(base / "openpose_img" / person.replace(".jpg", "_rendered.png"))
    Image.open(base / "image-densepose" / person)


def test_hyphenated_folder_spellings_are_accepted(dataset_copy):
    directory = dataset_copy / "train"
    (directory / "image-parse-v3").rename(directory / "image-parse")
    (directory / "openpose_json").rename(directory / "openpose-json")
    layout = VitonLayout(dataset_copy, "train")
    assert layout.read(layout.names()[0]).parse is not None


@pytest.mark.parametrize("damage, problem", [
    (lambda d, n: (d / "image" / n).write_bytes(b"not a jpeg"), "not a photo"),
    (lambda d, n: (d / "image" / n).write_bytes((d / "image" / n).read_bytes()[:300]), "damaged"),
    (lambda d, n: (d / "openpose_json" / n.replace(".jpg", "_keypoints.json")).write_text("{"), "not valid JSON"),
    (lambda d, n: (d / "openpose_json" / n.replace(".jpg", "_keypoints.json")).write_text('{"people": []}'),
     "no person"),
    (lambda d, n: (d / "image-parse-v3" / n.replace(".jpg", ".png")).unlink(), "not found"),
    (lambda d, n: save_label_map(d / "image-parse-v3" / n.replace(".jpg", ".png"),
                                 np.full((256, 192), 25, np.uint8), np.zeros((256, 3), np.uint8)), "label 25"),
    (lambda d, n: Image.fromarray(np.zeros((256, 192), np.uint8)).save(d / "cloth-mask" / n, "JPEG"), "empty"),
])
def test_a_broken_file_gives_an_error_naming_it(dataset_copy, damage, problem):
    layout = VitonLayout(dataset_copy, "train")
    name = layout.names()[0]
    damage(layout.directory, name)
    with pytest.raises(DatasetError, match=problem) as caught:
        layout.read(name)
    assert name.split(".")[0] in str(caught.value.path)
    assert len(layout.check()) == 1


def test_missing_folders_are_named(dataset_copy):
    shutil.rmtree(dataset_copy / "train" / "cloth-mask")
    with pytest.raises(DatasetError, match="cloth-mask"):
        VitonLayout(dataset_copy, "train")


def test_several_people_warn(tmp_path):
    path = tmp_path / "k.json"
    person = {"pose_keypoints_2d": [1.0] * 75}
    path.write_text(json.dumps({"people": [person, person]}))
    with pytest.warns(DatasetWarning, match="2 people"):
        assert read_keypoints(path).shape == (25, 3)
