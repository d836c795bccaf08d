"""Faceptor's transformer decoder with task queries and layer attention (SPEC 1.2.1, 1.4).

Memory: each used encoder layer ("level") goes through its own 1x1 projection to the decoder width;
its keys carry the 2-D sine position of the token (through a shared 2-layer MLP) plus a learned level
embedding; the levels are concatenated along the token axis. Stage 1 (the released checkpoints) uses
layer 12 alone. Stage 2's layer attention adds layers 2, 4, 6, 8, 10 as `new_levels` with their own
projections and level embeddings (the official `new_input_proj` / `new_level_embed`), which are the
only parameters stage 2 trains. A config can also list all six layers in `levels` from the start.

Each of the `layers` layers is post-norm: cross-attention -> self-attention -> FFN (Mask2Former
order), each `x = LN(x + f(x))`, with the query position added to queries and keys (not values).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from faceptor_jax.models import layers


def sine_position_2d(grid_h: int, grid_w: int, dim: int = 256, temperature: float = 10000.0):
  """[H*W, dim] official `pos2posemb2d` of the token centres ((r+0.5)/H, (c+0.5)/W).

  Per axis dim/2 features, interleaved sin/cos of 2*pi*v / T^(2m/(dim/2)); the row (y) half first.
  """
  half = dim // 2
  y, x = np.meshgrid((np.arange(grid_h) + 0.5) / grid_h, (np.arange(grid_w) + 0.5) / grid_w,
                     indexing="ij")
  dim_t = temperature ** (2 * (np.arange(half) // 2) / half)

  def embed(v):
    a = 2 * np.pi * v.reshape(-1, 1) / dim_t
    return np.where(np.arange(half) % 2 == 0, np.sin(a), np.cos(a))

  return np.concatenate([embed(y), embed(x)], axis=1).astype(np.float32)


def _fan_in_normal(rngs, shape, fan_in):
  """The official decoder's "fan_in" init of every matrix: N(0, 1/fan_in)."""
  return layers.normal(rngs, shape, 1.0 / math.sqrt(fan_in))


class DecoderAttention(nnx.Module):
  """`x = LN(x + MHA(q = x + query_pos, k = keys, v = values))` (post-norm), 8 heads of 32."""

  def __init__(self, dim: int, heads: int, *, rngs: nnx.Rngs, dtype):
    self.attn = layers.MultiHeadAttention(dim, heads, rngs=rngs, dtype=dtype,
                                          names=("embed_dec", "heads", "kv"))
    hd = dim // heads
    for name in ("q_kernel", "k_kernel", "v_kernel"):
      getattr(self.attn, name)[...] = _fan_in_normal(rngs, (dim, heads, hd), dim)
    self.attn.out_kernel[...] = _fan_in_normal(rngs, (heads, hd, dim), dim)
    self.norm = layers.LayerNorm(dim, names=("norm",))

  def __call__(self, x, query_pos, keys, values, return_weights=False):
    out = self.attn(x + query_pos, keys, values, return_weights=return_weights)
    out, weights = out if return_weights else (out, None)
    return self.norm(x + out), weights


class DecoderFFN(nnx.Module):
  def __init__(self, dim: int, ffn_dim: int, *, rngs: nnx.Rngs, dtype):
    self.linear1 = layers.Dense(dim, ffn_dim, rngs=rngs, dtype=dtype, names=("embed_dec", "mlp"),
                                kernel=_fan_in_normal(rngs, (dim, ffn_dim), dim))
    self.linear2 = layers.Dense(ffn_dim, dim, rngs=rngs, dtype=dtype, names=("mlp", "embed_dec"),
                                kernel=_fan_in_normal(rngs, (ffn_dim, dim), ffn_dim))
    self.norm = layers.LayerNorm(dim)

  def __call__(self, x):
    return self.norm(x + self.linear2(jax.nn.relu(self.linear1(x))))


def input_projection(din: int, dout: int, *, rngs: nnx.Rngs, dtype) -> layers.Dense:
  """The 1x1 conv from the encoder width to the decoder width (Caffe2 Xavier fill, zero bias)."""
  bound = math.sqrt(3.0 / din)  # kaiming_uniform(a=1)
  proj = layers.Dense(din, dout, rngs=rngs, dtype=dtype, names=("embed", "embed_dec"),
                      kernel=layers.uniform(rngs, (din, dout), -bound, bound))
  proj.bias[...] = jnp.zeros((dout,))
  return proj


