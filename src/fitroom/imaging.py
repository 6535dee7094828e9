"""The one image processor: safe loading, saving, resizing and PIL / numpy / tensor conversion.

Every photo that enters fitroom, from a shopper, a dataset or a test, goes through :func:`load_image`, which
never trusts a file name, applies EXIF orientation, converts every colour mode to 8-bit RGB, refuses
decompression bombs before decoding and rejects truncated files. Each failure is an :class:`ImageError` subclass
whose message a shopper could read.

Conventions: numpy images are ``(H, W, 3)`` uint8 RGB; masks are ``(H, W)`` bool; label maps are ``(H, W)``
uint8; tensors are ``(C, H, W)`` float32 in [-1, 1] (images) or [0, 1] (masks). Sizes are ``(height, width)``.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Union

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from fitroom.errors import InputError

if TYPE_CHECKING:  # torch is imported where tensors are made, so image-only work (rendering workers) skips it
    import torch

logger = logging.getLogger(__name__)

ImageSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO]
Size = tuple[int, int]

#: formats accepted as photos, by the name PIL gives after sniffing the bytes
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})
#: default pixel limit: 40 megapixels (a 8000x5000 camera photo) is accepted, a decompression bomb is not
DEFAULT_MAX_PIXELS = 40_000_000
#: read at most this many bytes from one file (a 40 MP TIFF is about 120 MB)
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: background that transparent pixels are composited onto
ALPHA_BACKGROUND = (255, 255, 255)

# A truncated JPEG must be an error, not a grey lower half.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(InputError):
    """A photo could not be used. ``str(error)`` is a plain sentence for the person who supplied it."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


class EmptyImageError(ImageError):
    """The file or upload holds no bytes, or the image has no pixels."""


class UnsupportedImageError(ImageError):
    """The bytes are not an image in a supported format."""


class CorruptImageError(ImageError):
    """The bytes claim to be an image but cannot be decoded (truncated or damaged)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels, or the file more bytes, than allowed."""


def _describe(source: ImageSource) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", None) if not isinstance(source, (bytes, bytearray)) else None


def _read_bytes(source: ImageSource, max_bytes: int) -> bytes:
    name = _describe(source)
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError("file not found", source=name)
        if path.stat().st_size > max_bytes:
            raise ImageTooLargeError(
                f"the file is {path.stat().st_size / 1e6:.0f} MB; at most {max_bytes / 1e6:.0f} MB is accepted",
                source=name)
        data = path.read_bytes()
    else:
        data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the file is larger than {max_bytes / 1e6:.0f} MB", source=name)
    if not data:
        raise EmptyImageError("the file is empty", source=name)
    return data


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; alpha is composited onto white, 16/32-bit greys are rescaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        high = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        grey = np.clip(array / high * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, ALPHA_BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        return background
    if image.mode != "RGB":
        # CMYK, YCbCr, LAB, HSV, L and 1 all have a direct conversion.
        return image.convert("RGB")
    return image


def open_image(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> Image.Image:
    """Open and fully decode a photo, sniffing its format from the bytes, applying EXIF orientation and
    converting it to 8-bit RGB.

    Raises:
        EmptyImageError, UnsupportedImageError, CorruptImageError, ImageTooLargeError: with a plain message.
    """
    name = _describe(source)
    data = _read_bytes(source, max_bytes)
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            "this is not a photo in a format fitroom reads (JPEG, PNG, WebP, BMP, TIFF or GIF)", source=name
        ) from None
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(str(error), source=name) from None
    except (OSError, SyntaxError, ValueError) as error:  # a header cut short
        raise CorruptImageError(
            f"the image data is damaged or incomplete and cannot be read ({error})", source=name) from None
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageError(
            f"{image.format} images are not supported; use JPEG, PNG, WebP, BMP, TIFF or GIF", source=name)
    width, height = image.size
    if width == 0 or height == 0:
        raise EmptyImageError("the image has no pixels", source=name)
    if width * height > max_pixels:
        # Checked before decoding, so a bomb never allocates its pixels.
        raise ImageTooLargeError(
            f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); at most "
            f"{max_pixels / 1e6:.0f} megapixels are accepted, please send a smaller photo", source=name)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptImageError(
            f"the image data is damaged or incomplete and cannot be read ({error})", source=name) from None
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception as error:  # a malformed EXIF block must not lose the photo
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", name or "image", type(error).__name__)
    return _to_rgb(image)


