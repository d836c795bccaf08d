"""UTKFace (age), the MWR/CORAL protocol: ages 21-60, 13,146 train / 3,287 test.

Images: the "Aligned&Cropped Faces" release, `<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`
(200x200 JPEG; three files lack the race field, e.g. `39_1_20170116174525125.jpg.chip.jpg`, which
is fine: only the age, the first field, is read).

Splits `train` and `test` come from protocol lists, not from the images:
  * MWR/CORAL's `UTK_train_coral.csv` and `UTK_test_coral.csv` (nhshin-mcl/MWR, `datalist/utk/`):
    header `,filename,age,database`, rows `18896,40_1_3_20170119165539693.jpg,40,utk`, CRLF.
    Their names lack the `.chip.jpg` suffix of the released files; it is added when the file
    without it does not exist.
  * or Faceptor's `label/{train,test}.csv`, the same format (used only when the MWR lists are
    absent).
The age is the list's; a file name whose age disagrees with it is a skip, and so is a name that
encodes no age.

Stored: `image` (as distributed), `age` float32 (years), `name` (the image's file name). The
authors' 112-px crop is unreleased: the aligned 200x200 release is used and the transform resizes
it to 112 (a centre square crop first, a no-op for these square images).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

SPLITS = ("train", "test")
# Protocol lists, in order of preference: {split: path parts under the manual folder}.
MWR_LISTS = {"train": ("UTK_train_coral.csv",), "test": ("UTK_test_coral.csv",)}
FACEPTOR_LISTS = {"train": ("label", "train.csv"), "test": ("label", "test.csv")}
IMAGE_FOLDERS = ("data", "UTKFace")  # Faceptor's name, then the release's
CHIP_SUFFIX = ".chip.jpg"


class Builder(builder_lib.FaceDatasetBuilder):
  """UTKFace, aligned & cropped, with the MWR/CORAL 21-60 train/test lists."""

  name = "utkface"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download UTKFace's "Aligned&Cropped Faces" (UTKFace.tar.gz, https://susanqq.github.io/UTKFace/)
  and unpack it into the manual folder (giving `UTKFace/`). Add the protocol lists
  `UTK_train_coral.csv` and `UTK_test_coral.csv` from https://github.com/nhshin-mcl/MWR
  (`datalist/utk/`) to the same folder, and pass that folder as --manual_dir.
  """
  LAYOUT = """
  UTKFace/40_1_3_20170119165539693.jpg.chip.jpg ...   the aligned release (or data/...)
  UTK_train_coral.csv   the MWR/CORAL lists, from github.com/nhshin-mcl/MWR `datalist/utk/`:
  UTK_test_coral.csv    header `,filename,age,database`, then rows like
                        `18896,40_1_3_20170119165539693.jpg,40,utk`
  (or Faceptor's label/train.csv and label/test.csv, the same format)
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "age": tfds.features.Scalar(np.float32),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    image_dir = next((os.path.join(manual_dir, f) for f in IMAGE_FOLDERS
                      if os.path.isdir(os.path.join(manual_dir, f))), None)
    if image_dir is None:
      self.require(manual_dir, IMAGE_FOLDERS[-1])  # raises, naming the release's folder
    lists = next((l for l in (MWR_LISTS, FACEPTOR_LISTS)
                  if any(os.path.exists(os.path.join(manual_dir, *p)) for p in l.values())),
                 MWR_LISTS)  # none present: the errors below name the MWR lists
    paths = {split: self.require(manual_dir, *lists[split]) for split in SPLITS}
    return {split: (lambda split=split: self._read(image_dir, paths[split], manual_dir))
            for split in SPLITS}

  def _read(self, image_dir, list_path, manual_dir):
    list_name = os.path.relpath(list_path, manual_dir)
    for n, line in enumerate(builder_lib.read_lines(list_path), 1):
      fields = [f.strip() for f in line.split(",")]
      age = builder_lib.parse_age(fields[2]) if len(fields) >= 3 else None
      if n == 1 and age is None and len(fields) >= 3:  # the header line
        continue
      if age is None or not fields[1]:
        yield builder_lib.Skip(f"{list_name} line {n}", f"malformed row {line!r} (expected "
                                                        "`index,filename,age,database`)")
        continue
      file_name = find_image(image_dir, fields[1])
      if file_name is None:
        yield builder_lib.Skip(fields[1], f"no image {fields[1]} or {fields[1]}{CHIP_SUFFIX} "
                                          f"in {image_dir}")
        continue
      name_age = age_from_name(file_name)
      if name_age != age:
        yield builder_lib.Skip(file_name, f"{list_name} gives age {age:g}, the file name "
                                          f"{'none' if name_age is None else name_age}")
        continue
      image = self.image_or_skip(os.path.join(image_dir, file_name), file_name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      yield file_name, {"image": image, "age": np.float32(age), "name": file_name}


def find_image(image_dir: str, listed: str) -> str | None:
  """The image file a list row names: as listed, else with the release's `.chip.jpg` suffix."""
  for name in (listed, listed + CHIP_SUFFIX):
    if os.path.isfile(os.path.join(image_dir, name)):
      return name
  return None


def age_from_name(file_name: str) -> int | None:
  """The age a UTKFace file name starts with (`40_1_3_...jpg.chip.jpg` -> 40), or None."""
  first = file_name.split("_", 1)[0]
  return int(first) if first.isdigit() and "_" in file_name else None
