"""The device mesh and where every array lives on it, from the config.

The mesh has two axes, `data` and `fsdp` (`config.mesh`, sizes may be -1 = all remaining
devices). Batches are split over both. Parameters carry logical axis names (models/layers.py);
`config.sharding.rules` maps each name to a mesh axis, a tuple of axes or None (replicated), and
`config.sharding.overrides` maps a regex over the '/'-joined parameter path to a full spec. A
dimension that a rule would split unevenly stays replicated (and is logged), so one rule set serves
every mesh size.
"""

from __future__ import annotations

import logging
import math
import re

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from faceptor_jax import weights

log = logging.getLogger(__name__)

AXES = ("data", "fsdp")
BATCH = P(AXES)  # the leading (batch) axis of every input, over all devices

# Default rules (config.sharding.rules): FSDP over the encoder width and the CosFace classes.
DEFAULT_RULES = (
    ("embed", "fsdp"),
    ("classes", ("data", "fsdp")),
)


def make_mesh(mesh_cfg, devices=None) -> Mesh:
  """The ('data', 'fsdp') mesh; one -1 size takes the devices left over."""
  devices = list(jax.devices() if devices is None else devices)
  sizes = [int(mesh_cfg.get(axis, 1)) for axis in AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"config.mesh {dict(zip(AXES, sizes))}: at most one size may be -1")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if len(devices) % known:
      raise ValueError(f"config.mesh {dict(zip(AXES, sizes))} does not divide "
                       f"{len(devices)} devices")
    sizes[sizes.index(-1)] = len(devices) // known
  if math.prod(sizes) != len(devices):
    raise ValueError(f"config.mesh {dict(zip(AXES, sizes))} needs {math.prod(sizes)} devices, "
                     f"there are {len(devices)}")
  return Mesh(np.asarray(devices).reshape(sizes), AXES)


def spec_for(path: str, shape, logical, rules, overrides, mesh: Mesh) -> P:
  """The mesh PartitionSpec of one array from its logical names (or an override)."""
  for pattern, spec in overrides:
    if re.fullmatch(pattern, path):
      return P(*spec)
  rules = dict(rules)
  out, used = [], set()
  for dim, name in zip(shape, logical or (None,) * len(shape)):
    axes = rules.get(name) if name is not None else None
    axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
    axes = tuple(a for a in axes if a not in used and mesh.shape[a] > 1)
    size = math.prod(mesh.shape[a] for a in axes)
    if axes and dim % size:
      log.info("%s: dimension %d does not split over %s; replicated", path, dim, axes)
      axes = ()
    used.update(axes)
    out.append(axes[0] if len(axes) == 1 else (axes or None))
  return P(*out)


def state_shardings(state, mesh: Mesh, sharding_cfg):
  """A NamedSharding for every array of `state`, in the same tree structure (nnx Variables keep
  their wrappers, so the result serves as jit in/out shardings and as a restore target). Arrays
  outside Variables (step counters) are replicated."""
  rules = tuple(tuple(r) for r in sharding_cfg.get("rules", DEFAULT_RULES))
  overrides = tuple(tuple(o) for o in sharding_cfg.get("overrides", ()))
  is_var = lambda x: isinstance(x, nnx.Variable)
  specs = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(state, is_leaf=is_var)[0]:
    names = leaf.get_metadata().get("out_sharding") if is_var(leaf) else None
    shape = leaf.shape if is_var(leaf) else np.shape(leaf)
    specs.append(NamedSharding(mesh, spec_for(weights.path_name(path), shape, names, rules,
                                              overrides, mesh)))
  treedef = jax.tree_util.tree_structure(state)
  return jax.tree_util.tree_unflatten(treedef, specs)


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, BATCH)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_sizes(batch_sizes: dict, mesh: Mesh) -> None:
  """Every per-dataset batch must split evenly over the devices; the error says what divides."""
  n = mesh.shape["data"] * mesh.shape["fsdp"]
  bad = {t: b for t, b in batch_sizes.items() if b % n}
  if bad:
    raise ValueError(f"per-dataset batch sizes {bad} do not divide over the {n} devices of the "
                     f"mesh {dict(mesh.shape)}; use multiples of {n} (e.g. "
                     + ", ".join(f"{t}={max(n, b // n * n)}" for t, b in bad.items()) + ")")
