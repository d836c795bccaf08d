"""COFW (29 landmarks), read from the MATLAB v7.3 (HDF5) files `COFW_{train,test}_color.mat`.

Each file holds a cell array of images (`IsTr` 1,345 x 1 / `IsT` 507 x 1; uint8, some grey 2-D,
the rest H x W x 3 RGB) and `phisTr` / `phisT` (N x 87: 29 x, 29 y, 29 occlusion flags). In
HDF5, MATLAB stores every array transposed (column order: an H x W x 3 image is a (3, W, H)
dataset, N x 87 is (87, N)) and a cell array as a dataset of object references into `#refs#`;
h5py reads it, reversing the axes back. The face boxes (`bboxesTr`/`bboxesT`) are not read: the
official crop does not use them.

Splits `train` (1,345) and `test` (507).

Stored: `image` (the pixels as a lossless PNG; grey images replicated to 3 channels), `name`
(`<file>.mat#<index>`, 0-based), `landmarks` float32 [29, 2] = phis[:58] as (x, y), exactly as
distributed (the official loaders use them as they are), and `box` float32 [4] (x0, y0, x1, y1):
the official square around the landmark extent, per axis lo = floor(min), hi = ceil(max),
centre (lo + hi)/2, half-side half the longer extent (`ibug300w.box_from_extent`).
"""

from __future__ import annotations

import os

import cv2
import h5py
import numpy as np

from data_pipelines import builder as builder_lib
from data_pipelines import ibug300w

NUM_LANDMARKS = 29
PHIS_COLUMNS = 3 * NUM_LANDMARKS  # x, y, occlusion flag per point
FILES = {  # split: (file, images variable, landmarks variable)
    "train": ("COFW_train_color.mat", "IsTr", "phisTr"),
    "test": ("COFW_test_color.mat", "IsT", "phisT"),
}


class Builder(builder_lib.FaceDatasetBuilder):
  """COFW: 1,852 occluded faces with 29 landmarks (colour release)."""

  name = "cofw"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the colour COFW release (COFW_color.zip, from the COFW page of Burgos-Artizzu et al.,
  http://www.vision.caltech.edu/xpburgos/ICCV13/; HRNet's README links it too), unpack it and pass
  the folder holding COFW_train_color.mat and COFW_test_color.mat as --manual_dir.
  """
  LAYOUT = """
  COFW_train_color.mat   MATLAB v7.3 (HDF5): IsTr (1345x1 cell of uint8 images), phisTr (1345x87)
  COFW_test_color.mat    MATLAB v7.3 (HDF5): IsT (507x1 cell), phisT (507x87)
  """

  def _features(self):
    return builder_lib.landmark_features(NUM_LANDMARKS)

  def _split_readers(self, manual_dir):
    readers = {}
    for split, (file_name, images, phis) in FILES.items():
      path = self.require(manual_dir, file_name)
      self._check_file(path, images, phis)  # a wrong file fails here, before anything is written
      readers[split] = lambda path=path, images=images, phis=phis: self._read(path, images, phis)
    return readers

  def _check_file(self, path, images_var, phis_var):
    if not h5py.is_hdf5(path):
      raise ValueError(f"dataset 'cofw': {path} is not a MATLAB v7.3 (HDF5) file; expected the "
                       f"colour release.\n{self.LAYOUT}")
    with h5py.File(path, "r") as f:
      for var in (images_var, phis_var):
        if var not in f:
          raise ValueError(f"dataset 'cofw': {path} has no variable {var!r} (it holds "
                           f"{sorted(k for k in f if not k.startswith('#'))}).\n{self.LAYOUT}")
      if f[phis_var].ndim != 2 or f[phis_var].shape[0] != PHIS_COLUMNS:
        raise ValueError(f"dataset 'cofw': {path}: {phis_var} is stored as {f[phis_var].shape}, "
                         f"expected ({PHIS_COLUMNS}, N) (an N x {PHIS_COLUMNS} MATLAB matrix)")
      if h5py.check_dtype(ref=f[images_var].dtype) is not h5py.Reference:
        raise ValueError(f"dataset 'cofw': {path}: {images_var} is not a cell array")

  def _read(self, path, images_var, phis_var):
    file_name = os.path.basename(path)
    with h5py.File(path, "r") as f:
      refs = f[images_var][()].reshape(-1)  # an N x 1 cell is stored (1, N)
      phis = np.asarray(f[phis_var][()], np.float64).T  # stored (87, N)
      for i, ref in enumerate(refs):
        name = f"{file_name}#{i}"
        if i >= len(phis):
          yield builder_lib.Skip(name, f"image without landmarks ({phis_var} has {len(phis)} rows)")
          continue
        points = phis[i, :2 * NUM_LANDMARKS].reshape(2, NUM_LANDMARKS).T.astype(np.float32)
        if not np.isfinite(points).all():
          yield builder_lib.Skip(name, "a landmark coordinate is not finite")
          continue
        try:
          image = encode_png(matlab_image(f, ref))
          box = ibug300w.box_from_extent(points)
        except (ValueError, KeyError, OSError) as e:  # h5py raises these on bad references
          yield builder_lib.Skip(name, str(e))
          continue
        yield name, {"image": image, "name": name, "landmarks": points, "box": box}
      for i in range(len(refs), len(phis)):
        yield builder_lib.Skip(f"{file_name}#{i}",
                               f"landmarks without an image ({images_var} has {len(refs)} cells)")


def matlab_image(f: h5py.File, ref) -> np.ndarray:
  """The uint8 RGB [H, W, 3] image a cell reference points to (grey replicated to 3 channels)."""
  dataset = f[ref]
  if dataset.attrs.get("MATLAB_empty", 0):
    raise ValueError("empty cell (no image)")
  pixels = np.transpose(dataset[()])  # MATLAB's column order: reverse every axis
  if pixels.dtype != np.uint8:
    raise ValueError(f"image is {pixels.dtype}, expected uint8")
  if pixels.ndim == 2:
    pixels = np.repeat(pixels[:, :, None], 3, axis=2)
  if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.size == 0:
    raise ValueError(f"image of shape {pixels.shape}, expected H x W or H x W x 3")
  return pixels


def encode_png(rgb: np.ndarray) -> bytes:
  """Lossless PNG bytes of an RGB image (cv2 writes BGR)."""
  ok, data = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
  if not ok:
    raise ValueError("PNG encoding failed")
  return data.tobytes()
