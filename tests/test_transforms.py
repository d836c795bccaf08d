"""data_pipelines.transforms: per-task outputs, seeding, geometry that agrees with pixels."""

import pickle

import cv2
import numpy as np
import PIL.Image
import pytest

from data_pipelines import geometry
from data_pipelines import landmark_flip
from data_pipelines import transforms
from faceptor_jax import tasks

ALL_TASKS = sorted(tasks.TASKS)


def _texture(h, w, seed=0):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([100 + 60 * np.sin(xx / 5.0), 110 + 50 * np.cos(yy / 7.0),
                   90 + 40 * np.sin((xx + yy) / 9.0)], -1)
  return (base + rng.normal(0, 8, base.shape)).clip(0, 255).astype(np.uint8)


def _dot(image, centre, sigma=1.5):
  """The image darkened, with one bright Gaussian dot centred at `centre` (x, y)."""
  ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
  dot = 255 * np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma ** 2))
  return np.maximum(image // 8, np.round(dot)[..., None]).astype(np.uint8)


def _dot_centre(image):
  grey = image.astype(np.float64).mean(-1)
  y, x = np.unravel_index(np.argmax(grey), grey.shape)
  window = grey[y - 4:y + 5, x - 4:x + 5] - np.median(grey)
  window = np.clip(window, 0, None)
  ys, xs = np.mgrid[y - 4:y + 5, x - 4:x + 5]
  return np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()


def _lapa_points(rng, h, w):
  """106 points with a plausible face for the five alignment points."""
  points = rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h], size=(106, 2))
  points[[104, 105, 54, 84, 90]] = np.array([[0.40, 0.42], [0.60, 0.42], [0.50, 0.55],
                                             [0.42, 0.66], [0.58, 0.66]]) * [w, h]
  return points.astype(np.float32)


def _example(task_name, seed=0):
  """A prepared example of the task's dataset, small."""
  rng = np.random.default_rng(seed)
  kind = tasks.get(task_name).type.name
  task = tasks.get(task_name)
  if kind == "align":
    points = rng.uniform(30, 70, size=(task.num_outputs, 2)).astype(np.float32)
    return {"image": _texture(90, 100, seed), "landmarks": points, "name": b"a.jpg",
            "box": np.array([20, 20, 80, 80], np.float32)}
  if kind == "parsing":
    label = rng.integers(0, task.num_outputs, size=(60, 60, 1)).astype(np.uint8)
    example = {"image": _texture(60, 60, seed), "label": label, "name": b"p.jpg"}
    if task_name == "parsing_lapa":
      example["landmarks"] = _lapa_points(rng, 60, 60)
    return example
  target = {"recog": ("label", np.int64(5)), "age": ("age", np.float32(33)),
            "affect": ("label", np.int64(2)),
            "biattr": ("attributes", rng.integers(-1, 2, task.num_outputs))}[kind]
  return {"image": _texture(50, 40, seed), target[0]: target[1], "name": b"f.jpg"}


SIZES = {"small": 32, "large": 48}

TRAIN_KEYS = {"recog": {"image": np.uint8, "label": np.int32},
              "age": {"image": np.uint8, "age": np.float32},
              "affect": {"image": np.uint8, "label": np.int32},
              "biattr": {"image": np.uint8, "attributes": np.int32},
              "align": {"image": np.uint8, "landmarks": np.float32},
              "parsing": {"image": np.uint8, "label": np.uint8}}


@pytest.mark.parametrize("task_name", ALL_TASKS)
def test_training_output_keys_dtypes_and_shapes(task_name):
  task = tasks.get(task_name)
  size = SIZES[task.group]
  out = transforms.for_task(task_name, True, size)(_example(task_name), np.random.default_rng(0))
  expected = TRAIN_KEYS[task.type.name]
  assert set(out) == set(expected)
  for key, dtype in expected.items():
    assert out[key].dtype == dtype, key
  assert out["image"].shape == (size, size, 3) and out["image"].flags.c_contiguous
  if task.type.name == "align":
    assert out["landmarks"].shape == (task.num_outputs, 2)
  if task.type.name == "parsing":
    assert out["label"].shape == (size, size)
  if task.type.name == "biattr":
    assert out["attributes"].shape == (task.num_outputs,)


