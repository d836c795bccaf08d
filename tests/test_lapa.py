"""LaPa builder: labels, 106 landmarks, split folders, skips, missing folders."""

import os
import re

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare

WIDTH, HEIGHT = 20, 14  # not square: catches a width/height swap


def landmarks_of(seed):
  return np.random.default_rng(seed).uniform(0, WIDTH, (106, 2)).astype(np.float32)


def label_of(seed):
  return np.random.default_rng(seed).integers(0, 11, (HEIGHT, WIDTH), dtype=np.uint8)


def write_example(root, split, stem, seed, label=None, landmark_text=None):
  for sub in ("images", "labels", "landmarks"):
    os.makedirs(os.path.join(root, split, sub), exist_ok=True)
  image = np.random.default_rng(seed).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
  cv2.imwrite(os.path.join(root, split, "images", f"{stem}.jpg"), image)
  cv2.imwrite(os.path.join(root, split, "labels", f"{stem}.png"),
              label_of(seed) if label is None else label)
  if landmark_text is None:  # the real files' shape: `106`, then `x y` lines (CRLF here)
    landmark_text = "106\r\n" + "".join(f"{x:.4f} {y:.4f} \r\n" for x, y in landmarks_of(seed))
  with open(os.path.join(root, split, "landmarks", f"{stem}.txt"), "w", newline="") as f:
    f.write(landmark_text)


def write_fixture(root):
  write_example(root, "train", "100_a", 1)
  write_example(root, "train", "101_b", 2, label=np.dstack([label_of(2)] * 3))  # grey as RGB
  write_example(root, "val", "200.x", 3,  # a dot in the name; no final newline
                landmark_text="106\n" + "\n".join(f"{x} {y}" for x, y in landmarks_of(3)))
  write_example(root, "test", "300", 4)
  # bad items, one of each kind
  write_example(root, "train", "bad_points", 5, landmark_text="105\n" + "1 2\n" * 105)
  write_example(root, "train", "bad_class", 6, label=np.full((HEIGHT, WIDTH), 11, np.uint8))
  write_example(root, "val", "bad_size", 7, label=np.zeros((HEIGHT, WIDTH + 1), np.uint8))
  write_example(root, "test", "no_label", 8)
  os.remove(os.path.join(root, "test", "labels", "no_label.png"))
  write_example(root, "test", "corrupt", 9)
  with open(os.path.join(root, "test", "images", "corrupt.jpg"), "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 cut short")


def read_split(data_dir, split):
  source = tfds.data_source("lapa", data_dir=str(data_dir), split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def test_examples_splits_and_skips(tmp_path):
  write_fixture(str(tmp_path / "raw"))
  report = prepare.prepare("lapa", str(tmp_path / "raw"), str(tmp_path / "tfds"))

  expected = {"train": {"train/images/100_a.jpg": 1, "train/images/101_b.jpg": 2},
              "val": {"val/images/200.x.jpg": 3}, "test": {"test/images/300.jpg": 4}}
  for split, seeds in expected.items():
    examples = read_split(tmp_path / "tfds", split)
    assert set(examples) == set(seeds)
    for name, seed in seeds.items():
      example = examples[name]
      assert example["image"].shape == (HEIGHT, WIDTH, 3)
      np.testing.assert_array_equal(example["label"][..., 0], label_of(seed))
      np.testing.assert_allclose(example["landmarks"], landmarks_of(seed), atol=1e-4)
      assert example["landmarks"].dtype == np.float32
    assert report[split]["read"] == len(seeds)

  skipped = {split: {key for key, _ in r["skipped"]} for split, r in report.items()}
  assert skipped == {"train": {"train/images/bad_points.jpg", "train/images/bad_class.jpg"},
                     "val": {"val/images/bad_size.jpg"},
                     "test": {"test/images/no_label.jpg", "test/images/corrupt.jpg"}}
  assert len(tfds.data_source("lapa", data_dir=str(tmp_path / "tfds"), split="train+val")) == 3


@pytest.mark.parametrize("missing", ["val/landmarks", "test"])
def test_missing_folder_names_path(tmp_path, missing):
  raw = tmp_path / "raw"
  write_fixture(str(raw))
  os.rename(raw / missing, tmp_path / "moved")
  with pytest.raises(builder.MissingDataError, match=re.escape(str(raw / missing))):
    prepare.prepare("lapa", str(raw), str(tmp_path / "tfds"))
