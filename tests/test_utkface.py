"""UTKFace builder: MWR/CORAL and Faceptor lists, the .chip.jpg suffix, age checks, skips, and
the error when no list is present."""

import os
import re

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare

RELEASED = ("40_1_3_20170119165539693.jpg.chip.jpg", "21_0_0_20170110224238891.jpg.chip.jpg",
            "39_1_20170116174525125.jpg.chip.jpg",  # one of the three without a race field
            "60_0_1_20170110142625314.jpg.chip.jpg", "33_1_2_20170104170000000.jpg.chip.jpg",
            "45_0_0_20170117172600000.jpg.chip.jpg")


def write_images(folder):
  os.makedirs(folder)
  for i, name in enumerate(RELEASED):
    image = np.random.default_rng(i).integers(0, 255, (16, 16, 3), np.uint8)
    cv2.imwrite(os.path.join(folder, name), image)
  with open(os.path.join(folder, RELEASED[-1]), "wb") as f:
    f.write(b"\xff\xd8\xff broken")


def write_list(path, rows):
  """A protocol list as MWR ships it: header `,filename,age,database`, CRLF line endings."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", newline="") as f:
    f.write("\r\n".join([",filename,age,database"] + rows) + "\r\n")


TRAIN_ROWS = ["18896,40_1_3_20170119165539693.jpg,40,utk",
              "3,21_0_0_20170110224238891.jpg , 21 ,utk",  # column padding
              "7,39_1_20170116174525125.jpg,39,utk",
              "8,33_1_2_20170104170000000.jpg,34,utk",  # disagrees with the file name
              "9,50_1_0_20170101000000000.jpg,50,utk",  # no such image
              "10,broken row"]
TEST_ROWS = ["1,60_0_1_20170110142625314.jpg.chip.jpg,60,utk",  # suffix already there
             "2,45_0_0_20170117172600000.jpg,45,utk"]  # corrupt image


def read_split(data_dir, split):
  source = tfds.data_source("utkface", data_dir=str(data_dir), split=split)
  return {source[i]["name"].decode(): source[i]["age"] for i in range(len(source))}


def test_mwr_lists(tmp_path):
  raw = tmp_path / "raw"
  write_images(str(raw / "UTKFace"))
  write_list(str(raw / "UTK_train_coral.csv"), TRAIN_ROWS)
  write_list(str(raw / "UTK_test_coral.csv"), TEST_ROWS)
  report = prepare.prepare("utkface", str(raw), str(tmp_path / "tfds"))

  assert read_split(tmp_path / "tfds", "train") == {RELEASED[0]: 40.0, RELEASED[1]: 21.0,
                                                    RELEASED[2]: 39.0}
  assert read_split(tmp_path / "tfds", "test") == {RELEASED[3]: 60.0}
  assert [key for key, _ in report["train"]["skipped"]] == [
      RELEASED[4], "50_1_0_20170101000000000.jpg", "UTK_train_coral.csv line 7"]
  assert [key for key, _ in report["test"]["skipped"]] == [RELEASED[5]]
  assert (report["train"]["read"], report["test"]["read"]) == (3, 1)


def test_faceptor_lists_and_data_folder(tmp_path):
  raw = tmp_path / "raw"
  write_images(str(raw / "data"))
  write_list(str(raw / "label" / "train.csv"), TRAIN_ROWS[:2])
  write_list(str(raw / "label" / "test.csv"), TEST_ROWS[:1])
  prepare.prepare("utkface", str(raw), str(tmp_path / "tfds"))
  assert set(read_split(tmp_path / "tfds", "train")) == set(RELEASED[:2])
  assert set(read_split(tmp_path / "tfds", "test")) == {RELEASED[3]}


def test_missing_lists_or_images(tmp_path):
  raw = tmp_path / "raw"
  write_images(str(raw / "UTKFace"))
  where_to_get = re.escape(str(raw / "UTK_train_coral.csv")) + "(.|\n)*nhshin-mcl/MWR"
  with pytest.raises(builder.MissingDataError, match=where_to_get):
    prepare.prepare("utkface", str(raw), str(tmp_path / "tfds"))
  write_list(str(raw / "UTK_train_coral.csv"), TRAIN_ROWS)
  with pytest.raises(builder.MissingDataError, match=re.escape(str(raw / "UTK_test_coral.csv"))):
    prepare.prepare("utkface", str(raw), str(tmp_path / "tfds"))
  write_list(str(raw / "UTK_test_coral.csv"), TEST_ROWS)
  os.rename(raw / "UTKFace", tmp_path / "moved")
  with pytest.raises(builder.MissingDataError, match=re.escape(str(raw / "UTKFace"))):
    prepare.prepare("utkface", str(raw), str(tmp_path / "tfds"))
