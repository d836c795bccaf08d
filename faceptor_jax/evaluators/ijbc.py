"""IJB-C 1:1 verification: TAR at fixed FAR over template pairs (DATASETS.md 17.2, SPEC 3.1.1).

Protocol of insightface's `eval_ijbc.py` (the lineage SwinFace and Faceptor point to):
  * image feature = flip-fused embedding (`verification.fuse_flip`, NOT normalised: "norm score"
    mode) times the image's faceness score ("detector score" mode);
  * template feature: average the image features within each media (a video or one photo), sum the
    media averages, L2-normalise (a zero vector stays zero);
  * pair score = cosine = dot product of the two normalised template features;
  * ROC as scikit-learn's `roc_curve(labels, scores)` with drop_intermediate=True (reimplemented
    here in numpy: `roc_curve`); TAR at each target FAR = the TPR at the ROC point whose FPR is
    nearest the target, after reversing the ROC arrays, so ties pick the largest TPR. The chosen
    FPR can lie above the target.
Memory: one running sum per (template, media), never one row per image.
"""

from __future__ import annotations

import numpy as np

from faceptor_jax.evaluators import verification

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def roc_curve(labels, scores):
  """(fpr, tpr, thresholds) exactly as sklearn.metrics.roc_curve(labels, scores) (pos_label 1,
  drop_intermediate=True, thresholds[0] = inf)."""
  labels = np.asarray(labels).reshape(-1) == 1
  scores = np.asarray(scores, np.float64).reshape(-1)
  if labels.all() or not labels.any():
    raise ValueError("the ROC needs both genuine and impostor pairs")
  order = np.argsort(scores, kind="mergesort")[::-1]
  scores, labels = scores[order], labels[order]
  # The last position of every run of equal scores is one ROC point.
  ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
  tps = np.cumsum(labels, dtype=np.float64)[ends]
  fps = 1.0 + ends - tps
  thresholds = scores[ends]
  if len(fps) > 2:  # drop points on straight segments (collinear with both neighbours)
    keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
    fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
  fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
  thresholds = np.r_[np.inf, thresholds]
  return fps / fps[-1], tps / tps[-1], thresholds


def tar_at_far(fpr, tpr, far_target: float):
  """(tar, index into the reversed arrays) at the ROC point whose FPR is nearest `far_target`."""
  fpr_rev, tpr_rev = fpr[::-1], tpr[::-1]
  index = int(np.argmin(np.abs(fpr_rev - far_target)))  # first minimum = largest TPR on ties
  return float(tpr_rev[index]), index


