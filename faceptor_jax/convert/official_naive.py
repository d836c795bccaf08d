"""The official Naive Faceptor state dict -> our `NaiveFaceptor` parameters (SPEC 4.2).

The backbone keys are Faceptor's (`official.encoder_params`). The heads live under
`heads_module.heads.<type>.`, keyed by task type as ours (`heads/<type>/...`):
- `recog.{norm, head.0-3}`: the recognition head, named as Faceptor's `feature_v2`;
- `{age,biattr,affect}.conv.<i>`, `.channel_attention.mlp.{1,3}`, `.norm`, `.feature.{0,3}`,
  `.fcs.<task>`: SwinFace's attribute head;
- `{parsing,align}.fpns.{0.0, 0.1, 0.3, 1}`: the pyramid adapters (ConvTranspose, SyncBN,
  ConvTranspose; ConvTranspose), and `.head.*`: mmseg's UPerHead, whose names we keep
  (`psp_modules.<i>.1`, `bottleneck`, `lateral_convs.<i>`, `fpn_convs.<i>`, `fpn_bottleneck`, each
  a ConvModule `.conv` + `.bn`; `conv_seg`).
`num_batches_tracked` is dropped; the CosFace classifier goes to `classifiers/<task>/weight`.
Keys that map to nothing are returned as unused, so `weights.assign` refuses them with a list.
"""

from __future__ import annotations

import re

import numpy as np

from faceptor_jax import tasks
from faceptor_jax.convert import official

_HEADS = "heads_module.heads."
_ADAPTERS = {"0.0": "up4_first", "0.1": "up4_norm", "0.3": "up4_second", "1": "up2"}


def _conv(w):
  """A Conv2d weight [out, in, kh, kw] -> [kh, kw, in, out]."""
  return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def _dense(leaf: str, w):
  """A Linear's `weight` / `bias` -> (our leaf, array)."""
  return ("kernel", official.linear(w)) if leaf == "weight" else ("bias", w)


def _attribute_param(name: str, w):
  """One key under `heads_module.heads.<attribute type>.` -> (our path, array) or (None, None)."""
  if (m := re.fullmatch(r"conv\.(\d+)\.weight", name)):
    return ("conv", int(m.group(1)), "kernel"), _conv(w)
  if (m := re.fullmatch(r"channel_attention\.mlp\.(1|3)\.(weight|bias)", name)):
    leaf, w = _dense(m.group(2), w)
    return ("channel_attention", "fc1" if m.group(1) == "1" else "fc2", leaf), w
  if (m := re.fullmatch(r"norm\.(weight|bias|running_mean|running_var)", name)):
    return ("norm", official.norm_name(m.group(1))), w
  if (m := re.fullmatch(r"feature\.(0|3)\.(weight|bias)", name)):
    leaf, w = _dense(m.group(2), w)
    return ("feature", 0 if m.group(1) == "0" else 1, leaf), w
  if (m := re.fullmatch(r"fcs\.(\w+)\.(weight|bias)", name)):
    leaf, w = _dense(m.group(2), w)
    return ("fcs", m.group(1), leaf), w
  return None, None


def _conv_module(name: str, w):
  """`conv.weight` or `bn.<stat>` of an mmcv ConvModule -> (our sub-path, array)."""
  if name == "conv.weight":
    return ("conv", "kernel"), _conv(w)
  if (m := re.fullmatch(r"bn\.(weight|bias|running_mean|running_var)", name)):
    return ("bn", official.norm_name(m.group(1))), w
  return None, None


def _dense_param(name: str, w):
  """One key under `heads_module.heads.<dense type>.` -> (our path, array) or (None, None)."""
  if (m := re.fullmatch(r"fpns\.(0\.0|0\.3|1)\.(weight|bias)", name)):
    # ConvTranspose2x2 keeps PyTorch's [in, out, 2, 2] layout.
    return ("adapters", _ADAPTERS[m.group(1)], "kernel" if m.group(2) == "weight" else "bias"), w
  if (m := re.fullmatch(r"fpns\.0\.1\.(weight|bias|running_mean|running_var)", name)):
    return ("adapters", "up4_norm", official.norm_name(m.group(1))), w
  if (m := re.fullmatch(r"head\.conv_seg\.(weight|bias)", name)):
    return ("head", "conv_seg", "kernel" if m.group(1) == "weight" else "bias"), (
        _conv(w) if m.group(1) == "weight" else w)
  m = (re.fullmatch(r"head\.(psp_modules)\.(\d+)\.1\.(.+)", name)
       or re.fullmatch(r"head\.(lateral_convs|fpn_convs)\.(\d+)\.(.+)", name))
  if m:
    sub, w = _conv_module(m.group(3), w)
    return (("head", m.group(1), int(m.group(2))) + sub, w) if sub else (None, None)
  if (m := re.fullmatch(r"head\.(bottleneck|fpn_bottleneck)\.(.+)", name)):
    sub, w = _conv_module(m.group(2), w)
    return (("head", m.group(1)) + sub, w) if sub else (None, None)
  return None, None


def _head_param(kind: str, name: str, w):
  """One key under `heads_module.heads.<kind>.` -> (our path under `heads/<kind>`, array)."""
  interpreter = tasks.TYPES[kind].interpreter if kind in tasks.TYPES else None
  if interpreter == "feature_v2":
    path, w = official.interpreter_param("feature_v2." + name, w)
    return (path[1:], w) if path else (None, None)  # drop Faceptor's 'recognition'
  if interpreter == "value":
    return _attribute_param(name, w)
  if interpreter == "map_v2":
    return _dense_param(name, w)
  return None, None


def naive_params(state: dict, encoder_heads: int = 12) -> tuple[dict, list]:
  """An official Naive Faceptor state dict (`module.` prefix optional) -> ({our path: array},
  unused keys)."""
  state = official.strip_prefix(state)
  backbone = "backbone_module.visual."
  visual = {k[len(backbone):]: v for k, v in state.items() if k.startswith(backbone)}
  out, unused = official.encoder_params(visual, encoder_heads)
  unused = [backbone + k for k in unused]
  for key, w in state.items():
    if key.startswith(backbone) or key.endswith("num_batches_tracked"):
      continue
    path = None
    if key.startswith(_HEADS):
      kind, _, name = key[len(_HEADS):].partition(".")
      path, w = _head_param(kind, name, w)
      path = ("heads", kind) + path if path else None
    elif (m := re.fullmatch(r"losses_module\.losses\.(recog_\w+)\.classifier", key)):
      path = ("classifiers", m.group(1), "weight")
    if path is None:
      unused.append(key)
    else:
      out[path] = w
  return out, unused
