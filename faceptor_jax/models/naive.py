"""Naive Faceptor: the FaRL encoder with one task-specific head per task type (SPEC 1.3, supp. A.2).

The paper's baseline. The encoder and the grouped encoder pass are Faceptor's (`encode_groups`);
instead of the shared decoder each task type has its own head, shared by that type's datasets:
- `recog`: Faceptor's recognition head (layer 12, LayerNorm, mean-pool, 2x Linear+BN -> 512).
- `age`, `biattr`, `affect`: `AttributeHead`, SwinFace's Multi-Level Channel Attention head.
  Multi-level feature fusion: one 3x3 conv (no bias) per encoder layer 6, 8, 10, 12 to 128
  channels, concatenated to 512; CBAM channel attention; ReLU; global max-pool; BatchNorm1d
  (eps 2e-5); two Linear-ReLU-Dropout(0.5) blocks; then one output layer per task (`fcs`).
- `parsing`, `align`: `DenseHead`, FaRL's pyramid adapters on layers 4, 6, 8, 12 and an mmseg
  UPerHead (`uper.py`) with one output channel per class/landmark of all the type's tasks; each
  task takes its own channel range, at 4x the token grid (128x128 for 512-px input).

`model({task: images}, train=..., key=...)` -> {task: outputs}, exactly Faceptor's contract:
recog `embedding` [B, 512] (+ `cos_logits` in training); age/affect/biattr `logits` [B, Q];
parsing `logits` [B, 4S, 4S, C] (NHWC); align `heatmap_logits` [B, K, 4S, 4S] and `landmarks`
[B, K, 2] in [0, 1], for a token grid S. `key` drives the encoder's drop-path and the heads'
dropout in training; without a key training runs without either (as the encoder does).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from faceptor_jax import tasks
from faceptor_jax.models import heads, layers, uper
from faceptor_jax.models.cbam import ChannelGate
from faceptor_jax.models.faceptor import encode_groups
from faceptor_jax.models.vit import VisionTransformer


def _spatial(tokens, grid: int):
  """[B, S*S, C] tokens -> [B, S, S, C] map."""
  return tokens.reshape(tokens.shape[0], grid, grid, tokens.shape[-1])


class AttributeHead(nnx.Module):
  """SwinFace's MLCA head for one attribute type; `outputs` = {task: number of logits}."""

  def __init__(self, encoder_layers, width: int, channels_per_layer: int, hidden: int,
               outputs: dict, *, rngs: nnx.Rngs, dtype, drop_rate: float = 0.5):
    self.encoder_layers = tuple(encoder_layers)
    channels = channels_per_layer * len(self.encoder_layers)
    self.conv = nnx.List([layers.Conv2d(width, channels_per_layer, 3, rngs=rngs, dtype=dtype)
                          for _ in self.encoder_layers])
    self.channel_attention = ChannelGate(channels, 16, rngs=rngs, dtype=dtype)
    self.norm = layers.BatchNorm(channels, eps=2e-5)
    self.feature = nnx.List([
        layers.Dense(channels, hidden, rngs=rngs, dtype=dtype, names=("embed", "mlp")),
        layers.Dense(hidden, hidden, rngs=rngs, dtype=dtype, names=("mlp", "embed"))])
    self.dropout = nnx.Dropout(drop_rate)
    self.fcs = nnx.Dict({t: layers.Dense(hidden, n, rngs=rngs, dtype=dtype, names=("embed", None))
                         for t, n in outputs.items()})

  def __call__(self, task: str, features, grid: int, *, train: bool, key=None):
    """`features`: the encoder's per-layer tokens [B, S*S, C] -> `task`'s logits [B, Q]."""
    x = jnp.concatenate([conv(_spatial(features[layer - 1], grid))
                         for conv, layer in zip(self.conv, self.encoder_layers)], axis=-1)
    x = jax.nn.relu(self.channel_attention(x)).max(axis=(1, 2))
    x = self.norm(x, train)
    keys = (jax.random.split(key, len(self.feature)) if key is not None
            else [None] * len(self.feature))
    for fc, k in zip(self.feature, keys):
      x = self.dropout(jax.nn.relu(fc(x)), deterministic=not train or k is None, rngs=k)
    return self.fcs[task](x)


