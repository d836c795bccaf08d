"""Blockwise attention: the plain form's values and gradients, without its N^2 residual."""

import jax
import jax.ad_checkpoint
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax.models import attention, layers


def plain(q, k, v, dtype=jnp.float32):
  return layers.softmax_attention(q, k, v, dtype)[0]


def value_and_grads(fn, q, k, v, g):
  out, vjp = jax.vjp(fn, q, k, v)
  return (out,) + vjp(g)


def qkvg(queries, keys, seed=0):
  rng = np.random.default_rng(seed)
  q = rng.normal(size=(2, 3, queries, 8)).astype(np.float32) / 2
  k, v = (rng.normal(size=(2, 3, keys, 8)).astype(np.float32) for _ in range(2))
  g = rng.normal(size=(2, 3, queries, 8)).astype(np.float32)
  return [jnp.asarray(a) for a in (q, k, v, g)]


# Self-attention with a ragged last block, cross-attention with fewer queries than one block.
@pytest.mark.parametrize("queries,keys,block", [(37, 37, 8), (5, 300, 128), (64, 64, 64)])
def test_blockwise_equals_plain_attention_and_its_gradients(queries, keys, block):
  q, k, v, g = qkvg(queries, keys)
  blockwise = lambda q, k, v: attention.blockwise_attention(q, k, v, block=block)
  ours = value_and_grads(blockwise, q, k, v, g)
  ref = value_and_grads(plain, q, k, v, g)
  for name, a, b in zip(("out", "dq", "dk", "dv"), ours, ref):
    assert a.shape == b.shape and a.dtype == jnp.float32, name
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5, err_msg=name)


def test_blockwise_bfloat16_matmuls_stay_close_and_return_float32():
  q, k, v, g = qkvg(40, 40, seed=1)
  blockwise = lambda q, k, v: attention.blockwise_attention(q, k, v, jnp.bfloat16, block=16)
  ours = value_and_grads(blockwise, q, k, v, g)
  ref = value_and_grads(plain, q, k, v, g)
  for name, a, b in zip(("out", "dq", "dk", "dv"), ours, ref):
    assert a.dtype == jnp.float32, name
    # bf16 has an 8-bit mantissa: errors of a few 1e-3 relative to the values' scale.
    np.testing.assert_allclose(a, b, atol=0.03 * float(jnp.max(jnp.abs(b))), err_msg=name)


def test_blockwise_keeps_no_query_by_key_residual(capsys):
  q, k, v, _ = qkvg(300, 300)
  jax.ad_checkpoint.print_saved_residuals(
      lambda q, k, v: attention.blockwise_attention(q, k, v, block=64).sum(), q, k, v)
  saved = capsys.readouterr().out
  assert "300,300" not in saved and "64,300" not in saved, saved
  jax.ad_checkpoint.print_saved_residuals(lambda q, k, v: plain(q, k, v).sum(), q, k, v)
  assert "300,300" in capsys.readouterr().out  # the check can fail: the plain form keeps it


def test_multihead_attention_runs_blockwise_over_many_keys_with_the_same_result():
  rng = np.random.default_rng(3)
  mha = layers.MultiHeadAttention(16, 4, rngs=nnx.Rngs(0), fused_qkv=True)
  mha.qkv_bias[...] = rng.uniform(-1, 1, mha.qkv_bias.shape).astype(np.float32)
  n = layers.BLOCKWISE_MIN_KEYS + 3
  x = jnp.asarray(rng.normal(size=(2, n, 16)).astype(np.float32))
  blockwise = mha(x)
  # return_weights needs the probabilities, so it takes the plain path on the same input.
  plain_out, weights = mha(x, return_weights=True)
  assert weights.shape == (2, 4, n, n)
  np.testing.assert_allclose(blockwise, plain_out, atol=1e-5)
  grad = jax.grad(lambda x: jnp.sum(mha(x) ** 2))(x)
  grad_ref = jax.grad(lambda x: jnp.sum(mha(x, return_weights=True)[0] ** 2))(x)
  np.testing.assert_allclose(grad, grad_ref, atol=1e-4, rtol=1e-5)
