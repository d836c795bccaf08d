"""Tests of faceptor_jax/evaluators/verification.py: folds, threshold choice, pair order."""

import numpy as np
import pytest

from faceptor_jax.evaluators import verification


def _pairs_at_distance(dist):
  """Unit embeddings in 2-D whose squared distances are `dist` (dist = 2 - 2 cos)."""
  angle = np.arccos(1 - np.asarray(dist) / 2)
  a = np.c_[np.ones(len(angle)), np.zeros(len(angle))]
  b = np.c_[np.cos(angle), np.sin(angle)]
  return a, b


def _official_reference(dist, same, num_folds=10):
  """The official loop (insightface calculate_roc), thresholds one by one, sklearn folds."""
  model_selection = pytest.importorskip("sklearn.model_selection")
  thresholds = np.arange(0, 4, 0.01)
  accuracies = []
  for train, test in model_selection.KFold(n_splits=num_folds, shuffle=False).split(dist):
    train_acc = [np.mean((dist[train] < t) == same[train]) for t in thresholds]
    best = thresholds[np.argmax(train_acc)]
    accuracies.append(np.mean((dist[test] < best) == same[test]))
  return np.mean(accuracies), np.std(accuracies)


@pytest.mark.parametrize("n", [20, 23, 57])
def test_folds_are_sklearn_kfold_without_shuffle(n):
  model_selection = pytest.importorskip("sklearn.model_selection")
  ours = [np.arange(n)[s] for s in verification.kfold_slices(n, 10)]
  theirs = [test for _, test in model_selection.KFold(n_splits=10).split(np.arange(n))]
  assert all(np.array_equal(a, b) for a, b in zip(ours, theirs)) and len(ours) == 10


def test_known_best_threshold_is_the_smallest_of_the_ties():
  same = np.array([True, False] * 10)
  a, b = _pairs_at_distance(np.where(same, 0.503, 1.5))
  ev = verification.VerificationEvaluator()
  ev.update({"embedding_a": a, "embedding_b": b}, {"same": same})
  r = ev.result()
  assert r["accuracy"] == 100.0 and r["accuracy_std"] == 0.0
  assert r["threshold"] == pytest.approx(0.51)  # every threshold in (0.503, 1.5] ties


def test_same_is_strictly_below_the_threshold():
  accuracies, thresholds = verification.kfold_accuracy(np.array([0.2] * 10 + [0.3] * 10),
                                                       np.array([True] * 10 + [False] * 10))
  # A threshold of 0.2 would call the 0.2 pairs different: the chosen one is 0.21.
  assert np.all(accuracies == 1.0) and np.allclose(thresholds, 0.21)


def test_matches_the_official_loop_with_ties_and_uneven_folds():
  rng = np.random.default_rng(0)
  n = 57
  same = rng.random(n) < 0.5
  dist = np.round(np.where(same, rng.normal(0.9, 0.3, n), rng.normal(1.3, 0.3, n)), 2).clip(0, 4)
  a, b = _pairs_at_distance(dist)
  ev = verification.VerificationEvaluator()
  ev.update({"embedding_a": a[:30], "embedding_b": b[:30]}, {"same": same[:30]})
  ev.update({"embedding_a": a[30:], "embedding_b": b[30:]}, {"same": same[30:]})
  mean, std = _official_reference(ev.pairs()[0], same)
  assert ev.result()["accuracy"] == pytest.approx(100 * mean)
  assert ev.result()["accuracy_std"] == pytest.approx(100 * std)


def test_pair_index_restores_the_official_order():
  rng = np.random.default_rng(1)
  n = 40
  same = rng.random(n) < 0.5
  a = rng.normal(size=(n, 8))
  b = np.where(same[:, None], a + rng.normal(0, 0.6, (n, 8)), rng.normal(size=(n, 8)))
  ordered = verification.VerificationEvaluator()
  ordered.update({"embedding_a": a, "embedding_b": b}, {"same": same, "index": np.arange(n)})
  shuffled = verification.VerificationEvaluator()
  perm = rng.permutation(n)
  for part in np.array_split(perm, 3):
    # The scale of an embedding is normalised away.
    shuffled.update({"embedding_a": a[part] * 3.0, "embedding_b": b[part]},
                    {"same": same[part], "index": part})
  assert shuffled.result() == pytest.approx(ordered.result())


def test_fuse_flip_sums_and_normalisation_keeps_zero_rows():
  np.testing.assert_array_equal(verification.fuse_flip([[1.0, 2.0]], [[3.0, -1.0]]), [[4.0, 1.0]])
  np.testing.assert_array_equal(verification.l2_normalize([[0.0, 0.0], [3.0, 4.0]]),
                                [[0.0, 0.0], [0.6, 0.8]])


def test_bad_inputs_fail_clearly():
  ev = verification.VerificationEvaluator()
  with pytest.raises(ValueError, match="no pairs"):
    ev.result()
  with pytest.raises(ValueError, match=r"\[B, D\]"):
    ev.update({"embedding_a": np.zeros((2, 4)), "embedding_b": np.zeros((2, 3))},
              {"same": np.array([True, False])})
  ev.update({"embedding_a": np.ones((2, 4)), "embedding_b": np.ones((2, 4))},
            {"same": np.array([True, False]), "index": np.array([0, 1])})
  with pytest.raises(ValueError, match="index"):
    ev.update({"embedding_a": np.ones((1, 4)), "embedding_b": np.ones((1, 4))},
              {"same": np.array([True])})
  with pytest.raises(ValueError, match="folds"):
    ev.result()
