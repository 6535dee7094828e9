"""Every subcommand on broken input: one plain line, the documented exit status (2 bad input, 3 missing weights
or configuration), no traceback, and nothing left behind."""

import logging

import pytest

from fitroom.cli import main
from fitroom.weights import KNOWN_WEIGHTS

PERSON = "src/fitroom/assets/samples/person_front.jpg"

# (arguments, exit status, words the message must hold); {bad} is a file that is not an image, {empty} an empty folder
CASES = [
    ("synth --out s --count -1", 2, "count must be at least 1"),
    ("synth --out s --count 1 --size 10x10", 2, "4:3 aspect"),
    ("dataset check nowhere", 2, "no such folder"),
    ("dataset check {empty}", 2, "neither a 'train' nor a 'test' folder"),
    ("tryon --person nope.jpg --garment {bad} --out o.png", 2, "file not found"),
    ("tryon --person {bad} --garment {bad} --out o.png", 2, "not a photo in a format fitroom reads"),
    ("tryon --person {person} --garment {person} --out o.png --engine nope", 2, "unknown engine 'nope'"),
    ("tryon --person {person} --garment {person} --out o.png --engine hrviton", 3, "--checkpoint DIR"),
    ("tryon --person {person} --garment {person} --out o.png --engine cpvton --checkpoint nowhere", 3,
     "gmm/ and tom/"),
    ("convert hrviton --out c", 2, "give --condition-generator"),
    ("convert hrviton --condition-generator nope.pth --out c", 3, "nope.pth not found"),
    ("convert hrviton --condition-generator {bad} --out c", 2, "cannot read the checkpoint"),
    ("eval --engine warp --data nowhere --out r", 2, "no 'test' folder"),
    ("eval --engine hrviton --data nowhere --out r", 2, "no 'test' folder"),  # the checkpoint: test_evaluation
    ("feedback export --out fb", 2, "is not a fitroom data folder"),
    ("feedback export --out fb --data-dir {empty}", 2, "is not a fitroom data folder"),
    ("weights fetch schp-lip", 3, "fitroom weights import schp-lip FILE"),
    ("weights fetch nope", 2, "unknown weights 'nope'"),
    ("weights fetch", 2, "name the weights"),
    ("weights import vgg19", 2, "the file to import is missing"),
    ("weights import vgg19 {bad}", 2, "the file is damaged or a different one"),
    ("train condition --config nope.yaml", 3, "no such configuration file"),
    ("train condition --config {bad}", 3, "must hold settings"),
    ("train condition --set bogus=1", 3, "unknown setting 'bogus'"),
    ("train condition --set steps=x", 3, "steps must be a number, got 'x'"),
    ("train condition --set data=nowhere loss_weights.vgg=0", 2, "no 'train' folder"),
    ("train condition --set data=nowhere", 3, "`fitroom weights fetch vgg19`"),
    ("train condition --set data=nowhere", 3, "--set loss_weights.vgg=0"),
    ("train generator", 3, "needs condition="),
    ("prepare --persons nope --garments {empty} --out p", 2, "nope is not a folder"),
    ("prepare --persons {empty} --garments {empty} --out p", 2, "holds no photos"),
    ("demo --engine nope --out d", 2, "unknown engine 'nope'"),
    ("tryon --person {person} --garment {person} --out o.png --checkpoint nowhere", 3, "takes no checkpoint"),
    ("serve --engine hrviton", 3, "--checkpoint DIR"),
    ("serve --engine warp --checkpoint nowhere", 3, "takes no checkpoint"),
    ("serve --engine cpvton --checkpoint nowhere", 3, "gmm/ and tom/"),
    ("serve --data-dir {bad}", 2, "is not a folder"),
]


@pytest.mark.parametrize("command,code,words", CASES, ids=[c[0].split(" --")[0] + f"-{i}" for i, c in
                                                           enumerate(CASES)])
