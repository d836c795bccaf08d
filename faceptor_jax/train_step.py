"""One training update as a pure function over the split model state (the product's pjit).

The state is a dict of pytrees: `params` (the trainable nnx.Params), `frozen` (the other Params:
stage 2's frozen network, CLIP's unused head), `stats` (batch-norm statistics), `opt` (optax state
of the trainable params only) and `step`. `make_update` returns `update(state, batch) -> (state,
metrics)`: normalise the uint8 images on the device, one encoder pass per resolution group, every
task's head and loss, the weighted step loss, gradients of the trainable params, clip, AdamW with
the LR multipliers and the schedule. A non-finite loss or gradient norm leaves params, optimizer and
statistics untouched (the step still counts, and `metrics['finite']` says it was skipped).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from faceptor_jax import losses, optim, tasks, weights


def split(model: nnx.Module, optim_cfg):
  """(graphdef, state without `opt`/`step`) with params split into trainable and frozen."""
  trainable = lambda path, v: (isinstance(v, nnx.Param)
                               and optim.is_trainable(weights.path_name(path), optim_cfg))
  graphdef, params, frozen, stats = nnx.split(model, trainable, nnx.Param, nnx.BatchStat)
  return graphdef, {"params": params, "frozen": frozen, "stats": stats}


def multipliers_of(params, optim_cfg):
  """The LR multiplier of every trainable parameter (a tree of Python floats)."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: optim.multiplier(weights.path_name(path), optim_cfg), params)


def init_state(model: nnx.Module, optim_cfg, tx=None):
  """(graphdef, full train state) of a freshly built model."""
  graphdef, state = split(model, optim_cfg)
  tx = tx or optim.adamw(optim_cfg)
  state["opt"] = tx.init(state["params"])
  state["step"] = jnp.zeros((), jnp.int32)
  return graphdef, state


def make_update(graphdef, state, config, loss_weights: dict):
  """The update function for `config` (optim, schedule, losses, seed)."""
  tx = optim.adamw(config.optim)
  mults = multipliers_of(state["params"], config.optim)
  loss_cfg, sched = config.losses, config.schedule
  base_key = jax.random.key(config.seed)

  def update(state, batch):
    key = jax.random.fold_in(base_key, state["step"])

    def loss_fn(params):
      model = nnx.merge(graphdef, params, state["frozen"], state["stats"], copy=True)
      images = {t: tasks.normalize(b["image"], tasks.get(t).group) for t, b in batch.items()}
      outputs = model(images, train=True, key=key)
      total, per_task = losses.step_loss(outputs, batch, loss_weights, loss_cfg)
      return total, (per_task, nnx.state(model, nnx.BatchStat))

    (loss, (per_task, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    grad_norm = optax.tree.norm(grads)
    updates, opt = tx.update(grads, state["opt"], state["params"])
    lr = optim.learning_rate(state["step"], sched)
    params = optax.apply_updates(state["params"], optim.scale_updates(updates, mults, lr))
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = {"params": keep(params, state["params"]), "frozen": state["frozen"],
                 "stats": keep(stats, state["stats"]), "opt": keep(opt, state["opt"]),
                 "step": state["step"] + 1}
    metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr, "finite": finite,
               **{f"loss/{t}": l for t, l in per_task.items()}}
    return new_state, metrics

  return update


def count_flops(model_cfg, task_names, config, loss_weights, batch) -> float:
  """XLA's FLOP count of one update, from the lowered HLO with the encoder scan unrolled (XLA's
  cost analysis counts a loop body once). Abstract: allocates and compiles nothing."""
  model_cfg = model_cfg.copy_and_resolve_references()
  with model_cfg.unlocked():
    model_cfg.encoder.scan_unroll = True
  from faceptor_jax import models
  abstract_model = nnx.eval_shape(lambda: models.create(model_cfg, task_names, rngs=nnx.Rngs(0)))
  graphdef, state = split(abstract_model, config.optim)
  state["opt"] = jax.eval_shape(optim.adamw(config.optim).init, state["params"])
  state["step"] = jax.ShapeDtypeStruct((), jnp.int32)
  update = make_update(graphdef, state, config, loss_weights)
  abstract_batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), batch)
  cost = jax.jit(update).lower(state, abstract_batch).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan")))
