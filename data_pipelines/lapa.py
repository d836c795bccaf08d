"""LaPa (face parsing, 11 classes, 106 landmarks), read from `LaPa.tar.gz`'s folders as distributed.

Each split folder holds `images/<name>.jpg`, `labels/<name>.png` (single-channel class map, same
size as the image; class ids 0 background, 1 skin, 2 left eyebrow, 3 right eyebrow, 4 left eye,
5 right eye, 6 nose, 7 upper lip, 8 inner mouth, 9 lower lip, 10 hair, which is already the
FaRL/Faceptor order `tasks.PARSING_CLASSES["parsing_lapa"]`) and `landmarks/<name>.txt` (`106`,
then 106 lines `x y`).

Stored: `image` (the distributed JPEG), `label` (the distributed PNG; a 3-channel grey PNG is
re-encoded as one channel), `landmarks` float32 [106, 2] (x, y) in the image's pixels exactly as
the file gives them (the transforms align with points 104, 105, 54, 84, 90), and `name`
(`<split>/images/<name>.jpg`).

Splits `train` (18,176), `val` (2,000), `test` (2,000): the distribution's folders. Faceptor trains
on train+val: read it as `split="train+val"` (works with array_record).
"""

from __future__ import annotations

import io
import math
import os

import cv2
import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

SPLITS = ("train", "val", "test")
NUM_LANDMARKS = 106
NUM_CLASSES = 11


class Builder(builder_lib.FaceDatasetBuilder):
  """LaPa: 22,176 faces with 11-class label maps and 106 landmarks."""

  name = "lapa"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download LaPa.tar.gz (https://github.com/JDAI-CV/lapa-dataset), unpack it and pass the `LaPa/`
  folder (the one holding train/, val/ and test/) as --manual_dir.
  """
  LAYOUT = """
  train/images/<name>.jpg      val/... and test/... alike
  train/labels/<name>.png      single-channel class map, same size as the image
  train/landmarks/<name>.txt   `106`, then 106 lines `x y`
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "landmarks": tfds.features.Tensor(shape=(NUM_LANDMARKS, 2), dtype=np.float32),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    folders = {split: tuple(self.require(manual_dir, split, sub)
                            for sub in ("images", "labels", "landmarks"))
               for split in SPLITS}
    return {split: (lambda split=split: self._read(split, *folders[split])) for split in SPLITS}

  def _read(self, split, image_dir, label_dir, landmark_dir):
    names = sorted(n for n in os.listdir(image_dir) if n.lower().endswith(".jpg"))
    for file_name in names:
      stem = os.path.splitext(file_name)[0]
      key = f"{split}/images/{file_name}"
      image = self.image_or_skip(os.path.join(image_dir, file_name), key)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      landmarks = read_landmarks(os.path.join(landmark_dir, f"{stem}.txt"))
      if isinstance(landmarks, str):
        yield builder_lib.Skip(key, landmarks)
        continue
      size = image_size(image)
      if size is None:
        yield builder_lib.Skip(key, "image header does not parse (corrupt or not an image)")
        continue
      label = read_label(os.path.join(label_dir, f"{stem}.png"), size)
      if isinstance(label, str):
        yield builder_lib.Skip(key, label)
        continue
      yield key, {"image": image, "label": label, "landmarks": landmarks, "name": key}


def image_size(data: bytes) -> tuple[int, int] | None:
  """(width, height) from the image header, without decoding the pixels; None if unreadable."""
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      return image.size
  except (OSError, ValueError):  # PIL.UnidentifiedImageError is an OSError
    return None


def read_landmarks(path: str) -> "np.ndarray | str":
  """The [106, 2] float32 points of a LaPa landmark file, or why they cannot be read."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      fields = f.read().split()
  except OSError as e:
    return f"cannot read landmarks {path}: {e}"
  try:
    values = [float(v) for v in fields]
  except ValueError:
    return f"landmark file {path} holds a non-number"
  if len(values) != 1 + 2 * NUM_LANDMARKS or values[0] != NUM_LANDMARKS:
    return (f"landmark file {path} has {len(values)} numbers; expected `{NUM_LANDMARKS}` then "
            f"{NUM_LANDMARKS} lines `x y`")
  if not all(math.isfinite(v) for v in values):
    return f"landmark file {path} holds a non-finite coordinate"
  return np.asarray(values[1:], np.float32).reshape(NUM_LANDMARKS, 2)


def read_label(path: str, size: tuple[int, int]) -> "bytes | str":
  """The PNG bytes of a single-channel class map of the given (width, height), or why not."""
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    return f"cannot read label map {path}: {e}"
  label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
  if label is None or label.size == 0:
    return f"label map {path} does not decode"
  if label.dtype != np.uint8:
    return f"label map {path} is {label.dtype}, expected 8-bit class ids"
  if label.ndim == 3:  # a grey map saved as RGB(A): one channel if the colour ones agree
    if not (label[..., :3] == label[..., :1]).all():
      return f"label map {path} has colour channels that differ (expected class ids)"
    label = label[..., 0]
    data = cv2.imencode(".png", label)[1].tobytes()
  if (label.shape[1], label.shape[0]) != size:
    return (f"label map {path} is {label.shape[1]}x{label.shape[0]}, its image "
            f"{size[0]}x{size[1]}")
  if label.max() >= NUM_CLASSES:
    return f"label map {path} holds class id {label.max()} (expected 0..{NUM_CLASSES - 1})"
  return data
