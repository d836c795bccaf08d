"""UPerNet on a plain ViT: FaRL's ViT-to-pyramid adapters and mmseg 0.30's `UPerHead` (SPEC 1.3).

Naive Faceptor's dense heads. Everything is NHWC and float32 outside the matmuls.

- `PyramidAdapter` (FaRL's `_make_fpns` for patch 16) turns four same-size ViT maps into a pyramid
  at 4x, 2x, 1x and 1/2 the token grid: two 2x2 transposed convolutions around a BatchNorm and GELU,
  one transposed convolution, the identity, and a 2x2 max-pool.
- `UPerHead`: pyramid pooling (adaptive average pools 1, 2, 3, 6 -> ConvModule -> bilinear back)
  on the coarsest level, FPN laterals and a top-down path, 3x3 FPN convolutions, every level
  resized to the finest and fused by a 3x3 ConvModule, then Dropout2d and a 1x1 classifier.
  A ConvModule is mmcv's conv (no bias) -> BatchNorm -> ReLU. Every resize is bilinear with
  `align_corners=False` (PyTorch's rule, `resize.py`), every pool follows PyTorch's bin edges.

Batch norms use the batch statistics of the (sharded) batch in training: under jit the means are
global over devices, as the official SyncBN is.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from faceptor_jax.models import layers
from faceptor_jax.models.resize import resize


class ConvModule(nnx.Module):
  """mmcv's ConvModule with a norm: conv (no bias) -> BatchNorm (eps 1e-5) -> ReLU."""

  def __init__(self, din: int, dout: int, kernel_size: int, *, rngs: nnx.Rngs, dtype):
    self.conv = layers.Conv2d(din, dout, kernel_size, rngs=rngs, dtype=dtype, init="msra")
    self.bn = layers.BatchNorm(dout, eps=1e-5)

  def __call__(self, x, train: bool):
    return jax.nn.relu(self.bn(self.conv(x), train))


@functools.lru_cache(maxsize=None)
def adaptive_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] weights of PyTorch's AdaptiveAvgPool1d: bin i averages
  [floor(i n_in / n_out), ceil((i + 1) n_in / n_out)); bins overlap when sizes do not divide."""
  m = np.zeros((n_out, n_in))
  for i in range(n_out):
    start, end = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
    m[i, start:end] = 1.0 / (end - start)
  return m


def adaptive_avg_pool(x, size: int):
  """PyTorch's AdaptiveAvgPool2d(size) on NHWC (separable: rows then columns)."""
  my = jnp.asarray(adaptive_pool_matrix(x.shape[1], size), jnp.float32)
  mx = jnp.asarray(adaptive_pool_matrix(x.shape[2], size), jnp.float32)
  return jnp.einsum("oh,bhwc,pw->bopc", my, x.astype(jnp.float32), mx, precision="highest")


def max_pool_2x2(x):
  """MaxPool2d(2, 2) on NHWC (an odd last row/column is dropped, as PyTorch does)."""
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


class PyramidAdapter(nnx.Module):
  """FaRL's `_make_fpns(16, width)`: four ViT maps -> 4x up, 2x up, identity, 2x down."""

  def __init__(self, width: int, *, rngs: nnx.Rngs, dtype):
    conv_t = functools.partial(layers.ConvTranspose2x2, width, width, rngs=rngs, dtype=dtype)
    self.up4_first = conv_t()
    self.up4_norm = layers.BatchNorm(width, eps=1e-5)
    self.up4_second = conv_t()
    self.up2 = conv_t()

  def __call__(self, maps, train: bool):
    """Four [B, S, S, C] maps (finest level first) -> [4S, 2S, S, S/2] maps."""
    x4 = self.up4_second(jax.nn.gelu(self.up4_norm(self.up4_first(maps[0]), train),
                                     approximate=False))
    return [x4, self.up2(maps[1]), maps[2], max_pool_2x2(maps[3])]


class UPerHead(nnx.Module):
  """mmseg 0.30 `UPerHead(in_channels=[din] * levels, channels, pool_scales, num_classes,
  dropout_ratio=0.1, align_corners=False)`; the attribute names are mmseg's."""

  def __init__(self, din: int, channels: int, num_classes: int, *, rngs: nnx.Rngs, dtype,
               levels: int = 4, pool_scales=(1, 2, 3, 6), dropout: float = 0.1):
    module = functools.partial(ConvModule, rngs=rngs, dtype=dtype)
    self.pool_scales = tuple(pool_scales)
    self.psp_modules = nnx.List([module(din, channels, 1) for _ in self.pool_scales])
    self.bottleneck = module(din + len(self.pool_scales) * channels, channels, 3)
    self.lateral_convs = nnx.List([module(din, channels, 1) for _ in range(levels - 1)])
    self.fpn_convs = nnx.List([module(channels, channels, 3) for _ in range(levels - 1)])
    self.fpn_bottleneck = module(levels * channels, channels, 3)
    # Dropout2d: whole channels of an example are dropped (NHWC: shared over H and W).
    self.dropout = nnx.Dropout(dropout, broadcast_dims=(1, 2))
    self.conv_seg = layers.Conv2d(channels, num_classes, 1, rngs=rngs, dtype=dtype, use_bias=True)

  def pyramid_pooling(self, x, train: bool):
    """The PSP branch on the coarsest level: [x, pooled-conv-upsampled per scale] -> bottleneck."""
    size = x.shape[1:3]
    branches = [x] + [resize(conv(adaptive_avg_pool(x, s), train), size, "bilinear")
                      for s, conv in zip(self.pool_scales, self.psp_modules)]
    return self.bottleneck(jnp.concatenate(branches, axis=-1), train)

  def __call__(self, pyramid, *, train: bool, key=None):
    """`pyramid`: [B, H_i, W_i, din] maps, finest first -> logits at the finest level's size."""
    laterals = [conv(x, train) for conv, x in zip(self.lateral_convs, pyramid)]
    laterals.append(self.pyramid_pooling(pyramid[-1], train))
    for i in range(len(laterals) - 1, 0, -1):  # top-down: add the coarser level, upsampled
      laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[1:3],
                                                 "bilinear")
    outs = [conv(x, train) for conv, x in zip(self.fpn_convs, laterals)] + [laterals[-1]]
    size = outs[0].shape[1:3]
    outs = [outs[0]] + [resize(x, size, "bilinear") for x in outs[1:]]
    x = self.fpn_bottleneck(jnp.concatenate(outs, axis=-1), train)
    x = self.dropout(x, deterministic=not train or key is None, rngs=key)
    return self.conv_seg(x)
