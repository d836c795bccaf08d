"""CelebA builder: a tiny CelebA in the raw release format, prepared and read back."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import prepare
from faceptor_jax import tasks

# name -> (partition, colour); 000006 is in no partition line, 000007's image is corrupt,
# 000008's image is missing, 000009's attribute line is short, 000010's has a 0.
PARTITION = {"000001.jpg": 0, "000002.jpg": 0, "000003.jpg": 1, "000004.jpg": 2, "000005.jpg": 2,
             "000007.jpg": 0, "000008.jpg": 1, "000009.jpg": 2, "000010.jpg": 0}
GOOD = ("000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg")


def _values(i):
  """A distinct -1/1 row for image i."""
  rng = np.random.default_rng(i)
  return rng.choice([-1, 1], size=40)


def _write_celeba(root, anno="", eval_="", img=""):
  """Writes the raw files; anno/eval_/img are the sub-folders of each part ('' = top)."""
  image_dir = os.path.join(root, img, "img_align_celeba")
  os.makedirs(image_dir)
  for i in range(1, 11):
    name = f"{i:06d}.jpg"
    if name == "000008.jpg":
      continue
    path = os.path.join(image_dir, name)
    if name == "000007.jpg":
      with open(path, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 truncated")
      continue
    cv2.imwrite(path, np.full((22, 18, 3), 20 * i, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
  lines = ["10", " ".join(tasks.CELEBA_ATTRIBUTES) + " "]  # the real names line ends in a space
  for i in range(1, 11):
    name = f"{i:06d}.jpg"
    values = _values(i)
    if name == "000009.jpg":
      values = values[:39]
    cells = [f"{v:2d}" for v in values]  # columns padded to width 2: ' 1' and '-1'
    if name == "000010.jpg":
      cells[3] = " 0"
    lines.append(name + " " + " ".join(cells))
  os.makedirs(os.path.join(root, anno), exist_ok=True)
  with open(os.path.join(root, anno, "list_attr_celeba.txt"), "w", newline="") as f:
    f.write("\r\n".join(lines))  # CRLF, no final newline
  os.makedirs(os.path.join(root, eval_), exist_ok=True)
  with open(os.path.join(root, eval_, "list_eval_partition.txt"), "w") as f:
    f.write("".join(f"{n} {p}\n" for n, p in PARTITION.items()) + "bad line here\n")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  root = tmp_path_factory.mktemp("celeba_raw")
  _write_celeba(str(root))
  data_dir = str(tmp_path_factory.mktemp("celeba_tfds"))
  return prepare.prepare("celeba", str(root), data_dir), data_dir


def _read(data_dir, split):
  source = tfds.data_source("celeba", data_dir=data_dir, split=split)
  return {source[i]["name"].decode() if isinstance(source[i]["name"], bytes)
          else source[i]["name"]: source[i] for i in range(len(source))}


def test_splits_values_and_images(prepared):
  _, data_dir = prepared
  splits = {s: _read(data_dir, s) for s in ("train", "val", "test")}
  assert sorted(splits["train"]) == ["000001.jpg", "000002.jpg"]
  assert sorted(splits["val"]) == ["000003.jpg"]
  assert sorted(splits["test"]) == ["000004.jpg", "000005.jpg"]
  for split in splits.values():
    for name, ex in split.items():
      i = int(name[:6])
      np.testing.assert_array_equal(ex["attributes"], (_values(i) + 1) // 2)
      assert ex["attributes"].dtype == np.int64
      assert ex["image"].shape == (22, 18, 3)  # size read from the file, 3 channels
      assert abs(float(ex["image"].mean()) - 20 * i) < 2


def test_train_plus_val_is_read_without_a_second_copy(prepared):
  _, data_dir = prepared
  assert sorted(_read(data_dir, "train+val")) == ["000001.jpg", "000002.jpg", "000003.jpg"]
  shards = [f for f in os.listdir(os.path.join(data_dir, "celeba", "1.0.0"))
            if ".array_record" in f]
  assert sorted(f.split(".")[0] for f in shards) == ["celeba-test", "celeba-train", "celeba-val"]


def test_bad_items_are_counted_not_fatal(prepared):
  report, _ = prepared
  assert {s: report[s]["read"] for s in ("train", "val", "test")} == {
      "train": 2, "val": 1, "test": 2}
  skipped = {key: reason for r in report.values() for key, reason in r["skipped"]}
  assert "decode" in skipped["000007.jpg"]
  assert "cannot read" in skipped["000008.jpg"]
  assert "malformed" in skipped["000009.jpg"] and "malformed" in skipped["000010.jpg"]
  assert [k for k, _ in report["unassigned"]["skipped"]] == [
      "list_eval_partition.txt line 10", "000006.jpg"]
  assert [k for k, _ in report["val"]["skipped"]] == ["000008.jpg"]


def test_google_drive_layout(tmp_path):
  _write_celeba(str(tmp_path / "raw"), anno="Anno", eval_="Eval", img="Img")
  report = prepare.prepare("celeba", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  assert report["train"]["read"] == 2 and report["test"]["read"] == 2


def test_missing_files_name_the_path(tmp_path):
  _write_celeba(str(tmp_path / "raw"))
  os.remove(tmp_path / "raw" / "list_eval_partition.txt")
  with pytest.raises(builder_lib.MissingDataError, match="list_eval_partition.txt"):
    prepare.prepare("celeba", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  with pytest.raises(builder_lib.MissingDataError, match="img_align_celeba"):
    prepare.prepare("celeba", str(tmp_path / "raw" / "img_align_celeba"), str(tmp_path / "t2"))


def test_wrong_attribute_names_are_an_error(tmp_path):
  _write_celeba(str(tmp_path))
  path = tmp_path / "list_attr_celeba.txt"
  path.write_text(path.read_text().replace("Arched_Eyebrows", "Arched"))
  with pytest.raises(ValueError, match="attribute names"):
    prepare.prepare("celeba", str(tmp_path), str(tmp_path / "tfds"))
