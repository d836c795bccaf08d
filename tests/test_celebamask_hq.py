"""CelebAMask-HQ builder: label painting order, partition split, skips, missing folders."""

import os
import re
import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare

IMAGE_SIZE, MASK_SIZE = 24, 16  # the image is stored as distributed, the label at mask size
# hq id -> 1-based CelebA file number: both sides of the partition boundaries, and an id in a
# mask sub-folder other than 0 (2001 // 2000 = 1).
FILE_NUMBERS = {0: 119614, 1: 162770, 2001: 162771, 3: 182637, 4: 182638, 5: 202599}
EXPECTED_SPLIT = {"train": {"0.jpg", "1.jpg"}, "val": {"2001.jpg", "3.jpg"},
                  "test": {"4.jpg", "5.jpg"}}


def write_mask(root, hq_id, part, box, value=255):
  """A 3-channel PNG mask, `value` inside box (x0, y0, x1, y1), like the real files."""
  mask = np.zeros((MASK_SIZE, MASK_SIZE, 3), np.uint8)
  x0, y0, x1, y1 = box
  mask[y0:y1, x0:x1] = value
  folder = os.path.join(root, "CelebAMask-HQ-mask-anno", str(hq_id // 2000))
  os.makedirs(folder, exist_ok=True)
  cv2.imwrite(os.path.join(folder, f"{hq_id:05d}_{part}.png"), mask)


def write_fixture(root, partition_file=True):
  os.makedirs(os.path.join(root, "CelebA-HQ-img"))
  rng = np.random.default_rng(0)
  for hq_id in FILE_NUMBERS:
    image = rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    cv2.imwrite(os.path.join(root, "CelebA-HQ-img", f"{hq_id}.jpg"), image)
    write_mask(root, hq_id, "skin", (0, 0, 16, 16))
  # id 0: hair over skin, glasses over the left eye; a grey (<= 127) pixel is not part
  write_mask(root, 0, "hair", (0, 0, 16, 4))
  write_mask(root, 0, "l_eye", (2, 6, 6, 8))
  write_mask(root, 0, "eye_g", (4, 6, 10, 8))
  write_mask(root, 0, "neck_l", (0, 12, 16, 16), value=100)
  write_mask(root, 2001, "neck", (0, 14, 16, 16))
  # bad items: image 3's nose mask does not decode; image 5's jpeg is corrupt
  with open(os.path.join(root, "CelebAMask-HQ-mask-anno", "0", "00003_nose.png"), "wb") as f:
    f.write(b"not a png")
  with open(os.path.join(root, "CelebA-HQ-img", "5.jpg"), "wb") as f:
    f.write(b"\xff\xd8 truncated")
  rows = ["idx orig_idx orig_file"]
  rows += [f"{hq_id} {n - 1} {n:06d}.jpg" for hq_id, n in FILE_NUMBERS.items()]
  rows += ["6 oops", "7 40 000041.jpg", "8 41 000099.jpg"]  # 7: no image; 8: inconsistent row
  with open(os.path.join(root, "CelebA-HQ-to-CelebA-mapping.txt"), "w", newline="") as f:
    f.write("\r\n".join(rows) + "\r\n")
  if partition_file:
    lines = [f"{n:06d}.jpg {0 if n <= 162770 else 1 if n <= 182637 else 2}"
             for n in sorted(FILE_NUMBERS.values()) + [41]]
    with open(os.path.join(root, "list_eval_partition.txt"), "w", newline="") as f:
      f.write("\r\n".join(lines + ["000042.jpg  7"]))  # a bad row, no final newline


def read_split(data_dir, split):
  source = tfds.data_source("celebamask_hq", data_dir=str(data_dir), split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def skip_keys(report, split):
  return {key for key, _ in report[split]["skipped"]}


@pytest.mark.parametrize("partition_file", [True, False])
def test_splits_labels_and_skips(tmp_path, partition_file):
  raw = tmp_path / "raw"
  write_fixture(str(raw), partition_file)
  report = prepare.prepare("celebamask_hq", str(raw), str(tmp_path / "tfds"))

  for split, names in EXPECTED_SPLIT.items():
    examples = read_split(tmp_path / "tfds", split)
    assert set(examples) == names - {"3.jpg", "5.jpg"}
    assert report[split]["read"] == len(examples)
    for example in examples.values():
      assert example["image"].shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
      assert example["label"].shape == (MASK_SIZE, MASK_SIZE, 1)
  assert skip_keys(report, "val") >= {"3.jpg"}
  assert skip_keys(report, "test") >= {"5.jpg"}
  for split in EXPECTED_SPLIT:  # malformed mapping rows are reported in every split
    assert {"mapping line 8", "mapping line 10"} <= skip_keys(report, split)
  assert "7.jpg" in skip_keys(report, "train")  # listed (n = 41 -> train), no image file
  if partition_file:
    assert "partition line 8" in skip_keys(report, "train")

  label = read_split(tmp_path / "tfds", "train")["0.jpg"]["label"][..., 0]
  expected = np.full((MASK_SIZE, MASK_SIZE), 2, np.uint8)  # face
  expected[0:4, :] = 14  # hair over face
  expected[6:8, 2:4] = 8  # re (l_eye)
  expected[6:8, 4:10] = 15  # glass over re
  np.testing.assert_array_equal(label, expected)
  neck = read_split(tmp_path / "tfds", "val")["2001.jpg"]["label"][..., 0]
  assert (neck[14:] == 2).all()  # neck (1) painted first, skin (2) over it
  assert set(np.unique(neck)) == {2}


def test_train_plus_val_reads_both(tmp_path):
  write_fixture(str(tmp_path / "raw"))
  prepare.prepare("celebamask_hq", str(tmp_path / "raw"), str(tmp_path / "tfds"))
  source = tfds.data_source("celebamask_hq", data_dir=str(tmp_path / "tfds"), split="train+val")
  assert len(source) == 3


@pytest.mark.parametrize("missing", ["CelebA-HQ-img", "CelebAMask-HQ-mask-anno",
                                     "CelebA-HQ-to-CelebA-mapping.txt"])
def test_missing_input_names_path(tmp_path, missing):
  raw = tmp_path / "raw"
  write_fixture(str(raw))
  path = raw / missing
  shutil.rmtree(path) if path.is_dir() else path.unlink()
  with pytest.raises(builder.MissingDataError, match=re.escape(str(path))):
    prepare.prepare("celebamask_hq", str(raw), str(tmp_path / "tfds"))
