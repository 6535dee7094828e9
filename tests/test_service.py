"""The fitting-room service through FastAPI's TestClient, with a tiny engine injected (a real database file,
real photo guidance, real files on disk)."""

import datetime as dt
import os
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fitroom import imaging
from fitroom.cli import main
from fitroom.inputs import TryOnResult
from fitroom.service.app import create_app
from fitroom.service.settings import Settings


class TinyEngine:
    """Returns the person photo with the garment's mean colour blended in; can be held back by an event."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate, self.calls = gate, 0

    def __call__(self, inputs):
        if self.gate is not None:
            self.gate.wait(30)
        self.calls += 1
        colour = inputs.garment.reshape(-1, 3).mean(0)
        image = (inputs.person * 0.7 + colour * 0.3).astype(np.uint8)
        return TryOnResult(image=image, engine="tiny")


def png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos():
    """The bundled sample photos: a full-length person (front) and a tee's product photos."""
    from fitroom.demo import sample_path

    return {name: sample_path(file).read_bytes() for name, file in
            (("person", "person_front.jpg"), ("garment", "garment_tee_front.jpg"),
             ("garment_back", "garment_tee_back.jpg"))}


API_KEY = "shop-key"
SHOP = {"Authorization": f"Bearer {API_KEY}"}


def make_client(tmp_path, preprocessor, engine=None, **settings) -> TestClient:
    config = Settings(data_dir=tmp_path / "data", **({"api_key": API_KEY} | settings))
    return TestClient(create_app(config, engine=engine or TinyEngine(), preprocessor=preprocessor))


def add_garment(client, photos) -> str:
    response = client.post("/v1/garments", files={"front": ("shirt.png", photos["garment"], "image/png"),
                                                  "back": ("shirt_back.png", photos["garment_back"], "image/png")},
                           data={"name": "test shirt", "category": "upper"}, headers=SHOP)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_done(client, tryon_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        document = client.get(f"/v1/tryons/{tryon_id}").json()
        if document["status"] not in ("queued", "running"):
            return document
        time.sleep(0.1)
    raise AssertionError(f"try-on {tryon_id} did not finish")


def test_health_docs_and_checks(tmp_path, preprocessor, photos, astronaut):
    with make_client(tmp_path, preprocessor) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["status"] == "ready"
        assert "/v1/tryons" in client.get("/openapi.json").json()["paths"]
        assert "Try it on" in client.get("/").text
        report = client.post("/v1/checks", files={"photo": ("a.jpg", png(astronaut), "image/png")}).json()
        assert report["status"] in ("pass", "warn") and {c["name"] for c in report["checks"]} >= {"blur", "people"}
        empty = client.post("/v1/checks", files={"photo": ("x.png", png(np.full((400, 300, 3), 200, np.uint8)),
                                                           "image/png")}).json()
        assert empty["status"] == "fail"  # nobody in the picture


def test_a_try_on_from_upload_to_rating_and_deletion(tmp_path, preprocessor, photos, monkeypatch, database_url):
    detected = []  # the models' runs
    original = preprocessor.detect
    monkeypatch.setattr(preprocessor, "detect", lambda *a, **k: detected.append(1) or original(*a, **k))
    with make_client(tmp_path, preprocessor, database_url=database_url) as client:
        garment = add_garment(client, photos)
        listed = client.get("/v1/garments").json()
        assert [g["id"] for g in listed] == [garment] and listed[0]["views"] == ["front", "back"]
        assert client.get(f"/v1/garments/{garment}/front.png").content[:4] == b"\x89PNG"
        response = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                               data={"garment_id": garment, "view": "front", "force": "true"})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["status"] in ("queued", "running", "done") and job["expires_at"] is not None
        done = wait_done(client, job["id"])
        assert done["status"] == "done", done
        assert detected == [1]  # the check ran the models; the job finished the analysis from their findings
        result = client.get(done["result_url"])
        assert result.status_code == 200
        assert imaging.load_image(result.content).shape == imaging.load_image(photos["person"]).shape
        rated = client.post(f"/v1/tryons/{job['id']}/rating", json={"rating": "good", "reason": "fits"}).json()
        assert rated["rating"] == {"good": True, "reason": "fits"}
        stats = client.get("/v1/stats", headers=SHOP).json()
        assert stats["ratings"] == 1 and stats["success_rate"] == 1.0
        assert stats["by_guidance"][0]["key"] == done["guidance"]
        files = list((tmp_path / "data" / "photos").iterdir()) + list((tmp_path / "data" / "results").iterdir())
        assert len(files) == 2
        assert client.delete(f"/v1/tryons/{job['id']}").status_code == 204
        assert client.get(f"/v1/tryons/{job['id']}").status_code == 404
        assert not any(f.exists() for f in files)  # photo and result gone with the row
        assert client.get("/v1/stats", headers=SHOP).json()["ratings"] == 0
        _assert_metrics(client, done=1, checks=1)


