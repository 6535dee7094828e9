"""Image-quality metrics for try-on evaluation, each with its protocol stated.

* :mod:`fitroom.metrics.image`: SSIM (RGB, Gaussian 11x11 window, sigma 1.5), HR-VITON's greyscale SSIM variant,
  PSNR; torchmetrics underneath.
* :mod:`fitroom.metrics.perceptual`: LPIPS (AlexNet-lin v0.1 from the ``lpips`` package; the AlexNet backbone
  from the weights cache) and FID / KID on Inception-v3 pool features (torch-fidelity's port of the TensorFlow
  2015-12-05 graph, the features clean-fid and torch-fidelity use; weights from the cache), computed by
  torchmetrics. Missing weights raise :class:`MetricUnavailable`, whose message names the file and the command
  that provides it: nothing is ever computed on random features by accident.
"""

from fitroom.metrics.image import psnr, ssim_gray_hrviton, ssim_rgb
from fitroom.metrics.perceptual import FeatureDistances, LPIPS, MetricUnavailable

__all__ = ["FeatureDistances", "LPIPS", "MetricUnavailable", "psnr", "ssim_gray_hrviton", "ssim_rgb"]
