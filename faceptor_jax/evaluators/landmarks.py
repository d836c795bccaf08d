"""Landmark metrics: NME under each dataset's normalisers, and the CED's failure rate and AUC.

The official protocol (FaRL's evaluator, SPEC 3.1 and 3.1.1, DATASETS.md 16 and 17.3):
  * per face: nme = mean over points of ||pred - gt|| / d, in original image pixels; the dataset
    NME is the plain mean over faces;
  * d by dataset: inter-ocular (outer eye corners) and inter-pupil from the ground-truth points,
    or from the AFLW-19 box: `box` = sqrt(w * h), `diag` = sqrt(w^2 + h^2);
  * CED on the grid `np.arange(0, T + 1e-4, 1e-4)` (which overshoots T: 702 points ending at
    0.0701 for T = 0.07, 1001 ending at 0.1 for T = 0.1); FR = 1 - CED(last grid point);
    AUC = Simpson's rule of the CED as SciPy <= 1.10 `simps(even='avg')` computed it, divided by T.
NME, FR and AUC are reported as fractions (not %). One evaluator instance per test split.
"""

from __future__ import annotations

import numpy as np

from faceptor_jax import tasks

BOX, DIAG = "box", "diag"

# Normaliser name -> (left point ids, right point ids), or BOX / DIAG (0-based, DATASETS.md 16).
NORMALISERS = {
    "align_300w": {"inter_ocular": ((36,), (45,)),
                   "inter_pupil": (tuple(range(36, 42)), tuple(range(42, 48)))},
    "align_wflw": {"inter_ocular": ((60,), (72,)), "inter_pupil": ((96,), (97,))},
    "align_cofw": {"inter_ocular": ((8,), (9,))},
    "align_aflw": {"inter_ocular": ((6,), (11,)), "inter_pupil": ((7,), (10,)), "box": BOX,
                   "diag": DIAG},
}
# The CED curves each dataset reports: (normaliser, threshold T).
CED_CURVES = {
    "align_300w": (),
    "align_wflw": (("inter_ocular", 0.1),),
    "align_cofw": (("inter_ocular", 0.1),),
    "align_aflw": (("box", 0.07),),
}
CED_STEP = 1e-4


def simpson(y, x):
  """Simpson's rule over samples y(x) exactly as SciPy <= 1.10 `simps(y, x, even='avg')`.

  An odd number of points uses the composite rule for uneven spacing; an even number averages
  (composite rule on the first N-1 points + trapezoid on the last interval) and (trapezoid on the
  first interval + composite rule on the last N-1 points). SciPy 1.11 changed the even case.
  """
  y = np.asarray(y, np.float64)
  x = np.asarray(x, np.float64)
  n = len(y)
  if n != len(x) or n < 2:
    raise ValueError(f"simpson needs matching x and y with at least 2 points, got {len(x)} and {n}")

  def composite(start, stop):  # the rule over points start..stop (stop - start even)
    h = np.diff(x[start:stop + 1])
    h0, h1 = h[0::2], h[1::2]
    y0, y1, y2 = y[start:stop - 1:2], y[start + 1:stop:2], y[start + 2:stop + 1:2]
    hsum, hprod, ratio = h0 + h1, h0 * h1, h0 / h1
    return np.sum(hsum / 6.0 * (y0 * (2.0 - 1.0 / ratio) + y1 * hsum * hsum / hprod
                                + y2 * (2.0 - ratio)))

  if n % 2 == 1:
    return float(composite(0, n - 1))
  if n == 2:
    return float(0.5 * (x[1] - x[0]) * (y[0] + y[1]))
  first = composite(0, n - 2) + 0.5 * (x[-1] - x[-2]) * (y[-1] + y[-2])
  last = 0.5 * (x[1] - x[0]) * (y[0] + y[1]) + composite(1, n - 1)
  return float((first + last) / 2.0)


def ced_fr_auc(nmes, threshold: float, step: float = CED_STEP):
  """(grid, ced, fr, auc) of per-face NMEs, on the official overshooting grid."""
  nmes = np.sort(np.asarray(nmes, np.float64))
  grid = np.arange(0.0, threshold + step, step)
  ced = np.searchsorted(nmes, grid, side="right") / len(nmes)  # fraction with nme <= x
  return grid, ced, float(1.0 - ced[-1]), simpson(ced, grid) / threshold


