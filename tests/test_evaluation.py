"""fitroom eval: reports, per-view figures, resumption, unavailable metrics explained, random backbones wired in."""

import csv
import json

import pytest

from fitroom.cli import main
from fitroom.engines import create_engine
from fitroom.evaluation import EvalConfig, evaluate


class CountingEngine:
    """The warp engine, counting its calls."""

    def __init__(self):
        self.engine, self.calls = create_engine("warp"), 0

    def __call__(self, inputs):
        self.calls += 1
        return self.engine(inputs)


def test_report_without_weights_says_what_is_missing_and_resumes(synth_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path / "no-weights"))
    engine = CountingEngine()
    config = EvalConfig(engine="warp", data=str(synth_dataset), out=str(tmp_path / "report"), limit=3)
    results = evaluate(config, engine=engine, progress=False)
    assert engine.calls == 3
    summary = results["summary"]
    assert summary["all"]["samples"] == 3 and set(summary) >= {"all", "front"}
    assert 0.5 < summary["all"]["ssim"] <= 1 and summary["all"]["psnr"] > 10
    assert summary["all"]["lpips"]["available"] is False
    assert "fitroom weights import alexnet" in summary["all"]["lpips"]["reason"]
    assert "weights-inception-2015-12-05-6726825d.pth" in summary["all"]["fid"]["reason"]
    report = tmp_path / "report"
    markdown = (report / "results.md").read_text()
    assert "fitroom weights fetch inception-fid" in markdown and "| all | 3 |" in markdown
    with open(report / "per_sample.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and all(float(r["ssim"]) > 0 for r in rows)
    assert (report / "grid.png").is_file() and len(list((report / "images").glob("*.png"))) == 3
    assert json.loads((report / "results.json").read_text())["protocol"]["image_format"].startswith("PNG")

    # a killed evaluation resumes: results already written are scored again, not recomputed
    next(iter((report / "images").glob("*.png"))).unlink()
    again = evaluate(config, engine=engine, progress=False)
    assert engine.calls == 4 and again["protocol"]["results_reused"] == 2
    assert again["summary"]["all"]["ssim"] == pytest.approx(summary["all"]["ssim"], abs=1e-6)


def test_unpaired_synthetic_pairs_are_scored_against_the_rendered_truth(synth_dataset, tmp_path, random_backbones,
                                                                         monkeypatch):
    import fitroom.metrics.perceptual as perceptual

    # random backbones in the published layouts stand in for the cache (they cannot match the published hashes)
    monkeypatch.setattr(perceptual, "find", lambda name: random_backbones[name])
    monkeypatch.setattr(perceptual, "verify", lambda known, path: "")
    config = EvalConfig(engine="warp", data=str(synth_dataset), out=str(tmp_path / "unpaired"), pairs="unpaired")
    results = evaluate(config, progress=False)
    everything = results["summary"]["all"]
    assert everything["samples"] == 4
    assert 0 <= everything["lpips"] < 1 and everything["ssim"] > 0.3
    assert isinstance(everything["fid"], float) and isinstance(everything["kid_x1000"], float)
    assert everything["kid_subset_size"] == 4  # every generated image and every real photo
    assert results["protocol"]["real_photos_for_fid"] == 4 and "lpips" in results["protocol"]["backbones"]


def test_two_shards_merged_give_the_unsharded_results(synth_dataset, tmp_path, random_backbones, monkeypatch):
    """--shard 0/2 and 1/2 into one report folder, then --merge: the same per-sample rows and the same summary,
    FID and KID (recomputed from the shards' features) as one run; a merge before every shard is done is refused."""
    import fitroom.metrics.perceptual as perceptual

    monkeypatch.setattr(perceptual, "find", lambda name: random_backbones[name])
    monkeypatch.setattr(perceptual, "verify", lambda known, path: "")
    common = dict(engine="warp", data=str(synth_dataset), pairs="unpaired")
    whole = evaluate(EvalConfig(**common, out=str(tmp_path / "whole")), progress=False)
    out = str(tmp_path / "sharded")
    assert evaluate(EvalConfig(**common, out=out, shard=(1, 2)), progress=False) == {"shard": [1, 2], "samples": 2}
    with pytest.raises(ValueError, match="every shard must be done"):
        evaluate(EvalConfig(**common, out=out, merge=True), progress=False)
    evaluate(EvalConfig(**common, out=out, shard=(0, 2)), progress=False)
    merged = evaluate(EvalConfig(**common, out=out, merge=True), progress=False)
    assert _without_seconds(merged) == _without_seconds(whole)  # the same numbers, to the last bit
    assert isinstance(merged["summary"]["all"]["fid"], float)
    assert merged["protocol"]["real_photos_for_fid"] == whole["protocol"]["real_photos_for_fid"] == 4

    def rows(folder):
        with open(tmp_path / folder / "per_sample.csv") as handle:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(handle)]

    assert rows("sharded") == rows("whole")


def _without_seconds(results):
    return {group: {k: v for k, v in entry.items() if k != "seconds_per_image"}
            for group, entry in results["summary"].items()}


