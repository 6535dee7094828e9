"""Leffa's two UNets on diffusers: parity with the reference implementation's own run (the team's tiny fixture:
reference features, noise prediction, guidance and rescale, and the 2-step DDPM run with its noise draws), and the
full-size layouts matched key for key against the published checkpoints' key lists."""

from pathlib import Path

import pytest
import torch

from fitroom.models import create_model
from fitroom.models.leffa import Conditions, LeffaConfig, LeffaUNets, guide, sample

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "leffa"
if not REFERENCE.is_dir():  # CI clones the project with shared/ beside it; a checkout may hold it inside
    REFERENCE = Path(__file__).resolve().parents[1] / "shared" / "reference" / "leffa"


@pytest.fixture(scope="module")
def fixture() -> dict:
    path = REFERENCE / "parity-tiny.pt"
    if not path.is_file():
        pytest.fail(f"the parity fixture {path} is missing (it comes with shared/reference/leffa)")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def model(fixture) -> LeffaUNets:
    model = LeffaUNets(LeffaConfig(unet=fixture["config_unet_json"])).eval()
    model.unet.load_state_dict(fixture["state_dict_generative"], strict=True)
    model.unet_encoder.load_state_dict(fixture["state_dict_reference"], strict=True)
    return model


def _close(mine: torch.Tensor, theirs: torch.Tensor) -> None:
    """Within 1e-4 of the reference, relative to its largest magnitude."""
    assert mine.shape == theirs.shape
    assert (mine - theirs).abs().max() <= 1e-4 * max(1.0, float(theirs.abs().max())), (mine - theirs).abs().max()


@torch.no_grad()
def test_reference_features_noise_prediction_and_guidance_match_the_reference(fixture, model):
    inputs, outputs = fixture["inputs"], fixture["outputs"]
    step = outputs["steps"][0]
    features = model.reference_features(inputs["ref_image_latent_cfg_batch"], step["t"])
    assert len(features) == len(outputs["reference_features"]) == 6  # down 2, mid 1, up 3 transformer blocks
    for mine, theirs in zip(features, outputs["reference_features"]):
        _close(mine, theirs)
    noise_pred = model(step["unet_input"], step["t"], features)
    _close(noise_pred, outputs["noise_pred"])
    guided, rescaled = guide(noise_pred, float(inputs["guidance_scale"]))
    _close(guided, outputs["noise_pred_cfg"])
    _close(rescaled, outputs["noise_pred_rescaled"])
    # the skipped cross-attention still adds norm2(h): dropping the whole slot gives another network
    from fitroom.models.leffa import SkipCrossAttention

    class Identity(SkipCrossAttention):
        def __call__(self, attn, hidden_states, *args, **kwargs):
            return torch.zeros_like(hidden_states)

    saved = model.unet.attn_processors
    model.unet.set_attn_processor({k: Identity() if k.endswith("attn2.processor") else v for k, v in saved.items()})
    try:
        changed = model(step["unet_input"], step["t"], features)
    finally:
        model.unet.set_attn_processor(saved)
    assert (changed - outputs["noise_pred"]).abs().max() > 0.1 * outputs["noise_pred"].abs().max()


@pytest.mark.parametrize("once", [False, True], ids=["reference-every-step", "reference-once"])
@torch.no_grad()
def test_the_two_step_run_matches_the_reference(fixture, model, once):
    from diffusers import DDPMScheduler

    inputs = fixture["inputs"]
    expected = fixture["outputs"]["ref_acceleration"] if once else fixture["outputs"]
    conditions = Conditions.from_pixels(inputs["mask"], inputs["densepose"], inputs["vae_latent_masked_image"],
                                        inputs["vae_latent_ref_image"], fixture["vae_scaling_factor"])
    for mine, name in ((conditions.mask, "mask_latent"), (conditions.masked_image, "masked_image_latent"),
                       (conditions.densepose, "densepose_latent"), (conditions.garment, "ref_image_latent")):
        assert torch.equal(mine, inputs[name]), name
    record: list = []
    generator = torch.Generator().manual_seed(int(inputs["seed_generator"]))  # the DDPM variance draws
    final = sample(model, DDPMScheduler.from_config(fixture["config_scheduler"]), inputs["initial_noise"],
                   conditions, int(inputs["num_inference_steps"]), float(inputs["guidance_scale"]), generator,
                   reference_once=once, record=record)
    assert [int(r["t"]) for r in record] == [int(s["t"]) for s in expected["steps"]] == [501, 1]
    for mine, theirs in zip(record, expected["steps"]):
        for key in ("unet_input", "noise_pred", "noise_pred_cfg", "noise_pred_rescaled", "prev_sample"):
            _close(mine[key], theirs[key])
    _close(final, expected["final_latent"])


