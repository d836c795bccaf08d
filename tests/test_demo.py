"""configs/demo.py: the embedded default builds, and its overrides mean what they say.

The demo's learning itself is measured by benchmarks/demo_learns.py (minutes, not a test).
"""

from flax import nnx

from configs import demo
from data_pipelines import transforms
from faceptor_jax import models, optim, tasks, weights


def test_every_task_transform_takes_the_demo_options():
  config = demo.get_config()
  for name, task in config.tasks.items():
    size = config.model.image_size[tasks.get(name).group]
    transforms.for_task(name, True, size, **task.transform)  # an unknown option raises


def test_dense_tasks_train_on_the_evaluation_crop():
  # No random similarity: a training crop equals the evaluation crop of the same example.
  config = demo.get_config()
  for name in ("align_300w", "parsing_celebam"):
    size = config.model.image_size["large"]
    train = transforms.for_task(name, True, size, **config.tasks[name].transform)
    assert (train.shift_range, train.photometric) == (0.0, False)
    rotation = getattr(train, "rotation_range", getattr(train, "rotation_sigma", None))
    assert rotation == 0.0


def test_learning_rate_multipliers_reach_the_intended_parameters():
  config = demo.get_config()
  model = models.create(config.model, tuple(config.tasks), rngs=nnx.Rngs(0))
  mults = {}
  flat = list(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  for path, _ in flat:
    name = weights.path_name(path)
    mults.setdefault(optim.multiplier(name, config.optim), []).append(name)
  assert all(n.startswith("map/") for n in mults[30.0]) and len(mults[30.0]) > 0
  assert all(n.startswith("encoder/") for n in mults[0.2]) and len(mults[0.2]) > 0
  assert any(n.startswith("decoder/") for n in mults[1.0])
  assert sum(len(v) for v in mults.values()) == len(flat)
