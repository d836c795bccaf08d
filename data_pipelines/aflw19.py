"""AFLW-19 (19 landmarks), read from `AFLWinfo_release.mat` and the AFLW images as distributed.

`AFLWinfo_release.mat` (MATLAB v5, scipy reads it) holds, for 24,386 faces: `bbox` (left, right,
top, bottom), `data` (x1..x19 then y1..y19), `mask_new` (1 = point visible), `nameList` (a cell of
image paths under `data/flickr/`, e.g. `3/image00002.jpg`; an image can hold several faces) and
`ra`, a 1-based permutation of the faces that defines the split.

Splits (the official rule, idx = ra - 1): `train` = idx[:TRAIN_SIZE] (20,000), `test_full` = the
remaining 4,386, `test_frontal` = the test_full faces whose 19 points are all visible (stored as
its own split; FaRL's logs count 1,314).

Stored: `image` (the distributed JPEG), `name` (the path under data/flickr/), `landmarks` float32
[19, 2] (x, y) exactly as distributed (the official loaders use them as they are; invisible points
keep their coordinates), `visible` float32 [19] (mask_new) and `box` float32 [4]
(x0, y0, x1, y1) = (left, top, right, bottom): the dataset box, which is the crop box and also the
NME normaliser (box = sqrt(w·h), diag = sqrt(w² + h²)). It is not square.
"""

from __future__ import annotations

import math
import os

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

NUM_LANDMARKS = 19
TRAIN_SIZE = 20_000  # the first TRAIN_SIZE faces of `ra` train (prepare option `train_size`)
INFO_FILE = "AFLWinfo_release.mat"
INFO_SHAPES = {"bbox": 4, "data": 2 * NUM_LANDMARKS, "mask_new": NUM_LANDMARKS}  # columns


class Builder(builder_lib.FaceDatasetBuilder):
  """AFLW-19: 24,386 in-the-wild faces with 19 landmarks, visibility and face boxes."""

  name = "aflw19"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request AFLW from https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/aflw/
  and unpack aflw-images-{0,2,3}.tar.gz (they create aflw/data/flickr/{0,2,3}/). Put
  AFLWinfo_release.mat (the 19-point annotation of Zhu et al., CVPR 2016; HRNet's README links it)
  in the `aflw/` folder and pass that folder as --manual_dir.
  """
  LAYOUT = """
  AFLWinfo_release.mat                   bbox, data, mask_new, nameList, ra (MATLAB v5)
  data/flickr/0/image00013.jpg           images named by nameList (`0/...`, `2/...`, `3/...`)
  data/flickr/2/...  data/flickr/3/...
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "name": tfds.features.Text(),
            "landmarks": tfds.features.Tensor(shape=(NUM_LANDMARKS, 2), dtype=np.float32),
            "visible": tfds.features.Tensor(shape=(NUM_LANDMARKS,), dtype=np.float32),
            "box": tfds.features.Tensor(shape=(4,), dtype=np.float32)}

  def _split_readers(self, manual_dir):
    info = self._load_info(self.require(manual_dir, INFO_FILE))
    image_dir = self.require(manual_dir, "data", "flickr")
    order = info["order"]
    train_size = int(self.options.get("train_size", TRAIN_SIZE))
    if len(order) <= train_size:
      raise ValueError(f"dataset 'aflw19': {INFO_FILE} holds {len(order)} faces; the official "
                       f"split trains on the first {train_size:,} of `ra` and tests on the rest")
    test = order[train_size:]
    splits = {"train": order[:train_size], "test_full": test,
              "test_frontal": test[(info["mask_new"][test] == 1).all(axis=1)]}
    return {split: (lambda faces=faces: self._read(info, image_dir, faces))
            for split, faces in splits.items() if len(faces)}  # TFDS refuses an empty split

  def _load_info(self, path):
    """The .mat's arrays, checked for shape, plus `order` (0-based face indices) and `names`."""
    try:
      mat = scipy.io.loadmat(path)
    except (ValueError, TypeError, NotImplementedError, OSError,
            scipy.io.matlab.MatReadError) as e:
      raise ValueError(f"dataset 'aflw19': cannot read {path} as a MATLAB v5 file: {e}") from e
    missing = [k for k in (*INFO_SHAPES, "nameList", "ra") if k not in mat]
    if missing:
      raise ValueError(f"dataset 'aflw19': {path} lacks {missing}.\n{self.LAYOUT}")
    num_faces = mat["ra"].size
    info = {}
    for key, columns in INFO_SHAPES.items():
      info[key] = np.asarray(mat[key], np.float64)
      if info[key].shape != (num_faces, columns):
        raise ValueError(f"dataset 'aflw19': {path}: {key} is {info[key].shape}, expected "
                         f"({num_faces}, {columns}) (one row per face of `ra`)")
    names = mat["nameList"].reshape(-1)
    if len(names) != num_faces:
      raise ValueError(f"dataset 'aflw19': {path}: nameList has {len(names)} entries, "
                       f"ra {num_faces}")
    order = np.asarray(mat["ra"], np.float64).reshape(-1) - 1
    if not np.array_equal(np.sort(order), np.arange(num_faces)):
      raise ValueError(f"dataset 'aflw19': {path}: ra is not a permutation of 1..{num_faces}")
    info["order"] = order.astype(np.int64)
    info["names"] = [cell_string(cell) for cell in names]
    return info

  def _read(self, info, image_dir, faces):
    for face in faces:
      key = f"face {face}"
      name = info["names"][face]
      if not name:
        yield builder_lib.Skip(key, "empty nameList entry")
        continue
      points = info["data"][face].reshape(2, NUM_LANDMARKS).T.astype(np.float32)
      left, right, top, bottom = info["bbox"][face]
      visible = info["mask_new"][face].astype(np.float32)
      if not (np.isfinite(points).all() and all(map(math.isfinite, (left, right, top, bottom)))):
        yield builder_lib.Skip(key, f"{name}: a landmark or box value is not finite")
        continue
      if right <= left or bottom <= top:
        yield builder_lib.Skip(key, f"{name}: empty box left {left:g} right {right:g} "
                                    f"top {top:g} bottom {bottom:g}")
        continue
      if not np.isin(visible, (0.0, 1.0)).all():
        yield builder_lib.Skip(key, f"{name}: mask_new holds values other than 0/1")
        continue
      image = self.image_or_skip(os.path.join(image_dir, *name.split("/")), f"{key} ({name})")
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      box = np.asarray([left, top, right, bottom], np.float32)
      yield key, {"image": image, "name": name, "landmarks": points, "visible": visible,
                  "box": box}


def cell_string(cell) -> str:
  """The text of one MATLAB cell as scipy returns it (a 1-element string array), '' if empty."""
  while isinstance(cell, np.ndarray):
    if cell.size != 1:
      return ""
    cell = cell.reshape(-1)[0]
  return cell.strip() if isinstance(cell, str) else ""
