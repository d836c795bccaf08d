"""Face parsing metric: per-class F1 from one confusion matrix over the whole test set.

Official protocol (FaRL's F1Score, SPEC 3.1 / 3.1.1, DATASETS.md 17.4): predicted label maps at the
original label resolution; pixel counts H[gt, pred] summed over every image; per class
F1 = 2 H[c, c] / (sum of row c + sum of column c) = 2TP / (2TP + FP + FN); the reported mean is over
the foreground classes (all but background: 18 for CelebAMask-HQ, 10 for LaPa). A class absent from
both prediction and ground truth has F1 = NaN (0 / 0), and then so has the mean: reported as such.
F1 values are fractions (not %).
"""

from __future__ import annotations

import numpy as np

from faceptor_jax import tasks

BACKGROUND = "background"


def _as_maps(value):
  """An array [B, H, W(, C)] or a sequence of per-image arrays -> list of arrays."""
  if isinstance(value, (list, tuple)):
    return [np.asarray(v) for v in value]
  value = np.asarray(value)
  return list(value)


class ParsingEvaluator:
  """Dataset-level F1 of one parsing test split.

  `ParsingEvaluator(task)` with task parsing_celebam or parsing_lapa (class names from
  tasks.PARSING_CLASSES). Images may differ in size, so every key takes either one array with a
  batch axis or a list of per-image arrays.
  update(predictions, examples):
    predictions["label"]:  int [B, H, W] predicted label maps, or
    predictions["logits"]: float [B, H, W, C] logits/probabilities (argmax over C is taken),
      both already at the original label resolution;
    examples["label"]: int [B, H, W] ground-truth label maps, values in [0, C).
  result(): f1_fg_mean (mean over foreground classes), f1/<class> for every class, pixels.
  tables(): {"f1_per_class": rows {class, f1, gt_pixels, pred_pixels}}.
  """

  def __init__(self, task: str):
    if task not in tasks.PARSING_CLASSES:
      raise KeyError(f"no parsing classes for task {task!r}; "
                     f"known: {', '.join(tasks.PARSING_CLASSES)}")
    self.task = task
    self.class_names = tasks.PARSING_CLASSES[task]
    self.num_classes = len(self.class_names)
    self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)  # [gt, pred]

  def update(self, predictions, examples):
    if "label" in predictions:
      preds = _as_maps(predictions["label"])
    elif "logits" in predictions:
      preds = [np.argmax(logits, axis=-1) for logits in _as_maps(predictions["logits"])]
    else:
      raise KeyError(f"{self.task}: predictions need `label` [B, H, W] or `logits` [B, H, W, C]; "
                     f"got {sorted(predictions)}")
    gts = _as_maps(examples["label"])
    if len(preds) != len(gts):
      raise ValueError(f"{self.task}: {len(preds)} predictions for {len(gts)} label maps")
    for i, (pred, gt) in enumerate(zip(preds, gts)):
      if pred.shape != gt.shape or gt.ndim != 2:
        raise ValueError(f"{self.task}: image {i} of this batch: prediction {pred.shape} and label "
                         f"{gt.shape} must be the same [H, W] (map predictions back to the "
                         "original resolution first)")
      for what, labels in (("label", gt), ("prediction", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
          raise ValueError(f"{self.task}: image {i} of this batch has {what} values in "
                           f"[{labels.min()}, {labels.max()}], outside [0, {self.num_classes})")
      flat = gt.astype(np.int64).ravel() * self.num_classes + pred.astype(np.int64).ravel()
      self.confusion += np.bincount(flat, minlength=self.num_classes ** 2).reshape(
          self.num_classes, self.num_classes)

  def f1_per_class(self) -> np.ndarray:
    """F1 per class, NaN where a class is in neither prediction nor ground truth."""
    tp = np.diag(self.confusion).astype(np.float64)
    denominator = self.confusion.sum(0) + self.confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
      return 2.0 * tp / denominator

  def result(self) -> dict[str, float]:
    if self.confusion.sum() == 0:
      raise ValueError(f"{self.task}: no pixels were evaluated")
    f1 = self.f1_per_class()
    foreground = [i for i, name in enumerate(self.class_names) if name != BACKGROUND]
    metrics = {"f1_fg_mean": float(np.mean(f1[foreground]))}  # NaN propagates on purpose
    metrics.update({f"f1/{name}": float(v) for name, v in zip(self.class_names, f1)})
    metrics["pixels"] = float(self.confusion.sum())
    return metrics

  def tables(self) -> dict[str, list[dict]]:
    f1 = self.f1_per_class()
    gt_pixels, pred_pixels = self.confusion.sum(1), self.confusion.sum(0)
    return {"f1_per_class": [
        {"class": name, "f1": float(f1[i]), "gt_pixels": int(gt_pixels[i]),
         "pred_pixels": int(pred_pixels[i])} for i, name in enumerate(self.class_names)]}