def _assert_metrics(client, done: int, checks: int) -> None:
    """/metrics in Prometheus' text format: finished try-ons by outcome, their latency, checks, queue, workers."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    assert samples[("fitroom_tryons_total", (("outcome", "done"),))] == done
    assert samples[("fitroom_tryons_total", (("outcome", "failed"),))] == 0
    assert samples[("fitroom_tryon_seconds_count", ())] == done and samples[("fitroom_tryon_seconds_sum", ())] > 0
    assert samples[("fitroom_check_seconds_count", ())] == checks
    assert samples[("fitroom_queue_depth", ())] == 0 and samples[("fitroom_workers", ())] == 1


def test_a_full_queue_answers_429_with_retry_after(tmp_path, preprocessor, photos, database_url):
    gate = threading.Event()
    with make_client(tmp_path, preprocessor, engine=TinyEngine(gate), queue_size=1,
                     database_url=database_url) as client:
        garment = add_garment(client, photos)
        form = {"garment_id": garment, "force": "true"}
        first = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")}, data=form)
        assert first.status_code == 202
        second = client.post("/v1/tryons", files={"photo": ("b.png", photos["person"], "image/png")}, data=form)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
        assert second.json()["error"]["code"] == "queue_full"
        gate.set()
        assert wait_done(client, first.json()["id"])["status"] == "done"


def test_jobs_and_ratings_survive_a_restart(tmp_path, preprocessor, photos, database_url):
    import sqlalchemy as sa

    from fitroom.service import storage

    engine = TinyEngine()
    with make_client(tmp_path, preprocessor, engine=engine, database_url=database_url) as client:
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}).json()
        wait_done(client, job["id"])
        client.post(f"/v1/tryons/{job['id']}/rating", json={"rating": "bad"})
    # a server killed mid-job leaves a row "running": write one as it would be left
    database = storage.connect(database_url)
    with database.begin() as connection:
        row = connection.execute(sa.select(storage.tryons).where(storage.tryons.c.id == job["id"])).first()
        interrupted = dict(row._mapping) | {"id": storage.new_id(), "status": "running", "result": None,
                                            "photo": "photos/interrupted.png"}
        connection.execute(storage.tryons.insert().values(**interrupted))
    (tmp_path / "data" / "photos" / "interrupted.png").write_bytes(photos["person"])
    # the findings its upload's check made wait beside the photo: the job after the restart uses them
    from fitroom.preprocess.pipeline import detections_bytes

    saved = tmp_path / "data" / "photos" / "interrupted.analysis.npz"
    saved.write_bytes(detections_bytes(preprocessor.detect(imaging.load_image(photos["person"]))))
    database.dispose()
    detected = []
    original = preprocessor.detect
    preprocessor.detect = lambda *a, **k: detected.append(1) or original(*a, **k)
    try:
        with make_client(tmp_path, preprocessor, engine=TinyEngine(), database_url=database_url) as client:
            assert wait_done(client, interrupted["id"])["status"] == "done"
            assert detected == [] and not saved.exists()  # used, then removed with the job
    finally:
        del preprocessor.detect
    with make_client(tmp_path, preprocessor, engine=TinyEngine(), database_url=database_url) as client:
        stats = client.get("/v1/stats", headers=SHOP).json()
        assert stats["ratings"] == 1 and stats["success_rate"] == 0.0 and stats["tryons"]["done"] == 2


def test_retention_deletes_photos_unless_shared(tmp_path, preprocessor, photos, database_url):
    with make_client(tmp_path, preprocessor, database_url=database_url) as client:
        garment = add_garment(client, photos)
        ids = {}
        for share in (False, True):
            job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                              data={"garment_id": garment, "force": "true", "share": str(share).lower()}).json()
            ids[share] = wait_done(client, job["id"])["id"]
    # the retention job runs hourly; run it as if 25 hours had passed
    from fitroom.service.core import FittingRoom

    fitting = FittingRoom(Settings(data_dir=tmp_path / "data", database_url=database_url), engine=TinyEngine(),
                          preprocessor=preprocessor)
    try:
        assert fitting.expire(at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=25)) == 1
        assert fitting.tryon(ids[False])["status"] == "expired"
        assert fitting.tryon(ids[True])["status"] == "done"
        remaining = {p.stem for p in (tmp_path / "data" / "photos").iterdir()}
        assert remaining == {ids[True]}
    finally:
        fitting.close()


BAD_REQUESTS = [
    ("post", "/v1/checks", {"files": {"photo": ("x.jpg", b"not an image at all", "image/jpeg")}}),
    ("post", "/v1/checks", {"files": {"photo": ("x.jpg", b"", "image/jpeg")}}),
    ("post", "/v1/checks", {"files": {"photo": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")}}),
    ("post", "/v1/checks", {}),
    ("post", "/v1/checks", {"files": {"photo": ("x.png", "PERSON", "image/png")}, "data": {"view": "sideways"}}),
    ("post", "/v1/checks", {"files": {"photo": ("x.png", "PERSON", "image/png")}, "data": {"category": "hat"}}),
    ("post", "/v1/garments", {"files": {"front": ("x.jpg", b"GIF89a", "image/gif")}}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "BLANK", "image/png")}}),
    ("post", "/v1/tryons", {"files": {"photo": ("x.png", "PERSON", "image/png")}, "data": {"garment_id": "nope"}}),
    ("post", "/v1/tryons", {"files": {"photo": ("x.png", "PERSON", "image/png")}}),
    ("post", "/v1/tryons", {"files": {"photo": ("x.png", "BLANK", "image/png")}, "data": {"garment_id": "G"}}),
    ("post", "/v1/tryons", {"files": {"photo": ("x.png", "HUGE", "image/png")}, "data": {"garment_id": "G"}}),
    ("get", "/v1/tryons/unknown", {}),
    ("get", "/v1/tryons/unknown/result.png", {}),
    ("get", "/v1/tryons/unknown/secret.png", {}),
    ("delete", "/v1/tryons/unknown", {}),
    ("post", "/v1/tryons/unknown/rating", {"json": {"rating": "good"}}),
    ("post", "/v1/tryons/unknown/rating", {"json": {"rating": "meh"}}),
    ("post", "/v1/tryons/unknown/rating", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("get", "/v1/garments/unknown/front.png", {}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "GARMENT", "image/png")}, "no_key": True}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "GARMENT", "image/png")},
                              "headers": {"Authorization": "Bearer wrong"}}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "GARMENT", "image/png")}, "data": {"name": "<b>x</b>"}}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "GARMENT", "image/png")}, "data": {"name": "x" * 81}}),
    ("post", "/v1/garments", {"files": {"front": ("x.png", "GARMENT", "image/png")}, "data": {"name": "a\nb"}}),
    ("delete", "/v1/garments/unknown", {}),
    ("delete", "/v1/garments/G", {"no_key": True}),
    ("get", "/v1/stats", {"no_key": True}),
    ("get", "/v1/stats", {"headers": {"Authorization": "Bearer wrong"}}),
    ("get", "/v1/admin/rated", {}),
    ("get", "/v1/admin/rated", {"headers": {"Authorization": "Bearer wrong"}}),
    ("get", "/v1/nothing-here", {}),
    ("put", "/v1/garments", {}),
]


def test_every_bad_request_is_a_4xx_with_a_json_error(tmp_path, preprocessor, photos):
    blank = png(np.full((600, 400, 3), 255, np.uint8))
    huge = png(np.zeros((7000, 6000, 3), np.uint8))  # 42 MP in a small file
    with make_client(tmp_path, preprocessor, admin_token="secret") as client:
        garment = add_garment(client, photos)
        for method, path, options in BAD_REQUESTS:
            options = {k: dict(v) for k, v in options.items() if isinstance(v, dict)} | {
                k: v for k, v in options.items() if not isinstance(v, dict)}
            for name, (filename, content, kind) in list(options.get("files", {}).items()):
                content = {"PERSON": photos["person"], "BLANK": blank, "HUGE": huge,
                           "GARMENT": photos["garment"]}.get(content, content)
                options["files"][name] = (filename, content, kind)
            if "data" in options and options["data"].get("garment_id") == "G":
                options["data"]["garment_id"] = garment
            path = path.replace("/G", f"/{garment}")
            if not options.pop("no_key", False):  # the shop's key unless the case is about its absence
                options["headers"] = {**SHOP, **options.get("headers", {})}
            response = getattr(client, method)(path, **options)
            assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
            assert response.json()["error"]["message"], (method, path)
        assert client.get("/v1/admin/rated", headers={"Authorization": "Bearer secret"}).status_code == 200
        assert client.get("/v1/stats", headers={"Authorization": "Bearer secret"}).status_code == 200
        assert [g["id"] for g in client.get("/v1/garments").json()] == [garment]  # no bad request added one
    assert len(BAD_REQUESTS) >= 30


def test_catalogue_changes_need_the_api_key_and_are_refused_without_one(tmp_path, preprocessor, photos):
    with make_client(tmp_path, preprocessor, api_key="") as client:
        refused = client.post("/v1/garments", files={"front": ("x.png", photos["garment"], "image/png")},
                              headers=SHOP)
        assert refused.status_code == 403 and "FITROOM_API_KEY" in refused.json()["error"]["message"]
        assert client.get("/v1/stats", headers=SHOP).status_code == 401
        assert client.get("/v1/garments").json() == []
        schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
        assert {"ApiKey", "AdminToken"} <= set(schemes)


def test_a_deleted_garment_leaves_the_catalogue_and_its_files_but_not_the_statistics(tmp_path, preprocessor, photos):
    with make_client(tmp_path, preprocessor) as client:
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}).json()
        assert wait_done(client, job["id"])["status"] == "done"
        client.post(f"/v1/tryons/{job['id']}/rating", json={"rating": "good"})
        files = list((tmp_path / "data" / "garments").iterdir())
        assert len(files) == 4  # front, back and their masks
        assert client.delete(f"/v1/garments/{garment}").status_code == 401  # not without the key
        assert client.delete(f"/v1/garments/{garment}", headers=SHOP).status_code == 204
        assert client.get("/v1/garments").json() == []
        assert client.get(f"/v1/garments/{garment}/front.png").status_code == 404
        assert not any(f.exists() for f in files)
        again = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                            data={"garment_id": garment, "force": "true"})
        assert again.status_code == 404
        assert client.get("/v1/stats", headers=SHOP).json()["ratings"] == 1
        assert client.delete(f"/v1/garments/{garment}", headers=SHOP).status_code == 404


def test_rate_limit_per_client(tmp_path, preprocessor):
    with make_client(tmp_path, preprocessor, rate_limit_per_minute=3) as client:
        codes = [client.post("/v1/checks", files={"photo": ("x.jpg", b"junk", "image/jpeg")}).status_code
                 for _ in range(4)]
        assert codes == [415, 415, 415, 429]  # not an image format, then too many
        assert client.post("/v1/checks").json()["error"]["code"] == "rate_limited"
        # reading is not limited: the page polls a try-on's status while it waits
        assert all(client.get("/v1/garments").status_code == 200 for _ in range(10))
        assert client.get("/healthz").status_code == 200


def test_feedback_export_writes_shared_rated_try_ons_as_a_dataset_that_trains(tmp_path, preprocessor, photos):
    """The export used to pass `dataset check` and then break every training sample (the garment was not stored
    under the person's name), and the ratings were not used."""
    import csv

    from fitroom.data.layout import VitonLayout
    from fitroom.service.feedback import export_feedback
    from fitroom.training.config import load_config
    from fitroom.training.trainer import Trainer

    with make_client(tmp_path, preprocessor) as client:
        garment = add_garment(client, photos)
        for share, rating in ((True, "good"), (True, "bad"), (False, "good")):
            job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                              data={"garment_id": garment, "force": "true", "share": str(share).lower()}).json()
            wait_done(client, job["id"])
            client.post(f"/v1/tryons/{job['id']}/rating", json={"rating": rating})
            if rating == "good" and share:
                result = client.get(wait_done(client, job["id"])["result_url"]).content
    settings = Settings(data_dir=tmp_path / "data")
    out = tmp_path / "feedback"
    assert export_feedback(settings, out, progress=False) == 2  # the unshared one stays out
    layout = VitonLayout(out, "train")
    assert len(layout.pairs()) == 1 and len((out / "bad_pairs.txt").read_text().split()) == 2  # good to train on
    person, cloth = layout.pairs()[0]
    assert person == cloth  # paired: the garment is stored under the sample's name
    sample = layout.read(person)
    assert sample.parse is not None and sample.keypoints is not None and sample.garment_mask.any()
    # the training picture is the result the shopper rated good, not their photo in their own clothes
    exported = imaging.load_image(out / "train" / "image" / person).astype(int)
    assert np.abs(exported - imaging.load_image(result).astype(int)).mean() < 3
    assert len(list((out / "train" / "photo").iterdir())) == 2
    with open(out / "feedback.csv") as handle:
        assert sorted(r["rating"] for r in csv.DictReader(handle)) == ["bad", "good"]
    assert main(["-q", "dataset", "check", str(out)]) == 0
    config = load_config(None, [f"data={out}", f"out={tmp_path / 'run'}", "size=[128, 96]", "batch_size=1",
                                "model=test_hrviton_condition", "steps=1", "loss_weights.vgg=0", "validate_every=100",
                                "checkpoint_every=1"])
    trainer = Trainer(config, progress=False)
    losses = trainer.run()
    assert trainer.step == 1 and all(np.isfinite(v) for v in losses.values())
    assert export_feedback(settings, tmp_path / "good-only", only_good=True, progress=False) == 1
    assert (tmp_path / "good-only" / "bad_pairs.txt").read_text() == ""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(base: str, port: int, data: Path, environment: dict, *extra: str):
    """A real `fitroom serve` process, once it answers /readyz."""
    import subprocess
    import sys

    import httpx

    server = subprocess.Popen([sys.executable, "-m", "fitroom.cli", "-q", "serve", "--port", str(port),
                               "--data-dir", str(data), *extra], env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise AssertionError("fitroom serve did not become ready")


def test_a_killed_server_finishes_its_jobs_after_a_restart(tmp_path, photos):
    """A real `fitroom serve` process, killed with SIGKILL while try-ons wait, then started again."""
    import os
    import signal

    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "FITROOM_RATE_LIMIT_PER_MINUTE": "1000", "FITROOM_QUEUE_SIZE": "16",
                   "FITROOM_API_KEY": API_KEY}

    def start():
        return _serve(base, port, tmp_path / "data", environment)

    server = start()
    try:
        garment = httpx.post(f"{base}/v1/garments", files={"front": ("t.jpg", photos["garment"], "image/jpeg")},
                             data={"category": "upper"}, headers=SHOP, timeout=60).json()["id"]
        first = httpx.post(f"{base}/v1/tryons", files={"photo": ("a.jpg", photos["person"], "image/jpeg")},
                           data={"garment_id": garment, "force": "true"}, timeout=60).json()["id"]
        deadline = time.time() + 60
        while httpx.get(f"{base}/v1/tryons/{first}").json()["status"] != "done" and time.time() < deadline:
            time.sleep(0.1)
        assert httpx.post(f"{base}/v1/tryons/{first}/rating", json={"rating": "good"}).status_code == 200
        waiting = [httpx.post(f"{base}/v1/tryons", files={"photo": ("a.jpg", photos["person"], "image/jpeg")},
                              data={"garment_id": garment, "force": "true"}, timeout=60).json()["id"]
                   for _ in range(4)]
        before = [httpx.get(f"{base}/v1/tryons/{i}").json()["status"] for i in waiting]
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    assert any(state in ("queued", "running") for state in before), before  # killed with work in flight
    states = []
    server = start()
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            states = [httpx.get(f"{base}/v1/tryons/{i}").json()["status"] for i in waiting]
            if all(s == "done" for s in states):
                break
            time.sleep(0.2)
        assert states == ["done"] * 4
        stats = httpx.get(f"{base}/v1/stats", headers=SHOP).json()
        assert stats["ratings"] == 1 and stats["success_rate"] == 1.0 and stats["tryons"]["done"] == 5
    finally:
        server.terminate()
        server.wait(30)
    # each try-on has one result, whichever attempt made it
    results = sorted(p.name.split("-")[0] for p in (tmp_path / "data" / "results").glob("*.png"))
    assert results == sorted([first, *waiting])


