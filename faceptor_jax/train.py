"""The trainer: one readable loop, in sections (mesh, data, model, shard, step, ckpt, evals, loop).

`train(config, workdir)` trains the tasks of `config` the way the paper did (every step holds a
batch of every dataset; SPEC 2), on one CPU, one GPU or a pod, and resumes exactly after any
interruption: a restart finds the newest complete checkpoint in `workdir` and continues from it,
data order included. SIGTERM (a preemption) saves the current step before exiting. A non-finite
loss or gradient is never applied (train_step.py) nor checkpointed; `config.max_nonfinite` in a
row stop the run. Metrics go to the console, `<workdir>/metrics.jsonl` and TensorBoard
(`<workdir>/tensorboard`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time

import jax
import numpy as np
from flax import nnx

from data_pipelines import mixture
from faceptor_jax import checkpoint as checkpoint_lib
from faceptor_jax import evaluate, losses, models, sharding, train_step, weights

log = logging.getLogger(__name__)

# Peak dense bf16 FLOP/s per chip, for the MFU column (None: unknown, no MFU printed).
PEAK_FLOPS = {"TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12,
              "TPU v6 lite": 918e12, "NVIDIA A100-SXM4-80GB": 312e12,
              "NVIDIA A100-SXM4-40GB": 312e12, "NVIDIA H100 80GB HBM3": 989e12,
              "NVIDIA H200": 989e12}


# The resume test's fault injection: the process SIGKILLs itself after this step (like kill -9
# or a lost machine: no cleanup, no final checkpoint). Unset in normal use.
KILL_AFTER_STEP = int(os.environ.get("FACEPTOR_KILL_AFTER_STEP", "0")) or None


class NonFiniteError(RuntimeError):
  pass


def data_dir_of(config, workdir: str) -> str:
  return config.get("data_dir") or os.path.join(workdir, "data")


def build_model(config, mesh):
  """The model of `config` (classifier rows padded to the mesh), `init_from` weights loaded."""
  model_cfg = config.model.copy_and_resolve_references()
  model_cfg.classifier_multiple = mesh.size
  model = models.create(model_cfg, tuple(config.tasks), rngs=nnx.Rngs(config.seed))
  if config.get("init_from"):
    params, meta = weights.load(config.init_from)
    left = weights.assign(model, params, allow_missing=tuple(config.get("init_allow_missing", ())),
                          allow_unexpected=tuple(config.get("init_allow_unexpected", ())))
    log.info("initialised from %s (%s); left at init: %s", config.init_from,
             meta.get("variant"), left or "nothing")
  return model, model_cfg


def place(tree, shardings):
  """Host arrays (identical on every host) -> global arrays with `shardings`."""
  def one(x, s):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])
  # Both trees have the same structure (Variables hold arrays / shardings).
  return jax.tree.map(one, tree, shardings)


def global_batch(local, batch_sharding):
  """This host's share of every task's batch -> global arrays split over the mesh."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sharding, x), local)


class MetricWriter:
  """Console lines, a JSONL file and TensorBoard events (process 0 only)."""

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    self.jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    from tensorboardX import SummaryWriter
    self.tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, metrics: dict, prefix: str = ""):
    if not self.active:
      return
    flat = {prefix + k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float, np.floating, np.integer))}
    self.jsonl.write(json.dumps({"step": step, **flat}) + "\n")
    self.jsonl.flush()
    for k, v in flat.items():
      if math.isfinite(v):
        self.tb.add_scalar(k, v, step)
    self.tb.flush()

  def close(self):
    if self.active:
      self.jsonl.close()
      self.tb.close()


