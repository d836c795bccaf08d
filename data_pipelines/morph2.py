"""MORPH II (Album 2, age), protocol RANDOM_80_20: a random 80 % / 20 % split of all images.

The age is read from the file name, `<subject>_<index><sex><age>.<ext>` with a one- or two-digit
image index: `070081_2F36.JPG` is subject 070081, image 2, female, 36 years; `130630_23M46.JPG`
image 23, male, 46. An image whose name does not parse is skipped.

Splits `train` and `test`. Where they come from:
  * If the manual folder holds Faceptor's lists `label/RANDOM_80_20/{train,test}.txt` (lines
    `relative_path age`, paths relative to `data/`), they are used as they are. The list's age is
    the label; where the file name also encodes an age, the two must agree (else a skip).
  * Otherwise every image under `data/` (or under the manual folder itself when there is no
    `data/`), searched recursively, whose name parses is split at random: the sorted relative
    paths are permuted with numpy's RandomState(SPLIT_SEED) (a frozen stream, so the split is the
    same on every machine and numpy version) and the first 80 % (rounded) are `train`. The split
    is image-level, as the protocol is: a subject's images may fall on both sides. The split is
    saved beside the prepared shards as `<data_dir>/morph2/<version>/{train,test}.txt` (lines
    `relative_path age`, the Faceptor list format). To reuse or share it, copy the two files to
    `<manual_dir>/label/RANDOM_80_20/` (with the images under `<manual_dir>/data/`).
The paper's exact list is unpublished, so MAE on this split is comparable, not identical.

Stored: `image` (as distributed), `age` float32 (years), `name` (the path relative to the image
folder). The authors' 112-px face crop is unreleased: the transform does a centre square crop and
a resize to 112 (the distributed images are not square).
"""

from __future__ import annotations

import logging
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
SPLIT_SEED = 0  # seed of the generated RANDOM_80_20 split; changing it changes the benchmark
TRAIN_FRACTION = 0.8
PROTOCOL_LISTS = ("label", "RANDOM_80_20")  # Faceptor's list folder under the manual folder
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
# subject _ image index (1-2 digits), sex, age; the extension's case varies (`.JPG`).
FILE_NAME = re.compile(r"(\d+)_(\d{1,2})([MFmf])(\d{1,3})\.[A-Za-z]+")


class Builder(builder_lib.FaceDatasetBuilder):
  """MORPH II: ~55,000 faces aged 16-77, age from the file name, random 80/20 split."""

  name = "morph2"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request the MORPH Album 2 academic (non-commercial) release from UNC Wilmington and pass the
  folder holding its images (or a folder whose `data/` holds them) as --manual_dir.
  Optionally add Faceptor-style split lists `label/RANDOM_80_20/{train,test}.txt`.
  """
  LAYOUT = """
  data/070081_2F36.JPG ...      the images, any sub-folders (or directly in the manual folder)
  label/RANDOM_80_20/train.txt  optional: lines `070081_2F36.JPG 36`, paths relative to data/
  label/RANDOM_80_20/test.txt   optional; without the lists a seeded random 80/20 split is made
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "age": tfds.features.Scalar(np.float32),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    if os.path.isdir(os.path.join(manual_dir, *PROTOCOL_LISTS)):
      image_dir = self.require(manual_dir, "data")
      lists = {split: self.require(manual_dir, *PROTOCOL_LISTS, f"{split}.txt")
               for split in SPLITS}
      return {split: (lambda split=split: self._read_list(image_dir, lists[split]))
              for split in SPLITS}
    image_dir = os.path.join(manual_dir, "data")
    if not os.path.isdir(image_dir):
      image_dir = manual_dir
    split, name_skips = self.random_split(image_dir)
    self.save_split(split)
    return {s: (lambda s=s: self._read_split(image_dir, split[s], name_skips)) for s in SPLITS}

  # --- the generated split ----------------------------------------------------------------

  def random_split(self, image_dir):
    """({split: [(relative path, age)]}, skips for image names without an age)."""
    valid, skips = [], []
    for path in find_images(image_dir):
      age = age_from_name(path)
      if age is None:
        skips.append(builder_lib.Skip(path, "file name does not encode an age "
                                            "(expected like 070081_2F36.JPG); in no split"))
      else:
        valid.append((path, age))
    if not valid:
      raise builder_lib.MissingDataError(
          self.name, os.path.join(image_dir, "*_<index><sex><age>.JPG"), self.LAYOUT)
    order = np.random.RandomState(SPLIT_SEED).permutation(len(valid))
    num_train = round(TRAIN_FRACTION * len(valid))
    return ({"train": [valid[i] for i in order[:num_train]],
             "test": [valid[i] for i in order[num_train:]]}, skips)

  def save_split(self, split):
    """Writes the generated split as `{train,test}.txt` into the prepared dataset's folder."""
    folder = os.fspath(self.data_path)  # TFDS's temporary folder, renamed into place on success
    os.makedirs(folder, exist_ok=True)
    for name, items in split.items():
      with open(os.path.join(folder, f"{name}.txt"), "w") as f:
        f.writelines(f"{path} {age}\n" for path, age in items)
    log.info("%s: RANDOM_80_20 split (seed %d) saved as {train,test}.txt in %s",
             self.name, SPLIT_SEED, self.data_path)

  def _read_split(self, image_dir, items, name_skips):
    # An image without an age is in neither split: it is reported in both (as RAF-DB does).
    yield from name_skips
    for path, age in items:
      yield from self._example(image_dir, path, age)

  # --- Faceptor's lists ---------------------------------------------------------------------

  def _read_list(self, image_dir, list_path):
    list_name = os.path.join(*PROTOCOL_LISTS, os.path.basename(list_path))
    for n, line in enumerate(builder_lib.read_lines(list_path), 1):
      fields = line.split()
      age = builder_lib.parse_age(fields[1]) if len(fields) == 2 else None
      if age is None:
        yield builder_lib.Skip(f"{list_name} line {n}",
                               f"malformed line {line!r} (expected `relative_path age`)")
        continue
      name_age = age_from_name(fields[0])
      if name_age is not None and name_age != age:
        yield builder_lib.Skip(fields[0], f"{list_name} gives age {age:g}, the file name "
                                          f"{name_age}")
        continue
      yield from self._example(image_dir, fields[0], age)

  def _example(self, image_dir, path, age):
    image = self.image_or_skip(os.path.join(image_dir, *path.split("/")), path)
    if isinstance(image, builder_lib.Skip):
      yield image
      return
    yield path, {"image": image, "age": np.float32(age), "name": path}


def find_images(root: str) -> list[str]:
  """The image files under root, recursively, as sorted '/'-separated relative paths."""
  found = []
  for folder, dirs, files in os.walk(root):
    dirs.sort()
    relative = os.path.relpath(folder, root)
    for name in files:
      if name.lower().endswith(IMAGE_EXTENSIONS):
        found.append(name if relative == "." else f"{relative}/{name}".replace(os.sep, "/"))
  return sorted(found)


def age_from_name(path: str) -> int | None:
  """The age a MORPH file name encodes (`070081_2F36.JPG` -> 36), or None if it encodes none."""
  match = FILE_NAME.fullmatch(path.rsplit("/", 1)[-1])
  return int(match.group(4)) if match else None
