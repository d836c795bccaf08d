"""CelebA (40 binary attributes), read as distributed.

`list_attr_celeba.txt` holds a count line, a line of the 40 attribute names, then one line per
image: the file name and 40 values in {-1, 1}, padded with extra spaces. They are stored as
`attributes` int64 [40] in {0, 1} ((v + 1) / 2), in the file's order, which must be the model's
order (`faceptor_jax.tasks.CELEBA_ATTRIBUTES`; a different names line is an error).
`list_eval_partition.txt` (`000001.jpg 0`) gives the splits: 0 -> `train` (162,770),
1 -> `val` (19,867), 2 -> `test` (19,962). Faceptor trains on train+val (182,637): read it as
`split="train+val"`, it is not stored twice.

The files are found at the top of the manual folder or where the Google Drive release puts them
(`Img/img_align_celeba/`, `Anno/`, `Eval/`). The images are the aligned 178x218 release (the
authors' 112-px crop is not released); the transforms take a centre square crop and resize it to
the group size.

An image named in the attribute file but not in the partition file belongs to no split: it is
reported under the pseudo-split `unassigned` of the skip report.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from faceptor_jax import tasks

SPLIT_OF_PARTITION = {"0": "train", "1": "val", "2": "test"}


class Builder(builder_lib.FaceDatasetBuilder):
  """CelebA: aligned 178x218 faces with 40 binary attributes."""

  name = "celeba"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download CelebA from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: the
  `Img/img_align_celeba.zip` archive, `Anno/list_attr_celeba.txt` and
  `Eval/list_eval_partition.txt`), unpack the images and pass the folder that holds them as
  --manual_dir. The text files may sit beside `img_align_celeba/` or under `Anno/` and `Eval/`.
  """
  LAYOUT = """
  img_align_celeba/000001.jpg ...         (or Img/img_align_celeba/)
  list_attr_celeba.txt                    (or Anno/list_attr_celeba.txt)
      202599
      5_o_Clock_Shadow Arched_Eyebrows ... Young
      000001.jpg -1  1  1 -1 ...
  list_eval_partition.txt                 (or Eval/list_eval_partition.txt)
      000001.jpg 0
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "attributes": tfds.features.Tensor(shape=(len(tasks.CELEBA_ATTRIBUTES),),
                                               dtype=np.int64),
            "name": tfds.features.Text()}

  def _first_existing(self, manual_dir, *candidates):
    """The first candidate path that exists, else the error that names the first one."""
    for parts in candidates:
      path = os.path.join(manual_dir, *parts)
      if os.path.exists(path):
        return path
    return self.require(manual_dir, *candidates[0])

  def _split_readers(self, manual_dir):
    images = self._first_existing(manual_dir, ("img_align_celeba",),
                                  ("Img", "img_align_celeba"))
    attr_path = self._first_existing(manual_dir, ("list_attr_celeba.txt",),
                                     ("Anno", "list_attr_celeba.txt"))
    partition_path = self._first_existing(manual_dir, ("list_eval_partition.txt",),
                                          ("Eval", "list_eval_partition.txt"))
    attributes = self._read_attributes(attr_path)
    partition = self._read_partition(partition_path)
    for name in sorted(set(attributes) - set(partition)):
      self._unassigned(name, "in list_attr_celeba.txt but not in list_eval_partition.txt")
    return {split: (lambda split=split: self._read(images, attributes, partition, split))
            for split in SPLIT_OF_PARTITION.values()}

  def _unassigned(self, key, reason):
    """Records an item that belongs to no split (the readers only see their own split)."""
    builder_lib.log.warning("%s: skipped %s: %s", self.name, key, reason)
    self.skipped["unassigned"].append(builder_lib.Skip(key, reason))

  def _read_attributes(self, path) -> dict:
    """{file name: int64 [40] in {0, 1}, or the reason its line is unusable}."""
    lines = builder_lib.read_lines(path)
    if len(lines) < 2 or tuple(lines[1].split()) != tasks.CELEBA_ATTRIBUTES:
      raise ValueError(
          f"dataset 'celeba': {path!r} must start with a count line and the 40 attribute names "
          f"in the order {' '.join(tasks.CELEBA_ATTRIBUTES)}; found "
          f"{lines[1] if len(lines) > 1 else 'no names line'!r}")
    attributes = {}
    for line in lines[2:]:
      name, *values = line.split()
      if len(values) != len(tasks.CELEBA_ATTRIBUTES) or not set(values) <= {"-1", "1"}:
        attributes[name] = f"malformed attribute line {line[:60]!r}... (want 40 values in -1/1)"
        continue
      attributes[name] = (np.array(values, np.int64) + 1) // 2
    return attributes

  def _read_partition(self, path) -> dict:
    """{file name: split} in file order; a malformed line is recorded as unassigned."""
    partition = {}
    for n, line in enumerate(builder_lib.read_lines(path), 1):
      fields = line.split()
      if len(fields) == 2 and fields[1] in SPLIT_OF_PARTITION:
        partition[fields[0]] = SPLIT_OF_PARTITION[fields[1]]
      else:
        partition.setdefault(fields[0], None)  # known, so not reported again as missing
        self._unassigned(f"list_eval_partition.txt line {n}", f"malformed line {line!r}")
    return partition

  def _read(self, image_dir, attributes, partition, split):
    for name, image_split in partition.items():
      if image_split != split:
        continue
      values = attributes.get(name, "no line in list_attr_celeba.txt")
      if isinstance(values, str):
        yield builder_lib.Skip(name, values)
        continue
      image = self.image_or_skip(os.path.join(image_dir, name), name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      yield name, {"image": image, "attributes": values, "name": name}
