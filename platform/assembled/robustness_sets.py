"""ImageNet-C's corruptions and ImageNet-P's perturbations by name, and the generation of the
code that makes their images. Torch-free: reports and dashboards read metrics by these names,
and an evaluation's identity is computed, without importing the code itself."""

from __future__ import annotations

CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # the official code's 4 extras
PERTURBATIONS = (
    "gaussian_noise",
    "shot_noise",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "translate",
    "rotate",
    "tilt",
    "scale",
)
NOISE_PERTURBATIONS = ("gaussian_noise", "shot_noise")  # compared with the first frame, not the previous one

# Bump whenever the images ``data.corruptions.corrupt`` makes change: runs evaluated with another
# generation of corrupted images are not comparable, and the ablation runner re-evaluates them.
# 3: ImageMagick's exact motion blur; defocus kernel not renormalised; frost resampled as cv2
# 4: glass blur's sequential copies; spatter's water shaded as the script's OpenCV pipeline
# 5: pixelate in 8-bit levels as PIL; snow's layer 8-bit around ImageMagick; elastic's last
#    resampling reflected about pixel edges (scipy's 'reflect')
CORRUPTION_IMPLEMENTATION = 5
# the same for ``data.perturbations.sequence``; 3: the reference scripts' sequences
PERTURBATION_IMPLEMENTATION = 3
