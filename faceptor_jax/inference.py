"""Every task of a model on your own images: face crops or photos in, decoded predictions out.

  python -m faceptor_jax.inference --weights=weights/faceptor_base --output=out face1.jpg face2.png
  python -m faceptor_jax.inference --weights=weights/faceptor_base --boxes=boxes.json \
      --visualize --output=out photos/*.jpg
  python -m faceptor_jax.inference --config=configs/demo.py --workdir=workdir/demo \
      --output=out faces/*.png                        # a training run's newest checkpoint

The model comes from a weights folder (`python -m faceptor_jax.convert` writes one from the official
checkpoints; its meta.json names the model and tasks) or from a config and its workdir.

Each image is a face crop, resized to each resolution group's input (112 and 512 px), unless
`--boxes` gives its face box (a JSON {file name: [x0, y0, x1, y1]} from your face detector, in
pixel corners: [0, 0, W, H] is the whole image): the box, made square about its centre and
enlarged by `--box_scale`, is cropped and resized instead. The model was trained on crops framed
like its datasets' (SPEC 2.5), so frame your boxes alike. There is no face detector here.

Written to `--output`: `predictions.json` (per image and task, decoded as SPEC 1.6: the expected
age, the expression and its probabilities, attribute probabilities, the L2-normalised embedding
with the flip test, landmarks in original-image pixels, the path of the parsing label map), one
`<image>.<task>.png` label map per parsing task (class indices, the original image's size) and,
with `--visualize`, `<image>.overlay.jpg`. Unreadable images and bad boxes are skipped, logged
and listed in predictions.json under "skipped"; the exit status is 1 if nothing was predicted.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from scipy import special

from data_pipelines import geometry
from faceptor_jax import tasks, weights
from faceptor_jax import visualize as visualize_lib
from faceptor_jax.evaluators import age as age_lib
from faceptor_jax.evaluators import verification
from faceptor_jax.models import heads

log = logging.getLogger(__name__)


class InputError(ValueError):
  """An image or box that cannot be predicted; the message says why."""


# --- the model ------------------------------------------------------------------------------------

def model_from_weights(directory: str, task_names=None):
  """(model, model config, task names) of a weights folder: the model its meta.json describes,
  with all its task heads; the names are `task_names` (checked) or all of them."""
  from faceptor_jax import models
  params, meta = weights.load(directory)
  available = tuple(meta.get("tasks") or ())
  if not available:
    raise ValueError(f"{directory} holds {meta.get('variant', 'a model')} without task heads; "
                     "inference needs a Faceptor or Naive Faceptor weights folder")
  names = _select_tasks(available, task_names)
  cfg = ml_collections.ConfigDict(meta["model"])
  cfg.dtype = "float32"
  model = models.create(cfg, available, rngs=nnx.Rngs(0), with_classifier=False)
  weights.assign(model, params, allow_unexpected=(r"classifiers/.*",))
  return model, cfg, names


def _select_tasks(available, requested):
  if not requested:
    return tuple(available)
  unknown = [t for t in requested if t not in available]
  if unknown:
    raise ValueError(f"the model has no task {unknown}; it has {list(available)}")
  return tuple(requested)


class FacePredictor:
  """Runs the encoder once per resolution group and every requested task's head on it.

  `predictor(images, boxes)` takes RGB uint8 arrays of any size (and optional face boxes) and
  returns one dict per image, in original-image coordinates. The forward pass is jitted per
  group for a fixed batch size (the last batch is padded), so one compilation serves all batches.
  """

  def __init__(self, model: nnx.Module, image_size: dict, task_names=None, *,
               batch_size: int = 8, box_scale: float = 1.0):
    self.graphdef, self.state = nnx.split(model)
    self.task_names = _select_tasks(model.task_names, task_names)
    self.groups = tasks.group_of(self.task_names)
    self.image_size = {g: int(image_size[g]) for g in self.groups}
    self.batch_size = int(batch_size)
    if self.batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not box_scale > 0:
      raise ValueError(f"box_scale must be positive, got {box_scale}")
    self.box_scale = float(box_scale)
    self._forward = jax.jit(self._group_forward, static_argnums=(1,))

  def _group_forward(self, state, group: str, images):
    model = nnx.merge(self.graphdef, state)
    names = self.groups[group]
    n = images.shape[0]
    x = tasks.normalize(images, group)
    with_flip = any(tasks.get(t).type.name == "recog" for t in names)
    if with_flip:  # the verification protocol's flip test: the mirrored images ride along
      x = jnp.concatenate([x, x[:, :, ::-1]], axis=0)
    features = model.encoder(x, train=False, key=None)
    grid = x.shape[1] // model.encoder.patch
    out = {}
    for t in names:
      kind = tasks.get(t).type.name
      feats = features if kind == "recog" else [f[:n] for f in features]
      o = model.head(t, feats, grid, train=False)
      if kind == "recog":
        out[t] = {"embedding": o["embedding"][:n], "flipped": o["embedding"][n:]}
      elif kind == "parsing":
        out[t] = {"logits": heads.upsample_parsing(o["logits"], images.shape[1:3])}
      elif kind == "align":
        out[t] = {"landmarks": o["landmarks"]}
      else:
        out[t] = {"logits": o["logits"]}
    return out

  def crop_matrix(self, image_hw, box, size: int) -> np.ndarray:
    """The to-crop matrix of one image for an S x S input: the whole image resized, or the box
    made square about its centre and scaled by box_scale."""
    h, w = image_hw
    if box is None:
      return geometry.resize_matrix((h, w), (size, size))
    box = np.asarray(box, np.float64)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
      raise InputError(f"face box {box.tolist()} is not [x0, y0, x1, y1] with x1 > x0, y1 > y0")
    if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
      raise InputError(f"face box {box.tolist()} lies outside the {w} x {h} image")
    # Boxes are in pixel-corner coordinates ([0, 0, W, H] is the whole image); the geometry
    # module's points are pixel centres, half a pixel less.
    cx, cy = (box[0] + box[2]) / 2 - 0.5, (box[1] + box[3]) / 2 - 0.5
    half = max(box[2] - box[0], box[3] - box[1]) * self.box_scale / 2
    return geometry.crop_resize_matrix((cx - half, cy - half, cx + half, cy + half), size)

  @staticmethod
  def crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The S x S input under a to-crop matrix. A large reduction is cut out at about its own
    scale first and then area-averaged, so it does not alias."""
    shrink = 1.0 / np.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    if shrink <= 2:
      return geometry.warp_image(image, matrix, size)
    side = int(np.ceil(size * shrink))
    # to-crop matrix of the side x side cut: the S x S one scaled up (align_corners=False).
    to_side = geometry.resize_matrix((size, size), (side, side)) @ matrix
    cut = geometry.warp_image(image, to_side, side)
    return cv2.resize(cut, (size, size), interpolation=cv2.INTER_AREA)

  def __call__(self, images, boxes=None) -> list[dict]:
    """One {task: decoded prediction} per image (RGB uint8 [H, W, 3]); `boxes` per image or None."""
    boxes = [None] * len(images) if boxes is None else list(boxes)
    if len(boxes) != len(images):
      raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
    matrices = [{g: self.crop_matrix(im.shape[:2], b, s) for g, s in self.image_size.items()}
                for im, b in zip(images, boxes)]
    results = [dict() for _ in images]
    for group, size in self.image_size.items():
      for start in range(0, len(images), self.batch_size):
        idx = range(start, min(start + self.batch_size, len(images)))
        crops = np.zeros((self.batch_size, size, size, 3), np.uint8)
        for row, i in enumerate(idx):
          crops[row] = self.crop(images[i], matrices[i][group], size)
        out = jax.device_get(self._forward(self.state, group, jnp.asarray(crops)))
        for row, i in enumerate(idx):
          for t, o in out.items():
            results[i][t] = decode(t, {k: v[row] for k, v in o.items()}, matrices[i][group],
                                   images[i].shape[:2], size)
    return results


