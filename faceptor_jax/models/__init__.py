"""The networks. `create(cfg, task_names, rngs=...)` builds the variant the config names."""

from __future__ import annotations

from flax import nnx


def create(cfg, task_names, *, rngs: nnx.Rngs, with_classifier: bool = True) -> nnx.Module:
  """Faceptor or Naive Faceptor (`cfg.variant`) for `task_names`, with `cfg`'s sizes."""
  if cfg.variant == "faceptor":
    from faceptor_jax.models.faceptor import Faceptor
    return Faceptor(cfg, task_names, rngs=rngs, with_classifier=with_classifier)
  if cfg.variant == "naive":
    from faceptor_jax.models.naive import NaiveFaceptor
    return NaiveFaceptor(cfg, task_names, rngs=rngs, with_classifier=with_classifier)
  raise ValueError(f"unknown model variant {cfg.variant!r}; use 'faceptor' or 'naive'")


def count_parameters(model: nnx.Module, exclude=("classifiers",)) -> int:
  """Parameters as the official code counts them ("All Inference Params"): every nnx.Param,
  batch-norm statistics and the training-only CosFace classifier excluded."""
  total = 0
  for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    if not any(str(p) in exclude for p in path):
      total += v.size
  return total
