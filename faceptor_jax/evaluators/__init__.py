"""Evaluators, one module per task type, looked up by the name `tasks.TaskType.evaluator` holds.

Every evaluator is built as `EVALUATORS[name](task, **options)`, accumulates batches with
`update(predictions: dict, examples: dict)` (numpy or jax arrays; predictions already mapped back
to original image coordinates where the protocol says so) and reports `result() -> {metric: float}`;
most also offer `tables()`. Each class documents the keys its `update` reads.
"""

from faceptor_jax.evaluators import age
from faceptor_jax.evaluators import attributes
from faceptor_jax.evaluators import expression
from faceptor_jax.evaluators import ijbc
from faceptor_jax.evaluators import landmarks
from faceptor_jax.evaluators import parsing
from faceptor_jax.evaluators import verification

EVALUATORS = {
    "landmarks": landmarks.LandmarkEvaluator,
    "parsing": parsing.ParsingEvaluator,
    "age": age.AgeEvaluator,
    "expression": expression.ExpressionEvaluator,
    "attributes": attributes.AttributeEvaluator,
    "verification": verification.VerificationEvaluator,
    "ijbc": ijbc.IJBCEvaluator,
}


def get(name: str):
  """The evaluator class called `name`, or an error that lists the known ones."""
  try:
    return EVALUATORS[name]
  except KeyError:
    raise KeyError(f"unknown evaluator {name!r}; known: {', '.join(EVALUATORS)}") from None
