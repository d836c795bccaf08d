"""Prints a config's model size, counted as the official code counts it (SPEC 1.5).

  python -m faceptor_jax.param_count --config=configs/base.py     # 103,200,001
  python -m faceptor_jax.param_count --config=configs/naive.py    # 178,911,058

"All Inference Params": every parameter of the encoder (CLIP's unused ln_post and proj included)
and the heads; batch-norm statistics and the training-only CosFace classifier excluded. The model
is built abstractly (no memory is allocated).
"""

from __future__ import annotations

import collections

from absl import app, flags
from flax import nnx
from ml_collections import config_flags

from faceptor_jax import models

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "a config file (configs/*.py)", lock_config=True)


def counts(config) -> tuple[int, dict]:
  """(official total, {top-level part: parameters})."""
  model = nnx.eval_shape(lambda: models.create(config.model, tuple(config.tasks),
                                               rngs=nnx.Rngs(0)))
  parts = collections.Counter()
  for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    parts[str(path[0])] += v.size
  return models.count_parameters(model), dict(parts)


def main(argv):
  del argv
  total, parts = counts(FLAGS.config)
  for name, n in sorted(parts.items()):
    print(f"  {name:16s} {n:>13,}")
  print(f"{FLAGS.config.model.variant} ({len(FLAGS.config.tasks)} tasks): {total:,} parameters "
        "(official count: classifier and batch-norm statistics excluded)")


if __name__ == "__main__":
  app.run(main)
