"""Verification `.bin` builder: Python 2 and Python 3 pickles, bytes and uint8-array items, pair
order kept, bad pairs counted, and the restricted unpickler refusing anything else."""

import os
import pickle
import struct

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare, verification


def jpeg(value, size=16):
  image = np.zeros((size, size, 3), np.uint8)
  image[:, : size // 2] = value
  return cv2.imencode(".jpg", image)[1].tobytes()


def decoded_rgb(data):
  return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), 1), cv2.COLOR_BGR2RGB)


def python2_pickle(items, issame):
  """What Python 2's pickle.dump((bins, issame), f, protocol=2) writes for str items: BINSTRING
  opcodes (loaded in Python 3 only with encoding="bytes")."""
  out = [b"\x80\x02", b"]", b"("]  # PROTO 2, EMPTY_LIST, MARK
  for item in items:
    out.append(b"T" + struct.pack("<I", len(item)) + item)  # BINSTRING
  out += [b"e", b"]", b"("]  # APPENDS, EMPTY_LIST, MARK
  out += [b"\x88" if same else b"\x89" for same in issame]  # NEWTRUE / NEWFALSE
  out += [b"e", b"\x86", b"."]  # APPENDS, TUPLE2, STOP
  return b"".join(out)


class RunsCode:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def images():
  return [jpeg(v) for v in (10, 60, 110, 160, 210, 250)]


def test_bins_from_python2_python3_bytes_and_uint8_arrays(tmp_path, images):
  raw = tmp_path / "raw"
  raw.mkdir()
  # lfw: Python 3, protocol 2, bytes items; pair 1 has a corrupt image, pair 3 a non-bytes item
  lfw_items = images[:2] + [images[2], b"garbage"] + images[3:5] + [images[5], 12345]
  with open(raw / "lfw.bin", "wb") as f:
    pickle.dump((lfw_items, [True, False, True, False]), f, protocol=2)
  # agedb_30: uint8 arrays of shape (N, 1), as some third-party bins hold them
  arrays = [np.frombuffer(b, np.uint8).reshape(-1, 1) for b in images[:4]]
  with open(raw / "agedb_30.bin", "wb") as f:
    pickle.dump((arrays, [False, True]), f, protocol=2)
  # cfp_fp: written by Python 2
  (raw / "cfp_fp.bin").write_bytes(python2_pickle(images[:4], [True, True]))
  (raw / "CPLFW-M.bin").write_bytes(pickle.dumps((images[4:6], [np.bool_(False)]), protocol=5))
  (raw / "notes.txt").write_text("not a bin")

  report = prepare.prepare("verification", str(raw), str(tmp_path / "out"))
  assert sorted(report) == ["agedb_30", "cfp_fp", "cplfw_m", "lfw"]
  assert report["lfw"]["read"] == 2
  skipped = dict(report["lfw"]["skipped"])
  assert "does not decode" in skipped["lfw.bin#1"] and "int" in skipped["lfw.bin#3"]

  out = str(tmp_path / "out")
  lfw = tfds.data_source("verification", split="lfw", data_dir=out)
  assert [int(lfw[i]["index"]) for i in range(len(lfw))] == [0, 2]  # file order, gap counted
  assert [bool(lfw[i]["same"]) for i in range(2)] == [True, True]
  np.testing.assert_array_equal(lfw[1]["image_a"], decoded_rgb(images[3]))
  np.testing.assert_array_equal(lfw[1]["image_b"], decoded_rgb(images[4]))
  assert lfw[1]["name"].decode() == "lfw.bin#2"

  agedb = tfds.data_source("verification", split="agedb_30", data_dir=out)
  assert [bool(agedb[i]["same"]) for i in range(2)] == [False, True]
  np.testing.assert_array_equal(agedb[1]["image_b"], decoded_rgb(images[3]))
  cfp = tfds.data_source("verification", split="cfp_fp", data_dir=out)
  assert len(cfp) == 2 and [int(cfp[i]["index"]) for i in range(2)] == [0, 1]
  np.testing.assert_array_equal(cfp[0]["image_a"], decoded_rgb(images[0]))
  # splits concatenate at read time (nothing stored twice)
  assert len(tfds.data_source("verification", split="lfw+cfp_fp", data_dir=out)) == 4
  info = tfds.builder_from_directory(os.path.join(out, "verification", "1.0.0")).info
  assert info.metadata["files"]["cplfw_m"] == "CPLFW-M.bin"


def test_pair_order_is_kept_for_many_pairs(tmp_path, images):
  raw = tmp_path / "raw"
  raw.mkdir()
  issame = [bool(i % 3) for i in range(40)]
  items = [images[i % 6] for i in range(80)]
  with open(raw / "calfw.bin", "wb") as f:
    pickle.dump((items, issame), f, protocol=2)
  prepare.prepare("verification", str(raw), str(tmp_path / "out"))
  source = tfds.data_source("verification", split="calfw", data_dir=str(tmp_path / "out"))
  got = [source[i] for i in range(len(source))]
  assert [int(g["index"]) for g in got] == list(range(40))
  assert [bool(g["same"]) for g in got] == issame


def test_code_in_a_pickle_is_refused_and_not_run(tmp_path, images):
  marker = tmp_path / "was_run"
  raw = tmp_path / "raw"
  raw.mkdir()
  with open(raw / "lfw.bin", "wb") as f:
    pickle.dump((images[:2], [True]), f, protocol=2)
  with open(raw / "evil.bin", "wb") as f:
    pickle.dump(([RunsCode(marker), images[0]], [True]), f, protocol=2)
  with pytest.raises(verification.UnsafePickleError, match=r"evil\.bin: refused to load `posix\.system`"):
    verification.load_bin(str(raw / "evil.bin"))
  with pytest.raises(verification.UnsafePickleError):
    prepare.prepare("verification", str(raw), str(tmp_path / "out"))
  assert not marker.exists()
  assert not (tmp_path / "out" / "verification" / "1.0.0").exists()  # nothing written


@pytest.mark.parametrize("content", [
    (np.zeros((4, 1), np.float32), [True]),            # a float array
    ([np.array([object()], dtype=object)], [True]),    # an object array
])
def test_other_numpy_arrays_are_refused(tmp_path, content):
  path = tmp_path / "x.bin"
  path.write_bytes(pickle.dumps(content, protocol=2))
  with pytest.raises(verification.UnsafePickleError, match="dtype"):
    verification.load_bin(str(path))


def test_malformed_bins_are_clear_errors(tmp_path, images):
  path = tmp_path / "lfw.bin"
  path.write_bytes(pickle.dumps((images[:3], [True, False]), protocol=2))
  with pytest.raises(verification.BinFormatError, match="3 images for 2 pairs"):
    verification.load_bin(str(path))
  path.write_bytes(pickle.dumps({"bins": images}, protocol=2))
  with pytest.raises(verification.BinFormatError, match="2-tuple"):
    verification.load_bin(str(path))
  path.write_bytes(pickle.dumps((images[:2], [True]), protocol=2)[:-30])  # truncated
  with pytest.raises(pickle.UnpicklingError, match=r"lfw\.bin: not a readable pickle"):
    verification.load_bin(str(path))


def test_no_bin_files_is_a_missing_data_error(tmp_path):
  (tmp_path / "raw").mkdir()
  with pytest.raises(builder.MissingDataError, match=r"\*\.bin"):
    prepare.prepare("verification", str(tmp_path / "raw"), str(tmp_path / "out"))


def test_split_names():
  assert verification.split_name("/d/agedb_30.bin") == "agedb_30"
  assert verification.split_name("LFW-M.bin") == "lfw_m"
