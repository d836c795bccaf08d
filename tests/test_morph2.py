"""MORPH II builder: ages from file names, the seeded 80/20 split and its saved lists, Faceptor's
lists, skips, missing data."""

import os
import re
import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare

# relative path under data/ -> age its name encodes (one- and two-digit image index, a sub-folder,
# a lower-case extension)
VALID = {"070081_2F36.JPG": 36, "130630_23M46.JPG": 46, "000001_0M16.JPG": 16,
         "000002_1F77.JPG": 77, "000003_12M20.jpg": 20, "part2/000004_3F41.JPG": 41,
         "part2/000005_4M52.JPG": 52, "part2/000006_5F33.JPG": 33, "000007_6M29.JPG": 29,
         "000008_7F60.JPG": 60}


def write_image(path, seed=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 255, (18, 14, 3), np.uint8)
  cv2.imwrite(path, image)


def write_images(root):
  for i, path in enumerate(VALID):
    write_image(os.path.join(root, "data", *path.split("/")), i)
  write_image(os.path.join(root, "data", "portrait_36.jpg"))  # no age in the name
  with open(os.path.join(root, "data", "notes.csv"), "w") as f:  # not an image: ignored
    f.write("id,age\n")


def read_split(data_dir, split):
  source = tfds.data_source("morph2", data_dir=str(data_dir), split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def read_saved_list(data_dir, split):
  with open(os.path.join(data_dir, "morph2", "1.0.0", f"{split}.txt")) as f:
    return dict((path, int(age)) for path, age in (line.split() for line in f))


def test_generated_split_is_seeded_saved_and_reusable(tmp_path):
  raw = tmp_path / "raw"
  write_images(str(raw))
  report = prepare.prepare("morph2", str(raw), str(tmp_path / "a"))

  train, test = (read_saved_list(tmp_path / "a", s) for s in ("train", "test"))
  assert (len(train), len(test)) == (8, 2)
  assert {**train, **test} == VALID and not set(train) & set(test)
  for split, listed in (("train", train), ("test", test)):
    examples = read_split(tmp_path / "a", split)
    assert {name: e["age"] for name, e in examples.items()} == listed
    assert report[split]["read"] == len(listed)
    assert [key for key, _ in report[split]["skipped"]] == ["portrait_36.jpg"]

  # same seed -> same split; the saved lists, copied to label/RANDOM_80_20, reproduce it
  prepare.prepare("morph2", str(raw), str(tmp_path / "b"))
  assert read_saved_list(tmp_path / "b", "train") == train
  os.makedirs(raw / "label" / "RANDOM_80_20")
  for split in ("train", "test"):
    shutil.copy(tmp_path / "a" / "morph2" / "1.0.0" / f"{split}.txt",
                raw / "label" / "RANDOM_80_20" / f"{split}.txt")
  prepare.prepare("morph2", str(raw), str(tmp_path / "c"))
  assert set(read_split(tmp_path / "c", "test")) == set(test)


def test_images_directly_in_manual_folder(tmp_path):
  write_images(str(tmp_path / "raw"))
  os.rename(tmp_path / "raw" / "data", tmp_path / "album2")
  report = prepare.prepare("morph2", str(tmp_path / "album2"), str(tmp_path / "tfds"))
  assert report["train"]["read"] + report["test"]["read"] == len(VALID)


def test_faceptor_lists_with_bad_lines(tmp_path):
  raw = tmp_path / "raw"
  write_images(str(raw))
  with open(raw / "data" / "000009_8M30.JPG", "wb") as f:
    f.write(b"\xff\xd8\xff corrupt")
  os.makedirs(raw / "label" / "RANDOM_80_20")
  with open(raw / "label" / "RANDOM_80_20" / "train.txt", "w", newline="") as f:
    f.write("070081_2F36.JPG 36 \r\n"  # trailing space, CRLF
            "portrait_36.jpg  36\r\n"  # no age in the name: the list's age is used
            "130630_23M46.JPG 45\r\n"  # disagrees with the name
            "000001_0M16.JPG\r\n"  # no age field
            "missing_0M20.JPG 20\r\n"  # no such image
            "000009_8M30.JPG 30")  # corrupt image, no final newline
  with open(raw / "label" / "RANDOM_80_20" / "test.txt", "w") as f:
    f.write("part2/000004_3F41.JPG 41\n")
  report = prepare.prepare("morph2", str(raw), str(tmp_path / "tfds"))

  train = read_split(tmp_path / "tfds", "train")
  assert {name: float(e["age"]) for name, e in train.items()} == {"070081_2F36.JPG": 36.0,
                                                                  "portrait_36.jpg": 36.0}
  assert set(read_split(tmp_path / "tfds", "test")) == {"part2/000004_3F41.JPG"}
  assert [key for key, _ in report["train"]["skipped"]] == [
      "130630_23M46.JPG", "label/RANDOM_80_20/train.txt line 4", "missing_0M20.JPG",
      "000009_8M30.JPG"]
  assert report["test"]["skipped"] == []


def test_missing_data(tmp_path):
  os.makedirs(tmp_path / "no_images")
  (tmp_path / "no_images" / "readme.txt").write_text("no images here\n")
  with pytest.raises(builder.MissingDataError, match=re.escape(str(tmp_path / "no_images"))):
    prepare.prepare("morph2", str(tmp_path / "no_images"), str(tmp_path / "tfds"))
  raw = tmp_path / "raw"
  write_images(str(raw))
  os.makedirs(raw / "label" / "RANDOM_80_20")
  (raw / "label" / "RANDOM_80_20" / "train.txt").write_text("070081_2F36.JPG 36\n")
  missing = raw / "label" / "RANDOM_80_20" / "test.txt"
  with pytest.raises(builder.MissingDataError, match=re.escape(str(missing))):
    prepare.prepare("morph2", str(raw), str(tmp_path / "tfds"))