@pytest.mark.parametrize("task_name", ALL_TASKS)
def test_training_is_seeded_picklable_and_random(task_name):
  size = SIZES[tasks.get(task_name).group]
  transform = pickle.loads(pickle.dumps(transforms.for_task(task_name, True, size)))
  example = _example(task_name)
  outs = [transform(example, np.random.default_rng(seed)) for seed in (11, 11, 12, 13)]
  for key in outs[0]:
    np.testing.assert_array_equal(outs[0][key], outs[1][key])
  assert any(not np.array_equal(outs[0]["image"], o["image"]) for o in outs[2:])


@pytest.mark.parametrize("task_name", ALL_TASKS)
def test_evaluation_is_deterministic_and_keeps_the_originals(task_name):
  task = tasks.get(task_name)
  size = SIZES[task.group]
  example = _example(task_name)
  transform = transforms.for_task(task_name, False, size)
  out = transform(example)
  np.testing.assert_array_equal(out["image"], transform(example)["image"])
  assert out["image"].shape == (size, size, 3) and out["name"] == example["name"]
  if task.group == tasks.LARGE:
    assert out["matrix"].shape == (3, 3) and out["matrix"].dtype == np.float32
    assert out["crop_size"] == size
    assert out["warp_factor"] == (0.8 if task_name == "parsing_lapa" else 0.0)
  if task.type.name == "align":
    np.testing.assert_array_equal(out["landmarks"], example["landmarks"])
    np.testing.assert_array_equal(out["box"], example["box"])
  if task.type.name == "parsing":
    np.testing.assert_array_equal(out["label"], example["label"][..., 0])


@pytest.mark.parametrize("train", [True, False])
def test_align_points_follow_the_pixels(train):
  """A bright dot drawn at a landmark is found in the crop where the crop's landmark says."""
  example = _example("align_cofw")
  point = np.array([47.3, 52.8])
  example["landmarks"][3] = point
  example["image"] = _dot(example["image"], point)
  transform = transforms.for_task("align_cofw", train, 96)
  for seed in range(3):
    crop, crop_points, _ = transform.warp(example, np.random.default_rng(seed))
    np.testing.assert_allclose(_dot_centre(crop), crop_points[3], atol=0.5)


def test_align_landmarks_map_back_to_the_original_image():
  example = _example("align_300w")
  point = np.array([51.6, 44.2])
  example["image"] = _dot(example["image"], point)
  out = transforms.for_task("align_300w", False, 96)(example)
  back = transforms.landmarks_to_original(_dot_centre(out["image"])[None], out)[0]
  np.testing.assert_allclose(back, point, atol=0.5)
  # Batched: [B, K, 2] points with [B, 3, 3] matrices.
  batch = {k: np.stack([out[k], out[k]]) for k in ("matrix", "warp_factor", "crop_size")}
  crop_points = geometry.to_crop(out["landmarks"], np.linalg.inv(out["matrix"]))
  np.testing.assert_allclose(
      transforms.landmarks_to_original(np.stack([crop_points] * 2), batch),
      np.stack([out["landmarks"]] * 2), atol=1e-3)


def test_align_evaluation_zooms_by_mu_about_the_box_centre():
  example = _example("align_300w")
  out = transforms.for_task("align_300w", False, 100)(example)
  to_crop = np.linalg.inv(out["matrix"])
  # The box (60 px) fills 0.8 of the crop, centred.
  corners = geometry.apply_matrix([[20.0, 20.0], [80.0, 80.0]], to_crop)
  np.testing.assert_allclose(corners, [[9.5, 9.5], [89.5, 89.5]], atol=1e-4)
  aflw = transforms.for_task("align_aflw", False, 100)(_example("align_aflw"))
  corners = geometry.apply_matrix([[20.0, 20.0], [80.0, 80.0]], np.linalg.inv(aflw["matrix"]))
  np.testing.assert_allclose(corners, [[-0.5, -0.5], [99.5, 99.5]], atol=1e-4)


def test_align_training_draws_from_the_official_ranges():
  transform = transforms.for_task("align_wflw", True, 100)
  example = _example("align_wflw")
  scales, angles = [], []
  for seed in range(40):
    _, _, m = transform.warp(example, np.random.default_rng(seed))
    linear = m[:2, :2] / (100 / 60)  # remove the crop's own scale
    scales.append(np.sqrt(abs(np.linalg.det(linear))))
    angles.append(np.arctan2(linear[1, 0], linear[0, 0]))
  assert 0.7 - 1e-6 <= min(scales) and max(scales) <= 0.9 + 1e-6 and np.std(scales) > 0.03
  assert max(np.abs(angles)) <= 0.174 + 1e-6 and np.std(angles) > 0.05