def test_workers_in_processes_of_their_own_share_the_queue_and_survive_a_kill(tmp_path, photos, database_url):
    """`fitroom serve --workers 0` and `fitroom worker` processes on one database: a worker killed (SIGKILL) mid
    try-on leaves it to another after the lease; SIGTERM lets a worker finish the try-on at hand; every try-on ends
    done with one result."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    environment = {**os.environ, "FITROOM_RATE_LIMIT_PER_MINUTE": "1000", "FITROOM_QUEUE_SIZE": "32",
                   "FITROOM_API_KEY": API_KEY, "FITROOM_DATABASE_URL": database_url, "FITROOM_LEASE_S": "3",
                   "FITROOM_POLL_S": "0.05"}

    def worker(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "fitroom.cli", "-q", "worker", "--data-dir", str(data),
                                 *extra], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)

    def states(ids) -> list[dict]:
        return [httpx.get(f"{base}/v1/tryons/{i}").json() for i in ids]

    def submit() -> str:
        return httpx.post(f"{base}/v1/tryons", files={"photo": ("a.jpg", photos["person"], "image/jpeg")},
                          data={"garment_id": garment, "force": "true"}, timeout=60).json()["id"]

    def wait(ids, timeout=120) -> list[dict]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            documents = states(ids)
            if all(d["status"] not in ("queued", "running") for d in documents):
                return documents
            time.sleep(0.1)
        raise AssertionError(f"try-ons did not finish: {[d['status'] for d in states(ids)]}")

    server = _serve(base, port, data, environment, "--workers", "0")
    workers = []
    try:
        garment = httpx.post(f"{base}/v1/garments", files={"front": ("t.jpg", photos["garment"], "image/jpeg")},
                             data={"category": "upper"}, headers=SHOP, timeout=60).json()["id"]
        jobs = [submit() for _ in range(6)]
        time.sleep(1)
        assert {d["status"] for d in states(jobs)} == {"queued"}  # nobody runs try-ons in the server
        workers.append(worker())
        killed = None
        deadline = time.time() + 120
        while killed is None and time.time() < deadline:
            running = [d["id"] for d in states(jobs) if d["status"] == "running"]
            if running:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait(30)
                killed = running[0]
            time.sleep(0.01)
        assert killed is not None, "the worker never ran a try-on"
        scraped = [_free_port(), _free_port()]  # the two new workers serve their own /metrics
        workers += [worker("--metrics-port", str(p)) for p in scraped]
        documents = wait(jobs)
        assert [d["status"] for d in documents] == ["done"] * 6, documents
        assert {d["id"]: d["attempts"] for d in documents}[killed] == 2  # run again, by another worker
        metrics = httpx.get(f"{base}/metrics").text
        assert "fitroom_workers 2.0" in metrics and "fitroom_queue_depth 0.0" in metrics
        done = 0.0
        for port_ in scraped:  # what each worker finished is counted where it ran, not in the API
            text = httpx.get(f"http://127.0.0.1:{port_}/metrics").text
            assert "fitroom_workers 2.0" in text and "fitroom_queue_depth 0.0" in text
            done += float(text.split('fitroom_tryons_total{outcome="done"} ')[1].split()[0])
        assert done == 6  # the five left, and the killed one again
        # SIGTERM while a try-on runs: it is finished, then the worker stops
        last = submit()
        deadline = time.time() + 60
        while states([last])[0]["status"] == "queued" and time.time() < deadline:
            time.sleep(0.01)
        for process in workers[1:]:
            process.send_signal(signal.SIGTERM)
        for process in workers[1:]:
            assert process.wait(60) == 0, process.stderr.read()
        finished = states([last])[0]
        assert (finished["status"], finished["attempts"]) == ("done", 1)
    finally:
        for process in workers:
            process.kill()
            process.wait(30)
        server.terminate()
        server.wait(30)
    results = sorted(p.name.split("-")[0] for p in (data / "results").glob("*.png"))
    assert results == sorted([*jobs, last])  # one result per try-on: the killed attempt's left nothing behind


def test_odd_but_decodable_photos_get_a_report_not_an_error(tmp_path, preprocessor):
    shapes = [(1, 1, 3), (2, 2, 3), (5, 3000, 3), (3000, 5, 3), (300, 200), (300, 200, 4)]
    with make_client(tmp_path, preprocessor) as client:
        for shape in shapes:
            mode = "RGBA" if shape[-1:] == (4,) else None
            buffer = io.BytesIO()
            Image.fromarray(np.zeros(shape, np.uint8), mode).save(buffer, format="PNG")
            response = client.post("/v1/checks", files={"photo": ("x.png", buffer.getvalue(), "image/png")})
            assert response.status_code == 200, (shape, response.text)
            assert response.json()["status"] == "fail"  # too small, or nobody in it


def test_on_a_shops_site_cors_root_path_and_forwarded_addresses(tmp_path, preprocessor, photos):
    """No CORS (preflight 405), absolute /v1 paths in the pages, the rate limit keyed on the proxy's address."""
    preflight = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
    with make_client(tmp_path / "plain", preprocessor) as client:
        answer = client.options("/v1/tryons", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers  # no origin is allowed unless configured
    with make_client(tmp_path / "shop", preprocessor, cors_origins="https://shop.example, https://www.shop.example",
                     root_path="/fitroom", trusted_proxies="testclient", rate_limit_per_minute=2) as client:
        answer = client.options("/v1/tryons", headers=preflight)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://shop.example"
        assert client.options("/v1/tryons", headers={**preflight, "Origin": "https://evil.example"}).status_code == 400
        listed = client.get("/v1/garments", headers={"Origin": "https://shop.example"})
        assert listed.headers["access-control-allow-origin"] == "https://shop.example"
        # the pages start every request from the root path, and the API's URLs carry it
        for page in ("/", "/admin"):
            html = client.get(page).text
            assert '<meta name="fitroom-root" content="/fitroom">' in html and '"/v1/' not in html
        assert client.get("/fitroom/healthz").status_code == 200  # a proxy that keeps the prefix works as well
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}, headers={"X-Forwarded-For": "10.0.0.9"})
        assert wait_done(client, job.json()["id"])["result_url"].startswith("/fitroom/v1/tryons/")
        # the client is the address the trusted proxy forwards: each shopper has their own limit
        codes = [client.post("/v1/checks", files={"photo": ("x.jpg", b"junk", "image/jpeg")},
                             headers={"X-Forwarded-For": address}).status_code
                 for address in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2")]
        assert codes == [415, 415, 429, 415]
    with make_client(tmp_path / "untrusted", preprocessor, rate_limit_per_minute=2) as client:
        codes = [client.post("/v1/checks", files={"photo": ("x.jpg", b"junk", "image/jpeg")},
                             headers={"X-Forwarded-For": address}).status_code
                 for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3")]
        assert codes == [415, 415, 429]  # without a trusted proxy the header is anyone's to forge


def test_serve_passes_the_access_log_and_root_path_to_the_server(tmp_path, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(
        kwargs, root=app.state.settings.root_path, checks=app.state.settings.check_processes))
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "serve", "--access-log", "--root-path", "/fitroom", "--port", "8123",
                 "--check-processes", "3"]) == 0
    assert seen["access_log"] is True and seen["log_level"] == "info" and seen["proxy_headers"] is False
    assert seen["checks"] == 3
    assert seen["root"] == "/fitroom" and seen["port"] == 8123
    seen.clear()
    assert main(["-q", "serve"]) == 0
    assert seen["access_log"] is False and seen["log_level"] == "warning"


