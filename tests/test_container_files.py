"""The Dockerfile and compose.yaml stay in step with the code: what they copy exists, the settings they pass are
settings the service reads, the extra they install is declared, the health check is a route. (No Docker daemon
runs on the test machines, so the image itself is not built here.)"""

import re
import shlex
import tomllib
from pathlib import Path

import yaml

from fitroom.service.app import create_app
from fitroom.service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split()[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerfile_copies_what_exists_installs_declared_extras_and_serves(tmp_path):
    steps = _instructions()
    for kind, rest in steps:
        if kind == "COPY":
            *sources, _ = rest.split()
            assert all((ROOT / s).exists() for s in sources), rest
    install = next(rest for kind, rest in steps if kind == "RUN" and "pip install" in rest)
    extras = set(re.findall(r"\.\[([a-z0-9,]+)\]", install)[0].split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras <= set(declared)
    command = next(rest for kind, rest in steps if kind == "CMD")
    assert shlex.split(command.replace("[", "").replace("]", "").replace(",", " "))[:4] == [
        "fitroom", "serve", "--host", "0.0.0.0"]
    health = next(rest for kind, rest in steps if kind == "HEALTHCHECK")
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", health).group(1)
    routes = {getattr(route, "path", None) for route in create_app(Settings(data_dir=tmp_path)).routes}
    assert path in routes
    environment = " ".join(rest for kind, rest in steps if kind == "ENV")
    assert all(name.removeprefix("FITROOM_").lower() in Settings.model_fields
               for name in re.findall(r"(FITROOM_\w+)=", environment) if name != "FITROOM_WEIGHTS")


def test_compose_runs_the_api_on_postgresql_with_settings_the_service_reads():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    api, db = compose["services"]["api"], compose["services"]["db"]
    assert api["build"] == "." and db["image"].startswith("postgres")
    for name in api["environment"]:
        assert name.startswith("FITROOM_") and name.removeprefix("FITROOM_").lower() in Settings.model_fields, name
    url = api["environment"]["FITROOM_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    assert db["environment"]["POSTGRES_DB"] == url.rsplit("/", 1)[1]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    # the try-ons run in worker containers on the same database and images
    worker = compose["services"]["worker"]
    assert api["environment"]["FITROOM_WORKERS"] == "0" and worker["command"][:2] == ["fitroom", "worker"]
    assert worker["command"][2:] == ["--metrics-port", "9101", "--metrics-host", "0.0.0.0"]
    assert worker["environment"]["FITROOM_DATABASE_URL"] == url and worker["volumes"] == api["volumes"]
    for name in worker["environment"]:
        assert name.removeprefix("FITROOM_").lower() in Settings.model_fields, name
    from fitroom.cli import build_parser

    build_parser().parse_args(worker["command"][1:])  # a command the CLI has
