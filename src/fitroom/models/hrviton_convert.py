"""Official HR-VITON checkpoints -> fitroom models (safetensors + config), through one key filter each.

The released condition generator (``mtviton.pth``) uses the network's parameter names directly; the released
image generator (``gen.pth``) reaches them by replacing ``ace`` with ``alias`` and deleting ``.Spade`` in every
key (``shared/reference/hrviton/README.md``). A DataParallel ``module.`` prefix is removed from both. Files are
read with ``torch.load(weights_only=True)`` only, and loaded strictly: any missing, unexpected or mis-shaped
tensor is an error that names it. The configuration (widths, up-sampling depth) is read from the tensors' shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fitroom.models.hrviton import ConditionGenerator, ConditionGeneratorConfig, SPADEGenerator, SPADEGeneratorConfig
from fitroom.models.io import check_state, save_pretrained, write_parts_index
from fitroom.models.io import read_checkpoint as read_published


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A released HR-VITON ``.pth``'s state dict (see :func:`fitroom.models.io.read_checkpoint`)."""
    return read_published(path, "The official HR-VITON checkpoints are linked from "
                                "https://github.com/sangyun884/HR-VITON (README).")


def condition_generator_filter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(state)


def generator_filter(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key.replace("ace", "alias").replace(".Spade", ""): value for key, value in state.items()}


def condition_generator_from_state(state: dict[str, torch.Tensor], source: str = "checkpoint") -> ConditionGenerator:
    state = condition_generator_filter(state)
    if "ClothEncoder.0.scale.weight" not in state:
        raise ValueError(f"{source}: not an HR-VITON condition generator (no ClothEncoder.0.scale.weight)")
    first = state["ClothEncoder.0.scale.weight"]
    config = ConditionGeneratorConfig(cloth_channels=first.shape[1], ngf=first.shape[0],
                                      pose_channels=state["PoseEncoder.0.scale.weight"].shape[1],
                                      parse_classes=state["out_layer.scale.weight"].shape[0])
    model = ConditionGenerator(config)
    check_state(model, state, source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def generator_from_state(state: dict[str, torch.Tensor], source: str = "checkpoint") -> SPADEGenerator:
    state = generator_filter(state)
    if "conv_0.weight" not in state or "head_0.norm_0.conv_shared.0.weight" not in state:
        raise ValueError(f"{source}: not an HR-VITON SPADE generator (no conv_0 / head_0 weights)")
    config = SPADEGeneratorConfig(
        input_channels=state["conv_0.weight"].shape[1], ngf=state["conv_0.weight"].shape[0] // 16,
        semantic_channels=state["head_0.norm_0.conv_shared.0.weight"].shape[1],
        num_upsampling_layers="most" if any(k.startswith("up_4.") for k in state) else "more")
    model = SPADEGenerator(config)
    check_state(model, state, source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def convert_hrviton(condition_generator: str | Path | None, generator: str | Path | None, out: str | Path
                    ) -> dict[str, Path]:
    """Convert the released files; writes ``OUT/condition_generator`` and ``OUT/generator`` model folders."""
    out = Path(out)
    written = {}
    if condition_generator is not None:
        model = condition_generator_from_state(read_checkpoint(condition_generator), str(condition_generator))
        written["condition_generator"] = save_pretrained(model, out / "condition_generator", "hrviton_condition")
    if generator is not None:
        model = generator_from_state(read_checkpoint(generator), str(generator))
        written["generator"] = save_pretrained(model, out / "generator", "hrviton_generator")
    if not written:
        raise ValueError("give --condition-generator, --generator or both")
    write_parts_index(out, "hrviton", {"condition_generator": "hrviton_condition", "generator": "hrviton_generator"})
    return written
