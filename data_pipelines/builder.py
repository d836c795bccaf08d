"""The shared shape of every dataset builder: raw files in, ArrayRecord shards out, skips counted.

Each dataset module (`data_pipelines/<dataset>.py`) defines one `FaceDatasetBuilder` subclass that
says three things: the features it stores, the folder layout it expects, and for each split a
generator of `(key, example)` pairs read from the raw files. A generator that meets a bad item (a
corrupt image, a malformed annotation line, a truncated record) yields a `Skip` instead; the builder
counts and logs it, writes it to `skipped.json` beside the shards, and carries on. A missing folder
or file is one `MissingDataError` that names the dataset, the path and the expected layout.

What a prepared example holds (the contract with `transforms.py` and the evaluators). Every
example: `image` (tfds Image: the distributed bytes, decoded to uint8 RGB [H, W, 3]) and `name`
(Text: the file or record it came from). Then by task type:
  align     `landmarks` float32 [K, 2] (x, y), 0-based pixels of the original image;
            `box` float32 [4] (x0, y0, x1, y1): the square crop box by the dataset's rule (for
            AFLW-19 the dataset box, which is also the NME_box/diag normaliser);
            AFLW-19 adds `visible` float32 [19].
  parsing   `label` (tfds Image, PNG, uint8 [H, W, 1]) class ids in the model's class order;
            LaPa adds `landmarks` float32 [106, 2] (used for the 5-point alignment).
  age       `age` float32 (years).
  affect    `label` int64 in AffectNet order (0 Neutral .. 6 Anger, 7 Contempt where kept).
  biattr    `attributes` int64 [A] in {0, 1, -1 = unknown}.
  recog     `label` int64 identity.
Identity evaluation sets have their own features (documented in their modules).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import textwrap
from typing import Callable, Iterator, NamedTuple

import cv2
import numpy as np
import tensorflow_datasets as tfds

log = logging.getLogger(__name__)


class Skip(NamedTuple):
  """An item that could not be read: its key (file or line) and why."""
  key: str
  reason: str


class MissingDataError(FileNotFoundError):
  """A dataset folder or file is absent. The message says which dataset, where, and the layout."""

  def __init__(self, dataset: str, path: str, layout: str):
    super().__init__(
        f"dataset {dataset!r}: {path!r} does not exist.\n"
        f"Expected layout under the manual folder:\n{textwrap.dedent(layout).strip()}")
    self.dataset, self.path = dataset, path


SplitReader = Callable[[], Iterator["tuple[str, dict] | Skip"]]


class FaceDatasetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of every dataset builder. Subclasses set `name`, `LAYOUT`, `MANUAL_DOWNLOAD_INSTRUCTIONS`
  and implement `_features()` and `_split_readers(manual_dir)`.

  Images are stored as the bytes the dataset distributes (a path or bytes handed to
  `tfds.features.Image` is stored unchanged); label maps as PNG.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  LAYOUT = ""  # the folder layout expected under the manual folder (shown in errors)
  # Keep the examples in reading order (e.g. verification pairs, whose order the folds use).
  DISABLE_SHUFFLING = False

  def __init__(self, *args, validate_images: bool = True, options: dict | None = None,
               **kwargs):
    super().__init__(*args, **kwargs)
    self.validate_images = validate_images
    # Protocol knobs a dataset documents (e.g. aflw19's `train_size`), from prepare --options.
    self.options = dict(options or {})
    self.read_counts: collections.Counter = collections.Counter()
    self.skipped: dict[str, list[Skip]] = collections.defaultdict(list)
    # Items the protocol drops on purpose (e.g. AffectNet's Contempt in the 7-class setting):
    # {split: Counter(reason)}, reported apart from the errors.
    self.filtered: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

  # --- what subclasses provide ------------------------------------------------------------

  def _features(self) -> dict:
    raise NotImplementedError

  def _split_readers(self, manual_dir: str) -> dict[str, SplitReader]:
    raise NotImplementedError

  # --- helpers for subclasses ---------------------------------------------------------------

  def require(self, *parts: str) -> str:
    """The joined path if it exists, else a MissingDataError with this dataset's layout."""
    path = os.path.join(*parts)
    if not os.path.exists(path):
      raise MissingDataError(self.name, path, self.LAYOUT)
    return path

  def image_or_skip(self, path: str, key: str | None = None) -> "bytes | Skip":
    """The file's bytes if it decodes as an image, else a Skip (unreadable, empty, corrupt)."""
    key = key or path
    try:
      with open(path, "rb") as f:
        data = f.read()
    except OSError as e:
      return Skip(key, f"cannot read image: {e}")
    if self.validate_images and not decodes(data):
      return Skip(key, "image does not decode (corrupt or not an image)")
    return data

  # --- the TFDS side --------------------------------------------------------------------------

  def _info(self) -> tfds.core.DatasetInfo:
    # `metadata` takes what a builder learns while reading (class counts, attribute names).
    return tfds.core.DatasetInfo(
        builder=self, description=(self.__doc__ or "").strip(),
        features=tfds.features.FeaturesDict(self._features()),
        metadata=tfds.core.MetadataDict(), disable_shuffling=self.DISABLE_SHUFFLING)

  def _split_generators(self, dl_manager):
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError:  # TFDS's own check: absent or empty
      manual_dir = None
    if manual_dir is None or not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
      raise MissingDataError(self.name, str(manual_dir), self.LAYOUT)
    return {split: self._generate_examples(split, reader)
            for split, reader in self._split_readers(os.fspath(manual_dir)).items()}

  def _generate_examples(self, split: str, reader: SplitReader):
    seen = set()
    for item in reader():
      if isinstance(item, Skip):
        self.skipped[split].append(item)
        log.warning("%s/%s: skipped %s: %s", self.name, split, item.key, item.reason)
        continue
      key, example = item
      if key in seen:  # TFDS refuses duplicate keys at the end of a split: catch it here
        self.skipped[split].append(Skip(key, "duplicate key"))
        continue
      seen.add(key)
      self.read_counts[split] += 1
      yield key, example
    if not self.read_counts[split]:  # TFDS cannot write an empty split: say why it is empty
      reasons = "; ".join(f"{s.key}: {s.reason}" for s in self.skipped.get(split, [])[:5])
      raise ValueError(f"dataset {self.name!r}: no example of split {split!r} could be read"
                       + (f" (first skips: {reasons})" if reasons else ""))

  def skip_report(self) -> dict:
    """{split: {"read": n, "skipped": [[key, reason], ...], "filtered": {reason: n}}} of the
    last preparation."""
    splits = sorted(set(self.read_counts) | set(self.skipped) | set(self.filtered))
    return {split: {"read": self.read_counts[split],
                    "skipped": [list(s) for s in self.skipped.get(split, [])],
                    "filtered": dict(self.filtered.get(split, {}))}
            for split in splits}

  def write_skip_report(self) -> str:
    """Writes skip_report() as skipped.json beside the prepared shards; returns its path."""
    path = os.path.join(os.fspath(self.data_path), "skipped.json")
    with open(path, "w") as f:
      json.dump(self.skip_report(), f, indent=1)
    return path


def landmark_features(num_points: int) -> dict:
  """The features every landmark dataset stores (see the module docstring)."""
  return {"image": tfds.features.Image(shape=(None, None, 3)),
          "name": tfds.features.Text(),
          "landmarks": tfds.features.Tensor(shape=(num_points, 2), dtype=np.float32),
          "box": tfds.features.Tensor(shape=(4,), dtype=np.float32)}


def decodes(data: bytes) -> bool:
  """Whether OpenCV can decode these bytes as an image."""
  if not data:
    return False
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
  return img is not None and img.size > 0


def parse_age(text: str) -> float | None:
  """An age field as a number of years, or None if it is not a finite age >= 0."""
  try:
    age = float(text)
  except ValueError:
    return None
  return age if math.isfinite(age) and age >= 0 else None


def read_lines(path: str) -> list[str]:
  """A text file's non-empty lines, stripped; LF or CRLF, trailing spaces and a missing final
  newline all accepted (real annotation files have each)."""
  with open(path, encoding="utf-8", errors="replace") as f:
    return [line.strip() for line in f.read().splitlines() if line.strip()]
