"""AFLW-19 builder: `AFLWinfo_release.mat` (MATLAB v5) + data/flickr images, the `ra` split."""

import os

import cv2
import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

from data_pipelines import aflw19, builder, prepare

TRAIN_SIZE = 4  # stands in for the official 20,000 in a 7-face fixture
RA = [5, 1, 7, 2, 6, 3, 4]  # 1-based: train = faces 4, 0, 6, 1; test = faces 5, 2, 3
NAMES = ["0/image00001.jpg", "2/image00002.jpg", "3/image00003.jpg", "3/image00003.jpg",
         "0/image00004.jpg", "2/image00005.jpg", "0/image09999.jpg"]  # faces 2, 3 share an image


def face_points(face):
  rng = np.random.default_rng(face)
  return np.stack([rng.uniform(2, 30, 19), rng.uniform(2, 20, 19)], axis=1)


def write_info(path, ra=RA, names=NAMES):
  n = len(names)
  bbox = np.array([[1 + f, 31, 2, 22] for f in range(n)], np.float64)  # left right top bottom
  bbox[1] = [20, 10, 2, 22]  # right < left: skipped
  data = np.stack([np.concatenate([face_points(f)[:, 0], face_points(f)[:, 1]]) for f in range(n)])
  mask = np.ones((n, 19))
  mask[5, [3, 17]] = 0  # a test face with two hidden points: not frontal
  name_cells = np.empty((n, 1), dtype=object)
  for i, name in enumerate(names):
    name_cells[i, 0] = name
  scipy.io.savemat(str(path), {"bbox": bbox, "data": data, "mask_new": mask,
                               "nameList": name_cells, "ra": np.array([ra], np.float64)})


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
  root = tmp_path_factory.mktemp("aflw")
  write_info(root / "AFLWinfo_release.mat")
  for i, name in enumerate(sorted(set(NAMES) - {"0/image09999.jpg"})):  # face 6: missing image
    path = root / "data" / "flickr" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(i).integers(0, 255, (24, 34, 3), dtype=np.uint8))
  return root


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(aflw19, "TRAIN_SIZE", TRAIN_SIZE)
    return data_dir, prepare.prepare("aflw19", str(raw), data_dir)


def faces_in(data_dir, split):
  """{face index: example}, each example matched to its fixture face by its points."""
  examples = tfds.data_source("aflw19", data_dir=data_dir, split=split)
  return {next(f for f in range(len(NAMES))
               if np.abs(e["landmarks"] - face_points(f)).max() < 1e-4): e for e in examples}


def test_ra_split_counts_and_skips(prepared):
  data_dir, report = prepared
  assert {s: r["read"] for s, r in report.items()} == {
      "train": 2, "test_full": 3, "test_frontal": 2}
  assert dict(report["train"]["skipped"]).keys() == {"face 1", "face 6 (0/image09999.jpg)"}
  assert "empty box" in dict(report["train"]["skipped"])["face 1"]
  assert set(faces_in(data_dir, "train")) == {4, 0}
  assert set(faces_in(data_dir, "test_full")) == {5, 2, 3}
  assert set(faces_in(data_dir, "test_frontal")) == {2, 3}


def test_landmarks_box_visibility_and_names(prepared):
  data_dir, _ = prepared
  test = faces_in(data_dir, "test_full")
  face = test[5]
  np.testing.assert_allclose(face["landmarks"], face_points(5), atol=1e-4)
  np.testing.assert_array_equal(face["box"], np.float32([6, 2, 31, 22]))  # left top right bottom
  assert face["visible"].dtype == np.float32
  np.testing.assert_array_equal(np.flatnonzero(face["visible"] == 0), [3, 17])
  assert face["name"].decode() == "2/image00005.jpg" and face["image"].shape == (24, 34, 3)
  assert test[2]["name"] == test[3]["name"] == b"3/image00003.jpg"  # two faces, one image


def test_official_train_size_is_the_default(raw, tmp_path):
  assert aflw19.TRAIN_SIZE == 20_000
  with pytest.raises(ValueError, match="holds 7 faces.*first 20,000"):
    prepare.prepare("aflw19", str(raw), str(tmp_path / "out"))


def test_bad_info_file_and_missing_images(raw, tmp_path, monkeypatch):
  monkeypatch.setattr(aflw19, "TRAIN_SIZE", TRAIN_SIZE)
  manual = tmp_path / "aflw"
  manual.mkdir()
  with pytest.raises(builder.MissingDataError, match="AFLWinfo_release.mat"):
    prepare.prepare("aflw19", str(manual), str(tmp_path / "a"))
  write_info(manual / "AFLWinfo_release.mat")
  with pytest.raises(builder.MissingDataError, match=os.path.join("data", "flickr")):
    prepare.prepare("aflw19", str(manual), str(tmp_path / "b"))
  os.symlink(raw / "data", manual / "data")
  write_info(manual / "AFLWinfo_release.mat", ra=[1, 1, 2, 3, 4, 5, 6])
  with pytest.raises(ValueError, match="ra is not a permutation"):
    prepare.prepare("aflw19", str(manual), str(tmp_path / "c"))
