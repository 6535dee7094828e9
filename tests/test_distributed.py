"""Training in several processes on the CPU (torchrun, gloo): every stage runs, the data is shared out, the
gradients are reduced once per accumulation window, and a run resumes on as many processes as it started with."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from fitroom.errors import ConfigurationError
from fitroom.training.config import load_config
from fitroom.training.trainer import ResumableSampler, Trainer

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("ddp") / "data"
    synthesize(SynthConfig(out=out, count=8, size=(128, 96), seed=4, workers=1), progress=False)
    return out


def torchrun(processes: int, stage: str, *settings: str, cwd=None) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node N -m fitroom.cli train STAGE --set ...``, its output captured."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "fitroom.cli", "train", stage, "--set", *settings]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_each_process_takes_its_own_share_of_every_epoch():
    one = ResumableSampler(10, seed=3)
    two = [ResumableSampler(10, seed=3, rank=r, world=2) for r in range(2)]
    for epoch in range(2):
        orders = [list(s) for s in two]
        assert all(len(o) == 5 for o in orders) and not set(orders[0]) & set(orders[1])
        whole = list(one)
        # the processes' first batches of 2 are the single process's first batch of 4
        assert set(orders[0][:2] + orders[1][:2]) == set(whole[:4]), epoch


def test_condition_training_on_two_processes_logs_once_and_resumes_only_on_two(data, tmp_path):
    out = tmp_path / "run"
    done = torchrun(2, "condition", f"data={data}", f"out={out}", "model=test_hrviton_condition", "size=[128,96]",
                    "loss_weights.vgg=0", "batch_size=2", "grad_accum=2", "steps=2", "checkpoint_every=2",
                    "validate_every=2", "log_every=1", "mixed_precision=no")
    assert done.stderr.count("trained to step 2") == 1  # one process speaks
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "generator" in r] == [1, 2]  # one record a step, the processes' mean
    assert (out / "model" / "model.safetensors").is_file()
    with pytest.raises(ConfigurationError, match=r"written by a run of 2 process\(es\): resume it with 2"):
        Trainer(load_config(out / "config.yaml", ["steps=3"]), progress=False)


@pytest.mark.slow
def test_every_stage_trains_and_exports_on_two_processes(data, tmp_path):
    common = [f"data={data}", "size=[128,64]", "loss_weights.vgg=0", "batch_size=2", "steps=2",
              "checkpoint_every=2", "validate_every=2", "mixed_precision=no"]
    torchrun(2, "condition", *common, f"out={tmp_path / 'c'}", "model=test_hrviton_condition")
    torchrun(2, "generator", *common, f"out={tmp_path / 'g'}", f"condition={tmp_path / 'c'}",
             "model=test_hrviton_generator")
    torchrun(2, "gmm", *common, f"out={tmp_path / 'gmm'}", "model=test_cpvton_gmm")
    torchrun(2, "tom", *common, f"out={tmp_path / 't'}", f"condition={tmp_path / 'gmm'}", "model=test_cpvton_tom")
    for folder in ("c/model", "g/hrviton/generator", "gmm/model", "t/cpvton/tom"):
        assert (tmp_path / folder / "model.safetensors").is_file(), folder


@pytest.mark.slow
def test_two_processes_of_b_take_the_step_one_process_of_2b_takes(data, tmp_path):
    """The try-on module (instance norms only, five levels so without the dropout of a sixth; its GMM frozen) after
    one step: 2 processes x batch 1 and 1 process x batch 2 see the same two samples and end with the same weights
    (Adam's first step moves each weight by the learning rate times the sign of its gradient: equal but where a
    gradient is within rounding of zero)."""
    common = [f"data={data}", "size=[128,64]", "loss_weights.vgg=0", "steps=1", "checkpoint_every=1",
              "validate_every=5", "mixed_precision=no", "seed=7"]
    torchrun(1, "gmm", *common, "batch_size=2", f"out={tmp_path / 'gmm'}", "model=test_cpvton_gmm")
    tom = [*common, f"condition={tmp_path / 'gmm'}", "model=test_cpvton_tom", "model_options={num_downs: 5}"]
    torchrun(2, "tom", *tom, "batch_size=1", f"out={tmp_path / 'two'}")
    torchrun(1, "tom", *tom, "batch_size=2", f"out={tmp_path / 'one'}")
    torchrun(1, "tom", *tom, "batch_size=1", f"out={tmp_path / 'half'}")  # the control: one sample of the two
    two, one, half = (load_file(tmp_path / run / "model" / "model.safetensors") for run in ("two", "one", "half"))
    count = sum(v.numel() for v in one.values())

    def differ(a, b) -> float:
        return sum(int(((a[k] - b[k]).abs() > 1e-6).sum()) for k in a) / count

    assert differ(one, two) < 0.005, differ(one, two)  # measured: 0.1 %
    assert differ(one, half) > 10 * max(differ(one, two), 0.001), (differ(one, half), differ(one, two))


@pytest.mark.slow
def test_a_two_process_run_killed_after_a_checkpoint_resumes_to_the_same_weights(data, tmp_path):
    common = [f"data={data}", "size=[128,96]", "model=test_hrviton_condition", "loss_weights.vgg=0",
              "batch_size=2", "grad_accum=2", "checkpoint_every=2", "validate_every=10", "mixed_precision=no"]
    torchrun(2, "condition", *common, "steps=4", f"out={tmp_path / 'whole'}")
    torchrun(2, "condition", *common, "steps=2", f"out={tmp_path / 'parts'}")  # stops after its checkpoint
    torchrun(2, "condition", *common, "steps=4", f"out={tmp_path / 'parts'}")  # and goes on from it
    whole = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    parts = load_file(tmp_path / "parts" / "model" / "model.safetensors")
    assert all(torch.equal(whole[k], parts[k]) for k in whole)


@pytest.mark.slow
def test_two_nodes_of_one_process_meet_on_loopback(data, tmp_path):
    """The README's two-machine commands, both on this machine: c10d rendezvous on 127.0.0.1."""
    import os
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=fitroom-test", "-m",
               "fitroom.cli", "train", "condition", "--set", f"data={data}", f"out={tmp_path / 'run'}",
               "model=test_hrviton_condition", "size=[128,96]", "loss_weights.vgg=0", "batch_size=2", "steps=2",
               "checkpoint_every=2", "validate_every=2", "mixed_precision=no"]
    nodes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert sum(o.count("trained to step 2") for o in outputs) == 1  # the first process of the first node speaks
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
