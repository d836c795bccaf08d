"""Tests of faceptor_jax/evaluators/landmarks.py: NME normalisers, CED grid, FR, AUC, Simpson."""

import numpy as np
import pytest
from scipy import integrate

from faceptor_jax.evaluators import landmarks


def _face_300w():
  gt = np.random.default_rng(0).uniform(0, 100, (68, 2))
  gt[36:42] = np.c_[[0, 2, 4, 6, 4, 2], np.zeros(6)]       # left: pupil (3, 0), 36 at (0, 0)
  gt[42:48] = np.c_[[14, 16, 18, 20, 18, 16], np.zeros(6)]  # right: pupil (17, 0), 45 at (20, 0)
  return gt


def test_300w_known_nme_inter_ocular_and_inter_pupil():
  gt = _face_300w()
  pred = gt.copy()
  pred[0] += (3.0, 4.0)  # one point off by 5 px
  ev = landmarks.LandmarkEvaluator("align_300w")
  ev.update({"landmarks": pred[None]}, {"landmarks": gt[None]})
  result = ev.result()
  np.testing.assert_allclose(result["nme_inter_ocular"], 5 / 68 / 20)
  np.testing.assert_allclose(result["nme_inter_pupil"], 5 / 68 / 14)
  assert result["count"] == 1
  assert not any(key.startswith(("fr_", "auc_")) for key in result)  # 300W logs no CED


def test_nme_is_the_plain_mean_over_faces_and_batches_do_not_matter():
  rng = np.random.default_rng(1)
  gts = np.stack([_face_300w() for _ in range(5)])
  preds = gts + rng.normal(0, 1, gts.shape)
  whole = landmarks.LandmarkEvaluator("align_300w")
  whole.update({"landmarks": preds}, {"landmarks": gts})
  pieces = landmarks.LandmarkEvaluator("align_300w")
  pieces.update({"landmarks": preds[:2]}, {"landmarks": gts[:2]})
  pieces.update({"landmarks": preds[2:]}, {"landmarks": gts[2:]})
  per_face = [np.mean(np.linalg.norm(p - g, axis=-1)) / 20 for p, g in zip(preds, gts)]
  np.testing.assert_allclose(whole.result()["nme_inter_ocular"], np.mean(per_face))
  assert whole.result() == pieces.result()


def test_nme_invariant_to_translating_and_scaling_prediction_and_truth_together():
  rng = np.random.default_rng(2)
  gt = rng.uniform(0, 100, (3, 19, 2))
  pred = gt + rng.normal(0, 2, gt.shape)
  box = np.array([[10.0, 20.0, 90.0, 80.0]] * 3)
  a = landmarks.LandmarkEvaluator("align_aflw")
  a.update({"landmarks": pred}, {"landmarks": gt, "box": box})
  scale, shift = 2.5, np.array([-40.0, 13.0])
  b = landmarks.LandmarkEvaluator("align_aflw")
  b.update({"landmarks": pred * scale + shift},
           {"landmarks": gt * scale + shift, "box": box * scale + np.tile(shift, 2)})
  for key, value in a.result().items():
    np.testing.assert_allclose(b.result()[key], value, rtol=1e-9, err_msg=key)


def test_aflw_box_and_diag_normalisers():
  gt = np.zeros((1, 19, 2))
  gt[0, 6], gt[0, 11] = (0, 0), (30, 0)
  gt[0, 7], gt[0, 10] = (5, 0), (25, 0)
  pred = gt.copy()
  pred[0, :, 0] += 1.9  # every point off by 1.9 px
  box = np.array([[10.0, 10.0, 50.0, 100.0]])  # w 40, h 90
  ev = landmarks.LandmarkEvaluator("align_aflw")
  ev.update({"landmarks": pred}, {"landmarks": gt, "box": box})
  r = ev.result()
  np.testing.assert_allclose(r["nme_box"], 1.9 / 60)
  np.testing.assert_allclose(r["nme_diag"], 1.9 / np.sqrt(40 ** 2 + 90 ** 2))
  np.testing.assert_allclose(r["nme_inter_ocular"], 1.9 / 30)
  np.testing.assert_allclose(r["nme_inter_pupil"], 1.9 / 20)
  assert r["fr_box_7"] == 0.0 and "auc_box_7" in r


def test_wflw_and_cofw_indices():
  gt = np.zeros((1, 98, 2))
  gt[0, 60], gt[0, 72], gt[0, 96], gt[0, 97] = (0, 0), (0, 40), (0, 5), (0, 30)
  ev = landmarks.LandmarkEvaluator("align_wflw")
  ev.update({"landmarks": gt + (0.0, 2.0)}, {"landmarks": gt})
  r = ev.result()
  np.testing.assert_allclose([r["nme_inter_ocular"], r["nme_inter_pupil"]], [2 / 40, 2 / 25])
  assert {"fr_inter_ocular_10", "auc_inter_ocular_10"} <= set(r)
  gt = np.zeros((1, 29, 2))
  gt[0, 8], gt[0, 9] = (10, 10), (10, 60)
  ev = landmarks.LandmarkEvaluator("align_cofw")
  ev.update({"landmarks": gt + (1.0, 0.0)}, {"landmarks": gt})
  assert ev.result()["nme_inter_ocular"] == pytest.approx(1 / 50)


