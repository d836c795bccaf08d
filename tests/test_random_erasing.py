"""data_pipelines.random_erasing: timm's pixel-mode random erasing, drawn in uint8."""

import numpy as np

from data_pipelines import random_erasing


def test_erases_one_rectangle_of_timms_size_with_normal_noise():
  image = np.full((112, 112, 3), 7, np.uint8)
  erase = random_erasing.RandomErasing(prob=1.0)
  for seed in range(10):
    out = erase(image, np.random.default_rng(seed))
    assert out.dtype == np.uint8 and out.shape == image.shape
    ys, xs = np.nonzero((out != 7).any(-1))
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    area = h * w / 112 ** 2
    assert 0.015 < area < 0.34 and 0.25 < h / w < 1 / 0.25
    assert (out[ys.min():ys.max() + 1, xs.min():xs.max() + 1] != 7).mean() > 0.9  # one block
  noise = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(float)
  # 127.5 + 127.5 z clipped to [0, 255]: mean 127.5, a third of the values saturated.
  assert abs(noise.mean() - 127.5) < 12
  assert 0.2 < ((noise == 0) | (noise == 255)).mean() < 0.45


def test_probability_and_seed():
  image = np.full((32, 32, 3), 7, np.uint8)
  never = random_erasing.RandomErasing(prob=0.0)
  np.testing.assert_array_equal(never(image, np.random.default_rng(0)), image)
  erase = random_erasing.RandomErasing(prob=0.25)
  hits = sum(not np.array_equal(erase(image, np.random.default_rng(s)), image) for s in range(400))
  assert 60 < hits < 140
  np.testing.assert_array_equal(erase(image, np.random.default_rng(5)),
                                erase(image, np.random.default_rng(5)))
