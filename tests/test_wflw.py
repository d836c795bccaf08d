"""WFLW builder: train/test lists (207 fields), the six subset lists (197 fields), tiny fixture."""

import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare, wflw

DRESS = "51--Dresses/51_Dresses_wearingdress_51_377.jpg"  # two faces
PARADE = "0--Parade/0_Parade_marchingband_1_116.jpg"
MISSING = "0--Parade/0_Parade_marchingband_1_999.jpg"

# Face rectangles (x_min y_min x_max y_max) and the boxes they give: centre = rectangle centre,
# half-side = max(w, h)/2 (scale = max(w, h)/200, box = centre ± 100·scale).
RECT_A, BOX_A = (4, 6, 24, 20), (4.0, 3.0, 24.0, 23.0)     # w 20, h 14 around (14, 13)
RECT_B, BOX_B = (20, 2, 30, 22), (15.0, 2.0, 35.0, 22.0)   # w 10, h 20 around (25, 12)
RECT_C, BOX_C = (3, 3, 13, 9), (3.0, 1.0, 13.0, 11.0)      # w 10, h 6 around (8, 6)


def points(seed):
  rng = np.random.default_rng(seed)
  return np.stack([rng.uniform(1, 38, 98), rng.uniform(1, 28, 98)], axis=1).round(6)


def coords(p):
  return " ".join(f"{v:.6f}" for v in p.ravel())


def main_line(p, rect, path, flags=(0, 1, 0, 0, 1, 0)):
  return f"{coords(p)} {' '.join(map(str, rect))} {' '.join(map(str, flags))} {path}"


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
  root = tmp_path_factory.mktemp("wflw")
  for i, path in enumerate((DRESS, PARADE)):
    os.makedirs(root / "WFLW_images" / os.path.dirname(path), exist_ok=True)
    image = np.random.default_rng(i).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(root / "WFLW_images" / path), image)
  lists = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
  subsets = root / "WFLW_annotations" / "list_98pt_test"
  lists.mkdir(parents=True)
  subsets.mkdir(parents=True)
  faces = {"a": points(1), "b": points(2), "c": points(3), "t1": points(4), "t2": points(5),
           "t3": points(6)}
  train = [main_line(faces["a"], RECT_A, DRESS),
           main_line(faces["b"], RECT_B, DRESS).replace(" ", "  ", 5) + "  ",  # padding
           main_line(faces["c"], RECT_C, PARADE),
           main_line(faces["a"], RECT_A, DRESS).rsplit(" ", 2)[0] + " " + DRESS,  # 206 fields
           main_line(faces["a"], RECT_A, DRESS, flags=(0, 2, 0, 0, 0, 0)),  # bad flag
           main_line(faces["a"], RECT_A, MISSING)]  # no such image
  (lists / "list_98pt_rect_attr_train.txt").write_bytes("\r\n".join(train).encode())
  test = [main_line(faces["t1"], RECT_A, DRESS),
          main_line(faces["t2"], RECT_B, DRESS),  # same image, the other face
          main_line(faces["t3"], RECT_C, PARADE),
          main_line(faces["t3"], (9, 9, 9, 12), PARADE)]  # empty rectangle
  (lists / "list_98pt_rect_attr_test.txt").write_text("\n".join(test) + "\n")
  subset_faces = {"largepose": [("t2", DRESS)], "expression": [("t3", PARADE), ("a", PARADE)],
                  "illumination": [("t1", DRESS)], "makeup": [("t2", DRESS)],
                  "occlusion": [("t1", DRESS), ("t2", DRESS)], "blur": [("t3", PARADE)]}
  for subset, entries in subset_faces.items():
    lines = [f"{coords(faces[face])} {path}" for face, path in entries]
    (subsets / f"list_98pt_test_{subset}.txt").write_text("\n".join(lines))
  return root, faces


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  return data_dir, prepare.prepare("wflw", str(raw[0]), data_dir)


def read_split(data_dir, split):
  return list(tfds.data_source("wflw", data_dir=data_dir, split=split))


def by_face(examples, faces):
  """{face id: example}, each example matched to the fixture face with its points."""
  return {next(f for f, p in faces.items() if np.abs(e["landmarks"] - p).max() < 1e-4): e
          for e in examples}


def test_counts_and_skips(prepared):
  _, report = prepared
  assert {s: r["read"] for s, r in report.items()} == {
      "train": 3, "test": 3, "test_largepose": 1, "test_expression": 1, "test_illumination": 1,
      "test_makeup": 1, "test_occlusion": 2, "test_blur": 1}
  reasons = {k: r for split in report.values() for k, r in split["skipped"]}
  assert set(reasons) == {
      "list_98pt_rect_attr_train.txt line 4", "list_98pt_rect_attr_train.txt line 5",
      f"list_98pt_rect_attr_train.txt line 6 ({MISSING})", "list_98pt_rect_attr_test.txt line 4",
      "list_98pt_test_expression.txt line 2"}
  assert "206 fields" in reasons["list_98pt_rect_attr_train.txt line 4"]
  assert "flags" in reasons["list_98pt_rect_attr_train.txt line 5"]
  assert "empty face rectangle" in reasons["list_98pt_rect_attr_test.txt line 4"]
  assert "no face of" in reasons["list_98pt_test_expression.txt line 2"]


def test_landmarks_boxes_and_names(prepared, raw):
  data_dir, _ = prepared
  _, faces = raw
  train = by_face(read_split(data_dir, "train"), faces)
  assert set(train) == {"a", "b", "c"}
  for face, box, name in (("a", BOX_A, DRESS), ("b", BOX_B, DRESS), ("c", BOX_C, PARADE)):
    example = train[face]
    assert example["landmarks"].dtype == np.float32
    np.testing.assert_array_equal(example["box"], np.float32(box))
    assert example["name"].decode() == name and example["image"].shape == (30, 40, 3)


def test_subsets_take_the_box_of_the_matching_test_face(prepared, raw):
  data_dir, _ = prepared
  _, faces = raw
  # The dress image holds two test faces; each subset entry must get its own face's rectangle.
  for split, face, box in (("test_largepose", "t2", BOX_B), ("test_illumination", "t1", BOX_A),
                           ("test_blur", "t3", BOX_C)):
    (example,) = read_split(data_dir, split)
    np.testing.assert_allclose(example["landmarks"], faces[face], atol=1e-4)
    np.testing.assert_array_equal(example["box"], np.float32(box))
  assert set(by_face(read_split(data_dir, "test_occlusion"), faces)) == {"t1", "t2"}
  assert set(by_face(read_split(data_dir, "test"), faces)) == {"t1", "t2", "t3"}


def test_missing_subset_list_raises(raw, tmp_path):
  root, _ = raw
  manual = tmp_path / "wflw"
  (manual / "WFLW_annotations").mkdir(parents=True)
  os.symlink(root / "WFLW_images", manual / "WFLW_images")
  os.symlink(root / "WFLW_annotations" / "list_98pt_rect_attr_train_test",
             manual / "WFLW_annotations" / "list_98pt_rect_attr_train_test")
  with pytest.raises(builder.MissingDataError, match="list_98pt_test_largepose.txt") as error:
    prepare.prepare("wflw", str(manual), str(tmp_path / "out"))
  assert "207 fields" in str(error.value)


def test_parse_main_line_box_rule():
  line = main_line(points(9), (10, 20, 110, 70), DRESS)
  name, p, box = wflw.parse_main_line(line)
  assert name == DRESS and p.shape == (98, 2)
  np.testing.assert_array_equal(box, np.float32([10, -5, 110, 95]))  # scale 0.5 around (60, 45)
