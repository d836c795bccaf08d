"""The step mixture: n_t examples of every dataset per step, every example once per epoch, a pure
function of (seed, step) split over hosts, bad examples replaced and counted."""

import numpy as np
import pytest

from data_pipelines import mixture


class AgeSource:
  """A random-access source of age examples whose age is the example's index."""

  def __init__(self, n, bad=()):
    self.n, self.bad = n, set(bad)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    if i in self.bad:
      raise ValueError("corrupt image")
    return {"image": np.full((20, 20, 3), i % 256, np.uint8), "age": float(i)}


def streams(n_a=10, n_b=7, bad=()):
  return [mixture.TaskStream("age_morph2", AgeSource(n_a, bad), 4, 16),
          mixture.TaskStream("age_utkface", AgeSource(n_b), 2, 16)]


def ages(batch, task):
  return batch[task]["age"].astype(int).tolist()


def test_every_step_holds_n_t_of_every_dataset():
  loader = mixture.StepBatch(streams(), seed=0)
  batch = loader(0)
  assert batch["age_morph2"]["image"].shape == (4, 16, 16, 3)
  assert batch["age_utkface"]["image"].shape == (2, 16, 16, 3)
  assert int(batch[mixture.SKIPPED]) == 0


def test_each_epoch_is_a_permutation_of_the_dataset():
  loader = mixture.StepBatch(streams(n_a=12), seed=3)
  seen = [a for step in range(6) for a in ages(loader(step), "age_morph2")]  # 24 = 2 epochs
  assert sorted(seen[:12]) == list(range(12)) and sorted(seen[12:]) == list(range(12))
  assert seen[:12] != seen[12:]  # each epoch has its own order


def test_order_is_a_pure_function_of_seed_and_step():
  a, b = mixture.StepBatch(streams(), seed=1), mixture.StepBatch(streams(), seed=1)
  np.testing.assert_array_equal(a(5)["age_morph2"]["image"], b(5)["age_morph2"]["image"])
  assert ages(a(5), "age_morph2") == ages(b(5), "age_morph2")
  c = mixture.StepBatch(streams(), seed=2)
  assert [ages(a(s), "age_morph2") for s in range(3)] != [ages(c(s), "age_morph2")
                                                          for s in range(3)]


def test_hosts_read_disjoint_shares_of_the_global_batch():
  whole = mixture.StepBatch(streams(), seed=0)
  parts = [mixture.StepBatch(streams(), seed=0, process_index=i, process_count=2)
           for i in range(2)]
  for step in range(3):
    joined = ages(parts[0](step), "age_morph2") + ages(parts[1](step), "age_morph2")
    assert joined == ages(whole(step), "age_morph2")
  with pytest.raises(ValueError, match="does not divide over 3 hosts"):
    mixture.StepBatch(streams(), seed=0, process_count=3)


def test_a_corrupt_example_is_replaced_and_counted():
  loader = mixture.StepBatch(streams(n_a=10, bad={4}), seed=0)
  total_skipped, seen = 0, []
  for step in range(5):  # 20 draws over 2 epochs: the bad example comes up twice
    batch = loader(step)
    total_skipped += int(batch[mixture.SKIPPED])
    seen += ages(batch, "age_morph2")
  assert 4 not in seen and total_skipped == 2


def test_the_grain_pipeline_resumes_from_its_state():
  ds = mixture.dataset(streams(), seed=0, num_steps=6)
  it = iter(ds)
  first = [ages(next(it), "age_morph2") for _ in range(3)]
  state = it.get_state()
  rest = [ages(next(it), "age_morph2") for _ in range(3)]
  again = iter(mixture.dataset(streams(), seed=0, num_steps=6))
  again.set_state(state)
  assert [ages(next(again), "age_morph2") for _ in range(3)] == rest
  assert first != rest
