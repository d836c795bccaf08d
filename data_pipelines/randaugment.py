"""timm's RandAugment `rand-m9-mstd0.5-inc1` in numpy/OpenCV, on uint8 RGB images.

What timm does (timm/data/auto_augment.py, the version Faceptor trained with) and this module
repeats:
  * the 15 "increasing" ops below; 2 of them are drawn per image uniformly *with* replacement;
  * each drawn op is applied with probability 0.5, at a magnitude ~ N(9, 0.5) clipped to [0, 10];
  * signed ops (rotate, shear, translate, the enhance factors) negate their level with p 0.5;
  * geometric ops fill uncovered pixels with the normalisation mean as grey levels (128 for the
    112-px tasks' mean 0.5) and resample bicubically.

The point ops (contrast, equalize, posterize, solarize, colour, brightness, sharpness) reproduce
PIL's lookup tables and its truncating blend exactly. The geometric ops use cv2's bicubic kernel
(a = -0.75; PIL uses a = -0.5) and cv2's constant border: they differ from PIL by a few grey
levels at edges, never in geometry (PIL's pixel-centre convention is converted exactly).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

LEVEL_MAX = 10.0  # timm's _LEVEL_DENOM: magnitudes are in [0, 10]
_IDENTITY_LUT = np.arange(256, dtype=np.uint8)
# PIL ImageFilter.SMOOTH, the degenerate image of ImageEnhance.Sharpness.
_SMOOTH_KERNEL = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def _luma(image: np.ndarray) -> np.ndarray:
  return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)  # ITU-R 601, rounded: PIL's convert("L")


def _blend(degenerate, image: np.ndarray, factor: float) -> np.ndarray:
  """PIL Image.blend(degenerate, image, factor): truncating, clipped to [0, 255]."""
  degenerate = np.asarray(degenerate, np.float32)
  out = degenerate + factor * (image.astype(np.float32) - degenerate)
  return np.clip(out, 0, 255).astype(np.uint8)


def _per_channel_lut(image: np.ndarray, luts) -> np.ndarray:
  out = np.empty_like(image)
  for c, lut in enumerate(luts):
    out[..., c] = lut[image[..., c]]
  return out


# --- the ops: (image, argument, fill) -> image ------------------------------------------------

def auto_contrast(image, _arg=None, _fill=None):
  """Per channel, stretch [min, max] to [0, 255] (PIL ImageOps.autocontrast, cutoff 0)."""
  luts = []
  for c in range(image.shape[-1]):
    lo, hi = int(image[..., c].min()), int(image[..., c].max())
    if hi <= lo:
      luts.append(_IDENTITY_LUT)
      continue
    scale = 255.0 / (hi - lo)
    lut = np.trunc(np.arange(256) * scale - lo * scale)
    luts.append(np.clip(lut, 0, 255).astype(np.uint8))
  return _per_channel_lut(image, luts)


def equalize(image, _arg=None, _fill=None):
  """Per-channel histogram equalisation (PIL ImageOps.equalize's integer algorithm)."""
  luts = []
  for c in range(image.shape[-1]):
    hist = np.bincount(image[..., c].ravel(), minlength=256)
    nonzero = hist[hist > 0]
    step = (int(nonzero.sum()) - int(nonzero[-1])) // 255 if len(nonzero) > 1 else 0
    if step == 0:
      luts.append(_IDENTITY_LUT)
      continue
    before = np.concatenate([[0], np.cumsum(hist)[:-1]])
    luts.append(np.minimum((step // 2 + before) // step, 255).astype(np.uint8))
  return _per_channel_lut(image, luts)


def invert(image, _arg=None, _fill=None):
  return 255 - image


def posterize(image, bits: int, _fill=None):
  """Keep the `bits` most significant bits (0 bits: black)."""
  if bits >= 8:
    return image
  return image & np.uint8(~(2 ** (8 - bits) - 1) & 0xFF)


def solarize(image, threshold: int, _fill=None):
  """Invert the grey levels >= threshold."""
  return np.where(image < threshold, image, 255 - image).astype(np.uint8)


def solarize_add(image, add: int, _fill=None, threshold: int = 128):
  """Add `add` to the grey levels below `threshold` (saturating)."""
  lut = np.where(np.arange(256) < threshold, np.minimum(np.arange(256) + add, 255),
                 np.arange(256)).astype(np.uint8)
  return cv2.LUT(image, lut)


def color(image, factor: float, _fill=None):
  """Saturation: blend with the luma image."""
  return _blend(_luma(image)[..., None], image, factor)


def contrast(image, factor: float, _fill=None):
  """Blend with the mean luma (rounded, as PIL)."""
  return _blend(int(_luma(image).mean() + 0.5), image, factor)


def brightness(image, factor: float, _fill=None):
  """Blend with black."""
  return _blend(0.0, image, factor)


def sharpness(image, factor: float, _fill=None):
  """Blend with PIL's SMOOTH-filtered image (its 1-pixel border is the original's)."""
  smooth = cv2.filter2D(image.astype(np.float32), -1, _SMOOTH_KERNEL)
  degenerate = image.astype(np.float32)
  degenerate[1:-1, 1:-1] = np.floor(smooth[1:-1, 1:-1] + 0.5)
  return _blend(degenerate, image, factor)


def _affine_from_output(image, source_of_output: np.ndarray, fill):
  """Sample image at source_of_output @ (x, y, 1) of every output pixel centre, bicubic."""
  h, w = image.shape[:2]
  return cv2.warpAffine(image, source_of_output, (w, h),
                        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def _pil_affine(image, a, b, c, d, e, f, fill):
  """PIL Image.transform(AFFINE, (a, b, c, d, e, f)): PIL puts pixel centres at +0.5; shifting
  both sides by 0.5 gives the same map with centres at integers."""
  return _affine_from_output(image, np.array(
      [[a, b, c + 0.5 * (a + b - 1)], [d, e, f + 0.5 * (d + e - 1)]], np.float64), fill)


def rotate(image, degrees: float, fill):
  """Counter-clockwise rotation about the image centre (PIL Image.rotate)."""
  h, w = image.shape[:2]
  theta = math.radians(degrees)
  cos, sin = math.cos(theta), math.sin(theta)
  cx, cy = w / 2.0, h / 2.0  # PIL's centre, in its +0.5 convention
  return _pil_affine(image, cos, -sin, cx - cos * cx + sin * cy,
                     sin, cos, cy - sin * cx - cos * cy, fill)


def shear_x(image, factor: float, fill):
  return _pil_affine(image, 1, factor, 0, 0, 1, 0, fill)


def shear_y(image, factor: float, fill):
  return _pil_affine(image, 1, 0, 0, factor, 1, 0, fill)


def translate_x_rel(image, fraction: float, fill):
  return _pil_affine(image, 1, 0, fraction * image.shape[1], 0, 1, 0, fill)


def translate_y_rel(image, fraction: float, fill):
  return _pil_affine(image, 1, 0, 0, 0, 1, fraction * image.shape[0], fill)


# --- magnitude (level in [0, 10]) -> op argument, timm's level functions -----------------------

def _negate_half(value: float, rng: np.random.Generator) -> float:
  return -value if rng.random() > 0.5 else value


def _no_arg(level, rng):
  return None


def _rotate_arg(level, rng):
  return _negate_half(level / LEVEL_MAX * 30.0, rng)


def _posterize_increasing_arg(level, rng):
  return 4 - int(level / LEVEL_MAX * 4)


def _solarize_increasing_arg(level, rng):
  return 256 - int(level / LEVEL_MAX * 256)


def _solarize_add_arg(level, rng):
  return int(level / LEVEL_MAX * 110)


def _enhance_increasing_arg(level, rng):
  return max(0.1, 1.0 + _negate_half(level / LEVEL_MAX * 0.9, rng))


def _shear_arg(level, rng):
  return _negate_half(level / LEVEL_MAX * 0.3, rng)


def _translate_rel_arg(level, rng):
  return _negate_half(level / LEVEL_MAX * 0.45, rng)


# timm's _RAND_INCREASING_TRANSFORMS, in its order: name -> (op, level -> argument).
INCREASING_OPS = {
    "AutoContrast": (auto_contrast, _no_arg),
    "Equalize": (equalize, _no_arg),
    "Invert": (invert, _no_arg),
    "Rotate": (rotate, _rotate_arg),
    "PosterizeIncreasing": (posterize, _posterize_increasing_arg),
    "SolarizeIncreasing": (solarize, _solarize_increasing_arg),
    "SolarizeAdd": (solarize_add, _solarize_add_arg),
    "ColorIncreasing": (color, _enhance_increasing_arg),
    "ContrastIncreasing": (contrast, _enhance_increasing_arg),
    "BrightnessIncreasing": (brightness, _enhance_increasing_arg),
    "SharpnessIncreasing": (sharpness, _enhance_increasing_arg),
    "ShearX": (shear_x, _shear_arg),
    "ShearY": (shear_y, _shear_arg),
    "TranslateXRel": (translate_x_rel, _translate_rel_arg),
    "TranslateYRel": (translate_y_rel, _translate_rel_arg),
}


def fill_for_mean(mean) -> tuple:
  """timm's fill colour for the geometric ops: the normalisation mean as grey levels."""
  return tuple(min(255, round(255 * m)) for m in mean)


class RandAugment:
  """`rand-m{magnitude}-mstd{magnitude_std}-inc1` with `num_ops` ops per image. Picklable."""

  def __init__(self, magnitude: float = 9, magnitude_std: float = 0.5, num_ops: int = 2,
               prob: float = 0.5, fill=(128, 128, 128)):
    self.magnitude = magnitude
    self.magnitude_std = magnitude_std
    self.num_ops = num_ops
    self.prob = prob
    self.fill = tuple(fill)
    self.op_names = tuple(INCREASING_OPS)

  def apply_op(self, name: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One op at a random magnitude (no probability gate): timm AugmentOp past its coin flip."""
    op, level_to_arg = INCREASING_OPS[name]
    level = self.magnitude
    if self.magnitude_std > 0:
      level = rng.normal(level, self.magnitude_std)
    level = min(max(level, 0.0), LEVEL_MAX)
    return op(image, level_to_arg(level, rng), self.fill)

  def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    for index in rng.integers(0, len(self.op_names), size=self.num_ops):
      if rng.random() <= self.prob:  # timm skips when random() > prob
        image = self.apply_op(self.op_names[index], image, rng)
    return image
