"""fitroom bench: the machine's figures, seconds per image, and reduced precision judged against float32."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fitroom.bench import FEATURES, bench, machine
from fitroom.errors import ConfigurationError


def test_the_machine_is_described_from_what_torch_and_the_cpu_report():
    about = machine()
    assert about["capability"] and set(about["features"]) <= set(FEATURES)
    assert isinstance(about["native_bf16"], bool) and about["threads"] >= 1



@pytest.mark.parametrize("limit, native", [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", None),
                                           ("AVX512_CORE_AMX", None), ("ALL", None)])
def test_bf16_is_not_native_where_onednn_is_held_below_it(monkeypatch, limit, native):
    from fitroom.devices import native_bf16

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    hardware = native_bf16("cpu")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
    assert native_bf16("cpu") is (hardware if native is None else native)

def test_float32_is_its_own_reference_and_bf16_is_measured_against_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path))
    exact = bench("hrviton", (128, 64), "fp32", runs=1, networks="test")
    assert exact["precision"] == "fp32" and exact["weights"] == "random"
    assert exact["max_abs_diff_vs_fp32"] == 0.0 and exact["ssim_vs_fp32"] == pytest.approx(1.0)
    assert exact["seconds"] > 0 and exact["gflop"] > 0 and exact["gflops_per_s"] > 0
    assert set(exact["seconds_by_step"]) >= {"condition and warp", "generator"}
    assert exact["matmul_gflops"] > 0 and exact["conv3x3_gflops"] > 0
    low = bench("hrviton", (128, 64), "bf16", runs=1, networks="test")
    assert low["precision"] == "bf16" and 0 <= low["max_abs_diff_vs_fp32"] <= 1 and 0 < low["ssim_vs_fp32"] <= 1
    picked = bench("hrviton", (128, 64), "auto", runs=1, networks="test")
    assert (picked["precision"], picked["runtime"]) in {("bf16", "torch"), ("int8", "onnxruntime"),
                                                        ("fp32", "onnxruntime"), ("fp32", "torch")}
    if not machine()["native_bf16"]:
        assert picked["precision"] != "bf16"
    assert picked["first_seconds"] > 0
    with pytest.raises(ConfigurationError, match="multiples of 64"):
        bench("hrviton", (100, 60), "fp32", runs=1, networks="test")


def test_the_command_prints_one_json_object_or_plain_lines():
    command = [sys.executable, "-m", "fitroom.cli", "bench", "warp", "--size", "128x64", "--runs", "1"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["engine"] == "warp" and result["precision"] == "fp32" and result["seconds"] > 0
    text = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert text.returncode == 0 and "s per image" in text.stdout and "measured rates" in text.stdout


def test_onnxruntime_is_timed_and_judged_against_torch_float32(tmp_path, monkeypatch):
    monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path))
    result = bench("hrviton", (128, 64), "fp32", runs=1, networks="test", runtime="onnxruntime")
    assert result["runtime"] == "onnxruntime" and result["precision"] == "fp32" and result["seconds"] > 0
    assert result["ssim_vs_fp32"] > 0.999 and result["max_abs_diff_vs_fp32"] <= 2 / 255
    assert list(tmp_path.glob("hrviton-128x64-*.onnx"))


def test_int8_is_quantized_once_calibrated_elsewhere_and_judged_against_float32(tmp_path, monkeypatch, caplog,
                                                                                capsys):
    """--precision int8: the image generator's SPADE-norm convolutions quantized in onnxruntime, calibrated on
    another rendered picture than the one timed, cached under its calibration's name, judged against float32 on
    torch; the generator's residual convolutions, injections and last convolution and the condition generator stay
    float32; int8 refuses the torch runtime."""
    import ast
    import logging

    import onnx

    from fitroom.engines import create_engine
    from fitroom.models import create_model

    monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path))
    capsys.readouterr()
    with caplog.at_level(logging.INFO):  # (every logger at INFO, as the CLI's terminal)
        result = bench("hrviton", (128, 64), "int8", runs=1, networks="test")
    # the exporter's and onnxruntime's step-by-step chatter stays off the terminal (stdout, INFO logs)
    assert "Collecting tensor data" not in capsys.readouterr().out
    assert not [r for r in caplog.records if r.name.startswith(("onnxscript", "onnx_ir")) and r.levelno < 30]
    assert result["runtime"] == "onnxruntime" and result["precision"] == "int8" and result["seconds"] > 0
    assert 0.5 < result["ssim_vs_fp32"] < 1.0  # rounded, so not float32's picture, but close to it
    quantized = list(tmp_path.glob("hrviton-128x64-*-int8-*.onnx"))
    assert len(quantized) == 1 and "quantizing the image generator to int8" in caplog.text
    model = onnx.load(str(quantized[0]))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["fitroom.size"]) == [128, 64] and json.loads(meta["fitroom.precision"])["int8"] > 0
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    fed = {}  # each kind of convolution -> whether each reads int8 (dequantized) values
    for node in model.graph.node:
        if node.op_type == "Conv":
            scopes = ast.literal_eval(next(p.value for p in node.metadata_props
                                           if p.key == "pkg.torch.onnx.name_scopes"))
            role = scopes[-2].split(".")[2:3] if len(scopes) > 3 else []  # generator.up_0.<role>.N
            part = (("norm" if role[0] in ("shared", "modulation") else "block") if scopes[1] == "generator" and role
                    else "generator top" if scopes[1] == "generator" else scopes[1] if len(scopes) > 2 else "other")
            fed.setdefault(part, []).append(any(name in dequantized for name in node.input))
    assert len(fed["norm"]) >= 6 and all(fed["norm"])  # each block's shared features and gamma/beta: int8
    assert fed["block"] and not any(fed["block"])  # its residual convolutions: float32
    assert not any(fed["generator top"]) and not any(fed["condition_generator"])  # injections, conv_img: float32
    assert not any(fed.get("other", []))  # the module's own convolutions (aligning the conditions) stay float32
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fitroom"):
        again = bench("hrviton", (128, 64), "int8", runs=1, networks="test")
    assert "quantizing" not in caplog.text and again["ssim_vs_fp32"] == result["ssim_vs_fp32"]
    networks = {"condition_generator": create_model("test_hrviton_condition"),
                "generator": create_model("test_hrviton_generator"), "size": (128, 64)}
    with pytest.raises(ConfigurationError, match="int8 runs in onnxruntime"):
        create_engine("hrviton", precision="int8", runtime="torch", **networks)
    # the engine with no calibration given measures the ranges on its first picture, once; a batch runs one by one
    from fitroom.bench import rendered_inputs

    engine = create_engine("hrviton", precision="int8", **networks)
    pictures = [rendered_inputs((128, 64), variant) for variant in (0, 1)]
    results = engine.batch(pictures)
    assert [r.extras["precision"] for r in results] == ["int8", "int8"]
    assert {r.extras["runtime"] for r in results} == {"onnxruntime"}
    assert len(list(tmp_path.glob("hrviton-128x64-*-int8-*.onnx"))) == 2  # the bench's and the first picture's
    np.testing.assert_array_equal(engine(pictures[0]).image, results[0].image)
