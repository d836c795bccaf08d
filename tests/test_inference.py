"""inference.py: the predictor against plain model calls, the mapping back to photos, the files."""

import json
import os
import subprocess
import sys

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import inference, models, tasks, weights
from faceptor_jax.models import heads, model_config

NAMES = tasks.BASE_TASKS


@pytest.fixture(scope="module")
def tiny():
  cfg = model_config.tiny()
  model = models.create(cfg, NAMES, rngs=nnx.Rngs(3), with_classifier=False)
  return model, cfg


@pytest.fixture(scope="module")
def weights_dir(tiny, tmp_path_factory):
  model, cfg = tiny
  path = str(tmp_path_factory.mktemp("weights"))
  weights.save(path, weights.arrays_of(model),
               {"variant": "faceptor", "tasks": list(NAMES), "model": cfg.to_dict()})
  return path


def face_image(size, seed=0):
  """A smooth random image (so resampling it is well defined)."""
  rng = np.random.default_rng(seed)
  small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  return cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def test_square_crop_at_input_size_equals_plain_model_calls(tiny):
  model, cfg = tiny
  large = cfg.image_size[tasks.LARGE]
  image = face_image((large, large))
  predictor = inference.FacePredictor(model, cfg.image_size, batch_size=2)
  got = predictor([image])[0]
  assert set(got) == set(NAMES)

  x = tasks.normalize(image[None], tasks.LARGE)
  out = model({"align_300w": x, "parsing_celebam": x}, train=False)
  points = np.asarray(out["align_300w"]["landmarks"][0]) * large - 0.5
  np.testing.assert_allclose(got["align_300w"]["landmarks"], points, atol=1e-3)
  logits = heads.upsample_parsing(out["parsing_celebam"]["logits"], (large, large))[0]
  agree = np.mean(got["parsing_celebam"]["label"] == np.argmax(np.asarray(logits), -1))
  assert agree > 0.99  # the warp back is bilinear: ties may flip at a few pixels

  small = cfg.image_size[tasks.SMALL]
  crop = predictor.crop(image, predictor.crop_matrix(image.shape[:2], None, small), small)
  xs = tasks.normalize(crop[None], tasks.SMALL)
  plain = model({"recog_ms1mv3": xs, "age_morph2": xs, "affect_rafdb": xs, "biattr_celeba": xs},
                train=False)
  flipped = model({"recog_ms1mv3": xs[:, :, ::-1]}, train=False)["recog_ms1mv3"]["embedding"]
  embedding = np.asarray(plain["recog_ms1mv3"]["embedding"] + flipped)[0]
  np.testing.assert_allclose(got["recog_ms1mv3"]["embedding"],
                             embedding / np.linalg.norm(embedding), atol=1e-4)
  probs = jax.nn.sigmoid(plain["age_morph2"]["logits"][0])
  age = float(jnp.sum(probs / probs.sum() * jnp.arange(101)))
  assert got["age_morph2"]["age"] == pytest.approx(age, abs=1e-3)
  expression = tasks.EXPRESSION_CLASSES[int(jnp.argmax(plain["affect_rafdb"]["logits"][0]))]
  assert got["affect_rafdb"]["expression"] == expression
  assert sum(got["affect_rafdb"]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
  attrs = jax.nn.sigmoid(plain["biattr_celeba"]["logits"][0]) > 0.5
  assert got["biattr_celeba"]["present"] == [n for n, a in zip(tasks.CELEBA_ATTRIBUTES, attrs)
                                             if a]


def test_a_boxed_face_in_a_photo_maps_back_to_the_photo(tiny):
  model, cfg = tiny
  large = cfg.image_size[tasks.LARGE]
  face = face_image((large, large), seed=1)
  photo = np.full((3 * large, 4 * large, 3), 90, np.uint8)
  ox, oy = 70, 45
  photo[oy:oy + large, ox:ox + large] = face
  predictor = inference.FacePredictor(model, cfg.image_size, batch_size=2)
  alone, boxed = predictor([face, photo], [None, (ox, oy, ox + large, oy + large)])
  np.testing.assert_allclose(boxed["align_300w"]["landmarks"],
                             alone["align_300w"]["landmarks"] + [ox, oy], atol=1e-3)
  label = boxed["parsing_celebam"]["label"]
  assert label.shape == photo.shape[:2] and label.dtype == np.uint8
  inside = label[oy:oy + large, ox:ox + large]
  assert np.mean(inside == alone["parsing_celebam"]["label"]) > 0.99
  assert not label[:oy].any() and not label[:, ox + large + 1:].any()  # background outside
  np.testing.assert_allclose(boxed["recog_ms1mv3"]["embedding"],
                             alone["recog_ms1mv3"]["embedding"], atol=1e-4)


def test_box_is_squared_and_scaled_about_its_centre(tiny):
  model, cfg = tiny
  predictor = inference.FacePredictor(model, cfg.image_size, box_scale=2.0)
  m = predictor.crop_matrix((200, 300), (100, 50, 140, 70), 64)
  # The 40 x 20 box becomes the 80 x 80 square centred on (120, 60): corners (80, 20) and
  # (160, 100), which are (79.5, 19.5) and (159.5, 99.5) in pixel-centre coordinates.
  from data_pipelines import geometry
  corners = geometry.to_original(np.array([[-0.5, -0.5], [63.5, 63.5]]), m)
  np.testing.assert_allclose(corners, [[79.5, 19.5], [159.5, 99.5]], atol=1e-9)


def test_a_large_reduction_is_area_averaged(tiny):
  model, cfg = tiny
  predictor = inference.FacePredictor(model, cfg.image_size)
  photo = face_image((400, 500), seed=2)
  m = predictor.crop_matrix(photo.shape[:2], (100, 50, 292, 242), 64)  # 192 px -> 64 px
  expected = cv2.resize(photo[50:242, 100:292], (64, 64), interpolation=cv2.INTER_AREA)
  np.testing.assert_array_equal(predictor.crop(photo, m, 64), expected)


@pytest.mark.parametrize("box, message", [
    ((10, 10, 5, 20), "x1 > x0"), ((1, 2, 3), "x1 > x0"), ((500, 10, 600, 90), "outside"),
    ((0, 0, float("nan"), 5), "x1 > x0")])
def test_bad_boxes_are_refused_by_reason(tiny, box, message):
  model, cfg = tiny
  predictor = inference.FacePredictor(model, cfg.image_size)
  with pytest.raises(inference.InputError, match=message):
    predictor.crop_matrix((100, 200), box, 64)


def test_tasks_can_be_chosen_and_unknown_ones_are_refused(tiny):
  model, cfg = tiny
  predictor = inference.FacePredictor(model, cfg.image_size, ["age_morph2"])
  assert predictor.groups == {tasks.SMALL: ["age_morph2"]}
  assert set(predictor([face_image((40, 30))])[0]) == {"age_morph2"}
  with pytest.raises(ValueError, match="no task"):
    inference.FacePredictor(model, cfg.image_size, ["align_wflw"])


def test_naive_faceptor_predicts_too():
  cfg = model_config.tiny("naive")
  names = ("age_morph2", "align_300w")
  model = models.create(cfg, names, rngs=nnx.Rngs(0), with_classifier=False)
  got = inference.FacePredictor(model, cfg.image_size)([face_image((50, 50))])[0]
  assert 0 <= got["age_morph2"]["age"] <= 100 and got["align_300w"]["landmarks"].shape == (68, 2)


def test_weights_folder_round_trip(tiny, weights_dir):
  model, cfg = tiny
  restored, restored_cfg, names = inference.model_from_weights(weights_dir)
  assert names == NAMES and dict(restored_cfg.image_size) == dict(cfg.image_size)
  ours, theirs = weights.arrays_of(model), weights.arrays_of(restored)
  assert ours.keys() == theirs.keys()
  assert all(np.array_equal(ours[k], theirs[k]) for k in ours)
  with pytest.raises(ValueError, match="no task"):
    inference.model_from_weights(weights_dir, ["parsing_lapa"])


def test_files_bad_inputs_are_skipped_with_reasons(tiny, tmp_path):
  model, cfg = tiny
  good = str(tmp_path / "face.jpg")
  cv2.imwrite(good, face_image((120, 100)))
  also = str(tmp_path / "photo.png")
  cv2.imwrite(also, face_image((300, 400), seed=4))
  corrupt = str(tmp_path / "corrupt.jpg")
  with open(corrupt, "wb") as f:
    f.write(b"\xff\xd8 not really a jpeg")
  missing = str(tmp_path / "missing.jpg")
  boxes = {"face.jpg": [0, 0, 100, 120], also: [100, 50, 220, 170], "corrupt.jpg": [0, 0, 5, 5]}
  out = str(tmp_path / "out")
  predictor = inference.FacePredictor(model, cfg.image_size, batch_size=2)
  report = inference.predict_files(predictor, [good, corrupt, missing, also], out, boxes,
                                   visualize=True)
  assert [e["file"] for e in report["images"]] == [good, also]
  reasons = {os.path.basename(s["file"]): s["reason"] for s in report["skipped"]}
  assert "corrupt" in reasons["corrupt.jpg"] and "no such file" in reasons["missing.jpg"]
  with open(os.path.join(out, "predictions.json")) as f:
    written = json.load(f)
  assert written == json.loads(json.dumps(report, default=str))
  entry = written["images"][1]
  assert entry["size"] == [300, 400] and entry["box"] == [100, 50, 220, 170]
  assert len(entry["tasks"]["recog_ms1mv3"]["embedding"]) == cfg.embedding_dim
  assert len(entry["tasks"]["align_300w"]["landmarks"]) == 68
  label = cv2.imread(os.path.join(out, entry["tasks"]["parsing_celebam"]["label_map"]),
                     cv2.IMREAD_UNCHANGED)
  assert label.shape == (300, 400) and label.max() < 19
  overlay = cv2.imread(os.path.join(out, entry["overlay"]))
  assert overlay.shape == (300, 400, 3)

  no_box = inference.predict_files(predictor, [good, also], out, {"face.jpg": [0, 0, 9, 9]})
  assert [s["reason"] for s in no_box["skipped"]] == ["no box for it in the boxes file"]


def test_command_writes_predictions_and_fails_when_nothing_was_predicted(weights_dir, tmp_path):
  image = str(tmp_path / "a.png")
  cv2.imwrite(image, face_image((64, 64)))
  corrupt = str(tmp_path / "b.jpg")
  with open(corrupt, "wb") as f:
    f.write(b"nothing")
  out = str(tmp_path / "out")
  cmd = [sys.executable, "-m", "faceptor_jax.inference", f"--weights={weights_dir}",
         f"--output={out}", "--tasks=age_morph2,parsing_celebam"]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  ok = subprocess.run(cmd + [image, corrupt], capture_output=True, text=True, env=env)
  assert ok.returncode == 0, ok.stderr
  with open(os.path.join(out, "predictions.json")) as f:
    report = json.load(f)
  assert set(report["images"][0]["tasks"]) == {"age_morph2", "parsing_celebam"}
  assert len(report["skipped"]) == 1 and os.path.exists(os.path.join(out, "a.parsing_celebam.png"))
  bad = subprocess.run(cmd + [corrupt], capture_output=True, text=True, env=env)
  assert bad.returncode == 1 and "no image could be predicted" in bad.stderr
  encoder_only = str(tmp_path / "farl")
  weights.save(encoder_only, {("encoder", "ln_pre", "scale"): np.ones(4, np.float32)},
               {"variant": "farl_encoder", "tasks": [], "model": {}})
  cmd[3] = f"--weights={encoder_only}"
  refused = subprocess.run(cmd + [image], capture_output=True, text=True, env=env)
  assert refused.returncode == 1 and "without task heads" in refused.stderr
