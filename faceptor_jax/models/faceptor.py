"""Faceptor: one encoder, one shared decoder with task queries, one interpreter per output type.

`model({task_name: images}, train=...)` groups the tasks by resolution (tasks.py), runs the encoder
once per group on the concatenated images of its tasks, then each task's head on its slice:
recognition reads layer 12 directly; every other task decodes its own queries and goes through
the `value` or `map_v2` interpreter of its type. Images are already normalised (tasks.normalize).

Outputs per task, by type: recog `embedding` [B, 512] (+ `cos_logits` [B, ids] in training);
age/affect/biattr `logits` [B, Q]; parsing `logits` [B, S/4, S/4, C]; align `heatmap_logits`
[B, K, S/4, S/4] and `landmarks` [B, K, 2] in [0, 1]. With `return_attention=True` the decoded
tasks add `layer_attention` [decoder layers, B, Q, levels].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from faceptor_jax import tasks
from faceptor_jax.models import decoder as decoder_lib
from faceptor_jax.models import heads
from faceptor_jax.models.vit import VisionTransformer


def encode_groups(encoder, images: dict, task_names, *, train: bool, key):
  """{task: (features, grid)}: one encoder pass per resolution group on its tasks' images."""
  present = [t for t in task_names if t in images]
  unknown = set(images) - set(task_names)
  if unknown:
    raise KeyError(f"the model has no task {sorted(unknown)}; it has {list(task_names)}")
  groups = tasks.group_of(present)
  keys = (dict(zip(groups, jax.random.split(key, len(groups)))) if key is not None
          else dict.fromkeys(groups))
  out = {}
  for group, names in groups.items():
    batch = jnp.concatenate([images[t] for t in names], axis=0)
    features = encoder(batch, train=train, key=keys[group])
    grid = batch.shape[1] // encoder.patch
    start = 0
    for t in names:
      n = images[t].shape[0]
      out[t] = ([f[start:start + n] for f in features], grid)
      start += n
  return out


class Faceptor(nnx.Module):
  """The generalist model. `cfg` is `faceptor_jax.models.model_config.get()` (or a shrunk copy)."""

  def __init__(self, cfg, task_names, *, rngs: nnx.Rngs, with_classifier: bool = True):
    self.task_names = tuple(task_names)
    specs = [tasks.get(t) for t in self.task_names]
    dtype = jnp.dtype(cfg.dtype)
    enc = cfg.encoder
    self.encoder = VisionTransformer(enc, rngs=rngs, dtype=cfg.dtype)
    queries = {t.name: t.num_queries for t in specs if t.type.uses_decoder}
    d = cfg.decoder.width
    self.decoder = (decoder_lib.TransformerDecoder(cfg.decoder, queries, enc.width, rngs=rngs,
                                                   dtype=dtype) if queries else None)
    interpreters = {t.type.interpreter for t in specs}
    self.value = heads.ValueHead(d, rngs=rngs, dtype=dtype) if "value" in interpreters else None
    self.map = heads.MapHead(d, rngs=rngs, dtype=dtype) if "map_v2" in interpreters else None
    self.recognition = (heads.RecognitionHead(enc.width, cfg.embedding_dim, rngs=rngs, dtype=dtype)
                        if "feature_v2" in interpreters else None)
    self.classifiers = heads.cosface_classifiers(cfg, specs, rngs=rngs) if with_classifier \
        else nnx.Dict({})

  def __call__(self, images: dict, *, train: bool = False, key=None,
               return_attention: bool = False) -> dict:
    encoded = encode_groups(self.encoder, images, self.task_names, train=train, key=key)
    return {t: self.head(t, feats, grid, train=train, return_attention=return_attention)
            for t, (feats, grid) in encoded.items()}

  def head(self, task: str, features, grid: int, *, train: bool, return_attention: bool = False):
    """One task's outputs from the encoder features of its images."""
    kind = tasks.get(task).type
    if kind.interpreter == "feature_v2":
      out = {"embedding": self.recognition(features[-1], train)}
      if train and task in self.classifiers:
        out["cos_logits"] = self.classifiers[task](out["embedding"])
      return out
    dec = self.decoder(task, features, grid, return_attention=return_attention)
    out = {"queries": dec["queries"]}
    if return_attention:
      out["layer_attention"] = dec["layer_attention"]
    if kind.interpreter == "value":
      out["logits"] = self.value(dec["queries"])
    elif kind.output == "parsing":
      out["logits"] = self.map(dec["queries"], dec["src"], "bhwq")
    else:
      out["heatmap_logits"] = self.map(dec["queries"], dec["src"], "bqhw")
      out["landmarks"] = heads.heatmap_to_points(out["heatmap_logits"])
    return out
