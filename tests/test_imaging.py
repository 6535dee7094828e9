import io

import numpy as np
import pytest
import torch
from PIL import Image

from fitroom import imaging


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    array = (rng.random((40, 30, 3)) * 255).astype(np.uint8)
    array[:5] = (255, 0, 0)  # a red band on top, to see orientation
    return array


def test_format_is_sniffed_not_taken_from_the_name(tmp_path, photo):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_encode(Image.fromarray(photo), "PNG"))  # PNG bytes under a .jpg name
    loaded = imaging.load_image(path)
    np.testing.assert_array_equal(loaded, photo)  # lossless: it was read as PNG


def test_exif_orientation_is_applied(photo):
    image = Image.fromarray(photo)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    loaded = imaging.load_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=98))
    assert loaded.shape == (30, 40, 3)
    # the red band (top of the stored image) is now on the right
    assert loaded[:, -3:, 0].mean() > 200 and loaded[:, -3:, 1].mean() < 60


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "1", "I;16"])
def test_every_mode_becomes_rgb(mode, photo):
    image = Image.fromarray(photo)
    if mode == "I;16":
        image = Image.fromarray(photo[..., 0].astype(np.uint16) * 257)
        assert image.mode == "I;16"
    else:
        image = image.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    loaded = imaging.load_image(_encode(image, fmt))
    assert loaded.dtype == np.uint8 and loaded.shape == (40, 30, 3)
    if mode == "I;16":  # 16-bit is scaled, not clipped
        np.testing.assert_allclose(loaded[..., 0], photo[..., 0], atol=1)


def test_transparent_pixels_become_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom transparent
    loaded = imaging.load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(loaded[0, 0]) == (200, 0, 0) and tuple(loaded[3, 3]) == (255, 255, 255)


