"""FERPlus builder: tiny copies of both raw forms, majority-voted, prepared and read back."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib
from data_pipelines import ferplus
from data_pipelines import prepare

VOTES_HEADER = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                "contempt,unknown,NF")
# (Usage, image name, votes, AffectNet label under 7cls / 8cls or None if filtered)
ROWS = [
    ("Training", "fer0000000.png", "4,0,0,1,3,2,0,0,0,0", None, None),  # 4 of 9: no majority
    ("Training", "fer0000001.png", "6,0,1,1,0,0,0,0,2,0", 0, 0),        # neutral after outliers
    ("Training", "", "0,0,0,0,0,0,0,0,0,10", None, None),               # removed by FER+
    ("Training", "fer0000003.png", "0,0,0,8,0,0,0,2,0,0", 2, 2),        # sadness -> Sad
    ("Training", "fer0000004.png", "0,0,0,0,0,0,0,7,1,2", None, 7),     # contempt
    ("Training", "fer0000005.png", "0,7,0,0,0,0,0,0,3,0", 1, 1),        # happiness
    ("Training", "fer0000006.png", "0,0,0,0,0,0,0,0,8,2", None, None),  # majority unknown
    ("Training", "fer0000007.png", "0,0,x,0,0,0,0,0,8,2", None, None),  # malformed votes
    ("Training", "fer0000008.png", "10,0,0,0,0,0,0,0,0,0", None, None),  # Usage out of step
    ("PublicTest", "fer0000009.png", "0,0,9,0,0,0,1,0,0,0", 3, 3),      # surprise
    ("PublicTest", "fer0000010.png", "5,5,0,0,0,0,0,0,0,0", None, None),  # tie
    ("PrivateTest", "fer0000011.png", "1,0,0,0,0,0,9,0,0,0", 4, 4),     # fear -> Fear
    ("PrivateTest", "fer0000012.png", "0,0,0,0,0,0,0,0,2,8", None, None),  # not a face
    ("PrivateTest", "fer0000013.png", "0,0,0,0,8,2,0,0,0,0", None, None),  # pixels malformed
    ("PrivateTest", "fer0000014.png", "0,0,0,0,0,8,0,0,0,2", 5, 5),     # disgust
    ("PrivateTest", "fer0000015.png", "0,0,0,0,9,1,0,0,0,0", 6, 6),     # anger -> Anger
]
SPLIT_OF_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def _pixels(i):
  return np.random.default_rng(i).integers(0, 256, (48, 48)).astype(np.uint8)


def _write_csvs(root):
  os.makedirs(root, exist_ok=True)
  pixel_rows = ["emotion,pixels,Usage"]
  for i, (usage, name, *_) in enumerate(ROWS):
    values = " ".join(str(v) for v in _pixels(i).ravel())
    if name == "fer0000013.png":
      values = values.rsplit(" ", 1)[0]  # 2303 values
    if name == "fer0000008.png":
      usage = "PublicTest"
    pixel_rows.append(f"0,{values},{usage}")
  pixel_rows.append(f"0,{' '.join(['7'] * 2304)},PrivateTest")  # a row fer2013new.csv lacks
  with open(os.path.join(root, "fer2013.csv"), "w", newline="") as f:
    f.write("\r\n".join(pixel_rows) + "\r\n")
  with open(os.path.join(root, "fer2013new.csv"), "w") as f:
    f.write("\n".join([VOTES_HEADER] + [f"{u},{n},{v}" for u, n, v, *_ in ROWS]) + "\n")


def _write_folders(root):
  """FERPlus's generated folders: Train and Test with the box column, Valid without."""
  for usage, folder in (("Training", "FER2013Train"), ("PublicTest", "FER2013Valid"),
                        ("PrivateTest", "FER2013Test")):
    os.makedirs(os.path.join(root, "data", folder))
    lines = []
    for i, (row_usage, name, votes, *_) in enumerate(ROWS):
      if row_usage != usage or not name or name == "fer0000008.png":
        continue
      if name != "fer0000013.png":  # its image is missing here
        cv2.imwrite(os.path.join(root, "data", folder, name), _pixels(i))
      box = "" if folder == "FER2013Valid" else '"(0, 0, 48, 48)",'
      lines.append(f"{name},{box}{votes}")
    with open(os.path.join(root, "data", folder, "label.csv"), "w") as f:
      f.write("\n".join(lines))


def _read(data_dir, name, split):
  source = tfds.data_source(name, data_dir=data_dir, split=split)
  return {source[i]["name"].decode(): source[i] for i in range(len(source))}


