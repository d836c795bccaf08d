"""Tests of faceptor_jax/evaluators/ijbc.py: ROC, TAR@FAR point choice, template aggregation."""

import numpy as np
import pytest

from faceptor_jax.evaluators import ijbc


def test_roc_curve_equals_sklearn_with_ties():
  metrics = pytest.importorskip("sklearn.metrics")
  rng = np.random.default_rng(0)
  labels = (rng.random(300) < 0.3).astype(int)
  scores = np.round(rng.normal(labels * 1.0, 1.0), 1)  # rounded: many tied scores
  fpr, tpr, thresholds = ijbc.roc_curve(labels, scores)
  ref_fpr, ref_tpr, ref_thresholds = metrics.roc_curve(labels, scores)
  np.testing.assert_array_equal(fpr, ref_fpr)
  np.testing.assert_array_equal(tpr, ref_tpr)
  np.testing.assert_array_equal(thresholds, ref_thresholds)


def test_tar_at_far_picks_the_nearest_fpr_and_the_largest_tpr_on_ties():
  fpr = np.array([0.0, 0.0, 0.0012, 0.5, 1.0])
  tpr = np.array([0.0, 0.4, 0.6, 0.9, 1.0])
  assert ijbc.tar_at_far(fpr, tpr, 1e-5)[0] == 0.4   # FPR 0 twice: the larger TPR
  assert ijbc.tar_at_far(fpr, tpr, 1e-3)[0] == 0.6   # 0.0012 is nearer than 0: above the target
  assert ijbc.tar_at_far(fpr, tpr, 0.3)[0] == 0.9


def test_template_is_the_sum_of_media_means_scaled_by_faceness():
  f = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 2.0]), 3: np.array([3.0, 1.0]),
       4: np.array([1.0, 1.0])}
  score = {1: 1.0, 2: 0.5, 3: 2.0, 4: 0.9}
  # Template 7: media 10 = images 1, 2; media 11 = image 3. Template 8: image 4.
  template_7 = (score[1] * f[1] + score[2] * f[2]) / 2 + score[3] * f[3]   # (6.5, 2.5)
  expected = template_7 @ f[4] / np.linalg.norm(template_7) / np.linalg.norm(f[4])
  ev = ijbc.IJBCEvaluator("recog_ms1mv3", {"template_a": [7, 7], "template_b": [8, 7],
                                           "label": [0, 1]})
  for images in ([1, 4], [3, 2]):
    ev.update({"embedding": np.stack([f[i] for i in images])},
              {"template": np.array([7 if i < 4 else 8 for i in images]),
               "media": np.array([{1: 10, 2: 10, 3: 11, 4: 12}[i] for i in images]),
               "score": np.array([score[i] for i in images])})
  np.testing.assert_allclose(ev.pair_scores(), [expected, 1.0])
  assert ev.result()["count"] == 4


def _insightface_reference(features, templates, medias, faceness, pairs, far):
  """The insightface eval_ijbc.py computation, written plainly, with sklearn's ROC."""
  metrics = pytest.importorskip("sklearn.metrics")
  feats = features * faceness[:, None]
  template_feats = {}
  for t in np.unique(templates):
    in_t = templates == t
    media_means = [feats[in_t & (medias == m)].mean(0) for m in np.unique(medias[in_t])]
    total = np.sum(media_means, axis=0)
    template_feats[t] = total / np.linalg.norm(total)
  scores = np.array([template_feats[a] @ template_feats[b]
                     for a, b in zip(pairs["template_a"], pairs["template_b"])])
  fpr, tpr, _ = metrics.roc_curve(pairs["label"], scores)
  fpr, tpr = np.flipud(fpr), np.flipud(tpr)
  _, index = min(zip(abs(fpr - far), range(len(fpr))))
  return 100 * tpr[index]


def test_tar_at_far_matches_the_insightface_computation():
  rng = np.random.default_rng(1)
  num_images, num_templates = 120, 30
  identity = rng.integers(0, 10, num_templates)
  templates = rng.permutation(np.r_[np.arange(num_templates), rng.integers(0, num_templates, 90)])
  medias = templates * 10 + rng.integers(0, 3, num_images)
  centres = rng.normal(size=(10, 16))
  features = centres[identity[templates]] + rng.normal(0, 1.5, (num_images, 16))
  faceness = rng.uniform(0.5, 1.0, num_images)
  a, b = np.triu_indices(num_templates, 1)
  pairs = {"template_a": a, "template_b": b, "label": (identity[a] == identity[b]).astype(int)}
  ev = ijbc.IJBCEvaluator("recog_ms1mv3", pairs, far_targets=(1e-3, 1e-2, 1e-1), chunk_size=100)
  for part in np.array_split(np.arange(num_images), 4):
    ev.update({"embedding": features[part]},
              {"template": templates[part], "media": medias[part], "score": faceness[part]})
  result = ev.result()
  assert set(result) == {"tar_at_far_1e-03", "tar_at_far_1e-02", "tar_at_far_1e-01", "count"}
  for far in (1e-3, 1e-2, 1e-1):
    key = f"tar_at_far_{far:.0e}"
    reference = _insightface_reference(features, templates, medias, faceness, pairs, far)
    assert result[key] == pytest.approx(reference), key
  rows = ev.tables()["tar_at_far"]
  assert [row["far"] for row in rows] == [1e-3, 1e-2, 1e-1]


def test_bad_inputs_fail_clearly():
  with pytest.raises(ValueError, match="pairs"):
    ijbc.IJBCEvaluator("recog_ms1mv3")
  ev = ijbc.IJBCEvaluator("recog_ms1mv3", {"template_a": [1], "template_b": [2], "label": [1]})
  with pytest.raises(ValueError, match="no images"):
    ev.result()
  ev.update({"embedding": np.ones((1, 4))}, {"template": [1], "media": [1], "score": [1.0]})
  with pytest.raises(ValueError, match="template_b id"):
    ev.pair_scores()
  with pytest.raises(ValueError, match="width"):
    ev.update({"embedding": np.ones((1, 5))}, {"template": [2], "media": [2], "score": [1.0]})
  with pytest.raises(ValueError, match="genuine and impostor"):
    ijbc.roc_curve([1, 1], [0.2, 0.3])
