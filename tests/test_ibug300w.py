"""300W builder: the iBUG `.pts` folders and the HRNet-CSV mode, on tiny fixtures in raw layout."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, ibug300w, prepare

# HRNet's face_landmarks_300w_valid_challenge.csv row for ibug/image_108.jpg: scale 0.65, centre
# (249.5, 130.0), then the 68 points. The crop box rule must reproduce its centre and scale.
HRNET_ROW_108 = (0.65, 249.5, 130.0, np.array([
    196.938433, 111.310235, 194.059623, 123.118152, 195.672804, 134.698228, 200.811735, 146.624233,
    207.671978, 156.993555, 211.616825, 168.710011, 216.072233, 180.562847, 222.031068, 190.338485,
    230.941883, 194.136995, 244.216643, 193.862611, 262.600461, 188.068406, 277.724579, 178.785036,
    292.602563, 166.539729, 301.403624, 149.75751, 305.995411, 131.325527, 308.965682, 114.134168,
    309.476242, 94.792443, 189.012152, 76.852726, 192.401522, 73.919039, 197.448992, 74.165172,
    202.687719, 76.679761, 206.669151, 81.289841, 230.702459, 76.570008, 239.322222, 69.481924,
    251.931751, 65.764917, 265.288014, 68.470763, 278.033923, 75.996237, 219.242095, 100.987454,
    217.984801, 111.255358, 215.679761, 121.942361, 213.584271, 132.419814, 212.536525, 137.86809,
    216.727507, 140.592228, 222.175782, 143.106817, 227.624058, 140.382679, 234.748727, 139.544483,
    199.680863, 105.980047, 203.662295, 102.873395, 209.18374, 102.454297, 216.408204, 103.693299,
    209.75751, 105.998339, 203.871844, 106.909705, 241.444339, 99.976292, 250.054143, 97.425119,
    257.725955, 97.197278, 265.497563, 96.568631, 257.552991, 101.807358, 249.881178, 101.770773,
    214.422467, 162.385332, 216.699257, 155.352124, 220.371344, 152.727782, 225.0363, 155.01453,
    229.929098, 151.907878, 240.060623, 153.14688, 251.303103, 158.403899, 241.755308, 165.091177,
    233.227006, 168.28929, 227.06858, 169.109194, 221.774976, 167.943361, 217.811836, 165.146054,
    216.918764, 160.991657, 220.63577, 158.804705, 225.683239, 158.841289, 230.612623, 158.477068,
    246.082669, 158.977669, 230.612623, 158.477068, 225.683239, 158.841289, 220.63577, 158.804705,
]).reshape(68, 2))

# A face whose crop box is worked out by hand. 1-based x spans 3.2..20.7 and y 5.5..15.1, so
# 0-based x 2.2..19.7 -> [2, 20], y 4.5..14.1 -> [4, 15]; half-side max(18, 11)/2 = 9 around
# (11, 9.5).
HAND_BOX = np.array([2.0, 0.5, 20.0, 18.5], np.float32)


def hand_points():
  rng = np.random.default_rng(7)
  points = np.stack([rng.uniform(4, 20, 68), rng.uniform(6, 15, 68)], axis=1)
  points[0] = (3.2, 5.5)
  points[1] = (20.7, 15.1)
  return points


def random_points(seed):
  rng = np.random.default_rng(seed)
  return np.stack([rng.uniform(2, 30, 68), rng.uniform(2, 22, 68)], axis=1).round(6)


def write_pts(path, points, newline="\n", final_newline=True, trailing=""):
  lines = ["version: 1", "n_points:  68", "{"]
  lines += [f"{x:.6f} {y:.6f}{trailing}" for x, y in points] + ["}"]
  text = newline.join(lines) + (newline if final_newline else "")
  with open(path, "w", newline="") as f:
    f.write(text)


def write_image(path, seed, grey=False):
  rng = np.random.default_rng(seed)
  shape = (24, 32) if grey else (24, 32, 3)
  cv2.imwrite(str(path), rng.integers(0, 255, shape, dtype=np.uint8))


def write_face(folder, stem, ext, seed, points=None, **pts_options):
  os.makedirs(folder, exist_ok=True)
  write_image(os.path.join(folder, stem + ext), seed, grey=pts_options.pop("grey", False))
  points = random_points(seed) if points is None else points
  write_pts(os.path.join(folder, stem + ".pts"), points, **pts_options)
  return points


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
  """A tiny 300W in the iBUG layout with its corner cases; returns (root, {image: 1-based pts})."""
  root = str(tmp_path_factory.mktemp("300w"))
  faces = {}
  d = lambda *p: os.path.join(root, *p)
  faces["afw/111_1.jpg"] = write_face(d("afw"), "111_1", ".jpg", 1, points=hand_points())
  faces["afw/222_1.jpg"] = write_face(d("afw"), "222_1", ".jpg", 2, grey=True, newline="\r\n")
  faces["helen/trainset/100_1.jpg"] = write_face(d("helen", "trainset"), "100_1", ".jpg", 3,
                                                 final_newline=False, trailing="  ")
  bad = write_face(d("helen", "trainset"), "bad_1", ".jpg", 4)
  write_pts(d("helen", "trainset", "bad_1.pts"), bad[:67])  # 67 points: skipped
  write_image(d("helen", "trainset", "orphan.jpg"), 5)  # no .pts: skipped
  faces["lfpw/trainset/image_0001.png"] = write_face(d("lfpw", "trainset"), "image_0001", ".png", 6)
  write_pts(d("lfpw", "trainset", "image_0002.pts"), random_points(7))  # no image: skipped
  faces["helen/testset/200_1.jpg"] = write_face(d("helen", "testset"), "200_1", ".jpg", 8,
                                                newline="\r\n", final_newline=False)
  faces["lfpw/testset/image_0003.png"] = write_face(d("lfpw", "testset"), "image_0003", ".png", 9)
  faces["ibug/image_092 _01.jpg"] = write_face(d("ibug"), "image_092 _01", ".jpg", 10)
  write_face(d("ibug"), "image_003_1", ".jpg", 11)
  with open(d("ibug", "image_003_1.jpg"), "wb") as f:
    f.write(b"\xff\xd8\xff\xe0 truncated jpeg")  # corrupt: skipped
  faces["300W/01_Indoor/indoor_001.png"] = write_face(d("300W", "01_Indoor"), "indoor_001", ".png",
                                                      12)
  faces["300W/02_Outdoor/outdoor_001.png"] = write_face(d("300W", "02_Outdoor"), "outdoor_001",
                                                        ".png", 13)
  return root, faces


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
  root, _ = raw
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return data_dir, prepare.prepare("ibug300w", root, data_dir)


def read_split(data_dir, split):
  source = tfds.data_source("ibug300w", data_dir=data_dir, split=split)
  return {example["name"].decode(): example for example in source}


def test_splits_counts_and_skips(prepared):
  _, report = prepared
  assert {s: r["read"] for s, r in report.items()} == {
      "train": 4, "valid_common": 2, "valid_challenge": 1, "test": 2}
  skipped = {key: reason for r in report.values() for key, reason in r["skipped"]}
  assert set(skipped) == {"helen/trainset/bad_1.pts", "helen/trainset/orphan.jpg",
                          "lfpw/trainset/image_0002.pts", "ibug/image_003_1.jpg"}
  assert "67 point lines" in skipped["helen/trainset/bad_1.pts"]
  assert "without a .pts" in skipped["helen/trainset/orphan.jpg"]
  assert "no image" in skipped["lfpw/trainset/image_0002.pts"]
  assert "does not decode" in skipped["ibug/image_003_1.jpg"]
  with open(os.path.join(prepared[0], "ibug300w", "1.0.0", "skipped.json")) as f:
    assert "ibug/image_003_1.jpg" in f.read()


def test_landmarks_are_zero_based_and_box_follows_hrnet(prepared, raw):
  data_dir, _ = prepared
  _, faces = raw
  for split in ("train", "valid_common", "valid_challenge", "test"):
    for name, example in read_split(data_dir, split).items():
      np.testing.assert_allclose(example["landmarks"], faces[name] - 1, atol=1e-4)
      x0, y0, x1, y1 = example["box"]
      assert x1 - x0 == pytest.approx(y1 - y0)  # square
      assert (example["landmarks"] >= [x0, y0]).all() and (example["landmarks"] <= [x1, y1]).all()
  train = read_split(data_dir, "train")
  np.testing.assert_array_equal(train["afw/111_1.jpg"]["box"], HAND_BOX)
  assert train["afw/111_1.jpg"]["landmarks"].dtype == np.float32


def test_images_grey_and_space_in_name(prepared, raw):
  data_dir, _ = prepared
  root, _ = raw
  grey = read_split(data_dir, "train")["afw/222_1.jpg"]["image"]
  assert grey.shape == (24, 32, 3) and (grey[..., 0] == grey[..., 2]).all()
  assert "ibug/image_092 _01.jpg" in read_split(data_dir, "valid_challenge")
  png = read_split(data_dir, "test")["300W/01_Indoor/indoor_001.png"]["image"]
  written = cv2.imread(os.path.join(root, "300W", "01_Indoor", "indoor_001.png"))
  np.testing.assert_array_equal(png, written[..., ::-1])  # the distributed bytes, decoded to RGB


def test_valid_is_the_union_of_common_and_challenge(prepared):
  data_dir, _ = prepared
  union = read_split(data_dir, ibug300w.VALID)
  assert set(union) == set(read_split(data_dir, "valid_common")) | set(
      read_split(data_dir, "valid_challenge"))


def test_hrnet_rule_reproduces_hrnet_csv_row():
  scale, cx, cy, points = HRNET_ROW_108
  np.testing.assert_allclose(ibug300w.box_from_extent(points),
                             ibug300w.box_from_centre_scale(cx, cy, scale), atol=1e-4)


def write_csv(path, rows, header=True):
  lines = ["image_name,scale,center_w,center_h," + ",".join(
      f"original_{i}_{a}" for i in range(68) for a in "xy")] if header else []
  for image, points in rows:
    box = ibug300w.box_from_extent(points)  # on the CSV's own (= .pts) coordinates
    cx, cy, scale = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 200
    lines.append(f"{image},{scale:g},{cx:g},{cy:g}," + ",".join(f"{v:.6f}" for v in points.ravel()))
  with open(path, "w", newline="") as f:
    f.write("\r\n".join(lines))


def test_hrnet_csv_mode_shifts_points_and_centre_by_two(raw, tmp_path):
  root, faces = raw
  csv_dir = tmp_path / "csv_root"
  csv_dir.mkdir()
  for folder in ("afw", "helen", "lfpw", "ibug"):
    os.symlink(os.path.join(root, folder), csv_dir / folder)
  write_csv(csv_dir / "face_landmarks_300w_train.csv",
            [("afw/111_1.jpg", faces["afw/111_1.jpg"]),
             ("lfpw/trainset/image_0001.png", faces["lfpw/trainset/image_0001.png"])])
  with open(csv_dir / "face_landmarks_300w_train.csv", "a") as f:
    f.write("\r\nafw/222_1.jpg,0.5,10,10,1,2,3\r\n")  # too few fields: skipped
  write_csv(csv_dir / "face_landmarks_300w_valid_common.csv",
            [("helen/testset/200_1.jpg", faces["helen/testset/200_1.jpg"])])
  write_csv(csv_dir / "face_landmarks_300w_valid_challenge.csv",  # the CSVs' spelling
            [("ibug/image_092_01.jpg", faces["ibug/image_092 _01.jpg"])])
  data_dir = str(tmp_path / "tfds")
  report = prepare.prepare("ibug300w", str(csv_dir), data_dir)
  assert {s: r["read"] for s, r in report.items()} == {
      "train": 2, "valid_common": 1, "valid_challenge": 1}  # no test CSV: no test split
  assert [k for k, _ in report["train"]["skipped"]] == ["face_landmarks_300w_train.csv row 3"]
  challenge = read_split(data_dir, "valid_challenge")
  assert list(challenge) == ["ibug/image_092 _01.jpg"]
  train = read_split(data_dir, "train")
  np.testing.assert_allclose(train["afw/111_1.jpg"]["landmarks"], faces["afw/111_1.jpg"] - 2,
                             atol=1e-4)
  # Same crop of the face as the .pts mode, one pixel further up-left.
  np.testing.assert_allclose(train["afw/111_1.jpg"]["box"], HAND_BOX - 1, atol=1e-4)
  assert "test" not in tfds.builder_from_directory(
      os.path.join(data_dir, "ibug300w", "1.0.0")).info.splits


def test_partial_csvs_and_missing_folders_raise(raw, tmp_path):
  root, _ = raw
  csv_only = tmp_path / "csv_only"
  csv_only.mkdir()
  (csv_only / "face_landmarks_300w_train.csv").write_text("image_name,scale\n")
  with pytest.raises(builder.MissingDataError, match="face_landmarks_300w_valid_common.csv"):
    prepare.prepare("ibug300w", str(csv_only), str(tmp_path / "a"))
  no_ibug = tmp_path / "no_ibug"
  no_ibug.mkdir()
  for folder in ("afw", "helen", "lfpw"):
    os.symlink(os.path.join(root, folder), no_ibug / folder)
  with pytest.raises(builder.MissingDataError, match="ibug") as error:
    prepare.prepare("ibug300w", str(no_ibug), str(tmp_path / "b"))
  assert "n_points: 68" in str(error.value)  # the message shows the expected layout
  (no_ibug / "ibug").mkdir()
  (no_ibug / "01_Indoor").mkdir()  # half of the private test set
  with pytest.raises(builder.MissingDataError, match="02_Outdoor"):
    prepare.prepare("ibug300w", str(no_ibug), str(tmp_path / "c"))