def test_ced_grid_overshoots_the_threshold():
  grid, ced, fr, _ = landmarks.ced_fr_auc([0.07005, 0.0702], 0.07)
  assert len(grid) == 702 and grid[-1] == pytest.approx(0.0701)
  assert fr == 0.5  # 0.07005 <= 0.0701 counts as a success "at 0.07"
  grid, _, _, _ = landmarks.ced_fr_auc([0.01], 0.1)
  assert len(grid) == 1001 and grid[-1] == pytest.approx(0.1)


@pytest.mark.parametrize("nmes, threshold, auc, fr", [
    # References from SciPy 1.10.1: simps(ced, x=grid) / T of the official evaluator.
    ([0.01, 0.03, 0.0405, 0.06, 0.07005, 0.09], 0.07, 0.333670634920635, 1 / 6),
    ([0.02, 0.05, 0.2], 0.1, 0.43355555555555547, 1 / 3),
    ([0.0123, 0.0456, 0.0789, 0.0999, 0.1], 0.1, 0.32713333333333333, 0.0),
])
def test_fr_auc_match_the_official_evaluator(nmes, threshold, auc, fr):
  _, _, got_fr, got_auc = landmarks.ced_fr_auc(nmes, threshold)
  assert got_auc == pytest.approx(auc, abs=1e-12)
  assert got_fr == pytest.approx(fr, abs=1e-12)


def test_fr_auc_through_the_evaluator():
  # AFLW faces with box NMEs 0.01 .. 0.09: the evaluator reports the same FR / AUC as the function.
  nmes = np.array([0.01, 0.03, 0.0405, 0.06, 0.07005, 0.09])
  gt = np.zeros((6, 19, 2))
  gt[:, 11, 0], gt[:, 10, 0] = 2.0, 1.0  # distinct eye points keep every normaliser positive
  pred = gt.copy()
  pred[:, :, 0] += nmes[:, None] * 100  # box side 100
  box = np.tile([0.0, 0.0, 100.0, 100.0], (6, 1))
  ev = landmarks.LandmarkEvaluator("align_aflw")
  ev.update({"landmarks": pred}, {"landmarks": gt, "box": box})
  r = ev.result()
  np.testing.assert_allclose(ev.per_face_nme("box"), nmes, rtol=1e-12)
  _, _, fr, auc = landmarks.ced_fr_auc(ev.per_face_nme("box"), 0.07)
  assert (r["fr_box_7"], r["auc_box_7"]) == (fr, auc)
  assert fr == pytest.approx(1 / 6) and auc == pytest.approx(0.3337, abs=5e-4)
  assert len(ev.tables()["ced_box_7"]) == 702


def test_simpson_odd_count_agrees_with_scipy():
  rng = np.random.default_rng(3)
  x = np.cumsum(rng.uniform(0.05, 0.5, 9))
  y = np.sin(3 * x) + x ** 2
  assert landmarks.simpson(y, x) == pytest.approx(integrate.simpson(y, x=x), rel=1e-12)


def test_simpson_even_count_is_the_scipy_1_10_average():
  x = np.cumsum([0.3, 0.1, 0.25, 0.4, 0.2, 0.15, 0.35, 0.05])
  y = np.sin(3 * x) + x ** 2
  assert landmarks.simpson(y, x) == pytest.approx(1.9291687670361415, rel=1e-12)  # SciPy 1.10.1
  # The same, built from the odd-count rule: the two one-sided rules, averaged.
  first = integrate.simpson(y[:-1], x=x[:-1]) + 0.5 * (x[-1] - x[-2]) * (y[-1] + y[-2])
  last = 0.5 * (x[1] - x[0]) * (y[0] + y[1]) + integrate.simpson(y[1:], x=x[1:])
  assert landmarks.simpson(y, x) == pytest.approx((first + last) / 2, rel=1e-12)


def test_bad_inputs_fail_clearly():
  ev = landmarks.LandmarkEvaluator("align_300w")
  gt = _face_300w()[None]
  with pytest.raises(ValueError, match=r"\[B, 68, 2\]"):
    ev.update({"landmarks": gt[:, :60]}, {"landmarks": gt[:, :60]})
  degenerate = gt.copy()
  degenerate[0, 45] = degenerate[0, 36]
  with pytest.raises(ValueError, match="inter_ocular normalising distance"):
    ev.update({"landmarks": degenerate}, {"landmarks": degenerate})
  with pytest.raises(KeyError, match="box"):
    landmarks.LandmarkEvaluator("align_aflw").update({"landmarks": np.zeros((1, 19, 2))},
                                                     {"landmarks": np.zeros((1, 19, 2))})
  with pytest.raises(ValueError, match="no faces"):
    landmarks.LandmarkEvaluator("align_wflw").result()
  with pytest.raises(KeyError, match="align_300w"):
    landmarks.LandmarkEvaluator("parsing_lapa")
