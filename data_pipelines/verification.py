"""Face verification pairs from insightface `.bin` files: LFW, CFP-FP, AgeDB-30, CALFW, CPLFW and
any other `*.bin` in the folder (MLFW, LFW-M, ...); DATASETS.md 2, 17.1 and 19.

A `.bin` is a pickle of `(bins, issame_list)`: 2n encoded aligned 112x112 faces and n bools; pair i
is (bins[2i], bins[2i+1]). The files were written by Python 2 (loaded with encoding="bytes", as the
reference does after a plain load fails); some third-party files hold each image as a uint8 numpy
array of the encoded bytes. A pickle can run code, so `load_bin` uses a restricted unpickler that
admits only what the format holds (lists, tuples, bytes, bools, and numpy's reconstruction of
uint8/bool arrays) and refuses anything else with `UnsafePickleError`, before anything is written.

Splits: one per `*.bin` in the manual folder, named by the file's lowercased stem with every
character outside [a-z0-9_] replaced by `_`: `lfw`, `cfp_fp`, `agedb_30`, `calfw`, `cplfw`, ...
(`info.metadata["files"]` maps each split to its file). Example per pair: `image_a`, `image_b`
(tfds Image: the encoded bytes as stored in the .bin, decoded to uint8 RGB on read), `same` (bool),
`index` int64 (the pair's position in the file), `name` (`lfw.bin#<index>`).

Order: the 10 verification folds are contiguous blocks of the file's pair order, so shuffling is
off and example i of a split is pair i of the file; a skipped pair (item not bytes, image that does
not decode, non-bool label) is counted in the report and leaves a gap in `index`, which the
evaluator can check. The protocol's resize of non-112 images and the flip are the transform's job.
"""

from __future__ import annotations

import glob
import io
import os
import pickle
import re

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib


class UnsafePickleError(pickle.UnpicklingError):
  """A `.bin` asked for an object a verification file never holds; nothing of it was run."""


class BinFormatError(ValueError):
  """A `.bin` that unpickles but is not `(bins, issame_list)` with len(bins) == 2 len(issame)."""


# --- the restricted unpickler --------------------------------------------------------------

_ALLOWED_DTYPES = (np.dtype(np.uint8), np.dtype(np.bool_))
_NDARRAY = object()  # stands for numpy.ndarray: accepted by _reconstruct, never callable


def _checked_dtype(spec, align=False, copy=True):
  spec = spec.decode("ascii", "replace") if isinstance(spec, bytes) else spec
  try:
    dtype = np.dtype(spec) if isinstance(spec, str) else None
  except TypeError:  # not a dtype name at all
    dtype = None
  if dtype not in _ALLOWED_DTYPES:
    raise UnsafePickleError(f"numpy dtype {spec!r} refused: a .bin holds only uint8 and bool arrays")
  return np.dtype(spec, False, True)  # a copy: the pickle's BUILD then sets state on it


def _reconstruct(subtype, shape, typecode):
  """numpy's array reconstruction (followed by ndarray.__setstate__), ndarray only, empty start."""
  if subtype is not _NDARRAY or tuple(shape) != (0,):
    raise UnsafePickleError("array reconstruction refused: only a plain numpy.ndarray is allowed")
  return np.ndarray.__new__(np.ndarray, (0,), "b")


def _frombuffer(buffer, dtype, shape, order):
  """numpy's protocol-5 array reconstruction; the dtype came through _checked_dtype."""
  if not isinstance(dtype, np.dtype) or dtype not in _ALLOWED_DTYPES:
    raise UnsafePickleError("array from buffer refused: only uint8 and bool arrays are allowed")
  return np.frombuffer(bytes(buffer), dtype).reshape(shape, order=order).copy()


def _scalar(dtype, data):
  """numpy's scalar reconstruction (np.bool_ labels)."""
  if not isinstance(dtype, np.dtype) or dtype not in _ALLOWED_DTYPES or len(data) != 1:
    raise UnsafePickleError("numpy scalar refused: only uint8 and bool scalars are allowed")
  return np.frombuffer(bytes(data), dtype)[0]


def _latin1_bytes(text, encoding="latin1"):
  """How Python 3 writes bytes at pickle protocol <= 2: codecs.encode(str, 'latin1')."""
  if not isinstance(text, str) or encoding.replace("-", "").replace("_", "") != "latin1":
    raise UnsafePickleError(f"_codecs.encode with {encoding!r} refused: only latin1 bytes allowed")
  return text.encode("latin-1")


def _empty_bytes(*args):
  """How Python 3 writes b"" at protocol <= 2: bytes()."""
  if args:
    raise UnsafePickleError("bytes(...) with arguments refused")
  return b""


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _checked_dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}


class _BinUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    found = _ALLOWED_GLOBALS.get((module, name))
    if found is None:
      raise UnsafePickleError(
          f"refused to load `{module}.{name}`: a verification .bin holds only lists, tuples, "
          "bytes, bools and uint8 numpy arrays, so this file is not one (or was tampered with). "
          "Nothing from it was run.")
    return found


