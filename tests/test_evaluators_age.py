"""Tests of faceptor_jax/evaluators/age.py: decoding, MAE, CS(5), epsilon-error."""

import math

import numpy as np
import pytest

from faceptor_jax.evaluators import age


def test_expected_age_sigmoid_then_l1_normalise():
  logits = np.full((1, 101), -30.0)
  logits[0, 30] = 30.0
  assert age.expected_age(logits)[0] == pytest.approx(30.0, abs=1e-9)
  assert age.expected_age(np.zeros((1, 101)))[0] == pytest.approx(50.0)
  # Two bins with sigmoid 0.5 and 0.25 (logit 0 and -log 3): weights 2/3 and 1/3.
  logits = np.full((1, 101), -60.0)
  logits[0, 20], logits[0, 80] = 0.0, -math.log(3)
  assert age.expected_age(logits)[0] == pytest.approx(20 * 2 / 3 + 80 / 3)


def test_softmax_variant_decodes_differently():
  logits = np.full((1, 101), -60.0)
  logits[0, 20], logits[0, 80] = 0.0, -math.log(3)
  # softmax weights 3/4 and 1/4 instead of the sigmoid's 2/3 and 1/3.
  assert age.expected_age(logits, "softmax")[0] == pytest.approx(20 * 0.75 + 80 * 0.25)
  with pytest.raises(ValueError, match="softmax"):
    age.expected_age(logits, "linear")


def test_mae_cs_epsilon_hand_computed_over_two_batches():
  ev = age.AgeEvaluator("age_morph2")
  exactly_30 = np.full((2, 101), -1e4)  # sigmoid exactly 0 except bin 30, exactly 1
  exactly_30[:, 30] = 1e4
  ev.update({"logits": exactly_30}, {"age": np.array([25, 30])})
  ev.update({"logits": exactly_30}, {"age": np.array([38.0, 36.0])})
  r = ev.result()
  errors = np.array([5.0, 0.0, -8.0, -6.0])
  assert r["mae"] == 19 / 4
  assert r["cs5"] == 50.0  # |error| <= 5 counts, so exactly 5 is within
  assert r["epsilon_error"] == pytest.approx(1 - np.mean(np.exp(-errors ** 2 / 18)))
  assert r["count"] == 4


def test_bad_inputs_fail_clearly():
  ev = age.AgeEvaluator("age_utkface")
  with pytest.raises(ValueError, match="predictions"):
    ev.update({"logits": np.zeros((2, 101))}, {"age": np.array([1.0])})
  with pytest.raises(ValueError, match="no faces"):
    ev.result()
  with pytest.raises(ValueError, match="softmax"):
    age.AgeEvaluator("age_morph2", distribution="gauss")
