import pytest
import torch

from fitroom.models import create_model
from fitroom.training.losses import (
    VGGPerceptualLoss, feature_matching_loss, hinge_loss, layout_cross_entropy, lsgan_loss, total_variation,
)


def test_discriminators_match_the_reference_sizes():
    condition = create_model("hrviton_condition_discriminator")
    image = create_model("hrviton_image_discriminator")
    assert sum(p.numel() for p in condition.parameters()) == 5_590_914
    assert sum(p.numel() for p in image.parameters()) == 1_339_522
    outputs = condition(torch.randn(1, 33, 256, 192))
    assert [tuple(scale[-1].shape[-2:]) for scale in outputs] == [(19, 15), (11, 9)]
    image_outputs = image(torch.randn(2, 10, 256, 192))
    assert len(image_outputs) == 2 and len(image_outputs[0]) == 4
    with pytest.raises(ValueError, match=r"\(B, 33, H, W\)"):
        condition(torch.randn(1, 3, 64, 64))


def test_discriminator_gradients():
    model = create_model("hrviton_image_discriminator")
    hinge_loss(model(torch.randn(2, 10, 64, 64)), real=True, for_discriminator=True).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_adversarial_losses_on_known_values():
    real = [[torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 1, 1)]]
    zero = [[torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 1, 1)]]
    assert lsgan_loss(real, real=True) == 0 and lsgan_loss(zero, real=True) == 1
    assert hinge_loss(real, real=True, for_discriminator=True) == 0
    assert hinge_loss(real, real=False, for_discriminator=True) == 2
    assert hinge_loss(real, real=True, for_discriminator=False) == -1
    features = [[torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    other = [[torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]]
    assert feature_matching_loss(features, other) == 1


def test_flow_and_layout_losses():
    flat = torch.ones(1, 8, 6, 2) * 3
    assert total_variation(flat) == 0
    ramp = torch.arange(6.0).view(1, 1, 6, 1).expand(1, 8, 6, 2)
    assert total_variation(ramp) == pytest.approx(1.0)
    logits = torch.zeros(1, 13, 4, 4)
    logits[:, 3] = 10
    assert layout_cross_entropy(logits, torch.full((1, 4, 4), 3)) < 1e-3


def test_vgg_loss_reads_local_weights_and_names_a_missing_file(tmp_path, monkeypatch):
    from torchvision.models import vgg19

    monkeypatch.setenv("FITROOM_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        VGGPerceptualLoss()
    torch.manual_seed(0)
    torch.save(vgg19(weights=None).state_dict(), tmp_path / "vgg19-dcbb9e9d.pth")
    loss = VGGPerceptualLoss()  # found in the weights folder
    x = torch.rand(1, 3, 64, 48) * 2 - 1
    assert loss(x, x) == 0
    y = (x + 0.3).clamp(-1, 1).requires_grad_()
    value = loss(y, x)
    value.backward()
    assert value > 0 and y.grad is not None and all(not p.requires_grad for p in loss.parameters())