# --- decoding (SPEC 1.6) -------------------------------------------------------------------------

def decode(task: str, out: dict, to_crop: np.ndarray, original_hw, size: int) -> dict:
  """One image's raw outputs of one task -> what it means, in original-image coordinates."""
  kind = tasks.get(task).type.name
  if kind == "recog":
    fused = verification.fuse_flip(out["embedding"][None], out["flipped"][None])
    return {"embedding": verification.l2_normalize(fused)[0].astype(np.float32)}
  if kind == "age":
    return {"age": float(age_lib.expected_age(out["logits"][None])[0])}
  if kind == "affect":
    probs = special.softmax(np.asarray(out["logits"], np.float64))
    return {"expression": tasks.EXPRESSION_CLASSES[int(np.argmax(probs))],
            "probabilities": dict(zip(tasks.EXPRESSION_CLASSES, probs.round(4).tolist()))}
  if kind == "biattr":
    probs = special.expit(np.asarray(out["logits"], np.float64))
    names = tasks.attribute_names(task)
    return {"present": [n for n, p in zip(names, probs) if p > 0.5],
            "probabilities": dict(zip(names, probs.round(4).tolist()))}
  if kind == "align":
    points = np.asarray(out["landmarks"], np.float64) * size - 0.5
    return {"landmarks": geometry.to_original(points, to_crop)}
  return {"label": _parsing_label(out["logits"], to_crop, original_hw)}