def test_eval_command(synth_dataset, tmp_path, capsys):
    code = main(["eval", "--engine", "warp", "--data", str(synth_dataset), "--out", str(tmp_path / "r"),
                 "--limit", "2", "-q"])
    assert code == 0 and "| all | 2 |" in capsys.readouterr().out
    assert main(["eval", "--engine", "hrviton", "--checkpoint", str(tmp_path / "none"), "--data",
                 str(synth_dataset), "--out", str(tmp_path / "r2"), "-q"]) == 3  # missing weights


def test_results_of_another_evaluation_are_not_reused(synth_dataset, tmp_path):
    evaluate(EvalConfig(engine="warp", data=str(synth_dataset), out=str(tmp_path / "r"), limit=1), progress=False)
    with pytest.raises(ValueError, match="another evaluation"):
        evaluate(EvalConfig(engine="warp", data=str(synth_dataset), out=str(tmp_path / "r"), limit=1,
                            pairs="unpaired"), progress=False)


def test_results_made_with_other_weights_or_settings_are_made_again(synth_dataset, tmp_path):
    checkpoint = tmp_path / "run" / "model"
    checkpoint.mkdir(parents=True)
    (checkpoint / "model.safetensors").write_bytes(b"weights after step 1")
    engine = CountingEngine()

    def run():
        return evaluate(EvalConfig(engine="warp", checkpoint=str(checkpoint), data=str(synth_dataset),
                                   out=str(tmp_path / "r"), limit=2), engine=engine, progress=False)

    first = run()
    assert engine.calls == 2 and first["protocol"]["results_reused"] == 0
    assert run()["protocol"]["results_reused"] == 2 and engine.calls == 2  # same weights: reused
    (checkpoint / "model.safetensors").write_bytes(b"weights after step 2")  # one more training step
    again = run()
    assert engine.calls == 4 and again["protocol"]["results_reused"] == 0
    assert again["protocol"]["checkpoint_sha256"] != first["protocol"]["checkpoint_sha256"]
    # the engine's settings count as much as its weights
    flat = evaluate(EvalConfig(engine="warp", checkpoint=str(checkpoint), data=str(synth_dataset),
                               out=str(tmp_path / "r"), limit=2), engine=create_engine("warp", shading=False),
                    progress=False)
    assert flat["protocol"]["results_reused"] == 0 and flat["protocol"]["engine_settings"]["shading"] is False


def test_a_sample_the_engine_cannot_handle_is_listed_not_fatal(synth_dataset, tmp_path):
    from fitroom.inputs import InputsError

    warp = create_engine("warp")

    def picky(inputs):
        if inputs.view.value == "back":
            raise InputsError("no back views, for this test")
        return warp(inputs)

    results = evaluate(EvalConfig(engine="picky", data=str(synth_dataset), out=str(tmp_path / "r")), engine=picky,
                       progress=False)
    assert results["summary"]["all"]["samples"] == 4 and results["summary"]["all"]["failed"] == 2
    assert results["summary"]["front"]["failed"] == 0 and isinstance(results["summary"]["front"]["ssim"], float)
    assert [f["error"] for f in results["failed_samples"]] == ["no back views, for this test"] * 2
    assert "no back views" in (tmp_path / "r" / "per_sample.csv").read_text()


def test_eval_reports_per_category_and_view_and_reads_the_dresscode_layout(tmp_path):
    """A rendered set of tops and lower garments, in the VITON-HD layout and written in DressCode's: the warp
    engine's unpaired results are scored per view, per category and per category and view, the same in both."""
    from fitroom.cli import main
    from fitroom.evaluation import EvalConfig, evaluate

    data = tmp_path / "mixed"
    assert main(["-q", "synth", "--out", str(data), "--count", "6", "--size", "256x192", "--categories",
                 "upper,lower", "--workers", "1", "--test-fraction", "0.67"]) == 0
    assert main(["-q", "dataset", "convert", str(data), "--to", "dresscode", "--out", str(tmp_path / "dc")]) == 0
    summaries = {}
    for name, root in (("viton", data), ("dresscode", tmp_path / "dc")):
        results = evaluate(EvalConfig(engine="warp", data=str(root), split="test", pairs="unpaired",
                                      out=str(tmp_path / f"eval-{name}")), progress=False)
        summaries[name] = results["summary"]
    groups = set(summaries["viton"])
    assert groups == {"all", "front", "back", "upper", "lower", "upper front", "upper back", "lower front",
                      "lower back"}, groups
    assert summaries["viton"]["lower"]["samples"] == 4 and summaries["viton"]["lower"]["failed"] == 0
    for group in groups:  # the same samples, the same images: the same scores
        assert summaries["dresscode"][group]["samples"] == summaries["viton"][group]["samples"], group
        assert summaries["dresscode"][group]["ssim"] == pytest.approx(summaries["viton"][group]["ssim"], abs=0.02)
    assert "| lower back |" in (tmp_path / "eval-viton" / "results.md").read_text()
