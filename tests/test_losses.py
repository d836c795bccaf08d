"""Tests of faceptor_jax/losses.py: hand-computed cases, minima, the official weight tables, jit."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from faceptor_jax import losses

CFG = losses.default_config()


def _logsumexp(x):
  x = np.asarray(x, np.float64)
  return x.max() + math.log(np.exp(x - x.max()).sum())


# --------------------------------------------------------------------------------------------------
# Recognition (CosFace).

def test_cosface_hand_computed():
  cos = np.array([[0.5, 0.2, -0.1], [0.1, 0.3, 0.9]], np.float32)
  labels = np.array([0, 2], np.int32)
  loss = losses.recog_loss({"cos_logits": cos}, {"label": labels}, CFG)
  expected = np.mean([_logsumexp(64 * np.array([0.1, 0.2, -0.1])) - 64 * 0.1,
                      _logsumexp(64 * np.array([0.1, 0.3, 0.5])) - 64 * 0.5])
  assert loss.dtype == jnp.float32
  np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_cosface_bfloat16_input_computes_in_float32():
  cos = np.array([[0.5, 0.2, -0.1]], np.float32)
  outputs = {"cos_logits": jnp.asarray(cos, jnp.bfloat16)}
  loss = losses.recog_loss(outputs, {"label": np.array([1])}, CFG)
  assert loss.dtype == jnp.float32


def test_cosface_label_out_of_range_is_nan():
  cos = np.zeros((2, 3), np.float32)
  loss = losses.recog_loss({"cos_logits": cos}, {"label": np.array([0, 3])}, CFG)
  assert np.isnan(loss)


SHARDED_COSFACE = """
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from faceptor_jax import losses
cfg = losses.default_config()
cos = np.random.default_rng(0).uniform(-1, 1, (4, 400)).astype(np.float32)
labels = np.array([0, 150, 260, 399], np.int32)
mesh = Mesh(np.array(jax.devices()), ("fsdp",))
sharded = jax.device_put(cos, NamedSharding(mesh, P(None, "fsdp")))
loss = jax.jit(lambda c, l: losses.recog_loss({"cos_logits": c}, {"label": l}, cfg))
hlo = loss.lower(sharded, labels).compile().as_text()
assert "all-gather" not in hlo, "the class axis was gathered"
expected = losses.recog_loss({"cos_logits": cos}, {"label": labels}, cfg)
np.testing.assert_allclose(loss(sharded, labels), expected, rtol=1e-6)
"""


def test_cosface_on_class_sharded_cosines_needs_no_gather():
  # A separate process: the CPU device count is fixed when jax starts.
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
         "JAX_PLATFORMS": "cpu"}
  run = subprocess.run([sys.executable, "-c", SHARDED_COSFACE], env=env, capture_output=True,
                       text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert run.returncode == 0, run.stderr[-2000:]


# --------------------------------------------------------------------------------------------------
# Age.

def _target(age, sigma=2.0):
  k = np.arange(101, dtype=np.float64)
  pdf = np.exp(-(k - age) ** 2 / (2 * sigma ** 2))
  return pdf / pdf.sum()


def test_age_minimum_sigmoid_when_prediction_is_the_target():
  target = _target(50.0)
  # sigmoid(logit(c * p)) = c * p, which L1-normalises back to p.
  q = np.clip(0.5 * target, 1e-30, None)
  logits = np.log(q) - np.log1p(-q)
  outputs = {"logits": logits[None].astype(np.float32)}
  loss = losses.age_loss(outputs, {"age": np.array([50.0])}, CFG)
  assert abs(float(loss)) < 1e-4


def test_age_minimum_softmax_when_prediction_is_the_target():
  cfg = losses.default_config()
  cfg.age.distribution = "softmax"
  logits = np.log(np.clip(_target(30.0), 1e-30, None))[None].astype(np.float32)
  loss = losses.age_loss({"logits": logits}, {"age": np.array([30.0])}, cfg)
  assert abs(float(loss)) < 1e-4


def test_age_hand_computed_uniform_prediction():
  # Equal logits: prediction uniform over 0..100, expected age 50. KL = sum p log p + log 101.
  logits = np.zeros((2, 101), np.float32)
  ages = np.array([20.0, 60.0], np.float32)
  loss = losses.age_loss({"logits": logits}, {"age": ages}, CFG)
  kl = np.mean([np.sum(p[p > 0] * np.log(p[p > 0])) + math.log(101) for p in map(_target, ages)])
  np.testing.assert_allclose(loss, kl + (30 + 10) / 2, rtol=1e-5)


def test_age_sigmoid_and_softmax_differ():
  logits = np.linspace(-3, 3, 101, dtype=np.float32)[None]
  cfg = losses.default_config()
  cfg.age.distribution = "softmax"
  a = losses.age_loss({"logits": logits}, {"age": np.array([40.0])}, CFG)
  b = losses.age_loss({"logits": logits}, {"age": np.array([40.0])}, cfg)
  assert abs(float(a) - float(b)) > 1e-2


# --------------------------------------------------------------------------------------------------
# Binary attributes and expression.

def test_biattr_sum_over_attributes_mean_over_batch_unknown_masked():
  logits = np.array([[0.0, 2.0, -1.0], [-1.0, 0.0, 3.0]], np.float32)
  labels = np.array([[1, -1, 0], [0, 1, -1]], np.int32)
  loss = losses.biattr_loss({"logits": logits}, {"attributes": labels}, CFG)
  terms = [math.log(2), math.log1p(math.exp(-1)),       # sample 0: label 1 at logit 0, 0 at -1
           math.log1p(math.exp(-1)), math.log(2)]       # sample 1: label 0 at -1, 1 at 0
  np.testing.assert_allclose(loss, sum(terms) / 2, rtol=1e-6)


def test_biattr_invalid_label_is_nan():
  loss = losses.biattr_loss({"logits": np.zeros((1, 2))}, {"attributes": np.array([[1, 2]])}, CFG)
  assert np.isnan(loss)


def test_affect_cross_entropy_batch_mean():
  logits = np.array([[2.0, 0.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0]], np.float32)
  labels = np.array([0, 3])
  loss = losses.affect_loss({"logits": logits}, {"label": labels}, CFG)
  expected = ((_logsumexp(logits[0]) - 2.0) + _logsumexp(logits[1])) / 2
  np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_affect_near_zero_when_confident_and_right():
  logits = np.full((3, 7), -20.0, np.float32)
  labels = np.array([1, 4, 6])
  logits[np.arange(3), labels] = 20.0
  assert float(losses.affect_loss({"logits": logits}, {"label": labels}, CFG)) < 1e-6


# --------------------------------------------------------------------------------------------------
# Parsing.

@pytest.mark.parametrize("size", [(20, 28), (13, 17)])
def test_upsample_matches_torch_bilinear_align_corners_false(size):
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
  ours = np.asarray(losses.upsample_logits(jnp.asarray(x), size))
  ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), size=size,
                                        mode="bilinear", align_corners=False)
  np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=1e-5)


def test_parsing_hand_computed_and_minimum():
  # 1x1 logits upsample to a constant 4x4 map: CE per pixel = lse - logit[label].
  logits = np.array([[[[1.0, 0.0, -1.0]]]], np.float32)
  labels = np.zeros((1, 4, 4), np.int32)
  labels[0, :2] = 2
  loss = losses.parsing_loss({"logits": logits}, {"label": labels}, CFG)
  lse = _logsumexp(logits[0, 0, 0])
  np.testing.assert_allclose(loss, ((lse - 1.0) + (lse + 1.0)) / 2, rtol=1e-6)
  confident = np.array([[[[30.0, -30.0, -30.0]]]], np.float32)
  loss = losses.parsing_loss({"logits": confident}, {"label": np.zeros((1, 4, 4))}, CFG)
  assert float(loss) < 1e-6


def test_parsing_label_out_of_range_is_nan():
  outputs = {"logits": np.zeros((1, 1, 1, 3))}
  loss = losses.parsing_loss(outputs, {"label": np.full((1, 4, 4), 3)}, CFG)
  assert np.isnan(loss)


# --------------------------------------------------------------------------------------------------
# Landmarks.

def test_heatmap_gaussian_values_on_the_grid():
  # Normalised x = (p + 0.5) / h puts the centre on integer pixel p of an h-wide grid.
  h = 16
  points = jnp.array([[[(7 + 0.5) / h, (9 + 0.5) / h]]])
  heat = np.asarray(losses.landmark_heatmaps(points, (h, h), 5.0, "gaussian"))[0, 0]
  assert heat[9, 7] == 1.0
  np.testing.assert_allclose(heat[9, 8], math.exp(-16 / 50), rtol=1e-6)
  np.testing.assert_allclose(heat[9, 12], math.exp(-16 * 25 / 50), rtol=1e-6)  # r = R is inside
  assert heat[9, 13] == 0.0 and heat[13, 11] == 0.0  # r = 6 and r = sqrt(32) are outside
  disc = np.asarray(losses.landmark_heatmaps(points, (h, h), 5.0, "disc"))[0, 0]
  assert disc.sum() == 81  # integer points with x^2 + y^2 <= 25
  assert set(np.unique(disc)) == {0.0, 1.0}


def test_heatmap_centre_is_gt_times_size_minus_half():
  # A point at input pixel 255.5 of 512 normalises to 0.5 and lands on heatmap x = 63.5.
  points = jnp.array([[[0.5, 0.5]]])
  heat = np.asarray(losses.landmark_heatmaps(points, (128, 128), 5.0))[0, 0]
  np.testing.assert_allclose(heat[63:65, 63:65], math.exp(-16 * 0.5 / 50), rtol=1e-6)


def _align_case(pred_offset_px):
  s, hm = 64, 16
  gt_px = np.array([[[10.0, 20.0], [40.0, 33.0]]], np.float32)
  gt = (gt_px + 0.5) / s
  target = np.asarray(losses.landmark_heatmaps(jnp.asarray(gt), (hm, hm), 5.0))
  t = np.clip(target, 1e-7, 1 - 1e-7)
  outputs = {"heatmap_logits": (np.log(t) - np.log1p(-t)).astype(np.float32),
             "landmarks": (gt + np.asarray(pred_offset_px, np.float32) / s)}
  batch = {"landmarks": gt_px, "image": np.zeros((1, s, s, 3), np.uint8)}
  entropy = np.mean(-(t * np.log(t) + (1 - t) * np.log1p(-t)))
  return outputs, batch, entropy, s


def test_align_known_minimum_when_prediction_is_the_target():
  outputs, batch, entropy, _ = _align_case([0.0, 0.0])
  loss = losses.align_loss(outputs, batch, CFG)
  np.testing.assert_allclose(loss, entropy, atol=1e-5)  # BCE minimum = entropy of soft targets
  grad = jax.grad(lambda p: losses.align_loss({**outputs, "landmarks": p}, batch, CFG))(
      jnp.asarray(outputs["landmarks"]))
  assert np.all(np.isfinite(grad))  # the distance at 0 has a zero, not a NaN, gradient


def test_align_coordinate_terms_l2_and_l1():
  outputs, batch, entropy, s = _align_case([3.0, 4.0])
  np.testing.assert_allclose(losses.align_loss(outputs, batch, CFG), entropy + 5 / s, atol=1e-5)
  cfg = losses.default_config()
  cfg.align.coord = "l1"
  np.testing.assert_allclose(losses.align_loss(outputs, batch, cfg), entropy + 7 / s, atol=1e-5)


def test_align_input_size_from_config_when_no_image():
  outputs, batch, entropy, s = _align_case([3.0, 4.0])
  del batch["image"]
  with pytest.raises(ValueError, match="input size"):
    losses.align_loss(outputs, batch, CFG)
  cfg = losses.default_config()
  cfg.align.input_size = s
  np.testing.assert_allclose(losses.align_loss(outputs, batch, cfg), entropy + 5 / s, atol=1e-5)


def test_align_disc_target_has_zero_minimum():
  s, hm = 64, 16
  gt_px = np.array([[[10.0, 20.0]]], np.float32)
  gt = (gt_px + 0.5) / s
  disc = np.asarray(losses.landmark_heatmaps(jnp.asarray(gt), (hm, hm), 5.0, "disc"))
  cfg = losses.default_config()
  cfg.align.target = "disc"
  outputs = {"heatmap_logits": np.where(disc > 0, 30.0, -30.0).astype(np.float32), "landmarks": gt}
  assert float(losses.align_loss(outputs, {"landmarks": gt_px, "image": np.zeros((1, s, s, 3))},
                                 cfg)) < 1e-6


def test_unknown_variant_names_fail_clearly():
  outputs, batch, _, _ = _align_case([0.0, 0.0])
  cfg = losses.default_config()
  cfg.align.target = "square"
  with pytest.raises(ValueError, match="align.target"):
    losses.align_loss(outputs, batch, cfg)
  cfg = losses.default_config()
  cfg.age.distribution = "gumbel"
  with pytest.raises(ValueError, match="age.distribution"):
    losses.age_loss({"logits": np.zeros((1, 101))}, {"age": np.zeros(1)}, cfg)


# --------------------------------------------------------------------------------------------------
# Loss weights: SPEC 2.2 and supplement Tab. 1.

BASE_N = {"recog_ms1mv3": 256, "age_morph2": 64, "biattr_celeba": 64, "affect_affectnet": 64,
          "affect_rafdb": 16, "parsing_celebam": 4, "align_300w": 4}
BASE_W = {"recog": 5, "age": 6, "biattr": 2, "affect": 5, "parsing": 100, "align": 1000}


def test_alpha_base_table():
  alpha = losses.loss_weights(BASE_N, BASE_W)
  assert alpha == {"recog_ms1mv3": 5.0, "age_morph2": 6.0, "biattr_celeba": 2.0,
                   "affect_affectnet": 4.0, "affect_rafdb": 1.0, "parsing_celebam": 100.0,
                   "align_300w": 1000.0}
  assert sum(alpha.values()) == 1118.0


def test_alpha_base_from_per_gpu_batches_is_the_same():
  per_gpu = {name: n // 2 for name, n in BASE_N.items()}
  assert losses.loss_weights(per_gpu, BASE_W) == losses.loss_weights(BASE_N, BASE_W)


def test_alpha_full_table():
  n = {"recog_ms1mv3": 256, "age_morph2": 64, "age_utkface": 16, "biattr_celeba": 64,
       "affect_affectnet": 64, "affect_rafdb": 16, "affect_ferplus": 16, "parsing_celebam": 4,
       "parsing_lapa": 4, "align_300w": 4, "align_cofw": 4, "align_wflw": 4, "align_aflw": 4}
  w = {"recog": 5, "age": 5, "biattr": 2, "affect": 10, "parsing": 200, "align": 1000}
  alpha = losses.loss_weights(n, w)
  exact = {"align_300w": 250.0, "align_wflw": 250.0, "align_cofw": 250.0, "align_aflw": 250.0,
           "parsing_celebam": 100.0, "parsing_lapa": 100.0, "age_morph2": 4.0, "age_utkface": 1.0,
           "biattr_celeba": 2.0, "recog_ms1mv3": 5.0}
  for name, value in exact.items():
    assert alpha[name] == value, name
  # The paper prints 6.66 / 1.67 / 1.67 for 10 * 64/96 and 10 * 16/96.
  assert alpha["affect_affectnet"] == 64 / 96 * 10
  assert alpha["affect_rafdb"] == alpha["affect_ferplus"] == 16 / 96 * 10
  paper = {"affect_affectnet": 6.66, "affect_rafdb": 1.67, "affect_ferplus": 1.67}
  for name, printed in paper.items():
    assert abs(alpha[name] - printed) < 0.01
  assert round(sum(alpha.values())) == 1222


def test_alpha_naive_table():
  alpha = losses.loss_weights(BASE_N, {kind: 1 for kind in BASE_W})
  assert alpha == {"recog_ms1mv3": 1.0, "age_morph2": 1.0, "biattr_celeba": 1.0,
                   "affect_affectnet": 0.8, "affect_rafdb": 0.2, "parsing_celebam": 1.0,
                   "align_300w": 1.0}


def test_alpha_auxiliary_settings_of_the_supplement():
  # Age main task: the per-type weights that give Tab. 1's alphas are the alphas themselves
  # (one dataset per type).
  age_main = losses.loss_weights(
      {"age_morph2": 64, "align_300w": 4, "parsing_celebam": 4, "recog_ms1mv3": 256},
      {"age": 10, "align": 1000, "parsing": 100, "recog": 10})
  assert age_main == {"age_morph2": 10.0, "align_300w": 1000.0, "parsing_celebam": 100.0,
                      "recog_ms1mv3": 10.0}
  # Expression main task: affect weight 100 splits 64:16 into 80 and 20.
  expr_main = losses.loss_weights(
      {"affect_affectnet": 64, "affect_rafdb": 16, "align_300w": 2, "parsing_celebam": 2,
       "recog_ms1mv3": 64},
      {"affect": 100, "align": 1000, "parsing": 100, "recog": 1})
  assert expr_main == {"affect_affectnet": 80.0, "affect_rafdb": 20.0, "align_300w": 1000.0,
                       "parsing_celebam": 100.0, "recog_ms1mv3": 1.0}


def test_alpha_missing_type_weight_names_the_type():
  with pytest.raises(KeyError, match="align"):
    losses.loss_weights({"align_300w": 4, "age_morph2": 64}, {"age": 1})


# --------------------------------------------------------------------------------------------------
# Step loss.

def _small_step():
  rng = np.random.default_rng(0)
  s = 16
  outputs = {
      "recog_ms1mv3": {"embedding": rng.normal(size=(2, 8)).astype(np.float32),
                       "cos_logits": rng.uniform(-1, 1, (2, 5)).astype(np.float32)},
      "age_morph2": {"logits": rng.normal(size=(2, 101)).astype(np.float32)},
      "biattr_celeba": {"logits": rng.normal(size=(2, 40)).astype(np.float32)},
      "affect_rafdb": {"logits": rng.normal(size=(2, 7)).astype(np.float32)},
      "parsing_celebam": {"logits": rng.normal(size=(1, 4, 4, 19)).astype(np.float32)},
      "align_300w": {"heatmap_logits": rng.normal(size=(1, 68, 4, 4)).astype(np.float32),
                     "landmarks": rng.uniform(0, 1, (1, 68, 2)).astype(np.float32)},
  }
  batch = {
      "recog_ms1mv3": {"label": np.array([1, 4], np.int32)},
      "age_morph2": {"age": np.array([23.0, 61.0], np.float32)},
      "biattr_celeba": {"attributes": rng.integers(0, 2, (2, 40)).astype(np.int32)},
      "affect_rafdb": {"label": np.array([0, 6], np.int32)},
      "parsing_celebam": {"label": rng.integers(0, 19, (1, s, s)).astype(np.int32)},
      "align_300w": {"landmarks": rng.uniform(0, s - 1, (1, 68, 2)).astype(np.float32),
                     "image": np.zeros((1, s, s, 3), np.uint8)},
  }
  return outputs, batch


def test_step_loss_denominator_counts_absent_tasks():
  outputs, batch = _small_step()
  weights = {"affect_rafdb": 1.0, "age_morph2": 6.0, "align_wflw": 250.0}
  total, per_task = losses.step_loss(outputs, {"affect_rafdb": batch["affect_rafdb"],
                                               "age_morph2": batch["age_morph2"]}, weights, CFG)
  assert set(per_task) == {"affect_rafdb", "age_morph2"}
  expected = (1.0 * per_task["affect_rafdb"] + 6.0 * per_task["age_morph2"]) / 257.0
  np.testing.assert_allclose(total, expected, rtol=1e-6)


def test_step_loss_rejects_unweighted_task():
  outputs, batch = _small_step()
  with pytest.raises(KeyError, match="affect_rafdb"):
    losses.step_loss(outputs, {"affect_rafdb": batch["affect_rafdb"]}, {"age_morph2": 1.0}, CFG)


def test_step_loss_jits_over_every_type_with_finite_gradients():
  outputs, batch = _small_step()
  weights = losses.loss_weights({name: len(b[next(iter(b))]) for name, b in batch.items()},
                                {"recog": 5, "age": 6, "biattr": 2, "affect": 5, "parsing": 100,
                                 "align": 1000})

  def loss_fn(o):
    return losses.step_loss(o, batch, weights, CFG)

  step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  (total, per_task), grads = step(outputs)
  assert total.dtype == jnp.float32 and np.isfinite(total)
  assert set(per_task) == set(batch)
  expected = sum(weights[name] * float(per_task[name]) for name in batch) / sum(weights.values())
  np.testing.assert_allclose(total, expected, rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  eager = losses.affect_loss(outputs["affect_rafdb"], batch["affect_rafdb"], CFG)
  np.testing.assert_allclose(per_task["affect_rafdb"], eager, rtol=1e-5)
