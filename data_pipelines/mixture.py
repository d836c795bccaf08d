"""The step mixture: one grain pipeline whose element `s` is training step `s`'s whole batch.

Every step holds `n_t` examples of every configured task (`{task: {key: [n_t / hosts, ...]}}`:
this host's share). Which examples is a pure function of (seed, task, step): task t's examples
form an endless stream, epoch after epoch, each epoch a seeded permutation of the dataset, and
step s takes stream positions [s n_t, (s + 1) n_t). Each host reads its contiguous slice of those
positions. Every example's augmentation draws from a generator seeded by (seed, task, position).
So the pipeline is a `grain.MapDataset` over step numbers: its iterator state is one integer and a
resumed run sees exactly the data of an unbroken one. Decoding and augmentation run in grain
worker processes (`workers` > 0) or in-process (0: tests, debugging).

An example that fails to decode or transform at training time is replaced by the next position of
the same epoch's permutation (deterministically), logged, and counted in the batch's
`__skipped__` entry, which the trainer reports and removes.
"""

from __future__ import annotations

import dataclasses
import logging

import grain
import numpy as np
from absl import flags

from data_pipelines import transforms
from faceptor_jax import tasks

log = logging.getLogger(__name__)
SKIPPED = "__skipped__"
MAX_REPLACEMENTS = 16


@dataclasses.dataclass(frozen=True)
class TaskStream:
  """One task's source and how the mixture reads it."""
  task: str
  source: object            # random access: len() and [i] -> prepared example dict
  batch_size: int           # n_t over all hosts
  image_size: int
  options: dict = dataclasses.field(default_factory=dict)  # transform options


def open_source(dataset: str, split: str, data_dir: str, config: str | None = None):
  """The prepared TFDS dataset as a random-access source (`dataset/config` names a config)."""
  import tensorflow_datasets as tfds
  name = f"{dataset}/{config}" if config else dataset
  try:
    return tfds.data_source(name, data_dir=data_dir, split=split)
  except Exception as e:  # tfds raises several types for a missing or unprepared dataset
    raise FileNotFoundError(
        f"dataset {name!r} split {split!r} is not prepared under {data_dir!r} ({e}). Prepare "
        f"it with: python -m data_pipelines.prepare --dataset={name} --manual_dir=<raw folder> "
        f"--data_dir={data_dir}") from None


class StepBatch:
  """step -> {task: stacked examples} for this host (picklable: grain workers build it)."""

  def __init__(self, streams: list[TaskStream], seed: int, process_index: int = 0,
               process_count: int = 1):
    self.streams, self.seed = streams, seed
    self.process_index, self.process_count = process_index, process_count
    for s in streams:
      if s.batch_size % process_count:
        raise ValueError(f"{s.task}: batch size {s.batch_size} does not divide over "
                         f"{process_count} hosts")
      if len(s.source) == 0:
        raise ValueError(f"{s.task}: the dataset is empty")
    self._transforms = {s.task: transforms.for_task(s.task, True, s.image_size, **s.options)
                        for s in streams}
    self._permutations: dict[tuple[int, int], np.ndarray] = {}

  def permutation(self, stream_index: int, epoch: int) -> np.ndarray:
    """The seeded order of the dataset in `epoch` (the current and last epoch are kept)."""
    key = (stream_index, epoch)
    if key not in self._permutations:
      n = len(self.streams[stream_index].source)
      self._permutations = {k: v for k, v in self._permutations.items()
                            if k[0] != stream_index or k[1] >= epoch - 1}
      self._permutations[key] = np.random.default_rng([self.seed, stream_index, epoch]
                                                      ).permutation(n)
    return self._permutations[key]

  def positions(self, stream_index: int, step: int) -> range:
    """This host's stream positions at `step`."""
    n = self.streams[stream_index].batch_size
    local = n // self.process_count
    start = step * n + self.process_index * local
    return range(start, start + local)

  def example(self, stream_index: int, position: int):
    """(transformed example, replacements needed) at a stream position."""
    stream = self.streams[stream_index]
    size = len(stream.source)
    epoch, offset = divmod(position, size)
    perm = self.permutation(stream_index, epoch)
    errors = []
    for attempt in range(MAX_REPLACEMENTS):
      index = int(perm[(offset + attempt) % size])
      try:
        raw = stream.source[index]
        rng = np.random.default_rng([self.seed, stream_index, position, attempt])
        return self._transforms[stream.task](raw, rng), attempt
      except Exception as e:  # a corrupt record or image: replace it, never stop training
        log.warning("%s: example %d unreadable (%s); using the next one", stream.task, index, e)
        errors.append(f"{index}: {e}")
    raise RuntimeError(f"{stream.task}: {MAX_REPLACEMENTS} consecutive examples failed: "
                       + "; ".join(errors))

  def __call__(self, step: int) -> dict:
    batch, skipped = {}, 0
    for i, stream in enumerate(self.streams):
      examples = []
      for position in self.positions(i, step):
        example, replaced = self.example(i, position)
        examples.append(example)
        skipped += replaced
      batch[stream.task] = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    batch[SKIPPED] = np.int32(skipped)
    return batch


def dataset(streams: list[TaskStream], seed: int, num_steps: int, *, workers: int = 0,
            prefetch: int = 2, process_index: int = 0, process_count: int = 1):
  """The grain IterDataset of steps 0 .. num_steps - 1 (restore its state to resume)."""
  loader = StepBatch(streams, seed, process_index, process_count)
  ds = grain.MapDataset.range(num_steps).map(loader)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if workers > 0:
    # grain's worker processes read its absl flags; a caller outside absl.app (a script, a
    # notebook) has not parsed them, so they take their defaults.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers,
                                                     per_worker_buffer_size=prefetch))
  return it


def streams_from_config(config, data_dir: str) -> list[TaskStream]:
  """A TaskStream per task of `config.tasks` (dataset, split, batch_size, options)."""
  out = []
  for name, tc in config.tasks.items():
    task = tasks.get(name)
    if tc.get("rec"):
      from data_pipelines import recordio
      source = recordio.RecordIODataSource(tc.rec)
    else:
      source = open_source(tc.get("dataset") or task.dataset, tc.split,
                           tc.get("data_dir") or data_dir, tc.get("config") or None)
    out.append(TaskStream(name, source, int(tc.batch_size),
                          int(config.model.image_size[task.group]),
                          dict(tc.get("transform", {}))))
  return out
