"""The official Faceptor-Base training step in PyTorch: a same-machine speed reference.

  python benchmarks/official_torch_step.py                      # parity check, then 8 + 1 timing
  python benchmarks/official_torch_step.py --n112=32 --n512=0   # the official 160-image timing
  python benchmarks/official_torch_step.py --skip-parity --steps=1 --n112=2   # a smoke run

This is the reference for benchmarks/train_step.py: the same batch composition (the same random
images and labels, drawn in the same order), the same printed figures, but the official PyTorch
model. The official timings in tests/fixtures/official/README.md (18.69 s per update, 5.00 s per
inference at 8 + 1) were taken on another CPU; run this next to train_step.py to compare on yours.

The model has the official module tree (lxq1000/Faceptor @ 66a61ae: FaRL ViT-B/16,
DecoderNewHolder with TransformerDecoderLevel, LossesHolder, AIOEntry), built from torch's own
modules where the official code uses them (nn.MultiheadAttention, nn.LayerNorm, nn.BatchNorm1d,
nn.ConvTranspose2d, ...), so that the recipe state dict of tests/fixtures/official loads into it
with strict=True. Before timing, its eval outputs on the fixture inputs are compared with every
official array in official_base_outputs.npz (--skip-parity to skip).

A training update is what the official Solver.run does in fp32: the train-mode AIOEntry forward
(grouped encoder passes, drop-path 0.2, BatchNorm batch statistics, every task's head and loss,
L = sum alpha_t L_t / sum alpha_t), backward, clip_grad_norm_(5), AdamW (weight decay 0.05, one
parameter group per tensor, LR x10 for heads and the CosFace classifier), then the LR schedule.
Inference is the same batch in eval mode under no_grad: grouped encoder passes plus all heads.
Only torch and numpy are needed; nothing in faceptor_jax/ imports this file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "official")

# --------------------------------------------------------------------------------------------------
# The released Base config (expreiments/faceptor/stage_1/train_recog_age_biattr_affect_parsing_
# align.yaml), in its task order.

TASK_NAMES = ("recog_ms1mv3", "age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb",
              "parsing_celebam", "align_300w")
QUERY_NUMS = (2, 101, 40, 7, 7, 19, 68)  # recognition's 2 are never built: it skips the decoder
INTERPRETERS = ("feature_v2", "value", "value", "value", "value", "map_v2", "map_v2")
OUT_TYPES = (None, None, None, None, None, "ParsingOutput", "AlignOutput")
NUM_IDENTITIES = 93431
# AIOEntry's size groups: task types, the images' side and their normalisation (SPEC 2.5).
SIZE_GROUPS = (
    {"task_types": ("recog", "age", "biattr", "affect"), "size": 112,
     "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    {"task_types": ("parsing", "align"), "size": 512,
     "mean": (0.48145466, 0.4578275, 0.40821073), "std": (0.26862954, 0.26130258, 0.27577711)},
)
TASK_WEIGHT = {"recog": 5.0, "age": 6.0, "biattr": 2.0, "affect": 5.0, "parsing": 100.0,
               "align": 1000.0}
DROP_PATH_RATE = 0.2
# Optimiser and schedule (SPEC 2.4): lr = multiplier x (1e-6 -> 5e-5 warm-up, then cosine).
WEIGHT_DECAY = 0.05
BASE_LR, WARMUP_LR, WARMUP_STEPS, MAX_ITER = 1e-6, 5e-5, 2000, 50000
LR_MULTIPLIER = {"backbone": 1.0, "interpreters": 10.0, "decoder": 10.0, "heads": 10.0,
                 "losses": 10.0}


def task_type(name: str) -> str:
  return name.split("_")[0]


# --------------------------------------------------------------------------------------------------
# Encoder: FaRL ViT-B/16 (core/model/backbone/farl_vit.py). Runs sequence-first (LND).

class LayerNorm(nn.Module):
  """FaRL's own LayerNorm: written out in elementwise ops (not the fused kernel), eps 1e-5."""

  def __init__(self, width, eps=1e-5):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(width))
    self.bias = nn.Parameter(torch.zeros(width))
    self.variance_epsilon = eps

  def forward(self, x):
    in_dtype = x.dtype
    x = x.float()  # statistics in fp32, affine in the input dtype
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + self.variance_epsilon)
    return self.weight * x.to(in_dtype) + self.bias


class QuickGELU(nn.Module):

  def forward(self, x):
    return x * torch.sigmoid(1.702 * x)


class DropPath(nn.Module):
  """timm's DropPath. The mask is drawn along dim 0, which in FaRL's LND layout is the token axis:
  the official model drops whole token positions across the batch, not whole samples."""

  def __init__(self, rate):
    super().__init__()
    self.rate = rate

  def forward(self, x):
    if not self.training:
      return x
    keep = 1.0 - self.rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep).div_(keep)
    return x * mask


