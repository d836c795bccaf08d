"""MS1MV3 (insightface `ms1m-retinaface-t1`): 5.18 M aligned 112x112 faces of 93,431 identities,
read from the MXNet RecordIO pair `train.rec` + `train.idx` (DATASETS.md 1 and 19).

Split `train`. Features: `image` (the JPEG bytes stored in the record, unchanged), `label` int64
(the identity: the record's scalar label, or label[0] of an array label), `name` (`train.rec#<key>`).
Which keys are images follows the insightface rule (`recordio.image_keys`): with a key-0 header,
keys 1 .. header.label[0] - 1; without one, every key. Both header layouts (RecBuilder and the
older face2rec2) are read.

The number of classes is stored in the dataset metadata (`info.metadata["num_classes"]`): the
first field of `property` (`93431,112,112`) when the file is there, else the largest label + 1.
Records are written in key order (TFDS shuffling off: grain shuffles at read time, and a shuffle
pass would rewrite the whole ~5 M-image set once more). The images are already aligned and 112 px,
so the transform only flips them. To train without preparing, `recordio.RecordIODataSource` reads
`train.rec` directly with the same fields (decoded).

Skipped, counted: unusable `.idx` lines, keys the header names that the `.idx` lacks, truncated
or corrupt records, records without an image or whose image does not decode, labels that are not
a non-negative integer (or not below `property`'s class count).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import recordio


class Builder(builder_lib.FaceDatasetBuilder):
  """MS1MV3 face recognition training set (insightface RecordIO), identity labels."""

  name = "ms1mv3"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download `ms1m-retinaface-t1` (MS1MV3) from the insightface dataset zoo
  (https://github.com/deepinsight/insightface/tree/master/recognition/_datasets_), unzip it and
  pass the folder that holds `train.rec` and `train.idx` as --manual_dir.
  """
  DISABLE_SHUFFLING = True  # record order
  LAYOUT = """
  train.rec     MXNet RecordIO: IRHeader + JPEG per record, header record at key 0 (optional)
  train.idx     lines `key<TAB>byte offset`
  property      optional: `num_classes,112,112`, e.g. `93431,112,112`
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Scalar(np.int64),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    rec = self.require(manual_dir, "train.rec")
    idx = self.require(manual_dir, "train.idx")
    num_classes = read_num_classes(os.path.join(manual_dir, "property"))
    # Everything that can fail for the whole file (the header) fails here, before writing.
    reader = recordio.RecordIOReader(rec, idx)
    keys = recordio.image_keys(reader)
    return {"train": lambda: self._read(reader, keys, num_classes)}

  def _read(self, reader, keys, num_classes):
    for n, line, reason in reader.index.bad_lines:
      yield builder_lib.Skip(f"train.idx line {n}", f"{reason}: {line!r}")
    for key in keys.missing:
      yield builder_lib.Skip(f"key {key}", "named by the header record but absent from train.idx")
    largest = -1
    for key in keys.keys:
      name = f"train.rec#{key}"
      try:
        header, image = reader.read_item(int(key))
      except recordio.RecordIOError as e:
        yield builder_lib.Skip(name, str(e))
        continue
      label = recordio.class_id(header)
      if not (np.isfinite(label) and label >= 0 and label == int(label)):
        yield builder_lib.Skip(name, f"label {label} is not a non-negative integer")
        continue
      if num_classes is not None and label >= num_classes:
        yield builder_lib.Skip(name, f"label {int(label)} >= {num_classes} classes of `property`")
        continue
      if not image:
        yield builder_lib.Skip(name, "record holds no image")
        continue
      if self.validate_images and not builder_lib.decodes(image):
        yield builder_lib.Skip(name, "image does not decode (corrupt or not an image)")
        continue
      largest = max(largest, int(label))
      yield str(key), {"image": image, "label": int(label), "name": name}
    # Read by the trainer's classifier size; set before TFDS writes the dataset info.
    self.info.metadata["num_classes"] = num_classes if num_classes is not None else largest + 1


def read_num_classes(path: str) -> int | None:
  """The class count from insightface's `property` file (`93431,112,112`), None if absent."""
  if not os.path.exists(path):
    return None
  lines = builder_lib.read_lines(path)
  try:
    num_classes = int(lines[0].split(",")[0])
  except (IndexError, ValueError):
    num_classes = 0
  if num_classes <= 0:
    raise ValueError(f"dataset 'ms1mv3': {path!r} should start with `num_classes,112,112` "
                     f"(e.g. `93431,112,112`); found {lines[:1]}")
  return num_classes