def test_the_service_and_the_command_line_give_the_same_try_on(tmp_path, preprocessor, photos):
    """One orchestration (fitroom.fitting) behind both: the same photo and garment give the same pixels, and the
    same refusal."""
    from fitroom.demo import sample_path
    from fitroom.engines import create_engine

    with make_client(tmp_path, preprocessor, engine=create_engine("warp")) as client:
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("me.jpg", photos["person"], "image/jpeg")},
                          data={"garment_id": garment, "view": "front"}).json()
        served = imaging.load_image(client.get(wait_done(client, job["id"])["result_url"]).content)
        crowd = imaging.load_image(sample_path("astronaut.jpg"))
        two = io.BytesIO()
        Image.fromarray(np.concatenate([crowd, crowd], axis=1)).save(two, format="PNG")
        refused = client.post("/v1/tryons", files={"photo": ("two.png", two.getvalue(), "image/png")},
                              data={"garment_id": garment, "view": "front"}).json()
    out = tmp_path / "cli.png"
    assert main(["-q", "tryon", "--person", str(sample_path("person_front.jpg")), "--garment",
                 str(sample_path("garment_tee_front.jpg")), "--category", "upper", "--view", "front",
                 "--out", str(out)]) == 0
    np.testing.assert_array_equal(imaging.load_image(out), served)
    (tmp_path / "two.png").write_bytes(two.getvalue())
    assert main(["-q", "tryon", "--person", str(tmp_path / "two.png"), "--garment",
                 str(sample_path("garment_tee_front.jpg")), "--out", str(tmp_path / "no.png")]) == 2
    assert refused["error"]["code"] == "photo_refused" and "2 people were found" in refused["error"]["message"]


