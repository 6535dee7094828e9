"""HR-VITON networks: official-checkpoint parity, conversion, and the usual model tests at tiny size."""

import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from fitroom.cli import main
from fitroom.models import create_model
from fitroom.models.hrviton import choose_upsampling
from fitroom.models.hrviton_convert import convert_hrviton, read_checkpoint
from fitroom.models.io import load_pretrained, save_pretrained

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "hrviton" / "parity-tiny.pt"
if not FIXTURE.is_file():  # CI clones the project with shared/ beside it; a checkout may hold it inside
    FIXTURE = Path(__file__).resolve().parents[1] / "shared" / "reference" / "hrviton" / "parity-tiny.pt"


@pytest.fixture(scope="module")
def reference() -> Path:
    """The folder of HR-VITON reference facts; CI has shared/ beside the checkout, so its absence is a failure."""
    if not FIXTURE.is_file():
        pytest.fail(f"the parity fixture {FIXTURE} is missing (it comes with shared/reference/hrviton)")
    return FIXTURE.parent


@pytest.fixture(scope="module")
def fixture(reference):
    return torch.load(reference / "parity-tiny.pt", weights_only=True)


class Payload:
    """An object that is not plain tensors: ``weights_only`` loading must refuse to unpickle it."""


def _released_generator_names(state: dict) -> dict:
    """The key spelling of the released gen.pth: a ``.Spade`` level inside every norm."""
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) > 2 and parts[1].startswith("norm_"):
            parts.insert(2, "Spade")
        renamed["module." + ".".join(parts)] = value
    return renamed


def test_parity_through_the_converter(fixture, tmp_path):
    """The official networks' outputs, reproduced from official-layout state dicts (max |diff| < 1e-4)."""
    torch.save(fixture["condition_generator"], tmp_path / "mtviton.pth")
    torch.save({"state_dict": _released_generator_names(fixture["generator"])}, tmp_path / "gen.pth")
    assert main(["-q", "convert", "hrviton", "--condition-generator", str(tmp_path / "mtviton.pth"),
                 "--generator", str(tmp_path / "gen.pth"), "--out", str(tmp_path / "out")]) == 0
    condition = load_pretrained(tmp_path / "out" / "condition_generator")
    generator = load_pretrained(tmp_path / "out" / "generator")
    t = fixture["tensors"]
    with torch.no_grad():
        flows, seg, warped_cloth, warped_mask = condition(t["tocg_input1"], t["tocg_input2"])
        image = generator(t["gen_input"], t["gen_seg"])
    for i, flow in enumerate(flows):
        assert (flow - t[f"tocg_flow_{i}"]).abs().max() < 1e-4, i
    for ours, key in ((seg, "tocg_seg"), (warped_cloth, "tocg_warped_cloth"), (warped_mask, "tocg_warped_mask"),
                      (image, "gen_image")):
        assert ours.shape == t[key].shape
        assert (ours - t[key]).abs().max() < 1e-4, key
    assert generator.config.ngf == fixture["config"]["generator_ngf"]
    assert generator.config.num_upsampling_layers == fixture["config"]["num_upsampling_layers"]