def train(config, workdir: str) -> dict:
  """Trains `config` in `workdir`; returns the last evaluation results (empty if none ran)."""
  os.makedirs(workdir, exist_ok=True)
  config_json = config.to_json_best_effort()
  total_steps = int(config.schedule.total_steps)

  # --- mesh -----------------------------------------------------------------------------------
  mesh = sharding.make_mesh(config.mesh)
  batch_sizes = {t: int(tc.batch_size) for t, tc in config.tasks.items()}
  sharding.check_batch_sizes(batch_sizes, mesh)
  batch_sharding = sharding.batch_sharding(mesh)
  log.info("mesh %s over %d devices (%s), %d host(s)", dict(mesh.shape), mesh.size,
           jax.devices()[0].device_kind, jax.process_count())

  # --- data -----------------------------------------------------------------------------------
  data_dir = data_dir_of(config, workdir)
  if config.get("synthetic", {}).get("enabled"):
    from data_pipelines import demo_data
    demo_data.ensure(config, data_dir)
  streams = mixture.streams_from_config(config, data_dir)
  data = mixture.dataset(streams, config.seed, total_steps, workers=config.input.workers,
                         prefetch=config.input.prefetch, process_index=jax.process_index(),
                         process_count=jax.process_count())
  data_iter = iter(data)

  # --- model ----------------------------------------------------------------------------------
  model, model_cfg = build_model(config, mesh)
  log.info("model %s: %s parameters (official count, classifier excluded)", model_cfg.variant,
           f"{models.count_parameters(model):,}")
  graphdef, state = train_step.init_state(model, config.optim)
  del model

  # --- shard ----------------------------------------------------------------------------------
  state_sharding = sharding.state_shardings(state, mesh, config.sharding)
  alpha = losses.loss_weights(batch_sizes, dict(config.task_weight))
  log.info("loss weights: %s", {t: round(a, 3) for t, a in alpha.items()})

  # --- step -----------------------------------------------------------------------------------
  update = jax.jit(train_step.make_update(graphdef, state, config, alpha),
                   in_shardings=(state_sharding, batch_sharding),
                   out_shardings=(state_sharding, sharding.replicated(mesh)),
                   donate_argnums=0)

  # --- ckpt -----------------------------------------------------------------------------------
  ckpt = checkpoint_lib.Checkpointer(workdir, every=config.checkpoint.every,
                                     keep=config.checkpoint.keep,
                                     async_save=config.checkpoint.async_save)
  start = 0
  if ckpt.latest_step() is not None:
    target = checkpoint_lib.abstract(state, state_sharding)
    state, start = ckpt.restore(target, data_iter)
    log.info("resumed from step %d", start)
  else:
    state = place(state, state_sharding)

  # --- evals ----------------------------------------------------------------------------------
  def run_evals(state, step, baselines=False):
    if not config.get("eval"):
      return {}
    model = nnx.merge(graphdef, state["params"], state["frozen"], state["stats"])
    predictor = evaluate.Predictor(model, batch_size=config.eval_batch_size, mesh=mesh)
    results = evaluate.evaluate(predictor, config, data_dir, baselines=baselines)
    for name, r in results.items():
      writer.write(step, r["metrics"], prefix=f"eval/{name}/")
      if r["baseline"]:
        writer.write(step, r["baseline"], prefix=f"baseline/{name}/")
    return results

  # --- loop -----------------------------------------------------------------------------------
  writer = MetricWriter(workdir)
  stop = {"signal": None}
  previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.update(signal=signum))
  images_per_step = sum(batch_sizes.values())
  flops, peak = None, PEAK_FLOPS.get(jax.devices()[0].device_kind)
  nonfinite, results, t_last, steps_timed, skipped_total = 0, {}, None, 0, 0
  pending = None  # (step, its `finite` flag), read once the next update is in flight

  def check_finite(step, finite):
    """Counts non-finite steps in a row (their updates were not applied) and stops the run."""
    nonlocal nonfinite
    if bool(finite):
      nonfinite = 0
      return
    nonfinite += 1
    log.warning("step %d: non-finite loss or gradient norm: update skipped", step)
    if nonfinite >= config.max_nonfinite:
      raise NonFiniteError(f"{nonfinite} non-finite steps in a row (up to step {step}); "
                           "stopping. The last checkpoint holds the last finite state.")

  step = start
  try:
    while step < total_steps:
      local = next(data_iter)
      skipped_total += int(local.pop(mixture.SKIPPED))
      batch = global_batch(local, batch_sharding)
      if flops is None:
        flops = train_step.count_flops(model_cfg, tuple(config.tasks), config, alpha, batch)
        t_last = time.perf_counter()
      state, metrics = update(state, batch)
      step += 1
      steps_timed += 1
      # The previous step's flag, read while this update runs: no per-step host sync.
      if pending is not None:
        check_finite(*pending)
      pending = (step, metrics["finite"])
      if step % config.log_every == 0 or step == total_steps:
        metrics = jax.device_get(metrics)
        dt = (time.perf_counter() - t_last) / steps_timed
        t_last, steps_timed = time.perf_counter(), 0
        line = {k: float(v) for k, v in metrics.items()}
        line.update({"step_time": dt, "images_per_s": images_per_step / dt,
                     "flops_per_s": flops / dt, "skipped_examples": skipped_total})
        if peak:
          line["mfu"] = flops / dt / (peak * jax.device_count())
        writer.write(step, line, prefix="train/")
        eta = (total_steps - step) * dt
        losses_txt = " ".join(f"{k[5:]}={v:.3f}" for k, v in line.items()
                              if k.startswith("loss/"))
        log.info("step %d/%d loss %.4f [%s] lr %.3g | %.2f s/step %.1f img/s %.1f GFLOP/s%s "
                 "| ETA %s", step, total_steps, line["loss"], losses_txt, line["lr"], dt,
                 line["images_per_s"], line["flops_per_s"] / 1e9,
                 f" MFU {100 * line['mfu']:.1f}%" if peak else "",
                 time.strftime("%H:%M:%S", time.gmtime(eta)))
      # A non-finite update is never applied, so the state saved is always the last finite one.
      if ckpt.due(step):
        ckpt.save(step, state, data_iter, config_json)
      if step == KILL_AFTER_STEP:  # fault injection for the resume test: a hard crash
        os.kill(os.getpid(), signal.SIGKILL)
      if stop["signal"] is not None:
        log.warning("SIGTERM at step %d: saving and exiting", step)
        ckpt.save(step, state, data_iter, config_json, force=True)
        break
      if config.eval_every and step % config.eval_every == 0 and step < total_steps:
        results = run_evals(state, step)
    else:
      if pending is not None:
        check_finite(*pending)
      ckpt.save(step, state, data_iter, config_json, force=True)
      results = run_evals(state, step, baselines=config.get("eval_baselines", False))
  finally:
    ckpt.close()  # waits for the last save, which reads the data iterator's state
    # Stops grain's worker processes now rather than whenever the iterator is collected.
    data_iter.close()
    writer.close()
    signal.signal(signal.SIGTERM, previous)
  if stop["signal"] is None and jax.process_index() == 0 and results:
    print(evaluate.format_table(results))
  return results