def _key_list(name: str) -> dict[str, tuple[int, ...]]:
    rows = [line.split("\t") for line in (REFERENCE / name).read_text().splitlines() if line.strip()]
    return {row[0]: tuple(int(v) for v in row[1].strip("()").split(",") if v.strip()) for row in rows}


@pytest.mark.parametrize("layout,generative,reference", [
    ("leffa_sd15", "keys-generative.tsv", "keys-reference.tsv"),
    ("leffa_sdxl", "keys-pose-transfer-generative.tsv", "keys-pose-transfer-reference.tsv"),
])
def test_the_full_size_layouts_match_the_published_key_lists(layout, generative, reference):
    with torch.device("meta"):  # shapes only: 0.9 and 2.6 billion parameters are never allocated
        model = create_model(layout)
    for part, listed in ((model.unet, generative), (model.unet_encoder, reference)):
        assert {k: tuple(v.shape) for k, v in part.state_dict().items()} == _key_list(listed)


def _tiny_published(tmp_path, fixture):
    """A tiny random checkpoint in the published layout (unet. / unet_encoder. / vae.) and its base folder."""
    import json

    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    unets = create_model("test_leffa")
    vae_config = {"block_out_channels": [8, 16, 16, 16], "down_block_types": ["DownEncoderBlock2D"] * 4,
                  "up_block_types": ["UpDecoderBlock2D"] * 4, "latent_channels": 4, "norm_num_groups": 8,
                  "layers_per_block": 1}
    vae = AutoencoderKL(**vae_config)
    state = {**{f"unet.{k}": v for k, v in unets.unet.state_dict().items()},
             **{f"unet_encoder.{k}": v for k, v in unets.unet_encoder.state_dict().items()},
             **{f"vae.{k}": v for k, v in vae.state_dict().items()}}
    checkpoint = tmp_path / "virtual_tryon.pth"
    torch.save(state, checkpoint)
    base = tmp_path / "stable-diffusion-inpainting"
    for part, config in (("unet", {**unets.config.unet, "in_channels": 9}), ("vae", vae_config),
                         ("scheduler", fixture["config_scheduler_json"])):
        (base / part).mkdir(parents=True)
        name = "scheduler_config.json" if part == "scheduler" else "config.json"
        (base / part / name).write_text(json.dumps(config if isinstance(config, dict) else json.loads(config)))
    return unets, vae, checkpoint, base


@torch.no_grad()
def test_a_published_layout_checkpoint_converts_and_runs_the_same(tmp_path, fixture):
    from fitroom.cli import main
    from fitroom.models.leffa_convert import load_leffa

    unets, vae, checkpoint, base = _tiny_published(tmp_path, fixture)
    assert main(["-q", "convert", "leffa", "--checkpoint", str(checkpoint), "--base", str(base), "--out",
                 str(tmp_path / "leffa")]) == 0
    loaded, loaded_vae, scheduler = load_leffa(tmp_path / "leffa")
    latent, x = torch.randn(2, 4, 16, 12), torch.randn(2, 12, 16, 12)
    expected = unets(x, 500, unets.reference_features(latent, 500))
    torch.testing.assert_close(loaded(x, 500, loaded.reference_features(latent, 500)), expected, atol=0, rtol=0)
    assert torch.equal(loaded_vae.decoder.conv_out.weight, vae.decoder.conv_out.weight)
    scheduler.set_timesteps(2)
    assert scheduler.timesteps.tolist() == [501, 1]
    # the folder says what it is for: a try-on file is a try-on model, pose_transfer.pth a pose model that draws
    # the whole picture (as it was trained)
    from fitroom.models.leffa_convert import leffa_meta

    assert leffa_meta(tmp_path / "leffa") == {"task": "tryon", "mask": "garment", "size": None}
    pose = checkpoint.with_name("pose_transfer.pth")
    checkpoint.rename(pose)
    assert main(["-q", "convert", "leffa", "--checkpoint", str(pose), "--base", str(base), "--out",
                 str(tmp_path / "pose")]) == 0
    assert leffa_meta(tmp_path / "pose") == {"task": "pose", "mask": "whole", "size": None}


