"""Published reference errors that normalise mCE and mFR, in one place.

AlexNet's ImageNet-C mean top-1 errors (Hendrycks & Dietterich 2019; same values in the
official Assemble-ResNet code, ``mce/eval_robustness.py`` ALEXNET_CE, and in augmix) and its
ImageNet-P flip probabilities (paper appendix; official code ALEXNET_FP). Valid for ImageNet
at 224 px only; other data normalise by a baseline row of the same table.
"""

from __future__ import annotations

ALEXNET_CE = {
    "gaussian_noise": 0.886428,
    "shot_noise": 0.894468,
    "impulse_noise": 0.922640,
    "defocus_blur": 0.819880,
    "glass_blur": 0.826268,
    "motion_blur": 0.785948,
    "zoom_blur": 0.798360,
    "snow": 0.866816,
    "frost": 0.826572,
    "fog": 0.819324,
    "brightness": 0.564592,
    "contrast": 0.853204,
    "elastic_transform": 0.646056,
    "pixelate": 0.717840,
    "jpeg_compression": 0.606500,
    # the four extra corruptions of the official code
    "speckle_noise": 0.8454,
    "gaussian_blur": 0.7871,
    "spatter": 0.7175,
    "saturate": 0.6583,
}
ALEXNET_CLEAN_ERROR = 0.435

ALEXNET_FP = {
    "gaussian_noise": 0.23653,
    "shot_noise": 0.30062,
    "motion_blur": 0.09297,
    "zoom_blur": 0.05942,
    "snow": 0.11928,
    "brightness": 0.04889,
    "translate": 0.11007,
    "rotate": 0.13104,
    "tilt": 0.07050,
    "scale": 0.23531,
    "speckle_noise": 0.18649,
    "gaussian_blur": 0.02775,
    "spatter": 0.05053,
    "shear": 0.10658,
}
