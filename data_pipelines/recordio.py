"""MXNet RecordIO (`.rec` + `.idx`), read and written in pure Python, without mxnet.

The format (DATASETS.md 1 and 19; dmlc-core `recordio.cc`, mxnet `recordio.py`), little-endian:

  record   magic 0xCED7230A (uint32), lrec (uint32: low 29 bits = length, high 3 bits = cflag),
           `length` payload bytes, zero padding to a multiple of 4.
  split    a payload that holds the magic word at a 4-byte-aligned offset is cut there into parts
           (cflag 1 first, 2 middle, 3 last; 0 = whole) and those 4 bytes are dropped; the reader
           joins the parts and puts the magic word back between them.
  payload  IRHeader `IfQQ` (flag, label, id, id2); when flag > 0 the next flag float32 values are
           the label (an array) and the IRHeader label is unused; the image bytes follow.
  .idx     text lines `key<TAB>byte offset of the record`, in any order.

Which keys are images (the insightface face sets): a header record at key 0 has flag > 0, label
`[first_identity_key, end_key]` and no image; the images are keys 1 .. first_identity_key - 1 and
the keys after them are per-identity range records. Two header layouts exist: insightface's
`RecBuilder` (header id2 = 1, image labels scalar) and the older `face2rec2` (header id2 = 0, image
labels `[identity, 1.0]`); both are read alike, the class being `label[0]` for an array label.
Files without a header (shuffled recs) use every key of the `.idx`.

`RecordIOReader` gives random access by key (thread-safe `pread`, reopened after pickling, so it
can go to grain workers); `RecordIODataSource` is a grain random-access source of decoded images and
labels, to train straight from `train.rec` without preparing; `RecordIOWriter` writes both files.
A truncated or corrupt record raises `RecordIOError` naming the file, the key and the byte offset.
"""

from __future__ import annotations

import array
import logging
import os
import struct
from typing import NamedTuple, Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_RECORD_HEAD = struct.Struct("<II")     # magic, lrec
_IR_HEADER = struct.Struct("<IfQQ")     # flag, label, id, id2: 24 bytes, no padding
_LENGTH_MASK = (1 << 29) - 1
_WHOLE, _FIRST, _MIDDLE, _LAST = 0, 1, 2, 3


class RecordIOError(ValueError):
  """A record that cannot be read: truncated, no magic word, broken split, short payload."""


class IRHeader(NamedTuple):
  """The header of a record's payload. `label` is a float, or a float32 array when flag > 0."""
  flag: int
  label: "float | np.ndarray"
  id: int
  id2: int


def class_id(header: IRHeader) -> float:
  """The identity label of an image record: the scalar label, or label[0] of an array label."""
  return float(header.label) if header.flag == 0 else float(header.label[0])


# --- payload: IRHeader + label array + image ------------------------------------------------

def pack(label: "float | Sequence[float]", image: bytes, id: int = 0, id2: int = 0) -> bytes:
  """The payload of one record: a scalar label goes in the IRHeader, a sequence (even of one
  value) is written as a flag > 0 label array, as mxnet's `recordio.pack` does."""
  if np.ndim(label) == 0:
    return _IR_HEADER.pack(0, float(label), id, id2) + bytes(image)
  labels = np.asarray(label, "<f4").ravel()
  if labels.size == 0:
    raise ValueError("an array label needs at least one value")
  return _IR_HEADER.pack(labels.size, 0.0, id, id2) + labels.tobytes() + bytes(image)


def unpack(payload: bytes) -> tuple[IRHeader, bytes]:
  """(IRHeader, image bytes) of a payload; RecordIOError when it is too short for its header."""
  if len(payload) < _IR_HEADER.size:
    raise RecordIOError(f"payload of {len(payload)} bytes is shorter than the 24-byte IRHeader")
  flag, label, id_, id2 = _IR_HEADER.unpack_from(payload)
  body = _IR_HEADER.size
  if flag > 0:
    end = body + 4 * flag
    if len(payload) < end:
      raise RecordIOError(f"payload of {len(payload)} bytes is too short for its {flag} labels")
    label = np.frombuffer(payload, "<f4", flag, body).astype(np.float32)
    body = end
  return IRHeader(flag, label, id_, id2), payload[body:]


