"""Released SCHP checkpoints (``exp-schp-201908261155-lip.pth``, ``exp-schp-201908301523-atr.pth``) -> fitroom's
SCHP network, and -> a fitroom model folder (``fitroom convert schp``).

The files hold ``{"state_dict": {"module.<name>": tensor}}`` (or a bare state dict); they are read with
``torch.load(weights_only=True)`` and loaded strictly, so a half-written file or another layout is refused with the
differences named.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fitroom.models import create_model
from fitroom.models.io import check_state, read_checkpoint, save_pretrained
from fitroom.weights import entry, weights_dir


def load_schp_checkpoint(path: str | Path, dataset: str = "lip", model_name: str | None = None) -> torch.nn.Module:
    """Load a released SCHP checkpoint into the network ``model_name`` (default ``schp_<dataset>``).

    Raises:
        MissingWeightsError: the file is missing (the message says where to get it).
        ValueError: the file is unreadable (e.g. half-downloaded) or not in the published layout.
    """
    known = entry(f"schp-{dataset}")
    state = read_checkpoint(path, f"SCHP {dataset.upper()} weights: download {known.filename} from {known.source} "
                                  f"and put it in {weights_dir()} (or pass its path).")
    model = create_model(model_name or f"schp_{dataset}")
    check_state(model, state, f"{path} (the published SCHP-{dataset.upper()} layout)")
    model.load_state_dict(state, strict=True)
    return model.eval()


def convert_schp(out: str | Path, checkpoint: str | Path, dataset: str = "lip",
                 model_name: str | None = None) -> dict[str, Path]:
    """Write the released checkpoint as a model folder at ``out`` (``--parser schp`` takes it as ``weights``)."""
    name = model_name or f"schp_{dataset}"
    model = load_schp_checkpoint(checkpoint, dataset, name)
    return {"parser": save_pretrained(model, out, name)}
