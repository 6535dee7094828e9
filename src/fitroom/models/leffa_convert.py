"""Published Leffa checkpoints (``virtual_tryon.pth``, ``virtual_tryon_dc.pth``, ``pose_transfer.pth``) -> a
fitroom Leffa folder, and that folder -> the networks (``fitroom convert leffa``).

A published file is one flat state dict of the whole model with three prefixes: ``unet.`` (the generative UNet),
``unet_encoder.`` (the reference UNet) and ``vae.`` (the autoencoder); the base model's folder
(``stable-diffusion-inpainting`` for try-on, ``stable-diffusion-xl-1.0-inpainting-0.1`` for pose transfer) gives
the configurations (``unet/config.json``, ``vae/config.json``, ``scheduler/scheduler_config.json``); none of its
weights are used. The file is read with ``torch.load(weights_only=True)`` and every part is loaded strictly: a
missing, unexpected or mis-shaped tensor is an error that names it.

The fitroom folder holds the parts ``unet/``, ``reference_unet/``, ``vae/`` (diffusers folders: ``config.json`` and
safetensors weights) and ``scheduler/`` (its configuration), listed in ``parts.json`` with the model's task (try-on
or pose transfer). The ``diffusion`` training stage writes the same layout (without ``vae/`` for a pixel-space
model).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fitroom.errors import ConfigurationError, InputError, MissingWeightsError
from fitroom.models.io import PARTS, check_state, read_checkpoint, write_parts_index
from fitroom.models.leffa import LeffaConfig, LeffaUNets, PixelSpace

PREFIXES = {"unet.": "generative UNet", "unet_encoder.": "reference UNet", "vae.": "VAE"}
SOURCE = "the Hugging Face repository franciszzj/Leffa"


def _config(base: Path, relative: str) -> dict:
    path = base / relative
    if not path.is_file():
        raise MissingWeightsError(f"{path} not found: --base is the base model's folder from {SOURCE} "
                                  f"(stable-diffusion-inpainting for try-on, stable-diffusion-xl-1.0-inpainting-0.1 "
                                  f"for pose transfer), holding unet/, vae/ and scheduler/ configurations")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error})") from None


def split_state(state: dict[str, torch.Tensor], source: str) -> dict[str, dict[str, torch.Tensor]]:
    """The published flat state dict, split by its ``unet.`` / ``unet_encoder.`` / ``vae.`` prefixes."""
    parts: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in PREFIXES}
    stray = []
    for key, value in state.items():
        # "unet_encoder." before "unet.": the longer prefix decides
        prefix = next((p for p in sorted(PREFIXES, key=len, reverse=True) if key.startswith(p)), None)
        if prefix is None:
            stray.append(key)
        else:
            parts[prefix][key[len(prefix):]] = value
    if stray:
        raise InputError(f"{source}: {len(stray)} tensors outside unet., unet_encoder. and vae. (e.g. {stray[0]}); "
                         f"is this a Leffa checkpoint?")
    empty = [PREFIXES[p] for p, values in parts.items() if not values]
    if empty:
        raise InputError(f"{source}: no {', no '.join(empty)} tensors; is this a Leffa checkpoint?")
    return parts


def convert_leffa(out: str | Path, checkpoint: str | Path, base: str | Path) -> dict[str, Path]:
    """Convert a published checkpoint with its base model's configurations into a fitroom Leffa folder."""
    from diffusers import AutoencoderKL

    base, out = Path(base or ""), Path(out)
    if not base.is_dir():
        raise MissingWeightsError(f"the base model folder {base} does not exist: give --base, the base model's "
                                  f"folder from {SOURCE}")
    unet_config = _config(base, "unet/config.json")
    vae_config = _config(base, "vae/config.json")
    scheduler_config = _config(base, "scheduler/scheduler_config.json")
    state = read_checkpoint(checkpoint, f"The Leffa checkpoints are published in {SOURCE} (virtual_tryon.pth, "
                                        f"virtual_tryon_dc.pth, pose_transfer.pth).")
    parts = split_state(state, str(checkpoint))
    try:
        unets = LeffaUNets(LeffaConfig(unet=unet_config))
        vae = AutoencoderKL.from_config({k: v for k, v in vae_config.items() if not k.startswith("_")})
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{base}: the configurations do not build a UNet and a VAE ({error})") from None
    for prefix, module in (("unet.", unets.unet), ("unet_encoder.", unets.unet_encoder), ("vae.", vae)):
        check_state(module, parts[prefix], f"{checkpoint} ({PREFIXES[prefix]}, {prefix}*)")
        module.load_state_dict(parts[prefix], strict=True)
    task = "pose" if "pose" in Path(checkpoint).name or unet_config.get("addition_embed_type") == "text_time" \
        else "tryon"
    return save_leffa(out, unets, vae, scheduler_config, task=task, mask="whole" if task == "pose" else "garment")


