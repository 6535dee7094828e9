"""``TryOnInputs`` and ``TryOnResult``: the one typed bundle every reader, preprocessor and engine shares.

Every modality is a numpy array at its own native resolution (person modalities share the person's size, garment
modalities the garment's). :meth:`TryOnInputs.to_tensors` turns the bundle into model tensors at a requested
size, with the right interpolation for each kind of data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fitroom import imaging
from fitroom.errors import InputError
from fitroom.labels import NUM_BODY25, NUM_PARSE_LABELS, GarmentCategory, View

if TYPE_CHECKING:
    import torch

Size = tuple[int, int]


class InputsError(InputError):
    """A ``TryOnInputs`` field has the wrong shape, type or values; the message names the field."""


def _check_image(name: str, value: np.ndarray | None, size: Size | None = None) -> None:
    if value is None:
        return
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 3 or value.shape[2] != 3:
        shape = getattr(value, "shape", None)
        raise InputsError(f"{name} must be an (H, W, 3) uint8 RGB array, got {shape} {getattr(value, 'dtype', '')}")
    if size is not None and value.shape[:2] != size:
        raise InputsError(f"{name} is {value.shape[:2]} (H, W) but must match the person image {size}")


def _check_plane(name: str, value: np.ndarray | None, size: Size | None, dtype: type) -> None:
    if value is None:
        return
    if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype != dtype:
        shape = getattr(value, "shape", None)
        raise InputsError(
            f"{name} must be an (H, W) {np.dtype(dtype).name} array, got {shape} {getattr(value, 'dtype', '')}")
    if size is not None and value.shape != size:
        raise InputsError(f"{name} is {value.shape} (H, W) but must match {size}")


@dataclass
class TryOnInputs:
    """Everything a try-on engine may consume for one (person, garment) pair.

    Attributes:
        person: ``(H, W, 3)`` uint8 RGB photo of the person.
        garment: ``(Hg, Wg, 3)`` uint8 RGB in-shop photo of the garment.
        garment_mask: ``(Hg, Wg)`` bool, True on the garment.
        keypoints: ``(25, 3)`` float32 BODY_25 keypoints ``(x, y, confidence)`` in person-image pixels;
            an undetected joint is ``(0, 0, 0)`` as in OpenPose's files.
        parse: ``(H, W)`` uint8 CIHP labels 0..19.
        dense: ``(H, W, 3)`` uint8 DensePose part-index render (see ``labels.DENSE_COLORMAP``).
        agnostic: ``(H, W, 3)`` uint8 clothing-agnostic person.
        parse_agnostic: ``(H, W)`` uint8 CIHP labels with the garment region removed.
        keep: ``(H, W)`` bool, the pixels every engine must return exactly as the photo has them (face, hair,
            hands, lower body, background: see :mod:`fitroom.preprocess.regions`); None means no promise.
        view: which side the camera sees (of the person and of the garment).
        category: the garment category.
        name: an identifier for logs and file names (e.g. ``"00012_00.jpg"``).
        garment_name: the garment's identifier.
    """

    person: np.ndarray
    garment: np.ndarray | None = None
    garment_mask: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    parse: np.ndarray | None = None
    dense: np.ndarray | None = None
    agnostic: np.ndarray | None = None
    parse_agnostic: np.ndarray | None = None
    keep: np.ndarray | None = None
    view: View = View.FRONT
    category: GarmentCategory = GarmentCategory.UPPER
    name: str = ""
    garment_name: str = ""

    def __post_init__(self) -> None:
        self.view = View(self.view)
        self.category = GarmentCategory(self.category)
        self.validate()

    @property
    def size(self) -> Size:
        """The person image's ``(height, width)``."""
        return tuple(self.person.shape[:2])  # type: ignore[return-value]

    def validate(self) -> None:
        """Check every present field's shape, dtype and values. Raises :class:`InputsError`."""
        _check_image("person", self.person)
        size = self.size
        _check_image("garment", self.garment)
        garment_size = None if self.garment is None else self.garment.shape[:2]
        _check_plane("garment_mask", self.garment_mask, garment_size, bool)
        if self.garment_mask is not None and self.garment is None:
            raise InputsError("garment_mask is given without a garment")
        for name in ("parse", "parse_agnostic"):
            labels = getattr(self, name)
            _check_plane(name, labels, size, np.uint8)
            if labels is not None and labels.size and int(labels.max()) >= NUM_PARSE_LABELS:
                raise InputsError(f"{name} holds label {int(labels.max())}; CIHP labels are 0..{NUM_PARSE_LABELS - 1}")
        _check_image("dense", self.dense, size)
        _check_image("agnostic", self.agnostic, size)
        _check_plane("keep", self.keep, size, bool)
        if self.keypoints is not None:
            keypoints = self.keypoints
            if not isinstance(keypoints, np.ndarray) or keypoints.shape != (NUM_BODY25, 3):
                raise InputsError(
                    f"keypoints must be a ({NUM_BODY25}, 3) array of BODY_25 (x, y, confidence), "
                    f"got {getattr(keypoints, 'shape', None)}")
            if not np.isfinite(keypoints).all():
                raise InputsError("keypoints contain NaN or infinite values")
            self.keypoints = keypoints.astype(np.float32, copy=False)

    def restore_kept(self, image: np.ndarray, within: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """``image`` ``(H, W, 3)`` uint8 with every pixel of :attr:`keep` copied back from the photo, bit for bit
        (no change when ``keep`` is None). Every engine's last step. ``within`` ``(y0, y1, x0, x1)``: the box
        outside which ``image`` is the photo already (only the box is looked at; ``image`` is changed in place
        there)."""
        if self.keep is None:
            return image
        if image.shape != self.person.shape:
            raise InputsError(f"the result is {image.shape}, the photo {self.person.shape}: cannot restore it")
        if within is None:
            return np.where(self.keep[..., None], self.person, image)
        y0, y1, x0, x1 = within
        box = image[y0:y1, x0:x1]
        np.copyto(box, self.person[y0:y1, x0:x1], where=self.keep[y0:y1, x0:x1, None])
        return image

    def replace(self, **changes: Any) -> "TryOnInputs":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_tensors(self, size: Size | None = None) -> dict[str, torch.Tensor]:
        """Model tensors at ``size = (H, W)`` (default: the person's size). Present fields only.

        Returns a dict with:
            ``person``, ``agnostic``, ``dense``: ``(3, H, W)`` float32 in [-1, 1];
            ``garment``: ``(3, H, W)`` float32 in [-1, 1], resized to the same canvas;
            ``garment_mask``: ``(1, H, W)`` float32 in {0, 1};
            ``parse``, ``parse_agnostic``: ``(H, W)`` int64 CIHP labels;
            ``keypoints``: ``(25, 3)`` float32, x and y scaled to the new size;
            ``view``, ``category``: int64 scalars (``View.index``; position in ``GarmentCategory``).
        """
        import torch

        height, width = size if size is not None else self.size
        if height <= 0 or width <= 0:
            raise InputsError(f"size must be positive (H, W), got {size}")
        out: dict[str, torch.Tensor] = {}
        for name in ("person", "agnostic", "dense", "garment"):
            value = getattr(self, name)
            if value is not None:
                out[name] = imaging.image_to_tensor(imaging.resize(value, (height, width), "image"))
        if self.garment_mask is not None:
            out["garment_mask"] = imaging.mask_to_tensor(imaging.resize(self.garment_mask, (height, width), "mask"))
        for name in ("parse", "parse_agnostic"):
            value = getattr(self, name)
            if value is not None:
                out[name] = imaging.labels_to_tensor(imaging.resize(value, (height, width), "labels"))
        if self.keypoints is not None:
            scale = np.array([width / self.size[1], height / self.size[0], 1.0], dtype=np.float32)
            out["keypoints"] = torch.from_numpy(self.keypoints * scale)
        out["view"] = torch.tensor(self.view.index, dtype=torch.long)
        out["category"] = torch.tensor(list(GarmentCategory).index(self.category), dtype=torch.long)
        return out


@dataclass
class TryOnResult:
    """What an engine returns.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB try-on result at the person image's size.
        engine: the engine's registered name.
        warped_garment: ``(H, W, 3)`` uint8, the garment warped onto the body, if the engine makes one.
        warped_mask: ``(H, W)`` bool, where the warped garment lies.
        parse: ``(H, W)`` uint8 predicted layout, if any.
        timings: seconds spent in each named step.
        extras: anything else an engine wants to expose (named intermediate images).
    """

    image: np.ndarray
    engine: str
    warped_garment: np.ndarray | None = None
    warped_mask: np.ndarray | None = None
    parse: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_image("image", self.image)
        size = tuple(self.image.shape[:2])
        _check_image("warped_garment", self.warped_garment, size)  # type: ignore[arg-type]
        _check_plane("warped_mask", self.warped_mask, size, bool)  # type: ignore[arg-type]
        _check_plane("parse", self.parse, size, np.uint8)  # type: ignore[arg-type]