class TransformerDecoder(nnx.Module):
  """Shared decoder of every non-recognition task. `cfg`: width, layers, heads, ffn_dim, levels,
  new_levels (1-based encoder layer numbers)."""

  def __init__(self, cfg, queries: dict[str, int], encoder_width: int, *, rngs: nnx.Rngs,
               dtype=jnp.float32):
    d = cfg.width
    self.levels, self.new_levels = tuple(cfg.levels), tuple(cfg.new_levels)
    self.width = d
    self.input_proj = nnx.List([input_projection(encoder_width, d, rngs=rngs, dtype=dtype)
                                for _ in self.levels])
    self.level_embed = layers.param(layers.normal(rngs, (len(self.levels), d)),
                                    (None, "embed_dec"))
    if self.new_levels:
      self.new_input_proj = nnx.List([input_projection(encoder_width, d, rngs=rngs, dtype=dtype)
                                      for _ in self.new_levels])
      self.new_level_embed = layers.param(
          layers.normal(rngs, (len(self.new_levels), d)), (None, "embed_dec"))
    self.adapt_pos2d = nnx.List([
        layers.Dense(d, d, rngs=rngs, dtype=dtype, names=("embed_dec", "mlp_dec")),
        layers.Dense(d, d, rngs=rngs, dtype=dtype, names=("mlp_dec", "embed_dec"))])
    self.query_feat = nnx.Dict({t: layers.param(layers.normal(rngs, (q, d)),
                                                (None, "embed_dec"))
                                for t, q in queries.items()})
    self.query_embed = nnx.Dict({t: layers.param(layers.uniform(rngs, (q, d), 0.0, 1.0),
                                                 (None, "embed_dec"))
                                 for t, q in queries.items()})
    self.cross_attention = nnx.List([DecoderAttention(d, cfg.heads, rngs=rngs, dtype=dtype)
                                     for _ in range(cfg.layers)])
    self.self_attention = nnx.List([DecoderAttention(d, cfg.heads, rngs=rngs, dtype=dtype)
                                    for _ in range(cfg.layers)])
    self.ffn = nnx.List([DecoderFFN(d, cfg.ffn_dim, rngs=rngs, dtype=dtype)
                         for _ in range(cfg.layers)])

  @property
  def all_levels(self) -> tuple[int, ...]:
    return self.levels + self.new_levels

  def memory(self, features, grid: int):
    """(memory, keys, src): projected levels [B, L*S^2, d], memory + key positions, and the first
    level's projection [B, S, S, d] (the pixel decoder's input)."""
    projs = list(self.input_proj) + (list(self.new_input_proj) if self.new_levels else [])
    embeds = [self.level_embed[...]] + ([self.new_level_embed[...]] if self.new_levels else [])
    embeds = jnp.concatenate(embeds, axis=0)
    pos = jnp.asarray(sine_position_2d(grid, grid, self.width))
    pos = self.adapt_pos2d[1](jax.nn.relu(self.adapt_pos2d[0](pos)))
    mems = [proj(features[level - 1]) for proj, level in zip(projs, self.all_levels)]
    memory = jnp.concatenate(mems, axis=1)
    keys = jnp.concatenate([m + pos + embeds[j] for j, m in enumerate(mems)], axis=1)
    b = memory.shape[0]
    return memory, keys, mems[0].reshape(b, grid, grid, self.width)

  def __call__(self, task: str, features, grid: int, return_attention: bool = False):
    """Decodes `task`'s queries over the encoder `features` (a list of [B, S^2, C] per layer).

    Returns {'queries': [B, Q, d], 'src': [B, S, S, d]} and, with `return_attention`,
    'layer_attention' [layers, B, Q, levels]: the cross-attention mass on each level's tokens,
    averaged over heads (supplement Fig. 2).
    """
    memory, keys, src = self.memory(features, grid)
    b = memory.shape[0]
    tgt = jnp.broadcast_to(self.query_feat[task][...], (b,) + self.query_feat[task].shape)
    qpos = self.query_embed[task][...]
    attention = []
    for cross, selfa, ffn in zip(self.cross_attention, self.self_attention, self.ffn):
      tgt, w = cross(tgt, qpos, keys, memory, return_weights=return_attention)
      if return_attention:  # [B, heads, Q, L*S^2] -> [B, Q, L]
        w = w.mean(1).reshape(b, w.shape[2], len(self.all_levels), grid * grid).sum(-1)
        attention.append(w)
      tgt, _ = selfa(tgt, qpos, tgt + qpos, tgt)
      tgt = ffn(tgt)
    out = {"queries": tgt, "src": src}
    if return_attention:
      out["layer_attention"] = jnp.stack(attention)
    return out