def test_converter_refuses_what_it_cannot_load(fixture, tmp_path):
    state = dict(fixture["condition_generator"])
    del state["flow_conv.4.bias"]
    torch.save(state, tmp_path / "damaged.pth")
    with pytest.raises(ValueError, match="1 missing.*flow_conv.4.bias"):
        convert_hrviton(tmp_path / "damaged.pth", None, tmp_path / "out")
    good = tmp_path / "good.pth"
    torch.save(fixture["condition_generator"], good)
    (tmp_path / "half.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="is the file complete"):
        read_checkpoint(tmp_path / "half.pth")
    with pytest.raises(FileNotFoundError, match="HR-VITON"):
        read_checkpoint(tmp_path / "missing.pth")

    torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": Payload()}, tmp_path / "code.pth")
    with pytest.raises(ValueError, match="cannot read"):
        read_checkpoint(tmp_path / "code.pth")


def test_official_sizes_match_the_reference_parameter_counts(reference):
    condition = create_model("hrviton_condition")
    assert sum(p.numel() for p in condition.parameters()) == 47_431_697
    keys = reference / "generator.keys.tsv"
    names = {line.split("\t")[0] for line in keys.read_text().splitlines() if line.strip()}
    assert set(create_model("hrviton_generator").state_dict()) == names


@pytest.mark.parametrize("name", ["test_hrviton_condition", "test_hrviton_generator"])
def test_tiny_models_forward_backward_and_round_trip(name, tmp_path):
    torch.manual_seed(0)
    model = create_model(name).train()
    if name == "test_hrviton_condition":
        inputs = (torch.randn(2, 4, 64, 64), torch.randn(2, 16, 64, 64))
        flows, seg, cloth, mask = model(*inputs)
        assert seg.shape == (2, 13, 64, 64) and (seg >= 0).all() and flows[-1].shape == (2, 32, 32, 2)
        loss = seg.mean() + cloth.mean() + mask.mean() + sum(f.mean() for f in flows)
    else:
        inputs = (torch.randn(2, 9, 128, 64), torch.rand(2, 7, 128, 64))
        out = model(*inputs)
        assert out.shape == (2, 3, 128, 64) and out.abs().max() <= 1
        loss = out.mean()
    loss.backward()
    # the official architecture has parameters its forward never reads: the person-stream laterals (conv2) with
    # warp_feature "T1", and conv_7 unless there are 7 up-samplings; they stay for checkpoint compatibility
    unused = {n for n, p in model.named_parameters() if p.grad is None}
    expected = {n for n, _ in model.named_parameters() if n.startswith("conv2.")} if "condition" in name else \
        {"conv_7.weight", "conv_7.bias"}
    assert unused == expected
    model.eval()
    save_pretrained(model, tmp_path / "m", name)
    loaded = load_pretrained(tmp_path / "m")
    with torch.no_grad():
        first, second = model(*inputs), loaded(*inputs)
    first = first[1] if isinstance(first, tuple) else first
    second = second[1] if isinstance(second, tuple) else second
    torch.testing.assert_close(first, second)


def test_upsampling_depth_follows_the_size():
    assert choose_upsampling(256, 192) == "more" and choose_upsampling(1024, 768) == "most"
    assert choose_upsampling(512, 384) == "most"
    with pytest.raises(ValueError, match="multiples of 64"):
        choose_upsampling(250, 190)
    generator = create_model("test_hrviton_generator", num_upsampling_layers="most")
    with pytest.raises(ValueError, match="multiples of 128"):
        generator(torch.randn(1, 9, 256, 192), torch.rand(1, 7, 256, 192))


def test_hrviton_engine_from_a_converted_checkpoint(fixture, tmp_path, astronaut):
    """The tiny official-layout checkpoint, converted, runs through `fitroom tryon --engine hrviton`."""
    from fitroom import imaging
    from fitroom.demo import sample_path

    torch.save(fixture["condition_generator"], tmp_path / "mtviton.pth")
    torch.save(fixture["generator"], tmp_path / "gen.pth")
    convert_hrviton(tmp_path / "mtviton.pth", tmp_path / "gen.pth", tmp_path / "ckpt")
    out = tmp_path / "result.png"
    assert main(["-q", "tryon", "--person", str(sample_path("person_front.jpg")), "--garment",
                 str(sample_path("garment_tee_front.jpg")), "--out", str(out), "--engine", "hrviton",
                 "--checkpoint", str(tmp_path / "ckpt"), "--device", "cpu"]) == 0
    result = imaging.load_image(out)
    assert result.shape == imaging.load_image(sample_path("person_front.jpg")).shape
    from fitroom.engines import create_engine

    # --device auto (the default) picks the accelerator where there is one
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    engine = create_engine("hrviton", checkpoint=tmp_path / "ckpt", device="auto")
    assert engine.device.type == expected
    assert next(engine.generator.parameters()).device.type == expected
    assert result.std() > 1  # random tiny weights draw noise, but something was drawn
    with pytest.raises(FileNotFoundError, match="fitroom convert hrviton"):
        from fitroom.engines import create_engine

        create_engine("hrviton", checkpoint=tmp_path / "nowhere")


def test_hrviton_engine_steps_on_synthetic_inputs():
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.engines import create_engine
    from fitroom.inputs import InputsError, TryOnInputs
    from fitroom.labels import DENSE_COLORMAP
    from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic

    torch.manual_seed(0)
    spec = sample_spec(3, 1)
    render = render_person(spec.person, spec.garment, "front", (256, 192))
    garment, mask = render_garment(spec.garment, "front", (256, 192))
    inputs = TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints,
                         parse=render.parse, dense=DENSE_COLORMAP[render.dense],
                         agnostic=agnostic_person(render.image, render.parse, render.keypoints),
                         parse_agnostic=parse_agnostic(render.parse, render.keypoints))
    engine = create_engine("hrviton", condition_generator=create_model("test_hrviton_condition"),
                           generator=create_model("test_hrviton_generator"))
    result = engine(inputs)
    assert result.image.shape == (256, 192, 3) and result.warped_mask.shape == (256, 192)
    assert set(result.timings) == {"inputs", "condition and warp", "generator", "output"}
    assert result.extras["layout13"].max() < 13
    with pytest.raises(InputsError, match="needs dense"):
        engine(inputs.replace(dense=None))


