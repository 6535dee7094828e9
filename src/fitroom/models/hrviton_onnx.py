"""HR-VITON in ONNX: export :class:`~fitroom.models.hrviton.HrvitonTryOn` and run it with ONNX Runtime.

The exported graph is the whole try-on module (condition generator, condition aligning, full-size warp with
occlusion removal, SPADE generator) at one working size and batch 1, from
:meth:`~fitroom.models.hrviton.HrvitonTryOn.exportable`: spectral norms folded, and **without SPADE's noise** (ONNX
Runtime's random numbers could not match torch's anyway), so its picture is the noise-free one. Inputs and outputs
are those of ``HrvitonTryOn.forward``:

* inputs ``garment`` ``(1, 3, H, W)``, ``garment_mask`` ``(1, 1, H, W)``, ``parse_agnostic`` ``(1, H, W)`` int64,
  ``dense`` and ``agnostic`` ``(1, 3, H, W)``, ``view`` ``(1,)`` int64; images in [-1, 1];
* outputs ``seg7`` ``(1, 7, H, W)``, ``layout13`` ``(1, H, W)`` int64, ``warped_cloth`` ``(1, 3, H, W)``,
  ``warped_mask`` ``(1, 1, H, W)``, ``image`` ``(1, 3, H, W)``.

Needs the ``onnx`` extra (``pip install fitroom[onnx]``: onnx, onnxscript for torch's exporter, onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from fitroom.errors import ConfigurationError, InputError
from fitroom.files import written_at_once

logger = logging.getLogger(__name__)

INPUTS = ("garment", "garment_mask", "parse_agnostic", "dense", "agnostic", "view")
OUTPUTS = ("seg7", "layout13", "warped_cloth", "warped_mask", "image")
EXTRA = "ONNX needs the onnx extra: pip install 'fitroom[onnx]' (onnx, onnxscript and onnxruntime)"


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigurationError(f"{', '.join(missing)} not installed: {EXTRA}")


def example_inputs(size: tuple[int, int], view_input: bool = True) -> tuple[torch.Tensor, ...]:
    """Placeholder inputs of the right shapes and types for ``size = (H, W)`` (batch 1), in :data:`INPUTS` order."""
    height, width = size
    image = torch.zeros(1, 3, height, width)
    return (image, torch.zeros(1, 1, height, width), torch.zeros(1, height, width, dtype=torch.long), image.clone(),
            image.clone(), torch.zeros(1, dtype=torch.long))


def fingerprint(model: torch.nn.Module, size: tuple[int, int]) -> str:
    """A short hash of ``model``'s weights, the size and the torch version: the name of its cached export."""
    digest = hashlib.sha256(f"{tuple(size)} {torch.__version__}".encode())
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def export_onnx(model: torch.nn.Module, size: tuple[int, int], path: str | Path) -> Path:
    """Write ``model`` (an :class:`~fitroom.models.hrviton.HrvitonTryOn`) at ``size = (H, W)`` to ``path`` (one
    self-contained .onnx file, written beside and then renamed, so a killed export leaves no half file), with the
    size and fitroom's input/output names in its metadata."""
    _require("onnx", "onnxscript")
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    exportable = model.exportable()
    start = time.perf_counter()
    program = torch.onnx.export(exportable, example_inputs(size, model.view_input), input_names=list(INPUTS),
                                output_names=list(OUTPUTS), dynamo=True, verbose=False)
    proto = program.model_proto
    for key, value in {"fitroom.size": json.dumps(list(size)), "fitroom.view_input": json.dumps(model.view_input),
                       "fitroom.noise": "none"}.items():
        proto.metadata_props.add(key=key, value=value)
    with written_at_once(path) as partial:
        onnx.save_model(proto, str(partial))
    logger.info("exported HR-VITON at %dx%d to %s in %.1f s", size[0], size[1], path, time.perf_counter() - start)
    return path


class OnnxTryOn:
    """Runs an exported HR-VITON with ONNX Runtime on the CPU; called like ``HrvitonTryOn`` (batch 1, at the
    exported size), returning the same dict of tensors.

    Args:
        path: the .onnx file of :func:`export_onnx`.
        threads: ONNX Runtime's intra-op threads (default: torch's thread count).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        _require("onnxruntime")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for unreadable or truncated files
            raise InputError(f"{path} is not a readable ONNX model ({error}); export it again with "
                             f"`fitroom export-onnx`") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "fitroom.size" not in meta:
            raise InputError(f"{path} is an ONNX model but not one exported by fitroom (no fitroom.size in its "
                             f"metadata)")
        self.size = tuple(json.loads(meta["fitroom.size"]))
        self.view_input = json.loads(meta.get("fitroom.view_input", "false"))

    def __call__(self, garment: torch.Tensor, garment_mask: torch.Tensor, parse_agnostic: torch.Tensor,
                 dense: torch.Tensor, agnostic: torch.Tensor, view: torch.Tensor) -> dict[str, torch.Tensor]:
        values = (garment, garment_mask, parse_agnostic, dense, agnostic, view)
        if tuple(garment.shape[-2:]) != self.size or garment.shape[0] != 1:
            raise InputError(f"this ONNX model was exported for 1 picture at {self.size[0]}x{self.size[1]}, got "
                             f"{garment.shape[0]} at {garment.shape[-2]}x{garment.shape[-1]}")
        feed = {name: value.detach().cpu().contiguous().numpy() for name, value in zip(INPUTS, values)}
        outputs = self.session.run(list(OUTPUTS), feed)
        return {name: torch.from_numpy(value) for name, value in zip(OUTPUTS, outputs)}
