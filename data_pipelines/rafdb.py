"""RAF-DB, basic subset (expression, 7 classes), read as distributed.

Labels 1..7 (Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral) are mapped to the
AffectNet order the model uses (0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger).
The split is the file-name prefix: `train_*` (12,271) and `test_*` (3,068). The 100x100 aligned
release is used (the authors' own crop is not released); the transforms resize it to 112.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

RAF_TO_AFFECTNET = (-1, 3, 4, 5, 1, 2, 6, 0)  # index: RAF label 1..7


class Builder(builder_lib.FaceDatasetBuilder):
  """RAF-DB basic: aligned 100x100 faces with 7 expression labels (AffectNet order)."""

  name = "rafdb"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request RAF-DB from http://www.whdeng.cn/raf/model1.html, unpack the `basic` release and pass
  the folder that contains `basic/` as --manual_dir.
  """
  LAYOUT = """
  basic/EmoLabel/list_patition_label.txt      lines `train_00001.jpg 5`
  basic/Image/aligned/train_00001_aligned.jpg ...
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Scalar(np.int64),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    labels = self.require(manual_dir, "basic", "EmoLabel", "list_patition_label.txt")
    images = self.require(manual_dir, "basic", "Image", "aligned")
    return {split: (lambda split=split: self._read(labels, images, split))
            for split in ("train", "test")}

  def _read(self, labels_path, image_dir, split):
    for n, line in enumerate(builder_lib.read_lines(labels_path), 1):
      fields = line.split()
      if len(fields) != 2 or not fields[1].isdigit() or not 1 <= int(fields[1]) <= 7:
        yield builder_lib.Skip(f"line {n}", f"malformed label line {line!r}")
        continue
      name, raw = fields
      if not name.startswith(split + "_"):
        continue
      stem, ext = os.path.splitext(name)
      image = self.image_or_skip(os.path.join(image_dir, f"{stem}_aligned{ext}"), name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      yield name, {"image": image, "label": RAF_TO_AFFECTNET[int(raw)], "name": name}