class DenseHead(nnx.Module):
  """FaRL's UPerNet head for one dense type; `outputs` = {task: channels}, in channel order."""

  def __init__(self, encoder_layers, width: int, channels: int, outputs: dict, pool_scales, *,
               rngs: nnx.Rngs, dtype):
    self.encoder_layers = tuple(encoder_layers)
    ranges, start = [], 0
    for task, n in outputs.items():
      ranges.append((task, start, start + n))
      start += n
    self.channel_ranges = tuple(ranges)
    self.adapters = uper.PyramidAdapter(width, rngs=rngs, dtype=dtype)
    self.head = uper.UPerHead(width, channels, start, rngs=rngs, dtype=dtype,
                              levels=len(self.encoder_layers), pool_scales=pool_scales)

  def __call__(self, task: str, features, grid: int, *, train: bool, key=None):
    """`task`'s maps [B, 4S, 4S, channels of the task] (NHWC)."""
    maps = [_spatial(features[layer - 1], grid) for layer in self.encoder_layers]
    logits = self.head(self.adapters(maps, train), train=train, key=key)
    _, start, end = next(r for r in self.channel_ranges if r[0] == task)
    return logits[..., start:end]


class NaiveFaceptor(nnx.Module):
  """The baseline. `cfg` is `model_config.get('naive')` (or a shrunk copy); `heads` is keyed by
  task type, as the official `heads_module.heads`."""

  def __init__(self, cfg, task_names, *, rngs: nnx.Rngs, with_classifier: bool = True):
    self.task_names = tuple(task_names)
    specs = [tasks.get(t) for t in self.task_names]
    dtype = jnp.dtype(cfg.dtype)
    enc = cfg.encoder
    self.encoder = VisionTransformer(enc, rngs=rngs, dtype=cfg.dtype)
    nv = cfg.naive
    by_type: dict[str, dict[str, int]] = {}
    for t in specs:
      by_type.setdefault(t.type.name, {})[t.name] = t.num_outputs
    built = {}
    for kind, outputs in by_type.items():
      interpreter = tasks.TYPES[kind].interpreter
      if interpreter == "feature_v2":
        built[kind] = heads.RecognitionHead(enc.width, cfg.embedding_dim, rngs=rngs, dtype=dtype)
      elif interpreter == "value":
        built[kind] = AttributeHead(nv.attr_layers, enc.width, nv.attr_channels, nv.attr_hidden,
                                    outputs, rngs=rngs, dtype=dtype)
      else:
        built[kind] = DenseHead(nv.dense_layers, enc.width, nv.uper_channels, outputs,
                                nv.pool_scales, rngs=rngs, dtype=dtype)
    self.heads = nnx.Dict(built)
    self.classifiers = heads.cosface_classifiers(cfg, specs, rngs=rngs) if with_classifier \
        else nnx.Dict({})

  def __call__(self, images: dict, *, train: bool = False, key=None,
               return_attention: bool = False) -> dict:
    if return_attention:
      raise ValueError("Naive Faceptor has no decoder, so no layer attention to return")
    encoder_key, head_key = jax.random.split(key) if key is not None else (None, None)
    encoded = encode_groups(self.encoder, images, self.task_names, train=train, key=encoder_key)
    out = {}
    for t, (feats, grid) in encoded.items():
      task_key = (jax.random.fold_in(head_key, self.task_names.index(t))
                  if head_key is not None and train else None)
      out[t] = self.head(t, feats, grid, train=train, key=task_key)
    return out

  def head(self, task: str, features, grid: int, *, train: bool, key=None) -> dict:
    """One task's outputs from the encoder features of its images."""
    kind = tasks.get(task).type
    if kind.interpreter == "feature_v2":
      out = {"embedding": self.heads[kind.name](features[-1], train)}
      if train and task in self.classifiers:
        out["cos_logits"] = self.classifiers[task](out["embedding"])
      return out
    result = self.heads[kind.name](task, features, grid, train=train, key=key)
    if kind.interpreter == "value":
      return {"logits": result}
    if kind.output == "parsing":
      return {"logits": result}
    heatmap_logits = jnp.moveaxis(result, -1, 1)
    return {"heatmap_logits": heatmap_logits,
            "landmarks": heads.heatmap_to_points(heatmap_logits)}