class ResidualAttentionBlock(nn.Module):

  def __init__(self, width, heads, drop_path):
    super().__init__()
    self.attn = nn.MultiheadAttention(width, heads)
    self.ln_1 = LayerNorm(width)
    self.mlp = nn.Sequential()
    self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
    self.mlp.add_module("gelu", QuickGELU())
    self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
    self.ln_2 = LayerNorm(width)
    self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

  def forward(self, x):
    y = self.ln_1(x)
    # need_weights=False and q is k is v: one packed in-projection, then SDPA (the CPU flash
    # kernel, forward and backward). batch_first=False keeps MHA off its inference fast path.
    x = x + self.drop_path(self.attn(y, y, y, need_weights=False, attn_mask=None)[0])
    return x + self.drop_path(self.mlp(self.ln_2(x)))


class Transformer(nn.Module):

  def __init__(self, width, layers, heads, drop_path_rate):
    super().__init__()
    rates = [float(r) for r in torch.linspace(0, drop_path_rate, layers)]
    self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads, r) for r in rates)


class VisualTransformer(nn.Module):
  """CLIP's visual tower, as FaRL ships it; `ln_post` and `proj` are unused by Faceptor."""

  def __init__(self, grid=32, patch=16, width=768, layers=12, heads=12, output_dim=512,
               drop_path_rate=0.0):
    super().__init__()
    self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
    self.class_embedding = nn.Parameter(torch.zeros(width))
    # forced_input_resolution 512: the stored grid is 32 x 32 (+ the CLS row).
    self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
    self.ln_pre = LayerNorm(width)
    self.transformer = Transformer(width, layers, heads, drop_path_rate)
    self.ln_post = LayerNorm(width)
    self.proj = nn.Parameter(torch.zeros(width, output_dim))


def resize_pe(pe, new_size):
  """The official _resize_pe: the CLS row, then the grid resized with torch's bicubic."""
  rows, width = pe.shape
  old = int(math.sqrt(rows - 1))
  grid = pe[1:].reshape(1, old, old, width).permute(0, 3, 1, 2)
  grid = F.interpolate(grid, (new_size, new_size), mode="bicubic", align_corners=False)
  return torch.cat([pe[:1], grid.view(width, -1).t()], dim=0)


class FaRLVisualFeatures(nn.Module):
  """Returns the 12 block outputs, CLS dropped, as [N, 768, S, S] float maps."""

  def __init__(self, drop_path_rate):
    super().__init__()
    self.visual = VisualTransformer(drop_path_rate=drop_path_rate)

  def forward(self, image):
    v = self.visual
    x = v.conv1(image)
    n, _, s, _ = x.shape
    x = x.reshape(n, x.shape[1], -1).permute(0, 2, 1)
    cls = v.class_embedding.to(x.dtype) + torch.zeros(n, 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1)
    x = x + resize_pe(v.positional_embedding, s).to(x.dtype)  # also at 32 -> 32, as official
    x = v.ln_pre(x).permute(1, 0, 2).contiguous()  # NLD -> LND
    features = []
    # The blocks are looped over directly, so FaRL's gradient checkpointing is never used.
    for block in v.transformer.resblocks:
      x = block(x)
      features.append(x[1:].permute(1, 2, 0).view(n, -1, s, s).contiguous().float())
    return features


# --------------------------------------------------------------------------------------------------
# Decoder (core/model/heads/decoder.py: TransformerDecoderLevel, levels [11]). Post-norm layers,
# run cross-attn -> self-attn -> FFN. Both attentions call MHA with the default need_weights=True,
# so they take the explicit bmm + softmax path (and average the weights over heads).

class SelfAttentionLayer(nn.Module):

  def __init__(self, d_model, nhead):
    super().__init__()
    self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
    self.norm = nn.LayerNorm(d_model)
    self.dropout = nn.Dropout(0.0)

  def forward(self, tgt, query_pos):
    q = k = tgt + query_pos  # one tensor for q and k: MHA's q-is-k projection path
    tgt2 = self.self_attn(q, k, value=tgt, attn_mask=None, key_padding_mask=None)[0]
    return self.norm(tgt + self.dropout(tgt2))


class CrossAttentionLayer(nn.Module):

  def __init__(self, d_model, nhead):
    super().__init__()
    self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=0.0)
    self.norm = nn.LayerNorm(d_model)
    self.dropout = nn.Dropout(0.0)
    self.memory = None  # the official layer keeps its attention map (for visualisation)

  def forward(self, tgt, memory, pos, query_pos):
    tgt2, attn = self.multihead_attn(query=tgt + query_pos, key=memory + pos, value=memory,
                                     attn_mask=None, key_padding_mask=None)
    self.memory = attn.clone()
    return self.norm(tgt + self.dropout(tgt2))


