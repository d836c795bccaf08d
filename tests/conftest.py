"""Shared test set-up: the official parity fixtures and quiet logs."""

import os
import sys

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "official")


@pytest.fixture(scope="session")
def official_recipe():
  """The official fixtures' weight recipe module (numpy only)."""
  sys.path.insert(0, FIXTURES)
  try:
    import official_weights
  finally:
    sys.path.remove(FIXTURES)
  return official_weights


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """configs/tiny.py's synthetic datasets, rendered and prepared once per session."""
  from configs import common, tiny
  from data_pipelines import demo_data
  config = tiny.get_config()
  config.eval = common.eval_entries(tiny.TASKS)  # the evaluation sets too
  path = str(tmp_path_factory.mktemp("tiny_data"))
  demo_data.ensure(config, path)
  return path
