"""The per-type interpreters and output modules (SPEC 1.2.2, 1.6).

- `ValueHead` (`value`): one Linear(d -> 1) shared by every attribute task, applied to each query:
  age (101 logits), expression (7), binary attributes (40).
- `MapHead` (`map_v2`): the pixel decoder (two 2x2 stride-2 transposed convolutions around a channel
  LayerNorm and GELU) turns the projected layer-12 memory into stride-4 per-pixel embeddings; a
  3-layer MLP turns each query into a mask embedding; their dot product gives one map per query.
- `RecognitionHead` (`feature_v2`): skips the decoder: LayerNorm, mean over tokens, then
  Linear-BatchNorm-Linear-BatchNorm to the 512-d identity embedding.
- `CosFaceClassifier`: the training-only classifier of the recognition loss (its cosines).
- `heatmap_to_points`: the landmark output, a normalised-sum soft-argmax of sigmoid heatmaps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from faceptor_jax.models import layers
from faceptor_jax.models.resize import resize


class ValueHead(nnx.Module):
  def __init__(self, dim: int, *, rngs: nnx.Rngs, dtype):
    self.fc = layers.Dense(dim, 1, rngs=rngs, dtype=dtype, names=("embed_dec", None))

  def __call__(self, queries):
    """[B, Q, d] -> logits [B, Q]."""
    return self.fc(queries)[..., 0]


class MapHead(nnx.Module):
  def __init__(self, dim: int, *, rngs: nnx.Rngs, dtype):
    self.up1 = layers.ConvTranspose2x2(dim, dim, rngs=rngs, dtype=dtype,
                                       names=("embed_dec", "embed_dec"))
    self.norm = layers.LayerNorm(dim, eps=1e-6)  # the official Norm2d: LN over channels
    self.up2 = layers.ConvTranspose2x2(dim, dim, rngs=rngs, dtype=dtype,
                                       names=("embed_dec", "embed_dec"))
    self.mask_embed = nnx.List([layers.Dense(dim, dim, rngs=rngs, dtype=dtype,
                                             names=("embed_dec", "mlp_dec" if i < 2 else
                                                    "embed_dec")) for i in range(3)])
    self.dtype = dtype

  def pixel_embeddings(self, src):
    """[B, S, S, d] -> [B, 4S, 4S, d]."""
    return self.up2(jax.nn.gelu(self.norm(self.up1(src)), approximate=False))

  def query_embeddings(self, queries):
    x = queries
    for i, fc in enumerate(self.mask_embed):
      x = fc(x)
      x = jax.nn.relu(x) if i < len(self.mask_embed) - 1 else x
    return x

  def __call__(self, queries, src, layout: str):
    """Maps of every query: `layout` 'bhwq' (parsing logits, NHWC) or 'bqhw' (landmark heatmaps)."""
    return layers.matmul(self.query_embeddings(queries), self.pixel_embeddings(src), self.dtype,
                         f"bqc,bhwc->{layout}")


class RecognitionHead(nnx.Module):
  def __init__(self, din: int, dout: int, *, rngs: nnx.Rngs, dtype):
    self.norm = layers.LayerNorm(din)
    self.fc1 = layers.Dense(din, din, rngs=rngs, dtype=dtype, use_bias=False,
                            names=("embed", "mlp"))
    self.bn1 = layers.BatchNorm(din, eps=2e-5)
    self.fc2 = layers.Dense(din, dout, rngs=rngs, dtype=dtype, use_bias=False,
                            names=("mlp", None))
    self.bn2 = layers.BatchNorm(dout, eps=2e-5)

  def __call__(self, tokens, train: bool):
    """Layer-12 tokens [B, N, C] -> the (unnormalised) identity embedding [B, dout]."""
    x = self.norm(tokens).mean(axis=1)
    return self.bn2(self.fc2(self.bn1(self.fc1(x), train)), train)


class CosFaceClassifier(nnx.Module):
  """The CosFace class centres [rows, dim], sharded over classes on big meshes.

  `rows` is `classes` rounded up to a multiple of `row_multiple` so the rows split evenly over the
  devices (93,431 is odd); the padding rows never win: their cosines are pinned to -1e4.
  """

  def __init__(self, classes: int, dim: int, *, rngs: nnx.Rngs, row_multiple: int = 1):
    rows = -(-classes // row_multiple) * row_multiple
    bound = dim ** -0.5
    self.classes = classes
    self.weight = layers.param(layers.uniform(rngs, (rows, dim), -bound, bound),
                               ("classes", None))

  def __call__(self, embedding):
    """cos(embedding, centre) [B, rows] in float32 (F.normalize's eps 1e-12)."""
    def unit(x):
      x = x.astype(jnp.float32)
      return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    cos = jnp.einsum("bd,cd->bc", unit(embedding), unit(self.weight[...]), precision="highest")
    if self.weight.shape[0] == self.classes:
      return cos
    return jnp.where(jnp.arange(self.weight.shape[0]) < self.classes, cos, -1e4)


def cosface_classifiers(cfg, specs, *, rngs: nnx.Rngs) -> nnx.Dict:
  """{recognition task: its CosFace classifier} for the task specs of a model config (rows:
  `cfg.identities` or the task's identity count, padded to `cfg.classifier_multiple`)."""
  return nnx.Dict({
      t.name: CosFaceClassifier(cfg.get("identities") or t.num_outputs, cfg.embedding_dim,
                                rngs=rngs, row_multiple=cfg.get("classifier_multiple", 1))
      for t in specs if t.type.name == "recog"})


def heatmap_to_points(heatmap_logits):
  """[B, K, H, W] logits -> [B, K, 2] (x, y) in [0, 1]: sum(index * sigmoid) / max(sum, 1e-6),
  then (p + 0.5) / size (the official AlignOutput)."""
  h = jax.nn.sigmoid(heatmap_logits.astype(jnp.float32))
  height, width = h.shape[-2:]
  total = jnp.maximum(h.sum((-2, -1)), 1e-6)
  x = (h.sum(-2) * jnp.arange(width, dtype=jnp.float32)).sum(-1) / total
  y = (h.sum(-1) * jnp.arange(height, dtype=jnp.float32)).sum(-1) / total
  return jnp.stack([(x + 0.5) / width, (y + 0.5) / height], axis=-1)


def upsample_parsing(logits, size: tuple[int, int]):
  """The official ParsingOutput: bilinear (align_corners=False) resize of NHWC logits to `size`."""
  return resize(logits, size, "bilinear")