def test_errors_sent_to_clients_hold_no_server_path(tmp_path, preprocessor, photos):
    from fitroom.service.errors import public_message

    with make_client(tmp_path, preprocessor) as client:
        garment = add_garment(client, photos)
        for stored in (tmp_path / "data" / "garments").glob("*_front*.png"):
            stored.unlink()  # the garment's files are lost from the disk: the job cannot read them
        job = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}).json()
        failed = wait_done(client, job["id"])
        assert failed["status"] == "failed" and "photo is missing on the server" in failed["error"]
        assert str(tmp_path) not in failed["error"] and "garments/" not in failed["error"], failed["error"]
        missing = client.get(f"/v1/garments/{garment}/front.png")
        assert missing.status_code == 404 and str(tmp_path) not in missing.text
    assert public_message(ValueError("data/photos/x.png: the image is damaged"), Path("data")) == (
        "a file on the server: the image is damaged")
    assert public_message(ValueError("C:\\fitroom\\data\\a.png: no"), Path("/srv")) == "a file on the server: no"


def test_any_declared_view_a_garment_has_a_photo_of_can_be_tried_on(tmp_path, preprocessor, photos):
    """Views are data: a side view is added to a garment through the API and tried on; a view it lacks is a 400
    that names the views it has."""
    with make_client(tmp_path, preprocessor) as client:
        garment = add_garment(client, photos)
        side = {"photo": ("side.jpg", photos["garment"], "image/jpeg")}
        assert client.put(f"/v1/garments/{garment}/photos/side-left", files=side).status_code == 401
        document = client.put(f"/v1/garments/{garment}/photos/side-left", files=side, headers=SHOP).json()
        assert document["views"] == ["front", "back", "side-left"]
        assert client.get(f"/v1/garments/{garment}/side-left.png").status_code == 200
        job = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "view": "side-left", "force": "true"}).json()
        done = wait_done(client, job["id"])
        assert done["status"] == "done" and done["view"] == "side-left"
        missing = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                              data={"garment_id": garment, "view": "side-right"})
        assert missing.status_code == 400 and "front, back, side-left" in missing.json()["error"]["message"]
        assert client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                           data={"garment_id": garment, "view": "upside-down"}).status_code == 422


