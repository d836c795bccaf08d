"""PyTorch-compatible resizes (jax.image.resize differs: Keys a=-0.5 and antialiasing)."""

import jax.numpy as jnp
import numpy as np
import pytest

from faceptor_jax.models.resize import resize, resize_matrix


@pytest.mark.parametrize("method,size", [("bicubic", (7, 7)), ("bicubic", (32, 32)),
                                         ("bicubic", (45, 50)), ("bilinear", (128, 128)),
                                         ("bilinear", (20, 9))])
def test_equals_torch_interpolate(method, size):
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size,
                                        mode=method, align_corners=False)
  np.testing.assert_allclose(resize(jnp.asarray(x), size, method),
                             ref.permute(0, 2, 3, 1).numpy(), atol=5e-6)


def test_rows_sum_to_one_and_same_size_is_identity():
  for method in ("bicubic", "bilinear"):
    np.testing.assert_allclose(resize_matrix(32, 7, method).sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(resize_matrix(9, 9, method), np.eye(9))


def test_bicubic_weights_are_keys_minus_three_quarters():
  """Upsampling 2x: a half-pixel-offset sample uses taps (-0.75 cubic) at t = 0.25 / 0.75."""
  m = resize_matrix(8, 16, "bicubic")
  t = 0.75  # output 5 maps to source 2.25 - 0.5 = 2.25 -> x0 = 2, t = 0.25 ... row 5
  a = -0.75
  cubic = lambda d: (((a + 2) * d - (a + 3)) * d * d + 1) if d <= 1 else (
      ((a * d - 5 * a) * d + 8 * a) * d - 4 * a)
  src = (5 + 0.5) / 2 - 0.5
  x0 = int(np.floor(src)); t = src - x0
  np.testing.assert_allclose(m[5, x0 - 1:x0 + 3], [cubic(t + 1), cubic(t), cubic(1 - t),
                                                   cubic(2 - t)])