def _parsing_label(logits, to_crop, original_hw) -> np.ndarray:
  """argmax of the logits warped back onto the original image (0, background, outside the crop).

  Only the crop's bounding rectangle is warped, so a large photo does not need a full-size
  [H, W, classes] array."""
  h, w = original_hw
  s = logits.shape[0]
  corners = geometry.to_original(np.array([[-0.5, -0.5], [s - 0.5, s - 0.5]]), to_crop)
  x0, y0 = np.clip(np.floor(corners.min(0)).astype(int), 0, [w, h])
  x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int), 0, [w, h])
  label = np.zeros((h, w), np.uint8)
  if x1 <= x0 or y1 <= y0:
    return label
  shift = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])  # region pixel -> original pixel
  region = geometry.warp_to_original(np.asarray(logits, np.float32), to_crop @ shift,
                                     (y1 - y0, x1 - x0))
  label[y0:y1, x0:x1] = np.argmax(region, axis=-1)
  return label


# --- files ----------------------------------------------------------------------------------------

def read_image(path: str) -> np.ndarray:
  """RGB uint8 [H, W, 3] of an image file, or an InputError that says why not."""
  if not os.path.isfile(path):
    raise InputError("no such file")
  image = cv2.imread(path, cv2.IMREAD_COLOR)
  if image is None:
    raise InputError("not a readable image (corrupt or an unsupported format)")
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_boxes(path: str) -> dict:
  """{file name: [x0, y0, x1, y1]} of a boxes JSON."""
  with open(path) as f:
    boxes = json.load(f)
  if not isinstance(boxes, dict):
    raise ValueError(f"{path} must hold a JSON object {{file name: [x0, y0, x1, y1]}}")
  return boxes


def _box_for(path: str, boxes: dict | None):
  if boxes is None:
    return None
  for key in (path, os.path.basename(path)):
    if key in boxes:
      return boxes[key]
  raise InputError("no box for it in the boxes file")


def _jsonable(prediction: dict, files: dict) -> dict:
  out = {}
  for t, p in prediction.items():
    if "label" in p:
      out[t] = {"label_map": files[t], "classes": list(tasks.PARSING_CLASSES.get(t, ()))}
    elif "landmarks" in p:
      out[t] = {"landmarks": np.round(p["landmarks"], 2).tolist()}
    elif "embedding" in p:
      out[t] = {"embedding": np.round(p["embedding"], 6).tolist()}
    else:
      out[t] = p
  return out


