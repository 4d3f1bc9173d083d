"""Image-quality metrics of a received image against its error-free reference.

Thin, explicit wrappers over scikit-image (the project's metric reference):
MSE on the 0..255 scale, PSNR in dB with ``data_range=255`` (``inf`` for
identical images), SSIM over RGB with ``data_range=255`` and a window that
fits small images.

Example
-------
>>> import numpy as np
>>> from pipeline.metrics import image_metrics
>>> a = np.zeros((32, 32, 3), np.uint8); b = a.copy(); b[0, 0, 0] = 255
>>> m = image_metrics(b, a)
>>> round(m["mse"], 3), round(m["psnr_db"], 2), m["ssim"] < 1
(21.167, 34.87, True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["image_metrics", "mse", "psnr_db", "ssim"]


def _check(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image, reference = np.asarray(image), np.asarray(reference)
    if image.shape != reference.shape or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image and reference must both be [H, W, 3]; got {image.shape} and {reference.shape}")
    if image.dtype != np.uint8 or reference.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0..255); got {image.dtype} and {reference.dtype}")
    return image, reference


def mse(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, 0..255 scale. Inputs ``uint8 [H, W, 3]``."""
    from skimage.metrics import mean_squared_error

    image, reference = _check(image, reference)
    return float(mean_squared_error(reference, image))


def psnr_db(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR [dB] with peak 255; ``inf`` when the images are identical. Inputs ``uint8 [H, W, 3]``."""
    from skimage.metrics import peak_signal_noise_ratio

    image, reference = _check(image, reference)
    if np.array_equal(image, reference):
        return math.inf
    return float(peak_signal_noise_ratio(reference, image, data_range=255))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Structural similarity (RGB, Gaussian-free 7x7 window or smaller), in [-1, 1]. Inputs ``uint8 [H, W, 3]``."""
    from skimage.metrics import structural_similarity

    image, reference = _check(image, reference)
    win = min(7, min(image.shape[:2]) // 2 * 2 - 1)
    return float(structural_similarity(reference, image, data_range=255, channel_axis=-1, win_size=win))


def image_metrics(image: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """``{"mse", "psnr_db", "ssim"}`` of ``image`` against ``reference`` (both ``uint8 [H, W, 3]``)."""
    return {"mse": mse(image, reference), "psnr_db": psnr_db(image, reference), "ssim": ssim(image, reference)}