def test_a_schema_3_database_is_migrated_to_photos_by_view(database_url):
    import sqlalchemy as sa

    from fitroom.service import storage

    engine = storage.connect(database_url)
    with engine.begin() as connection:  # a database as schema 3 left it, with one garment
        storage.schema_version.create(connection)
        for version, _, apply in storage.MIGRATIONS[:3]:
            apply(connection)
            connection.execute(storage.schema_version.insert().values(version=version, applied_at=storage.now()))
        connection.execute(storage.garments.insert().values(id="g1", name="tee", category="upper", front="f.png",
                                                            front_mask="fm.png", back="b.png", back_mask="bm.png",
                                                            created_at=storage.now()))
    latest = storage.MIGRATIONS[-1][0]
    assert storage.migrate(engine) == latest
    with engine.connect() as connection:
        rows = connection.execute(sa.select(storage.garment_photos).order_by(storage.garment_photos.c.view)).all()
    assert [(r.view, r.photo, r.mask) for r in rows] == [("back", "b.png", "bm.png"), ("front", "f.png", "fm.png")]
    assert storage.migrate(engine) == latest  # nothing applied twice


def test_a_schema_4_database_gets_the_job_queue_and_its_unfinished_jobs_run(database_url):
    """Schema 5 adds attempts, leases and workers; try-ons a schema-4 server left queued or running (no lease) are
    claimed by the new queue, oldest first."""
    import datetime as dt

    import sqlalchemy as sa

    from fitroom.service import storage
    from fitroom.service.queue import JobQueue

    engine = storage.connect(database_url)
    with engine.begin() as connection:  # a database as schema 4 left it
        storage.schema_version.create(connection)
        for version, _, apply in storage.MIGRATIONS[:4]:
            apply(connection)
            connection.execute(storage.schema_version.insert().values(version=version, applied_at=storage.now()))
        for column in ("attempts", "worker", "lease_until"):  # _v1 made today's table: take away what 5 adds
            connection.execute(sa.text(f"ALTER TABLE tryons DROP COLUMN {column}"))
        connection.execute(sa.text("INSERT INTO garments (id, name, category, front, front_mask, created_at) "
                                   "VALUES ('g1', 'tee', 'upper', 'garments/f.png', 'garments/fm.png', :t)"),
                           {"t": storage.now()})
        for number, status in enumerate(("running", "queued", "done")):
            connection.execute(sa.text(
                "INSERT INTO tryons (id, garment_id, view, status, photo, engine, model_version, share, created_at) "
                "VALUES (:id, 'g1', 'front', :status, 'photos/p.png', 'warp', 'warp', false, :t)"),
                {"id": f"t{number}", "status": status, "t": storage.now() + dt.timedelta(seconds=number)})
    assert storage.migrate(engine) == 5
    assert {c["name"] for c in sa.inspect(engine).get_columns("tryons")} >= {"attempts", "worker", "lease_until"}
    queue = JobQueue(engine, lease_s=30)
    claims = [queue.claim("w1"), queue.claim("w1"), queue.claim("w1")]
    assert [(c.id, c.attempt) for c in claims[:2]] == [("t0", 1), ("t1", 1)] and claims[2] is None
    engine.dispose()