def test_truncated_file_is_rejected(photo):
    data = _encode(Image.fromarray(photo), "JPEG")
    with pytest.raises(imaging.CorruptImageError, match="damaged or incomplete"):
        imaging.load_image(data[: len(data) // 2])


def test_garbage_and_empty_are_rejected(tmp_path):
    with pytest.raises(imaging.UnsupportedImageError, match="not a photo"):
        imaging.load_image(b"this is a text file, not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(imaging.EmptyImageError, match="empty"):
        imaging.load_image(empty)
    with pytest.raises(imaging.ImageError, match="not found"):
        imaging.load_image(tmp_path / "missing.png")


def test_decompression_bomb_is_refused_before_decoding():
    big = _encode(Image.new("L", (6000, 6000)), "PNG")  # small file, 36 megapixels
    with pytest.raises(imaging.ImageTooLargeError, match="megapixels"):
        imaging.load_image(big, max_pixels=10_000_000)
    with pytest.raises(imaging.ImageTooLargeError):
        imaging.load_image(big, max_bytes=100)


def test_tensor_round_trip_and_range(photo):
    tensor = imaging.image_to_tensor(photo)
    assert tensor.shape == (3, 40, 30) and tensor.min() >= -1 and tensor.max() <= 1
    np.testing.assert_array_equal(imaging.tensor_to_image(tensor), photo)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        imaging.image_to_tensor(photo[..., 0])


def test_resize_keeps_label_values():
    labels = np.zeros((40, 30), np.uint8)
    labels[10:30, 5:25] = 7
    labels[20:, :] = 13
    small = imaging.resize(labels, (20, 15), "labels")
    assert small.shape == (20, 15) and set(np.unique(small)) <= {0, 7, 13}
    assert imaging.resize(np.ones((8, 6), bool), (4, 3), "mask").dtype == bool


def test_label_map_round_trip(tmp_path):
    labels = np.arange(20, dtype=np.uint8).repeat(3).reshape(6, 10)
    from fitroom.labels import CIHP_PALETTE

    imaging.save_label_map(tmp_path / "p.png", labels, CIHP_PALETTE)
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(imaging.load_label_map(tmp_path / "p.png"), labels)


def test_one_hot():
    labels = torch.tensor([[0, 2], [1, 2]])
    encoded = imaging.one_hot(labels, 3)
    assert encoded.shape == (3, 2, 2) and encoded.sum(0).eq(1).all() and encoded[2, 0, 1] == 1


def test_dilate_distance_and_nearest_fill_equal_the_whole_image_versions():
    """The box-limited dilation, OpenCV's distance transform and the box-limited nearest fill give what the
    plain whole-image operations give (scipy's exact transform), on random blobs."""
    import cv2
    from scipy import ndimage

    rng = np.random.default_rng(3)
    for _ in range(4):
        blobs = np.zeros((300, 200), np.uint8)
        for _ in range(3):
            cv2.ellipse(blobs, (int(rng.integers(0, 200)), int(rng.integers(0, 300))),
                        (int(rng.integers(3, 60)), int(rng.integers(3, 60))), float(rng.integers(0, 180)), 0, 360, 1,
                        -1)
        mask = blobs.astype(bool)
        for radius in (1, 7, 30):
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            assert (imaging.dilate(mask, radius) == cv2.dilate(blobs, kernel).astype(bool)).all()
        exact = ndimage.distance_transform_edt(~mask)
        distance = imaging.distance_to(mask)
        assert distance.dtype == np.float32 and np.abs(distance - exact).max() < 1e-3
        assert (distance == exact.astype(np.float32)).all()
        labels = (blobs * rng.integers(1, 5, blobs.shape)).astype(np.uint8)
        holes = mask & (rng.random(mask.shape) < 0.3)
        labels[holes] = 0
        _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        expected = labels.copy()
        expected[holes] = labels[iy[holes], ix[holes]]
        assert (imaging.fill_nearest(labels, holes) == expected).all()
    empty = np.zeros((20, 30), bool)
    assert not imaging.dilate(empty, 5).any() and (imaging.distance_to(empty) >= 1e9).all()
    # on a photo-sized array, with OpenCV on one thread (data preparation's workers) and on several: the exact
    # distances, the same on every call (on one thread OpenCV's own are neither: 3e-5 off, the last bits changing
    # from call to call, OpenCV 4.11), so that ties between two regions are exact ties whatever the threads
    blobs = np.zeros((700, 500), np.uint8)
    for _ in range(5):
        cv2.ellipse(blobs, (int(rng.integers(0, 500)), int(rng.integers(0, 700))),
                    (int(rng.integers(5, 100)), int(rng.integers(5, 100))), 0, 0, 360, 1, -1)
    mask = blobs.astype(bool)
    exact = ndimage.distance_transform_edt(~mask).astype(np.float32)
    threads = cv2.getNumThreads()
    try:
        for count in (1, 2):
            cv2.setNumThreads(count)
            assert all((imaging.distance_to(mask) == exact).all() for _ in range(20)), count
    finally:
        cv2.setNumThreads(threads)


def test_wide_blur_is_the_full_gaussian_within_half_a_percent():
    """The reduced-copy blur stays within 0.5 % of OpenCV's full kernel on a photo's luminance, its borders
    included, for one channel and three; a narrow blur is the full kernel itself."""
    import cv2

    from fitroom.demo import sample_path

    photo = imaging.load_image(sample_path("person_front.jpg"))
    luminance = cv2.cvtColor(photo, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) + 1.0
    for image in (luminance, photo.astype(np.float32) + 1.0, luminance[300:700, 100:400]):
        for sigma in (25.0, 51.2):
            exact = cv2.GaussianBlur(image, (0, 0), sigma)
            fast = imaging.wide_blur(image, sigma)
            assert fast.shape == exact.shape and fast.dtype == exact.dtype
            assert (np.abs(fast - exact) / exact).max() < 0.005, (image.shape, sigma)
    assert (imaging.wide_blur(luminance, 9.0) == cv2.GaussianBlur(luminance, (0, 0), 9.0)).all()
    # a cut-out with no side reflected: 4 sigma in from its sides, the whole photo's blur
    sigma, reach = 25.0, 100
    cut = luminance[200:800, 50:700]
    inner = (slice(reach, -reach), slice(reach, -reach))
    expected = cv2.GaussianBlur(luminance, (0, 0), sigma)[200:800, 50:700][inner]
    fast = imaging.wide_blur(cut, sigma, edges=(False, False, False, False))[inner]
    assert (np.abs(fast - expected) / expected).max() < 0.005