def test_bad_leffa_inputs_are_one_sentence(tmp_path, fixture, caplog):
    from fitroom.cli import main

    _, _, checkpoint, base = _tiny_published(tmp_path, fixture)
    out = ["--out", str(tmp_path / "o")]
    assert main(["-q", "convert", "leffa", "--checkpoint", str(checkpoint), "--base", str(tmp_path / "no"), *out]) == 3
    assert "the base model folder" in caplog.text
    half = tmp_path / "half.pth"
    half.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    caplog.clear()
    assert main(["-q", "convert", "leffa", "--checkpoint", str(half), "--base", str(base), *out]) == 2
    assert "cannot read the checkpoint" in caplog.text
    state = torch.load(checkpoint, weights_only=True)
    state["unet.conv_in.weight"] = state["unet.conv_in.weight"][:, :9]  # the base UNet's 9 channels, not Leffa's 12
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    caplog.clear()
    assert main(["-q", "convert", "leffa", "--checkpoint", str(wrong), "--base", str(base), *out]) == 2
    assert "generative UNet" in caplog.text and "conv_in.weight" in caplog.text
    assert "Traceback" not in caplog.text and not (tmp_path / "o").exists()


@torch.no_grad()
def test_the_diffusion_engine_runs_on_a_real_photo_and_the_seed_fixes_the_image(tmp_path, fixture, preprocessor):
    """A tiny random checkpoint in the published layout, converted, dresses the astronaut: the same seed gives the
    same image, another seed another one; outside the regenerated region the photo comes back bit for bit."""
    import numpy as np

    from fitroom import imaging
    from fitroom.cli import main
    from fitroom.demo import sample_path
    from fitroom.engines import create_engine
    from fitroom.fitting import check_and_prepare, try_on

    _, _, checkpoint, base = _tiny_published(tmp_path, fixture)
    assert main(["-q", "convert", "leffa", "--checkpoint", str(checkpoint), "--base", str(base), "--out",
                 str(tmp_path / "leffa")]) == 0
    person = imaging.load_image(sample_path("astronaut.jpg"))
    garment = imaging.load_image(sample_path("garment_tee_front.jpg"))
    inputs = check_and_prepare(preprocessor, person, garment, category="upper", view="front").inputs
    results = {}
    for seed in (3, 3, 4):
        engine = create_engine("diffusion", checkpoint=tmp_path / "leffa", device="cpu", steps=2, seed=seed,
                               size=(128, 96), progress=False)
        results.setdefault(seed, []).append(try_on(engine, inputs))
    first, again = results[3]
    np.testing.assert_array_equal(first.image, again.image)
    assert not np.array_equal(first.image, results[4][0].image)
    mask = first.extras["mask"] > 0
    assert mask.mean() > 0.05  # the torso and arms are regenerated
    np.testing.assert_array_equal(first.image[~mask], person[~mask])
    np.testing.assert_array_equal(first.image[inputs.keep], person[inputs.keep])  # face, hair, hands untouched
    assert set(first.timings) >= {"inputs", "encode", "denoise", "decode", "engine"}
    ddim = create_engine("diffusion", checkpoint=tmp_path / "leffa", steps=2, scheduler="ddim", size=(128, 96),
                         progress=False)
    assert try_on(ddim, inputs).image.shape == person.shape
    bf16 = create_engine("diffusion", checkpoint=tmp_path / "leffa", steps=2, seed=3, size=(128, 96),
                         progress=False, precision="bf16")
    assert bf16.precision == "bf16"
    with_bf16 = try_on(bf16, inputs).image
    np.testing.assert_array_equal(with_bf16[~mask], person[~mask])
    assert np.abs(with_bf16.astype(int) - first.image.astype(int))[mask].mean() < 64  # the same picture, roughly
    out = tmp_path / "cli.png"  # the same through the command line
    assert main(["-q", "tryon", "--person", str(sample_path("astronaut.jpg")), "--garment",
                 str(sample_path("garment_tee_front.jpg")), "--category", "upper", "--view", "front", "--engine",
                 "diffusion", "--checkpoint", str(tmp_path / "leffa"), "--steps", "2", "--seed", "3", "--size",
                 "128x96", "--out", str(out)]) == 0
    np.testing.assert_array_equal(imaging.load_image(out), first.image)


