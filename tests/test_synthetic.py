"""The synthetic raw datasets: every writer's folder is read by the real builder with no skip,
the right counts and the labels the faces were drawn with; determinism; the command."""

import glob
import importlib.util
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import prepare, synthetic
from faceptor_jax import tasks

# per split; 3 where the corner cases need a third item (a .pts without final newline, a UTKFace
# name without race), 4 for a WFLW image with two faces; the rest 2
COUNTS = {"ms1mv3": 5, "morph2": 5, "lfw73": 5, "ijbc": 6, "ibug300w": 3, "utkface": 3,
          "wflw": 4}


def close(atol):
  return lambda read, truth: np.allclose(read, truth, atol=atol)


def equal(read, truth):
  return np.array_equal(np.asarray(read), np.asarray(truth))


# dataset -> (TFDS name, what to compare: feature -> truth item -> comparison)
CHECKS = {
    "ibug300w": ("ibug300w", {"landmarks": (lambda t: t, close(2e-3))}),
    "cofw": ("cofw", {"landmarks": (lambda t: t, close(1e-3))}),
    "aflw19": ("aflw19", {"landmarks": (lambda t: t[0], close(1e-3)),
                          "visible": (lambda t: t[1], equal)}),
    "celebamask_hq": ("celebamask_hq", {"label": (lambda t: t[..., None], equal)}),
    "lapa": ("lapa", {"label": (lambda t: t[0][..., None], equal),
                      "landmarks": (lambda t: t[1], close(2e-3))}),
    "morph2": ("morph2", {"age": (lambda t: t, equal)}),
    "utkface": ("utkface", {"age": (lambda t: t, equal)}),
    "affectnet": ("affectnet", {"label": (lambda t: t, equal)}),
    "rafdb": ("rafdb", {"label": (lambda t: t, equal)}),
    "ferplus": ("ferplus", {"label": (lambda t: t, equal)}),
    "celeba": ("celeba", {"attributes": (lambda t: t, equal)}),
    "lfw73": ("lfw73", {"attributes": (lambda t: t, equal)}),
    "ms1mv3": ("ms1mv3", {"label": (lambda t: t, equal)}),
    "verification": ("verification", {"same": (lambda t: t, equal)}),
    "ijbc": ("ijbc/images", {"template": (lambda t: t[0], equal),
                             "media": (lambda t: t[1], equal)}),
}
POOLED = ("morph2", "lfw73")  # one raw pool that the builder splits itself


def builder_missing(name):
  return importlib.util.find_spec(f"data_pipelines.{prepare.DATASETS[name]}") is None


def read_back(tfds_name, data_dir, split):
  source = tfds.data_source(tfds_name, data_dir=str(data_dir), split=split)
  return [source[i] for i in range(len(source))]


def name_of(example):
  return example["name"].decode() if isinstance(example["name"], bytes) else example["name"]


