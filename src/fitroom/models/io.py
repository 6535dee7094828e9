"""Saving and loading fitroom models: ``config.json`` beside ``model.safetensors``, loaded strictly."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from fitroom.errors import InputError, MissingWeightsError
from fitroom.files import written_at_once
from fitroom.models import create_model

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def save_pretrained(model: nn.Module, directory: str | Path, name: str) -> Path:
    """Write ``model`` (registered as ``name``, configured by its ``config_dict()``) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with written_at_once(directory / WEIGHTS) as temporary:  # a reader never sees a half-written file
        save_file(state, str(temporary))
    (directory / CONFIG).write_text(json.dumps({"model": name, "config": model.config_dict()}, indent=2) + "\n")
    return directory


def model_name(directory: str | Path) -> str:
    """The registered model name a model folder's ``config.json`` records."""
    return json.loads((Path(directory) / CONFIG).read_text())["model"]


def copy_model_folder(source: str | Path, target: str | Path) -> Path:
    """Copy a model folder (its ``config.json`` and ``model.safetensors``), the weights atomically."""
    import shutil

    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with written_at_once(target / WEIGHTS) as temporary:
        shutil.copyfile(source / WEIGHTS, temporary)
    shutil.copyfile(source / CONFIG, target / CONFIG)
    return target


def load_pretrained(directory: str | Path) -> nn.Module:
    """Build the model ``config.json`` names and load ``model.safetensors`` into it strictly.

    Raises:
        FileNotFoundError: a file is missing (the message names it).
        ValueError: the weights do not match the configuration (missing, unexpected or mis-shaped tensors).
    """
    directory = Path(directory)
    for name in (CONFIG, WEIGHTS):
        if not (directory / name).is_file():
            raise MissingWeightsError(f"{directory / name} not found; a model folder holds {CONFIG} and {WEIGHTS} "
                                    f"(made by `fitroom train` or `fitroom convert`)")
    meta = json.loads((directory / CONFIG).read_text())
    model = create_model(meta["model"], **meta.get("config", {}))
    try:
        state = load_file(str(directory / WEIGHTS))
    except Exception as error:
        raise ValueError(f"{directory / WEIGHTS}: cannot read the weights ({error}); is the file complete?") from None
    check_state(model, state, str(directory / WEIGHTS))
    model.load_state_dict(state, strict=True)
    return model.eval()


def read_checkpoint(path: str | Path, missing: str) -> dict[str, torch.Tensor]:
    """The state dict of a published ``.pth`` (bare or under ``state_dict``), read with ``weights_only=True``;
    a DataParallel ``module.`` prefix is removed.

    Raises:
        FileNotFoundError: with ``missing`` (where to get the file) appended.
        ValueError: the file is unreadable (half-written, or not plain tensors) or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path} not found. {missing}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickled code, not a torch file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: cannot read the checkpoint ({reason}); is the file complete, and a plain "
                         f"tensor file?") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: no state dict of tensors inside")
    return {key.removeprefix("module."): value for key, value in state.items()}


def check_state(model: nn.Module, state: dict, source: str) -> None:
    """Raise ``ValueError`` naming what differs between ``model``'s parameters and ``state``."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise ValueError(f"{source}: {len(missing)} missing {missing[:3]}, {len(unexpected)} unexpected "
                         f"{unexpected[:3]}, {len(wrong)} of the wrong shape {wrong[:3]}")


#: the index of a folder of several parts (e.g. ``condition_generator/`` and ``generator/``, or ``unet/``,
#: ``reference_unet/``, ``vae/``, ``scheduler/``): ``{"pipeline": NAME, "parts": {part: model name or null}}``
PARTS = "parts.json"


def write_parts_index(directory: str | Path, pipeline: str, parts: dict[str, str | None], **fields) -> Path:
    """Record which parts a multi-part folder holds (``None``: a part that is not a network, e.g. a scheduler's
    configuration, read by its owner), and the pipeline's own ``fields``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / PARTS).write_text(json.dumps({"pipeline": pipeline, "parts": parts, **fields}, indent=2) + "\n")
    return directory


def part_categories(directory: str | Path, parts: tuple[str, ...]) -> frozenset[str] | None:
    """The garment categories every one of ``parts`` of a multi-part folder was trained on (their ``config.json``'s
    ``categories``, tops when a folder predates the field), or with per-view folders (``front/``, ``back/``) those
    of all views; None when the folder holds none of them. Reads no weights."""
    directory = Path(directory)
    folders = [directory] + [p for p in sorted(directory.glob("*")) if p.is_dir() and p.name in ("front", "back")]
    found = []
    for folder in folders:
        configs = [folder / part / CONFIG for part in parts]
        if all(c.is_file() for c in configs):
            found += [set(json.loads(c.read_text()).get("config", {}).get("categories", ["upper"])) for c in configs]
    return frozenset(set.intersection(*found)) if found else None


def load_parts(directory: str | Path, required: tuple[str, ...] = (), how_to_get: str = "") -> dict[str, nn.Module]:
    """Every network part of a multi-part folder, by part name, each loaded strictly (:func:`load_pretrained`).

    The parts are those ``parts.json`` lists, or, in a folder written before the index existed, every sub-folder
    holding a ``config.json``. A missing ``required`` part is a :class:`~fitroom.errors.MissingWeightsError` that
    names it, with ``how_to_get`` appended.
    """
    directory = Path(directory)
    if (directory / PARTS).is_file():
        listed = json.loads((directory / PARTS).read_text()).get("parts", {})
        names = [name for name, model in listed.items() if model is not None]
    else:
        names = sorted(p.name for p in directory.iterdir() if (p / CONFIG).is_file()) if directory.is_dir() else []
    missing = [name for name in required if name not in names or not (directory / name / CONFIG).is_file()]
    if missing:
        found = ", ".join(str(directory / m) for m in missing)
        raise MissingWeightsError(f"{found} not found" + (f": {how_to_get}" if how_to_get else ""))
    return {name: load_pretrained(directory / name) for name in names}
