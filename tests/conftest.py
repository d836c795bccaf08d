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