def load_image(
    source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """Load a photo as an ``(H, W, 3)`` uint8 RGB array. See :func:`open_image` for the checks."""
    return np.asarray(open_image(source, max_pixels=max_pixels, max_bytes=max_bytes), dtype=np.uint8).copy()


def load_label_map(path: str | os.PathLike) -> np.ndarray:
    """Load a parse map (``P`` or ``L`` mode PNG) as an ``(H, W)`` uint8 array of label values, palette ignored.

    Raises:
        ImageError: when the file is missing, unreadable or not a single-channel label image.
    """
    name = str(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in ("P", "L"):
                raise ImageError(f"a label map must be a P- or L-mode PNG, this one is {image.mode}", source=name)
            return np.asarray(image, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError("file not found", source=name) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise CorruptImageError(f"cannot read the label map ({error})", source=name) from None


def load_mask(source: ImageSource, threshold: int = 128) -> np.ndarray:
    """Load a mask image as an ``(H, W)`` bool array: a pixel is in the mask when its grey value >= threshold."""
    grey = cv2.cvtColor(load_image(source), cv2.COLOR_RGB2GRAY)
    return grey >= threshold


def save_image(path: str | os.PathLike, image: np.ndarray, *, quality: int = 95) -> None:
    """Save an ``(H, W, 3)`` uint8 RGB array or an ``(H, W)`` bool / uint8 mask. The format follows the suffix:
    ``.jpg`` is JPEG (``quality``), ``.png`` is lossless PNG (zlib level 3: a 1024x768 try-on in 0.09 s instead of
    level 6's 0.32 s, for an 11 % larger file)."""
    data = encode_image(image, Path(path).suffix, quality=quality)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)


def encode_image(image: np.ndarray, suffix: str = ".png", *, quality: int = 95) -> bytes:
    """The bytes :func:`save_image` writes for a file ending in ``suffix`` (``.jpg``/``.jpeg``: JPEG, else PNG)."""
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise TypeError(f"save_image expects uint8 or bool, got {array.dtype}")
    pil = Image.fromarray(array)
    buffer = io.BytesIO()
    if suffix.lower() in (".jpg", ".jpeg"):
        pil.save(buffer, format="JPEG", quality=quality, subsampling=0)
    else:
        pil.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def save_label_map(path: str | os.PathLike, labels: np.ndarray, palette: np.ndarray) -> None:
    """Save an ``(H, W)`` label map as a ``P``-mode PNG whose pixel values are the labels."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"a label map must be (H, W) uint8, got {array.shape} {array.dtype}")
    pil = Image.fromarray(array, mode="P")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(palette)] = palette
    pil.putpalette(flat.reshape(-1).tolist())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pil.save(path)


# ----------------------------------------------------------------------------------------------------------------
# Resizing and conversion
# ----------------------------------------------------------------------------------------------------------------
ResizeKind = Literal["image", "mask", "labels"]


def resize(array: np.ndarray, size: Size, kind: ResizeKind = "image") -> np.ndarray:
    """Resize to ``size = (height, width)``. Images use area averaging when shrinking and bilinear when
    enlarging; masks and label maps use nearest neighbour so that no new label values appear."""
    height, width = size
    if array.shape[:2] == (height, width):
        return array
    if kind == "image":
        shrinking = height * width < array.shape[0] * array.shape[1]
        return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    source = array.astype(np.uint8) if array.dtype == bool else array
    out = cv2.resize(source, (width, height), interpolation=cv2.INTER_NEAREST)
    return out.astype(bool) if array.dtype == bool else out


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32 in [-1, 1]."""
    import torch

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [-1, 1] -> ``(H, W, 3)`` uint8 (values outside [-1, 1] are clipped)."""

    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got {tuple(tensor.shape)}")
    array = (tensor.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5)).round().byte()
    return array.permute(1, 2, 0).numpy()


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """``(H, W)`` bool -> ``(1, H, W)`` float32 in {0, 1}."""
    import torch

    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got {mask.shape}")
    return torch.from_numpy(np.ascontiguousarray(mask.astype(np.float32)))[None]


def labels_to_tensor(labels: np.ndarray) -> torch.Tensor:
    """``(H, W)`` uint8 -> ``(H, W)`` int64."""
    import torch

    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label map, got {labels.shape}")
    return torch.from_numpy(np.ascontiguousarray(labels)).long()


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(H, W)`` or ``(B, H, W)`` int64 -> ``(C, H, W)`` or ``(B, C, H, W)`` float32 one-hot."""
    import torch

    encoded = torch.nn.functional.one_hot(labels, num_classes).float()
    return encoded.movedim(-1, -3)


def colorize_labels(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``(H, W)`` labels -> ``(H, W, 3)`` uint8 RGB through ``palette`` (values past the palette are black)."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = palette
    return table[labels]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` ``(H, W)`` widened by ``radius`` pixels with a disc (round corners, unlike a square kernel):
    ``(H, W)`` bool. Only the mask's bounding box, grown by ``radius``, is worked on (the same result: nothing
    farther can change), which is most of the speed on a face or a hand in a large photo."""
    box = bounds(mask, radius)
    out = np.zeros(mask.shape, bool)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    out[y0:y1, x0:x1] = cv2.dilate(mask[y0:y1, x0:x1].astype(np.uint8), kernel).astype(bool)
    return out


def bounds(mask: np.ndarray, margin: int = 0) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the bounding box of ``mask``'s true pixels grown by ``margin`` within the array
    (None when there are none)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape[:2]
    return (max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, height),
            max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, width))


def union_box(*boxes: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """The box ``(y0, y1, x0, x1)`` around every given box (None ones skipped; ``(0, 0, 0, 0)``, empty, if none)."""
    found = [box for box in boxes if box is not None]
    if not found:
        return 0, 0, 0, 0
    return (min(b[0] for b in found), max(b[1] for b in found), min(b[2] for b in found), max(b[3] for b in found))


def wide_blur(image: np.ndarray, sigma: float, detail: float = 10.0,
              edges: tuple[bool, bool, bool, bool] = (True, True, True, True)) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels of a float image ``(H, W)`` or ``(H, W, C)`` (borders reflected, as
    OpenCV's ``GaussianBlur`` does), made on a copy reduced so that the kernel still spans ``detail`` pixels there,
    then brought back to full size (bilinear). For the wide blurs of lighting (tens of pixels) this is 10-40x
    faster than the full kernel; the two differ by a fraction of a percent of the blurred value (see
    ``tests/test_imaging.py`` for the bound), most where a dark area meets a bright one.

    ``edges`` (top, bottom, left, right): the sides to reflect as the full kernel would. A caller that reads
    nothing within ``4 * sigma`` of a side (a cut-out with that margin) passes False for it and saves the work;
    the values near such a side are then not the full kernel's."""
    factor = int(sigma // detail)
    height, width = image.shape[:2]
    if factor < 2:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    # the border is reflected at full size first, so that the reduced copy reflects what the full kernel sees
    reach = int(np.ceil(4 * sigma))
    top, bottom, left, right = (reach if edge else 0 for edge in edges)
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REFLECT_101)
    full = padded.shape[1], padded.shape[0]
    small = cv2.resize(padded, (max(round(full[0] / factor), 1), max(round(full[1] / factor), 1)),
                       interpolation=cv2.INTER_AREA)
    # each axis is blurred by its own reduction's share of sigma (a Gaussian is separable)
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma * small.shape[1] / full[0],
                               sigmaY=sigma * small.shape[0] / full[1])
    return cv2.resize(blurred, full, interpolation=cv2.INTER_LINEAR)[top:top + height, left:left + width]


def distance_to(region: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32: each pixel's Euclidean distance to the nearest pixel of ``region`` ``(H, W)`` bool (0
    inside it; 1e9 everywhere when it is empty). OpenCV's precise transform (several times faster than scipy's
    ``distance_transform_edt``), made exact and repeatable: on one OpenCV thread its values are up to 3e-5 off and
    their last bits change from call to call (OpenCV 4.11; on two threads they are exact), which flipped ties
    between two equally near regions. An exact distance is the root of a whole number, so up to about 1000 pixels
    rounding its square gives the exact value every time (beyond that, within 3e-4)."""
    if not region.any():
        return np.full(region.shape, 1e9, np.float32)
    distance = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.sqrt(np.rint(distance * distance))


def fill_nearest(values: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """``values`` ``(H, W)`` with each pixel of ``holes`` set to the value of the nearest pixel whose value is not 0
    (unchanged when there is none). Worked on the bounding box of the holes and the known pixels only."""
    known = values != 0
    if not holes.any() or not known.any():
        return values
    from scipy import ndimage

    y0, y1, x0, x1 = bounds(known | holes)
    crop = values[y0:y1, x0:x1]
    _, (iy, ix) = ndimage.distance_transform_edt(crop == 0, return_indices=True)
    out = values.copy()
    inside = holes[y0:y1, x0:x1]
    out[y0:y1, x0:x1][inside] = crop[iy[inside], ix[inside]]
    return out


def photo_tint(image: np.ndarray, max_chroma: float = 6.0) -> np.ndarray | None:
    """The tint ``(a, b)`` (8-bit CIELAB, 128 is neutral) of a greyscale or toned (sepia) photo ``(H, W, 3)``
    uint8, or None for a colour photo. A photo is toned when 95 % of its pixels lie within ``max_chroma`` of
    its median tint.

    Counted on the histogram of the photo's 8-bit ``(a, b)`` pairs: the median and the 95th percentile (linear
    between ranks, as ``np.percentile``) of the whole photo without sorting its pixels."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    count = lab.shape[0] * lab.shape[1]
    if count < 2 ** 24:  # OpenCV counts in float32: exact up to 2^24 in a bin, and six times faster than numpy
        pairs = cv2.calcHist([lab], [1, 2], None, [256, 256], [0, 256, 0, 256]).astype(np.int64)
    else:
        ab = lab[..., 1:].reshape(-1, 2)
        pairs = np.bincount(ab[:, 0].astype(np.int32) * 256 + ab[:, 1], minlength=256 * 256).reshape(256, 256)
    tint = np.array([_rank_value(np.arange(256), pairs.sum(axis=1 - c), count, median=True) for c in (0, 1)],
                    np.float32)
    seen = np.nonzero(pairs)
    distance = np.hypot(seen[0].astype(np.float32) - tint[0], seen[1].astype(np.float32) - tint[1])
    order = np.argsort(distance, kind="stable")
    spread = _rank_value(distance[order], pairs[seen][order], count, quantile=0.95)
    return tint if spread <= max_chroma else None


def _rank_value(values: np.ndarray, counts: np.ndarray, total: int, median: bool = False,
                quantile: float = 0.5) -> float:
    """The median (the mean of the two middle ranks) or the ``quantile`` (linear between ranks) of ``total``
    samples given as sorted distinct ``values`` ``(K,)`` with their ``counts`` ``(K,)``."""
    ends = np.cumsum(counts)

    def at(rank: int) -> float:
        return float(values[np.searchsorted(ends, rank, side="right")])

    if median:
        return (at((total - 1) // 2) + at(total // 2)) / 2
    position = quantile * (total - 1)
    low = int(np.floor(position))
    below, above = np.float32(at(low)), np.float32(at(min(low + 1, total - 1)))
    # numpy's interpolation, in the values' float32
    step, gamma = above - below, np.float32(position - low)
    return float(above - step * (1 - gamma) if gamma >= 0.5 else below + step * gamma)
