"""Where fitroom looks for model weights that cannot ship inside a wheel, and what each published file is.

Weights live in one cache directory: ``$FITROOM_WEIGHTS`` if set, else ``~/.cache/fitroom/weights``. Each entry
names the published file, what uses it and where it is published, so a missing file is an error that says exactly
what to get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    used_by: str
    source: str


KNOWN_WEIGHTS: tuple[WeightFile, ...] = (
    WeightFile("vgg19", "vgg19-dcbb9e9d.pth", "VGG perceptual loss (training HR-VITON, CP-VTON)",
               "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
    WeightFile("inception-fid", "pt_inception-2015-12-05-6726825d.pth", "FID and KID",
               "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS backbone",
               "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    WeightFile("lpips-alex", "alex.pth", "LPIPS linear layers (v0.1)",
               "https://github.com/richzhang/PerceptualSimilarity (lpips/weights/v0.1/alex.pth)"),
    WeightFile("schp-lip", "exp-schp-201908261155-lip.pth", "human parsing backend 'schp' (LIP, 20 classes)",
               "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing (README model zoo)"),
    WeightFile("schp-atr", "exp-schp-201908301523-atr.pth", "human parsing backend 'schp' (ATR, 18 classes)",
               "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing (README model zoo)"),
    WeightFile("densepose", "model_final_162be9.pkl", "DensePose R50-FPN s1x (dense map backend)",
               "https://github.com/facebookresearch/detectron2/tree/main/projects/DensePose (model zoo)"),
    WeightFile("hrviton-condition", "mtviton.pth", "official HR-VITON condition generator",
               "https://github.com/sangyun884/HR-VITON (README, checkpoints)"),
    WeightFile("hrviton-generator", "gen.pth", "official HR-VITON image generator",
               "https://github.com/sangyun884/HR-VITON (README, checkpoints)"),
)


def weights_dir() -> Path:
    return Path(os.environ.get("FITROOM_WEIGHTS", Path.home() / ".cache" / "fitroom" / "weights"))


def find(name: str) -> Path | None:
    """The local path of weight ``name`` if present, else None."""
    entry = {w.name: w for w in KNOWN_WEIGHTS}[name]
    path = weights_dir() / entry.filename
    return path if path.is_file() else None
