"""Softmax attention over many keys, computed over blocks of queries.

`blockwise_attention` is softmax(q k^T) v (q already scaled) for [B, heads, N, head_dim]. It is
what `layers.MultiHeadAttention` uses for many keys (the 512-px encoder group: 1,025 tokens;
`layers.softmax_attention` is the plain form). It runs over blocks of queries with a custom
gradient that recomputes the probabilities from the saved log-sum-exp instead of storing them
(the FlashAttention recipe, Dao et al. 2022):
- nothing of size N^2 is kept for the backward pass (the plain form keeps 100 MB per 512-px
  layer in float32, which the block scan writes to and reads back from a 1.2 GB stack);
- each block's score tile is produced, exponentiated and consumed while it is still in cache.
On the CPU this is faster than the plain form, not only smaller; the results agree to float
rounding (tests/test_attention.py).

Matmuls run in `dtype` with float32 accumulation (as `layers.matmul`); softmax statistics and the
returned values are float32.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# Query rows per block: 128 rows of 1,025 keys x 24 (batch x heads) is 12.6 MB of scores in
# float32; measured fastest on a 2-core CPU (benchmarks/attention.py).
QUERY_BLOCK = 128


def blockwise_attention(q, k, v, dtype=jnp.float32, block: int = QUERY_BLOCK,
                        unroll: bool = False):
  """softmax(q k^T) v for q [B, H, Q, D], k and v [B, H, K, D], over blocks of `block` query
  rows; float32 [B, H, Q, D]. `unroll` unrolls the loops over blocks (XLA's cost analysis
  counts a loop body once)."""
  return _blockwise(q, k, v, jnp.dtype(dtype).name, min(block, q.shape[2]), unroll)


def _einsum(spec, a, b, dtype):
  return jnp.einsum(spec, a.astype(dtype), b.astype(dtype), preferred_element_type=jnp.float32)


def _to_blocks(x, block):
  """[B, H, N, D] -> [N/block, B, H, block, D], zero-padded to whole blocks."""
  b, h, n, d = x.shape
  x = jnp.pad(x, ((0, 0), (0, 0), (0, (-n) % block), (0, 0)))
  return x.reshape(b, h, -1, block, d).transpose(2, 0, 1, 3, 4)


def _from_blocks(x, n):
  """The inverse of `_to_blocks`, padding dropped."""
  blocks, b, h, block, d = x.shape
  return x.transpose(1, 2, 0, 3, 4).reshape(b, h, blocks * block, d)[:, :, :n]


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _blockwise(q, k, v, dtype, block, unroll):
  return _blockwise_fwd(q, k, v, dtype, block, unroll)[0]


def _blockwise_fwd(q, k, v, dtype, block, unroll):
  kd, vd = k.astype(dtype), v.astype(dtype)

  def one_block(_, qb):
    scores = _einsum("bhqd,bhkd->bhqk", qb, kd, dtype)
    peak = jnp.max(scores, axis=-1, keepdims=True)
    p = jnp.exp(scores - peak)
    total = jnp.sum(p, axis=-1, keepdims=True)
    out = _einsum("bhqk,bhkd->bhqd", p, vd, dtype) / total
    return None, (out, peak + jnp.log(total))

  _, (out, lse) = jax.lax.scan(one_block, None, _to_blocks(q, block), unroll=unroll)
  out = _from_blocks(out, q.shape[2])
  # Residuals in the matmul dtype (half the memory in bf16); the log-sum-exp stays float32.
  return out, (q.astype(dtype), kd, vd, out, lse, jnp.zeros((0,), q.dtype),
               jnp.zeros((0,), k.dtype), jnp.zeros((0,), v.dtype))


def _blockwise_bwd(dtype, block, unroll, saved, g):
  q, k, v, out, lse, q_dtype, k_dtype, v_dtype = saved
  # softmax backward: dS = P * (dP - rowsum(dO * O)).
  delta = jnp.sum(g * out, axis=-1, keepdims=True)
  gd = g.astype(dtype)

  def one_block(carry, xs):
    dk, dv = carry
    qb, gb, lse_b, delta_b = xs
    p = jnp.exp(_einsum("bhqd,bhkd->bhqk", qb, k, dtype) - lse_b)
    dp = _einsum("bhqd,bhkd->bhqk", gb, v, dtype)
    ds = p * (dp - delta_b)
    dq = _einsum("bhqk,bhkd->bhqd", ds, k, dtype)
    dk = dk + _einsum("bhqk,bhqd->bhkd", ds, qb, dtype)
    dv = dv + _einsum("bhqk,bhqd->bhkd", p, gb, dtype)
    return (dk, dv), dq

  zeros = jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32)
  # Padded query rows have zero gradient (gd is zero-padded), so they add nothing to dk, dv.
  (dk, dv), dq = jax.lax.scan(
      one_block, zeros,
      (_to_blocks(q, block), _to_blocks(gd, block), lse, _to_blocks(delta, block)),
      unroll=unroll)
  return (_from_blocks(dq, q.shape[2]).astype(q_dtype.dtype), dk.astype(k_dtype.dtype),
          dv.astype(v_dtype.dtype))


_blockwise.defvjp(_blockwise_fwd, _blockwise_bwd)