@pytest.mark.parametrize("name", sorted(synthetic.WRITERS))
def test_builder_reads_the_synthetic_folder(name, tmp_path, monkeypatch):
  if builder_missing(name):
    pytest.skip(f"data_pipelines/{prepare.DATASETS[name]}.py does not exist yet")
  truth = {}
  raw = synthetic.write_dataset(name, str(tmp_path / "raw"), COUNTS.get(name, 2), seed=1,
                                truth=truth)
  assert raw == str(tmp_path / "raw" / name)
  # The official AFLW-19 split trains on the first 20,000 faces of `ra`; the writer puts its
  # train faces first.
  options = {"train_size": COUNTS.get(name, 2)} if name == "aflw19" else None
  report = prepare.prepare(name, raw, str(tmp_path / "prepared"), options=options)
  assert not [s for r in report.values() for s in r["skipped"]], report
  if name == "wflw":
    return check_wflw(report, truth, tmp_path / "prepared")
  tfds_name, features = CHECKS[name]
  splits = {s: r["read"] for s, r in report.items() if r["read"] and s != "pairs"}
  if name in POOLED:
    assert sum(splits.values()) == len(truth["all"]) and len(splits) == 2
    expected = {s: truth["all"] for s in splits}
  else:
    expected = {s: truth[s] for s in truth if s != "pairs"}
    assert splits == {s: len(t) for s, t in expected.items()}, (splits, expected)
  for split in splits:
    examples = read_back(tfds_name, tmp_path / "prepared", split)
    assert len(examples) == splits[split]
    for example in examples:
      item = expected[split][name_of(example)]
      for feature, (pick, same) in features.items():
        assert same(example[feature], pick(item)), (split, name_of(example), feature)
  if name == "ijbc":
    from data_pipelines import ijbc
    pairs = ijbc.read_pairs(str(tmp_path / "prepared"))
    got = list(zip(*(pairs[k].tolist() for k in ("template_a", "template_b", "label"))))
    assert got == [tuple(p) for p in truth["pairs"]] and {p[2] for p in got} == {0, 1}
  if name == "ferplus":  # the rows its majority rule drops are filtered, not errors
    assert all(sum(r["filtered"].values()) == 5 for r in report.values())
    builder = prepare.builder_class(name)(config="8cls", data_dir=str(tmp_path / "prepared"),
                                          file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=raw))
    for split, count in splits.items():  # 8cls keeps the contempt row, as label 7
      labels = [int(e["label"]) for e in read_back("ferplus/8cls", tmp_path / "prepared", split)]
      assert len(labels) == count + 1 and labels.count(7) == 1
  if name == "affectnet":  # Contempt is filtered
    assert all(r["filtered"] for r in report.values())


def check_wflw(report, truth, data_dir):
  """WFLW: an image holds one or two faces; every split (the six subsets too) has its faces."""
  for split, faces in truth.items():
    assert report[split]["read"] == len(faces), split
    examples = read_back("wflw", data_dir, split)
    got = sorted((name_of(e), tuple(np.round(e["landmarks"].reshape(-1), 3))) for e in examples)
    want = sorted((n, tuple(np.round(p.reshape(-1), 3))) for n, p in faces)
    assert got == want, split
  assert set(truth) == {"train", "test", "test_largepose", "test_expression", "test_illumination",
                        "test_makeup", "test_occlusion", "test_blur"}
  assert len({n for n, _ in truth["train"]}) < len(truth["train"])  # an image with two faces


def test_corner_cases_are_written(tmp_path):
  """The quirks of DATASETS.md 19 that the builders must survive are in the synthetic files."""
  root = str(tmp_path)
  ibug = synthetic.write_dataset("ibug300w", root, 3)
  assert os.path.isfile(os.path.join(ibug, "ibug", "image_092 _01.jpg"))  # a space in a name
  pts = [open(p, "rb").read() for p in glob.glob(os.path.join(ibug, "*", "*", "*.pts"))
         + glob.glob(os.path.join(ibug, "*", "*.pts"))]
  assert any(not p.endswith(b"\n") for p in pts) and any(p.endswith(b"}\n") for p in pts)
  import cv2
  images = glob.glob(os.path.join(ibug, "**", "*.[jp][pn]g"), recursive=True)
  assert any(cv2.imread(p, cv2.IMREAD_UNCHANGED).ndim == 2 for p in images)  # greyscale files
  utk = synthetic.write_dataset("utkface", root, 3)
  rows = open(os.path.join(utk, "UTK_train_coral.csv"), "rb").read()
  assert rows.startswith(b",filename,age,database\r\n")  # header, CRLF
  names = [r.split(b",")[1] for r in rows.split(b"\r\n")[1:] if r]
  assert any(n.count(b"_") == 2 for n in names)  # a name without the race field
  assert len(os.listdir(os.path.join(utk, "UTKFace"))) > len(names) + 3  # unlisted ages too
  import h5py
  cofw = synthetic.write_dataset("cofw", root, 2)
  with h5py.File(os.path.join(cofw, "COFW_train_color.mat"), "r") as f:
    assert f["phisTr"].shape == (87, 2)  # MATLAB's column order
    assert {f[ref].ndim for ref in f["IsTr"][()].reshape(-1)} == {2, 3}  # a grey image
  celeba = synthetic.write_dataset("celeba", root, 1)
  lines = open(os.path.join(celeba, "Anno", "list_attr_celeba.txt")).read().splitlines()
  assert lines[0] == "3" and lines[1].split() == list(tasks.CELEBA_ATTRIBUTES)
  assert "  " in lines[2]  # padded columns