def predict_files(predictor: FacePredictor, paths, output: str, boxes: dict | None = None,
                  visualize: bool = False) -> dict:
  """Predicts every image file, writes the outputs to `output` and returns the JSON written."""
  os.makedirs(output, exist_ok=True)
  report = {"tasks": list(predictor.task_names), "box_scale": predictor.box_scale,
            "images": [], "skipped": []}
  stems = {}
  for start in range(0, len(paths), predictor.batch_size):
    batch = []
    for path in paths[start:start + predictor.batch_size]:
      try:
        image, box = read_image(path), _box_for(path, boxes)
        for size in predictor.image_size.values():
          predictor.crop_matrix(image.shape[:2], box, size)
      except InputError as e:
        log.warning("skipped %s: %s", path, e)
        report["skipped"].append({"file": path, "reason": str(e)})
        continue
      batch.append((path, image, box))
    if not batch:
      continue
    predictions = predictor([b[1] for b in batch], [b[2] for b in batch])
    for (path, image, box), prediction in zip(batch, predictions):
      stem = os.path.splitext(os.path.basename(path))[0]
      stems[stem] = stems.get(stem, -1) + 1  # same names from different folders stay apart
      stem = stem if not stems[stem] else f"{stem}_{stems[stem]}"
      files = {}
      for t, p in prediction.items():
        if "label" in p:
          files[t] = f"{stem}.{t}.png"
          cv2.imwrite(os.path.join(output, files[t]), p["label"])
      entry = {"file": path, "size": list(image.shape[:2]),
               "box": None if box is None else [float(v) for v in box],
               "tasks": _jsonable(prediction, files)}
      if visualize:
        entry["overlay"] = f"{stem}.overlay.jpg"
        overlay = visualize_lib.overlay(image, prediction, box)
        cv2.imwrite(os.path.join(output, entry["overlay"]),
                    cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
      report["images"].append(entry)
  with open(os.path.join(output, "predictions.json"), "w") as f:
    json.dump(report, f, indent=1)
  log.info("predicted %d images, skipped %d; wrote %s", len(report["images"]),
           len(report["skipped"]), output)
  return report


# --- the command ----------------------------------------------------------------------------------

def _define_flags():
  from absl import flags
  from ml_collections import config_flags
  flags.DEFINE_string("weights", None, "a weights folder (python -m faceptor_jax.convert)")
  config_flags.DEFINE_config_file("config", None, "with --workdir: a training config")
  flags.DEFINE_string("workdir", None, "with --config: the run whose newest checkpoint to use")
  flags.DEFINE_string("output", "predictions", "folder for predictions.json and the maps")
  flags.DEFINE_string("boxes", None, "JSON {file name: [x0, y0, x1, y1]}: the images are photos")
  flags.DEFINE_float("box_scale", 1.0, "enlargement of the squared face box about its centre")
  flags.DEFINE_list("tasks", [], "only these tasks (default: every task of the model)")
  flags.DEFINE_integer("batch_size", 8, "images per forward pass")
  flags.DEFINE_bool("visualize", False, "also write <image>.overlay.jpg")
  return flags.FLAGS


def main(argv, flags):
  paths = argv[1:]
  if not paths:
    sys.exit("give the image files to predict after the flags")
  logging.getLogger().setLevel(logging.INFO)
  for noisy in ("absl", "orbax"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  if bool(flags.weights) == bool(flags.config):
    sys.exit("give either --weights=<weights folder> or --config=<config> --workdir=<run>")
  if flags.config and not flags.workdir:
    sys.exit("--config needs the --workdir of the run to restore")
  try:
    if flags.weights:
      model, cfg, names = model_from_weights(flags.weights, flags.tasks)
      image_size = dict(cfg.image_size)
    else:
      from faceptor_jax import train
      model = train.restore_model(flags.config, flags.workdir)
      names = _select_tasks(model.task_names, flags.tasks)
      image_size = dict(flags.config.model.image_size)
    boxes = read_boxes(flags.boxes) if flags.boxes else None
    predictor = FacePredictor(model, image_size, names, batch_size=flags.batch_size,
                              box_scale=flags.box_scale)
  except (OSError, ValueError) as e:  # a missing folder, bad weights, boxes or flags
    sys.exit(f"cannot predict: {e}")
  report = predict_files(predictor, paths, flags.output, boxes, flags.visualize)
  if not report["images"]:
    sys.exit(f"no image could be predicted ({len(report['skipped'])} skipped)")


def run():
  """Console-script entry (`faceptor-predict`). The flags are defined here, not on import, so
  that importing the Predictor does not clash with main.py's flags."""
  from absl import app
  flags = _define_flags()
  app.run(lambda argv: main(argv, flags))


if __name__ == "__main__":
  run()
