"""MS1MV3 builder: insightface RecordIO in, identity-labelled examples out, bad records counted."""

import random
import struct

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, prepare, recordio

MAGIC = struct.pack("<I", 0xCED7230A)


def jpeg(value, size=16):
  image = np.zeros((size, size, 3), np.uint8)
  image[: size // 2] = value
  return cv2.imencode(".jpg", image)[1].tobytes()


def decoded_rgb(data):
  return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                      cv2.COLOR_BGR2RGB)


def test_recbuilder_layout_with_property_and_bad_records(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  images = {1: (0, jpeg(10)), 2: (0, jpeg(20)), 3: (0, jpeg(30)),
            4: (1, jpeg(40)), 5: (1, jpeg(50)), 6: (1, jpeg(60)),
            7: (1, b"\xff\xd8 not a jpeg"), 8: (-1, jpeg(80)), 9: (2, jpeg(90))}
  with recordio.RecordIOWriter(str(raw / "train.rec"), str(raw / "train.idx")) as w:
    for key, (label, data) in images.items():
      w.write(key, float(label), data)
    w.write(10, [1, 4], b"")   # identity range records
    w.write(11, [4, 10], b"")
    w.write(0, [10, 12], b"", id2=1)  # header last, keyed 0, as RecBuilder writes it
  (raw / "property").write_text("2,112,112\r\n")
  # key 6 points into the middle of a record: a corrupt offset
  index = recordio.read_index(str(raw / "train.idx"))
  lines = [f"{k}\t{o + 4 if k == 6 else o}" for k, o in zip(index.keys, index.offsets)]
  (raw / "train.idx").write_text("\n".join(lines) + "\n")

  report = prepare.prepare("ms1mv3", str(raw), str(tmp_path / "out"))
  skipped = dict(report["train"]["skipped"])
  assert report["train"]["read"] == 5
  assert set(skipped) == {"train.rec#6", "train.rec#7", "train.rec#8", "train.rec#9"}
  assert "no magic word" in skipped["train.rec#6"]
  assert "does not decode" in skipped["train.rec#7"]
  assert "non-negative" in skipped["train.rec#8"]
  assert "property" in skipped["train.rec#9"]

  source = tfds.data_source("ms1mv3", split="train", data_dir=str(tmp_path / "out"))
  got = [source[i] for i in range(len(source))]
  assert [g["name"].decode() for g in got] == [f"train.rec#{k}" for k in (1, 2, 3, 4, 5)]  # key order
  assert [int(g["label"]) for g in got] == [0, 0, 0, 1, 1]
  for g, key in zip(got, (1, 2, 3, 4, 5)):
    np.testing.assert_array_equal(g["image"], decoded_rgb(images[key][1]))
  info = tfds.builder_from_directory(str(tmp_path / "out" / "ms1mv3" / "1.0.0")).info
  assert info.metadata["num_classes"] == 2


def test_face2rec2_layout_split_record_shuffled_crlf_idx(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  # the magic word after the JPEG's end at an aligned payload offset forces a split record;
  # decoders ignore bytes after the end marker, so the image still decodes
  tail = b"\0" * (-(24 + 8 + len(jpeg(5))) % 4) + MAGIC + b"end!"
  images = {1: (0, jpeg(5) + tail), 2: (3, jpeg(15)), 3: (3, jpeg(25))}
  with recordio.RecordIOWriter(str(raw / "train.rec"), str(raw / "train.idx")) as w:
    w.write(0, [4, 6], b"")  # face2rec2 header: id2 = 0
    for key, (identity, data) in images.items():
      w.write(key, [identity, 1.0], data)  # face2rec2 image labels: [identity, 1.0]
  assert (raw / "train.rec").read_bytes().count(MAGIC) == 5  # 4 records + the split point
  lines = (raw / "train.idx").read_text().splitlines()
  random.Random(1).shuffle(lines)
  (raw / "train.idx").write_bytes(("\r\n".join(lines) + "\r\nbroken line").encode())

  report = prepare.prepare("ms1mv3", str(raw), str(tmp_path / "out"))
  assert report["train"]["read"] == 3
  assert [key for key, _ in report["train"]["skipped"]] == [f"train.idx line {len(lines) + 1}"]
  source = tfds.data_source("ms1mv3", split="train", data_dir=str(tmp_path / "out"))
  assert [int(source[i]["label"]) for i in range(3)] == [0, 3, 3]
  np.testing.assert_array_equal(source[0]["image"], decoded_rgb(images[1][1]))
  info = tfds.builder_from_directory(str(tmp_path / "out" / "ms1mv3" / "1.0.0")).info
  assert info.metadata["num_classes"] == 4  # no `property`: largest label + 1


def test_no_header_uses_every_key_and_keys_missing_from_idx_are_counted(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  with recordio.RecordIOWriter(str(raw / "train.rec"), str(raw / "train.idx")) as w:
    w.write(2, 1.0, jpeg(1))
    w.write(0, 0.0, jpeg(2))  # key 0 is an image here
  report = prepare.prepare("ms1mv3", str(raw), str(tmp_path / "out"))
  assert report["train"]["read"] == 2
  source = tfds.data_source("ms1mv3", split="train", data_dir=str(tmp_path / "out"))
  assert [source[i]["name"].decode() for i in range(2)] == ["train.rec#0", "train.rec#2"]

  raw2 = tmp_path / "raw2"
  raw2.mkdir()
  with recordio.RecordIOWriter(str(raw2 / "train.rec"), str(raw2 / "train.idx")) as w:
    w.write(1, 0.0, jpeg(1))
    w.write(0, [3, 3], b"", id2=1)  # names keys 1 and 2; key 2 was never written
  report = prepare.prepare("ms1mv3", str(raw2), str(tmp_path / "out2"))
  assert report["train"]["read"] == 1
  assert report["train"]["skipped"] == [["key 2", "named by the header record but absent from "
                                                   "train.idx"]]


def test_missing_files_and_bad_property_are_clear_errors(tmp_path):
  raw = tmp_path / "raw"
  raw.mkdir()
  (raw / "train.rec").write_bytes(b"")
  with pytest.raises(builder.MissingDataError, match=r"train\.idx"):
    prepare.prepare("ms1mv3", str(raw), str(tmp_path / "out"))
  (raw / "train.idx").write_text("")
  (raw / "property").write_text("ms1m\n")
  with pytest.raises(ValueError, match="num_classes,112,112"):
    prepare.prepare("ms1mv3", str(raw), str(tmp_path / "out"))
