"""WFLW (98 landmarks), read from the annotation lists and image folders as distributed.

`list_98pt_rect_attr_{train,test}.txt`: one face per line, 207 space-separated fields: 196
coordinates (x0 y0 ... x97 y97), the face rectangle x_min y_min x_max y_max, six 0/1 flags (pose,
expression, illumination, make-up, occlusion, blur) and the image path under `WFLW_images/`.
`list_98pt_test_<subset>.txt`: 197 fields (196 coordinates, then the path) and no rectangle; each
subset face is the test-list face with the same image path and the same points, whose rectangle
it takes (PIPNet matches on the path and the first coordinate; we compare every point).

Splits: `train` (7,500), `test` (2,500) and the six test subsets `test_largepose` (326),
`test_expression` (314), `test_illumination` (698), `test_makeup` (206), `test_occlusion` (736),
`test_blur` (773), stored as their own (overlapping) splits as the official evaluation reads them.

Stored: `image` (the distributed JPEG), `name` (the path under `WFLW_images/`; an image holds
several faces), `landmarks` float32 [98, 2] (x, y) as the lists give them (FaRL/Faceptor shift
nothing for WFLW) and `box` float32 [4] (x0, y0, x1, y1): HRNet's convention, centre = the
rectangle's centre and scale = max(w, h)/200, so the square centre ± 100·scale.
"""

from __future__ import annotations

import math
import os

import numpy as np

from data_pipelines import builder as builder_lib
from data_pipelines import ibug300w

NUM_LANDMARKS = 98
NUM_FLAGS = 6
SUBSETS = ("largepose", "expression", "illumination", "makeup", "occlusion", "blur")
MAIN_LIST = "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{}.txt"
SUBSET_LIST = "WFLW_annotations/list_98pt_test/list_98pt_test_{}.txt"
MATCH_TOLERANCE = 1e-3  # px: a subset line repeats its test-list line's printed coordinates


