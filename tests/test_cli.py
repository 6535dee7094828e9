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
