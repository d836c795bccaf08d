"""MXNet RecordIO reader/writer: byte layout, split records, header layouts, label arrays, any .idx
order, truncation and corruption, and the grain data source."""

import pickle
import random
import struct

import cv2
import numpy as np
import pytest

from data_pipelines import recordio

MAGIC = struct.pack("<I", 0xCED7230A)


def jpeg(value, size=16):
  return cv2.imencode(".jpg", np.full((size, size, 3), value, np.uint8))[1].tobytes()


def write_recbuilder(tmp_path, images_per_id=(3, 2)):
  """insightface RecBuilder layout: images 1.., identity range records, header (key 0) last."""
  rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
  key, ranges = 1, []
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    for identity, count in enumerate(images_per_id):
      ranges.append((key, key + count))
      for _ in range(count):
        w.write(key, float(identity), jpeg(40 * identity + key))
        key += 1
    first_identity = key
    for start, stop in ranges:
      w.write(key, [start, stop], b"")
      key += 1
    w.write(0, [first_identity, key], b"", id2=1)
  return rec, idx


def test_frame_byte_layout_matches_dmlc():
  # magic, lrec = length (cflag 0), payload, zero padding to 4 bytes
  assert recordio.frame(b"abcde") == MAGIC + struct.pack("<I", 5) + b"abcde" + b"\0\0\0"
  assert recordio.frame(b"abcd") == MAGIC + struct.pack("<I", 4) + b"abcd"
  # magic at aligned offset 4: parts "abcd" (cflag 1) and "xy" (cflag 3), magic dropped
  framed = recordio.frame(b"abcd" + MAGIC + b"xy")
  assert framed == (MAGIC + struct.pack("<I", 1 << 29 | 4) + b"abcd"
                    + MAGIC + struct.pack("<I", 3 << 29 | 2) + b"xy" + b"\0\0")
  # an unaligned magic word is not a split point
  assert recordio.frame(b"a" + MAGIC + b"bcd") == MAGIC + struct.pack("<I", 8) + b"a" + MAGIC + b"bcd"


def test_pack_unpack_scalar_and_array_labels():
  header, image = recordio.unpack(recordio.pack(3.0, b"img", id=7, id2=9))
  assert header == recordio.IRHeader(0, 3.0, 7, 9) and image == b"img"
  payload = recordio.pack([5, 1.0], b"jpg")
  assert struct.unpack_from("<IfQQ", payload) == (2, 0.0, 0, 0)  # flag 2, label field unused
  header, image = recordio.unpack(payload)
  assert header.flag == 2 and header.label.tolist() == [5.0, 1.0] and image == b"jpg"
  assert recordio.class_id(header) == 5.0
  with pytest.raises(ValueError):
    recordio.pack([], b"")
  with pytest.raises(recordio.RecordIOError, match="too short"):
    recordio.unpack(struct.pack("<IfQQ", 3, 0, 0, 0) + b"\0" * 8)


def test_split_records_are_joined_with_the_magic_put_back(tmp_path):
  # payload = 24-byte IRHeader + image, so image offsets 0, 4 and the last 4 bytes are aligned
  image = MAGIC + b"ab" + b"cd" + MAGIC + b"x" * 8 + MAGIC + b"tail" + MAGIC
  unaligned = b"z" + MAGIC + b"zzz"
  rec, idx = tmp_path / "s.rec", tmp_path / "s.idx"
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    w.write(1, 0.0, image)
    w.write(2, [4.0, 2.0], image[:6])  # label array shifts the image by 8 bytes: still aligned
    w.write(3, 1.0, unaligned)
  raw = rec.read_bytes()
  cflags = []
  pos = 0
  while pos < len(raw):
    magic, lrec = struct.unpack_from("<II", raw, pos)
    assert magic == 0xCED7230A
    cflags.append(lrec >> 29)
    pos += 8 + ((lrec & (2 ** 29 - 1)) + 3) // 4 * 4
  assert cflags[:5] == [1, 2, 2, 2, 3] and cflags[5:7] == [1, 3] and cflags[7:] == [0]
  with recordio.RecordIOReader(str(rec), str(idx)) as reader:
    assert reader.read_item(1) == (recordio.IRHeader(0, 0.0, 0, 0), image)
    header, data = reader.read_item(2)
    assert header.label.tolist() == [4.0, 2.0] and data == image[:6]
    assert reader.read_item(3)[1] == unaligned


