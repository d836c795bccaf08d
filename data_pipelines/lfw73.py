"""LFW-73: the 73 attribute scores of `lfw_attributes.txt` (Columbia) on the LFW images.

`lfw_attributes.txt` is tab-separated: a `# 13143 images` line, a header line that starts with a
`#` field (`#<TAB>person<TAB>imagenum<TAB>Male<TAB>...`, so naive CSV parsing shifts the names by
one column), then one row per image: person name (with spaces), image number, and 73 real-valued
classifier scores. A score > 0 means the attribute is present: `attributes` int64 [73] in {0, 1}.
The attribute names are read from the header and stored in the dataset metadata:
`tfds.builder_from_directory(dir).info.metadata["attribute_names"]` (the order of `attributes`).
The image is `lfw/<Person_Name>/<Person_Name>_<imagenum:04d>.jpg` (spaces -> underscores); the
deep-funneled release (`lfw-deepfunneled/`) is used when `lfw/` is absent. The images are the
250x250 LFW images (the authors' 112-px crop is not released); the transforms take a centre
square crop and resize it to the group size.

Splits `train` and `test`. The supplement's split (6,263 / 6,880 images) is not published, so the
split here is by identity, deterministic and independent of which rows survive: a person goes to
`train` when the first byte of md5(person name as written in the file, UTF-8) is odd, else to
`test`. No person is in both and about half the people fall on each side; the image counts also
depend on the few people with very many images (George W Bush, 530 LFW images, and Colin Powell,
236, fall in `test`, so `test` should come out the larger split, as in the supplement).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

NUM_ATTRIBUTES = 73
IMAGE_FOLDERS = ("lfw", "lfw-deepfunneled")  # in order of preference


def split_of_person(person: str) -> str:
  """`train` or `test`: the identity-disjoint split rule of this module."""
  return "train" if hashlib.md5(person.encode("utf-8")).digest()[0] % 2 else "test"


class Builder(builder_lib.FaceDatasetBuilder):
  """LFW-73: LFW faces with 73 binary attributes (Columbia classifier scores > 0)."""

  name = "lfw73"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download `lfw_attributes.txt` from the Columbia PubFig/LFW attributes page
  (https://www.cs.columbia.edu/CAVE/databases/pubfig/download/lfw_attributes.txt) and the LFW
  images (`lfw.tgz` or `lfw-deepfunneled.tgz`, http://vis-www.cs.umass.edu/lfw/); unpack the
  images beside the text file and pass that folder as --manual_dir.
  """
  LAYOUT = """
  lfw_attributes.txt                      tab-separated:
      # 13143 images
      #<TAB>person<TAB>imagenum<TAB>Male<TAB>Asian<TAB>...   (73 attribute names)
      Aaron Eckhart<TAB>1<TAB>1.56834<TAB>-1.88904<TAB>...
  lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg   (or lfw-deepfunneled/...)
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "attributes": tfds.features.Tensor(shape=(NUM_ATTRIBUTES,), dtype=np.int64),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    table = self.require(manual_dir, "lfw_attributes.txt")
    folders = [os.path.join(manual_dir, f) for f in IMAGE_FOLDERS]
    image_dir = next((f for f in folders if os.path.isdir(f)), None) or self.require(folders[0])
    lines = builder_lib.read_lines(table)
    self.info.metadata["attribute_names"] = self._attribute_names(table, lines)
    rows = list(self._rows(lines))
    return {split: (lambda split=split: self._read(rows, image_dir, split))
            for split in ("train", "test")}

  def _attribute_names(self, path, lines) -> list[str]:
    """The 73 names of the header line (`#<TAB>person<TAB>imagenum<TAB>...`)."""
    for line in lines[:2]:
      fields = [f.strip() for f in line.lstrip("#").split("\t")]
      fields = [f for f in fields if f]
      if fields[:2] == ["person", "imagenum"] and len(fields) - 2 == NUM_ATTRIBUTES:
        return fields[2:]
    raise ValueError(
        f"dataset 'lfw73': {path!r} has no header line `#<TAB>person<TAB>imagenum<TAB>` followed "
        f"by {NUM_ATTRIBUTES} attribute names in its first two lines")

  def _rows(self, lines):
    """(split, person, image number, scores) per data row, or (split, Skip) for a bad row; a
    bad row goes to its person's split when the person can be read."""
    for n, line in enumerate(lines, 1):
      if line.startswith("#"):
        continue
      fields = [f.strip() for f in line.split("\t")]
      person = fields[0]
      split = split_of_person(person) if person else "train"
      try:
        number, scores = int(fields[1]), np.array(fields[2:], np.float64)
      except (IndexError, ValueError):
        scores = None
      if not person or scores is None or len(scores) != NUM_ATTRIBUTES \
          or not np.isfinite(scores).all():
        yield split, builder_lib.Skip(
            f"line {n}", f"malformed row {line[:60]!r}... (want person, imagenum and "
            f"{NUM_ATTRIBUTES} scores, tab-separated)")
        continue
      yield split, (person, number, scores)

  def _read(self, rows, image_dir, split):
    for row_split, row in rows:
      if row_split != split:
        continue
      if isinstance(row, builder_lib.Skip):
        yield row
        continue
      person, number, scores = row
      folder = person.replace(" ", "_")
      name = f"{folder}/{folder}_{number:04d}.jpg"
      image = self.image_or_skip(os.path.join(image_dir, name), name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      yield name, {"image": image, "attributes": (scores > 0).astype(np.int64), "name": name}