class FFNLayer(nn.Module):

  def __init__(self, d_model, dim_feedforward):
    super().__init__()
    self.linear1 = nn.Linear(d_model, dim_feedforward)
    self.dropout = nn.Dropout(0.0)
    self.linear2 = nn.Linear(dim_feedforward, d_model)
    self.norm = nn.LayerNorm(d_model)

  def forward(self, tgt):
    tgt2 = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
    return self.norm(tgt + self.dropout(tgt2))


def sine_embed_2d(pos, num_feats=128, temperature=10000):
  """pos2posemb2d: [..., 2 (x, y)] in (0, 1) -> [..., 256]; y part first, sin/cos interleaved."""
  pos = pos * (2 * math.pi)
  dim_t = torch.arange(num_feats, dtype=torch.float32)
  dim_t = temperature ** (2 * (dim_t // 2) / num_feats)
  out = []
  for axis in (1, 0):  # y, then x
    p = pos[..., axis, None] / dim_t
    out.append(torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2))
  return torch.cat(out, dim=-1)


class TransformerDecoderLevel(nn.Module):
  # The official class also builds a PositionEmbeddingSine `pe_layer`: unused, with no state.

  def __init__(self, task_names, query_nums, in_channels=768, hidden_dim=256, nheads=8,
               dim_feedforward=2048, num_layers=9, levels=(11,)):
    super().__init__()
    self.query_feat = nn.ModuleDict({t: nn.Embedding(q, hidden_dim)
                                     for t, q in zip(task_names, query_nums)})
    self.query_embed = nn.ModuleDict({t: nn.Embedding(q, hidden_dim)
                                      for t, q in zip(task_names, query_nums)})
    self.levels = levels
    self.level_embed = nn.Embedding(len(levels), hidden_dim)
    self.input_proj = nn.ModuleList(nn.Conv2d(in_channels, hidden_dim, 1) for _ in levels)
    self.hidden_dim = hidden_dim
    self.num_layers = num_layers
    self.transformer_self_attention_layers = nn.ModuleList(
        SelfAttentionLayer(hidden_dim, nheads) for _ in range(num_layers))
    self.transformer_cross_attention_layers = nn.ModuleList(
        CrossAttentionLayer(hidden_dim, nheads) for _ in range(num_layers))
    self.transformer_ffn_layers = nn.ModuleList(
        FFNLayer(hidden_dim, dim_feedforward) for _ in range(num_layers))
    self.adapt_pos2d = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                                     nn.Linear(hidden_dim, hidden_dim))

  def key_pos_embed(self, h, w):
    """The 'anchor' key position: adapt_pos2d(sine2d(pixel centres in (0, 1))), [HW, 1, C]."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)[None]
    pos = self.adapt_pos2d(sine_embed_2d(grid, self.hidden_dim // 2))  # [1, H, W, C]
    return pos.flatten(1, 2).permute(1, 0, 2)

  def forward(self, inputs):
    feats = inputs["backbone_output"]
    src, pos = [], []
    for j, level in enumerate(self.levels):  # recomputed on every call, as official
      src_j = self.input_proj[j](feats[level]).flatten(2).permute(2, 0, 1)  # [HW, B, C]
      pos.append(self.key_pos_embed(*feats[level].shape[-2:])
                 + self.level_embed.weight[j][None, None, :])
      src.append(src_j)
      if level == 11:
        decoder_src = src_j
    src, pos = torch.cat(src, dim=0), torch.cat(pos, dim=0)
    bs = src.shape[1]
    task = inputs["task_name"]
    query_pos = self.query_embed[task].weight.unsqueeze(1).repeat(1, bs, 1)
    out = self.query_feat[task].weight.unsqueeze(1).repeat(1, bs, 1)
    for i in range(self.num_layers):
      out = self.transformer_cross_attention_layers[i](out, src, pos, query_pos)
      out = self.transformer_self_attention_layers[i](out, query_pos)
      out = self.transformer_ffn_layers[i](out)
    inputs["decoder_output"] = out  # [Q, B, C]
    inputs["decoder_src"] = decoder_src  # [HW, B, C]
    return inputs


# --------------------------------------------------------------------------------------------------
# Interpreters (one per type, shared by tasks) and the parameter-free output modules.

class FeatureInterpreter_v2(nn.Module):  # noqa: N801 (the official class name)

  def __init__(self, in_features=768, out_features=512):
    super().__init__()
    self.norm = nn.LayerNorm(in_features)
    self.avgpool = nn.AdaptiveAvgPool1d(1)
    self.head = nn.Sequential(
        nn.Linear(in_features, in_features, bias=False), nn.BatchNorm1d(in_features, eps=2e-5),
        nn.Linear(in_features, out_features, bias=False), nn.BatchNorm1d(out_features, eps=2e-5))

  def forward(self, inputs):
    x = self.norm(inputs["backbone_output"][-1].flatten(2).transpose(1, 2))  # [B, L, C]
    inputs["head_output"] = self.head(torch.flatten(self.avgpool(x.transpose(1, 2)), 1))
    return inputs


class ValueInterpreter(nn.Module):

  def __init__(self, hidden_dim=256):
    super().__init__()
    self.fc = nn.Linear(hidden_dim, 1)

  def forward(self, inputs):
    inputs["head_output"] = self.fc(inputs["decoder_output"].permute(1, 0, 2)).flatten(1)
    return inputs


class Norm2d(nn.Module):
  """Channel LayerNorm on NCHW in elementwise ops, eps 1e-6. `ln` shares the same Parameters: it
  exists only so that checkpoints carry the `.ln.` alias keys."""

  def __init__(self, dim, eps=1e-6):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(dim))
    self.bias = nn.Parameter(torch.zeros(dim))
    self.eps = eps
    self.ln = nn.LayerNorm(dim, eps=eps)
    self.ln.weight, self.ln.bias = self.weight, self.bias

  def forward(self, x):
    mean = x.mean(1, keepdim=True)
    var = (x - mean).pow(2).mean(1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + self.eps)
    return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):

  def __init__(self, input_dim, hidden_dim, output_dim, num_layers):
    super().__init__()
    dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
    self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

  def forward(self, x):
    for i, layer in enumerate(self.layers):
      x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
    return x


class MapInterpreter_V2(nn.Module):  # noqa: N801
  """Pixel decoder (2 x ConvT stride 2 -> [B, C, 4S, 4S]) dotted with per-query mask embeddings."""

  def __init__(self, hidden_dim=256):
    super().__init__()
    self.mask_map = nn.Sequential(
        nn.ConvTranspose2d(hidden_dim, hidden_dim, kernel_size=2, stride=2), Norm2d(hidden_dim),
        nn.GELU(), nn.ConvTranspose2d(hidden_dim, hidden_dim, kernel_size=2, stride=2))
    self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3)

  def forward(self, inputs):
    src = inputs["decoder_src"]
    hw, b, c = src.shape
    side = int(math.sqrt(hw))
    features = self.mask_map(src.view(side, side, b, c).permute(2, 3, 0, 1))
    embed = self.mask_embed(inputs["decoder_output"].permute(1, 0, 2))
    inputs["head_output"] = torch.einsum("bqc,bchw->bqhw", embed, features)
    return inputs


def heatmap2points(heatmap):
  """FaRL's soft-argmax: probability-weighted pixel index / max(sum, 1e-6), then (p + .5) / size."""
  _, _, h, w = heatmap.shape
  yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
  yy, xx = yy.view(1, 1, h, w).to(heatmap), xx.view(1, 1, h, w).to(heatmap)
  total = torch.clamp(heatmap.sum([2, 3]), min=1e-6)
  points = torch.stack([(xx * heatmap).sum([2, 3]) / total, (yy * heatmap).sum([2, 3]) / total],
                       dim=-1)
  return (points + 0.5) / torch.tensor([[[w, h]]]).to(points)


