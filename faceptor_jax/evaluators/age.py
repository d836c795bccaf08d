"""Age metrics: MAE of the expected age, CS(5) and the epsilon-error (DATASETS.md 17.5).

The expected age decodes the 101 logits as the official code does (SPEC 1.6): sigmoid, divide by
the sum, then sum_k k * p_k over k = 0..100 (`distribution='softmax'` for the supplement's
variant). MAE is in years; CS(5) = % of faces with |error| <= 5; epsilon-error =
1 - mean exp(-error^2 / (2 * 3^2)). All three are global means over the test set (the official
batch means are weighted by batch size, which is the same).
"""

from __future__ import annotations

import numpy as np
from scipy import special


def expected_age(logits, distribution: str = "sigmoid") -> np.ndarray:
  """Expected age [B] from logits [B, bins], in float64."""
  logits = np.asarray(logits, np.float64)
  if distribution == "sigmoid":
    probs = special.expit(logits)
    probs = probs / np.maximum(probs.sum(-1, keepdims=True), 1e-12)
  elif distribution == "softmax":
    probs = special.softmax(logits, axis=-1)
  else:
    raise ValueError(f"distribution must be 'sigmoid' or 'softmax', got {distribution!r}")
  return probs @ np.arange(logits.shape[-1], dtype=np.float64)


class AgeEvaluator:
  """MAE / CS / epsilon-error of one age test split.

  `AgeEvaluator(task, distribution='sigmoid', cs_threshold=5, epsilon_sigma=3)`.
  update(predictions, examples):
    predictions["logits"]: float [B, 101];
    examples["age"]:       float or int [B], the labelled age in years.
  result(): mae (years), cs (%; key `cs5` for the default threshold), epsilon_error (fraction),
    count.
  """

  def __init__(self, task: str = "age_morph2", distribution: str = "sigmoid",
               cs_threshold: float = 5.0, epsilon_sigma: float = 3.0):
    if distribution not in ("sigmoid", "softmax"):
      raise ValueError(f"distribution must be 'sigmoid' or 'softmax', got {distribution!r}")
    self.task = task
    self.distribution = distribution
    self.cs_threshold = cs_threshold
    self.epsilon_sigma = epsilon_sigma
    self._count = 0
    self._abs_error = 0.0
    self._within = 0
    self._gaussian_score = 0.0

  def update(self, predictions, examples):
    predicted = expected_age(predictions["logits"], self.distribution)
    age = np.asarray(examples["age"], np.float64).reshape(-1)
    if predicted.shape != age.shape:
      raise ValueError(f"{self.task}: {predicted.shape[0]} predictions for {age.shape[0]} ages")
    error = predicted - age
    self._count += len(age)
    self._abs_error += float(np.abs(error).sum())
    self._within += int(np.count_nonzero(np.abs(error) <= self.cs_threshold))
    self._gaussian_score += float(np.exp(-np.square(error) / (2 * self.epsilon_sigma ** 2)).sum())

  def result(self) -> dict[str, float]:
    if self._count == 0:
      raise ValueError(f"{self.task}: no faces were evaluated")
    return {"mae": self._abs_error / self._count,
            f"cs{self.cs_threshold:g}": 100.0 * self._within / self._count,
            "epsilon_error": 1.0 - self._gaussian_score / self._count,
            "count": float(self._count)}
