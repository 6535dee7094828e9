"""The package's shape: the layer contract (import-linter, configured in pyproject.toml), no import cycles, every
registry's built-in entries loadable, plug-ins added without editing fitroom, every model's tiny variant through a
save/load round trip."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_and_no_import_cycles():
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                           str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_every_model_has_a_tiny_variant_that_survives_save_and_load(tmp_path):
    from fitroom.models import MODELS, create_model
    from fitroom.models.io import load_pretrained, save_pretrained

    names = MODELS.names()
    tiny = [n for n in names if n.startswith("test_")]
    assert tiny and all(f"test_{n}" in names for n in names if not n.startswith("test_")), names
    for name in tiny:
        torch.manual_seed(0)
        model = create_model(name)
        save_pretrained(model, tmp_path / name, name)
        loaded = load_pretrained(tmp_path / name)
        assert type(loaded) is type(model)
        before, after = model.state_dict(), loaded.state_dict()
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), name


def test_every_built_in_converter_names_a_function_that_exists():
    import importlib

    from fitroom.converters import CONVERTERS

    assert {"hrviton", "schp"} <= set(CONVERTERS.names())
    for name, converter in CONVERTERS.items():
        module, _, function = converter.run.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_a_multi_part_folder_loads_its_listed_parts_and_names_a_missing_one(tmp_path):
    from fitroom.errors import MissingWeightsError
    from fitroom.models import create_model
    from fitroom.models.io import load_parts, save_pretrained, write_parts_index

    save_pretrained(create_model("test_cpvton_gmm"), tmp_path / "gmm", "test_cpvton_gmm")
    save_pretrained(create_model("test_cpvton_tom"), tmp_path / "tom", "test_cpvton_tom")
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text("{}")  # a part that is not a network
    write_parts_index(tmp_path, "test", {"gmm": "test_cpvton_gmm", "tom": "test_cpvton_tom", "scheduler": None})
    parts = load_parts(tmp_path, required=("gmm", "tom"))
    assert set(parts) == {"gmm", "tom"} and type(parts["tom"]).__name__ == "TOM"
    with pytest.raises(MissingWeightsError, match=r"unet not found: get it"):
        load_parts(tmp_path, required=("unet",), how_to_get="get it")
