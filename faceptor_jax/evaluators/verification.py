"""Face verification accuracy on LFW-style pair lists, 10-fold (DATASETS.md 17.1, SPEC 3.1.1).

Official protocol (insightface's verification code, used by Faceptor):
  * each image's embedding is the sum of the embeddings of the image and of its horizontal flip
    (`fuse_flip`), then L2-normalised (a zero vector stays zero, as sklearn's normalize);
  * distance = squared L2 between the two normalised embeddings of a pair, in [0, 4];
  * thresholds np.arange(0, 4, 0.01); a pair is "same" iff dist < threshold (strict);
  * 10 contiguous folds over the pair order, as KFold(10, shuffle=False): the first n % 10 folds
    hold one pair more; per fold, the threshold with the best accuracy on the other nine folds
    (argmax: ties go to the smallest threshold) is applied to the held-out fold;
  * reported: mean and (population) std of the 10 fold accuracies, here in %.
Only one distance per pair is kept, so a test set never has to fit in memory.
"""

from __future__ import annotations

import numpy as np

THRESHOLDS = np.arange(0, 4, 0.01)


def fuse_flip(embedding, flipped_embedding) -> np.ndarray:
  """Flip test-time augmentation: embedding(image) + embedding(mirrored image), unnormalised."""
  return np.asarray(embedding, np.float64) + np.asarray(flipped_embedding, np.float64)


def l2_normalize(x) -> np.ndarray:
  """Rows divided by their L2 norm; zero rows stay zero (sklearn.preprocessing.normalize)."""
  x = np.asarray(x, np.float64)
  norm = np.linalg.norm(x, axis=-1, keepdims=True)
  return x / np.where(norm == 0, 1.0, norm)


def kfold_slices(n: int, num_folds: int) -> list[slice]:
  """Contiguous folds as sklearn's KFold(shuffle=False): the first n % k folds one larger."""
  if n < num_folds:
    raise ValueError(f"{n} pairs cannot make {num_folds} folds")
  sizes = np.full(num_folds, n // num_folds)
  sizes[:n % num_folds] += 1
  stops = np.cumsum(sizes)
  return [slice(int(stop - size), int(stop)) for size, stop in zip(sizes, stops)]


def _correct_per_threshold(dist, same, thresholds):
  """Correct decisions [T] of "same iff dist < threshold", for every threshold, by sorting."""
  same_sorted = np.sort(dist[same])
  diff_sorted = np.sort(dist[~same])
  true_accepts = np.searchsorted(same_sorted, thresholds, side="left")   # same and dist < t
  false_accepts = np.searchsorted(diff_sorted, thresholds, side="left")  # different and dist < t
  return true_accepts + (len(diff_sorted) - false_accepts)


def kfold_accuracy(dist, same, num_folds: int = 10, thresholds=THRESHOLDS):
  """(fold accuracies [k] as fractions, chosen thresholds [k]) for pairs in their official order."""
  dist = np.asarray(dist, np.float64)
  same = np.asarray(same, bool)
  accuracies, chosen = [], []
  for fold in kfold_slices(len(dist), num_folds):
    train = np.ones(len(dist), bool)
    train[fold] = False
    best = thresholds[int(np.argmax(_correct_per_threshold(dist[train], same[train], thresholds)))]
    predicted = dist[fold] < best
    accuracies.append(np.mean(predicted == same[fold]))
    chosen.append(best)
  return np.asarray(accuracies), np.asarray(chosen)


class VerificationEvaluator:
  """10-fold verification accuracy of one pair list (lfw, cfp_fp, agedb_30, calfw, cplfw, ...).

  `VerificationEvaluator(task='recog_ms1mv3', num_folds=10)`.
  update(predictions, examples):
    predictions["embedding_a"], predictions["embedding_b"]: float [B, D], the flip-fused
      (`fuse_flip`) embeddings of the two images of each pair, unnormalised;
    examples["same"]:  bool [B];
    examples["index"]: int [B], optional: the pair's position in the official list. With it the
      pairs are put back in that order (the folds depend on it); without it, arrival order is used.
  result(): accuracy (%), accuracy_std (%), threshold (mean chosen threshold), count.
  """

  def __init__(self, task: str = "recog_ms1mv3", num_folds: int = 10):
    self.task = task
    self.num_folds = num_folds
    self._dist, self._same, self._index = [], [], []

  def update(self, predictions, examples):
    a = l2_normalize(predictions["embedding_a"])
    b = l2_normalize(predictions["embedding_b"])
    same = np.asarray(examples["same"]).reshape(-1).astype(bool)
    if a.shape != b.shape or a.ndim != 2 or len(a) != len(same):
      raise ValueError(f"{self.task}: embedding_a {a.shape}, embedding_b {b.shape} and same "
                       f"{same.shape} must be [B, D], [B, D] and [B]")
    has_index = "index" in examples
    if self._dist and has_index != (self._index[0] is not None):
      raise ValueError(f"{self.task}: either every batch gives `index` or none does")
    self._dist.append(np.sum(np.square(a - b), axis=-1))
    self._same.append(same)
    self._index.append(np.asarray(examples["index"]).reshape(-1) if has_index else None)

  def pairs(self):
    """(distances, same) of all pairs so far, in the official order."""
    dist, same = np.concatenate(self._dist), np.concatenate(self._same)
    if self._index[0] is not None:
      index = np.concatenate(self._index)
      if len(np.unique(index)) != len(index):
        raise ValueError(f"{self.task}: a pair index appears twice")
      order = np.argsort(index, kind="stable")
      dist, same = dist[order], same[order]
    return dist, same

  def result(self) -> dict[str, float]:
    if not self._dist:
      raise ValueError(f"{self.task}: no pairs were evaluated")
    dist, same = self.pairs()
    accuracies, thresholds = kfold_accuracy(dist, same, self.num_folds)
    return {"accuracy": float(100.0 * accuracies.mean()),
            "accuracy_std": float(100.0 * accuracies.std()),
            "threshold": float(thresholds.mean()),
            "count": float(len(dist))}