class ParsingOutput(nn.Module):

  def forward(self, out):
    out = F.interpolate(out, size=[512, 512], mode="bilinear", align_corners=False)
    return out.permute(0, 2, 3, 1)


class AlignOutput(nn.Module):

  def forward(self, out):
    acted = torch.sigmoid(out)
    return {"landmark": heatmap2points(acted), "heatmap": out, "heatmap_acted": acted}


class DecoderNewHolder(nn.Module):
  """One decoder shared by the non-recognition tasks, one interpreter per type, per-task outputs."""

  def __init__(self):
    super().__init__()
    # Recognition is first in the config: the decoder gets the other tasks only.
    self.decoder = TransformerDecoderLevel(TASK_NAMES[1:], QUERY_NUMS[1:])
    self.interpreter_of = dict(zip(TASK_NAMES, INTERPRETERS))
    self.interpreters = nn.ModuleDict({"feature_v2": FeatureInterpreter_v2(),
                                       "value": ValueInterpreter(256),
                                       "map_v2": MapInterpreter_V2(256)})
    outputs = {"ParsingOutput": ParsingOutput, "AlignOutput": AlignOutput}
    self.out_modules = nn.ModuleDict()
    for name, kind in zip(TASK_NAMES, OUT_TYPES):
      self.out_modules[name] = outputs[kind]() if kind else None

  def forward(self, inputs):
    for task in inputs:  # each task separately, with its own queries
      if task_type(task) != "recog":
        inputs[task] = self.decoder(inputs[task])
      inputs[task] = self.interpreters[self.interpreter_of[task]](inputs[task])
      if self.out_modules[task] is not None:
        inputs[task]["head_output"] = self.out_modules[task](inputs[task]["head_output"])
    return inputs


# --------------------------------------------------------------------------------------------------
# Losses (core/model/loss/*.py, SPEC 2.6). The official modules also compute accuracy metrics
# (and CosFace's per-sample angles) for logging; those do not feed the loss and are left out.

