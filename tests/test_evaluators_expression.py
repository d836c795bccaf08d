"""Tests of faceptor_jax/evaluators/expression.py: top-1 accuracy and the confusion matrix."""

import math

import numpy as np
import pytest

from faceptor_jax import tasks
from faceptor_jax.evaluators import expression


def _logits(predicted):
  return np.eye(7)[predicted] * 3.0


def test_accuracy_and_confusion_hand_computed():
  ev = expression.ExpressionEvaluator("affect_rafdb")
  ev.update({"logits": _logits([0, 1, 1, 3])}, {"label": np.array([0, 1, 2, 3])})
  ev.update({"logits": _logits([6])}, {"label": np.array([1])})
  r = ev.result()
  assert r["accuracy"] == pytest.approx(60.0)  # 3 of 5, overall (not class-averaged)
  assert r["count"] == 5
  assert math.isnan(r["mean_class_accuracy"])  # classes 4..6 never occur
  confusion = ev.tables()["confusion"]
  assert [row["true"] for row in confusion] == list(tasks.EXPRESSION_CLASSES)
  assert confusion[1] == {"true": "Happy", **{c: 0 for c in tasks.EXPRESSION_CLASSES},
                          "Happy": 1, "Anger": 1}
  assert confusion[2]["Happy"] == 1


def test_mean_class_accuracy_when_every_class_occurs():
  ev = expression.ExpressionEvaluator("affect_rafdb")
  labels = np.array([0, 1, 2, 3, 4, 5, 6, 6])
  predicted = np.array([0, 1, 2, 3, 4, 5, 6, 0])
  ev.update({"logits": _logits(predicted)}, {"label": labels})
  assert ev.result()["mean_class_accuracy"] == pytest.approx(100 * (6 + 0.5) / 7)
  assert ev.result()["accuracy"] == pytest.approx(100 * 7 / 8)


def test_ties_go_to_the_first_class():
  ev = expression.ExpressionEvaluator("affect_rafdb")
  ev.update({"logits": np.zeros((1, 7))}, {"label": np.array([0])})
  assert ev.result()["accuracy"] == 100.0


def test_bad_inputs_fail_clearly():
  ev = expression.ExpressionEvaluator("affect_ferplus")
  with pytest.raises(ValueError, match="outside"):
    ev.update({"logits": np.zeros((1, 7))}, {"label": np.array([7])})
  with pytest.raises(ValueError, match=r"\[B, 7\]"):
    ev.update({"logits": np.zeros((2, 8))}, {"label": np.array([0, 1])})
  with pytest.raises(ValueError, match="no faces"):
    ev.result()
