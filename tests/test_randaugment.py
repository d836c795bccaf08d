"""data_pipelines.randaugment: timm's rand-m9-mstd0.5-inc1, checked against PIL where it decides."""

import pickle

import numpy as np
import PIL.Image
import PIL.ImageEnhance
import PIL.ImageOps
import pytest

from data_pipelines import randaugment

FILL = (128, 128, 128)


def _noise_image(seed=0, shape=(24, 30, 3)):
  """Random grey levels in [30, 220]: not full range, so auto-contrast has work to do."""
  return np.random.default_rng(seed).integers(30, 221, shape).astype(np.uint8)


def _smooth_image(size=64):
  yy, xx = np.mgrid[0:size, 0:size]
  return np.stack([128 + 100 * np.sin(xx / 7.0), 128 + 100 * np.cos(yy / 9.0),
                   128 + 60 * np.sin((xx + yy) / 11.0)], -1).astype(np.uint8)


def _pil(op, image, *args):
  return np.asarray(op(PIL.Image.fromarray(image), *args))


@pytest.mark.parametrize("name", list(randaugment.INCREASING_OPS))
def test_every_op_changes_the_image_and_keeps_uint8(name):
  image = _noise_image()
  out = randaugment.RandAugment(magnitude=9, magnitude_std=0).apply_op(
      name, image, np.random.default_rng(0))
  assert out.dtype == np.uint8 and out.shape == image.shape
  assert not np.array_equal(out, image)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_point_ops_equal_pil(seed):
  image = _noise_image(seed)
  pairs = [(randaugment.auto_contrast(image), _pil(PIL.ImageOps.autocontrast, image)),
           (randaugment.equalize(image), _pil(PIL.ImageOps.equalize, image)),
           (randaugment.invert(image), _pil(PIL.ImageOps.invert, image)),
           (randaugment.solarize(image, 100), _pil(PIL.ImageOps.solarize, image, 100))]
  pairs += [(randaugment.posterize(image, bits), _pil(PIL.ImageOps.posterize, image, bits))
            for bits in (1, 2, 4)]
  for factor in (0.1, 0.55, 1.7):
    for ours, enhance in ((randaugment.contrast, PIL.ImageEnhance.Contrast),
                          (randaugment.brightness, PIL.ImageEnhance.Brightness),
                          (randaugment.sharpness, PIL.ImageEnhance.Sharpness)):
      pairs.append((ours(image, factor), _pil(lambda im, f: enhance(im).enhance(f), image, factor)))
  for ours, theirs in pairs:
    np.testing.assert_array_equal(ours, theirs)


def test_color_equals_pil_up_to_luma_rounding():
  image = _noise_image()
  for factor in (0.1, 1.7):
    theirs = _pil(lambda im, f: PIL.ImageEnhance.Color(im).enhance(f), image, factor)
    assert np.abs(randaugment.color(image, factor).astype(int) - theirs).max() <= 1


def test_posterize_to_zero_bits_is_black_as_in_the_pil_timm_used():
  assert randaugment.posterize(_noise_image(), 0).max() == 0


@pytest.mark.parametrize("ours,matrix", [
    (lambda im: randaugment.shear_x(im, 0.2, FILL), (1, 0.2, 0, 0, 1, 0)),
    (lambda im: randaugment.shear_y(im, -0.25, FILL), (1, 0, 0, -0.25, 1, 0)),
    (lambda im: randaugment.translate_x_rel(im, 0.3, FILL), (1, 0, 0.3 * 64, 0, 1, 0)),
    (lambda im: randaugment.translate_y_rel(im, -0.3, FILL), (1, 0, 0, 0, 1, -0.3 * 64)),
    (lambda im: randaugment.rotate(im, 20.0, FILL), None)])
def test_geometric_ops_match_pil_geometry(ours, matrix):
  image = _smooth_image()
  pil = PIL.Image.fromarray(image)
  if matrix is None:
    theirs = pil.rotate(20.0, resample=PIL.Image.BICUBIC, fillcolor=FILL)
  else:
    theirs = pil.transform((64, 64), PIL.Image.AFFINE, matrix, resample=PIL.Image.BICUBIC,
                           fillcolor=FILL)
  diff = np.abs(ours(image).astype(int) - np.asarray(theirs))
  # Same geometry: only the bicubic kernel (a = -0.75 vs -0.5) and the border pixels differ.
  assert diff.mean() < 1.0 and np.percentile(diff, 95) <= 3


def test_rand_augment_is_seeded_picklable_and_varies():
  augment = pickle.loads(pickle.dumps(randaugment.RandAugment()))
  image = _noise_image(shape=(32, 32, 3))
  first = augment(image, np.random.default_rng(7))
  np.testing.assert_array_equal(first, augment(image, np.random.default_rng(7)))
  outs = [augment(image, np.random.default_rng(seed)) for seed in range(20)]
  assert any(np.array_equal(o, image) for o in outs)  # both coin flips can fail (p 0.25)
  assert sum(not np.array_equal(o, image) for o in outs) >= 10


def test_magnitude_is_clipped_to_ten():
  class HugeNormal:  # a generator whose normal draw is far above 10
    def normal(self, mean, std):
      return 50.0

    def random(self):
      return 0.9  # no negation

  out = randaugment.RandAugment().apply_op("SolarizeIncreasing", _noise_image(), HugeNormal())
  # level 10 -> threshold 256 - 256 = 0: every grey level is inverted.
  np.testing.assert_array_equal(out, 255 - _noise_image())


def test_fill_is_the_normalisation_mean_in_grey_levels():
  assert randaugment.fill_for_mean((0.5, 0.5, 0.5)) == (128, 128, 128)
  assert randaugment.fill_for_mean((0.485, 0.456, 0.406)) == (124, 116, 104)
