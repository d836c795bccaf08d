"""IJB-C builder: meta parsing (landmarks, faceness, template/media join, pairs), bad lines and
images counted, both configs built by one prepare."""

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import builder, ijbc, prepare


def write_ijbc(root):
  (root / "loose_crop").mkdir(parents=True)
  (root / "meta").mkdir()
  for n, (h, w) in enumerate([(40, 32), (24, 24), (30, 20), (16, 28)], 1):
    cv2.imwrite(str(root / "loose_crop" / f"{n}.jpg"), np.full((h, w, 3), 40 * n, np.uint8))
  (root / "loose_crop" / "5.jpg").write_bytes(b"\xff\xd8 broken")
  (root / "meta" / "ijbc_name_5pts_score.txt").write_bytes((
      "1.jpg 10.5 12.25 20.0 12.0 15.0 18.5 11.0 24.0 19.5 24.5 0.9990\r\n"
      "2.jpg  8 9 16 9 12 13 9 17 15 17   0.5 \r\n"        # padded columns, trailing space
      "3.jpg 1 2 3 4 5 6 7 8 9\r\n"                        # too few fields
      "4.jpg 1 2 3 4 5 6 7 8 9 10 nan\r\n"                 # non-finite score
      "5.jpg 1 2 3 4 5 6 7 8 9 10 0.7\r\n"                 # corrupt image
      "6.jpg 1 2 3 4 5 6 7 8 9 10 0.8\r\n"                 # no image file, no template line
      "7.jpg 1 2 3 4 5 6 7 8 9 10 0.8").encode())          # no final newline; no template line
  (root / "meta" / "ijbc_face_tid_mid.txt").write_text(
      "1.jpg 1 69544\n2.jpg 11065 69545\n3.jpg 1 1\n4.jpg 2 2\n5.jpg 3 3\n"
      "8.jpg 4 4\n"            # listed here but without landmarks
      "2.jpg 11065 99\n"       # listed again with other ids
      "bad line\n")
  (root / "meta" / "ijbc_template_pair_label.txt").write_text(
      "1 11065 0\n1 1 1\n11065 2 0\n2 3 2\n3 4\n4 1 1\n5 6 0")


def test_images_and_pairs(tmp_path, monkeypatch):
  monkeypatch.setattr(ijbc, "PAIRS_PER_EXAMPLE", 2)  # blocks of 2 lines: several examples
  write_ijbc(tmp_path / "IJBC")
  out = str(tmp_path / "out")
  report = prepare.prepare("ijbc", str(tmp_path / "IJBC"), out)

  assert report["images"]["read"] == 2
  skipped = dict(report["images"]["skipped"])
  assert set(skipped) == {"ijbc_name_5pts_score.txt line 3", "ijbc_name_5pts_score.txt line 4",
                          "5.jpg", "6.jpg", "7.jpg", "8.jpg", "ijbc_face_tid_mid.txt line 7",
                          "ijbc_face_tid_mid.txt line 8"}
  assert "does not decode" in skipped["5.jpg"] and "without a line" in skipped["8.jpg"]
  assert "no line in ijbc_face_tid_mid.txt" in skipped["6.jpg"]

  images = tfds.data_source("ijbc/images", split="images", data_dir=out)
  got = {images[i]["name"].decode(): images[i] for i in range(len(images))}
  first = got["1.jpg"]
  assert first["image"].shape == (40, 32, 3)
  np.testing.assert_allclose(first["landmarks"], [[10.5, 12.25], [20, 12], [15, 18.5],
                                                  [11, 24], [19.5, 24.5]])
  assert first["landmarks"].dtype == np.float32
  assert first["score"] == pytest.approx(0.999) and first["template"] == 1
  assert first["media"] == 69544
  assert got["2.jpg"]["template"] == 11065 and got["2.jpg"]["media"] == 69545  # first line kept
  assert got["2.jpg"]["score"] == pytest.approx(0.5)
  # the default config is `images`
  assert len(tfds.data_source("ijbc", split="images", data_dir=out)) == 2

  assert report["pairs"]["read"] == 5  # pairs, though stored in 3 blocks of up to 2
  assert len(tfds.data_source("ijbc/pairs", split="pairs", data_dir=out)) == 3
  assert [k for k, _ in report["pairs"]["skipped"]] == ["ijbc_template_pair_label.txt line 4",
                                                        "ijbc_template_pair_label.txt line 5"]
  pairs = ijbc.read_pairs(out)
  assert pairs["template_a"].tolist() == [1, 1, 11065, 4, 5]
  assert pairs["template_b"].tolist() == [11065, 1, 2, 1, 6]
  assert pairs["label"].tolist() == [0, 1, 0, 1, 0]
  assert pairs["label"].dtype == np.int64


@pytest.mark.parametrize("absent", ["loose_crop", "meta/ijbc_template_pair_label.txt"])
def test_missing_parts_are_named(tmp_path, absent):
  write_ijbc(tmp_path / "IJBC")
  path = tmp_path / "IJBC" / absent
  if path.is_dir():
    for f in path.iterdir():
      f.unlink()
    path.rmdir()
  else:
    path.unlink()
  with pytest.raises(builder.MissingDataError, match=absent):
    prepare.prepare("ijbc", str(tmp_path / "IJBC"), str(tmp_path / "out"))
  assert not (tmp_path / "out" / "ijbc" / "images" / "1.0.0").exists()