class MarginCosineProductLoss(nn.Module):
  """CosFace on the raw embedding: 64 (cos - 0.4 onehot), cross-entropy, batch mean."""

  def __init__(self, in_features=512, out_features=NUM_IDENTITIES, scale=64.0, margin=0.4):
    super().__init__()
    self.scale, self.margin = scale, margin
    self.classifier = nn.Parameter(torch.empty(out_features, in_features))
    bound = 1.0 / math.sqrt(in_features)
    with torch.no_grad():
      self.classifier.uniform_(-bound, bound, generator=torch.Generator().manual_seed(0))

  def forward(self, inputs):
    x, label = inputs["head_output"], inputs["label"]
    ip = torch.mm(x, self.classifier.t())
    norms = torch.outer(torch.norm(x, 2, 1), torch.norm(self.classifier, 2, 1))
    cosine = ip / norms.clamp(min=1e-8)
    one_hot = torch.zeros_like(cosine).scatter_(1, label.view(-1, 1), 1.0)
    return {"tloss": F.cross_entropy(self.scale * (cosine - one_hot * self.margin), label)}


class AgeLoss_DLDLV2(nn.Module):  # noqa: N801
  """sigmoid, L1-normalised over the 101 bins; KL to the label distribution + L1 on the mean age."""

  def forward(self, inputs):
    p = F.normalize(torch.sigmoid(inputs["head_output"]), p=1, dim=1)
    dist, age = inputs["label"]["distribution"], inputs["label"]["avg_label"]
    kl = F.kl_div(torch.log(p), dist, reduction="none")
    kl = kl.sum() / kl.shape[0]
    expected = torch.sum(p * torch.arange(101, dtype=torch.float32), dim=1)
    return {"tloss": kl + F.l1_loss(expected, age.float())}


class CEL_Sigmoid(nn.Module):  # noqa: N801
  """BCE with logits, -1 labels masked, summed over attributes and divided by the batch size."""

  def forward(self, inputs):
    logits, targets = inputs["head_output"], inputs["label"]
    loss = F.binary_cross_entropy_with_logits(logits, targets.float(),
                                              weight=(targets != -1).float(), reduction="none")
    return {"tloss": loss.sum() / logits.shape[0]}


class MyCrossEntropyLoss(nn.Module):

  def forward(self, inputs):
    return {"tloss": F.cross_entropy(inputs["head_output"], inputs["label"])}


class ParsingLoss(nn.Module):
  """Per-pixel cross-entropy on the 512 x 512 upsampled logits, mean over pixels and batch."""

  def forward(self, inputs):
    logits = inputs["head_output"]  # [B, H, W, C]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["label"].view(-1),
                           reduction="none")
    return {"tloss": loss.mean()}


def points2heatmap(points, size, radius):
  """The target FaRL's CUDA p2i op draws ('gaussian_awing', max over points; SPEC 2.6): at pixel
  (x, y), exp(-16 r^2 / (2 R^2)) within r <= R of the point at p * size - 0.5, else 0."""
  centres = points * size - 0.5  # [B, K, 2]
  ij = torch.arange(size, dtype=points.dtype)
  dx = ij[None, None, None, :] - centres[..., 0, None, None]
  dy = ij[None, None, :, None] - centres[..., 1, None, None]
  r2 = dx * dx + dy * dy
  return torch.where(r2 <= radius * radius, torch.exp(-16.0 * r2 / (2 * radius * radius)),
                     torch.zeros_like(r2))


class AlignLoss(nn.Module):
  """Mean Euclidean distance of normalised points + BCE against the Gaussian heatmap target."""

  def __init__(self, input_size=512, heatmap_size=128, heatmap_radius=5.0):
    super().__init__()
    self.input_size, self.heatmap_size, self.heatmap_radius = (input_size, heatmap_size,
                                                               heatmap_radius)

  def forward(self, inputs):
    out, label = inputs["head_output"], inputs["label"]
    gt = (label + 0.5) / torch.tensor([[[self.input_size, self.input_size]]]).to(label)
    coord = (gt - out["landmark"]).norm(dim=-1).mean()
    size = self.heatmap_size
    pred = F.interpolate(out["heatmap"], (size, size), mode="bilinear", align_corners=False)
    with torch.no_grad():  # a label; the official op has no gradient either
      target = points2heatmap(gt, size, self.heatmap_radius)
    bce = F.binary_cross_entropy_with_logits(pred, target, reduction="none").mean()
    return {"tloss": coord + bce}


LOSSES = {"recog": MarginCosineProductLoss, "age": AgeLoss_DLDLV2, "biattr": CEL_Sigmoid,
          "affect": MyCrossEntropyLoss, "parsing": ParsingLoss, "align": AlignLoss}


