"""Tests of faceptor_jax/evaluators/attributes.py: threshold, unknown labels, mAcc."""

import math

import numpy as np
import pytest

from faceptor_jax import tasks
from faceptor_jax.evaluators import attributes


def test_per_attribute_accuracy_and_mean_hand_computed():
  ev = attributes.AttributeEvaluator("biattr_celeba")
  logits = np.full((4, 40), -2.0)
  labels = np.zeros((4, 40), np.int64)     # every attribute right except below
  logits[:, 0] = [1.0, 1.0, -1.0, 0.0]     # attr 0: labels 1, 0, 0, 1 -> right, wrong, right, wrong
  labels[:, 0] = [1, 0, 0, 1]
  labels[:, 1] = [1, -1, -1, 0]            # attr 1: the unknowns are skipped -> 1 right of 2
  ev.update({"logits": logits[:2]}, {"attributes": labels[:2]})
  ev.update({"logits": logits[2:]}, {"attributes": labels[2:]})
  r = ev.result()
  assert r["accuracy/5_o_Clock_Shadow"] == pytest.approx(50.0)
  assert r["accuracy/Arched_Eyebrows"] == pytest.approx(50.0)
  assert r["accuracy/Young"] == 100.0
  assert r["mean_accuracy"] == pytest.approx((50 + 50 + 38 * 100) / 40)
  rows = ev.tables()["accuracy_per_attribute"]
  assert [row["attribute"] for row in rows] == list(tasks.CELEBA_ATTRIBUTES)
  assert rows[1]["known"] == 2 and rows[0]["known"] == 4


def test_zero_logit_predicts_zero_like_torch_round():
  logits = np.array([[0.0, 1e-8, -1e-8, 2e-7, -2e-7] + [0.0] * 35], np.float32)
  ones = np.ones((1, 40), np.int64)
  ev = attributes.AttributeEvaluator("biattr_celeba")
  ev.update({"logits": logits}, {"attributes": ones})
  acc = ev.accuracies()[:5]
  np.testing.assert_array_equal(acc, [0, 0, 0, 100, 0])  # only 2e-7 has float32 sigmoid > 0.5
  torch = pytest.importorskip("torch")
  reference = torch.round(torch.sigmoid(torch.from_numpy(logits[0, :5]))).numpy()
  np.testing.assert_array_equal(acc / 100, reference)


def test_lfw73_names_and_never_known_attribute_is_nan():
  ev = attributes.AttributeEvaluator("biattr_lfw73")
  labels = np.ones((1, 73), np.int64)
  labels[0, 72] = -1
  ev.update({"logits": np.ones((1, 73))}, {"attributes": labels})
  r = ev.result()
  assert r["accuracy/Male"] == 100.0  # lfw_attributes.txt's column names, in its order
  assert math.isnan(r["accuracy/Wearing Necklace"]) and math.isnan(r["mean_accuracy"])


def test_bad_inputs_fail_clearly():
  ev = attributes.AttributeEvaluator("biattr_celeba")
  with pytest.raises(ValueError, match="0, 1 or -1"):
    ev.update({"logits": np.zeros((1, 40))}, {"attributes": np.full((1, 40), 2)})
  with pytest.raises(ValueError, match=r"\[B, 40\]"):
    ev.update({"logits": np.zeros((1, 39))}, {"attributes": np.zeros((1, 39))})
  with pytest.raises(ValueError, match="no faces"):
    ev.result()
  with pytest.raises(ValueError, match="names"):
    attributes.AttributeEvaluator("biattr_celeba", names=("a", "b"))
