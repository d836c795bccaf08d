"""data_pipelines.photometric: py-blueprint's dense-task photometric augmentations on uint8."""

import numpy as np
import pytest

from data_pipelines import photometric


def _image(size=64):
  yy, xx = np.mgrid[0:size, 0:size]
  return np.stack([xx * 3, yy * 3, (xx + yy) * 2], -1).clip(20, 230).astype(np.uint8)


class _FixedRng:
  """A stand-in generator whose draws are given, to pin the op's arithmetic."""

  def __init__(self, randoms=(), integers=(), uniforms=()):
    self.randoms, self.ints, self.uniforms = list(randoms), list(integers), list(uniforms)

  def random(self):
    return self.randoms.pop(0)

  def integers(self, low, high=None, size=None, dtype=None):
    if size is not None:
      return np.random.default_rng(0).integers(low, high, size=size, dtype=dtype)
    return self.ints.pop(0)

  def uniform(self, low, high):
    return self.uniforms.pop(0)


@pytest.mark.parametrize("op", [photometric.random_occlusion, photometric.noise_fusion,
                                photometric.random_gray, photometric.random_gamma,
                                photometric.random_blur])
def test_ops_keep_shape_dtype_and_are_seeded(op):
  image = _image()
  outs = [op(image, np.random.default_rng(seed)) for seed in (3, 3)]
  assert outs[0].shape == image.shape and outs[0].dtype == np.uint8
  np.testing.assert_array_equal(outs[0], outs[1])


def test_random_occlusion_zeroes_blueprints_rectangle():
  # rh = 0.5 * 0.6 + 0.2 = 0.5, rw = 0.5 - 0.2 + 0.4 * 0.5 = 0.5, centre (31, 15) in 64 px.
  out = photometric.random_occlusion(_image(), _FixedRng(randoms=[0.5, 0.5, 0.5, 0.25]))
  dh = dw = int(64 / 2 * 0.5)
  expected = _image()
  expected[15 - dh // 2:15 + dh // 2 + 1, 31 - dw // 2:31 + dw // 2 + 1] = 0
  np.testing.assert_array_equal(out, expected)


def test_noise_fusion_blends_towards_noise_by_alpha():
  image = np.full((32, 32, 3), 200, np.uint8)
  same = photometric.noise_fusion(image, _FixedRng(randoms=[0.0]))  # alpha 0
  np.testing.assert_array_equal(same, image)
  mixed = photometric.noise_fusion(image, _FixedRng(randoms=[1.0])).astype(float)  # alpha 0.5
  assert abs(mixed.mean() - (0.5 * 200 + 0.5 * 127.5)) < 3 and mixed.std() > 30


def test_random_gray_replicates_the_luma():
  out = photometric.random_gray(_image(), _FixedRng(randoms=[0.05]))
  assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
  np.testing.assert_array_equal(photometric.random_gray(_image(), _FixedRng(randoms=[0.5])),
                                _image())


def test_random_gamma_applies_sqrt_identity_or_square():
  image = np.array([[[0, 64, 255]]], np.uint8)
  sqrt, same, square = (photometric.random_gamma(image, _FixedRng(integers=[i]))[0, 0]
                        for i in range(3))
  np.testing.assert_array_equal(sqrt, [0, 128, 255])  # round(255 * sqrt(64 / 255)) = 128
  np.testing.assert_array_equal(same, [0, 64, 255])
  np.testing.assert_array_equal(square, [0, 16, 255])  # round(255 * (64 / 255) ** 2) = 16


def test_random_blur_kernel_scales_with_the_image():
  image = np.zeros((512, 512, 3), np.uint8)
  image[256, 256] = 250
  blurred = photometric.random_blur(image, _FixedRng(uniforms=[0.01]))  # kernel 5 at 512
  assert (blurred[..., 0] > 0).sum() == 25
  small = photometric.random_blur(image[:128, :128], _FixedRng(uniforms=[0.01]))  # kernel 1
  np.testing.assert_array_equal(small, image[:128, :128])