# --- record framing -------------------------------------------------------------------------

def frame(payload: bytes) -> bytes:
  """The bytes of one record as dmlc's writer lays them out, split at aligned magic words."""
  if len(payload) > _LENGTH_MASK:
    raise ValueError(f"a record payload must be under 2**29 bytes, got {len(payload)}")
  out, start = [], 0
  aligned_end = len(payload) - len(payload) % 4
  i = payload.find(_MAGIC_BYTES, 0, aligned_end)
  while i != -1:
    if i % 4 == 0:  # dmlc splits only at aligned magic words
      out.append(_RECORD_HEAD.pack(MAGIC, (_FIRST if start == 0 else _MIDDLE) << 29 | (i - start)))
      out.append(payload[start:i])  # i - start is a multiple of 4: no padding between parts
      start = i + 4
    i = payload.find(_MAGIC_BYTES, i + (4 if i % 4 == 0 else 1), aligned_end)
  out.append(_RECORD_HEAD.pack(MAGIC, (_LAST if start else _WHOLE) << 29 | (len(payload) - start)))
  out.append(payload[start:])
  out.append(b"\0" * (-len(payload) % 4))
  return b"".join(out)


# --- the .idx -------------------------------------------------------------------------------

class RecordIndex(NamedTuple):
  """A parsed `.idx`: keys in increasing order with their byte offsets, and the lines it could
  not use as (line number, text, reason)."""
  keys: np.ndarray      # int64 [n], sorted
  offsets: np.ndarray   # int64 [n]
  bad_lines: list

  def offset(self, key: int) -> int | None:
    i = int(np.searchsorted(self.keys, key))
    return int(self.offsets[i]) if i < len(self.keys) and self.keys[i] == key else None

  def __contains__(self, key) -> bool:
    return self.offset(int(key)) is not None


def read_index(idx_path: str) -> RecordIndex:
  """Parses an `.idx` (tab or space separated, LF or CRLF, any order). A key seen twice keeps
  its first offset; the repeat is reported in `bad_lines`. Compact for millions of lines."""
  keys, offsets, line_numbers, bad = array.array("q"), array.array("q"), array.array("q"), []
  with open(idx_path, encoding="ascii", errors="replace") as f:
    for n, line in enumerate(f, 1):
      fields = line.split()
      if not fields:
        continue
      try:
        key, offset = (int(v) for v in fields)
      except ValueError:
        bad.append((n, line.strip(), "expected `key<TAB>offset` (two integers)"))
        continue
      if not (0 <= offset < 2**63 and -2**63 <= key < 2**63):
        bad.append((n, line.strip(), "key or offset out of the int64 range"))
        continue
      keys.append(key)
      offsets.append(offset)
      line_numbers.append(n)
  order = np.argsort(np.frombuffer(keys, np.int64), kind="stable")  # equal keys: file order
  keys_arr, offsets_arr, lines_arr = (np.frombuffer(a, np.int64)[order]
                                      for a in (keys, offsets, line_numbers))
  repeated = np.flatnonzero(keys_arr[1:] == keys_arr[:-1]) + 1
  for i in repeated:
    bad.append((int(lines_arr[i]), f"{keys_arr[i]}\t{offsets_arr[i]}",
                f"key {keys_arr[i]} appears again; the first offset is used"))
  bad.sort()
  keep = np.ones(len(keys_arr), bool)
  keep[repeated] = False
  return RecordIndex(keys_arr[keep], offsets_arr[keep], bad)


# --- reading --------------------------------------------------------------------------------

