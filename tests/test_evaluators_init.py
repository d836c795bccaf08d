"""Tests of faceptor_jax/evaluators/__init__.py: every task type's evaluator name resolves."""

import pytest

from faceptor_jax import evaluators
from faceptor_jax import tasks


def test_every_task_type_names_a_known_evaluator():
  assert {t.evaluator for t in tasks.TYPES.values()} <= set(evaluators.EVALUATORS)
  assert "ijbc" in evaluators.EVALUATORS
  for cls in evaluators.EVALUATORS.values():
    assert callable(cls.update) and callable(cls.result)


def test_every_task_builds_its_evaluator():
  for name, task in tasks.TASKS.items():
    evaluator = evaluators.get(task.type.evaluator)(name)
    assert evaluator.task == name


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(KeyError, match="landmarks"):
    evaluators.get("bleu")
