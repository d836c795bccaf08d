"""Training checkpoints: model, optimizer, step, the grain iterator and the config, with orbax.

One `CheckpointManager` under `<workdir>/checkpoints` writes every `every` steps (asynchronously
unless `async_save` is off), keeps the last `keep`, and only ever exposes complete checkpoints
(orbax commits atomically), so a restart finds the newest complete one. Restoring targets the
current mesh: the abstract state carries the shardings, so a checkpoint written on one mesh
restores onto another.
"""

from __future__ import annotations

import json
import os

import grain
import jax
import orbax.checkpoint as ocp


class Checkpointer:

  def __init__(self, workdir: str, *, every: int, keep: int = 3, async_save: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.every = every
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, save_interval_steps=1,
                                             enable_async_checkpointing=async_save,
                                             create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def due(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state, data_iterator, config_json: str, force: bool = False):
    """Saves at `step` (the number of updates done); `force` ignores the interval (SIGTERM, end)."""
    if step in (self.manager.all_steps() or []):
      return
    args = {"state": ocp.args.StandardSave(state),
            "config": ocp.args.JsonSave(json.loads(config_json))}
    if data_iterator is not None:
      args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
    self.manager.save(step, args=ocp.args.Composite(**args), force=force)

  def restore(self, abstract_state, data_iterator, step: int | None = None):
    """(state, step) of the newest (or given) checkpoint; the iterator is restored in place."""
    step = self.latest_step() if step is None else step
    args = {"state": ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
      args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**args))
    return restored["state"], step

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def abstract(state, shardings):
  """ShapeDtypeStructs of `state` carrying `shardings` (the restore target)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      state, shardings)