def test_broken_input_is_one_line_and_a_documented_exit_status(command, code, words, tmp_path, monkeypatch,
                                                               caplog, capsys):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path / "weights"))  # no VGG, whatever this machine has
    (tmp_path / "bad.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    person = os.path.join(os.path.dirname(__file__), "..", PERSON)
    argv = command.format(bad=tmp_path / "bad.txt", empty=tmp_path / "empty", person=person).split()
    before = sorted(p.name for p in tmp_path.iterdir())
    with caplog.at_level(logging.INFO):
        assert main(["-q", *argv]) == code
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    message = errors[0].getMessage()
    assert words in message and "\n" not in message and not errors[0].exc_info
    streams = capsys.readouterr()
    assert "Traceback" not in streams.out + streams.err + caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a refused command left files behind"


def test_an_internal_error_says_it_is_a_bug_and_v_shows_the_traceback(monkeypatch, caplog):
    import fitroom.cli as cli

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_env", broken)
    assert main(["-q", "env"]) == 4
    assert "internal error: KeyError" in caplog.text and "run again with -v" in caplog.text
    assert not any(r.exc_info for r in caplog.records)
    caplog.clear()
    assert main(["-v", "env"]) == 4
    assert any(r.exc_info for r in caplog.records)  # -v: the traceback goes with the line


def test_every_known_weight_either_downloads_or_says_where_to_get_it():
    for known in KNOWN_WEIGHTS:
        assert known.source.startswith("https://")
        assert known.direct == (" " not in known.source)  # a page with a note is not a file to download


def test_a_device_that_is_not_here_is_a_plain_error(tmp_path, monkeypatch, caplog):
    import torch

    from fitroom.devices import resolve_device
    from fitroom.errors import ConfigurationError

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigurationError, match="device must be one of"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
        return
    with pytest.raises(ConfigurationError, match="no CUDA GPU is available here"):
        resolve_device("cuda")
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "serve", "--engine", "hrviton", "--checkpoint", "x", "--device", "cuda"]) == 3
    assert "no CUDA GPU is available here" in caplog.text
    assert not (tmp_path / "fitroom-data").exists()


def test_strict_counts_warnings_that_quiet_does_not_show(tmp_path):
    """A new process, as a script runs it: under -q the warnings are not printed, and --strict still sees them."""
    import os
    import shutil
    import subprocess
    import sys

    persons, garments = tmp_path / "persons", tmp_path / "garments"
    persons.mkdir()
    garments.mkdir()
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", PERSON), persons / "me.jpg")
    (persons / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "src/fitroom/assets/samples/garment_tee_front.jpg"),
                    garments / "me.jpg")
    command = [sys.executable, "-m", "fitroom.cli", "-q", "prepare", "--persons", str(persons), "--garments",
               str(garments), "--view", "front"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    plain = subprocess.run([*command, "--out", str(tmp_path / "a")], capture_output=True, text=True, timeout=300,
                           env=environment)
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr
    strict = subprocess.run([*command, "--out", str(tmp_path / "b"), "--strict"], capture_output=True, text=True,
                            timeout=300, env=environment)
    assert strict.returncode == 1 and strict.stderr == "", strict.stderr


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITROOM_DATABASE_URL", "postgresql+psycopg://shop:s3cret@127.0.0.1:9/fitroom")
    assert main(["-q", "feedback", "export", "--out", "fb"]) == 3
    # without the driver installed the line says so; with it, that the server cannot be reached
    assert ("cannot open the service's database postgresql+psycopg://shop:***@127.0.0.1:9/fitroom" in caplog.text
            or "the database driver for postgresql+psycopg://shop:***@127.0.0.1:9/fitroom" in caplog.text)
    assert "s3cret" not in caplog.text and not (tmp_path / "fb").exists()
    caplog.clear()
    assert main(["-q", "serve"]) == 3  # before the server starts
    assert "postgresql+psycopg://shop:***@127.0.0.1:9/fitroom" in caplog.text and "s3cret" not in caplog.text


def test_the_service_passes_its_engine_options_and_refuses_wrong_ones(tmp_path, monkeypatch, caplog):
    import uvicorn

    from fitroom.service.settings import Settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FITROOM_ENGINE_OPTIONS", '{"steps": 20, "scheduler": "dpm"}')
    assert Settings.from_env().engine_options == {"steps": 20, "scheduler": "dpm"}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    assert main(["-q", "serve"]) == 3  # the warp engine takes no steps: one line, before the server starts
    assert "the warp engine takes no scheduler, steps" in caplog.text
    monkeypatch.setenv("FITROOM_ENGINE_OPTIONS", "not json")
    caplog.clear()
    assert main(["-q", "serve"]) == 3 and "FITROOM_ENGINE_OPTIONS" in caplog.text
