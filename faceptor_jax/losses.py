"""Training losses: one function per task type, the official loss-weight rule and the step loss.

The defaults follow the official code (SPEC 2.6); the supplement's variants are config flags
(`default_config()`). Every loss is jit-able and computes in float32 whatever the model's dtype.
A label outside its range cannot raise inside jit: it turns the task's loss into NaN, which the
trainer's non-finite check stops and reports, instead of being silently dropped.

Signature of every per-type loss: `(outputs_of_task, batch_of_task, cfg) -> scalar float32`, with
`cfg` the whole ConfigDict of `default_config()`. Inputs, by type (batch arrays numpy or jax):
  recog:   outputs `cos_logits` [B, N] (cosines, may be sharded over N); batch `label` int [B]
  age:     outputs `logits` [B, 101];                 batch `age` float [B]
  biattr:  outputs `logits` [B, A];                   batch `attributes` int [B, A] in {0, 1, -1}
  affect:  outputs `logits` [B, 7];                   batch `label` int [B]
  parsing: outputs `logits` [B, h, w, C] (NHWC);      batch `label` int [B, S, S]
  align:   outputs `heatmap_logits` [B, K, h, w] and `landmarks` [B, K, 2] (x, y) in [0, 1];
           batch `landmarks` float [B, K, 2] in input-crop pixels, `image` [B, S, S, 3] (for S)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections

from faceptor_jax import tasks
from faceptor_jax.models import resize


def default_config() -> ml_collections.ConfigDict:
  """Every loss knob; the defaults are the official code's."""
  return ml_collections.ConfigDict({
      "align": {
          # 'gaussian' (code: exp(-16 r^2 / (2 R^2)) for r <= R) | 'disc' (supplement: 1 for r <= R)
          "target": "gaussian",
          "coord": "l2",          # 'l2' (code: Euclidean distance) | 'l1' (supplement: |dx| + |dy|)
          "radius": 5.0,          # R, in heatmap pixels
          "coord_weight": 1.0,
          "heatmap_weight": 1.0,
          "input_size": 0,        # S; 0 = take it from the batch's image shape
      },
      "age": {
          # 'sigmoid' (code: sigmoid, then L1-normalise) | 'softmax' (supplement)
          "distribution": "sigmoid",
          "sigma": 2.0,               # width of the Gaussian label distribution, in years
          "kl_weight": 1.0,
          "l1_weight": 1.0,           # L1 between the expected age and the label
      },
      "cosface": {"scale": 64.0, "margin": 0.4},
  })


def _f32(x):
  return jnp.asarray(x).astype(jnp.float32)


def _label_nll(logits, labels):
  """-log softmax(logits)[label] over the last axis; NaN where a label is outside [0, C).

  The label is picked with an elementwise one-hot mask rather than a gather, so logits sharded over
  the class axis never need to be collected on one device.
  """
  labels = jnp.asarray(labels).astype(jnp.int32)
  num_classes = logits.shape[-1]
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  onehot = labels[..., None] == jnp.arange(num_classes)
  picked = jnp.sum(jnp.where(onehot, log_probs, 0.0), axis=-1)
  valid = (labels >= 0) & (labels < num_classes)
  return jnp.where(valid, -picked, jnp.nan)


