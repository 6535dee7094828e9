"""Learned engines by garment category: HR-VITON with the category as an input, CP-VTON one per category."""

import numpy as np
import pytest
import torch

from fitroom.errors import ConfigurationError
from fitroom.inputs import InputsError
from fitroom.labels import GARMENT_CIHP_TO_13, Cihp, GarmentCategory, Parse13
from fitroom.training.config import load_config
from fitroom.training.trainer import Trainer


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Nine rendered identities, three of each category (tops, lower garments, dresses), front and back."""
    from fitroom.data.synthetic.writer import SynthConfig, synthesize

    out = tmp_path_factory.mktemp("categories") / "data"
    synthesize(SynthConfig(out=out, count=9, size=(128, 96), seed=5, workers=1, test_fraction=0.67,
                           categories=tuple(GarmentCategory)), progress=False)
    return out


def _common(data, out, **changes):
    settings = [f"data={data}", f"out={out}", "size=[128, 64]", "batch_size=2", "steps=2", "checkpoint_every=2",
                "validate_every=2", "log_every=1", "validation_samples=2", "seed=2", "loss_weights.vgg=0"]
    return settings + [f"{k}={v}" for k, v in changes.items()]


def test_the_garment_class_is_the_garment_tried_on_whatever_its_category():
    upper, lower, dress = (GARMENT_CIHP_TO_13[list(GarmentCategory).index(c)] for c in GarmentCategory)
    assert upper[Cihp.UPPER_CLOTHES] == Parse13.UPPER and upper[Cihp.PANTS] == Parse13.BOTTOM
    # a lower garment: trousers and skirts are what is made, the top is kept (pasted by the generator)
    assert lower[Cihp.PANTS] == lower[Cihp.SKIRT] == Parse13.UPPER
    assert lower[Cihp.UPPER_CLOTHES] == lower[Cihp.COAT] == Parse13.BOTTOM
    # a dress replaces every garment
    assert {dress[c] for c in (Cihp.UPPER_CLOTHES, Cihp.PANTS, Cihp.SKIRT, Cihp.DRESS)} == {Parse13.UPPER}
    for table in (upper, lower, dress):  # the body keeps its classes
        assert table[Cihp.FACE] == Parse13.FACE and table[Cihp.LEFT_LEG] == Parse13.LEFT_LEG


def test_category_settings_are_checked_in_words(mixed, tmp_path):
    with pytest.raises(ConfigurationError, match="needs category_input=true"):
        load_config(None, _common(mixed, tmp_path, categories="upper,lower", model="test_hrviton_condition"))
    with pytest.raises(ConfigurationError, match="train one gmm and tom per category"):
        load_config(None, _common(mixed, tmp_path, stage="gmm", categories="lower,dress"))
    with pytest.raises(ConfigurationError, match="among upper, lower and dress, got shoes"):
        load_config(None, _common(mixed, tmp_path, categories="shoes"))


def test_one_hrviton_network_trains_on_every_category_and_dresses_them_all(mixed, tmp_path):
    from fitroom.data.layout import VitonLayout
    from fitroom.engines import engine_categories
    from fitroom.engines.hrviton import HrvitonEngine

    settings = {"categories": "upper,lower,dress", "category_input": "true"}
    condition = Trainer(load_config(None, _common(mixed, tmp_path / "c", model="test_hrviton_condition",
                                                  mixed_precision="no", **settings)), progress=False)
    assert condition.task.generator.config.pose_channels == 16 + 1 + 2
    assert len(condition.loader.dataset) == 6  # all three categories' train samples (3 identities x 2 views)
    condition.run()
    generator = Trainer(load_config(None, _common(mixed, tmp_path / "g", stage="generator",
                                                  condition=tmp_path / "c", model="test_hrviton_generator",
                                                  **settings)), progress=False)
    generator.run()
    checkpoint = tmp_path / "g" / "hrviton"
    assert engine_categories("hrviton", str(checkpoint)) == frozenset(GarmentCategory)
    engine = HrvitonEngine(checkpoint, size=(128, 64))
    assert engine.categories == frozenset(GarmentCategory) and engine.generator.config.input_channels == 12
    layout = VitonLayout(mixed, "test")
    seen = set()
    for person, cloth in layout.pairs():
        inputs = layout.read(person, cloth)
        seen.add(inputs.category)
        torch.manual_seed(0)
        result = engine(inputs)
        assert result.image.shape == inputs.person.shape
        # the category is an input: told another one, the same pictures give another try-on
        other = next(c for c in GarmentCategory if c is not inputs.category)
        torch.manual_seed(0)
        assert not np.array_equal(engine(inputs.replace(category=other)).image, result.image)
    assert seen == set(GarmentCategory)
    # a network trained without the category input and on tops only refuses the rest in words
    with pytest.raises(ConfigurationError, match="same category_input"):
        Trainer(load_config(None, _common(mixed, tmp_path / "g2", stage="generator", condition=tmp_path / "c",
                                          model="test_hrviton_generator")), progress=False)


def test_an_hrviton_checkpoint_of_tops_refuses_a_lower_garment_in_words(mixed):
    from fitroom.data.layout import VitonLayout
    from fitroom.engines.hrviton import HrvitonEngine
    from fitroom.models import create_model

    engine = HrvitonEngine(condition_generator=create_model("test_hrviton_condition", pose_channels=17),
                           generator=create_model("test_hrviton_generator", input_channels=10), size=(128, 64))
    assert engine.categories == {GarmentCategory.UPPER}
    layout = VitonLayout(mixed, "test")
    lower = next(layout.read(p, c) for p, c in layout.pairs() if layout.categories.get(c) is GarmentCategory.LOWER)
    with pytest.raises(InputsError, match="trained on upper, not on lower garments"):
        engine(lower)


def test_cpvton_trains_one_network_pair_per_category(mixed, tmp_path):
    from fitroom.data.layout import VitonLayout
    from fitroom.engines import create_engine, engine_categories
    from fitroom.models.cpvton import cloth_region

    gmm = Trainer(load_config(None, _common(mixed, tmp_path / "gmm", stage="gmm", model="test_cpvton_gmm",
                                            categories="lower")), progress=False)
    assert len(gmm.loader.dataset) == 2  # the one lower-garment identity of the train split, front and back
    batch = next(iter(torch.utils.data.DataLoader(gmm.loader.dataset, batch_size=2)))
    _, mask = cloth_region(batch["person"], batch["parse"], batch["category"])
    trousers = torch.isin(batch["parse"], torch.tensor([int(Cihp.PANTS), int(Cihp.SKIRT)]))[:, None]
    assert torch.equal(mask.bool(), trousers) and trousers.any()  # the GMM learns the lower garment's region
    gmm.run()
    tom = Trainer(load_config(None, _common(mixed, tmp_path / "tom", stage="tom", model="test_cpvton_tom",
                                            condition=tmp_path / "gmm", categories="lower")), progress=False)
    tom.run()
    checkpoint = tmp_path / "tom" / "cpvton"
    assert engine_categories("cpvton", str(checkpoint)) == {GarmentCategory.LOWER}
    engine = create_engine("cpvton", checkpoint=checkpoint)
    layout = VitonLayout(mixed, "test")
    by_category = {layout.categories.get(c, GarmentCategory.UPPER): (p, c) for p, c in layout.pairs()}
    lower = layout.read(*by_category[GarmentCategory.LOWER])
    assert engine(lower).image.shape == lower.person.shape
    with pytest.raises(InputsError, match="trained on lower, not on upper garments"):
        engine(layout.read(*by_category[GarmentCategory.UPPER]))
    with pytest.raises(ConfigurationError, match="train both stages on the same category"):
        Trainer(load_config(None, _common(mixed, tmp_path / "tom2", stage="tom", model="test_cpvton_tom",
                                          condition=tmp_path / "gmm", categories="dress")), progress=False)
