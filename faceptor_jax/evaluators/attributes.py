"""Binary attribute metrics: per-attribute accuracy and their mean, mAcc (DATASETS.md 17.7).

Prediction = sigmoid(logit) > 0.5 with the sigmoid in float32, which is the official
`round(sigmoid(logit))` (round half to even): a logit of exactly 0, or one so small that its float32
sigmoid is exactly 0.5, predicts 0. Labels -1 (unknown) are left out of that attribute's count.
Accuracies in %; mAcc is the unweighted mean over attributes.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from faceptor_jax import tasks


class AttributeEvaluator:
  """Per-attribute accuracy of one attribute test split.

  `AttributeEvaluator(task, names=None)`: names default to the task's
  (tasks.attribute_names: the dataset's, else attr_<i>).
  update(predictions, examples):
    predictions["logits"]:  float [B, A];
    examples["attributes"]: int [B, A] in {0, 1, -1 = unknown}.
  result(): mean_accuracy (mAcc, %), accuracy/<name> for each attribute (%; NaN if an attribute
    had no known label), count.
  tables(): {"accuracy_per_attribute": rows {attribute, accuracy, known}}.
  """

  def __init__(self, task: str = "biattr_celeba", names=None):
    self.task = task
    self.num_attributes = tasks.get(task).num_outputs
    if names is None:
      names = tasks.attribute_names(task)
    if len(names) != self.num_attributes:
      raise ValueError(f"{self.task}: {len(names)} names for {self.num_attributes} attributes")
    self.names = tuple(names)
    self._correct = np.zeros(self.num_attributes, np.int64)
    self._known = np.zeros(self.num_attributes, np.int64)
    self._count = 0

  def update(self, predictions, examples):
    logits = np.asarray(predictions["logits"], np.float32)
    labels = np.asarray(examples["attributes"]).astype(np.int64)
    if logits.shape != labels.shape or logits.ndim != 2 or logits.shape[1] != self.num_attributes:
      raise ValueError(f"{self.task}: logits {logits.shape} and attributes {labels.shape} must "
                       f"both be [B, {self.num_attributes}]")
    if not np.isin(labels, (-1, 0, 1)).all():
      raise ValueError(f"{self.task}: attribute labels must be 0, 1 or -1 (unknown); got "
                       f"{sorted(set(np.unique(labels)) - {-1, 0, 1})}")
    predicted = (special.expit(logits) > np.float32(0.5)).astype(np.int64)
    known = labels != -1
    self._correct += np.sum((predicted == labels) & known, axis=0)
    self._known += np.sum(known, axis=0)
    self._count += len(labels)

  def accuracies(self) -> np.ndarray:
    """Accuracy per attribute in %, NaN where no label was known."""
    with np.errstate(invalid="ignore", divide="ignore"):
      return 100.0 * self._correct / self._known

  def result(self) -> dict[str, float]:
    if self._count == 0:
      raise ValueError(f"{self.task}: no faces were evaluated")
    acc = self.accuracies()
    metrics = {"mean_accuracy": float(np.mean(acc))}
    metrics.update({f"accuracy/{name}": float(v) for name, v in zip(self.names, acc)})
    metrics["count"] = float(self._count)
    return metrics

  def tables(self) -> dict[str, list[dict]]:
    acc = self.accuracies()
    return {"accuracy_per_attribute": [
        {"attribute": name, "accuracy": float(acc[i]), "known": int(self._known[i])}
        for i, name in enumerate(self.names)]}
