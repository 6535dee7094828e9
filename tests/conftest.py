import os

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
