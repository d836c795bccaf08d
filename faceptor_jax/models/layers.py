"""The building blocks the Faceptor networks share, with PyTorch's numerics where they matter.

Parameters are float32 and carry logical sharding names (`sharding` metadata, mapped to mesh axes
by the rules in the config, see `faceptor_jax/sharding.py`). `dtype` is the matmul input dtype
(bfloat16 on accelerators); matmuls accumulate and return float32, normalisation statistics and
softmaxes are float32.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from faceptor_jax.models import attention

# Key counts from which attention runs blockwise (faceptor_jax/models/attention.py): below, the
# [N, N] probabilities are small enough to keep for the backward pass.
BLOCKWISE_MIN_KEYS = 256


def param(value, names: tuple) -> nnx.Param:
  """A float32 parameter annotated with logical axis names (one per dimension)."""
  assert len(names) == np.ndim(value), (names, np.shape(value))
  return nnx.Param(jnp.asarray(value, jnp.float32), eager_sharding=False, out_sharding=names)


def matmul(x, w, dtype, spec: str = "...i,io->...o"):
  """einsum in `dtype` with float32 accumulation and result.

  In reduced precision the backward matmuls run in `dtype` too (JAX's own transpose would mix the
  float32 cotangent with the bf16 operand and fall back to float32 matmuls); the saved operands
  are the `dtype` copies, half the memory.
  """
  if jnp.dtype(dtype) == jnp.float32:
    return jnp.einsum(spec, x, w, preferred_element_type=jnp.float32)
  return _low_precision_matmul(x, w, jnp.dtype(dtype).name, spec)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _low_precision_matmul(x, w, dtype, spec):
  return jnp.einsum(spec, x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def _low_precision_matmul_fwd(x, w, dtype, spec):
  xl, wl = x.astype(dtype), w.astype(dtype)
  out = jnp.einsum(spec, xl, wl, preferred_element_type=jnp.float32)
  # Zero-size arrays carry the operands' dtypes (residuals must be arrays).
  return out, (xl, wl, jnp.zeros((0,), x.dtype), jnp.zeros((0,), w.dtype))


def _low_precision_matmul_bwd(dtype, spec, saved, g):
  xl, wl, x_dtype, w_dtype = saved
  inputs, out = spec.replace(" ", "").split("->")
  a, b = inputs.split(",")
  g = g.astype(dtype)
  dx = jnp.einsum(f"{out},{b}->{a}", g, wl, preferred_element_type=jnp.float32)
  dw = jnp.einsum(f"{a},{out}->{b}", xl, g, preferred_element_type=jnp.float32)
  return dx.astype(x_dtype.dtype), dw.astype(w_dtype.dtype)


_low_precision_matmul.defvjp(_low_precision_matmul_fwd, _low_precision_matmul_bwd)


# Initial values are drawn with numpy from a generator seeded by the next `params` key: eager
# `jax.random` calls compile one XLA program per shape, which made building a model take half a
# minute. Under tracing (nnx.eval_shape for abstract models, a jitted init) the key is abstract and
# jax.random is used instead: those values differ from an eager init with the same seed.

def _numpy_rng(key) -> np.random.Generator:
  return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def uniform(rngs: nnx.Rngs, shape, low: float, high: float):
  key = rngs.params()
  if isinstance(key, jax.core.Tracer):
    return jax.random.uniform(key, shape, jnp.float32, low, high)
  return _numpy_rng(key).uniform(low, high, shape).astype(np.float32)


def normal(rngs: nnx.Rngs, shape, std: float = 1.0):
  key = rngs.params()
  if isinstance(key, jax.core.Tracer):
    return jax.random.normal(key, shape, jnp.float32) * std
  return (_numpy_rng(key).standard_normal(shape) * std).astype(np.float32)


def torch_linear_init(rngs: nnx.Rngs, fan_in: int, shape):
  """PyTorch's default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform a=sqrt 5)."""
  bound = 1.0 / math.sqrt(fan_in)
  return uniform(rngs, shape, -bound, bound)


class Dense(nnx.Module):
  """y = x W + b, W stored [in, out] (PyTorch's Linear weight transposed)."""

  def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, use_bias: bool = True,
               names=("embed", "mlp"), dtype=jnp.float32, kernel=None):
    self.kernel = param(torch_linear_init(rngs, din, (din, dout)) if kernel is None else kernel,
                        names)
    self.bias = (param(torch_linear_init(rngs, din, (dout,)), names[1:]) if use_bias else None)
    self.dtype = dtype

  def __call__(self, x):
    y = matmul(x, self.kernel[...], self.dtype)
    return y if self.bias is None else y + self.bias[...]