class LossesHolder(nn.Module):
  """total = sum_t alpha_t L_t / sum_t alpha_t. Every Base task has its loss module (so the state
  dict always holds the CosFace classifier); `weights` covers the tasks of the batch."""

  def __init__(self, weights):
    super().__init__()
    self.losses = nn.ModuleDict({t: LOSSES[task_type(t)]() for t in TASK_NAMES})
    self.weights = dict(weights)
    self.weight_sum = float(sum(self.weights.values()))

  def forward(self, inputs):
    outputs, total = {}, 0.0
    for task in inputs:
      outputs[task] = self.losses[task](inputs[task])
      total = total + outputs[task]["tloss"] * self.weights[task]
    return total / self.weight_sum, outputs


def loss_weights(batch_sizes):
  """core/config.py: alpha_t = n_t / (sum of n over the type's tasks) * task_weight[type]."""
  totals = {}
  for t, n in batch_sizes.items():
    totals[task_type(t)] = totals.get(task_type(t), 0.0) + float(n)
  return {t: float(n) / totals[task_type(t)] * TASK_WEIGHT[task_type(t)]
          for t, n in batch_sizes.items()}


# --------------------------------------------------------------------------------------------------
# AIOEntry (core/model/model_entry.py).

class AIOEntry(nn.Module):
  """Train mode: one encoder pass per size group on the concatenated images of its tasks, then
  every task's head and loss. Evaluate mode: one task, its own encoder pass, no loss."""

  def __init__(self, batch_sizes):
    super().__init__()
    self.backbone_module = FaRLVisualFeatures(DROP_PATH_RATE)
    self.heads_module = DecoderNewHolder()
    self.losses_module = LossesHolder(loss_weights(batch_sizes))
    self.task_cfgs = [t for t in TASK_NAMES if t in batch_sizes]  # the batch's tasks, in order
    self.mode = "train"
    self.evaluation_task = None
    self.group_infos = []
    for group in SIZE_GROUPS:
      info = {"task_names": [], "task_ids": [], "batch_range": [0]}
      for kind in group["task_types"]:
        for i, name in enumerate(self.task_cfgs):
          if kind in name:
            info["task_names"].append(name)
            info["task_ids"].append(i)
            info["batch_range"].append(info["batch_range"][-1] + batch_sizes[name])
      if info["task_ids"]:
        self.group_infos.append(info)

  def set_mode_to_train(self):
    self.mode = "train"

  def set_mode_to_evaluate(self):
    self.mode = "evaluate"

  def set_evaluation_task(self, name):
    self.evaluation_task = name

  def forward_backbone(self, data):
    outputs = {}
    for info in self.group_infos:
      feats = self.backbone_module(torch.cat([data[i]["image"] for i in info["task_ids"]], 0))
      r = info["batch_range"]
      for k, name in enumerate(info["task_names"]):
        outputs[name] = {"backbone_output": [f[r[k]:r[k + 1]] for f in feats]}
    return outputs

  def forward(self, data):
    if self.mode == "train":
      outputs = self.forward_backbone(data)
      for i, name in enumerate(self.task_cfgs):
        outputs[name].update(label=data[i]["label"], task_name=name, task_id=i)
      return self.losses_module(self.heads_module(outputs))
    name = self.evaluation_task
    outputs = {name: {"task_name": name, "backbone_output": self.backbone_module(data["image"])}}
    return self.heads_module(outputs)[name]


def grouped_inference(model, data):
  """The inference the official timing used: grouped encoder passes, then all heads."""
  outputs = model.forward_backbone(data)
  for name in outputs:
    outputs[name]["task_name"] = name
  return model.heads_module(outputs)


# --------------------------------------------------------------------------------------------------
# Weights and the parity check against the official outputs.

def load_recipe_weights(model):
  """The fixtures' recipe state dict (seed 1), loaded strictly, after checking the key order."""
  sys.path.insert(0, FIXTURES)
  try:
    import official_weights  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.remove(FIXTURES)
  with open(os.path.join(FIXTURES, "official_base_keys.json")) as f:
    spec = json.load(f)
  state = official_weights.make_state_dict(spec["keys"], seed=1, aliases=spec["aliases"])
  state = {k: torch.from_numpy(v) for k, v in state.items()}
  # The CosFace classifier is training-only and not in the recipe: keep the model's own init.
  for key, _, _ in spec["training_only"]:
    state[key] = model.state_dict()[key]
  official_order = [k for k, _, _ in spec["keys"]] + [k for k, _, _ in spec["training_only"]]
  if list(model.state_dict()) != official_order:
    raise SystemExit("the model's state-dict keys differ from the official order")
  model.load_state_dict(state, strict=True)
  return len(state)


def relative_error(ours, ref):
  ours = np.asarray(ours.detach() if torch.is_tensor(ours) else ours, np.float64)
  ref = np.asarray(ref, np.float64)
  if ours.shape != ref.shape:
    raise SystemExit(f"shape {ours.shape} vs official {ref.shape}")
  return float(np.abs(ours - ref).max()) / max(1.0, float(np.abs(ref).max()))


