import subprocess
import sys

import pytest

from fitroom.cli import main


def test_help_lists_subcommands():
    result = subprocess.run([sys.executable, "-m", "fitroom.cli", "--help"], capture_output=True, text=True,
                            check=True)
    for command in ("env", "synth", "dataset", "demo"):
        assert command in result.stdout


def test_env_reports_versions_and_weights(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "mediapipe" in out and "mtviton.pth" in out


def test_synth_and_check(tmp_path, caplog):
    out = tmp_path / "d"
    assert main(["-q", "synth", "--out", str(out), "--count", "2", "--size", "64x48", "--workers", "1"]) == 0
    assert main(["dataset", "check", str(out)]) == 0
    (out / "train" / "image" / "00000_00.jpg").write_bytes(b"broken")
    assert main(["dataset", "check", str(out)]) == 2
    assert "00000_00.jpg" in caplog.text


def test_bad_arguments_exit_nonzero(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--out", str(tmp_path), "--size", "big"])
    assert exit_info.value.code == 2
    assert main(["-q", "synth", "--out", str(tmp_path), "--count", "2", "--size", "100x100"]) == 2


def test_version_and_json_output(tmp_path, capsys):
    import json

    from fitroom import __version__
    from fitroom.demo import sample_path

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"fitroom {__version__}"
    assert main(["env", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["versions"]["fitroom"] == __version__ and {w["name"] for w in document["weights"]} >= {"vgg19"}
    assert main(["weights", "list", "--json"]) == 0
    assert any(not w["direct_download"] for w in json.loads(capsys.readouterr().out)["weights"])
    out = tmp_path / "d"
    assert main(["-q", "synth", "--out", str(out), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["-q", "dataset", "check", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["train"]["problems"] == [] and document["test"]["pairs"] == 4
    result = tmp_path / "r.png"
    assert main(["-q", "tryon", "--person", str(sample_path("person_back.jpg")), "--garment",
                 str(sample_path("garment_tee_back.jpg")), "--out", str(result), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["result"] == str(result.resolve()) and document["view"] == "back"
    assert document["category"] == "upper" and not document["category_given"]
    assert document["guidance"]["view"]["seen"] == "back" and document["seconds"]
    assert main(["-q", "eval", "--engine", "warp", "--data", str(out), "--out", str(tmp_path / "e"), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["protocol"]["samples"] == 4 and document["summary"]["all"]["samples"] == 4


def test_train_settings_add_up_over_repeated_set_options():
    from fitroom.cli import build_parser

    args = build_parser().parse_args(["train", "condition", "--set", "steps=3", "lr=2e-4", "--set", "batch_size=2"])
    assert args.set == ["steps=3", "lr=2e-4", "batch_size=2"]