def test_readiness_says_when_the_database_or_the_image_storage_cannot_be_used(tmp_path, preprocessor):
    """/readyz: ready while the database answers and the image folders are writable; 503 with the reason in words
    (no address, no path) when the database cannot be reached or the storage cannot be written."""
    from fitroom.service import storage

    with make_client(tmp_path, preprocessor) as client:
        assert client.get("/readyz").status_code == 200
        room = client.app.state.room
        working = room.db
        room.db = storage.connect("postgresql+psycopg://nobody@127.0.0.1:1/none")  # nothing listens on port 1
        try:
            answer = client.get("/readyz")
            assert answer.status_code == 503 and answer.json()["error"] == {
                "code": "not_ready", "message": "the database is unreachable"}
        finally:
            room.db.dispose()
            room.db = working
        assert client.get("/readyz").status_code == 200
        if os.geteuid() != 0:  # root writes anywhere
            (tmp_path / "data" / "results").chmod(0o500)
            try:
                assert client.get("/readyz").json()["error"]["message"] == "the image storage is not writable"
            finally:
                (tmp_path / "data" / "results").chmod(0o700)


def test_every_answer_carries_a_request_id_and_json_logs_hold_it(tmp_path, preprocessor, monkeypatch):
    """X-Request-ID: the caller's when it is a short token, else a new one, on answers and refusals alike; log
    records made during a request carry it, and FITROOM_LOG_FORMAT=json writes them as JSON lines."""
    import json
    import logging

    from fitroom.service.logs import REQUEST_ID, JsonFormatter, RequestIdFilter, configure

    with make_client(tmp_path, preprocessor) as client:
        assert client.get("/healthz", headers={"X-Request-ID": "shop-42.a_b"}).headers["x-request-id"] == "shop-42.a_b"
        for hostile in ("<script>alert(1)</script>", "x" * 65, "a b"):
            rid = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["x-request-id"]
            assert rid != hostile and len(rid) == 32
        refused = client.get("/v1/tryons/unknown")
        assert refused.status_code == 404 and len(refused.headers["x-request-id"]) == 32
    token = REQUEST_ID.set("req-1")
    try:
        record = logging.LogRecord("fitroom.service", logging.WARNING, __file__, 1, "try-on %s failed", ("t1",), None)
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "req-1" and line["message"] == "try-on t1 failed" and line["level"] == "warning"
    handler = logging.StreamHandler()
    configure("json", [handler])
    assert isinstance(handler.formatter, JsonFormatter)
    assert any(isinstance(f, RequestIdFilter) for f in handler.filters)
    import uvicorn

    from fitroom.service import logs

    seen, formats = {}, []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(logs, "configure", formats.append)  # (the test session's own log handlers stay as they are)
    monkeypatch.setenv("FITROOM_LOG_FORMAT", "json")
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "serve"]) == 0
    assert formats == ["json"] and seen["log_config"] is None  # uvicorn's own lines go through the JSON handlers


