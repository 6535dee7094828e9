import shutil

import pytest
import torch
from torch.utils.data import DataLoader

from fitroom.data.dataset import TryOnDataset


def test_paired_batches(synth_dataset):
    dataset = TryOnDataset(synth_dataset, "train", "paired", size=(128, 96))
    batch = next(iter(DataLoader(dataset, batch_size=4)))
    assert batch["person"].shape == (4, 3, 128, 96) and batch["garment_mask"].shape == (4, 1, 128, 96)
    assert batch["parse"].dtype == torch.long and batch["keypoints"].shape == (4, 25, 3)
    assert batch["name"] == batch["garment_name"]
    assert set(batch["view"].tolist()) <= {0, 1}


def test_unpaired_items_carry_ground_truth(synth_dataset):
    dataset = TryOnDataset(synth_dataset, "test", "unpaired", size=(128, 96))
    item = dataset[0]
    assert item["name"] != item["garment_name"]
    assert item["unpaired_gt"].shape == (3, 128, 96)


def test_bad_samples_are_skipped_and_reported(synth_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_dataset, root)
    dataset = TryOnDataset(root, "train", size=(64, 48))
    broken = dataset.pairs[0][0]
    (root / "train" / "image" / broken).write_bytes(b"garbage")
    item = dataset[0]
    assert item["name"] != broken and broken in dataset.bad
    strict = TryOnDataset(root, "train", size=(64, 48), skip_bad=False)
    with pytest.raises(ValueError, match=broken.split(".")[0]):
        strict[0]
