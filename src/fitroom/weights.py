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
from fitroom.files import written_at_once

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
    #: a Hugging Face repository holding ``filename`` (and ``extra``): fetched with the hash the hub publishes
    hub: str = ""
    #: other files of the repository needed beside it (e.g. a base model's configurations)
    extra: tuple[str, ...] = ()
    #: the converter family (``fitroom convert FAMILY``) that turns the fetched files into a model folder
    convert: str = ""


def _base_configs(folder: str) -> tuple[str, ...]:
    return tuple(f"{folder}/{part}" for part in ("unet/config.json", "vae/config.json",
                                                  "scheduler/scheduler_config.json"))


_SD15 = _base_configs("stable-diffusion-inpainting")
_SDXL = _base_configs("stable-diffusion-xl-1.0-inpainting-0.1")

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
    # Leffa (the diffusion engine): the published checkpoints and the base models' configurations, from one hub
    # repository; fetching converts them into a model folder named like the entry
    WeightFile("leffa-tryon", "virtual_tryon.pth", "diffusion engine: Leffa try-on (VITON-HD)",
               "https://huggingface.co/franciszzj/Leffa", hub="franciszzj/Leffa", extra=_SD15, convert="leffa"),
    WeightFile("leffa-tryon-dc", "virtual_tryon_dc.pth", "diffusion engine: Leffa try-on (DressCode)",
               "https://huggingface.co/franciszzj/Leffa", hub="franciszzj/Leffa", extra=_SD15, convert="leffa"),
    WeightFile("leffa-pose", "pose_transfer.pth", "Leffa pose transfer (SDXL layout)",
               "https://huggingface.co/franciszzj/Leffa", hub="franciszzj/Leffa", extra=_SDXL, convert="leffa"),
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
    """The local path of weight ``name`` if present, else None (for an entry that is converted after fetching, the
    converted model folder)."""
    known = entry(name)
    if known.convert:
        folder = weights_dir() / known.name
        return folder if (folder / "parts.json").is_file() else None
    path = weights_dir() / known.filename
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
    with written_at_once(target) as temporary:
        shutil.copyfile(source, temporary)
    logger.info("%s -> %s (sha256 %s)", source, target, digest)
    return target


def hub_folder(name: str) -> Path:
    """Where the files of hub entry ``name`` are fetched to (its repository's layout kept)."""
    return weights_dir() / f"{name}-files"


def _hub_hashes(repo: str, timeout: float) -> dict[str, tuple[str, str]]:
    """``{path: (kind, hash)}`` of every file of a hub repository's main branch: ``("sha256", oid)`` for a large
    (LFS) file, ``("git", blob sha1)`` for a small one."""
    import json

    url = f"https://huggingface.co/api/models/{repo}/tree/main?recursive=true"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            listing = json.loads(response.read().decode())
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise MissingWeightsError(f"could not read the file list of {repo} from {url} ({error}); download the "
                                  f"files where the hub can be reached and run `fitroom weights import`") from None
    return {item["path"]: ("sha256", item["lfs"]["oid"]) if item.get("lfs") else ("git", item.get("oid", ""))
            for item in listing if item.get("type") == "file"}


def _matches(kind: str, expected: str, path: Path) -> bool:
    if kind == "sha256":
        return sha256(path) == expected
    data = path.read_bytes()  # a small file: git's blob hash
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == expected


def _download(url: str, target: Path, timeout: float, label: str, advice: str, check=None) -> None:
    """``url`` -> ``target`` through a ``.partial`` file, with a progress bar; ``check(partial)`` runs before the
    file is moved in place (whatever it raises, the partial file is deleted first), so nothing half-trusted is
    ever left under the target's name."""
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    with written_at_once(target) as temporary:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(temporary, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=label) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError) as error:
            raise MissingWeightsError(f"could not download {url} ({error}); {advice}") from None
        if check is not None:
            check(temporary)


def fetch_hub(name: str, timeout: float = 30.0) -> Path:
    """Download a hub entry's file and its ``extra`` files into :func:`hub_folder`, each checked against the hash
    the hub publishes for it (a mismatch deletes the file and is an error); files already there and matching are
    kept. Returns the main file's path."""
    known = entry(name)
    hashes = _hub_hashes(known.hub, timeout)
    folder = hub_folder(name)
    for relative in (known.filename, *known.extra):
        if relative not in hashes:
            raise MissingWeightsError(f"{known.hub} has no file {relative} (on its main branch); see {known.source}")
        kind, expected = hashes[relative]
        target = folder / relative
        if target.is_file() and _matches(kind, expected, target):
            continue
        def check(path: Path, kind: str = kind, expected: str = expected, relative: str = relative) -> None:
            if not _matches(kind, expected, path):
                raise InputError(f"{relative} from {known.hub} does not match the {kind} hash the hub publishes "
                                 f"for it ({expected}): the download is damaged; run the command again")

        _download(f"https://huggingface.co/{known.hub}/resolve/main/{relative}", target, timeout, relative,
                  f"download it where a network is available and put it in {target.parent}", check)
    return folder / known.filename


def fetch(name: str, timeout: float = 30.0) -> Path:
    """Download the published file into the cache, check it, and move it in place atomically."""
    known = entry(name)
    if known.hub:
        return fetch_hub(name, timeout)
    if not known.direct:
        raise MissingWeightsError(f"{known.filename} has no direct download: get it from {known.source}, then run "
                                  f"`fitroom weights import {name} FILE`")
    target = weights_dir() / known.filename
    _download(known.source, target, timeout, known.filename,
              f"download it where a network is available and run `fitroom weights import {name} FILE`",
              lambda path: verify(known, path))
    return target
