"""Official PyTorch state dicts -> our parameters: FaRL's CLIP checkpoint and Faceptor's own.

A state dict here is `{key: numpy array}` in PyTorch's layouts (Linear [out, in], Conv
[out, in, kh, kw], ConvTranspose [in, out, kh, kw], MultiheadAttention's packed `in_proj`), with
or without DDP's `module.` prefix. `faceptor_params` / `farl_encoder_params` rename and re-lay
every tensor into a flat `{path tuple: array}` of our model; `faceptor_jax.weights.assign` writes it
into a model and refuses missing, unexpected or mis-shaped entries with a list of each.
"""

from __future__ import annotations

import re

import numpy as np

from faceptor_jax.models.resize import resize_matrix


class ConversionError(ValueError):
  """The checkpoint and the model disagree; the message lists every disagreement."""


def strip_prefix(state: dict, prefix: str = "module.") -> dict:
  return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def linear(w):
  return np.ascontiguousarray(w.T)


def heads_in(w, heads):
  """[out = heads*hd, in] -> [in, heads, hd] (a projection into heads)."""
  return np.ascontiguousarray(w.T.reshape(w.shape[1], heads, -1))


def heads_out(w, heads):
  """[out, in = heads*hd] -> [heads, hd, out] (the output projection out of heads)."""
  return np.ascontiguousarray(w.T.reshape(heads, -1, w.shape[0]))


def resize_positional_embedding(pe: np.ndarray, grid: int) -> np.ndarray:
  """[1 + g^2, C] -> [1 + grid^2, C] with PyTorch's bicubic (the official constructor's resize)."""
  g = int(round(np.sqrt(pe.shape[0] - 1)))
  if g == grid:
    return pe
  m = resize_matrix(g, grid, "bicubic")
  body = np.einsum("oh,hwc,pw->opc", m, pe[1:].reshape(g, g, -1).astype(np.float64), m)
  return np.concatenate([pe[:1], body.reshape(grid * grid, -1).astype(pe.dtype)])


# --- the encoder -----------------------------------------------------------------------------

def encoder_params(visual: dict, heads: int, pos_grid: int | None = None,
                   prefix: tuple = ("encoder",)) -> tuple[dict, list]:
  """CLIP `visual.*` keys (prefix already stripped) -> ({our path: array}, unused keys)."""
  out, unused = {}, []
  for key, w in visual.items():
    m = re.fullmatch(r"transformer\.resblocks\.(\d+)\.(.+)", key)
    if m:
      path, w = block_param(m.group(2), w, heads)
      if path is None:
        unused.append(key)
        continue
      out[prefix + ("blocks", int(m.group(1))) + path] = w
    elif key == "conv1.weight":
      out[prefix + ("conv1",)] = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    elif key == "positional_embedding":
      out[prefix + ("positional_embedding",)] = (
          resize_positional_embedding(w, pos_grid) if pos_grid else w)
    elif key in ("class_embedding", "proj"):
      out[prefix + (key,)] = w
    elif (m := re.fullmatch(r"(ln_pre|ln_post)\.(weight|bias)", key)):
      out[prefix + (m.group(1), norm_name(m.group(2)))] = w
    else:
      unused.append(key)
  return out, unused


def norm_name(torch_name: str) -> str:
  return {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}[
      torch_name]