class RecordIOReader:
  """Random access to the records of a `.rec` by the keys of its `.idx`.

  Reads with `os.pread` (no shared file position, so threads may share a reader); the file is
  reopened lazily in each process, so a reader pickles (grain workers) without its descriptor.
  """

  def __init__(self, rec_path: str, idx_path: str | None = None, index: RecordIndex | None = None):
    self.rec_path = os.fspath(rec_path)
    self.idx_path = os.fspath(idx_path) if idx_path else os.path.splitext(self.rec_path)[0] + ".idx"
    for path in (self.rec_path, self.idx_path):
      if not os.path.exists(path):
        raise FileNotFoundError(f"RecordIO: {path!r} does not exist (a .rec needs its .idx)")
    self.index = index if index is not None else read_index(self.idx_path)
    self._fd, self._pid, self._size = None, None, 0

  @property
  def keys(self) -> np.ndarray:
    return self.index.keys

  def _file(self) -> int:
    if self._fd is None or self._pid != os.getpid():
      self._fd, self._pid = os.open(self.rec_path, os.O_RDONLY), os.getpid()
      self._size = os.fstat(self._fd).st_size
    return self._fd

  def read(self, key: int) -> bytes:
    """The payload of record `key`; KeyError if the `.idx` lacks it, RecordIOError if the record
    is truncated or corrupt."""
    offset = self.index.offset(int(key))
    if offset is None:
      raise KeyError(f"{self.idx_path}: no record with key {key}")
    return self.read_at(offset, key)

  def read_at(self, offset: int, key: "int | str" = "?") -> bytes:
    """The payload of the record whose magic word is at byte `offset`, its parts joined."""
    fd, parts, pos = self._file(), [], offset
    where = f"{self.rec_path}: record {key} at byte {offset}"
    while True:
      head = os.pread(fd, _RECORD_HEAD.size, pos)
      if len(head) < _RECORD_HEAD.size:
        raise RecordIOError(f"{where}: the file ends at byte {self._size} inside a record header "
                            "(truncated .rec, or an .idx offset past its end)")
      magic, lrec = _RECORD_HEAD.unpack(head)
      if magic != MAGIC:
        raise RecordIOError(f"{where}: no magic word at byte {pos} (found 0x{magic:08X}): corrupt "
                            ".rec or an .idx that belongs to another file")
      cflag, length = lrec >> 29, lrec & _LENGTH_MASK
      expected = (_WHOLE, _FIRST) if not parts else (_MIDDLE, _LAST)
      if cflag not in expected:
        raise RecordIOError(f"{where}: part at byte {pos} has continuation flag {cflag}, expected "
                            f"one of {expected} (broken split record)")
      if pos + _RECORD_HEAD.size + length > self._size:
        raise RecordIOError(f"{where}: {length}-byte payload runs past the end of the file "
                            f"({self._size} bytes): truncated .rec")
      parts.append(os.pread(fd, length, pos + _RECORD_HEAD.size))
      pos += _RECORD_HEAD.size + length + (-length % 4)
      if cflag in (_WHOLE, _LAST):
        return _MAGIC_BYTES.join(parts)

  def read_item(self, key: int) -> tuple[IRHeader, bytes]:
    """(IRHeader, image bytes) of record `key`."""
    payload = self.read(key)
    try:
      return unpack(payload)
    except RecordIOError as e:
      raise RecordIOError(f"{self.rec_path}: record {key}: {e}") from None

  def close(self):
    if self._fd is not None and self._pid == os.getpid():
      os.close(self._fd)
    self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def __getstate__(self):
    return {**self.__dict__, "_fd": None, "_pid": None}

  def __del__(self):
    try:
      self.close()
    except Exception:  # interpreter shutdown: nothing left to clean up
      pass


class ImageKeys(NamedTuple):
  """Which keys hold images. `header` is the key-0 header (None without one); `missing` are keys
  the header names that the `.idx` lacks."""
  keys: np.ndarray
  header: IRHeader | None
  missing: np.ndarray