def _unit_distances(normaliser, landmarks, boxes):
  """Per-face normalising distance [B] from ground-truth landmarks [B, K, 2] or boxes [B, 4]."""
  if normaliser in (BOX, DIAG):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.sqrt(w * h) if normaliser == BOX else np.sqrt(w * w + h * h)
  left, right = normaliser
  left_centre = landmarks[:, list(left)].mean(1)
  right_centre = landmarks[:, list(right)].mean(1)
  return np.linalg.norm(left_centre - right_centre, axis=-1)


class LandmarkEvaluator:
  """NME / FR / AUC of one landmark test split.

  `LandmarkEvaluator(task)` with task one of align_300w, align_wflw, align_cofw, align_aflw.
  update(predictions, examples):
    predictions["landmarks"]: float [B, K, 2] (x, y) in ORIGINAL image pixels;
    examples["landmarks"]:    float [B, K, 2] ground truth in original image pixels;
    examples["box"]:          float [B, 4] (x0, y0, x1, y1), read only by align_aflw (box/diag).
  result(): nme_<normaliser> for each normaliser of the dataset (300W, WFLW: inter_ocular,
    inter_pupil; COFW: inter_ocular; AFLW-19: inter_ocular, inter_pupil, box, diag), plus
    fr_inter_ocular_10 / auc_inter_ocular_10 (WFLW, COFW) or fr_box_7 / auc_box_7 (AFLW-19),
    and `count` (faces).
  """

  def __init__(self, task: str, step: float = CED_STEP):
    if task not in NORMALISERS:
      raise KeyError(f"no landmark protocol for task {task!r}; known: {', '.join(NORMALISERS)}")
    self.task = task
    self.num_points = tasks.get(task).num_outputs
    self.normalisers = NORMALISERS[task]
    self.curves = CED_CURVES[task]
    self.step = step
    self._nmes = {name: [] for name in self.normalisers}

  def update(self, predictions, examples):
    pred = np.asarray(predictions["landmarks"], np.float64)
    gt = np.asarray(examples["landmarks"], np.float64)
    expected = (gt.shape[0], self.num_points, 2)
    if gt.shape != expected or pred.shape != expected:
      raise ValueError(f"{self.task}: landmarks must be [B, {self.num_points}, 2]; got predictions "
                       f"{pred.shape} and ground truth {gt.shape}")
    boxes = None
    if any(n in (BOX, DIAG) for n in self.normalisers.values()):
      if "box" not in examples:
        raise KeyError(f"{self.task}: examples need `box` [B, 4] (x0, y0, x1, y1) for the box NME")
      boxes = np.asarray(examples["box"], np.float64).reshape(len(gt), 4)
    errors = np.linalg.norm(pred - gt, axis=-1)  # [B, K]
    for name, normaliser in self.normalisers.items():
      unit = _unit_distances(normaliser, gt, boxes)
      bad = np.flatnonzero(~(unit > 0))
      if bad.size:
        raise ValueError(f"{self.task}: the {name} normalising distance is {unit[bad[0]]} for face "
                         f"{bad[0]} of this batch; the ground truth is degenerate")
      self._nmes[name].extend((errors / unit[:, None]).mean(axis=1).tolist())

  def per_face_nme(self, normaliser: str) -> np.ndarray:
    """The per-face NMEs under one normaliser, in arrival order."""
    return np.asarray(self._nmes[normaliser], np.float64)

  def result(self) -> dict[str, float]:
    count = len(next(iter(self._nmes.values())))
    if count == 0:
      raise ValueError(f"{self.task}: no faces were evaluated")
    metrics = {f"nme_{name}": float(np.mean(values)) for name, values in self._nmes.items()}
    for name, threshold in self.curves:
      _, _, fr, auc = ced_fr_auc(self._nmes[name], threshold, self.step)
      suffix = f"{name}_{round(threshold * 100)}"
      metrics[f"fr_{suffix}"] = fr
      metrics[f"auc_{suffix}"] = auc
    metrics["count"] = float(count)
    return metrics

  def tables(self) -> dict[str, list[dict]]:
    """The CED curves: rows {threshold, fraction} on the official grid."""
    out = {}
    for name, threshold in self.curves:
      grid, ced, _, _ = ced_fr_auc(self._nmes[name], threshold, self.step)
      out[f"ced_{name}_{round(threshold * 100)}"] = [
          {"threshold": float(x), "fraction": float(c)} for x, c in zip(grid, ced)]
    return out