def test_the_try_on_module_is_what_the_engine_runs_and_it_exports(tmp_path):
    """HrvitonTryOn: one module from input tensors to the try-on; the engine's result is its output; without noise
    it is a function of its inputs, and torch.export reproduces it."""
    from fitroom.data.synthetic import render_garment, render_person, sample_spec
    from fitroom.engines import create_engine
    from fitroom.inputs import TryOnInputs
    from fitroom.labels import DENSE_COLORMAP
    from fitroom.models.hrviton import HrvitonTryOn
    from fitroom.models.hrviton_onnx import batched
    from fitroom.preprocess.agnostic import agnostic_person, parse_agnostic

    torch.manual_seed(0)
    condition, generator = create_model("test_hrviton_condition"), create_model("test_hrviton_generator")
    for module in generator.modules():  # non-zero noise scales, so that noise would show
        if hasattr(module, "noise_scale"):
            torch.nn.init.normal_(module.noise_scale, std=0.5)
    module = HrvitonTryOn(condition, generator).eval()
    spec = sample_spec(3, 1)
    render = render_person(spec.person, spec.garment, "back", (256, 192))
    garment, mask = render_garment(spec.garment, "back", (256, 192))
    inputs = TryOnInputs(person=render.image, garment=garment, garment_mask=mask, keypoints=render.keypoints,
                         parse=render.parse, dense=DENSE_COLORMAP[render.dense],
                         agnostic=agnostic_person(render.image, render.parse, render.keypoints),
                         parse_agnostic=parse_agnostic(render.parse, render.keypoints), view="back")
    args = batched(inputs.to_tensors((256, 192)))
    with torch.no_grad():
        noisy = [module(*args)["image"] for _ in range(2)]
        assert not torch.equal(noisy[0], noisy[1])  # SPADE noise
        module.set_noise(False)
        quiet = module(*args)["image"]
        assert torch.equal(quiet, module(*args)["image"])
    engine = create_engine("hrviton", condition_generator=condition, generator=generator, size=(256, 192))
    engine.model.set_noise(False)
    result = engine(inputs.replace(keep=None))
    from fitroom import imaging

    # the engine runs the prepared generator (fused, channels-last): float rounding may move a grey level
    difference = np.abs(result.image.astype(int) - imaging.tensor_to_image(quiet[0]).astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    assert result.extras["precision"] == "fp32"
    exported = torch.export.export(module.exportable(), args)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(*args)["image"], quiet, atol=1e-5, rtol=0)


