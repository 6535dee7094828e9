"""The image store: a folder, and S3 on a real S3-compatible server (moto in server mode, started by the tests)."""

import numpy as np
import pytest

from fitroom.service.objects import DirectoryStore, MissingObject, S3Store, StorageError, open_store


@pytest.fixture(params=["directory", "s3"])
def store(request, tmp_path):
    if request.param == "directory":
        return DirectoryStore(tmp_path / "data")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/shop-1", tmp_path / "unused")


def test_objects_are_written_read_replaced_and_deleted(store):
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    store.put_image("photos/a.png", image)
    assert np.array_equal(store.get_image("photos/a.png"), image) and store.exists("photos/a.png")
    store.put("photos/a.analysis.npz", b"first")
    store.put("photos/a.analysis.npz", b"second")  # replaced whole
    assert store.get("photos/a.analysis.npz") == b"second"
    mask = np.zeros((40, 30), bool)
    mask[10:20] = True
    store.put_image("garments/g_front_mask.png", mask)
    assert np.array_equal(store.get_mask("garments/g_front_mask.png"), mask)
    store.delete("photos/a.png", None, "photos/a.analysis.npz", "photos/never-written.png")
    assert not store.exists("photos/a.png")
    with pytest.raises(MissingObject):
        store.get("photos/a.png")
    assert store.problem() is None


@pytest.mark.parametrize("key", ["../etc/passwd", "/photos/a.png", "photos/../../a.png", "photos", ""])
def test_a_key_outside_the_store_is_refused(tmp_path, key):
    store = DirectoryStore(tmp_path / "data")
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_s3_keys_live_under_the_prefix(s3_bucket, tmp_path):
    import boto3

    store = open_store(f"s3://{s3_bucket}/shop-1/", tmp_path)
    store.put("results/t-1.png", b"png")
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["shop-1/results/t-1.png"] and not (tmp_path / "results").exists()


def test_s3_that_cannot_be_used_says_so(s3_server, monkeypatch, tmp_path):
    for name, value in s3_server.items():
        monkeypatch.setenv(name, value)
    missing = open_store("s3://no-such-bucket-here", tmp_path)
    assert missing.problem() == "the image storage is unreachable"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    away = S3Store("s3://some-bucket")
    assert away.problem() == "the image storage is unreachable"
    with pytest.raises(StorageError, match="s3://some-bucket could not store an image"):
        away.put("photos/a.png", b"x")


@pytest.mark.parametrize("address", ["s3://", "s3://UPPER_case", "gs://bucket/x", "ftp://host/x"])
def test_an_address_that_is_not_a_store_is_a_clear_error(address, tmp_path):
    from fitroom.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="FITROOM_STORAGE"):
        open_store(address, tmp_path)


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    """fitroom.files.written_at_once: the target changes only when the block ends; a block that raises leaves the
    old file and no temporary one."""
    from fitroom.files import written_at_once

    target = tmp_path / "list.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with written_at_once(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with written_at_once(target, keep_suffix=True) as temporary:
        assert temporary.suffix == ".txt" and temporary.parent == tmp_path
        temporary.write_text("new\n")
        assert target.read_text() == "old\n"
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]