def test_recbuilder_header_gives_image_keys(tmp_path):
  rec, idx = write_recbuilder(tmp_path)
  reader = recordio.RecordIOReader(str(rec))  # the .idx found beside the .rec
  found = recordio.image_keys(reader)
  assert found.keys.tolist() == [1, 2, 3, 4, 5]
  assert found.header.id2 == 1 and found.header.label.tolist() == [6.0, 8.0]
  assert len(found.missing) == 0
  labels = [recordio.class_id(reader.read_item(k)[0]) for k in found.keys]
  assert labels == [0, 0, 0, 1, 1]
  assert reader.read_item(6)[0].label.tolist() == [1.0, 4.0]  # identity 0's key range


def test_face2rec2_header_and_array_labels(tmp_path):
  rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    w.write(0, [4.0, 6.0], b"")  # header id2 = 0
    for key, identity in ((1, 0), (2, 1), (3, 1)):
      w.write(key, [identity, 1.0], jpeg(key))
  reader = recordio.RecordIOReader(str(rec), str(idx))
  found = recordio.image_keys(reader)
  assert found.header.id2 == 0 and found.keys.tolist() == [1, 2, 3]
  assert [recordio.class_id(reader.read_item(k)[0]) for k in found.keys] == [0, 1, 1]


def test_without_header_every_key_is_an_image(tmp_path):
  rec, idx = tmp_path / "shuf.rec", tmp_path / "shuf.idx"
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    w.write(0, [2.0, 1.0], jpeg(1))  # key 0 with an array label but an image: not a header
    w.write(5, 0.0, jpeg(2))
    w.write(3, 1.0, jpeg(3))
  found = recordio.image_keys(recordio.RecordIOReader(str(rec), str(idx)))
  assert found.header is None and found.keys.tolist() == [0, 3, 5]
  rec2, idx2 = tmp_path / "nozero.rec", tmp_path / "nozero.idx"
  with recordio.RecordIOWriter(str(rec2), str(idx2)) as w:
    w.write(7, 0.0, jpeg(1))
  assert recordio.image_keys(recordio.RecordIOReader(str(rec2), str(idx2))).keys.tolist() == [7]


def test_index_in_any_order_with_crlf_padding_and_bad_lines(tmp_path):
  rec, idx = write_recbuilder(tmp_path)
  lines = idx.read_text().splitlines()
  random.Random(0).shuffle(lines)
  # CRLF, trailing spaces, a malformed line, a repeated key, no final newline
  idx.write_bytes(("\r\n".join(f"{line}   " for line in lines) + "\r\nnot a line\r\n3\t9"
                   ).encode())
  index = recordio.read_index(str(idx))
  assert index.keys.tolist() == list(range(8))
  assert [n for n, _, _ in index.bad_lines] == [len(lines) + 1, len(lines) + 2]
  reader = recordio.RecordIOReader(str(rec), str(idx))
  assert recordio.image_keys(reader).keys.tolist() == [1, 2, 3, 4, 5]
  assert cv2.imdecode(np.frombuffer(reader.read_item(4)[1], np.uint8), 1) is not None