def save_leffa(out: str | Path, unets: LeffaUNets, vae, scheduler_config: dict, task: str = "tryon",
               mask: str = "garment", size: list[int] | None = None) -> dict[str, Path]:
    """Write a Leffa folder: ``unet/``, ``reference_unet/``, ``vae/`` (none for a pixel-space model) and
    ``scheduler/``, listed in ``parts.json`` with the ``task`` (``tryon`` or ``pose``) and, for pose transfer, what
    the ``mask`` regenerates (``whole``: the whole picture, as the published model; ``person``: the person's area,
    the background kept) and the ``size`` ``[H, W]`` a model was trained at (the engines' default working size)."""
    from diffusers import DDPMScheduler

    out = Path(out)
    written = {"unet": out / "unet", "reference_unet": out / "reference_unet", "scheduler": out / "scheduler"}
    unets.unet.save_pretrained(written["unet"], safe_serialization=True)
    unets.unet_encoder.save_pretrained(written["reference_unet"], safe_serialization=True)
    if vae is not None and not isinstance(vae, PixelSpace):
        written["vae"] = out / "vae"
        vae.save_pretrained(written["vae"], safe_serialization=True)
    DDPMScheduler.from_config(scheduler_config).save_pretrained(written["scheduler"])
    write_parts_index(out, "leffa", {name: None for name in written}, task=task, mask=mask,
                      **({"size": size} if size else {}))
    return written


def _check_folder(folder: Path) -> None:
    """A :class:`MissingWeightsError` naming what a Leffa folder lacks."""
    missing = [p for p in ("unet", "reference_unet", "scheduler") if not (folder / p).is_dir()]
    if missing or not (folder / PARTS).is_file():
        raise MissingWeightsError(f"{folder} is not a Leffa folder (missing {', '.join(missing) or PARTS}): make one "
                                  f"with `fitroom convert leffa --checkpoint FILE.pth --base DIR --out DIR`")


def leffa_meta(folder: str | Path) -> dict:
    """``{"task": "tryon" | "pose", "mask": ..., "size": [H, W] | None}`` of a Leffa folder, read without loading
    its weights (folders written before the fields existed are try-on folders)."""
    folder = Path(folder)
    _check_folder(folder)
    listed = json.loads((folder / PARTS).read_text())
    return {"task": listed.get("task", "tryon"), "mask": listed.get("mask", "garment"), "size": listed.get("size")}


def load_leffa(folder: str | Path) -> tuple[LeffaUNets, object, object]:
    """``(unets, vae, scheduler)`` from a folder :func:`convert_leffa` wrote."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    folder = Path(folder)
    _check_folder(folder)
    generative = UNet2DConditionModel.from_pretrained(folder / "unet")
    reference = UNet2DConditionModel.from_pretrained(folder / "reference_unet")
    config = {k: v for k, v in generative.config.items() if not k.startswith("_")}
    unets = LeffaUNets(LeffaConfig(unet=config, generative_in_channels=generative.config.in_channels,
                                   reference_in_channels=reference.config.in_channels))
    unets.unet.load_state_dict(generative.state_dict(), strict=True)
    unets.unet_encoder.load_state_dict(reference.state_dict(), strict=True)
    if (folder / "vae").is_dir():
        vae = AutoencoderKL.from_pretrained(folder / "vae").eval()
    elif generative.config.out_channels == 3 and reference.config.in_channels == 3:
        vae = PixelSpace()  # trained by fitroom in pixel space: there is no VAE
    else:
        raise MissingWeightsError(f"{folder / 'vae'} not found: a Leffa folder of a latent-space model holds its "
                                  f"VAE (make the folder with `fitroom convert leffa`)")
    return unets.eval(), vae, DDPMScheduler.from_pretrained(folder / "scheduler")