def test_checks_in_processes_of_their_own_answer_as_the_server_does(tmp_path, preprocessor, photos, monkeypatch):
    """FITROOM_CHECK_PROCESSES=2: photo checks run in two spawned processes (each with its own mediapipe graphs),
    side by side; the reports equal the in-server ones, and the try-on finishes the analysis from the findings a
    checker made (the server runs no model on the person photo itself)."""
    from concurrent.futures import ThreadPoolExecutor

    upload = {"photo": ("me.jpg", photos["person"], "image/jpeg")}
    with make_client(tmp_path / "here", preprocessor) as client:
        expected = client.post("/v1/checks", files=upload).json()
    analysed = []
    for name in ("detect", "analyse_person", "observe", "glance"):
        monkeypatch.setattr(preprocessor, name, lambda *a, **k: analysed.append(1))
    with make_client(tmp_path / "there", preprocessor, check_processes=2) as client:
        assert client.app.state.room._checkers.processes == 2
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.post("/v1/checks", files=upload), range(4)))
        assert all(a.status_code == 200 for a in answers)
        assert all(a.json() == expected for a in answers)
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("me.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}).json()
        assert wait_done(client, job["id"])["status"] == "done"
    assert analysed == []


class FlakyEngine(TinyEngine):
    """Fails with an unexpected error the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self, inputs):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("/srv/secret/path: a crash inside the engine")
        return super().__call__(inputs)


@pytest.mark.parametrize("failures, status, attempts", [(2, "done", 3), (3, "failed", 3)])
def test_an_unexpected_failure_is_tried_again_at_most_three_times(tmp_path, preprocessor, photos, failures, status,
                                                                   attempts):
    with make_client(tmp_path, preprocessor, engine=FlakyEngine(failures), poll_s=0.05) as client:
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                          data={"garment_id": garment, "force": "true"}).json()
        document = wait_done(client, job["id"])
        assert (document["status"], document["attempts"]) == (status, attempts)
        if status == "failed":  # the reason, without the server's internals
            assert document["error"] == ("the try-on failed 3 times; the last time: an unexpected error (it was "
                                         "logged on the server)")
        else:
            assert client.get(f"/v1/tryons/{job['id']}/result.png").status_code == 200
        results = list((tmp_path / "data" / "results").glob("*.png"))
        assert len(results) == (status == "done")
        # the saved analysis is removed once the job ends, and not before
        assert not list((tmp_path / "data" / "photos").glob("*.analysis.npz"))


def test_images_in_s3_from_upload_to_retention_and_deletion(tmp_path, preprocessor, photos, s3_bucket, database_url):
    """FITROOM_STORAGE=s3://bucket/prefix on a real S3-compatible server: garments, shoppers' photos, analyses and
    results are objects there (none in the data folder); retention and deletion remove them."""
    import boto3

    def keys() -> list[str]:
        listing = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)
        return sorted(o["Key"].removeprefix("shop/") for o in listing.get("Contents", []))

    with make_client(tmp_path, preprocessor, storage=f"s3://{s3_bucket}/shop", database_url=database_url,
                     poll_s=0.05) as client:
        assert client.get("/readyz").status_code == 200
        garment = add_garment(client, photos)
        assert client.get(f"/v1/garments/{garment}/front.png").content == boto3.client("s3").get_object(
            Bucket=s3_bucket, Key=f"shop/garments/{garment}_front.png")["Body"].read()
        done, kept = [client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                                  data={"garment_id": garment, "share": share}).json()["id"]
                      for share in ("false", "true")]
        for job in (done, kept):
            assert wait_done(client, job)["status"] == "done"
        result = client.get(f"/v1/tryons/{done}/result.png")
        assert result.status_code == 200 and imaging.load_image(result.content).shape[2] == 3
        assert f"results/{done}-1.png" in keys() and f"photos/{done}.png" in keys()
        assert not any(k.endswith(".analysis.npz") for k in keys())  # used by the job, then removed
        assert not [p for p in (tmp_path / "data").rglob("*") if p.suffix in (".png", ".npz")]
        room = client.app.state.room
        assert room.expire(at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=48)) == 1
        assert f"photos/{done}.png" not in keys() and f"results/{done}-1.png" not in keys()
        assert f"photos/{kept}.png" in keys()  # shared: kept
        assert client.delete(f"/v1/tryons/{kept}").status_code == 204
        assert [k for k in keys() if not k.startswith("garments/")] == []
        assert client.delete(f"/v1/garments/{garment}", headers=SHOP).status_code == 204
        assert keys() == []
        boto3.client("s3").delete_bucket(Bucket=s3_bucket)  # the storage goes away: not ready, said in words
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["message"] == "the image storage is unreachable"


def test_the_garments_category_drives_the_check_the_agnostic_person_and_what_the_engine_is_given(
        tmp_path, preprocessor, photos, monkeypatch):
    """A dress with an engine that does not dress them (the warp engine made to say so): the fitting room lists
    it as not tryable and refuses its try-on in words; a lower garment reaches an engine with the lower garment's
    agnostic person (legs greyed, the top kept); the photo check asks a half-body photo for the legs only for
    trousers, and passes the full-length photo for all three categories."""
    from fitroom.engines.warp import WarpEngine
    from fitroom.labels import GarmentCategory

    monkeypatch.setattr(WarpEngine, "categories", frozenset({GarmentCategory.UPPER, GarmentCategory.LOWER}))
    with make_client(tmp_path, preprocessor) as client:
        response = client.post("/v1/garments", files={"front": ("t.png", photos["garment"], "image/png")},
                               data={"name": "a dress", "category": "dress"}, headers=SHOP)
        assert response.status_code == 201 and response.json()["can_try_on"] is False
        dress = response.json()["id"]
        upper = add_garment(client, photos)
        assert {g["id"]: g["can_try_on"] for g in client.get("/v1/garments").json()} == {dress: False, upper: True}
        refused = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                              data={"garment_id": dress, "force": "true"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "unsupported_category"
        assert refused.json()["error"]["message"] == ("this fitting room's warp engine tries on tops and trousers, "
                                                      "shorts and skirts only, not dresses")
        for category in ("upper", "lower", "dress"):
            report = client.post("/v1/checks", files={"photo": ("a.jpg", photos["person"], "image/jpeg")},
                                 data={"category": category}).json()
            assert {c["name"]: c["status"] for c in report["checks"]}["full_length"] == "pass", category
        person = imaging.load_image(photos["person"])
        half = png(person[: person.shape[0] // 2])
        checks = {}
        for category in ("upper", "lower"):
            report = client.post("/v1/checks", files={"photo": ("half.png", half, "image/png")},
                                 data={"category": category}).json()
            checks[category] = {c["name"]: c for c in report["checks"]}["full_length"]
        assert checks["lower"]["status"] == "fail" and checks["upper"]["status"] != "fail"
        assert "feet" in checks["lower"]["message"] + checks["lower"]["fix"] or \
            "legs" in checks["lower"]["message"] + checks["lower"]["fix"]

    given = []

    class EveryCategory(TinyEngine):
        categories = frozenset(GarmentCategory)

        def __call__(self, inputs):
            given.append(inputs)
            return super().__call__(inputs)

    with make_client(tmp_path / "any", preprocessor, engine=EveryCategory(), poll_s=0.05) as client:
        response = client.post("/v1/garments", files={"front": ("t.png", photos["garment"], "image/png")},
                               data={"name": "trousers", "category": "lower"}, headers=SHOP)
        assert response.json()["can_try_on"] is True
        job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                          data={"garment_id": response.json()["id"], "force": "true"}).json()
        assert wait_done(client, job["id"])["status"] == "done"
    (inputs,) = given
    from fitroom.labels import Cihp, LOWER_GARMENT_LABELS

    grey = (inputs.agnostic == 128).all(-1)
    assert inputs.category is GarmentCategory.LOWER
    assert grey[np.isin(inputs.parse, LOWER_GARMENT_LABELS)].mean() > 0.9
    assert not grey[inputs.parse == Cihp.FACE].any() and grey[inputs.parse == Cihp.UPPER_CLOTHES].mean() < 0.05
    assert not np.isin(inputs.parse_agnostic, LOWER_GARMENT_LABELS).any()


def test_damaged_saved_findings_are_made_again_and_the_try_on_done(tmp_path, preprocessor, photos):
    with make_client(tmp_path, preprocessor, workers=0) as client:  # no worker: the job waits for the test
        garment = add_garment(client, photos)
        job = client.post("/v1/tryons", files={"photo": ("a.png", photos["person"], "image/png")},
                          data={"garment_id": garment}).json()
        saved = tmp_path / "data" / "photos" / f"{job['id']}.analysis.npz"
        assert saved.is_file()
        saved.write_bytes(b"PK\x03\x04 not really a zip")
        room = client.app.state.room
        detected = []
        original = preprocessor.detect
        preprocessor.detect = lambda *a, **k: detected.append(1) or original(*a, **k)
        try:
            assert room.runner.run(room.queue.claim("test-worker")) == "done"
        finally:
            del preprocessor.detect
        assert detected == [1] and not saved.exists()
        assert client.get(f"/v1/tryons/{job['id']}").json()["status"] == "done"
