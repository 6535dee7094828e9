"""Plug-ins added from outside fitroom's files: an engine, a network with a training stage, and a checkpoint
converter, each registered here and used through the command line as a user would."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fitroom import imaging
from fitroom.cli import main
from fitroom.converters import CONVERTERS, Converter, Option
from fitroom.demo import sample_path
from fitroom.engines import ENGINES, register_engine
from fitroom.inputs import TryOnResult
from fitroom.models import MODELS, register_model
from fitroom.models.io import load_pretrained, save_pretrained
from fitroom.training.tasks import TASKS, TrainingTask


class MirrorEngine:
    """Returns the person photo mirrored: a plug-in engine that needs no weights."""

    def __call__(self, inputs):
        return TryOnResult(image=np.ascontiguousarray(inputs.person[:, ::-1]), engine=self.name)


class TinyNet(nn.Module):
    """A one-layer network: agnostic person -> person."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.width = width
        self.conv = nn.Conv2d(3, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))

    def config_dict(self) -> dict:
        return {"width": self.width}


class ReconstructStage(TrainingTask):
    """A training stage: TinyNet learns the person from the agnostic person, L1."""

    defaults = {"model": "test_plugin_tiny", "discriminator": "", "lr": 1e-3, "lr_discriminator": 0.0,
                "betas": (0.9, 0.999), "steps": 2, "lr_decay_steps": 0, "loss_weights": {"l1": 1.0}}
    size_multiple = 16

    def __init__(self, config) -> None:
        super().__init__(config)
        from fitroom.models import create_model

        self.generator = create_model(config.model)

    def inputs(self, batch):
        return {"x": batch["agnostic"], "target": batch["person"]}

    def generator_losses(self, x):
        x["fake"] = self.generator(x["x"])
        loss = F.l1_loss(x["fake"], x["target"])
        return loss, {"l1": float(loss.detach())}

    def predict(self, generator, x):
        return generator(x["x"]), x["target"]

    def sample_rows(self, x):
        return [x["x"], x["fake"].detach(), x["target"]]

    def export(self, generator, out):
        save_pretrained(generator, out / "model", self.config.model)


def convert_tiny(out, source):
    """A converter: a plain torch file of TinyNet's state dict -> a model folder."""
    model = TinyNet()
    model.load_state_dict(torch.load(source, weights_only=True), strict=True)
    return {"model": save_pretrained(model, out, "test_plugin_tiny")}


@pytest.fixture
def plugins():
    register_engine("test_mirror")(MirrorEngine)
    register_model("test_plugin_tiny")(TinyNet)
    TASKS.register("test_reconstruct")(ReconstructStage)
    CONVERTERS.register("test_tiny")(Converter(help="a TinyNet state dict", run=convert_tiny,
                                              options=(Option("--source", "the .pt file", required=True),)))
    yield
    ENGINES.unregister("test_mirror")
    MODELS.unregister("test_plugin_tiny")
    TASKS.unregister("test_reconstruct")
    CONVERTERS.unregister("test_tiny")


def test_an_engine_plug_in_runs_through_fitroom_tryon(plugins, tmp_path):
    out = tmp_path / "mirror.png"
    person = str(sample_path("person_front.jpg"))
    assert main(["-q", "tryon", "--person", person, "--garment", str(sample_path("garment_tee_front.jpg")),
                 "--engine", "test_mirror", "--out", str(out)]) == 0
    np.testing.assert_array_equal(imaging.load_image(out), imaging.load_image(person)[:, ::-1])


def test_a_training_stage_plug_in_trains_through_fitroom_train(plugins, tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["-q", "synth", "--out", str(data), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    assert main(["-q", "train", "test_reconstruct", "--set", f"data={data}", f"out={run}", "size=[64, 48]",
                 "batch_size=1", "validate_every=1"]) == 0
    model = load_pretrained(run / "model")
    assert isinstance(model, TinyNet)
    assert (run / "step_2.pt").is_file() and "validation_ssim" in (run / "log.jsonl").read_text()


def test_a_converter_plug_in_runs_through_fitroom_convert(plugins, tmp_path):
    source = tmp_path / "tiny.pt"
    torch.manual_seed(1)
    original = TinyNet()
    torch.save(original.state_dict(), source)
    assert main(["-q", "convert", "test_tiny", "--source", str(source), "--out", str(tmp_path / "folder")]) == 0
    loaded = load_pretrained(tmp_path / "folder")
    assert torch.equal(loaded.conv.weight, original.conv.weight)
