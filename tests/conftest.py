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