def block_param(name: str, w, heads: int):
  if name == "attn.in_proj_weight":  # [3E, E] -> [E, 3, heads, hd]
    e = w.shape[1]
    return ("attn", "qkv_kernel"), np.ascontiguousarray(
        w.reshape(3, heads, e // heads, e).transpose(3, 0, 1, 2))
  if name == "attn.in_proj_bias":
    return ("attn", "qkv_bias"), w.reshape(3, heads, -1)
  if name == "attn.out_proj.weight":
    return ("attn", "out_kernel"), heads_out(w, heads)
  if name == "attn.out_proj.bias":
    return ("attn", "out_bias"), w
  if (m := re.fullmatch(r"(ln_1|ln_2)\.(weight|bias)", name)):
    return (m.group(1), norm_name(m.group(2))), w
  if (m := re.fullmatch(r"mlp\.(c_fc|c_proj)\.(weight|bias)", name)):
    return (m.group(1), "kernel" if m.group(2) == "weight" else "bias"), (
        linear(w) if m.group(2) == "weight" else w)
  return None, None


def farl_encoder_params(farl_state: dict, heads: int = 12, pos_grid: int = 32):
  """FaRL's `FaRL-Base-Patch16-LAIONFace20M-ep64.pth` (a CLIP state dict, possibly under
  `state_dict`) -> our encoder's parameters. The text tower is ignored; the 14x14 positional grid
  is resized to `pos_grid` as the official constructor does."""
  visual = {k[len("visual."):]: v for k, v in farl_state.items() if k.startswith("visual.")}
  if not visual:
    raise ConversionError("no `visual.*` keys: this is not a CLIP/FaRL state dict")
  params, unused = encoder_params(visual, heads, pos_grid)
  if unused:
    raise ConversionError(f"unexpected visual keys: {unused}")
  return params


# --- Faceptor ----------------------------------------------------------------------------------

_DECODER_ATTN = {"transformer_cross_attention_layers": ("cross_attention", "multihead_attn"),
                 "transformer_self_attention_layers": ("self_attention", "self_attn")}


def _decoder_param(name: str, w, heads: int):
  """One `heads_module.decoder.*` key -> (our path under 'decoder', array) or (None, None)."""
  if (m := re.fullmatch(r"(query_feat|query_embed)\.(\w+)\.weight", name)):
    return (m.group(1), m.group(2)), w
  if name in ("level_embed.weight", "new_level_embed.weight"):
    return (name.split(".")[0],), w
  if (m := re.fullmatch(r"(input_proj|new_input_proj)\.(\d+)\.(weight|bias)", name)):
    arr = linear(w[:, :, 0, 0]) if m.group(3) == "weight" else w
    return (m.group(1), int(m.group(2)), "kernel" if m.group(3) == "weight" else "bias"), arr
  if (m := re.fullmatch(r"adapt_pos2d\.(0|2)\.(weight|bias)", name)):
    return (("adapt_pos2d", int(m.group(1)) // 2,
             "kernel" if m.group(2) == "weight" else "bias"),
            linear(w) if m.group(2) == "weight" else w)
  if (m := re.fullmatch(r"(transformer_\w+_attention_layers)\.(\d+)\.(\w+)\.(.+)", name)):
    ours, attn_name = _DECODER_ATTN[m.group(1)]
    i, sub, leaf = int(m.group(2)), m.group(3), m.group(4)
    base = (ours, i)
    if sub == "norm" and leaf in ("weight", "bias"):
      return base + ("norm", norm_name(leaf)), w
    if sub != attn_name:
      return None, None
    if leaf == "in_proj_weight":
      return base + ("attn",), {f"{c}_kernel": heads_in(p, heads)
                                for c, p in zip("qkv", np.split(w, 3))}
    if leaf == "in_proj_bias":
      return base + ("attn",), {f"{c}_bias": p.reshape(heads, -1)
                                for c, p in zip("qkv", np.split(w, 3))}
    if leaf == "out_proj.weight":
      return base + ("attn", "out_kernel"), heads_out(w, heads)
    if leaf == "out_proj.bias":
      return base + ("attn", "out_bias"), w
    return None, None
  if (m := re.fullmatch(r"transformer_ffn_layers\.(\d+)\.(linear1|linear2|norm)\.(weight|bias)",
                        name)):
    i, sub, leaf = int(m.group(1)), m.group(2), m.group(3)
    if sub == "norm":
      return ("ffn", i, "norm", norm_name(leaf)), w
    return ("ffn", i, sub, "kernel" if leaf == "weight" else "bias"), (
        linear(w) if leaf == "weight" else w)
  return None, None


def interpreter_param(name: str, w):
  """One `heads_module.interpreters.*` key -> (our path, array) or (None, None)."""
  if (m := re.fullmatch(r"feature_v2\.norm\.(weight|bias)", name)):
    return ("recognition", "norm", norm_name(m.group(1))), w
  if (m := re.fullmatch(r"feature_v2\.head\.(0|2)\.weight", name)):
    return ("recognition", "fc1" if m.group(1) == "0" else "fc2", "kernel"), linear(w)
  if (m := re.fullmatch(r"feature_v2\.head\.(1|3)\.(weight|bias|running_mean|running_var)",
                        name)):
    return ("recognition", "bn1" if m.group(1) == "1" else "bn2", norm_name(m.group(2))), w
  if (m := re.fullmatch(r"value\.fc\.(weight|bias)", name)):
    return ("value", "fc", "kernel" if m.group(1) == "weight" else "bias"), (
        linear(w) if m.group(1) == "weight" else w)
  if (m := re.fullmatch(r"map_v2\.mask_map\.(0|3)\.(weight|bias)", name)):
    return ("map", "up1" if m.group(1) == "0" else "up2",
            "kernel" if m.group(2) == "weight" else "bias"), w
  if (m := re.fullmatch(r"map_v2\.mask_map\.1\.(weight|bias)", name)):
    return ("map", "norm", norm_name(m.group(1))), w
  if (m := re.fullmatch(r"map_v2\.mask_embed\.layers\.(\d)\.(weight|bias)", name)):
    return ("map", "mask_embed", int(m.group(1)), "kernel" if m.group(2) == "weight" else "bias"), (
        linear(w) if m.group(2) == "weight" else w)
  return None, None


def faceptor_params(state: dict, encoder_heads: int = 12, decoder_heads: int = 8):
  """An official Faceptor state dict (`module.` prefix optional) -> ({our path: array}, unused).

  Handles the backbone, the decoder (stage-2 `new_*` keys too), the interpreters with their batch
  norm statistics, and the CosFace classifier. `num_batches_tracked` and the duplicate
  `mask_map.1.ln.*` aliases are dropped (an alias that differs from its target is an error).
  """
  state = strip_prefix(state)
  visual = {k[len("backbone_module.visual."):]: v for k, v in state.items()
            if k.startswith("backbone_module.visual.")}
  out, unused = encoder_params(visual, encoder_heads)
  unused = ["backbone_module.visual." + k for k in unused]
  for key, w in state.items():
    if key.startswith("backbone_module.visual.") or key.endswith("num_batches_tracked"):
      continue
    path = None
    if key.startswith("heads_module.decoder."):
      path, w = _decoder_param(key[len("heads_module.decoder."):], w, decoder_heads)
      path = ("decoder",) + path if path else None
    elif key.startswith("heads_module.interpreters."):
      name = key[len("heads_module.interpreters."):]
      if (m := re.fullmatch(r"map_v2\.mask_map\.1\.ln\.(weight|bias)", name)):
        target = f"heads_module.interpreters.map_v2.mask_map.1.{m.group(1)}"
        if target in state and not np.array_equal(state[target], w):
          raise ConversionError(f"{key} differs from its alias {target}")
        continue
      path, w = interpreter_param(name, w)
    elif (m := re.fullmatch(r"losses_module\.losses\.(recog_\w+)\.classifier", key)):
      path = ("classifiers", m.group(1), "weight")
    if path is None:
      unused.append(key)
    elif isinstance(w, dict):  # a packed tensor split into several of ours
      out.update({path + (k,): v for k, v in w.items()})
    else:
      out[path] = w
  return out, unused