def restore_model(config, workdir: str, weights_dir: str | None = None, mesh=None):
  """The model of `config` with the newest checkpoint of `workdir` (or a weights folder)."""
  mesh = mesh if mesh is not None else sharding.make_mesh(config.mesh)
  model, _ = build_model(config, mesh)
  if weights_dir:
    params, _ = weights.load(weights_dir)
    weights.assign(model, params, allow_missing=(r"classifiers/.*",),
                   allow_unexpected=(r"classifiers/.*",))
    return model
  graphdef, state = train_step.init_state(model, config.optim)
  state_sharding = sharding.state_shardings(state, mesh, config.sharding)
  ckpt = checkpoint_lib.Checkpointer(workdir, every=0)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint under {ckpt.directory}")
  state, step = ckpt.restore(checkpoint_lib.abstract(state, state_sharding), None)
  ckpt.close()
  log.info("restored step %d of %s", step, workdir)
  return nnx.merge(graphdef, state["params"], state["frozen"], state["stats"])


def evaluate_checkpoint(config, workdir: str, weights_dir: str | None = None) -> dict:
  """`main.py --mode=eval`: the newest checkpoint of `workdir` (or a weights folder) alone."""
  mesh = sharding.make_mesh(config.mesh)
  model = restore_model(config, workdir, weights_dir, mesh)
  predictor = evaluate.Predictor(model, batch_size=config.eval_batch_size, mesh=mesh)
  results = evaluate.evaluate(predictor, config, data_dir_of(config, workdir),
                              baselines=config.get("eval_baselines", False))
  if jax.process_index() == 0:
    print(evaluate.format_table(results))
  return results