class IJBCEvaluator:
  """TAR@FAR of IJB-C (or any template-pair protocol in the insightface layout).

  `IJBCEvaluator(task, pairs, far_targets=FAR_TARGETS)` with `pairs` a mapping of equal-length
  arrays `template_a`, `template_b`, `label` (1 = same identity), i.e. the `pairs` split.
  update(predictions, examples):
    predictions["embedding"]: float [B, D], flip-fused (`verification.fuse_flip`), unnormalised;
    examples["template"]: int [B]; examples["media"]: int [B]; examples["score"]: float [B]
      (faceness score).
  result(): tar_at_far_<far> in % for every target (e.g. tar_at_far_1e-04), count (images).
  tables(): {"tar_at_far": rows {far, tar, fpr (of the chosen ROC point), threshold}}.
  """

  def __init__(self, task: str = "recog_ms1mv3", pairs=None, far_targets=FAR_TARGETS,
               chunk_size: int = 1 << 20):
    if pairs is None:
      raise ValueError("IJBCEvaluator needs `pairs`: template_a, template_b, label arrays")
    self.task = task
    self.template_a = np.asarray(pairs["template_a"]).reshape(-1).astype(np.int64)
    self.template_b = np.asarray(pairs["template_b"]).reshape(-1).astype(np.int64)
    self.label = np.asarray(pairs["label"]).reshape(-1).astype(np.int64)
    if not len(self.template_a) == len(self.template_b) == len(self.label):
      raise ValueError("pairs: template_a, template_b and label must have the same length")
    self.far_targets = tuple(far_targets)
    self.chunk_size = chunk_size
    self._rows: dict[tuple[int, int], int] = {}  # (template, media) -> row of the sums
    self._sums = None                              # [capacity, D] score-weighted feature sums
    self._counts = np.zeros(0, np.int64)           # images per row
    self._images = 0
    self._points = None                            # (images, operating points) cache

  def _row_ids(self, templates, medias):
    rows = np.empty(len(templates), np.int64)
    for i, key in enumerate(zip(templates.tolist(), medias.tolist())):
      rows[i] = self._rows.setdefault(key, len(self._rows))
    return rows

  def update(self, predictions, examples):
    features = np.asarray(predictions["embedding"], np.float64)
    templates = np.asarray(examples["template"]).reshape(-1).astype(np.int64)
    medias = np.asarray(examples["media"]).reshape(-1).astype(np.int64)
    scores = np.asarray(examples["score"], np.float64).reshape(-1)
    if features.ndim != 2 or not len(features) == len(templates) == len(medias) == len(scores):
      raise ValueError(f"{self.task}: embedding {features.shape}, template {templates.shape}, "
                       f"media {medias.shape} and score {scores.shape} must be [B, D], [B], [B], "
                       "[B]")
    if self._sums is None:
      self._sums = np.zeros((0, features.shape[1]))
    if features.shape[1] != self._sums.shape[1]:
      raise ValueError(f"{self.task}: embedding width {features.shape[1]} changed from "
                       f"{self._sums.shape[1]}")
    rows = self._row_ids(templates, medias)
    if len(self._rows) > len(self._sums):  # grow the running sums geometrically
      grown = np.zeros((max(len(self._rows), 2 * len(self._sums)), features.shape[1]))
      grown[:len(self._sums)] = self._sums
      counts = np.zeros(len(grown), np.int64)
      counts[:len(self._counts)] = self._counts
      self._sums, self._counts = grown, counts
    np.add.at(self._sums, rows, features * scores[:, None])
    np.add.at(self._counts, rows, 1)
    self._images += len(rows)

  def template_features(self):
    """(template ids sorted [T], L2-normalised template features [T, D])."""
    keys = np.array(list(self._rows), np.int64).reshape(-1, 2)
    n = len(keys)
    media_means = self._sums[:n] / self._counts[:n, None]
    template_ids, which = np.unique(keys[:, 0], return_inverse=True)
    features = np.zeros((len(template_ids), self._sums.shape[1]))
    np.add.at(features, which, media_means)
    return template_ids, verification.l2_normalize(features)

  def pair_scores(self) -> np.ndarray:
    """Cosine score of every pair, computed in chunks."""
    template_ids, features = self.template_features()
    index_a = np.searchsorted(template_ids, self.template_a)
    index_b = np.searchsorted(template_ids, self.template_b)
    for name, ids, index in (("template_a", self.template_a, index_a),
                             ("template_b", self.template_b, index_b)):
      clipped = np.minimum(index, len(template_ids) - 1)
      found = (index < len(template_ids)) & (template_ids[clipped] == ids)
      if not found.all():
        missing = np.unique(ids[~found])
        raise ValueError(f"{self.task}: {len(missing)} {name} id(s) of the pairs have no image "
                         f"features, e.g. {missing[:5].tolist()}")
    scores = np.empty(len(self.label))
    for start in range(0, len(scores), self.chunk_size):
      part = slice(start, start + self.chunk_size)
      scores[part] = np.sum(features[index_a[part]] * features[index_b[part]], axis=-1)
    return scores

  def _operating_points(self):
    if self._images == 0:
      raise ValueError(f"{self.task}: no images were evaluated")
    if self._points is not None and self._points[0] == self._images:
      return self._points[1]
    fpr, tpr, thresholds = roc_curve(self.label, self.pair_scores())
    rows = []
    for far in self.far_targets:
      tar, index = tar_at_far(fpr, tpr, far)
      rows.append({"far": far, "tar": 100.0 * tar, "fpr": float(fpr[::-1][index]),
                   "threshold": float(thresholds[::-1][index])})
    self._points = (self._images, rows)
    return rows

  def result(self) -> dict[str, float]:
    metrics = {f"tar_at_far_{row['far']:.0e}": row["tar"] for row in self._operating_points()}
    metrics["count"] = float(self._images)
    return metrics

  def tables(self) -> dict[str, list[dict]]:
    return {"tar_at_far": self._operating_points()}