class Builder(builder_lib.FaceDatasetBuilder):
  """WFLW: 10,000 faces with 98 landmarks, face rectangles and six attribute subsets."""

  name = "wflw"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download WFLW_images.tar.gz and WFLW_annotations.tar.gz from
  https://wywu.github.io/projects/LAB/WFLW.html, unpack both into one folder and pass that folder
  (the one holding WFLW_images/ and WFLW_annotations/) as --manual_dir.
  """
  LAYOUT = """
  WFLW_images/<event>/<file>.jpg            e.g. 51--Dresses/51_Dresses_wearingdress_51_377.jpg
  WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt
  WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt
      lines: 196 coordinates, x_min y_min x_max y_max, 6 flags, image path (207 fields)
  WFLW_annotations/list_98pt_test/list_98pt_test_<subset>.txt
      subset in largepose expression illumination makeup occlusion blur;
      lines: 196 coordinates, image path (197 fields)
  """

  def _features(self):
    return builder_lib.landmark_features(NUM_LANDMARKS)

  def _split_readers(self, manual_dir):
    images = self.require(manual_dir, "WFLW_images")
    main = {split: self.require(manual_dir, *MAIN_LIST.format(split).split("/"))
            for split in ("train", "test")}
    subsets = {subset: self.require(manual_dir, *SUBSET_LIST.format(subset).split("/"))
               for subset in SUBSETS}
    readers = {split: (lambda path=path: self._read_main(path, images))
               for split, path in main.items()}
    readers.update({f"test_{subset}": (lambda path=path: self._read_subset(path, main["test"],
                                                                          images))
                    for subset, path in subsets.items()})
    return readers

  def _read_main(self, list_path, image_dir):
    for n, line in enumerate(builder_lib.read_lines(list_path), 1):
      key = f"{os.path.basename(list_path)} line {n}"
      face = parse_main_line(line)
      if isinstance(face, str):
        yield builder_lib.Skip(key, face)
        continue
      yield from self._example(key, image_dir, *face)

  def _read_subset(self, list_path, test_list_path, image_dir):
    boxes = {}  # image path -> [(points, box)] of the test list's faces
    for line in builder_lib.read_lines(test_list_path):
      face = parse_main_line(line)
      if not isinstance(face, str):  # a malformed test line is counted in the test split
        boxes.setdefault(face[0], []).append(face[1:])
    for n, line in enumerate(builder_lib.read_lines(list_path), 1):
      key = f"{os.path.basename(list_path)} line {n}"
      fields = line.split(maxsplit=2 * NUM_LANDMARKS)
      points = parse_points(fields)
      if isinstance(points, str):
        yield builder_lib.Skip(key, points)
        continue
      name = fields[-1]
      distances = [np.abs(points - p).max() for p, _ in boxes.get(name, [])]
      if not distances or min(distances) > MATCH_TOLERANCE:
        yield builder_lib.Skip(key, f"no face of {name} in {os.path.basename(test_list_path)} "
                                    "has these points (its rectangle is needed for the box)")
        continue
      box = boxes[name][int(np.argmin(distances))][1]
      yield from self._example(key, image_dir, name, points, box)

  def _example(self, key, image_dir, name, points, box):
    image = self.image_or_skip(os.path.join(image_dir, name), f"{key} ({name})")
    if isinstance(image, builder_lib.Skip):
      yield image
      return
    yield key, {"image": image, "name": name, "landmarks": points, "box": box}


def parse_points(fields: list[str]) -> "np.ndarray | str":
  """The [98, 2] float32 points from a list line's first 196 fields, or why they do not parse.
  The fields must be 196 numbers and then the image path."""
  if len(fields) != 2 * NUM_LANDMARKS + 1:
    return (f"{len(fields)} fields, expected {2 * NUM_LANDMARKS} coordinates then the image path")
  try:
    values = [float(v) for v in fields[:2 * NUM_LANDMARKS]]
  except ValueError:
    return f"a coordinate is not a number: {' '.join(fields[:4])} ..."
  if not all(map(math.isfinite, values)):
    return "a coordinate is not finite"
  return np.asarray(values, np.float32).reshape(NUM_LANDMARKS, 2)


def parse_main_line(line: str) -> "tuple[str, np.ndarray, np.ndarray] | str":
  """(image path, points [98, 2], box [4]) of a 207-field train/test list line, or why not.

  The path is the rest of the line after the 206 numbers (as the WFLW authors' reader takes it).
  """
  fields = line.split(maxsplit=2 * NUM_LANDMARKS + 4 + NUM_FLAGS)
  if len(fields) != 2 * NUM_LANDMARKS + 4 + NUM_FLAGS + 1:
    return (f"{len(fields)} fields, expected {2 * NUM_LANDMARKS} coordinates, x_min y_min x_max "
            f"y_max, {NUM_FLAGS} flags and the image path")
  points = parse_points(fields[:2 * NUM_LANDMARKS] + fields[-1:])
  if isinstance(points, str):
    return points
  try:
    x_min, y_min, x_max, y_max, *flags = [float(v) for v in fields[2 * NUM_LANDMARKS:-1]]
  except ValueError:
    return f"the rectangle or a flag is not a number: {' '.join(fields[2 * NUM_LANDMARKS:-1])}"
  if not all(math.isfinite(v) for v in (x_min, y_min, x_max, y_max)):
    return "the face rectangle is not finite"
  if x_max <= x_min or y_max <= y_min:
    return f"empty face rectangle {x_min:g} {y_min:g} {x_max:g} {y_max:g}"
  if any(flag not in (0.0, 1.0) for flag in flags):
    return f"attribute flags {flags} are not all 0/1"
  scale = max(x_max - x_min, y_max - y_min) / 200.0
  box = ibug300w.box_from_centre_scale((x_min + x_max) / 2, (y_min + y_max) / 2, scale)
  return fields[-1], points, box