def test_the_prepared_condition_generator_computes_the_same_function():
    """prepare_condition_generator (batch norms folded into the convolutions): the same flows, layout and warped
    cloth as the trained network in eval mode, within 1e-4, with batch norms whose statistics are not the identity;
    the original is left untouched and keeps its norms."""
    from fitroom.models.hrviton import prepare_condition_generator

    torch.manual_seed(0)
    network = create_model("test_hrviton_condition")
    network.train()
    with torch.no_grad():  # training-mode passes give the batch norms running statistics of their own
        for _ in range(3):
            network(torch.rand(2, 4, 128, 96), torch.rand(2, network.config.pose_channels, 128, 96))
    network.eval()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    prepared = prepare_condition_generator(network)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in network.modules())
    cloth, pose = torch.rand(1, 4, 128, 96), torch.rand(1, network.config.pose_channels, 128, 96)
    with torch.no_grad():
        expected, got = network(cloth, pose), prepared(cloth, pose)
    for want, have in zip([*expected[0], *expected[1:]], [*got[0], *got[1:]]):
        torch.testing.assert_close(have, want, atol=1e-4, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())


@pytest.mark.parametrize("layers", ["more", "most"])
def test_the_prepared_generator_computes_the_same_function(layers):
    """prepare_generator (spectral norms folded, SPADE convolutions fused, channels-last): the same output as the
    trained generator, noise included (drawn in the same order), within 1e-4; the original is left untouched."""
    from fitroom.models.hrviton import FusedSPADEResBlock, prepare_generator

    torch.manual_seed(0)
    generator = create_model("test_hrviton_generator", num_upsampling_layers=layers, ngf=8, spade_hidden=16)
    for module in generator.modules():
        if hasattr(module, "noise_scale"):
            torch.nn.init.normal_(module.noise_scale, std=0.5)
    generator.train()
    with torch.no_grad():  # a few training-mode passes move the spectral norms' vectors away from their start
        for _ in range(3):
            generator(torch.randn(1, 9, 256, 256), torch.rand(1, 7, 256, 256))
    generator.eval()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    prepared = prepare_generator(generator)
    assert any(isinstance(m, FusedSPADEResBlock) for m in prepared.modules())
    assert not any(hasattr(m, "weight_orig") for m in prepared.modules())
    height, width = (256, 192) if layers == "more" else (512, 384)
    x = torch.randn(2, 9, height, width)
    seg = torch.nn.functional.one_hot(torch.randint(0, 7, (2, height, width)), 7).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        torch.manual_seed(7)
        expected = generator(x, seg)
        torch.manual_seed(7)
        got = prepared(x, seg)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())