class LayerNorm(nnx.Module):
  """LayerNorm over the last axis with float32 statistics (FaRL's LayerNorm; torch eps semantics)."""

  def __init__(self, dim: int, eps: float = 1e-5, names=("norm",)):
    self.scale = param(jnp.ones((dim,)), names)
    self.bias = param(jnp.zeros((dim,)), names)
    self.eps = eps

  def __call__(self, x):
    x = x.astype(jnp.float32)
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]


class BatchNorm(nnx.Module):
  """BatchNorm over all axes but the last, with PyTorch semantics.

  Training normalises with the biased batch variance and updates the running variance with the
  unbiased one (torch does; flax's BatchNorm does not); momentum is torch's (new = (1-m) old + m
  batch). Under jit with a batch sharded over devices, the means are global: the BN is synchronised.
  """

  def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, names=("norm",)):
    self.scale = param(jnp.ones((dim,)), names)
    self.bias = param(jnp.zeros((dim,)), names)
    self.mean = nnx.BatchStat(jnp.zeros((dim,), jnp.float32), eager_sharding=False,
                              out_sharding=names)
    self.var = nnx.BatchStat(jnp.ones((dim,), jnp.float32), eager_sharding=False,
                             out_sharding=names)
    self.eps, self.momentum = eps, momentum

  def __call__(self, x, train: bool):
    x = x.astype(jnp.float32)
    if train:
      axes = tuple(range(x.ndim - 1))
      mean = x.mean(axes)
      var = jnp.square(x - mean).mean(axes)
      n = math.prod(x.shape[:-1])
      m = self.momentum
      self.mean[...] = (1 - m) * self.mean[...] + m * jax.lax.stop_gradient(mean)
      self.var[...] = ((1 - m) * self.var[...]
                       + m * jax.lax.stop_gradient(var) * (n / max(n - 1, 1)))
    else:
      mean, var = self.mean[...], self.var[...]
    return (x - mean) * jax.lax.rsqrt(var + self.eps) * self.scale[...] + self.bias[...]


class MultiHeadAttention(nnx.Module):
  """torch.nn.MultiheadAttention with separate q/k/v projections (the packed `in_proj` split).

  Kernels are stored [E, heads, head_dim] and the output kernel [heads, head_dim, E]. The query is
  scaled by 1/sqrt(head_dim) as torch does. `fused_qkv=True` (self-attention on one input, as in the
  ViT) keeps q, k and v in one [E, 3, heads, head_dim] kernel so they are one matmul.
  """

  def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
               fused_qkv: bool = False, names=("embed", "heads", "kv"),
               unroll_blocks: bool = False):
    hd = dim // heads
    self.heads, self.dtype, self.fused = heads, dtype, fused_qkv
    # Unroll blockwise attention's loops (where FLOPs are counted, see vit.py).
    self.unroll_blocks = unroll_blocks
    # torch's MHA init: xavier_uniform on the packed [3E, E] in_proj, zero biases.
    bound = math.sqrt(6.0 / (dim + 3 * dim))
    w = uniform(rngs, (dim, 3, heads, hd), -bound, bound)
    if fused_qkv:
      self.qkv_kernel = param(w, (names[0], None, names[1], names[2]))
      self.qkv_bias = param(jnp.zeros((3, heads, hd)), (None, names[1], names[2]))
    else:
      self.q_kernel, self.k_kernel, self.v_kernel = (param(w[:, i], names) for i in range(3))
      self.q_bias, self.k_bias, self.v_bias = (param(jnp.zeros((heads, hd)), names[1:])
                                               for _ in range(3))
    # out_proj keeps torch's default Linear init.
    self.out_kernel = param(torch_linear_init(rngs, dim, (heads, hd, dim)),
                            (names[1], names[2], names[0]))
    self.out_bias = param(jnp.zeros((dim,)), (names[0],))

  def project_qkv(self, x):
    """(q, k, v) [B, heads, N, head_dim] of one input (fused kernels only)."""
    qkv = matmul(x, self.qkv_kernel[...], self.dtype, "bne,ethd->tbhnd")
    qkv = qkv + self.qkv_bias[...][:, None, :, None, :]
    return qkv[0], qkv[1], qkv[2]

  def __call__(self, query, key=None, value=None, return_weights: bool = False):
    """Attention of `query` [B, Q, E] over `key`/`value` [B, K, E]; fused: query only.

    Heads are kept in [B, heads, N, head_dim] so that every dot product has its batch axes
    leading (no transposes around the attention matmuls).
    """
    if self.fused:
      q, k, v = self.project_qkv(query)
    else:
      proj = lambda x, w, b: matmul(x, w[...], self.dtype, "bne,ehd->bhnd") + b[...][:, None, :]
      q = proj(query, self.q_kernel, self.q_bias)
      k = proj(key, self.k_kernel, self.k_bias)
      v = proj(value, self.v_kernel, self.v_bias)
    q = q * (1.0 / math.sqrt(q.shape[-1]))
    if k.shape[2] >= BLOCKWISE_MIN_KEYS and not return_weights:
      out = attention.blockwise_attention(q, k, v, self.dtype, unroll=self.unroll_blocks)
    else:
      out, weights = softmax_attention(q, k, v, self.dtype)
    out = matmul(out, self.out_kernel[...], self.dtype, "bhqd,hde->bqe") + self.out_bias[...]
    return (out, weights) if return_weights else out


