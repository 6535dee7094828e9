import numpy as np
import pytest

from fitroom.inputs import InputsError, TryOnInputs, TryOnResult
from fitroom.labels import View


def _inputs(**changes):
    fields = dict(
        person=np.zeros((64, 48, 3), np.uint8), garment=np.zeros((64, 48, 3), np.uint8),
        garment_mask=np.ones((64, 48), bool), keypoints=np.ones((25, 3), np.float32) * 10,
        parse=np.full((64, 48), 5, np.uint8), dense=np.zeros((64, 48, 3), np.uint8), view="back",
    )
    fields.update(changes)
    return TryOnInputs(**fields)


def test_valid_inputs_convert_to_tensors_at_any_size():
    inputs = _inputs()
    assert inputs.view is View.BACK
    tensors = inputs.to_tensors((32, 24))
    assert tensors["person"].shape == (3, 32, 24) and tensors["garment_mask"].shape == (1, 32, 24)
    assert tensors["parse"].dtype.is_floating_point is False and tensors["parse"].shape == (32, 24)
    assert tensors["keypoints"][0, 0] == pytest.approx(5.0) and tensors["keypoints"][0, 2] == pytest.approx(10.0)
    assert tensors["view"].item() == 1
    assert "agnostic" not in tensors  # absent fields are left out, not faked


@pytest.mark.parametrize("changes, message", [
    ({"person": np.zeros((64, 48), np.uint8)}, "person must be an .H, W, 3. uint8"),
    ({"parse": np.full((64, 48), 20, np.uint8)}, "label 20"),
    ({"parse": np.zeros((32, 48), np.uint8)}, "must match"),
    ({"keypoints": np.zeros((18, 3))}, r"\(25, 3\)"),
    ({"keypoints": np.full((25, 3), np.nan)}, "NaN"),
    ({"garment_mask": np.ones((10, 10), bool)}, "garment_mask"),
    ({"view": "side"}, "side"),
    ({"keep": np.ones((64, 48), np.uint8)}, "keep must be an .H, W. bool"),
    ({"keep": np.ones((32, 48), bool)}, "keep is"),
])
def test_invalid_inputs_name_the_field(changes, message):
    with pytest.raises((InputsError, ValueError), match=message):
        _inputs(**changes)


def test_restore_kept_copies_the_kept_pixels_back_exactly():
    inputs = _inputs()
    keep = np.zeros(inputs.size, bool)
    keep[:10] = True
    inputs = inputs.replace(keep=keep)
    edited = np.full_like(inputs.person, 7)
    restored = inputs.restore_kept(edited)
    np.testing.assert_array_equal(restored[:10], inputs.person[:10])
    assert (restored[10:] == 7).all()
    assert inputs.replace(keep=None).restore_kept(edited) is edited
    with pytest.raises(InputsError, match="cannot restore"):
        inputs.restore_kept(edited[:5])
    # told the box outside which the image is the photo already: the same answer, made on the box
    edited = inputs.person.copy()
    edited[4:14, 2:9] = 7
    expected = inputs.restore_kept(edited.copy())
    np.testing.assert_array_equal(inputs.restore_kept(edited, within=(4, 14, 2, 9)), expected)


def test_result_validates_its_images():
    TryOnResult(image=np.zeros((8, 6, 3), np.uint8), engine="x", warped_mask=np.zeros((8, 6), bool))
    with pytest.raises(InputsError, match="warped_mask"):
        TryOnResult(image=np.zeros((8, 6, 3), np.uint8), engine="x", warped_mask=np.zeros((4, 6), bool))
