"""Shared test set-up: the official parity fixtures and quiet logs."""

import os
import sys

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")


def close(ours, ref, tol_scale=1e-4):
  """The parity rule: max |ours - official| <= tol_scale * max(1, max |official|)."""
  ours, ref = np.asarray(ours), np.asarray(ref)
  assert ours.shape == ref.shape, (ours.shape, ref.shape)
  tol = tol_scale * max(1.0, float(np.abs(ref).max()))
  err = float(np.abs(ours - ref).max())
  assert err <= tol, f"max |diff| {err:.3g} > {tol:.3g}"


def recipe_state(recipe, keys_file: str) -> dict:
  """The official fixtures' recipe weights (seed 1) of a key list in tests/fixtures/official."""
  keys, aliases = recipe.load_keys(os.path.join(FIXTURES, keys_file))
  return recipe.make_state_dict(keys, seed=1, aliases=aliases)


def random_images(cfg, names, batch=2, seed=0):
  """{task: normalised-looking float images at the task's group size} for a model config."""
  import jax.numpy as jnp
  from faceptor_jax import tasks
  rng = np.random.default_rng(seed)
  return {t: jnp.asarray(rng.normal(size=(batch, cfg.image_size[tasks.get(t).group],
                                          cfg.image_size[tasks.get(t).group], 3)), jnp.float32)
          for t in names}


@pytest.fixture(scope="session")
def official_recipe():
  """The official fixtures' weight recipe module (numpy only)."""
  sys.path.insert(0, FIXTURES)
  try:
    import official_weights
  finally:
    sys.path.remove(FIXTURES)
  return official_weights


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """configs/tiny.py's synthetic datasets, rendered and prepared once per session."""
  from configs import common, tiny
  from data_pipelines import demo_data
  config = tiny.get_config()
  config.eval = common.eval_entries(tiny.TASKS)  # the evaluation sets too
  path = str(tmp_path_factory.mktemp("tiny_data"))
  demo_data.ensure(config, path)
  return path