def test_align_optional_flip_mirrors_the_landmarks():
  example = _example("align_300w")
  plain = transforms.for_task("align_300w", True, 48)
  flipping = transforms.for_task("align_300w", True, 48, flip=True)
  flipped_seen = 0
  for seed in range(8):
    a = plain(example, np.random.default_rng(seed))["landmarks"]
    b = flipping(example, np.random.default_rng(seed))["landmarks"]
    if np.allclose(a, b):
      continue
    np.testing.assert_allclose(b, landmark_flip.flip_landmarks(a, 48), atol=1e-5)
    flipped_seen += 1
  assert 0 < flipped_seen < 8


@pytest.mark.parametrize("train", [True, False])
def test_lapa_dot_follows_the_tanh_warp_and_maps_back(train):
  example = _example("parsing_lapa")
  example["image"] = _texture(160, 160)
  example["label"] = np.zeros((160, 160, 1), np.uint8)
  example["landmarks"] = _lapa_points(np.random.default_rng(0), 160, 160)
  point = np.array([48.6, 117.3])  # lower left of the face: in the tanh-squeezed band
  example["image"] = _dot(example["image"], point)
  transform = transforms.for_task("parsing_lapa", train, 128)
  crop, _, matrix, _ = transform.warp(example, np.random.default_rng(4))
  expected = geometry.to_crop([point], matrix, 0.8, 128)[0]
  assert np.abs(expected / 128 * 2 - 1).max() > 0.2  # really in the nonlinear band
  found = _dot_centre(crop)
  np.testing.assert_allclose(found, expected, atol=0.5)
  meta = {"matrix": np.linalg.inv(matrix), "warp_factor": 0.8, "crop_size": 128}
  np.testing.assert_allclose(transforms.landmarks_to_original(found[None], meta)[0], point,
                             atol=0.5)


@pytest.mark.parametrize("task_name", ["parsing_celebam", "parsing_lapa"])
def test_parsing_logits_map_back_onto_the_original_label(task_name):
  num_classes = tasks.get(task_name).num_outputs
  example = _example(task_name)
  blocks = np.kron(np.arange(36).reshape(6, 6) % num_classes, np.ones((10, 10)))
  example["label"] = blocks.astype(np.uint8)[..., None]  # 10-px blocks: resolvable at S = 96
  transform = transforms.for_task(task_name, False, 96)
  out = transform(example)
  _, crop_label, _, _ = transform.warp(example)
  logits = np.eye(num_classes, dtype=np.float32)[crop_label]  # a perfect prediction
  back = transforms.parsing_to_original(logits, out, out["label"].shape)
  assert back.shape == (60, 60, num_classes) and back.dtype == np.float32
  inside = back.max(-1) > 0.5  # where the crop covers the original
  agreement = (back.argmax(-1) == out["label"])[inside].mean()
  assert inside[20:40, 20:40].all() and agreement > 0.95


def test_parsing_labels_keep_only_valid_class_ids():
  example = _example("parsing_lapa")
  transform = transforms.for_task("parsing_lapa", True, 48)
  for seed in range(5):
    label = transform(example, np.random.default_rng(seed))["label"]
    assert set(np.unique(label)) <= set(range(11))
  example["label"] = example["label"].copy()
  example["label"][0, 0] = 255
  with pytest.raises(ValueError, match=r"class ids \[255\] outside 0..10"):
    transform(example, np.random.default_rng(0))


def test_celebamask_image_is_first_resized_to_its_label():
  example = _example("parsing_celebam")
  big = cv2.resize(example["image"], (120, 120), interpolation=cv2.INTER_LINEAR)
  out_big = transforms.for_task("parsing_celebam", False, 60)(dict(example, image=big))
  expected = cv2.resize(big, (60, 60), interpolation=cv2.INTER_LINEAR)
  np.testing.assert_array_equal(out_big["image"], expected)
  np.testing.assert_allclose(out_big["matrix"], np.eye(3), atol=1e-6)


