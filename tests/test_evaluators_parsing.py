"""Tests of faceptor_jax/evaluators/parsing.py: a hand-computed F1 table, NaN classes, inputs."""

import math

import numpy as np
import pytest

from faceptor_jax import tasks
from faceptor_jax.evaluators import parsing

GT_A = np.array([[0, 1, 1], [2, 2, 0]])
PRED_A = np.array([[0, 1, 2], [2, 1, 0]])
GT_B = np.array([[3, 3]])        # a second image of another size
PRED_B = np.array([[3, 0]])
ALL_REST = np.arange(4, 11)[None]  # classes 4..10, predicted perfectly


def test_hand_computed_f1_table_over_images_of_different_sizes():
  ev = parsing.ParsingEvaluator("parsing_lapa")
  ev.update({"label": [PRED_A, PRED_B]}, {"label": [GT_A, GT_B]})
  ev.update({"label": ALL_REST[None]}, {"label": ALL_REST[None]})
  r = ev.result()
  names = tasks.PARSING_CLASSES["parsing_lapa"]
  expected = {0: 4 / 5, 1: 0.5, 2: 0.5, 3: 2 / 3, **{c: 1.0 for c in range(4, 11)}}
  for c, f1 in expected.items():
    assert r[f"f1/{names[c]}"] == pytest.approx(f1), names[c]
  assert r["f1_fg_mean"] == pytest.approx((0.5 + 0.5 + 2 / 3 + 7) / 10)  # background left out
  assert r["pixels"] == 6 + 2 + 7
  table = ev.tables()["f1_per_class"]
  assert [row["class"] for row in table] == list(names)
  assert table[0] == {"class": "background", "f1": pytest.approx(0.8), "gt_pixels": 2,
                      "pred_pixels": 3}


def test_class_absent_from_both_is_nan_and_so_is_the_mean():
  ev = parsing.ParsingEvaluator("parsing_lapa")
  ev.update({"label": PRED_A[None]}, {"label": GT_A[None]})
  r = ev.result()
  assert math.isnan(r["f1/" + tasks.PARSING_CLASSES["parsing_lapa"][5]])
  assert math.isnan(r["f1_fg_mean"])


def test_class_predicted_but_absent_from_truth_scores_zero():
  ev = parsing.ParsingEvaluator("parsing_celebam")
  ev.update({"label": np.array([[[0, 18]]])}, {"label": np.array([[[0, 0]]])})
  r = ev.result()
  assert r["f1/neckl"] == 0.0
  assert r["f1/background"] == pytest.approx(2 / 3)


def test_logits_are_argmaxed():
  logits = np.eye(11)[PRED_A] * 5.0 - 1.0  # [H, W, C]
  from_logits = parsing.ParsingEvaluator("parsing_lapa")
  from_logits.update({"logits": logits[None]}, {"label": GT_A[None]})
  from_labels = parsing.ParsingEvaluator("parsing_lapa")
  from_labels.update({"label": PRED_A[None]}, {"label": GT_A[None]})
  np.testing.assert_array_equal(from_logits.confusion, from_labels.confusion)


def test_bad_inputs_fail_clearly():
  ev = parsing.ParsingEvaluator("parsing_lapa")
  with pytest.raises(ValueError, match="same"):
    ev.update({"label": [PRED_A]}, {"label": [GT_B]})
  with pytest.raises(ValueError, match="outside"):
    ev.update({"label": [np.full((1, 2), 11)]}, {"label": [GT_B]})
  with pytest.raises(KeyError, match="logits"):
    ev.update({"mask": [PRED_A]}, {"label": [GT_A]})
  with pytest.raises(ValueError, match="no pixels"):
    ev.result()
  with pytest.raises(KeyError):
    parsing.ParsingEvaluator("align_300w")