def test_weights_fetch_leffa_downloads_checks_the_hub_hashes_and_converts(tmp_path, fixture, monkeypatch):
    """With a stubbed network: the file list with its hashes, the files, then the conversion; a tampered file is
    refused and deleted."""
    import hashlib
    import io
    import json

    from fitroom import weights
    from fitroom.cli import main

    (tmp_path / "made").mkdir()
    _, _, checkpoint, base = _tiny_published(tmp_path / "made", fixture)
    files = {"virtual_tryon.pth": checkpoint.read_bytes()}
    for path in base.rglob("*.json"):
        files[f"stable-diffusion-inpainting/{path.relative_to(base)}"] = path.read_bytes()

    def listing():
        return [{"type": "file", "path": p, "oid": hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest(),
                 **({"lfs": {"oid": hashlib.sha256(d).hexdigest()}} if p.endswith(".pth") else {})}
                for p, d in files.items()]

    served = dict(files)

    class Response(io.BytesIO):
        headers: dict = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(url, timeout):
        if "/api/models/franciszzj/Leffa/tree/main" in url:
            return Response(json.dumps(listing()).encode())
        return Response(served[url.split("/resolve/main/")[1]])

    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setattr(weights.urllib.request, "urlopen", urlopen)
    served["virtual_tryon.pth"] = b"tampered"
    assert main(["-q", "weights", "fetch", "leffa-tryon"]) == 2
    assert not (weights.hub_folder("leffa-tryon") / "virtual_tryon.pth").exists()
    served["virtual_tryon.pth"] = files["virtual_tryon.pth"]
    assert main(["-q", "weights", "fetch", "leffa-tryon"]) == 0
    assert weights.find("leffa-tryon") == tmp_path / "cache" / "leffa-tryon"
    from fitroom.models.leffa_convert import load_leffa

    unets, _, _ = load_leffa(weights.find("leffa-tryon"))
    assert unets.unet.config.in_channels == 12


