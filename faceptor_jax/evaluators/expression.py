"""Expression metrics: overall top-1 accuracy and the confusion matrix (DATASETS.md 17.6).

The reported number is the overall accuracy (not class-averaged), in %; the mean per-class
accuracy is given alongside because RAF-DB papers often quote it. Classes follow the model's
AffectNet order (tasks.EXPRESSION_CLASSES).
"""

from __future__ import annotations

import numpy as np

from faceptor_jax import tasks


class ExpressionEvaluator:
  """Top-1 accuracy of one expression test split.

  `ExpressionEvaluator(task)` (affect_rafdb, affect_ferplus, affect_affectnet).
  update(predictions, examples):
    predictions["logits"]: float [B, C] (C = 7; argmax, the first maximum on ties);
    examples["label"]:     int [B] in [0, C), AffectNet order.
  result(): accuracy (%), mean_class_accuracy (%; NaN if a class never occurs), count.
  tables(): {"confusion": rows {"true": class, <predicted class>: count, ...}}.
  """

  def __init__(self, task: str = "affect_rafdb"):
    self.task = task
    self.num_classes = tasks.get(task).num_outputs
    self.class_names = tasks.EXPRESSION_CLASSES[:self.num_classes]
    self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)  # [true, predicted]

  def update(self, predictions, examples):
    logits = np.asarray(predictions["logits"])
    labels = np.asarray(examples["label"]).reshape(-1).astype(np.int64)
    if logits.ndim != 2 or logits.shape != (len(labels), self.num_classes):
      raise ValueError(f"{self.task}: logits must be [B, {self.num_classes}] for {len(labels)} "
                       f"labels; got {logits.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
      raise ValueError(f"{self.task}: labels in [{labels.min()}, {labels.max()}], outside "
                       f"[0, {self.num_classes})")
    np.add.at(self.confusion, (labels, np.argmax(logits, axis=-1)), 1)

  def result(self) -> dict[str, float]:
    count = int(self.confusion.sum())
    if count == 0:
      raise ValueError(f"{self.task}: no faces were evaluated")
    per_class_total = self.confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
      per_class = np.diag(self.confusion) / per_class_total
    return {"accuracy": 100.0 * np.trace(self.confusion) / count,
            "mean_class_accuracy": float(100.0 * np.mean(per_class)),
            "count": float(count)}

  def tables(self) -> dict[str, list[dict]]:
    rows = []
    for i, name in enumerate(self.class_names):
      row = {"true": name}
      row.update({pred: int(self.confusion[i, j]) for j, pred in enumerate(self.class_names)})
      rows.append(row)
    return {"confusion": rows}
