"""COFW builder: MATLAB v7.3 files written with hdf5storage (cell references, transposed arrays)."""

import h5py
import hdf5storage
import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare

# Hand-worked crop box: x spans 3.4..17.6 -> [3, 18], y 2.5..12.2 -> [2, 13]; half-side
# max(15, 11)/2 = 7.5 around (10.5, 7.5).
HAND_BOX = np.float32([3.0, 0.0, 18.0, 15.0])


def face_points(seed, hand=False):
  rng = np.random.default_rng(seed)
  points = np.stack([rng.uniform(4, 17, 29), rng.uniform(3, 12, 29)], axis=1)
  if hand:
    points[0], points[1] = (3.4, 2.5), (17.6, 12.2)
  return points


def phis_row(points, occluded_seed=0):
  flags = np.random.default_rng(occluded_seed).integers(0, 2, 29)
  return np.concatenate([points[:, 0], points[:, 1], flags]).astype(np.float64)


def cell(images):
  array = np.empty((len(images), 1), dtype=object)  # an N x 1 MATLAB cell
  for i, image in enumerate(images):
    array[i, 0] = image
  return array


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
  root = tmp_path_factory.mktemp("cofw")
  rng = np.random.default_rng(0)
  train_images = [rng.integers(0, 255, (20, 28, 3), dtype=np.uint8),   # RGB, H x W x 3
                  rng.integers(0, 255, (18, 24), dtype=np.uint8),      # grey, 2-D
                  rng.uniform(0, 1, (18, 24)),                          # double: not an image
                  rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)]   # NaN landmarks
  train_points = [face_points(1, hand=True), face_points(2), face_points(3), face_points(4)]
  train_phis = np.stack([phis_row(p, i) for i, p in enumerate(train_points)])
  train_phis[3, 5] = np.nan
  hdf5storage.savemat(str(root / "COFW_train_color.mat"),
                      {"IsTr": cell(train_images), "phisTr": train_phis,
                       "bboxesTr": np.tile([2.0, 2.0, 16.0, 12.0], (4, 1))},
                      format="7.3", oned_as="column")
  test_images = [rng.integers(0, 255, (22, 30, 3), dtype=np.uint8),
                 np.zeros((0, 0), np.uint8)]  # an empty cell (MATLAB_empty)
  test_points = [face_points(5), face_points(6), face_points(7)]  # one row more than images
  hdf5storage.savemat(str(root / "COFW_test_color.mat"),
                      {"IsT": cell(test_images), "bboxesT": np.tile([2.0, 2.0, 16.0, 12.0], (3, 1)),
                       "phisT": np.stack([phis_row(p) for p in test_points])},
                      format="7.3", oned_as="column")
  return root, train_images, train_points, test_images, test_points


def test_fixture_is_matlab_v73_with_cell_references_and_transposed_arrays(raw):
  root, train_images, _, _, _ = raw
  path = root / "COFW_train_color.mat"
  assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file" and h5py.is_hdf5(path)
  with h5py.File(path, "r") as f:
    assert f["phisTr"].shape == (87, 4) and f["IsTr"].shape == (1, 4)
    refs = f["IsTr"][()]
    assert isinstance(refs[0, 0], h5py.Reference)
    assert f[refs[0, 0]].shape == (3, 28, 20)  # H x W x 3 stored as 3 x W x H
    assert f[refs[0, 1]].shape == (24, 18)


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return data_dir, prepare.prepare("cofw", str(raw[0]), data_dir)


def read_split(data_dir, split):
  source = tfds.data_source("cofw", data_dir=data_dir, split=split)
  return {example["name"].decode(): example for example in source}


def test_counts_and_skips(prepared):
  _, report = prepared
  assert {s: r["read"] for s, r in report.items()} == {"train": 2, "test": 1}
  reasons = {k: r for split in report.values() for k, r in split["skipped"]}
  assert set(reasons) == {"COFW_train_color.mat#2", "COFW_train_color.mat#3",
                          "COFW_test_color.mat#1", "COFW_test_color.mat#2"}
  assert "float64" in reasons["COFW_train_color.mat#2"]
  assert "not finite" in reasons["COFW_train_color.mat#3"]
  assert "empty cell" in reasons["COFW_test_color.mat#1"]
  assert "without an image" in reasons["COFW_test_color.mat#2"]


def test_pixels_landmarks_and_box(prepared, raw):
  data_dir, _ = prepared
  _, train_images, train_points, test_images, test_points = raw
  train = read_split(data_dir, "train")
  colour = train["COFW_train_color.mat#0"]
  np.testing.assert_array_equal(colour["image"], train_images[0])  # lossless, RGB order kept
  np.testing.assert_allclose(colour["landmarks"], train_points[0], atol=1e-4)
  np.testing.assert_array_equal(colour["box"], HAND_BOX)
  grey = train["COFW_train_color.mat#1"]["image"]
  assert grey.shape == (18, 24, 3)
  for channel in range(3):
    np.testing.assert_array_equal(grey[..., channel], train_images[1])
  test = read_split(data_dir, "test")["COFW_test_color.mat#0"]
  np.testing.assert_array_equal(test["image"], test_images[0])
  np.testing.assert_allclose(test["landmarks"], test_points[0], atol=1e-4)
  x0, y0, x1, y1 = test["box"]
  assert x1 - x0 == y1 - y0 and (test["landmarks"] >= [x0, y0]).all()


def test_missing_or_wrong_files(raw, tmp_path):
  root = raw[0]
  only_train = tmp_path / "only_train"
  only_train.mkdir()
  (only_train / "COFW_train_color.mat").symlink_to(root / "COFW_train_color.mat")
  with pytest.raises(builder.MissingDataError, match="COFW_test_color.mat"):
    prepare.prepare("cofw", str(only_train), str(tmp_path / "a"))
  # A MATLAB v5 file under the right name: a clear error, not an h5py traceback.
  scipy.io.savemat(str(only_train / "COFW_test_color.mat"), {"IsT": np.zeros((2, 2))})
  with pytest.raises(ValueError, match="not a MATLAB v7.3"):
    prepare.prepare("cofw", str(only_train), str(tmp_path / "b"))