def test_engine_precision_auto_tries_the_faster_profiles_on_the_first_picture_and_says_what_it_chose(
        caplog, tmp_path, monkeypatch):
    """precision auto: the first picture is made in float32 (and returned) and in each faster profile this machine
    has (bf16 where native, then onnxruntime on the CPU); the first that keeps SSIM >= the bar is kept and named in
    the log and the results. With runtime torch and no native bf16 it is float32 at once. bf16 itself runs anywhere;
    an unknown precision is refused in one sentence."""
    import logging

    from fitroom.bench import rendered_inputs
    from fitroom.devices import native_bf16
    from fitroom.engines import create_engine
    from fitroom.engines.hrviton import AUTO_MIN_SSIM
    from fitroom.errors import ConfigurationError

    monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path))
    torch.manual_seed(0)
    networks = {"condition_generator": create_model("test_hrviton_condition").eval(),
                "generator": create_model("test_hrviton_generator").eval()}
    inputs = rendered_inputs((256, 192))
    exact = create_engine("hrviton", size=(256, 192), **networks)
    torch.manual_seed(3)
    reference = exact(inputs).image
    with caplog.at_level(logging.INFO, logger="fitroom.engines.hrviton"):
        auto = create_engine("hrviton", size=(256, 192), precision="auto", **networks)
        torch.manual_seed(3)
        first = auto(inputs)
    np.testing.assert_array_equal(first.image, reference)  # the first picture is float32's
    chosen = (first.extras["precision"], first.extras["runtime"])
    assert chosen in {("fp32", "torch"), ("bf16", "torch"), ("int8", "onnxruntime"), ("fp32", "onnxruntime")}
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("precision auto:"))
    assert f"the bar is {AUTO_MIN_SSIM:.2f}" in line
    scores = {name: float(value) for name, value in re.findall(r"(bf16|int8|onnxruntime) ([0-9.]+)", line)}
    assert ("bf16" in scores) == native_bf16("cpu")
    passed = [name for name in ("bf16", "int8", "onnxruntime") if scores.get(name, 0) >= AUTO_MIN_SSIM]
    expected = {"bf16": ("bf16", "torch"), "int8": ("int8", "onnxruntime"), "onnxruntime": ("fp32", "onnxruntime")}
    assert chosen == (expected[passed[0]] if passed else ("fp32", "torch"))
    assert scores.get("onnxruntime", 1.0) > 0.999  # the same float32 function, without noise
    later = auto(inputs)
    assert (later.extras["precision"], later.extras["runtime"]) == chosen
    if "int8" in scores:  # int8 was tried, so its copy is cached: another engine's auto judges that copy, unmade
        made = "quantizing the image generator to int8"
        assert made in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="fitroom.engines.hrviton"):
            create_engine("hrviton", size=(256, 192), precision="auto", **networks)(rendered_inputs((256, 192), 2))
        assert made not in caplog.text and "int8 " in caplog.text
    if not native_bf16("cpu"):  # an int8 copy that cannot be made: the next profile, the try-on unharmed
        from fitroom.engines.hrviton import HrvitonEngine

        def broken(self, full, view):
            raise RuntimeError("out of memory")

        monkeypatch.setattr(HrvitonEngine, "_int8_for_auto", broken)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="fitroom.engines.hrviton"):
            fallback = create_engine("hrviton", size=(256, 192), precision="auto", **networks)(inputs)
        assert (fallback.extras["precision"], fallback.extras["runtime"]) == ("fp32", "onnxruntime")
        assert "int8 could not be made (out of memory)" in caplog.text and "int8 failed, onnxruntime 1.0" in caplog.text
        # with too little memory free to calibrate (and no int8 copy cached yet), int8 is not tried
        import psutil

        monkeypatch.undo()
        monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path / "empty"))
        monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(available=10 ** 6))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="fitroom.engines.hrviton"):
            short = create_engine("hrviton", size=(256, 192), precision="auto", **networks)(inputs)
        assert (short.extras["precision"], short.extras["runtime"]) == ("fp32", "onnxruntime")
        assert "int8 not tried: calibrating it at 256x192 needs about 1.0 GB of memory and 0.0 GB" in caplog.text
        assert not list((tmp_path / "empty").glob("*-int8-*.onnx"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fitroom.engines.hrviton"):
        plain = create_engine("hrviton", size=(256, 192), precision="auto", runtime="torch", **networks)
    if not native_bf16("cpu"):
        assert plain.precision == "fp32" and "not native" in caplog.text
    torch.manual_seed(3)
    lowered = create_engine("hrviton", size=(256, 192), precision="bf16", **networks)(inputs)
    assert lowered.extras["precision"] == "bf16" and lowered.image.shape == reference.shape
    # bf16 is the image generator's: the condition generator's warp and layout stay float32's, bit for bit
    np.testing.assert_array_equal(lowered.warped_garment, first.warped_garment)
    np.testing.assert_array_equal(lowered.extras["layout13"], first.extras["layout13"])
    np.testing.assert_array_equal(lowered.warped_mask, first.warped_mask)
    assert not np.array_equal(lowered.image, reference)
    with pytest.raises(ConfigurationError, match="precision must be one of"):
        create_engine("hrviton", size=(256, 192), precision="int4", **networks)


def test_onnx_export_runs_in_onnxruntime_like_torch(tmp_path, monkeypatch, caplog):
    """HrvitonTryOn exported to ONNX and run by onnxruntime gives torch's noise-free outputs (image within float32
    rounding, same layout); the engine's onnxruntime runtime exports once per weights and size, then reuses the file; a
    truncated file and a wrong size are refused in one sentence."""
    import logging

    from fitroom.bench import rendered_inputs
    from fitroom.engines import create_engine
    from fitroom.errors import InputError
    from fitroom.models.hrviton import HrvitonTryOn
    from fitroom.models.hrviton_onnx import OnnxTryOn, batched, export_onnx

    torch.manual_seed(0)
    condition = create_model("test_hrviton_condition").eval()
    generator = create_model("test_hrviton_generator").eval()
    for module in generator.modules():
        if hasattr(module, "noise_scale"):
            torch.nn.init.normal_(module.noise_scale, std=0.5)
    module = HrvitonTryOn(condition, generator).eval()
    inputs = rendered_inputs((256, 192))
    args = batched(inputs.to_tensors((256, 192)))
    path = export_onnx(module, (256, 192), tmp_path / "hrviton.onnx")
    assert not list(tmp_path.glob("*.partial"))
    runner = OnnxTryOn(path, threads=1)
    assert runner.size == (256, 192)
    with torch.no_grad():
        expected = module.set_noise(False)(*args)
    got = runner(*args)
    difference = (got["image"] - expected["image"]).abs()
    assert difference.max() < 5e-4 and difference.mean() < 1e-5  # float32 rounding of random weights
    assert (got["layout13"] == expected["layout13"]).float().mean() > 0.999
    with pytest.raises(InputError, match="exported for 1 picture at 256x192"):
        runner(*(a[..., :128, :96] if a.ndim > 1 else a for a in args))
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError, match="not a readable ONNX model"):
        OnnxTryOn(tmp_path / "cut.onnx")

    monkeypatch.setenv("FITROOM_ONNX_CACHE", str(tmp_path / "cache"))
    module.set_noise(True)
    networks = {"condition_generator": condition, "generator": generator, "size": (256, 192)}
    with caplog.at_level(logging.INFO, logger="fitroom"):
        engine = create_engine("hrviton", runtime="onnxruntime", **networks)
    assert "exporting the networks to ONNX" in caplog.text and len(list((tmp_path / "cache").glob("*.onnx"))) == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fitroom"):
        again = create_engine("hrviton", runtime="onnxruntime", **networks)
    assert "exporting" not in caplog.text
    cached = next((tmp_path / "cache").glob("*.onnx"))
    cached.write_bytes(cached.read_bytes()[:3000])  # damaged on disk: exported again, with a warning
    with caplog.at_level(logging.INFO, logger="fitroom"):
        create_engine("hrviton", runtime="onnxruntime", **networks)
    assert "cannot be read; exporting again" in caplog.text and cached.stat().st_size > 3000
    exact = create_engine("hrviton", **networks)
    exact.model.set_noise(False)
    plain = inputs.replace(keep=None)
    difference = np.abs(engine(plain).image.astype(int) - exact(plain).image.astype(int))
    assert difference.max() <= 1
    np.testing.assert_array_equal(again(plain).image, engine(plain).image)
    with pytest.raises(Exception, match="takes neither precision bf16 nor compile"):
        create_engine("hrviton", runtime="onnxruntime", precision="bf16", **networks)


def test_export_onnx_command_writes_a_file_onnxruntime_runs(tmp_path):
    import subprocess
    import sys

    from fitroom.models.hrviton_onnx import OnnxTryOn

    torch.manual_seed(0)
    for name in ("condition_generator", "generator"):
        save_pretrained(create_model(f"test_hrviton_{name.split('_')[0]}"), tmp_path / "ckpt" / name,
                        f"test_hrviton_{name.split('_')[0]}")
    command = [sys.executable, "-m", "fitroom.cli", "export-onnx", "--checkpoint", str(tmp_path / "ckpt"),
               "--size", "128x64", "--out", str(tmp_path / "m.onnx"), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["size"] == [128, 64]
    assert OnnxTryOn(tmp_path / "m.onnx").size == (128, 64)
    done = subprocess.run(command[:5] + [str(tmp_path / "nothing")] + command[6:], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr and "nothing" in done.stderr


def test_a_batch_of_try_ons_is_each_one_alone():
    """HrvitonEngine.batch (a catalogue's garments through the networks together) gives each picture as a call on
    its own would (noise off; within a grey level of float rounding)."""
    from fitroom.bench import rendered_inputs
    from fitroom.data.synthetic import render_garment, sample_spec
    from fitroom.engines import create_engine

    torch.manual_seed(0)
    engine = create_engine("hrviton", condition_generator=create_model("test_hrviton_condition").eval(),
                           generator=create_model("test_hrviton_generator").eval(), size=(256, 192))
    engine.model.set_noise(False)
    person = rendered_inputs((256, 192))
    many = []
    for seed in range(3):
        garment, mask = render_garment(sample_spec(seed, 2).garment, "front", (256, 192))
        many.append(person.replace(garment=garment, garment_mask=mask))
    together = engine.batch(many)
    assert len(together) == 3 and not np.array_equal(together[0].image, together[1].image)
    for inputs, result in zip(many, together):
        alone = engine(inputs)
        assert np.abs(alone.image.astype(int) - result.image.astype(int)).max() <= 1
        np.testing.assert_array_equal(alone.warped_mask, result.warped_mask)


def _compiled_and_exact(monkeypatch=None):
    """The tiny-network engine with ``compile=True`` and without (noise off); with ``monkeypatch``, torch.compile
    runs dynamo's eager backend instead of inductor (the engine's compiled path in seconds)."""
    from fitroom.bench import rendered_inputs
    from fitroom.engines import create_engine

    if monkeypatch is not None:
        real = torch.compile
        monkeypatch.setattr(torch, "compile", lambda module, **options: real(module, backend="eager"))
    torch.manual_seed(0)
    networks = {"condition_generator": create_model("test_hrviton_condition").eval(),
                "generator": create_model("test_hrviton_generator").eval(), "size": (128, 64)}
    exact = create_engine("hrviton", **networks)
    compiled = create_engine("hrviton", compile=True, **networks)
    for engine in (exact, compiled):
        engine.model.set_noise(False)
    return compiled, exact, rendered_inputs((128, 64)).replace(keep=None)


def test_compiled_engine_runs_the_generator_compiled_and_both_networks_under_bf16(monkeypatch):
    """``compile=True``: in float32 the image generator runs compiled and the condition generator does not (its
    compiled warp is not exact enough); under bf16 both do (dynamo's eager backend here, so it takes seconds; the
    slow test below compiles with inductor); the float32 picture is the uncompiled engine's."""
    compiled, exact, inputs = _compiled_and_exact(monkeypatch)
    calls = []
    for name in ("compiled", "compiled_condition"):
        original = getattr(compiled, name).forward
        getattr(compiled, name).forward = lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k)
    np.testing.assert_array_equal(compiled(inputs).image, exact(inputs).image)
    assert calls == ["compiled"] and compiled.compiled._orig_mod is compiled.model.generator
    calls.clear()
    compiled.precision = "bf16"
    compiled(inputs)
    assert calls == ["compiled_condition", "compiled"]


@pytest.mark.slow
def test_compiled_engine_freezes_the_generator_and_draws_the_same_picture():
    """With inductor and frozen weights (what ``compile=True`` does), the float32 picture is the uncompiled
    engine's within float rounding (tiny random networks, noise off)."""
    compiled, exact, inputs = _compiled_and_exact()
    difference = np.abs(compiled(inputs).image.astype(int) - exact(inputs).image.astype(int))
    assert difference.max() <= 1
