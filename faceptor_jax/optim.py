"""The official optimisation recipe (SPEC 2.4) as optax pieces.

AdamW (default betas, eps 1e-8, weight decay on every parameter), global-norm clipping at 5,
learning-rate multipliers by parameter path (x1 encoder, x10 decoder / heads / CosFace
classifier), linear warm-up from `base_lr` to `peak_lr` then cosine to 0 at `total_steps`.
The learning rate is a pure function of the iteration step (so a skipped non-finite step or a
resumed run sees the same schedule). Parameters outside `trainable` get no gradient and no state.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import ml_collections
import optax


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      "weight_decay": 0.05, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "clip_norm": 5.0,
      # (regex over the '/'-joined parameter path, multiplier); the first match wins.
      "multipliers": (("encoder/.*", 1.0), (".*", 10.0)),
      # Parameters that train (regexes); stage 2 narrows this to the new levels.
      "trainable": (".*",),
      # Never trained: CLIP's image-embedding head, which Faceptor does not use (no gradient).
      "frozen": ("encoder/ln_post/.*", "encoder/proj"),
  })


def schedule_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"base_lr": 1e-6, "peak_lr": 5e-5, "warmup_steps": 2000,
                                    "total_steps": 50000})


def learning_rate(step, cfg):
  """Base LR at iteration `step` (before the multipliers): the official CosineLRScheduler."""
  step = jnp.asarray(step, jnp.float32)
  warm = cfg.warmup_steps
  warmup = cfg.base_lr + (step / max(warm, 1)) * (cfg.peak_lr - cfg.base_lr)
  progress = (step - warm) / max(cfg.total_steps - warm, 1)
  cosine = cfg.peak_lr * 0.5 * (1.0 + jnp.cos(math.pi * jnp.clip(progress, 0.0, 1.0)))
  return jnp.where(step < warm, warmup, cosine)


def is_trainable(path: str, cfg) -> bool:
  return (any(re.fullmatch(p, path) for p in cfg.trainable)
          and not any(re.fullmatch(p, path) for p in cfg.frozen))


def multiplier(path: str, cfg) -> float:
  for pattern, value in cfg.multipliers:
    if re.fullmatch(pattern, path):
      return float(value)
  raise ValueError(f"no learning-rate multiplier matches {path}")


def adamw(cfg) -> optax.GradientTransformation:
  """Clip, Adam moments and decoupled weight decay; the caller scales by -lr * multiplier."""
  return optax.chain(optax.clip_by_global_norm(cfg.clip_norm),
                     optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps),
                     optax.add_decayed_weights(cfg.weight_decay))


def scale_updates(updates, multipliers, lr):
  """-lr * m * update per leaf (multipliers: the same tree of Python floats)."""
  return jax.tree.map(lambda u, m: (-lr * m) * u, updates, multipliers)