def image_keys(reader: RecordIOReader) -> ImageKeys:
  """The image keys by the insightface rule: a key-0 header with a label array and no image
  names keys 1 .. label[0] - 1; otherwise (no key 0, or key 0 is itself an image) every key."""
  if 0 in reader.index:
    header, image = reader.read_item(0)
    if header.flag > 0 and not image:
      first_identity = float(header.label[0])
      if not (np.isfinite(first_identity) and first_identity >= 1
              and first_identity == int(first_identity)):
        raise RecordIOError(f"{reader.rec_path}: header record (key 0) names {first_identity} as "
                            "its first identity key; expected an integer >= 1")
      keys = reader.keys
      present = keys[(keys >= 1) & (keys < first_identity)]
      if int(first_identity) - 1 > 2 * len(present):  # also keeps a corrupt header from
        raise RecordIOError(                           # listing billions of keys
            f"{reader.rec_path}: the header (key 0) names keys 1..{int(first_identity) - 1} as "
            f"images but {reader.idx_path} has only {len(present)} of them: wrong .idx?")
      missing = np.setdiff1d(np.arange(1, int(first_identity), dtype=np.int64), present)
      return ImageKeys(present, header, missing)
  return ImageKeys(reader.keys, None, np.zeros(0, np.int64))


class RecordIODataSource:
  """A grain random-access source over a face `.rec`: item i = {"image": uint8 RGB [H, W, 3],
  "label": int64}, the same fields as the prepared ms1mv3 examples. Image keys follow
  `image_keys`; a record that does not read or decode raises RecordIOError naming it."""

  def __init__(self, rec_path: str, idx_path: str | None = None):
    self._reader = RecordIOReader(rec_path, idx_path)
    found = image_keys(self._reader)
    self._keys = found.keys
    self.missing_keys = found.missing
    if len(found.missing):
      log.warning("%s: %d keys named by the header are not in %s; they are left out",
                  self._reader.rec_path, len(found.missing), self._reader.idx_path)
    if self._reader.index.bad_lines:
      log.warning("%s: %d unusable lines, e.g. %s", self._reader.idx_path,
                  len(self._reader.index.bad_lines), self._reader.index.bad_lines[0])

  def __len__(self) -> int:
    return len(self._keys)

  def __getitem__(self, index: int) -> dict:
    key = int(self._keys[index])
    header, data = self._reader.read_item(key)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
      raise RecordIOError(f"{self._reader.rec_path}: record {key}: image does not decode")
    return {"image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
            "label": np.int64(class_id(header))}

  def __repr__(self) -> str:
    return f"RecordIODataSource({self._reader.rec_path!r}, {len(self)} images)"


# --- writing --------------------------------------------------------------------------------

class RecordIOWriter:
  """Writes a `.rec` and its `.idx` (one `key<TAB>offset` line per record, in write order).

    with RecordIOWriter("train.rec", "train.idx") as w:
      w.write(1, 0.0, jpeg_bytes)                    # scalar label
      w.write(0, [1.0, 7.0], b"", id2=1)             # a label array (flag 2), e.g. the header
  """

  def __init__(self, rec_path: str, idx_path: str):
    self._rec = open(rec_path, "wb")
    self._idx = open(idx_path, "w", encoding="ascii", newline="\n")
    self._keys: set[int] = set()

  def write(self, key: int, label: "float | Sequence[float]", image: bytes, id: int = 0,
            id2: int = 0) -> None:
    key = int(key)
    if key in self._keys:
      raise ValueError(f"key {key} was already written")
    self._keys.add(key)
    offset = self._rec.tell()
    self._rec.write(frame(pack(label, image, id, id2)))
    self._idx.write(f"{key}\t{offset}\n")

  def close(self) -> None:
    self._rec.close()
    self._idx.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