def test_header_naming_absent_keys_reports_them(tmp_path):
  rec, idx = write_recbuilder(tmp_path)
  idx.write_text("".join(line + "\n" for line in idx.read_text().splitlines()
                         if not line.startswith("2\t")))
  found = recordio.image_keys(recordio.RecordIOReader(str(rec), str(idx)))
  assert found.keys.tolist() == [1, 3, 4, 5] and found.missing.tolist() == [2]
  # a header naming far more keys than the .idx holds is an error, not millions of skips
  rec2, idx2 = tmp_path / "h.rec", tmp_path / "h.idx"
  with recordio.RecordIOWriter(str(rec2), str(idx2)) as w:
    w.write(1, 0.0, jpeg(1))
    w.write(0, [1e7, 1e7], b"", id2=1)
  with pytest.raises(recordio.RecordIOError, match="has only 1 of them"):
    recordio.image_keys(recordio.RecordIOReader(str(rec2), str(idx2)))


def test_truncated_and_corrupt_records_raise_clear_errors(tmp_path):
  rec, idx = tmp_path / "t.rec", tmp_path / "t.idx"
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    w.write(1, 0.0, jpeg(1))
    w.write(2, 0.0, jpeg(2))
  offset2 = recordio.read_index(str(idx)).offset(2)
  rec.write_bytes(rec.read_bytes()[:offset2 + 20])  # cut inside record 2's payload
  reader = recordio.RecordIOReader(str(rec), str(idx))
  assert reader.read_item(1)[1] == jpeg(1)
  with pytest.raises(recordio.RecordIOError, match=r"t\.rec: record 2 .*truncated"):
    reader.read(2)
  with pytest.raises(recordio.RecordIOError, match="no magic word"):
    reader.read_at(4, key=1)
  with pytest.raises(KeyError, match="no record with key 9"):
    reader.read(9)
  rec.write_bytes(rec.read_bytes()[:offset2 + 5])  # cut inside the record header
  with pytest.raises(recordio.RecordIOError, match="inside a record header"):
    recordio.RecordIOReader(str(rec), str(idx)).read(2)


def test_broken_split_record_is_an_error(tmp_path):
  rec, idx = tmp_path / "b.rec", tmp_path / "b.idx"
  # a first part (cflag 1) followed by a whole record (cflag 0) instead of a continuation
  rec.write_bytes(MAGIC + struct.pack("<I", 1 << 29 | 4) + b"abcd" + recordio.frame(b"efgh"))
  idx.write_text("1\t0\n")
  with pytest.raises(recordio.RecordIOError, match="broken split record"):
    recordio.RecordIOReader(str(rec), str(idx)).read(1)


def test_missing_idx_is_named(tmp_path):
  (tmp_path / "x.rec").write_bytes(b"")
  with pytest.raises(FileNotFoundError, match=r"x\.idx"):
    recordio.RecordIOReader(str(tmp_path / "x.rec"))


def test_writer_refuses_a_repeated_key(tmp_path):
  with recordio.RecordIOWriter(str(tmp_path / "r.rec"), str(tmp_path / "r.idx")) as w:
    w.write(1, 0.0, b"a")
    with pytest.raises(ValueError, match="already written"):
      w.write(1, 0.0, b"b")


def test_data_source_decodes_rgb_and_survives_pickling(tmp_path):
  rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
  red_rgb = np.zeros((12, 10, 3), np.uint8)
  red_rgb[..., 0] = 255
  png = cv2.imencode(".png", cv2.cvtColor(red_rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
  with recordio.RecordIOWriter(str(rec), str(idx)) as w:
    w.write(1, 4.0, png)
    w.write(2, [7.0, 1.0], png)
    w.write(3, 0.0, b"not an image")
    w.write(0, [4.0, 5.0], b"", id2=1)
  source = recordio.RecordIODataSource(str(rec))
  assert len(source) == 3
  item = source[0]
  np.testing.assert_array_equal(item["image"], red_rgb)
  assert item["label"] == 4 and item["label"].dtype == np.int64
  clone = pickle.loads(pickle.dumps(source))  # what grain does to send it to workers
  assert clone[1]["label"] == 7
  with pytest.raises(recordio.RecordIOError, match="record 3: image does not decode"):
    clone[2]
  import grain
  assert grain.MapDataset.source(source)[1]["label"] == 7