def _sigmoid_bce(logits, targets):
  """Binary cross-entropy with logits, elementwise, in the numerically stable form."""
  return jnp.maximum(logits, 0.0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


# --------------------------------------------------------------------------------------------------
# Recognition: CosFace.

def recog_loss(outputs, batch, cfg):
  """CosFace: CE over s * (cos - m * onehot), batch mean (official MarginCosineProductLoss)."""
  cos = _f32(outputs["cos_logits"])
  labels = jnp.asarray(batch["label"]).astype(jnp.int32)
  onehot = labels[:, None] == jnp.arange(cos.shape[-1])  # elementwise, shards like `cos`
  logits = cfg.cosface.scale * (cos - cfg.cosface.margin * onehot)
  return jnp.mean(_label_nll(logits, labels))


# --------------------------------------------------------------------------------------------------
# Age: label distribution (KL) plus L1 on the expected age (DLDL-v2).

def age_log_distribution(logits, distribution: str):
  """log of the predicted distribution over the age bins, float32 [B, bins]."""
  logits = _f32(logits)
  if distribution == "sigmoid":
    # Official: sigmoid, then divide by the sum (F.normalize p=1; sigmoids are positive).
    log_sig = jax.nn.log_sigmoid(logits)
    return log_sig - jnp.log(jnp.maximum(jnp.sum(jnp.exp(log_sig), -1, keepdims=True), 1e-12))
  if distribution == "softmax":
    return jax.nn.log_softmax(logits, axis=-1)
  raise ValueError(f"age.distribution must be 'sigmoid' or 'softmax', got {distribution!r}")


def gaussian_age_distribution(age, num_bins: int, sigma: float):
  """Target distribution: N(age, sigma) pdf sampled at 0..num_bins-1, L1-normalised. [B, bins]."""
  bins = jnp.arange(num_bins, dtype=jnp.float32)
  age = _f32(age)[:, None]
  pdf = jnp.exp(-jnp.square(bins - age) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
  return pdf / jnp.maximum(jnp.sum(pdf, -1, keepdims=True), 1e-12)


def age_loss(outputs, batch, cfg):
  """KL(target || prediction) summed over bins, batch mean, plus mean |expected age - age|.

  Both distributions use KL; the supplement's cross-entropy differs from it by the target's
  entropy, a constant, so the gradients are the same.
  """
  c = cfg.age
  log_pred = age_log_distribution(outputs["logits"], c.distribution)
  num_bins = log_pred.shape[-1]
  age = _f32(batch["age"])
  target = gaussian_age_distribution(age, num_bins, c.sigma)
  # xlogy: bins where the target underflows to 0 contribute 0, as torch's KLDivLoss does.
  kl = jnp.sum(jax.scipy.special.xlogy(target, target) - target * log_pred) / log_pred.shape[0]
  expected = jnp.exp(log_pred) @ jnp.arange(num_bins, dtype=jnp.float32)
  l1 = jnp.mean(jnp.abs(expected - age))
  return c.kl_weight * kl + c.l1_weight * l1


# --------------------------------------------------------------------------------------------------
# Binary attributes and expression.

def biattr_loss(outputs, batch, cfg):
  """BCE with logits, labels -1 masked, summed over attributes and divided by the batch size."""
  del cfg
  logits = _f32(outputs["logits"])
  labels = jnp.asarray(batch["attributes"]).astype(jnp.int32)
  known = labels != -1
  valid = jnp.all((labels == 0) | (labels == 1) | ~known)
  bce = jnp.where(known, _sigmoid_bce(logits, (labels == 1).astype(jnp.float32)), 0.0)
  loss = jnp.sum(bce) / logits.shape[0]
  return jnp.where(valid, loss, jnp.nan)


def affect_loss(outputs, batch, cfg):
  """Cross-entropy over the expression classes, batch mean."""
  del cfg
  return jnp.mean(_label_nll(_f32(outputs["logits"]), batch["label"]))


# --------------------------------------------------------------------------------------------------
# Parsing.

def upsample_logits(logits, size):
  """Bilinear resize of NHWC logits to `size` = (H, W): torch's interpolate(mode='bilinear',
  align_corners=False), as the official ParsingOutput does."""
  return resize.resize(logits, tuple(size), "bilinear")


def parsing_loss(outputs, batch, cfg):
  """Per-pixel CE of the logits upsampled to the label size, mean over pixels and batch."""
  del cfg
  labels = jnp.asarray(batch["label"])
  logits = upsample_logits(_f32(outputs["logits"]), labels.shape[1:3])
  return jnp.mean(_label_nll(logits, labels))


# --------------------------------------------------------------------------------------------------
# Landmarks.

def landmark_heatmaps(points, size, radius: float, kind: str = "gaussian"):
  """Target heatmaps [B, K, h, w] for normalised points [B, K, 2] (x, y in [0, 1]).

  Each point sits at `p * (w, h) - 0.5` on the grid of integer pixel centres (FaRL's
  denormalize_points). Pixels within `radius` get exp(-16 r^2 / (2 R^2)) ('gaussian', FaRL's
  `gaussian_awing` kernel) or 1 ('disc'); all others 0.
  """
  height, width = size
  cx = points[..., 0] * width - 0.5
  cy = points[..., 1] * height - 0.5
  dx2 = jnp.square(jnp.arange(width, dtype=jnp.float32) - cx[..., None])   # [B, K, w]
  dy2 = jnp.square(jnp.arange(height, dtype=jnp.float32) - cy[..., None])  # [B, K, h]
  r = jnp.sqrt(dy2[..., :, None] + dx2[..., None, :])
  inside = r <= radius
  if kind == "gaussian":
    return jnp.where(inside, jnp.exp(-r * r * 16.0 / 2.0 / (radius * radius)), 0.0)
  if kind == "disc":
    return inside.astype(jnp.float32)
  raise ValueError(f"align.target must be 'gaussian' or 'disc', got {kind!r}")


def _safe_norm(x):
  """Euclidean norm over the last axis with a zero (not NaN) gradient at 0, as torch's norm."""
  sq = jnp.sum(jnp.square(x), axis=-1)
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _align_input_size(batch, cfg) -> int:
  if "image" in batch:
    return int(batch["image"].shape[1])
  if cfg.align.input_size:
    return int(cfg.align.input_size)
  raise ValueError("align loss needs the input size S: give the batch its `image` or set "
                   "cfg.align.input_size")


def align_loss(outputs, batch, cfg):
  """Coordinate term on normalised points plus heatmap BCE (mean over B*K*h*w).

  Ground truth is normalised by (p + 0.5) / S. The coordinate term is the mean over B*K of the
  per-point distance ('l2' Euclidean, or 'l1' |dx| + |dy|); the supplement's equation sums over
  points instead, which only rescales the term by K, so both variants keep the code's mean. The
  target grid is the logits' own (h, w); the 'disc' radius is in heatmap pixels too.
  """
  c = cfg.align
  heatmap_logits = _f32(outputs["heatmap_logits"])
  pred = _f32(outputs["landmarks"])
  size = _align_input_size(batch, cfg)
  gt = (_f32(batch["landmarks"]) + 0.5) / size  # FaRL's normalize_points
  if c.coord == "l2":
    dist = _safe_norm(pred - gt)
  elif c.coord == "l1":
    dist = jnp.sum(jnp.abs(pred - gt), axis=-1)
  else:
    raise ValueError(f"align.coord must be 'l2' or 'l1', got {c.coord!r}")
  target = landmark_heatmaps(gt, heatmap_logits.shape[-2:], c.radius, c.target)
  bce = jnp.mean(_sigmoid_bce(heatmap_logits, target))
  return c.coord_weight * jnp.mean(dist) + c.heatmap_weight * bce


# --------------------------------------------------------------------------------------------------
# The lookup and the multi-task combination.

LOSSES = {
    "recog": recog_loss,
    "age": age_loss,
    "biattr": biattr_loss,
    "affect": affect_loss,
    "parsing": parsing_loss,
    "align": align_loss,
}


def task_loss(task_name: str, outputs_of_task, batch_of_task, cfg):
  """The loss of one task, chosen by its type."""
  return LOSSES[tasks.get(task_name).type.name](outputs_of_task, batch_of_task, cfg)


def loss_weights(batch_sizes, task_weight) -> dict[str, float]:
  """Official rule (SPEC 2.2): alpha_t = task_weight[type] * n_t / sum of n over that type's tasks.

  `batch_sizes` {task: n_t} (per-device or global: only the ratios within a type matter),
  `task_weight` {type: w}. Returns {task: alpha_t} as Python floats.
  """
  totals: dict[str, float] = {}
  for name, n in batch_sizes.items():
    kind = tasks.get(name).type.name
    totals[kind] = totals.get(kind, 0.0) + float(n)
  missing = sorted(set(totals) - set(task_weight))
  if missing:
    raise KeyError(f"task_weight has no entry for task type(s) {missing}; "
                   f"it has {sorted(task_weight)}")
  weights = {}
  for name, n in batch_sizes.items():
    kind = tasks.get(name).type.name
    if totals[kind] <= 0:
      raise ValueError(f"the batch sizes of the {kind!r} tasks sum to {totals[kind]}")
    # Same order of operations as the official config code: n / sum * w.
    weights[name] = float(n) / totals[kind] * float(task_weight[kind])
  return weights


def step_loss(outputs, batch, weights, cfg):
  """(total, {task: loss}) for the tasks in `batch`.

  total = sum_t alpha_t L_t / sum of ALL alpha in `weights`: a weighted task absent from this step
  still counts in the denominator (official LossesHolder, SPEC 3.1.1).
  """
  unweighted = [name for name in batch if name not in weights]
  if unweighted:
    raise KeyError(f"tasks {unweighted} are in the batch but have no loss weight")
  no_output = [name for name in batch if name not in outputs]
  if no_output:
    raise KeyError(f"tasks {no_output} are in the batch but not in the model outputs")
  per_task = {name: task_loss(name, outputs[name], batch[name], cfg) for name in batch}
  total = sum(weights[name] * loss for name, loss in per_task.items())
  return jnp.asarray(total, jnp.float32) / sum(weights.values()), per_task
