"""Lower garments in the renderer (trousers, shorts, three skirts): the product photo's fabric worn on the body, the
right labels and lengths; synthetic datasets with upper and lower categories, in both layouts."""

import numpy as np
import pytest

from fitroom.data.synthetic import render_person, sample_spec
from fitroom.data.synthetic.lower import LowerKind, render_lower_product, sample_lower
from fitroom.labels import Body25, Cihp, GarmentCategory

SIZE = (512, 384)


def _one_of_each():
    found = {}
    index = 0
    while len(found) < len(LowerKind):
        spec = sample_lower(np.random.default_rng([7, index]))
        found.setdefault(spec.kind, spec)
        index += 1
    return found


@pytest.mark.parametrize("kind", list(LowerKind))
@pytest.mark.parametrize("view", ["front", "back"])
def test_each_lower_garment_is_worn_with_its_product_photos_fabric(kind, view):
    lower = _one_of_each()[kind]
    person = sample_spec(4, list(LowerKind).index(kind))
    product, mask = render_lower_product(lower, view, SIZE)
    render = render_person(person.person, person.garment, view, SIZE, lower=lower)
    label = Cihp.PANTS if kind.legs else Cihp.SKIRT
    worn = render.parse == label
    assert mask.mean() > 0.1 and worn.mean() > 0.01
    assert not (render.parse == (Cihp.SKIRT if kind.legs else Cihp.PANTS)).any()  # the look's own bottom is gone
    # the same fabric: the worn garment's median colour is the product's, up to the light on the body
    np.testing.assert_allclose(np.median(render.image[worn], 0), np.median(product[mask], 0), atol=45)
    # the hem where the garment's length puts it, between the crotch's height and the ankles
    rows = np.nonzero(worn.any(1))[0]
    ankle = render.keypoints[[Body25.R_ANKLE, Body25.L_ANKLE], 1].max()
    hip = render.keypoints[[Body25.R_HIP, Body25.L_HIP], 1].mean()
    reach = (rows.max() - hip) / (ankle - hip)
    assert abs(reach - lower.length) < 0.25, (reach, lower.length)
    # trousers hide the legs' skin; shorts and skirts show it below the hem
    legs = np.isin(render.parse, [Cihp.LEFT_LEG, Cihp.RIGHT_LEG]).sum()
    if kind is LowerKind.TROUSERS:
        assert legs < 0.05 * worn.sum()
    else:
        assert legs > 0.05 * worn.sum()


def test_a_dataset_of_tops_lower_garments_and_dresses_in_both_layouts(tmp_path):
    from fitroom.cli import main
    from fitroom.data.dresscode import DressCodeLayout
    from fitroom.data.layout import VitonLayout

    out = tmp_path / "mixed"
    assert main(["-q", "synth", "--out", str(out), "--count", "9", "--size", "256x192", "--categories",
                 "upper,lower,dress", "--workers", "1", "--test-fraction", "0.67"]) == 0
    layout = VitonLayout(out, "test")
    seen = set()
    for person, cloth in layout.pairs():
        sample = layout.read(person, cloth)
        seen.add(sample.category)
        truth = layout.unpaired_ground_truth(person, cloth)
        assert truth is not None
        grey = (np.abs(sample.agnostic.astype(int) - 128) <= 4).all(-1)  # a JPEG file: grey up to its loss
        if sample.category is GarmentCategory.LOWER:  # the top stays, the legs go
            assert grey[np.isin(sample.parse, [Cihp.UPPER_CLOTHES, Cihp.COAT])].mean() < 0.05
            assert grey[np.isin(sample.parse, [Cihp.PANTS, Cihp.SKIRT])].mean() > 0.95
        if sample.category is GarmentCategory.DRESS:  # the person wears a dress, and it goes, top to hem
            assert (sample.parse == Cihp.DRESS).sum() > 0.05 * sample.parse.size
            assert not np.isin(sample.parse, [Cihp.UPPER_CLOTHES, Cihp.PANTS, Cihp.SKIRT]).any()
            assert grey[sample.parse == Cihp.DRESS].mean() > 0.95
    assert seen == set(GarmentCategory)
    assert main(["-q", "dataset", "convert", str(out), "--to", "dresscode", "--out", str(tmp_path / "dc")]) == 0
    for kind in ("paired", "unpaired"):
        dresscode = DressCodeLayout(tmp_path / "dc", "test", kind)
        assert dresscode.check() == [] and set(c for _, _, c in dresscode.pairs()) == seen
    assert sorted(p.name for p in (tmp_path / "dc").iterdir() if p.is_dir()) == ["dresses", "lower_body",
                                                                                 "upper_body"]
