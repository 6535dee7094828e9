"""Where fitroom looks for model weights that cannot ship inside a wheel, and what each published file is.

Weights live in one cache directory: ``$FITROOM_WEIGHTS`` if set, else ``~/.cache/fitroom/weights``. Each entry
names the published file, what uses it and where it is published, so a missing file is an error that says exactly
what to get.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fitroom.errors import InputError, MissingWeightsError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    used_by: str
    source: str  # where it is published: a direct download URL, or a page to get it from by hand
    #: the start of the file's sha256 where it is published (torch hub files carry it in their names)
    sha256_prefix: str = ""
    #: whether ``source`` is the file itself (``fitroom weights fetch`` downloads it) rather than a page about it
    direct: bool = True


KNOWN_WEIGHTS: tuple[WeightFile, ...] = (
    WeightFile("vgg19", "vgg19-dcbb9e9d.pth", "VGG perceptual loss (training HR-VITON, CP-VTON)",
               "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    # torch-fidelity's port of the TensorFlow FID Inception graph (the features clean-fid also reproduces); its
    # release does not publish a hash, so none is checked
    WeightFile("inception-fid", "weights-inception-2015-12-05-6726825d.pth", "FID and KID (Inception-v3 pool)",
               "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth"),
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", "LPIPS backbone (torchvision AlexNet)",
               "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),
    WeightFile("schp-lip", "exp-schp-201908261155-lip.pth", "human parsing backend 'schp' (LIP, 20 classes)",
               "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing (README model zoo)", direct=False),
    WeightFile("schp-atr", "exp-schp-201908301523-atr.pth", "human parsing backend 'schp' (ATR, 18 classes)",
               "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing (README model zoo)", direct=False),
    WeightFile("densepose", "model_final_162be9.pkl", "DensePose R50-FPN s1x (dense map backend)",
               "https://github.com/facebookresearch/detectron2/tree/main/projects/DensePose (model zoo)", direct=False),
    WeightFile("hrviton-condition", "mtviton.pth", "official HR-VITON condition generator",
               "https://github.com/sangyun884/HR-VITON (README, checkpoints)", direct=False),
    WeightFile("hrviton-generator", "gen.pth", "official HR-VITON image generator",
               "https://github.com/sangyun884/HR-VITON (README, checkpoints)", direct=False),
)


def weights_dir() -> Path:
    return Path(os.environ.get("FITROOM_WEIGHTS", Path.home() / ".cache" / "fitroom" / "weights"))


def entry(name: str) -> WeightFile:
    """The known weight file called ``name`` (ValueError listing the names otherwise)."""
    known = {w.name: w for w in KNOWN_WEIGHTS}
    if name not in known:
        raise InputError(f"unknown weights {name!r}; known: {', '.join(known)}")
    return known[name]


def find(name: str) -> Path | None:
    """The local path of weight ``name`` if present, else None."""
    path = weights_dir() / entry(name).filename
    return path if path.is_file() else None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(known: WeightFile, path: Path) -> str:
    """The file's sha256, after checking it against the published prefix (ValueError on a mismatch)."""
    digest = sha256(path)
    if known.sha256_prefix and not digest.startswith(known.sha256_prefix):
        raise InputError(f"{path} has sha256 {digest}, but the published {known.filename} starts with "
                         f"{known.sha256_prefix}: the file is damaged or a different one")
    return digest


def import_file(name: str, source: str | Path) -> Path:
    """Copy a file obtained elsewhere into the cache under its published name, after checking it."""
    known = entry(name)
    source = Path(source)
    if not source.is_file():
        raise InputError(f"{source} not found")
    digest = verify(known, source)
    if source.suffix in (".pth", ".pt"):
        import torch

        try:
            torch.load(source, map_location="cpu", weights_only=True)
        except Exception as error:
            raise InputError(f"{source} is not a loadable tensor file ({error})") from None
    target = weights_dir() / known.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".partial")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    logger.info("%s -> %s (sha256 %s)", source, target, digest)
    return target


def fetch(name: str, timeout: float = 30.0) -> Path:
    """Download the published file into the cache, check it, and move it in place atomically."""
    known = entry(name)
    if not known.direct:
        raise MissingWeightsError(f"{known.filename} has no direct download: get it from {known.source}, then run "
                                  f"`fitroom weights import {name} FILE`")
    target = weights_dir() / known.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(known.source, timeout=timeout) as response, open(temporary, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with tqdm(total=total, unit="B", unit_scale=True, desc=known.filename) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as error:
        temporary.unlink(missing_ok=True)
        raise MissingWeightsError(f"could not download {known.source} ({error}); download it where a network is "
                                  f"available and run `fitroom weights import {name} FILE`") from None
    try:
        verify(known, temporary)
    except ValueError:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)
    return target
