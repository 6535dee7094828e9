import numpy as np
import pytest
import torch

from fitroom.labels import ATR_TO_CIHP, LIP_TO_CIHP, Cihp
from fitroom.models import available_models, create_model
from fitroom.preprocess.parsing import create_parser
from fitroom.preprocess.schp import SchpParser, load_schp_checkpoint


def _published_style(model: torch.nn.Module) -> dict:
    """A checkpoint as SCHP's training script saves it: DataParallel names under "state_dict"."""
    return {"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 149}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_model("test_schp").eval()
    for module in model.modules():  # non-trivial statistics, so a wrong load would show
        if hasattr(module, "running_var"):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def test_registry_has_real_and_tiny_variants():
    assert {"schp_lip", "schp_atr", "test_schp"} <= set(available_models())


def test_forward_backward_shapes(tiny):
    x = torch.randn(1, 3, 96, 96)
    out = tiny(x)
    assert out.fusion.shape == (1, 20, 24, 24) and out.edge.shape == (1, 2, 24, 24)
    assert torch.isfinite(out.fusion).all()
    model = create_model("test_schp").train()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        tiny(torch.randn(1, 1, 64, 64))


def test_published_layout_round_trip(tiny, tmp_path):
    path = tmp_path / "schp.pth"
    torch.save(_published_style(tiny), path)
    loaded = load_schp_checkpoint(path, "lip", model_name="test_schp")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).fusion, tiny(x).fusion, atol=0, rtol=0)


def test_the_schp_converter_writes_a_model_folder_the_parser_loads(tiny, tmp_path):
    from fitroom.converters import CONVERTERS

    path = tmp_path / "schp.pth"
    torch.save(_published_style(tiny), path)
    written = CONVERTERS.get("schp")(out=tmp_path / "folder", checkpoint=path, dataset="lip", model_name="test_schp")
    parser = SchpParser(weights=written["parser"], dataset="lip")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(parser.model(x).fusion, tiny(x).fusion, atol=0, rtol=0)


def test_checkpoint_errors_are_plain(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="exp-schp-201908261155-lip.pth"):
        load_schp_checkpoint(tmp_path / "missing.pth", "lip")
    good = tmp_path / "good.pth"
    torch.save(_published_style(tiny), good)
    half = tmp_path / "half.pth"
    half.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="is the file complete"):
        load_schp_checkpoint(half, "lip", model_name="test_schp")
    checkpoint = _published_style(tiny)
    del checkpoint["state_dict"]["module.fushion.3.weight"]
    damaged = tmp_path / "damaged.pth"
    torch.save(checkpoint, damaged)
    with pytest.raises(ValueError, match="1 missing.*fushion.3.weight"):
        load_schp_checkpoint(damaged, "lip", model_name="test_schp")
    atr_head = create_model("test_schp", classes=18)
    atr = tmp_path / "atr.pth"
    torch.save(_published_style(atr_head), atr)
    with pytest.raises(ValueError, match="wrong shape"):  # an ATR file given as LIP: 18 classes, not 20
        load_schp_checkpoint(atr, "lip", model_name="test_schp")


def test_parser_backend_runs_and_remaps(tiny):
    parser = SchpParser(model=tiny, dataset="lip")
    image = np.random.default_rng(0).integers(0, 255, (200, 150, 3), dtype=np.uint8)
    mask = np.zeros((200, 150), bool)
    mask[20:190, 40:110] = True
    labels = parser(image, np.zeros((25, 3), np.float32), mask)
    assert labels.shape == (200, 150) and labels.dtype == np.uint8 and labels.max() < 20
    assert LIP_TO_CIHP[10] == Cihp.DRESS and ATR_TO_CIHP[4] == Cihp.UPPER_CLOTHES and len(ATR_TO_CIHP) == 18


def test_missing_weights_name_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        create_parser("schp")


@pytest.mark.slow
def test_full_size_published_layout(tmp_path):
    """The real ResNet-101 configuration round-trips through a file in the published layout (260 MB)."""
    model = create_model("schp_lip").eval()
    path = tmp_path / "exp-schp-201908261155-lip.pth"
    torch.save(_published_style(model), path)
    loaded = load_schp_checkpoint(path, "lip")
    assert len(loaded.state_dict()) == 603
    x = torch.randn(1, 3, 129, 129)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).fusion, model(x).fusion)
