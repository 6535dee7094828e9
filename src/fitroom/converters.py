"""``fitroom convert FAMILY``: published checkpoints -> fitroom model folders, one converter per family.

A converter is a :class:`Converter` registered in :data:`CONVERTERS`: its name (the command's ``FAMILY``), the
files it reads (each becomes a ``--option``), and the function that writes the model folder(s), named as
``"module:function"`` so that listing the converters (``fitroom convert --help``) imports no network code. Built in:
``hrviton`` (the released ``mtviton.pth`` and ``gen.pth``) and ``schp`` (a released SCHP ``.pth``). Another package
adds one through the entry-point group ``fitroom.converters``, or in-process with ``CONVERTERS.register(name)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fitroom.registry import Registry


@dataclass(frozen=True)
class Option:
    """One command-line option of a converter: ``--flag VALUE``."""

    flag: str  # e.g. "--condition-generator"
    help: str
    required: bool = False
    choices: tuple[str, ...] | None = None
    default: str | None = None

    @property
    def keyword(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Converter:
    """A family's converter: ``convert(out=DIR, **options) -> {part: folder}``.

    ``run`` is the function or ``"module:function"``; it writes one model folder per part under ``out``.
    """

    help: str
    run: str | Callable[..., dict[str, Path]]
    options: tuple[Option, ...] = field(default_factory=tuple)

    def __call__(self, out: str | Path, **options) -> dict[str, Path]:
        function = self.run
        if isinstance(function, str):
            module, _, name = function.partition(":")
            function = getattr(importlib.import_module(module), name)
        return function(out=out, **options)


#: every converter by family name
CONVERTERS: Registry[Converter] = Registry("converters", builtin=("fitroom.converters",), noun="converter family")

CONVERTERS.register("hrviton")(Converter(
    help="official HR-VITON mtviton.pth and gen.pth -> condition_generator/ and generator/",
    run="fitroom.models.hrviton_convert:convert_hrviton",
    options=(Option("--condition-generator", "the released condition generator (mtviton.pth)"),
             Option("--generator", "the released image generator (gen.pth)"))))

CONVERTERS.register("schp")(Converter(
    help="a released SCHP checkpoint (exp-schp-*-lip.pth or -atr.pth) -> a model folder for --parser schp",
    run="fitroom.models.schp_convert:convert_schp",
    options=(Option("--checkpoint", "the released .pth file", required=True),
             Option("--dataset", "the label set it was trained on", choices=("lip", "atr"), default="lip"))))

CONVERTERS.register("leffa")(Converter(
    help="a published Leffa checkpoint (virtual_tryon.pth, virtual_tryon_dc.pth, pose_transfer.pth) with its base "
         "model's folder -> unet/, reference_unet/, vae/ and scheduler/",
    run="fitroom.models.leffa_convert:convert_leffa",
    options=(Option("--checkpoint", "the published .pth file", required=True),
             Option("--base", "the base model's folder (stable-diffusion-inpainting, or "
                              "stable-diffusion-xl-1.0-inpainting-0.1 for pose transfer)", required=True))))