def files_of(folder):
  return {os.path.relpath(p, folder): p for p in glob.glob(os.path.join(folder, "**"),
                                                            recursive=True) if os.path.isfile(p)}


def test_same_seed_same_files(tmp_path):
  names = ["rafdb", "celebamask_hq", "ms1mv3", "verification", "utkface", "aflw19"]
  a = synthetic.write_all(str(tmp_path / "a"), 2, seed=3, datasets=names)
  b = synthetic.write_all(str(tmp_path / "b"), 2, seed=3, datasets=names)
  c = synthetic.write_all(str(tmp_path / "c"), 2, seed=4, datasets=["rafdb"])
  for name in names:
    files_a, files_b = files_of(a[name]), files_of(b[name])
    assert files_a.keys() == files_b.keys() and files_a
    for relative, path in files_a.items():
      if not relative.endswith(".mat"):  # MATLAB headers hold a creation time
        assert open(path, "rb").read() == open(files_b[relative], "rb").read(), relative
  rafdb = files_of(a["rafdb"])
  assert any(open(p, "rb").read() != open(files_of(c["rafdb"])[r], "rb").read()
             for r, p in rafdb.items())


def test_counts_per_split_and_sizes(tmp_path):
  truth = {}
  folder = synthetic.write_dataset("lapa", str(tmp_path), {"train": 3, "test": 1}, seed=0,
                                   image_size=64, truth=truth)
  assert {s: len(t) for s, t in truth.items()} == {"train": 3, "test": 1}
  labels = glob.glob(os.path.join(folder, "train", "labels", "*.png"))
  assert len(labels) == 3
  with pytest.raises(ValueError, match="unknown splits"):
    synthetic.write_dataset("lapa", str(tmp_path), {"training": 3})
  with pytest.raises(KeyError, match="no synthetic writer"):
    synthetic.write_dataset("imagenet", str(tmp_path))
  with pytest.raises(FileExistsError, match="not empty"):  # no stale files mixed in
    synthetic.write_dataset("lapa", str(tmp_path), 1)
  synthetic.write_dataset("lapa", str(tmp_path), 1, overwrite=True)
  assert len(glob.glob(os.path.join(folder, "train", "labels", "*.png"))) == 1


def test_verification_bins_are_python2_pickles(tmp_path):
  folder = synthetic.write_dataset("verification", str(tmp_path), {"lfw": 4, "cfp_fp": 0,
                                                                   "agedb_30": 0})
  data = open(os.path.join(folder, "lfw.bin"), "rb").read()
  with pytest.raises(UnicodeDecodeError):  # as with the real files: str items, not bytes
    pickle.loads(data)
  items, same = pickle.loads(data, encoding="bytes")
  assert len(items) == 8 and all(isinstance(i, bytes) and i[:2] == b"\xff\xd8" for i in items)
  assert same == [True, False, True, False]
  big = synthetic.pickle_like_python2([b"\x00" * 300, b"\xff" * 3] * 700, [True] * 700)  # long items,
  assert pickle.loads(big, encoding="bytes") == ([b"\x00" * 300, b"\xff" * 3] * 700,  # 1000+
                                                 [True] * 700)


def test_command(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "data_pipelines.synthetic", f"--out={tmp_path}",
       "--datasets=rafdb,morph2", "--num=1"], capture_output=True, text=True,
      cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=120)
  assert result.returncode == 0, result.stderr
  assert os.path.isfile(tmp_path / "rafdb" / "basic" / "EmoLabel" / "list_patition_label.txt")
  assert len(glob.glob(str(tmp_path / "morph2" / "*.JPG"))) == 1
