"""UPerNet's pieces against PyTorch's own ops (torch is a test-time reference only)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax.models import layers, uper

torch = pytest.importorskip("torch")
F = torch.nn.functional


def nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def nhwc(t):
  return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("n_in,n_out", [(16, 1), (16, 2), (16, 3), (16, 6), (4, 6), (7, 3)])
def test_adaptive_avg_pool_has_torch_bin_edges(n_in, n_out):
  """Non-divisible sizes overlap bins (floor/ceil edges); 4 -> 6 pools up, as the tiny PPM does."""
  x = np.random.default_rng(0).normal(size=(2, n_in, n_in, 3)).astype(np.float32)
  np.testing.assert_allclose(uper.adaptive_avg_pool(jnp.asarray(x), n_out),
                             nhwc(F.adaptive_avg_pool2d(nchw(x), n_out)), atol=1e-6)


def test_max_pool_drops_an_odd_edge_like_torch():
  x = np.random.default_rng(1).normal(size=(1, 5, 5, 2)).astype(np.float32)
  np.testing.assert_array_equal(uper.max_pool_2x2(jnp.asarray(x)), nhwc(F.max_pool2d(nchw(x), 2)))


@pytest.mark.parametrize("k,bias", [(3, False), (1, True)])
def test_conv_matches_torch_conv2d(k, bias):
  conv = layers.Conv2d(4, 5, k, rngs=nnx.Rngs(0), dtype=jnp.float32, use_bias=bias)
  x = np.random.default_rng(2).normal(size=(2, 6, 6, 4)).astype(np.float32)
  w = torch.from_numpy(np.asarray(conv.kernel[...]).transpose(3, 2, 0, 1).copy())
  b = torch.from_numpy(np.array(conv.bias[...])) if bias else None
  np.testing.assert_allclose(conv(jnp.asarray(x)), nhwc(F.conv2d(nchw(x), w, b, padding=k // 2)),
                             atol=1e-5)


def test_pyramid_adapter_levels_are_4x_2x_1x_half():
  adapter = uper.PyramidAdapter(8, rngs=nnx.Rngs(0), dtype=jnp.float32)
  maps = [jnp.ones((2, 4, 4, 8)) * i for i in range(4)]
  sizes = [m.shape[1] for m in adapter(maps, train=False)]
  assert sizes == [16, 8, 4, 2]


def test_uper_head_output_and_dropout2d():
  head = uper.UPerHead(8, 6, 5, rngs=nnx.Rngs(0), dtype=jnp.float32)
  rng = np.random.default_rng(3)
  pyramid = [jnp.asarray(rng.normal(size=(2, s, s, 8)), jnp.float32) for s in (16, 8, 4, 2)]
  train = nnx.jit(lambda h, p, k: h(p, train=True, key=k))
  a = train(head, pyramid, jax.random.key(0))
  assert a.shape == (2, 16, 16, 5)
  assert not np.allclose(a, train(head, pyramid, jax.random.key(1)))
  np.testing.assert_allclose(a, train(head, pyramid, jax.random.key(0)), atol=1e-6)
  # Dropout2d drops whole channels of an example, rescaling the rest by 1 / 0.9.
  dropped = np.asarray(head.dropout(jnp.ones((4, 3, 3, 64)), deterministic=False,
                                    rngs=jax.random.key(2)))
  assert (dropped == dropped[:, :1, :1, :]).all()
  np.testing.assert_allclose(np.unique(dropped), [0.0, 1 / 0.9], rtol=1e-6)
