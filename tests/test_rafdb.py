"""RAF-DB builder: a tiny `basic` release in its raw layout, prepared and read back."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import prepare, rafdb

# name -> RAF label 1..7; train_00004's image is corrupt, test_00006's image is missing.
LABELS = {"train_00001.jpg": 1, "train_00002.jpg": 7, "train_00003.jpg": 4,
          "train_00004.jpg": 2, "test_00005.jpg": 6, "test_00006.jpg": 5, "test_00007.jpg": 3}


def _write_rafdb(root):
  images = os.path.join(root, "basic", "Image", "aligned")
  os.makedirs(images)
  os.makedirs(os.path.join(root, "basic", "EmoLabel"))
  for i, name in enumerate(LABELS):
    path = os.path.join(images, name.replace(".jpg", "_aligned.jpg"))
    if name == "train_00004.jpg":
      with open(path, "wb") as f:
        f.write(b"not a jpeg")
    elif name != "test_00006.jpg":
      cv2.imwrite(path, np.full((20, 20, 3), 30 * i, np.uint8))
  lines = [f"{n} {l}" for n, l in LABELS.items()] + ["train_00009.jpg 8", "garbage"]
  with open(os.path.join(root, "basic", "EmoLabel", "list_patition_label.txt"), "w",
            newline="") as f:
    f.write("\r\n".join(lines) + "  ")  # CRLF, trailing spaces, no final newline


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  root = tmp_path_factory.mktemp("raw")
  out = tmp_path_factory.mktemp("out")
  _write_rafdb(str(root))
  report = prepare.prepare("rafdb", str(root), str(out))
  return out, report


def _read(out, split):
  src = tfds.data_source("rafdb", data_dir=str(out), split=split)
  return {src[i]["name"].decode(): src[i] for i in range(len(src))}


def test_labels_are_mapped_to_affectnet_order(prepared):
  out, _ = prepared
  train = _read(out, "train")
  assert sorted(train) == ["train_00001.jpg", "train_00002.jpg", "train_00003.jpg"]
  # RAF 1 Surprise -> 3, 7 Neutral -> 0, 4 Happiness -> 1; 6 Anger -> 6, 3 Disgust -> 5.
  assert [int(train[n]["label"]) for n in sorted(train)] == [3, 0, 1]
  test = _read(out, "test")
  assert {n: int(e["label"]) for n, e in test.items()} == {"test_00005.jpg": 6,
                                                           "test_00007.jpg": 5}
  assert train["train_00002.jpg"]["image"].shape == (20, 20, 3)


def test_bad_items_are_skipped_and_counted(prepared):
  _, report = prepared
  train_skips = dict(map(tuple, report["train"]["skipped"]))
  assert "image does not decode" in train_skips["train_00004.jpg"]
  assert any("malformed" in r for r in train_skips.values())  # label 8 and the garbage line
  assert sum("malformed" in r for r in train_skips.values()) == 2
  test_skips = dict(map(tuple, report["test"]["skipped"]))
  assert "cannot read image" in test_skips["test_00006.jpg"]
  assert report["train"]["read"] == 3 and report["test"]["read"] == 2


def test_missing_label_file_names_the_path(tmp_path):
  os.makedirs(tmp_path / "raw" / "basic" / "Image" / "aligned")
  with pytest.raises(builder_lib.MissingDataError, match="list_patition_label.txt"):
    prepare.prepare("rafdb", str(tmp_path / "raw"), str(tmp_path / "out"))


def test_mapping_table_is_a_permutation_of_the_seven_classes():
  assert sorted(rafdb.RAF_TO_AFFECTNET[1:]) == list(range(7))
