"""Metrics: SSIM against scikit-image, FID/KID arithmetic against closed forms, the backbones' loading code with
random weights in the published layouts, and plain messages when weights are missing."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from fitroom.errors import MissingWeightsError
from fitroom.metrics import FeatureDistances, LPIPS, MetricUnavailable, psnr, ssim_gray_hrviton, ssim_rgb
from fitroom.metrics.perceptual import InceptionFeatures


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 64, 48, generator=g)
    b = (a + 0.15 * torch.randn(2, 3, 64, 48, generator=g)).clamp(0, 1)
    return a, b


def _numpy(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).double().numpy()


def test_rgb_ssim_matches_scikit_image(pair):
    a, b = pair
    expected = [structural_similarity(_numpy(a[i]), _numpy(b[i]), channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0) for i in range(2)]
    np.testing.assert_allclose(ssim_rgb(a, b).numpy(), expected, atol=1e-5)
    assert ssim_rgb(a, a).numpy() == pytest.approx([1.0, 1.0])


def test_hrviton_grey_ssim_matches_its_evaluation(pair):
    a, b = pair

    def grey(image):  # what HR-VITON's evaluate.py compares: 8-bit luma
        eight_bit = (_numpy(image) * 255).round().astype(np.uint8)
        return np.asarray(Image.fromarray(eight_bit).convert("L")).astype(np.float64)

    expected = [structural_similarity(grey(a[i]), grey(b[i]), gaussian_weights=True, use_sample_covariance=False,
                                      data_range=255) for i in range(2)]
    # PIL rounds its luma in fixed point; ours in floating point: a grey level may differ by one now and then
    np.testing.assert_allclose(ssim_gray_hrviton(a, b).numpy(), expected, atol=2e-3)
    assert not np.allclose(ssim_gray_hrviton(a, b).numpy(), ssim_rgb(a, b).numpy(), atol=1e-3)


def test_psnr_is_the_formula(pair):
    a, b = pair
    mse = ((a - b) ** 2).mean((1, 2, 3))
    torch.testing.assert_close(psnr(a, b), 10 * torch.log10(1 / mse))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        psnr(a[:, :1], b[:, :1])


def test_fid_of_shifted_and_scaled_features_is_the_closed_form():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0, 1.0], dtype=torch.float64)
    distances = FeatureDistances(extractor=torch.nn.Identity(), kid_subsets=1)
    distances.add_features(x, real=True)
    distances.add_features(x + shift, real=False)
    # equal covariances: FID is the squared distance of the means
    assert distances.compute()["fid"] == pytest.approx(float(shift @ shift), rel=1e-4)
    scaled = FeatureDistances(extractor=torch.nn.Identity(), kid_subsets=1)
    scaled.add_features(x, real=True)
    scaled.add_features(2 * (x - x.mean(0)) + x.mean(0), real=False)
    # covariance S against 4S: tr(S) + tr(4S) - 2 tr(2S) = tr(S)
    assert scaled.compute()["fid"] == pytest.approx(float(torch.cov(x.T).trace()), rel=1e-4)


def test_kid_is_the_unbiased_polynomial_mmd():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64) * 1.5 + 0.3
    distances = FeatureDistances(extractor=torch.nn.Identity(), kid_subsets=1, kid_subset_size=40)
    distances.add_features(x, real=True)
    distances.add_features(y, real=False)
    result = distances.compute()

    def kernel(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3

    n = len(x)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = ((kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
                - 2 * kxy.mean())
    assert result["kid_x1000"] == pytest.approx(float(expected) * 1000, rel=1e-6)
    assert result["kid_subset_size"] == 40 and result["n_real"] == result["n_fake"] == 40


def test_missing_weights_name_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path))
    with pytest.raises(MetricUnavailable, match=r"alexnet-owt-7be5be79\.pth.*fitroom weights fetch alexnet.*"
                                                 r"fitroom weights import alexnet"):
        LPIPS()
    with pytest.raises(MetricUnavailable, match=r"weights-inception-2015-12-05-6726825d\.pth.*fitroom weights"):
        FeatureDistances()


def test_lpips_loads_a_torchvision_alexnet_file(tmp_path, pair, random_backbones):
    metric = LPIPS(backbone=random_backbones["alexnet"])
    a, b = pair
    same, different = metric(a, a), metric(a, b)
    assert same.shape == (2,) and torch.all(same.abs() < 1e-6) and torch.all(different > 0)
    small = LPIPS(backbone=random_backbones["alexnet"], size=(32, 32))(a, b)
    assert small.shape == (2,) and not torch.allclose(small, different)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not torchvision's AlexNet"):
        LPIPS(backbone=tmp_path / "wrong.pth")


def test_inception_features_load_the_torch_fidelity_layout(pair, random_backbones):
    features = InceptionFeatures(random_backbones["inception-fid"])
    a, b = pair
    out = features(a)
    assert out.shape == (2, 2048) and torch.isfinite(out).all()
    distances = FeatureDistances(extractor=features, kid_subsets=5)
    distances.add(a, real=True)
    distances.add(b, real=False)
    result = distances.compute()
    assert result["n_real"] == 2 and result["kid_subset_size"] == 2 and np.isfinite(result["fid"])


def test_weights_import_checks_the_published_hash(tmp_path, monkeypatch):
    from fitroom import weights

    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path / "cache"))
    torch.save({"w": torch.zeros(2)}, tmp_path / "some.pth")
    with pytest.raises(ValueError, match="starts with 7be5be79"):
        weights.import_file("alexnet", tmp_path / "some.pth")
    assert not (tmp_path / "cache" / "alexnet-owt-7be5be79.pth").exists()
    path = weights.import_file("inception-fid", tmp_path / "some.pth")  # no published hash: imported as given
    assert path.is_file() and weights.find("inception-fid") == path
    (tmp_path / "junk.pth").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="not a loadable tensor file"):
        weights.import_file("inception-fid", tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="unknown weights"):
        weights.import_file("nonsense", tmp_path / "some.pth")


class _Response:
    """What urlopen returns, serving ``data``."""

    def __init__(self, data: bytes) -> None:
        import io

        self.stream, self.headers = io.BytesIO(data), {"Content-Length": str(len(data))}

    def read(self, size=-1):
        return self.stream.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_weights_fetch_checks_the_download_and_explains_a_missing_network(tmp_path, monkeypatch):
    import hashlib
    import urllib.error

    from fitroom import weights

    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path / "cache"))
    payload = b"published bytes"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    entry = weights.WeightFile("alexnet", "alexnet-owt-test.pth", "test", "https://example.invalid/a.pth", prefix)
    monkeypatch.setattr(weights, "entry", lambda name: entry)
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    path = weights.fetch("alexnet")
    assert path.read_bytes() == payload and not list(path.parent.glob("*.partial"))

    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: _Response(b"tampered"))
    path.unlink()
    with pytest.raises(ValueError, match=f"starts with {prefix}"):
        weights.fetch("alexnet")
    assert not path.exists() and not list(path.parent.glob("*.partial"))  # nothing half-trusted left behind

    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(weights.urllib.request, "urlopen", offline)
    with pytest.raises(MissingWeightsError, match="fitroom weights import alexnet FILE"):
        weights.fetch("alexnet")
