"""The trainer: accumulation, bf16 autocast, checkpoints and exact resume, on a tiny model and synthetic data."""

import pytest
import torch

from fitroom.training.config import load_config
from fitroom.training.trainer import Trainer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("train") / "data"
    synthesize(SynthConfig(out=out, count=6, size=(128, 96), seed=5, workers=1), progress=False)
    return out


def _config(data, out, **changes):
    settings = [f"data={data}", f"out={out}", "size=[128, 96]", "model=test_hrviton_condition", "batch_size=2",
                "grad_accum=4", "mixed_precision=bf16", "steps=30", "checkpoint_every=10", "validate_every=15",
                "loss_weights.vgg=0", "log_every=5", "seed=3"]
    settings += [f"{k}={v}" for k, v in changes.items()]
    return load_config(None, settings)


def test_killed_and_resumed_run_ends_with_the_same_weights(data, tmp_path):
    straight = Trainer(_config(data, tmp_path / "straight"), progress=False)
    straight.run()
    interrupted = Trainer(_config(data, tmp_path / "resumed"), progress=False)
    interrupted.run(until=20)  # "killed" after step 20: a new trainer picks the run folder up
    del interrupted
    resumed = Trainer(_config(data, tmp_path / "resumed"), progress=False)
    assert resumed.step == 20
    resumed.run()
    assert resumed.step == straight.step == 30
    for a, b in zip(straight.task.generator.state_dict().values(), resumed.task.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(straight.task.discriminator.state_dict().values(),
                    resumed.task.discriminator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [p.name for p in resumed.checkpoints()] == ["step_10.pt", "step_20.pt", "step_30.pt"]
    assert (tmp_path / "resumed" / "config.yaml").is_file() and (tmp_path / "resumed" / "tensorboard").is_dir()


def test_a_damaged_last_checkpoint_falls_back(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "run", steps=20), progress=False)
    trainer.run()
    last = trainer.checkpoints()[-1]
    last.write_bytes(last.read_bytes()[:1000])  # half-written
    again = Trainer(_config(data, tmp_path / "run", steps=20), progress=False)
    assert again.step == 10


def test_non_finite_losses_skip_the_step(data, tmp_path):
    trainer = Trainer(_config(data, tmp_path / "nan", steps=2, grad_accum=1, mixed_precision="no"), progress=False)
    before = [p.detach().clone() for p in trainer.task.generator.parameters()]
    original = trainer.task.generator_losses

    def poisoned(x):
        loss, parts = original(x)
        return loss * float("nan"), parts

    trainer.task.generator_losses = poisoned
    trainer.run(until=1)
    assert trainer.skipped == 1 and trainer.step == 1
    for a, b in zip(before, trainer.task.generator.parameters()):
        torch.testing.assert_close(a, b.detach())


def test_config_errors_are_plain(data):
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(None, ["nonsense=1"])
    with pytest.raises(ValueError, match="multiples of 32"):
        load_config(None, ["size=[100, 75]"])
    with pytest.raises(ValueError, match="fp16 mixed precision needs a GPU"):
        Trainer(load_config(None, [f"data={data}", "mixed_precision=fp16", "model=test_hrviton_condition",
                                   "size=[128, 96]", "batch_size=2"]), progress=False)
