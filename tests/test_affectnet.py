"""AffectNet builder: tiny copies of both releases, prepared and read back."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import prepare

HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
          "expression,valence,arousal")
LANDMARKS = ";".join(f"{v:.2f}" for v in np.linspace(1, 30, 136))  # unquoted, ';'-separated


def _jpeg(path, height, width, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  cv2.imwrite(path, np.full((height, width, 3), value, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])


def _row(name, x, y, w, h, code):
  return f"{name},{x},{y},{w},{h},{LANDMARKS},{code},0.785714,-0.055556"


def _write_2017(root):
  images = os.path.join(root, "Manually_Annotated_Images")
  for name, value in (("1/a.jpg", 40), ("1/b.JPG", 80), ("2/c.jpg", 120), ("2/e.jpg", 160)):
    _jpeg(os.path.join(images, name), 30, 40, value)  # 40 wide, 30 high
  with open(os.path.join(images, "2", "corrupt.jpg"), "wb") as f:
    f.write(b"\xff\xd8 not really")
  training = [HEADER,
              _row("1/a.jpg", 4, 2, 20, 20, 1),        # kept
              _row("1/b.JPG", 30, 20, 20, 20, 6),      # kept, box clipped to the image
              _row("2/c.jpg", 0, 0, 40, 30, 7),        # Contempt: filtered
              _row("2/c.jpg", 0, 0, 40, 30, 8),        # None: filtered
              _row("2/c.jpg", 0, 0, 40, 30, 10),       # No-Face: filtered
              _row("2/c.jpg", 0, 0, 40, 30, 11),       # no such code: skipped
              _row("2/c.jpg", 0, 0, -1, -1, 3),        # no face box: skipped
              _row("2/c.jpg", 50, 40, 10, 10, 3),      # box outside the image: skipped
              _row("2/missing.jpg", 0, 0, 10, 10, 2),  # no image: skipped
              _row("2/corrupt.jpg", 0, 0, 10, 10, 2),  # corrupt image: skipped
              "2/c.jpg,1,2,3",                          # truncated row: skipped
              ]
  validation = [_row("2/e.jpg", 5.5, 1.5, 12, 12, 0), _row("2/c.jpg", 0, 0, 40, 30, 9)]
  lists = os.path.join(root, "Manually_Annotated_file_lists")
  os.makedirs(lists)
  with open(os.path.join(lists, "training.csv"), "w", newline="") as f:
    f.write("\r\n".join(training) + "\r\n")
  with open(os.path.join(lists, "validation.csv"), "w") as f:
    f.write("\n".join(validation))  # no header, no final newline


def _write_2021(root):
  for folder, items in (("train_set", {"0": "1", "1": 4, "2": "7", "3": 5, "5": 2, "10": 0}),
                        ("val_set", {"0": 3})):
    os.makedirs(os.path.join(root, folder, "annotations"))
    for image_id, code in items.items():
      np.save(os.path.join(root, folder, "annotations", f"{image_id}_exp.npy"), np.array(code))
      np.save(os.path.join(root, folder, "annotations", f"{image_id}_val.npy"), np.array(0.1))
      if image_id != "5":  # 5: annotation without image
        _jpeg(os.path.join(root, folder, "images", f"{image_id}.jpg"), 24, 20 + int(image_id),
              10 * int(image_id))
  _jpeg(os.path.join(root, "train_set", "images", "7.jpg"), 24, 20, 0)  # image, no annotation
  np.save(os.path.join(root, "train_set", "annotations", "10_exp.npy"),  # pickled: refused
          np.array([{"code": 1}], dtype=object), allow_pickle=True)


def _read(data_dir, split):
  source = tfds.data_source("affectnet", data_dir=data_dir, split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_2017_release(tmp_path):
  _write_2017(str(tmp_path / "raw"))
  report = prepare.prepare("affectnet", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  train, test = _read(str(tmp_path / "tfds"), "train"), _read(str(tmp_path / "tfds"), "test")
  assert sorted(train) == ["1/a.jpg", "1/b.JPG"] and sorted(test) == ["2/e.jpg"]
  assert train["1/a.jpg"]["label"] == 1 and train["1/b.JPG"]["label"] == 6
  assert test["2/e.jpg"]["label"] == 0
  np.testing.assert_allclose(train["1/a.jpg"]["box"], [4, 2, 24, 22])
  np.testing.assert_allclose(train["1/b.JPG"]["box"], [30, 20, 40, 30])  # clipped to 40x30
  np.testing.assert_allclose(test["2/e.jpg"]["box"], [5.5, 1.5, 17.5, 13.5])
  assert train["1/a.jpg"]["box"].dtype == np.float32
  assert train["1/a.jpg"]["image"].shape == (30, 40, 3)  # the full image, as distributed
  assert abs(float(train["1/b.JPG"]["image"].mean()) - 80) < 2

  assert report["train"]["filtered"] == {"expression 7 (Contempt)": 1, "expression 8 (None)": 1,
                                         "expression 10 (No-Face)": 1}
  assert report["test"]["filtered"] == {"expression 9 (Uncertain)": 1}
  reasons = [reason for _, reason in report["train"]["skipped"]]
  assert len(reasons) == 6 and report["train"]["read"] == 2
  for expected in ("not in 0..10", "empty face box", "outside", "cannot read", "decode",
                   "malformed row"):
    assert sum(expected in r for r in reasons) == 1, expected


def test_2021_release(tmp_path):
  _write_2021(str(tmp_path / "raw"))
  report = prepare.prepare("affectnet", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  train, test = _read(str(tmp_path / "tfds"), "train"), _read(str(tmp_path / "tfds"), "test")
  assert sorted(train) == ["train_set/images/0.jpg", "train_set/images/1.jpg",
                           "train_set/images/3.jpg"]
  assert [int(train[f"train_set/images/{i}.jpg"]["label"]) for i in (0, 1, 3)] == [1, 4, 5]
  assert int(test["val_set/images/0.jpg"]["label"]) == 3
  np.testing.assert_allclose(train["train_set/images/3.jpg"]["box"], [0, 0, 23, 24])
  assert train["train_set/images/3.jpg"]["image"].shape == (24, 23, 3)
  assert report["train"]["filtered"] == {"expression 7 (Contempt)": 1}
  skipped = dict(report["train"]["skipped"])
  assert "has no image" in skipped["train_set/images/5.jpg"]
  assert "no annotations" in skipped["train_set/images/7.jpg"]
  assert "unreadable" in skipped["train_set/images/10.jpg"]
  assert report["train"]["read"] == 3 and report["test"]["read"] == 1


def test_missing_layout_names_the_path(tmp_path):
  (tmp_path / "raw").mkdir()
  (tmp_path / "raw" / "README.txt").write_text("not affectnet")
  with pytest.raises(builder_lib.MissingDataError, match="Manually_Annotated_file_lists"):
    prepare.prepare("affectnet", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  _write_2017(str(tmp_path / "raw"))
  os.remove(tmp_path / "raw" / "Manually_Annotated_file_lists" / "validation.csv")
  with pytest.raises(builder_lib.MissingDataError, match="validation.csv"):
    prepare.prepare("affectnet", str(tmp_path / "raw"), str(tmp_path / "tfds2"))
