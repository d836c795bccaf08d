"""Model weights on disk: an orbax checkpoint of every variable plus a JSON of what model it is.

A weights folder holds `params/` (orbax: a flat `{"encoder/blocks/0/attn/qkv_kernel": array}`)
and `meta.json` (`variant`, `tasks`, `model` (the model config), `source`). The converters write
one; training's `init_from`, `main.py --mode=eval` and inference read one. Training checkpoints
(optimizer, step, data state) are `checkpoint.py`'s business.
"""

from __future__ import annotations

import json
import os
import re

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx


class WeightsError(ValueError):
  """Weights and model disagree; the message lists every disagreement."""


def path_name(path) -> str:
  """The '/'-joined name of a variable's path: an nnx path (strings and ints) or a jax key path
  (whose trailing attribute key is the Variable's own leaf, not part of the name)."""
  parts = []
  for k in path:
    if isinstance(k, jax.tree_util.GetAttrKey):
      continue
    parts.append(getattr(k, "key", getattr(k, "idx", k)))
  return "/".join(map(str, parts))


def flat_variables(model: nnx.Module) -> dict[tuple, nnx.Variable]:
  """{path tuple: Variable} of every variable of the model (parameters and batch statistics)."""
  return {tuple(p): v for p, v in nnx.to_flat_state(nnx.state(model))}


def assign(model: nnx.Module, params: dict, *, unused=(), allow_missing=(),
           allow_unexpected=()) -> list[str]:
  """Writes `{path tuple: array}` into `model`; returns the names of variables left at their init.

  `allow_missing` / `allow_unexpected` are regexes over the '/'-joined path (e.g. stage 2's
  `decoder/new_.*` are absent from a stage-1 checkpoint). Anything else missing, unexpected
  (including the `unused` source keys) or mis-shaped raises a WeightsError listing all of them.
  """
  flat = flat_variables(model)
  params = {p: _pad_classifier_rows(p, a, flat) for p, a in params.items()}
  allowed = lambda name, patterns: any(re.fullmatch(p, name) for p in patterns)
  missing = [path_name(p) for p in flat if p not in params]
  unexpected = [path_name(p) for p in params if p not in flat] + list(unused)
  shapes = [f"{path_name(p)}: weights {tuple(np.shape(a))} vs model {tuple(flat[p].shape)}"
            for p, a in params.items() if p in flat and tuple(np.shape(a)) != flat[p].shape]
  bad_missing = [m for m in missing if not allowed(m, allow_missing)]
  bad_unexpected = [u for u in unexpected if not allowed(u, allow_unexpected)]
  if bad_missing or bad_unexpected or shapes:
    parts = []
    for title, items in (("missing from the weights", bad_missing),
                         ("unexpected in the weights", bad_unexpected),
                         ("mis-shaped", shapes)):
      if items:
        parts.append(f"{len(items)} {title}:\n  " + "\n  ".join(items))
    raise WeightsError("\n".join(parts))
  for p, a in params.items():
    if p in flat:
      flat[p][...] = np.asarray(a, dtype=flat[p].dtype)
  return missing


def arrays_of(model: nnx.Module) -> dict[tuple, np.ndarray]:
  """{path tuple: numpy array} of every variable of the model."""
  return {p: np.asarray(v[...]) for p, v in flat_variables(model).items()}


def _pad_classifier_rows(path, array, flat):
  """A CosFace classifier with fewer rows than the model's (padded to shard evenly, see
  heads.CosFaceClassifier) gets zero rows appended; the model masks them."""
  if (len(path) == 3 and path[0] == "classifiers" and path in flat
      and np.ndim(array) == 2 and array.shape[1] == flat[path].shape[1]
      and array.shape[0] < flat[path].shape[0]):
    return np.pad(np.asarray(array), ((0, flat[path].shape[0] - array.shape[0]), (0, 0)))
  return array


def save(directory: str, params: dict, meta: dict) -> None:
  """Writes `{path tuple: array}` (e.g. `arrays_of(model)`) and `meta` (JSON) to `directory`."""
  directory = os.path.abspath(directory)
  arrays = {path_name(p): np.asarray(a) for p, a in params.items()}
  os.makedirs(directory, exist_ok=True)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(directory, "params"), arrays, force=True)
  with open(os.path.join(directory, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)


def load(directory: str) -> tuple[dict, dict]:
  """({path tuple: numpy array}, meta) of a weights folder written by `save`."""
  directory = os.path.abspath(directory)
  meta_path = os.path.join(directory, "meta.json")
  if not os.path.exists(meta_path):
    raise FileNotFoundError(f"{directory} is not a weights folder (no meta.json); convert a "
                            "PyTorch checkpoint with `python -m faceptor_jax.convert`")
  with open(meta_path) as f:
    meta = json.load(f)
  with ocp.StandardCheckpointer() as ckptr:
    arrays = ckptr.restore(os.path.join(directory, "params"))
  params = {tuple(int(s) if s.isdigit() else s for s in k.split("/")): np.asarray(v)
            for k, v in jax.device_get(arrays).items()}
  return params, meta