def _expected(split, config_index):
  """{image name: label} of a split; config_index 3 = 7cls, 4 = 8cls (the ROWS columns)."""
  return {row[1]: row[config_index] for row in ROWS
          if SPLIT_OF_USAGE[row[0]] == split and row[config_index] is not None}


def test_majority_rule():
  assert ferplus.majority_vote([4, 0, 0, 1, 3, 2, 0, 0, 0, 0]) is None  # 4 of 9 remaining
  assert ferplus.majority_vote([6, 0, 1, 1, 0, 0, 0, 0, 2, 0]) == 0    # 6 of 8 remaining
  assert ferplus.majority_vote([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]) is None  # tie
  assert ferplus.majority_vote([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]) is None  # all outliers
  assert ferplus.majority_vote([0, 0, 0, 0, 0, 0, 0, 0, 2, 8]) == 9


@pytest.fixture(scope="module")
def prepared_csv(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("ferplus_raw"))
  _write_csvs(root)
  data_dir = str(tmp_path_factory.mktemp("ferplus_tfds"))
  return prepare.prepare("ferplus", root, data_dir), data_dir, root


def test_csv_form_labels_and_lossless_pixels(prepared_csv):
  report, data_dir, _ = prepared_csv
  for split in ("train", "val", "test"):
    examples = _read(data_dir, "ferplus", split)
    assert {n: int(ex["label"]) for n, ex in examples.items()} == _expected(split, 3)
    for name, ex in examples.items():
      pixels = _pixels([row[1] for row in ROWS].index(name))
      assert ex["image"].shape == (48, 48, 3)
      for channel in range(3):
        np.testing.assert_array_equal(ex["image"][..., channel], pixels)
  assert report["train"]["filtered"] == {
      "no majority": 1, "removed by FER+ (empty image name)": 1, "majority unknown": 1,
      "majority contempt (7-class config)": 1}
  assert report["val"]["filtered"] == {"no majority": 1}
  assert report["test"]["filtered"] == {"majority NF": 1}
  train_skips, test_skips = dict(report["train"]["skipped"]), dict(report["test"]["skipped"])
  assert "malformed votes" in train_skips["fer0000007.png"]
  assert "out of step" in train_skips["fer0000008.png"]
  assert "pixels" in test_skips["fer0000013.png"]
  assert "no matching row in fer2013new.csv" in test_skips["fer2013.csv row 17"]
  assert report["val"]["skipped"] == []


def test_default_config_and_train_plus_val(prepared_csv):
  _, data_dir, _ = prepared_csv
  assert os.path.isdir(os.path.join(data_dir, "ferplus", "7cls", "1.0.0"))
  both = _read(data_dir, "ferplus/7cls", "train+val")
  assert sorted(both) == sorted({**_expected("train", 3), **_expected("val", 3)})


def test_8cls_keeps_contempt(prepared_csv, tmp_path):
  _, _, root = prepared_csv
  data_dir = str(tmp_path / "tfds")
  builder = ferplus.Builder(config="8cls", data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=root))
  train = _read(data_dir, "ferplus/8cls", "train")
  assert {n: int(ex["label"]) for n, ex in train.items()} == _expected("train", 4)
  assert train["fer0000004.png"]["label"] == 7
  assert "majority contempt (7-class config)" not in builder.skip_report()["train"]["filtered"]


def test_folder_form(tmp_path):
  _write_folders(str(tmp_path / "FERPlus"))
  report = prepare.prepare("ferplus", str(tmp_path / "FERPlus"), str(tmp_path / "tfds"))
  for split in ("train", "val", "test"):
    examples = _read(str(tmp_path / "tfds"), "ferplus", split)
    expected = _expected(split, 3)
    assert {n: int(ex["label"]) for n, ex in examples.items()} == expected
    for name, ex in examples.items():
      np.testing.assert_array_equal(ex["image"][..., 0],
                                    _pixels([row[1] for row in ROWS].index(name)))
  assert "cannot read" in dict(report["test"]["skipped"])["fer0000013.png"]
  assert "malformed votes" in dict(report["train"]["skipped"])["fer0000007.png"]


def test_missing_files_name_the_path(tmp_path):
  (tmp_path / "fer2013new.csv").write_text(VOTES_HEADER + "\n")
  with pytest.raises(builder_lib.MissingDataError, match="fer2013.csv"):
    prepare.prepare("ferplus", str(tmp_path), str(tmp_path / "tfds"))
  os.remove(tmp_path / "fer2013new.csv")
  (tmp_path / "README.md").write_text("no data")
  with pytest.raises(builder_lib.MissingDataError, match="fer2013new.csv"):
    prepare.prepare("ferplus", str(tmp_path), str(tmp_path / "tfds2"))
