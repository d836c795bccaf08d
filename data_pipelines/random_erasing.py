"""timm's RandomErasing (probability 0.25, mode 'pixel', one rectangle) on uint8 RGB images.

timm erases after normalisation and fills the rectangle with N(0, 1) noise per pixel and channel
*in normalised space*. Our images stay uint8 until the device normalises them, so the same noise
is drawn and mapped back to grey levels: 255 * (mean + std * z), rounded and clipped to [0, 255].
With the 112-px tasks' mean = std = 0.5, normalised values beyond [-1, 1] are not representable
in uint8: |z| > 1 (31.7% of the erased values) saturates to 0 or 255. The rectangle (area
U(0.02, 1/3) of the image, log-uniform aspect ratio in [0.3, 1/0.3], up to 10 tries to fit) is
timm's.
"""

from __future__ import annotations

import math

import numpy as np


class RandomErasing:
  """Erases one random rectangle with per-pixel normal noise. Picklable."""

  def __init__(self, prob: float = 0.25, min_area: float = 0.02, max_area: float = 1 / 3,
               min_aspect: float = 0.3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
               attempts: int = 10):
    self.prob = prob
    self.area_range = (min_area, max_area)
    self.log_aspect_range = (math.log(min_aspect), math.log(1 / min_aspect))
    self.mean = np.asarray(mean, np.float32) * 255.0
    self.std = np.asarray(std, np.float32) * 255.0
    self.attempts = attempts

  def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() > self.prob:
      return image
    img_h, img_w, channels = image.shape
    for _ in range(self.attempts):
      area = rng.uniform(*self.area_range) * img_h * img_w
      aspect = math.exp(rng.uniform(*self.log_aspect_range))
      h = int(round(math.sqrt(area * aspect)))
      w = int(round(math.sqrt(area / aspect)))
      if w < img_w and h < img_h:
        top = int(rng.integers(0, img_h - h + 1))
        left = int(rng.integers(0, img_w - w + 1))
        noise = rng.standard_normal((h, w, channels), dtype=np.float32)
        out = image.copy()
        out[top:top + h, left:left + w] = np.clip(
            np.rint(self.mean + self.std * noise), 0, 255).astype(np.uint8)
        return out
    return image