def parity(model, tol=1e-4) -> bool:
  """Every official array the eval path reproduces, run as the fixtures were: evaluate mode, one
  task per call, on the shipped inputs. Prints max |ours - ref| / max(1, max |ref|) per array."""
  z = np.load(os.path.join(FIXTURES, "official_base_outputs.npz"))
  x112, x512 = torch.from_numpy(z["input_112"]), torch.from_numpy(z["input_512"])
  ours = {}
  captured = {}
  hook = model.heads_module.out_modules["parsing_celebam"].register_forward_pre_hook(
      lambda _, args: captured.__setitem__("logits", args[0]))
  model.eval()
  model.set_mode_to_evaluate()
  with torch.no_grad():
    ours["pos_embed_resized_7x7"] = resize_pe(model.backbone_module.visual.positional_embedding, 7)
    for name in TASK_NAMES:
      model.set_evaluation_task(name)
      out = model({"image": x112 if task_type(name) in SIZE_GROUPS[0]["task_types"] else x512})
      if name == "recog_ms1mv3":
        ours["recog_ms1mv3_embedding"] = out["head_output"]
        for layer in (2, 4, 6, 8, 10, 12):
          ours[f"enc112_layer{layer:02d}"] = out["backbone_output"][layer - 1]
        continue
      ours[f"{name}_decoder_output"] = out["decoder_output"]
      if name == "parsing_celebam":
        ours["parsing_celebam_logits_128"] = captured["logits"]
        ours["enc512_layer12"] = out["backbone_output"][11]
      elif name == "align_300w":
        ours["align_300w_heatmap_logits"] = out["head_output"]["heatmap"]
        ours["align_300w_landmarks"] = out["head_output"]["landmark"]
      else:
        ours[f"{name}_logits"] = out["head_output"]
    # The official AlignOutput decoding on the sharpened official logits (fixtures README).
    h = torch.from_numpy(z["align_300w_heatmap_logits"])
    ours["align_300w_landmarks_probe"] = model.heads_module.out_modules["align_300w"](
        20.0 * (h - h.amax(dim=(2, 3), keepdim=True)))["landmark"]
  hook.remove()
  model.set_mode_to_train()
  model.train()

  left_out = set(z.files) - set(ours) - {"input_112", "input_512", "meta_json"}
  if left_out:
    raise SystemExit(f"no output to compare with {sorted(left_out)}")
  print(f"parity with the official outputs (max |ours - ref| / max(1, max |ref|); limit {tol:g}):")
  ok = True
  for key in sorted(ours):
    err = relative_error(ours[key], z[key])
    ok &= err <= tol
    print(f"  {key:32s} {err:.2e}{'' if err <= tol else '  FAIL'}")
  return ok


# --------------------------------------------------------------------------------------------------
# Batch, optimiser and timing.

def matmul_rate(n=2048, repeats=7) -> float:
  """FLOP/s of an n^3 float32 torch matmul."""
  a = torch.from_numpy(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
  torch.mm(a, a)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    torch.mm(a, a)
    times.append(time.perf_counter() - t)
  return 2 * n ** 3 / statistics.median(times)


NUM_OUTPUTS = {"recog_ms1mv3": NUM_IDENTITIES, "age_morph2": 101, "biattr_celeba": 40,
               "affect_affectnet": 7, "affect_rafdb": 7, "parsing_celebam": 19, "align_300w": 68}


def random_batch(names, sizes, rng):
  """benchmarks/train_step.py's random_batch, draw for draw (same seed -> same images and labels),
  in the official data layout: NCHW normalised images and the official label formats."""
  data = []
  for t in names:
    group = SIZE_GROUPS[0] if task_type(t) in SIZE_GROUPS[0]["task_types"] else SIZE_GROUPS[1]
    n, s, kind = sizes[t], group["size"], task_type(t)
    image = rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)
    # ToTensor then Normalize, as the official transforms do.
    mean, std = np.float32(group["mean"]), np.float32(group["std"])
    image = (image.astype(np.float32) / 255.0 - mean) / std
    item = {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))}
    if kind == "recog":
      item["label"] = torch.from_numpy(rng.integers(0, NUM_OUTPUTS[t], n).astype(np.int64))
    elif kind == "age":
      age = rng.uniform(16, 77, n).astype(np.float32)
      # The dataset's target: N(age, 2) sampled at 0..100, L1-normalised.
      pdf = np.exp(-(np.arange(101)[None] - age[:, None].astype(np.float64)) ** 2 / 8.0)
      item["label"] = {"avg_label": torch.from_numpy(age),
                       "distribution": torch.from_numpy(
                           (pdf / pdf.sum(1, keepdims=True)).astype(np.float32))}
    elif kind == "biattr":
      item["label"] = torch.from_numpy(rng.integers(0, 2, (n, NUM_OUTPUTS[t])).astype(np.int64))
    elif kind == "affect":
      item["label"] = torch.from_numpy(rng.integers(0, 7, n).astype(np.int64))
    elif kind == "parsing":
      item["label"] = torch.from_numpy(rng.integers(0, NUM_OUTPUTS[t], (n, s, s)).astype(np.int64))
    else:
      item["label"] = torch.from_numpy(
          rng.uniform(0.3 * s, 0.7 * s, (n, NUM_OUTPUTS[t], 2)).astype(np.float32))
    data.append(item)
  return data


