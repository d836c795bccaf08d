"""The evaluation runner on the tiny synthetic datasets: every benchmark kind end to end (the
evaluation transform, the forward, the mapping back to original coordinates, the evaluator) and
the trivial baselines."""

import numpy as np
import pytest
from flax import nnx

from configs import common, tiny
from faceptor_jax import evaluate, models

BENCHMARKS = ("lfw", "morph2", "celeba", "rafdb", "celebamask_hq", "300w_common")


@pytest.fixture(scope="module")
def results(data_dir):
  config = tiny.get_config()
  config.eval = common.eval_entries(tiny.TASKS)
  model = models.create(config.model, tiny.TASKS, rngs=nnx.Rngs(0), with_classifier=False)
  predictor = evaluate.Predictor(model, batch_size=8)
  return evaluate.evaluate(predictor, config, data_dir, names=BENCHMARKS, baselines=True)


def test_every_benchmark_kind_reports_its_metrics(results):
  assert set(results) == set(BENCHMARKS)
  assert {"accuracy", "accuracy_std"} <= set(results["lfw"]["metrics"])
  assert results["lfw"]["metrics"]["count"] == 20
  assert {"mae", "cs5", "epsilon_error"} <= set(results["morph2"]["metrics"])
  assert results["celeba"]["metrics"]["count"] == 12
  assert 0 <= results["rafdb"]["metrics"]["accuracy"] <= 100
  assert "f1_fg_mean" in results["celebamask_hq"]["metrics"]
  assert results["300w_common"]["metrics"]["count"] == 8
  assert np.isfinite(results["300w_common"]["metrics"]["nme_inter_ocular"])


def test_baselines_are_the_trivial_predictors(results, data_dir):
  import tensorflow_datasets as tfds
  test = tfds.data_source("rafdb", data_dir=data_dir, split="test")
  labels = np.array([int(test[i]["label"]) for i in range(len(test))])
  majority = np.bincount(labels).max() / len(labels) * 100
  assert results["rafdb"]["baseline"]["accuracy"] == pytest.approx(majority)
  morph = tfds.data_source("morph2", data_dir=data_dir, split="test")
  ages = np.array([float(morph[i]["age"]) for i in range(len(morph))])
  assert results["morph2"]["baseline"]["mae"] == pytest.approx(
      np.abs(np.round(ages.mean()) - ages).mean(), abs=0.05)
  # The mean shape of the split, mapped back to each image: far better than nothing, not exact.
  assert 0 < results["300w_common"]["baseline"]["nme_inter_ocular"] < 1


def test_the_table_prints_model_and_baseline_side_by_side(results):
  table = evaluate.format_table(results)
  assert table.splitlines()[0].split() == ["benchmark", "metric", "model", "baseline"]
  assert any(line.startswith("rafdb") and "accuracy" in line for line in table.splitlines())
