"""LFW-73 builder: a tiny `lfw_attributes.txt` plus LFW folders, prepared and read back."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import lfw73
from data_pipelines import prepare

# Real names of the file's header (first and last few); the middle ones are placeholders.
NAMES = (["Male", "Asian", "White", "Black", "Baby", "Child", "Youth", "Middle Aged"]
         + [f"Attribute {k}" for k in range(8, 70)]
         + ["Wearing Earrings", "Wearing Necktie", "Wearing Necklace"])
# person -> image numbers with a good row; the split rule puts these on known sides.
PEOPLE = {"Colin Powell": (1, 2), "Serena Williams": (3,), "Hugo Chavez": (12,)}


def _scores(person, number):
  rng = np.random.default_rng(len(person) * 100 + number)
  scores = np.round(rng.normal(size=73), 5)
  scores[5] = 0.0  # exactly 0 is not > 0
  return scores


def _row(person, number, scores):
  return "\t".join([person, str(number)] + [f"{s:.5f}" for s in scores])


def _write_lfw(root, image_folder="lfw"):
  rows = [_row(p, n, _scores(p, n)) for p, ns in PEOPLE.items() for n in ns]
  rows += [
      _row("Colin Powell", 7, _scores("Colin Powell", 7)),                # image missing
      _row("Serena Williams", 4, _scores("Serena Williams", 4)),          # image corrupt
      _row("Hugo Chavez", 13, _scores("Hugo Chavez", 13)[:72]),           # 72 scores
      _row("Hugo Chavez", 14, _scores("Hugo Chavez", 14)).replace("0.", "x.", 1),  # not a number
  ]
  text = "# 7 images\n" + "\t".join(["#", "person", "imagenum"] + NAMES) + "\n"
  text += "\n".join(r + " " for r in rows)  # trailing spaces, no final newline
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "lfw_attributes.txt"), "w", newline="") as f:
    f.write(text.replace("\n", "\r\n"))  # CRLF
  for person, numbers in list(PEOPLE.items()) + [("Serena Williams", (4,))]:
    folder = os.path.join(root, image_folder, person.replace(" ", "_"))
    os.makedirs(folder, exist_ok=True)
    for n in numbers:
      path = os.path.join(folder, f"{person.replace(' ', '_')}_{n:04d}.jpg")
      if n == 4:
        with open(path, "wb") as f:
          f.write(b"not a jpeg")
      else:
        cv2.imwrite(path, np.full((25, 25, 3), 10 * n, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("lfw_raw"))
  _write_lfw(root)
  data_dir = str(tmp_path_factory.mktemp("lfw_tfds"))
  return prepare.prepare("lfw73", root, data_dir), data_dir


def _read(data_dir, split):
  source = tfds.data_source("lfw73", data_dir=data_dir, split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_split_rule_is_by_identity_and_fixed():
  # Pinned: a change of rule would silently move people between train and test.
  assert [lfw73.split_of_person(p) for p in PEOPLE] == ["test", "train", "train"]
  assert lfw73.split_of_person("George W Bush") == "test"


def test_values_names_and_splits(prepared):
  _, data_dir = prepared
  train, test = _read(data_dir, "train"), _read(data_dir, "test")
  assert sorted(test) == ["Colin_Powell/Colin_Powell_0001.jpg",
                          "Colin_Powell/Colin_Powell_0002.jpg"]
  assert sorted(train) == ["Hugo_Chavez/Hugo_Chavez_0012.jpg",
                           "Serena_Williams/Serena_Williams_0003.jpg"]
  for name, ex in {**train, **test}.items():
    person = name.split("/")[0].replace("_", " ")
    number = int(name[-8:-4])
    expected = (_scores(person, number) > 0).astype(np.int64)
    np.testing.assert_array_equal(ex["attributes"], expected)
    assert ex["attributes"][5] == 0
    assert ex["image"].shape == (25, 25, 3) and abs(float(ex["image"].mean()) - 10 * number) < 2


def test_attribute_names_are_stored_as_metadata(prepared):
  _, data_dir = prepared
  info = tfds.builder_from_directory(os.path.join(data_dir, "lfw73", "1.0.0")).info
  assert list(info.metadata["attribute_names"]) == NAMES


def test_bad_rows_are_counted_in_their_persons_split(prepared):
  report, _ = prepared
  assert report["train"]["read"] == 2 and report["test"]["read"] == 2
  test_skips = dict(report["test"]["skipped"])
  train_skips = dict(report["train"]["skipped"])
  assert "cannot read" in test_skips["Colin_Powell/Colin_Powell_0007.jpg"]
  assert "decode" in train_skips["Serena_Williams/Serena_Williams_0004.jpg"]
  assert sorted(k for k in train_skips if k.startswith("line")) == ["line 10", "line 9"]
  assert all("malformed" in train_skips[k] for k in ("line 9", "line 10"))


def test_deep_funneled_folder_and_missing_parts(tmp_path):
  _write_lfw(str(tmp_path / "raw"), image_folder="lfw-deepfunneled")
  report = prepare.prepare("lfw73", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  assert report["train"]["read"] == 2
  os.rename(tmp_path / "raw" / "lfw-deepfunneled", tmp_path / "raw" / "elsewhere")
  with pytest.raises(builder_lib.MissingDataError, match="lfw'"):
    prepare.prepare("lfw73", str(tmp_path / "raw"), str(tmp_path / "t2"))
  os.remove(tmp_path / "raw" / "lfw_attributes.txt")
  with pytest.raises(builder_lib.MissingDataError, match="lfw_attributes.txt"):
    prepare.prepare("lfw73", str(tmp_path / "raw"), str(tmp_path / "t3"))


def test_header_without_names_is_an_error(tmp_path):
  _write_lfw(str(tmp_path))
  path = tmp_path / "lfw_attributes.txt"
  path.write_text(path.read_text().replace("\timagenum", "\tnumber"))
  with pytest.raises(ValueError, match="header"):
    prepare.prepare("lfw73", str(tmp_path), str(tmp_path / "tfds"))