def test_attribute_training_crops_timms_square_and_resizes_bicubically():
  tall = _texture(218, 178)
  crop = transforms.timm_square_crop(tall, np.random.default_rng(0))
  np.testing.assert_array_equal(crop, tall[20:198])  # sqrt(218 * 178) > 178: centred fallback
  near_square = _texture(101, 100)
  offsets = {transforms.timm_square_crop(near_square, np.random.default_rng(s)).tobytes()
             for s in range(10)}
  assert len(offsets) == 2  # a 100-px square at row 0 or 1
  transform = transforms.for_task("biattr_celeba", True, 112, magnitude=0, num_ops=0,
                                  erase_prob=0, flip_prob=0)
  out = transform({"image": tall, "attributes": np.zeros(40, np.int64)}, np.random.default_rng(0))
  expected = np.asarray(PIL.Image.fromarray(tall[20:198]).resize((112, 112), PIL.Image.BICUBIC))
  np.testing.assert_array_equal(out["image"], expected)


def test_attribute_evaluation_is_torchvisions_resize_to_a_square():
  example = _example("age_morph2")
  out = transforms.for_task("age_morph2", False, 32)(example)
  expected = PIL.Image.fromarray(example["image"]).resize((32, 32), PIL.Image.BILINEAR)
  np.testing.assert_array_equal(out["image"], np.asarray(expected))
  assert out["age"] == np.float32(33)


def test_affectnet_face_box_is_cropped_first():
  image = _texture(80, 90)
  example = {"image": image, "label": np.int64(1), "box": np.array([10, 5, 50, 45], np.float32)}
  out = transforms.for_task("affect_affectnet", False, 32)(example)
  expected = PIL.Image.fromarray(image[5:45, 10:50]).resize((32, 32), PIL.Image.BILINEAR)
  np.testing.assert_array_equal(out["image"], np.asarray(expected))
  example["box"] = np.array([200, 200, 300, 300], np.float32)
  with pytest.raises(ValueError, match="outside the 90x80 image"):
    transforms.for_task("affect_affectnet", True, 32)(example, np.random.default_rng(0))


def test_recognition_flips_half_the_time_and_has_a_flip_helper():
  example = _example("recog_ms1mv3")
  transform = transforms.for_task("recog_ms1mv3", True, 32)
  resized = transforms.for_task("recog_ms1mv3", False, 32)(example)["image"]
  flips = [np.array_equal(transform(example, np.random.default_rng(s))["image"],
                          transforms.flip_horizontal(resized)) for s in range(100)]
  assert 30 < sum(flips) < 70
  batch = np.stack([resized, resized])
  np.testing.assert_array_equal(transforms.flip_horizontal(batch)[1], resized[:, ::-1])


def test_ijbc_alignment_maps_the_template_back_onto_the_landmarks():
  face_align = pytest.importorskip("data_pipelines.face_align")
  points = np.array([[40, 50], [70, 49], [55, 68], [43, 88], [69, 87]], np.float32) * 1.5
  example = {"image": _texture(180, 160), "landmarks": points, "score": np.float32(0.9)}
  out = transforms.IjbcEvalTransform(112)(example)
  assert out["image"].shape == (112, 112, 3) and out["score"] == np.float32(0.9)
  back = geometry.apply_matrix(face_align.template(112), out["matrix"])
  assert np.abs(back - points).max() < 6  # a least-squares fit of 5 points, not exact


def test_bad_examples_give_clear_errors():
  with pytest.raises(KeyError, match="unknown task"):
    transforms.for_task("align_nothing", True, 32)
  with pytest.raises(ValueError, match=r"expected landmarks \[68, 2\]"):
    transforms.for_task("align_300w", True, 32)(
        dict(_example("align_300w"), landmarks=np.zeros((98, 2), np.float32)),
        np.random.default_rng(0))
  with pytest.raises(KeyError, match="has no 'age'"):
    transforms.for_task("age_utkface", True, 32)({"image": _texture(8, 8)},
                                                 np.random.default_rng(0))
  with pytest.raises(ValueError, match="expected a uint8 image"):
    transforms.for_task("recog_ms1mv3", False, 32)({"image": np.zeros((4, 4, 3), np.float32)})
  grey = transforms.for_task("align_cofw", False, 32)(
      dict(_example("align_cofw"), image=_texture(90, 100)[..., 0]))  # COFW has grey images
  assert grey["image"].shape == (32, 32, 3)