def test_the_diffusion_stage_trains_on_rendered_data_and_resumes(tmp_path):
    """fitroom train diffusion: the tiny pixel-space configuration, two steps on rendered front/back people, a
    validation SSIM, a checkpoint, and a third step after a restart."""
    import json

    from fitroom.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["-q", "synth", "--out", str(data), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    settings = [f"data={data}", f"out={run}", "size=[32, 24]", "batch_size=2", "validate_every=2",
                "checkpoint_every=2", "log_every=1"]
    assert main(["-q", "train", "diffusion", "--set", *settings, "steps=2"]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "mse" in r] == [1, 2]
    assert all(0 < r["mse"] < 10 for r in records if "mse" in r)
    assert any(0 <= r.get("validation_ssim", -1) <= 1 for r in records)
    assert main(["-q", "train", "diffusion", "--set", *settings, "steps=3"]) == 0  # resumes at step 2
    assert (run / "step_3.pt").is_file() and (run / "model" / "config.json").is_file()


def test_a_stage_takes_its_own_options_and_refuses_unknown_ones(tmp_path):
    """task_options: the diffusion stage's frozen reference UNet stays as it was; an option no stage has is one
    sentence."""
    from fitroom.errors import ConfigurationError
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    data = tmp_path / "data"
    from fitroom.cli import main

    assert main(["-q", "synth", "--out", str(data), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    settings = ["stage=diffusion", f"data={data}", f"out={tmp_path / 'run'}", "size=[32, 24]", "batch_size=2",
                "steps=1", "validate_every=100"]
    trainer = Trainer(load_config(None, [*settings, "task_options.freeze_reference=true"]), progress=False)
    before = {k: v.clone() for k, v in trainer.task.generator.unet_encoder.state_dict().items()}
    generative = trainer.task.generator.unet.conv_in.weight.clone()
    trainer.run()
    after = trainer.task.generator.unet_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(generative, trainer.task.generator.unet.conv_in.weight)
    with pytest.raises(ConfigurationError, match="the diffusion stage has no option colour"):
        load_config(None, [*settings, "task_options.colour=1"])


def test_the_attention_flow_loss_reads_attention_as_a_flow_field():
    """Attention that points every token at the same place in the reference warps nothing (zero loss against the
    reference itself); attention that points one column to the left is right for a picture shifted that way."""
    from fitroom.models.leffa import attention_flow_loss

    h, w, size = 4, 3, (16, 12)
    reference = torch.rand(1, 3, *size)
    same = torch.eye(h * w)[None]
    left = torch.zeros(1, h * w, h * w)
    for y in range(h):
        for x in range(w):
            left[0, y * w + x, y * w + max(0, x - 1)] = 1.0
    region, weights = torch.ones(1, 1, *size), torch.ones(1)
    assert float(attention_flow_loss([same], reference, reference, region, weights)) < 1e-10
    shifted = torch.nn.functional.grid_sample(
        reference, _left_grid(size, w), align_corners=True)  # what "one column to the left" samples
    assert float(attention_flow_loss([left], reference, shifted, region, weights)) < 1e-10
    assert float(attention_flow_loss([same], reference, shifted, region, weights)) > 1e-3
    assert float(attention_flow_loss([same], reference, shifted, region, torch.zeros(1))) == 0.0


def _left_grid(size, w):
    """The sampling grid of a flow one token column to the left (clamped at the border), at pixel resolution."""
    height, width = size
    columns = torch.linspace(-1, 1, w)
    coarse_x = torch.cat([columns[:1], columns[:-1]])
    fine_x = torch.nn.functional.interpolate(coarse_x.view(1, 1, w), size=width, mode="linear",
                                             align_corners=True).view(width)
    ys = torch.linspace(-1, 1, height)
    return torch.stack([fine_x.expand(height, width), ys[:, None].expand(height, width)], -1)[None]


def test_the_diffusion_stage_trains_with_the_flow_loss(tmp_path):
    import json

    from fitroom.cli import main

    data, run = tmp_path / "data", tmp_path / "run"
    assert main(["-q", "synth", "--out", str(data), "--count", "3", "--size", "64x48", "--workers", "1"]) == 0
    assert main(["-q", "train", "diffusion", "--set", f"data={data}", f"out={run}", "size=[32, 24]", "batch_size=2",
                 "validate_every=100", "log_every=1", "steps=2", "task_options.flow_loss=0.5",
                 "task_options.flow_max_timestep=1000", "task_options.cfg_dropout=0"]) == 0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    flows = [r["flow"] for r in records if "flow" in r]
    assert len(flows) == 2 and all(0 < value < 10 for value in flows)


def test_the_diffusion_stage_learns_the_region_the_engine_regenerates(synth_dataset):
    """The training stage masks each sample exactly as the diffusion engine masks the same photo (the category's
    clothing and arms, grown by a disc, cut above the neck)."""
    from torch.utils.data import default_collate

    from fitroom.data.dataset import TryOnDataset
    from fitroom.engines.diffusion import regeneration_mask
    from fitroom.training.config import load_config
    from fitroom.training.diffusion import DiffusionTask

    task = DiffusionTask(load_config(None, ["stage=diffusion", f"data={synth_dataset}", "size=[256, 192]"]))
    dataset = TryOnDataset(synth_dataset, "train", "paired", size=(256, 192))
    batch = default_collate([dataset[0], dataset[1]])
    masks = task._conditions(batch)["mask"]
    for index, name in enumerate(batch["name"]):
        expected = regeneration_mask(dataset.layout.read(name))
        assert expected.any() and not expected.all()
        assert torch.equal(masks[index, 0].bool(), torch.from_numpy(expected))