def make_optimizer(model):
  """Solver.create_optimizer: one group per parameter tensor, lr = base x multiplier by module
  name, weight decay 0.05 on every tensor (biases, norms, embeddings included)."""
  groups, seen = [], set()
  for module_name, module in model.named_modules():
    for _, p in module.named_parameters(recurse=False):
      if id(p) in seen:  # Norm2d's `ln` shares its Parameters
        continue
      seen.add(id(p))
      lr = BASE_LR
      if "backbone" in module_name:
        lr *= LR_MULTIPLIER["backbone"]
      if "heads" in module_name:
        if "interpreters" in module_name:
          lr *= LR_MULTIPLIER["interpreters"]
        elif "decoder" in module_name:
          lr *= LR_MULTIPLIER["decoder"]
        else:
          lr *= LR_MULTIPLIER["heads"]
      if "losses_module" in module_name:
        lr *= LR_MULTIPLIER["losses"]
      groups.append({"params": [p], "lr": lr, "initial_lr": lr, "weight_decay": WEIGHT_DECAY})
  return torch.optim.AdamW(groups, lr=BASE_LR, weight_decay=WEIGHT_DECAY)


def set_lr(optimizer, step):
  """CosineLRScheduler.step: linear warm-up 1e-6 -> 5e-5, then cosine to 0, times each group's
  multiplier (its initial lr / 1e-6)."""
  if step < WARMUP_STEPS:
    target = step / WARMUP_STEPS * (WARMUP_LR - BASE_LR) + BASE_LR
  else:
    ratio = (step - WARMUP_STEPS) / (MAX_ITER - WARMUP_STEPS)
    target = WARMUP_LR * (1 + math.cos(math.pi * ratio)) / 2
  for group in optimizer.param_groups:
    group["lr"] = target / BASE_LR * group["initial_lr"]


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--n112", type=int, default=8, help="images per 112-px task")
  p.add_argument("--n512", type=int, default=1, help="images per 512-px task")
  p.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
  p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
  p.add_argument("--skip-parity", action="store_true", help="skip the check against the fixtures")
  args = p.parse_args()

  torch.set_num_threads(args.threads)
  torch.manual_seed(0)  # drop-path masks
  per_group = {112: args.n112, 512: args.n512}
  sizes = {t: per_group[112 if task_type(t) in SIZE_GROUPS[0]["task_types"] else 512]
           for t in TASK_NAMES}
  names = tuple(t for t in TASK_NAMES if sizes[t] > 0)
  sizes = {t: sizes[t] for t in names}
  if not names:
    raise SystemExit("no images: --n112 and --n512 are both 0")
  if sizes.get("recog_ms1mv3") == 1:
    raise SystemExit("--n112 must be 0 or >= 2: train-mode BatchNorm1d needs 2 samples")
  print(f"devices: CPU, torch {torch.__version__}, {torch.get_num_threads()} threads")
  print(f"tasks: {', '.join(names)}; per task {args.n112} @ 112 px, {args.n512} @ 512 px; "
        f"float32")

  peak = matmul_rate()
  print(f"matmul 2048^3 (float32): {peak / 1e9:.0f} GFLOP/s")

  model = AIOEntry(sizes)
  n_keys = load_recipe_weights(model)
  print(f"official state dict: {n_keys} keys, official order, loaded with strict=True")
  if not args.skip_parity and not parity(model):
    raise SystemExit("parity check failed")

  data = random_batch(names, sizes, np.random.default_rng(0))
  optimizer = make_optimizer(model)
  model.train()
  model.set_mode_to_train()

  def update(step):
    loss, _ = model(data)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5)
    optimizer.step()
    optimizer.zero_grad()
    set_lr(optimizer, step)
    return loss

  times = []
  for i in range(args.steps + 2):
    t = time.perf_counter()
    loss = update(i)
    times.append(time.perf_counter() - t)
  first_s, times = times[0], times[2:]
  images = sum(sizes.values())
  step_s = statistics.median(times)
  print(f"train update: first step {first_s:.1f} s; median {step_s:.2f} s over {len(times)} steps "
        f"(min {min(times):.2f}); {images / step_s:.2f} img/s; loss {float(loss.detach()):.3f}")

  model.eval()
  with torch.no_grad():
    t = time.perf_counter()
    grouped_inference(model, data)
    first_i = time.perf_counter() - t
    times = []
    for _ in range(args.steps):
      t = time.perf_counter()
      grouped_inference(model, data)
      times.append(time.perf_counter() - t)
  print(f"inference: first call {first_i:.1f} s; median {statistics.median(times):.2f} s; "
        f"{images / statistics.median(times):.2f} img/s")


if __name__ == "__main__":
  main()
