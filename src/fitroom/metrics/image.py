"""Per-image SSIM and PSNR for ``(B, 3, H, W)`` float images in [0, 1] (torchmetrics underneath).

``ssim_rgb``: the standard SSIM (Wang et al. 2004) on RGB, an 11x11 Gaussian window with sigma 1.5, K1 0.01,
K2 0.03, data range 1, averaged over channels and the valid (unpadded) area; the same as scikit-image's
``structural_similarity(..., channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``.

``ssim_gray_hrviton``: the variant HR-VITON's ``evaluate.py`` reports: the same SSIM on greyscale images (here the
ITU-R BT.601 luma of 8-bit values, as PIL's ``convert("L")`` gives), data range 255. Reported under its own name:
it is not comparable with RGB SSIM.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

#: ITU-R BT.601 luma weights (PIL's "L" conversion)
LUMA = (0.299, 0.587, 0.114)


def _check(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape or prediction.ndim != 4 or prediction.shape[1] != 3:
        raise ValueError(f"expected two (B, 3, H, W) images of one shape, got {tuple(prediction.shape)} and "
                         f"{tuple(target.shape)}")


def _ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float) -> torch.Tensor:
    # torchmetrics averages over the whole image, its reflection-padded border included; the published SSIM (and
    # scikit-image) average over the area where the 11x11 window fits, so the SSIM map is cropped by 5 pixels
    _, full = structural_similarity_index_measure(prediction.double(), target.double(), gaussian_kernel=True,
                                                  sigma=1.5, kernel_size=11, data_range=data_range,
                                                  reduction="none", return_full_image=True)
    return full[..., 5:-5, 5:-5].mean((1, 2, 3)).float()


def ssim_rgb(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` SSIM of RGB images in [0, 1]."""
    _check(prediction, target)
    return _ssim(prediction, target, 1.0)


def ssim_gray_hrviton(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` SSIM of the 8-bit luma images (HR-VITON's reported SSIM), from RGB images in [0, 1]."""
    _check(prediction, target)
    weights = torch.tensor(LUMA, dtype=torch.float64, device=prediction.device)[None, :, None, None]

    def luma(image: torch.Tensor) -> torch.Tensor:
        eight_bit = (image.double().clamp(0, 1) * 255).round()
        return (eight_bit * weights).sum(1, keepdim=True).round()

    return _ssim(luma(prediction), luma(target), 255.0)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B,)`` PSNR in dB of images in [0, 1]."""
    _check(prediction, target)
    return peak_signal_noise_ratio(prediction, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