def _unpickle(data: bytes):
  try:
    return _BinUnpickler(io.BytesIO(data)).load()
  except UnicodeDecodeError:  # Python 2 str items: load them as bytes, as the reference does
    return _BinUnpickler(io.BytesIO(data), encoding="bytes").load()


def load_bin(path: str) -> tuple[list, list]:
  """(items, issame) of a verification `.bin`: 2n items (bytes; uint8 arrays are turned into
  their bytes; anything else is left as it is for the caller to skip) and n labels (as stored).
  Raises UnsafePickleError for a pickle that asks for anything else, BinFormatError for a wrong
  structure, pickle.UnpicklingError for a truncated or garbled file."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    content = _unpickle(data)
  except UnsafePickleError as e:
    raise UnsafePickleError(f"{path}: {e}") from None
  except Exception as e:  # a truncated / garbled pickle fails in many ways: name the file
    raise pickle.UnpicklingError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e
  if not (isinstance(content, (tuple, list)) and len(content) == 2):
    raise BinFormatError(f"{path}: expected a pickled 2-tuple (bins, issame_list), "
                         f"got {type(content).__name__}")
  items, issame = content
  if isinstance(issame, np.ndarray):
    issame = issame.ravel().tolist()
  if not isinstance(items, (list, tuple)) or not isinstance(issame, (list, tuple)):
    raise BinFormatError(f"{path}: bins and issame_list must be lists, got "
                         f"{type(items).__name__} and {type(issame).__name__}")
  if len(items) != 2 * len(issame):
    raise BinFormatError(f"{path}: {len(items)} images for {len(issame)} pairs; a .bin holds "
                         "two images per pair, pair i = (bins[2i], bins[2i+1])")
  return [_as_bytes(item) for item in items], list(issame)


def _as_bytes(item):
  if isinstance(item, np.ndarray) and item.dtype == np.uint8:
    return item.tobytes()
  if isinstance(item, bytearray):
    return bytes(item)
  return item


def split_name(path: str) -> str:
  """The split of a `.bin`: its lowercased stem, characters outside [a-z0-9_] as `_`."""
  stem = os.path.splitext(os.path.basename(path))[0].lower()
  return re.sub(r"[^a-z0-9_]", "_", stem)


# --- the builder ------------------------------------------------------------------------------

class Builder(builder_lib.FaceDatasetBuilder):
  """Verification pairs of insightface `.bin` files (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW, ...)."""

  name = "verification"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  The `.bin` files ship with insightface's training sets (e.g. `ms1m-retinaface-t1/lfw.bin`,
  `cfp_fp.bin`, `agedb_30.bin`; see
  https://github.com/deepinsight/insightface/tree/master/recognition/_datasets_; CALFW/CPLFW bins
  come with the same zoo). Put them in one folder and pass it as --manual_dir: every `*.bin`
  there becomes a split.
  """
  DISABLE_SHUFFLING = True  # reading order (pair order: the folds)
  LAYOUT = """
  lfw.bin         pickle of (list of 2n JPEG bytes, list of n bools)
  cfp_fp.bin
  agedb_30.bin
  calfw.bin       ... and any other `*.bin` (one split each, named after the file)
  cplfw.bin
  """

  def _features(self):
    return {"image_a": tfds.features.Image(shape=(None, None, 3)),
            "image_b": tfds.features.Image(shape=(None, None, 3)),
            "same": tfds.features.Scalar(np.bool_),
            "index": tfds.features.Scalar(np.int64),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    paths = sorted(glob.glob(os.path.join(manual_dir, "*.bin")))
    if not paths:
      raise builder_lib.MissingDataError(self.name, os.path.join(manual_dir, "*.bin"), self.LAYOUT)
    files = {}
    for path in paths:
      split = split_name(path)
      if split in files:
        raise ValueError(f"dataset 'verification': {files[split]!r} and {path!r} both map to split "
                         f"{split!r}; rename one")
      files[split] = path
    # Refuse an unsafe or malformed file now, before any split is written.
    for path in files.values():
      load_bin(path)
    self.info.metadata["files"] = {split: os.path.basename(p) for split, p in files.items()}
    return {split: (lambda path=path: self._read(path)) for split, path in files.items()}

  def _read(self, path):
    file = os.path.basename(path)
    items, issame = load_bin(path)
    for index, same in enumerate(issame):
      name = f"{file}#{index}"
      if isinstance(same, (bool, np.bool_)) or (type(same) is int and same in (0, 1)):
        same = bool(same)
      else:
        yield builder_lib.Skip(name, f"pair label {same!r} is not a bool")
        continue
      pair = items[2 * index], items[2 * index + 1]
      bad = next((k for k, item in enumerate(pair) if not isinstance(item, bytes)), None)
      if bad is not None:
        yield builder_lib.Skip(name, f"item {2 * index + bad} is a {type(pair[bad]).__name__}, "
                                     "not encoded image bytes or a uint8 array")
        continue
      if self.validate_images and not all(builder_lib.decodes(item) for item in pair):
        yield builder_lib.Skip(name, "image does not decode (corrupt or not an image)")
        continue
      yield str(index), {"image_a": pair[0], "image_b": pair[1], "same": same, "index": index,
                         "name": name}
