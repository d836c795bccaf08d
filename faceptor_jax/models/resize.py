"""Image resizes that equal PyTorch's `F.interpolate(..., align_corners=False)`.

`jax.image.resize` is not the same: its cubic kernel is Keys a=-0.5 and it antialiases when
downsampling. PyTorch uses a=-0.75, no antialias, half-pixel centres and clamped borders (the
bilinear source index is also clamped at 0). Both resizes are separable, so each is two
multiplications by a small [out, in] matrix built once in numpy at trace time.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np


def _cubic(t, a=-0.75):
  t = np.abs(t)
  return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                  np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


@functools.lru_cache(maxsize=None)
def resize_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
  """[n_out, n_in] float64 weights of a 1-D resize with PyTorch's align_corners=False rule."""
  m = np.zeros((n_out, n_in))
  if n_in == n_out:
    return np.eye(n_in)
  scale = n_in / n_out
  for i in range(n_out):
    src = (i + 0.5) * scale - 0.5
    if method == "bicubic":
      x0 = int(np.floor(src))
      t = src - x0
      for k, w in zip(range(x0 - 1, x0 + 3), _cubic(np.array([t + 1, t, 1 - t, 2 - t]))):
        m[i, min(max(k, 0), n_in - 1)] += w
    elif method == "bilinear":
      src = max(src, 0.0)
      x0 = min(int(np.floor(src)), n_in - 1)
      x1 = min(x0 + 1, n_in - 1)
      t = src - x0
      m[i, x0] += 1 - t
      m[i, x1] += t
    else:
      raise ValueError(f"unknown resize method {method!r}")
  return m


def resize(x, size: tuple[int, int], method: str, axes: tuple[int, int] = (1, 2)):
  """Resizes axes `axes` (height, width) of `x` to `size`, computed in float32."""
  hy, wx = axes
  my = jnp.asarray(resize_matrix(x.shape[hy], size[0], method), jnp.float32)
  mx = jnp.asarray(resize_matrix(x.shape[wx], size[1], method), jnp.float32)
  x = jnp.moveaxis(x.astype(jnp.float32), (hy, wx), (-2, -1))
  x = jnp.einsum("oh,...hw,pw->...op", my, x, mx, precision="highest")
  return jnp.moveaxis(x, (-2, -1), (hy, wx))
