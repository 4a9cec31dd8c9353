"""Hendrycks' generation scripts (hendrycks/robustness, ImageNet-C/create_c/make_*_c.py), step
by step in numpy, OpenCV, SciPy and PIL, the libraries the scripts call, for the corruptions
whose reference tests need more than one line. Random draws come in as arguments, so a test
can feed the draws the project made and compare images pixel by pixel. ImageMagick (Wand) is
not installable here: its motion blur is MagickCore's MotionBlurImage loop written out."""

from __future__ import annotations

import math
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def imagemagick_motion(a: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """MagickCore MotionBlurImage: 2r+1 Gaussian taps at rounded offsets ahead, edge pixels."""
    width = 2 * math.ceil(radius) + 1
    k = np.exp(-(np.arange(width) ** 2) / (2 * sigma * sigma))
    k /= k.sum()
    h, w = a.shape[:2]
    out = np.zeros_like(a)
    t = math.radians(angle)
    for i in range(width):
        ox, oy = math.ceil(i * math.cos(t) - 0.5), math.ceil(i * math.sin(t) - 0.5)
        rows = np.clip(np.arange(h) + oy, 0, h - 1)
        cols = np.clip(np.arange(w) + ox, 0, w - 1)
        out += k[i] * a[rows][:, cols]
    return out


def pixelate(u8: np.ndarray, c: float) -> np.ndarray:
    """The scripts' pixelate: two ``PIL.Image.resize(..., BOX)`` calls on the uint8 image."""
    h, w = u8.shape[:2]
    img = Image.fromarray(u8).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(img.resize((w, h), Image.BOX))


def clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    """make_imagenet_c.py's clipped_zoom: centre crop ceil(h / f), scipy zoom order 1, trim."""
    from scipy.ndimage import zoom

    h = img.shape[0]
    ch = int(np.ceil(h / factor))
    top = (h - ch) // 2
    out = zoom(img[top : top + ch, top : top + ch], (factor, factor, 1), order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim : trim + h, trim : trim + h]


def snow(x: np.ndarray, normal: np.ndarray, angle: float, c: tuple) -> np.ndarray:
    """The scripts' snow on an H x W x 3 float image in [0, 1]. ``normal`` is the standard
    normal draw behind the layer. The layer goes through an 8-bit PNG into ImageMagick's
    motion blur and comes back as an 8-bit PNG (ImageMagick rounds to the nearest level)."""
    import cv2

    loc, scale, zoom_f, thr, radius, sigma, blend = c
    x = x.astype(np.float32)
    layer = clipped_zoom((normal * scale + loc)[..., None], zoom_f)
    layer[layer < thr] = 0
    layer8 = (np.clip(layer.squeeze(), 0, 1) * 255).astype(np.uint8)
    blurred = imagemagick_motion(layer8.astype(np.float64)[..., None], radius, sigma, angle)
    layer = np.floor(blurred + 0.5) / 255
    grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1)


def elastic(x: np.ndarray, shift: np.ndarray, ux: np.ndarray, uy: np.ndarray, c: tuple) -> np.ndarray:
    """The scripts' elastic_transform on an H x W x 3 float image in [0, 1]. ``shift`` (3 x 2)
    are the anchor points' moves as uniform(-1, 1) draws, ``ux``/``uy`` the uniform(-1, 1)
    fields behind dx and dy. skimage's ``gaussian(mode='reflect', truncate=3)`` on a 2-D float
    array is scipy's ``gaussian_filter`` with the same arguments."""
    import cv2
    from scipy.ndimage import gaussian_filter, map_coordinates

    alpha, sigma, amp = c
    image = x.astype(np.float32)
    shape = image.shape
    centre = np.float32(shape[:2]) // 2
    square = min(shape[:2]) // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    pts2 = pts1 + (shift * amp).astype(np.float32)
    m = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, m, shape[:2][::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian_filter(ux.astype(np.float64), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    dy = (gaussian_filter(uy.astype(np.float64), sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)
    gx, gy, gz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    idx = (gy + dy[..., None]).reshape(-1, 1), (gx + dx[..., None]).reshape(-1, 1), gz.reshape(-1, 1)
    return np.clip(map_coordinates(image, idx, order=1, mode="reflect").reshape(shape), 0, 1)


def natural_images(tar: Path, size: int, n: int) -> np.ndarray | None:
    """``n`` photographs from the shared CIFAR-10 test archive as uint8 N x size x size x 3
    (PIL bilinear where size is not 32), or None where the archive is absent."""
    if not tar.exists():
        return None
    with tarfile.open(tar) as t:
        members = [m for m in t.getmembers() if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png"))]
        picked = members[:: max(1, len(members) // n)][:n]
        imgs = [Image.open(t.extractfile(m)).convert("RGB") for m in picked]
    return np.stack([np.asarray(i if i.size == (size, size) else i.resize((size, size), Image.BILINEAR)) for i in imgs])
