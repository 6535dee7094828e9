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

:func:`quantize_onnx` makes an int8 copy (ONNX Runtime's static quantization of the image generator's SPADE-norm
convolutions). Needs the ``onnx`` extra (``pip install fitroom[onnx]``: onnx, onnxscript for torch's exporter,
onnxruntime).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
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
    # the exporter's graph passes log each step at INFO (hundreds of lines on a command's terminal): warnings only
    chatty = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [one.level for one in chatty]
    for one in chatty:
        one.setLevel(max(one.getEffectiveLevel(), logging.WARNING))
    try:
        program = torch.onnx.export(exportable, example_inputs(size, model.view_input), input_names=list(INPUTS),
                                    output_names=list(OUTPUTS), dynamo=True, verbose=False)
    finally:
        for one, level in zip(chatty, levels):
            one.setLevel(level)
    proto = program.model_proto
    for key, value in {"fitroom.size": json.dumps(list(size)), "fitroom.view_input": json.dumps(model.view_input),
                       "fitroom.noise": "none"}.items():
        proto.metadata_props.add(key=key, value=value)
    with written_at_once(path) as partial:
        onnx.save_model(proto, str(partial))
    logger.info("exported HR-VITON at %dx%d to %s in %.1f s", size[0], size[1], path, time.perf_counter() - start)
    return path


def batched(tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """One picture's tensors (as ``TryOnInputs.to_tensors`` makes them: no batch axis, ``view`` a scalar) as
    ``HrvitonTryOn``'s positional inputs (:data:`INPUTS`), each with a batch axis of one."""
    return tuple(tensors[name].reshape(1, *tensors[name].shape) for name in INPUTS)


def feed(tensors: dict[str, torch.Tensor]) -> dict:
    """One picture's tensors (see :func:`batched`) as an ONNX Runtime feed: batch-1 numpy arrays by input name
    (:data:`INPUTS`), e.g. for :func:`quantize_onnx`."""
    return {name: value.detach().cpu().contiguous().numpy() for name, value in zip(INPUTS, batched(tensors))}


class _Without(logging.Filter):
    """Drops the log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


#: the roles (module names inside an image-generator block) of the convolutions ``int8`` quantizes: each SPADE norm's
#: shared features and its gamma and beta, in the prepared (``shared``, ``modulation``) and the trained
#: (``conv_shared``, ``conv_gamma``, ``conv_beta``) forms; 72 % of the generator's arithmetic at full size. The
#: residual blocks' own convolutions (``conv_0``, ``conv_1``, ``conv_s``), the injections and the last convolution
#: stay float32: on a trained checkpoint (quantization simulated group by group, 8 held-out pairs) the residual ones
#: cost SSIM 0.015 (each of the three kinds about 0.005), the injections 0.002, the norms' together 0.0001.
INT8_ROLES = ("shared", "modulation", "conv_shared", "conv_gamma", "conv_beta")
#: written into the quantized file's metadata and its cache name: another choice of convolutions is another file
INT8_SCHEME = "spade-norms"


def _quantized(node) -> bool:
    """Whether an exported node is one of the image generator's SPADE-norm convolutions (:data:`INT8_ROLES`),
    from the module scopes torch's exporter writes on each node (``['', 'generator', 'generator.up_3',
    'generator.up_3.modulation.0', 'conv2d_127']``)."""
    import ast

    scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
    if scopes is None:
        return False
    try:
        names = ast.literal_eval(scopes)
    except (ValueError, SyntaxError):
        return False
    if len(names) < 4 or names[1] != "generator":
        return False
    return any(part in INT8_ROLES for part in names[-2].split(".")[2:])


def quantize_onnx(source: str | Path, path: str | Path, calibration: list[dict], percentile: float = 99.9) -> Path:
    """Write an int8 copy of the exported model ``source`` (:func:`export_onnx`) to ``path`` with ONNX Runtime's
    static quantization, in QDQ form: the image generator's SPADE-norm convolutions (:data:`INT8_ROLES`) get int8
    weights (per output channel) and uint8 activations whose ranges are the ``percentile``-th of what the
    ``calibration`` feeds (dicts of :data:`INPUTS` to numpy arrays) produce; the rest of the image generator stays
    float32 (its residual convolutions lose detail in int8). The condition generator stays float32: its flow and
    layout, rounded, move whole regions (as they did under bf16). Written beside and renamed, like the export.
    Memory: onnxruntime holds every calibration picture's measured activations at once; only the convolutions'
    inputs and outputs are measured (2.9 GB peak for the whole process with one picture at 512x384 on the trained
    test checkpoint, 4.4 GB when every tensor was), so calibrate on one or two pictures.

    Raises:
        ConfigurationError: without onnxruntime's quantization tools (the onnx extra).
        InputError: with no calibration feed.
    """
    _require("onnx", "onnxruntime")
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if not calibration:
        raise InputError("int8 needs at least one calibration picture to measure its activations' ranges on")
    source_model = onnx.load(str(source))
    chosen = [node.name for node in source_model.graph.node if node.op_type == "Conv" and _quantized(node)]

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    def quantize(partial: Path, method) -> None:
        # onnxruntime's calibrator prints its steps ("Collecting tensor data ...") on stdout, where a command's
        # output goes: kept for the debug log instead (stdout is the process's: one quantization at a time)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                quantize_static(str(source), str(partial), Feeds(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=method,
                                # (only the convolutions' tensors are measured, not every tensor of the graph)
                                op_types_to_quantize=["Conv"], nodes_to_quantize=chosen,
                                extra_options={"CalibPercentile": percentile})
        finally:
            logger.debug("onnxruntime's quantization said: %s", printed.getvalue().strip())

    path = Path(path)
    start = time.perf_counter()
    method = "percentile"
    # onnxruntime advises its pre-processing (twice, on the root logger); the graph is quantized as exported
    # because that pre-processing drops the module scopes the choice of nodes reads
    advice = _Without("Please consider")
    logging.getLogger().addFilter(advice)
    try:
        with written_at_once(path) as partial:
            try:
                quantize(partial, CalibrationMethod.Percentile)
            except ValueError as error:
                # onnxruntime's histograms (numpy's, in float32) cannot split an almost constant activation into
                # their 2048 bins ("Too many bins for data range"): its ranges are then the activations' extremes
                logger.warning("percentile calibration failed (%s); calibrating on the activations' min and max",
                               error)
                method = "minmax"
                quantize(partial, CalibrationMethod.MinMax)
            quantized = onnx.load(str(partial))
            del quantized.metadata_props[:]
            quantized.metadata_props.extend(source_model.metadata_props)
            quantized.metadata_props.add(key="fitroom.precision", value=json.dumps(
                {"int8": len(chosen), "scheme": INT8_SCHEME, "calibration": len(calibration), "ranges": method,
                 **({"percentile": percentile} if method == "percentile" else {})}))
            onnx.save_model(quantized, str(partial))
    finally:
        logging.getLogger().removeFilter(advice)
    logger.info("quantized the image generator's %d SPADE-norm convolutions to int8 (%d calibration picture(s), %s "
                "ranges) in %.1f s: %s", len(chosen), len(calibration), method, time.perf_counter() - start, path)
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
