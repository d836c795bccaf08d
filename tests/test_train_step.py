"""The update function on the tiny model: a step trains, a non-finite step changes nothing, stage
2's frozen parameters get no gradient and no optimizer state."""

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import losses, models, optim, train_step
from faceptor_jax.models import model_config

TASKS = ("age_morph2", "affect_rafdb")


def config(**optim_overrides):
  cfg = ml_collections.ConfigDict({"optim": optim.default_config(),
                                   "schedule": optim.schedule_config(),
                                   "losses": losses.default_config(), "seed": 0})
  cfg.schedule.update(warmup_steps=1, peak_lr=1e-3)
  cfg.optim.update(**optim_overrides)
  return cfg


def batch(age=30.0):
  rng = np.random.default_rng(0)
  return {"age_morph2": {"image": rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                         "age": np.full((4,), age, np.float32)},
          "affect_rafdb": {"image": rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                           "label": np.array([0, 1, 2, 3], np.int32)}}


def setup(model_cfg=None, **optim_overrides):
  cfg = config(**optim_overrides)
  model = models.create(model_cfg or model_config.tiny(), TASKS, rngs=nnx.Rngs(0))
  graphdef, state = train_step.init_state(model, cfg.optim)
  update = jax.jit(train_step.make_update(graphdef, state, cfg, {t: 1.0 for t in TASKS}))
  return state, update


def leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_a_finite_step_updates_parameters_and_the_schedule_runs():
  state, update = setup()
  before = leaves(state["params"])
  new, metrics = update(state, batch())
  assert bool(metrics["finite"]) and int(new["step"]) == 1
  assert any(not np.array_equal(a, b) for a, b in zip(before, leaves(new["params"])))
  assert float(metrics["lr"]) == pytest.approx(1e-6)  # step 0 of the warm-up: base_lr
  assert set(metrics) >= {"loss", "grad_norm", "loss/age_morph2", "loss/affect_rafdb"}


def test_a_non_finite_step_is_not_applied():
  state, update = setup()
  before = [leaves(state[k]) for k in ("params", "opt", "stats")]
  new, metrics = update(state, batch(age=float("nan")))
  assert not bool(metrics["finite"])
  for old, k in zip(before, ("params", "opt", "stats")):
    for a, b in zip(old, leaves(new[k])):
      np.testing.assert_array_equal(a, b)
  assert int(new["step"]) == 1  # the data still moved on


def test_frozen_parameters_get_no_gradient_and_no_optimizer_state():
  cfg = model_config.tiny()
  cfg.decoder.new_levels = (1, 2)
  state, update = setup(cfg, trainable=(r"decoder/new_input_proj/.*", r"decoder/new_level_embed"))
  trainable = nnx.to_flat_state(state["params"])
  names = {"/".join(map(str, p)) for p, _ in trainable}
  assert names == {"decoder/new_input_proj/0/kernel", "decoder/new_input_proj/0/bias",
                   "decoder/new_input_proj/1/kernel", "decoder/new_input_proj/1/bias",
                   "decoder/new_level_embed"}
  opt_size = sum(x.size for x in jax.tree.leaves(state["opt"]))
  param_size = sum(v.size for _, v in trainable)
  assert opt_size <= 2 * param_size + 1  # Adam's two moments of the trainable ones + a count
  frozen_before = leaves(state["frozen"])
  new, _ = update(state, batch())
  for a, b in zip(frozen_before, leaves(new["frozen"])):
    np.testing.assert_array_equal(a, b)


def test_clip_unused_clip_head_is_frozen_by_default():
  state, _ = setup()
  frozen = {"/".join(map(str, p)) for p, _ in nnx.to_flat_state(state["frozen"])}
  assert frozen == {"encoder/ln_post/scale", "encoder/ln_post/bias", "encoder/proj"}


def test_learning_rate_schedule_is_the_official_one():
  s = optim.schedule_config()
  assert float(optim.learning_rate(0, s)) == pytest.approx(1e-6)
  assert float(optim.learning_rate(1000, s)) == pytest.approx(1e-6 + 0.5 * (5e-5 - 1e-6))
  assert float(optim.learning_rate(2000, s)) == pytest.approx(5e-5)
  assert float(optim.learning_rate(26000, s)) == pytest.approx(2.5e-5)
  assert float(optim.learning_rate(50000, s)) == pytest.approx(0.0, abs=1e-12)
  cfg = optim.default_config()
  assert optim.multiplier("encoder/blocks/0/c_fc/kernel", cfg) == 1.0
  assert optim.multiplier("decoder/query_feat/age_morph2", cfg) == 10.0
  assert optim.multiplier("classifiers/recog_ms1mv3/weight", cfg) == 10.0
