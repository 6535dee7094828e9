import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """A small synthetic dataset written once per session: 8 identities at 256x192, front and back."""
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("synth") / "data"
    synthesize(SynthConfig(out=out, count=8, size=(256, 192), seed=3, workers=1), progress=False)
    return out


@pytest.fixture(scope="session")
def preprocessor():
    """One set of mediapipe models for the whole session (loading them takes about a second)."""
    from fitroom.preprocess.pipeline import Preprocessor

    with Preprocessor() as instance:
        yield instance


@pytest.fixture(scope="session")
def astronaut():
    from fitroom import imaging
    from fitroom.demo import sample_path

    return imaging.load_image(sample_path("astronaut.jpg"))


@pytest.fixture(scope="session")
def random_backbones(tmp_path_factory):
    """torchvision's AlexNet and torch-fidelity's Inception-v3 in their published layouts, with random values:
    ``{"alexnet": path, "inception-fid": path}``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchvision.models import alexnet

    class RandomInit(FeatureExtractorInceptionV3):  # builds the network and keeps its random initial weights
        def load_state_dict(self, state_dict, strict=True, assign=False):
            return None

    folder = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    torch.save(alexnet(weights=None).state_dict(), folder / "alexnet.pth")
    torch.save({}, folder / "empty.pth")
    network = RandomInit("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(folder / "empty.pth"))
    torch.save(network.state_dict(), folder / "inception.pth")
    return {"alexnet": folder / "alexnet.pth", "inception-fid": folder / "inception.pth"}


def _postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl): on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    import glob
    import shutil

    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(folders[-1]) if folders and Path(folders[-1], "pg_ctl").is_file() else None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for this test session: ``initdb`` in a temporary folder, listening on a free
    loopback port (and a socket in that folder), trust authentication for the user ``fitroom``; stopped and removed
    afterwards. Run as the ``postgres`` system user when the tests run as root (initdb refuses root). Skipped, with
    the reason, where PostgreSQL's server programs are not installed (``scripts/test`` installs Debian's package)."""
    import shutil
    import socket
    import subprocess
    import tempfile

    folder = _postgres_bin()
    if folder is None:
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql "
                    "(scripts/test does it where it can)")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="fitroom-postgres-"))
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("the tests run as root and there is no postgres user to run a PostgreSQL server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"

    def run(*command: str) -> None:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")

    run(str(folder / "initdb"), "-D", str(data), "-U", "fitroom", "--auth=trust", "-E", "UTF8", "--no-sync")
    run(str(folder / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "fitroom"}
    finally:
        subprocess.run([*prefix, str(folder / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The service's database for one test: a SQLite file, or a new database on the session's throwaway
    PostgreSQL server (:func:`postgres_server`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fitroom.db'}"
    import uuid

    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'fitroom[postgres]'")
    server = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=server["host"], port=server["port"], user=server["user"], dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{server['user']}@{server['host']}:{server['port']}/{name}"


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server for this test session (moto in server mode, ``moto_server`` from the test extra) on
    a free loopback port; its address and test credentials as the AWS environment variables boto3 reads."""
    import shutil
    import socket
    import subprocess
    import sys
    import time

    import httpx

    program = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if program is None:
        pytest.skip("moto's server is not installed: pip install 'moto[server]' (in fitroom's test extra)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("moto_server did not start")
            time.sleep(0.1)
    try:
        yield {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_DEFAULT_REGION": "us-east-1"}
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """A new, empty bucket on the session's S3 server, with the AWS variables set for this test: its name."""
    import uuid

    boto3 = pytest.importorskip("boto3", reason="boto3 is not installed: pip install 'fitroom[s3]'")
    for name, value in s3_server.items():
        monkeypatch.setenv(name, value)
    name = f"fitroom-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
