"""CBAM's channel attention (`ChannelGate`, Woo et al. 2018), as SwinFace's MLCA head uses it.

Both the global average and the global max of every channel go through one shared MLP
(C -> C / reduction -> C, ReLU between); the two results are summed and a sigmoid of the sum scales
the channels. The output bias is therefore counted twice, as in the original.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from faceptor_jax.models import layers


class ChannelGate(nnx.Module):
  def __init__(self, channels: int, reduction: int = 16, *, rngs: nnx.Rngs, dtype):
    hidden = channels // reduction
    self.fc1 = layers.Dense(channels, hidden, rngs=rngs, dtype=dtype, names=("embed", "mlp"))
    self.fc2 = layers.Dense(hidden, channels, rngs=rngs, dtype=dtype, names=("mlp", "embed"))

  def __call__(self, x):
    """[B, H, W, C] -> the same, each channel scaled by its attention weight in (0, 1)."""
    descriptors = jnp.stack([x.mean(axis=(1, 2)), x.max(axis=(1, 2))])  # [2, B, C]
    weights = self.fc2(jax.nn.relu(self.fc1(descriptors))).sum(axis=0)
    return x * jax.nn.sigmoid(weights)[:, None, None, :]