def softmax_attention(q, k, v, dtype):
  """(softmax(q k^T) v, the probabilities) for q [B, H, Q, D], k and v [B, H, K, D]: the plain
  form, whose gradient keeps the [Q, K] probabilities (attention.blockwise_attention does not)."""
  weights = jax.nn.softmax(matmul(q, k, dtype, "bhqd,bhkd->bhqk"), axis=-1)
  return matmul(weights, v, dtype, "bhqk,bhkd->bhqd"), weights


def drop_path(x, rate, key, axis: int = 0):
  """Stochastic depth (timm's DropPath): zero the residual branch along `axis`, rescale the rest.

  timm draws one keep/drop per entry of the input's first axis. With `axis=0` on [B, ...] that
  drops whole examples (the paper's stochastic depth); FaRL's blocks run sequence-first, so the
  official encoder draws one per token position, shared by the whole batch (`axis=1` on
  [B, N, D]). `rate` may be traced (one per scanned layer); no key means no dropping.
  """
  if key is None or (isinstance(rate, float) and rate == 0.0):
    return x
  keep = 1.0 - rate
  shape = tuple(n if i == axis else 1 for i, n in enumerate(x.shape))
  mask = jax.random.bernoulli(key, keep, shape)
  return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


class ConvTranspose2x2(nnx.Module):
  """ConvTranspose2d(k=2, s=2) on NHWC: non-overlapping, so out[2i+a, 2j+b] = x[i, j] W[:, :, a, b] + b.

  The kernel is stored in PyTorch's layout [in, out, 2, 2] and applied as one einsum followed by a
  depth-to-space, which avoids any kernel-flip convention.
  """

  def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, dtype=jnp.float32,
               names=("conv_in", "conv_out")):
    # torch's ConvTranspose2d init: fan_in is computed from weight.size(1) * k * k = dout * 4.
    self.kernel = param(torch_linear_init(rngs, dout * 4, (din, dout, 2, 2)),
                        (names[0], names[1], None, None))
    self.bias = param(torch_linear_init(rngs, dout * 4, (dout,)), (names[1],))
    self.dtype = dtype

  def __call__(self, x):
    b, h, w, _ = x.shape
    y = matmul(x, self.kernel[...], self.dtype, "bhwi,ioyx->bhywxo")
    return y.reshape(b, 2 * h, 2 * w, -1) + self.bias[...]


class Conv2d(nnx.Module):
  """PyTorch's Conv2d, stride 1, padding (k - 1) / 2, on NHWC; kernel stored [kh, kw, in, out].

  `init`: 'torch' (PyTorch's default, U(+-1/sqrt(fan_in))) or 'msra' (mmcv's ConvModule init,
  kaiming normal over fan_out for ReLU).
  """

  def __init__(self, din: int, dout: int, kernel_size: int, *, rngs: nnx.Rngs, dtype,
               use_bias: bool = False, init: str = "torch", names=("conv_in", "conv_out")):
    k = kernel_size
    shape = (k, k, din, dout)
    if init == "msra":
      kernel = normal(rngs, shape, math.sqrt(2.0 / (dout * k * k)))
    else:
      kernel = torch_linear_init(rngs, din * k * k, shape)
    self.kernel = param(kernel, (None, None) + tuple(names))
    self.bias = (param(torch_linear_init(rngs, din * k * k, (dout,)), names[1:])
                 if use_bias else None)
    self.dtype = dtype

  def __call__(self, x):
    k = self.kernel.shape[0]
    if k == 1:  # a 1x1 convolution is a matmul over channels
      y = matmul(x, self.kernel[...][0, 0], self.dtype)
    else:
      pad = (k - 1) // 2
      y = jax.lax.conv_general_dilated(
          x.astype(self.dtype), self.kernel[...].astype(self.dtype), (1, 1),
          ((pad, pad), (pad, pad)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
          preferred_element_type=jnp.float32)
    return y if self.bias is None else y + self.bias[...]
