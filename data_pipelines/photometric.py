"""The dense tasks' photometric augmentations (py-blueprint `augmenters/image.py`), on uint8 RGB.

The official pipeline runs them on float images in [0, 1] after `Normalize255`; here they stay in
uint8 (the device normalises later), so every op rounds its result back to uint8: at most half a
grey level of difference per op. Randomness comes only from the `rng` argument.

  random_occlusion  a black rectangle: height fraction U(0.2, 0.8) / 2 of the image, width
                    fraction that +- U(0.2), at a random centre (always applied).
  noise_fusion      blend with uniform noise, alpha ~ U(0, 0.5) (the caller applies it with p 0.5).
  random_gray       luma replicated to 3 channels with probability 0.1.
  random_gamma      sqrt, identity or square of the [0, 1] intensity, each with probability 1/3.
  random_blur       box blur, kernel int(mean(H, W) * U(0, 0.01)) (up to 5 px at 512), if > 1.
"""

from __future__ import annotations

import cv2
import numpy as np

_LEVELS = np.arange(256, dtype=np.float64) / 255.0
# Gamma lookup tables: index = input grey level, value = round(255 * f(level / 255)).
_GAMMA_LUTS = (np.round(255.0 * np.sqrt(_LEVELS)).astype(np.uint8),
               np.arange(256, dtype=np.uint8),
               np.round(255.0 * _LEVELS ** 2).astype(np.uint8))


def random_occlusion(image: np.ndarray, rng: np.random.Generator, h_min: float = 0.2,
                     h_max: float = 0.8, w_delta: float = 0.2) -> np.ndarray:
  """Zeroes one random rectangle (blueprint RandomOcclusion, including its use of the height for
  the x range of the centre and of the width for the y range; equal for square crops)."""
  h, w = image.shape[:2]
  rh = rng.random() * (h_max - h_min) + h_min
  rw = rh - w_delta + 2 * w_delta * rng.random()
  cx = int((h - 1) * rng.random())
  cy = int((w - 1) * rng.random())
  dh, dw = int(h / 2 * rh), int(w / 2 * rw)
  x0, y0 = max(0, cx - dw // 2), max(0, cy - dh // 2)
  x1, y1 = min(w - 1, cx + dw // 2), min(h - 1, cy + dh // 2)
  out = image.copy()
  out[y0:y1 + 1, x0:x1 + 1] = 0
  return out


def noise_fusion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """(1 - a) * image + a * noise, noise uniform over the grey levels, a ~ U(0, 0.5)."""
  alpha = 0.5 * rng.random()
  # Noise drawn directly as grey levels: the same distribution as U(0, 1) * 255 up to the final
  # rounding, and 4x less memory traffic than float noise at 512 px.
  noise = rng.integers(0, 256, size=image.shape, dtype=np.uint8)
  return cv2.addWeighted(image, 1.0 - alpha, noise, alpha, 0.0)


def random_gray(image: np.ndarray, rng: np.random.Generator, prob: float = 0.1) -> np.ndarray:
  """With probability `prob`, the luma (ITU-R 601, as cv2 RGB2GRAY) in all three channels."""
  if rng.random() < prob:
    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
  return image


def random_gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """sqrt (brighter), identity or square (darker) of the intensity, chosen uniformly."""
  choice = int(rng.integers(0, 3))
  return image if choice == 1 else cv2.LUT(image, _GAMMA_LUTS[choice])


def random_blur(image: np.ndarray, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
  """Box blur with a kernel of int(mean(H, W) * U(0, scale)) pixels, when that exceeds 1."""
  ksize = int((image.shape[0] + image.shape[1]) / 2 * rng.uniform(0.0, scale))
  return cv2.blur(image, (ksize, ksize)) if ksize > 1 else image
