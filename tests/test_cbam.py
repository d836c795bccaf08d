"""CBAM's channel gate: one shared MLP over the average and the max descriptor, summed, sigmoid."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from faceptor_jax.models.cbam import ChannelGate


def test_channel_gate_equals_the_cbam_formula():
  gate = ChannelGate(32, 16, rngs=nnx.Rngs(0), dtype=jnp.float32)
  for fc in (gate.fc1, gate.fc2):  # non-zero biases: the output bias counts twice
    fc.bias[...] = fc.bias[...] + 0.3
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 32)).astype(np.float32)
  w1, b1 = np.asarray(gate.fc1.kernel[...]), np.asarray(gate.fc1.bias[...])
  w2, b2 = np.asarray(gate.fc2.kernel[...]), np.asarray(gate.fc2.bias[...])
  mlp = lambda d: np.maximum(d @ w1 + b1, 0) @ w2 + b2
  att = mlp(x.mean((1, 2))) + mlp(x.max((1, 2)))
  expected = x / (1 + np.exp(-att))[:, None, None, :]
  assert w1.shape == (32, 2)
  np.testing.assert_allclose(gate(jnp.asarray(x)), expected, atol=1e-5)
