"""Evaluation of a model on configured test splits, with the official protocols (evaluators/).

`config.eval` names the benchmarks: `{name: {task, split, dataset?, config?, evaluator?,
batch_size?, options?}}` (the evaluator defaults to the task type's; the dataset to the task's).
`evaluate(predictor, config, data_dir)` runs each one: the evaluation transform, the jitted
forward, the mapping of dense predictions back to original image coordinates, the evaluator.
With `baselines=True` every benchmark is also scored for a trivial predictor (the mean age, the
majority class, the mean shape, the per-pixel majority class, random embeddings) so a result can
be read against it.
"""

from __future__ import annotations

import logging
import math

import cv2
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipelines import geometry, mixture, transforms
from faceptor_jax import evaluators, sharding, tasks
from faceptor_jax.evaluators import verification as verification_lib
from faceptor_jax.models import heads

log = logging.getLogger(__name__)


class Predictor:
  """Jitted eval-mode forward of one task at a time, on uint8 images, in fixed-size batches.

  Batches are padded to `batch_size` (a multiple of the device count) so one compilation serves
  every batch; with a mesh the batch is split over its devices.
  """

  def __init__(self, model: nnx.Module, batch_size: int = 32, mesh=None):
    self.graphdef, self.state = nnx.split(model)
    self.mesh = mesh
    devices = mesh.size if mesh is not None else 1
    self.batch_size = max(devices, -(-batch_size // devices) * devices)
    self._forward = jax.jit(self._apply, static_argnums=(1,))

  def _apply(self, state, task, images):
    model = nnx.merge(self.graphdef, state)
    x = tasks.normalize(images, tasks.get(task).group)
    out = model({task: x}, train=False)[task]
    out.pop("queries", None)
    if "logits" in out and tasks.get(task).type.name == "parsing":
      out["logits"] = heads.upsample_parsing(out["logits"], images.shape[1:3])
    return out

  def __call__(self, task: str, images: np.ndarray) -> dict:
    """{output: numpy [B, ...]} for uint8 images [B, S, S, 3] of one task."""
    n = len(images)
    outs = []
    for start in range(0, n, self.batch_size):
      chunk = images[start:start + self.batch_size]
      pad = self.batch_size - len(chunk)
      if pad:
        chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], chunk.dtype)])
      if self.mesh is not None:
        chunk = jax.device_put(chunk, sharding.batch_sharding(self.mesh))
      out = jax.device_get(self._forward(self.state, task, jnp.asarray(chunk)))
      outs.append({k: v[:len(chunk) - pad] for k, v in out.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def _batches(source, transform, batch_size):
  """Lists of transformed examples, in order."""
  batch = []
  for i in range(len(source)):
    batch.append(transform(source[i]))
    if len(batch) == batch_size:
      yield batch
      batch = []
  if batch:
    yield batch


def _stack(batch, key):
  return np.stack([e[key] for e in batch])


class _Baseline:
  """Trivial predictions for one benchmark, from its own labels (a first pass over the split)."""

  def __init__(self, kind: str, task: str, source, transform, batch_size: int, seed: int = 0):
    self.kind, self.task = kind, task
    self.rng = np.random.default_rng(seed)
    if kind in ("verification", "ijbc"):
      return
    sums, count = None, 0
    for batch in _batches(source, transform, batch_size):
      if kind == "age":
        value = _stack(batch, "age").astype(np.float64)[:, None]
      elif kind == "expression":
        value = np.eye(tasks.get(task).num_outputs)[_stack(batch, "label").astype(int)]
      elif kind == "attributes":
        value = (_stack(batch, "attributes") == 1).astype(np.float64)
      elif kind == "landmarks":
        value = np.stack([_crop_points(e["landmarks"], e) for e in batch])
      else:  # parsing: class frequencies per crop pixel
        value = np.stack([np.eye(len(tasks.PARSING_CLASSES[task]))[_crop_label(e)]
                          for e in batch])
      sums = value.sum(0) if sums is None else sums + value.sum(0)
      count += len(batch)
    self.mean = sums / max(count, 1)

  def predictions(self, batch, outputs):
    n = len(batch)
    if self.kind == "age":
      logits = np.full((n, 101), -30.0)
      logits[:, int(np.clip(round(float(self.mean[0])), 0, 100))] = 30.0
      return {"logits": logits}
    if self.kind in ("expression", "attributes"):
      target = (np.eye(len(self.mean))[np.argmax(self.mean)] if self.kind == "expression"
                else (self.mean > 0.5).astype(np.float64))
      return {"logits": np.tile(np.where(target > 0, 10.0, -10.0), (n, 1))}
    if self.kind == "landmarks":
      return {"landmarks": np.stack([transforms.landmarks_to_original(self.mean, e)
                                     for e in batch])}
    if self.kind == "parsing":
      return {"label": [np.argmax(transforms.parsing_to_original(self.mean, e,
                                                                 e["label"].shape[:2]), -1)
                        for e in batch]}
    width = next(iter(outputs.values())).shape[-1]
    return {k: self.rng.normal(size=(n, width)) for k in outputs}


def _to_crop(example):
  """(to-crop matrix, warp factor, crop size) of an evaluation example (the inverse of its
  crop -> original `matrix`), for data_pipelines.geometry."""
  return (np.linalg.inv(np.asarray(example["matrix"], np.float64)),
          float(example.get("warp_factor", 0.0)), int(example["image"].shape[0]))


def _crop_points(points, example):
  """Original-image points brought into the crop (through the tanh-warp too), for the baseline."""
  matrix, warp_factor, size = _to_crop(example)
  return geometry.to_crop(np.asarray(points, np.float64), matrix, warp_factor, size)


def _crop_label(example):
  """The original label map brought into the crop (nearest neighbour), for the baseline."""
  matrix, warp_factor, size = _to_crop(example)
  label = np.asarray(example["label"], np.uint8).squeeze()
  return geometry.warp_image(label, matrix, size, warp_factor, cv2.INTER_NEAREST).astype(int)


def run_benchmark(name: str, entry, predictor: Predictor, data_dir: str, image_size: int,
                  baselines: bool = False):
  """(metrics, baseline metrics or None, tables) of one configured benchmark."""
  task = entry.task
  kind = entry.get("evaluator") or tasks.get(task).type.evaluator
  dataset = entry.get("dataset") or ("verification" if kind == "verification" else
                                     "ijbc" if kind == "ijbc" else tasks.get(task).dataset)
  source = mixture.open_source(dataset, entry.split, entry.get("data_dir") or data_dir,
                               entry.get("config") or None)
  options = dict(entry.get("options", {}))
  if kind == "ijbc":
    from data_pipelines import ijbc
    options["pairs"] = ijbc.read_pairs(entry.get("data_dir") or data_dir)
    transform = transforms.IjbcEvalTransform(image_size)
  else:
    transform = transforms.for_task(task, False, image_size, **entry.get("transform", {}))
  evaluator = evaluators.get(kind)(task, **options)
  batch_size = int(entry.get("batch_size", predictor.batch_size))
  baseline = baseline_eval = None
  if baselines:
    baseline = _Baseline(kind, task, source, _pairs_transform(transform, kind), batch_size)
    baseline_eval = evaluators.get(kind)(task, **options)
  for batch in _batches(source, _pairs_transform(transform, kind), batch_size):
    predictions, examples = _predict(kind, task, batch, predictor, image_size)
    evaluator.update(predictions, examples)
    if baseline is not None:
      baseline_eval.update(baseline.predictions(batch, predictions), examples)
  tables = evaluator.tables() if hasattr(evaluator, "tables") else {}
  return evaluator.result(), (baseline_eval.result() if baseline_eval else None), tables


def _pairs_transform(transform, kind):
  """Verification examples hold two images: transform each as an `image`."""
  if kind != "verification":
    return lambda example: transform(example)

  def both(example):
    a = transform({"image": example["image_a"]})["image"]
    b = transform({"image": example["image_b"]})["image"]
    return {"image_a": a, "image_b": b, "same": example["same"],
            "index": example.get("index", 0)}
  return both


def _predict(kind, task, batch, predictor, image_size):
  """(predictions, examples) for one batch, in the evaluator's terms."""
  if kind == "verification":
    emb = {}
    for side in ("a", "b"):
      images = _stack(batch, f"image_{side}")
      plain = predictor(task, images)["embedding"]
      flipped = predictor(task, np.ascontiguousarray(transforms.flip_horizontal(images)))
      emb[f"embedding_{side}"] = verification_lib.fuse_flip(plain, flipped["embedding"])
    return emb, {"same": _stack(batch, "same"), "index": _stack(batch, "index")}
  images = _stack(batch, "image")
  out = predictor(task, images)
  if kind == "ijbc":
    flipped = predictor(task, np.ascontiguousarray(transforms.flip_horizontal(images)))
    fused = verification_lib.fuse_flip(out["embedding"], flipped["embedding"])
    return {"embedding": fused}, {k: _stack(batch, k) for k in ("template", "media", "score")}
  if kind == "landmarks":
    crop_px = out["landmarks"] * image_size - 0.5
    pred = np.stack([transforms.landmarks_to_original(p, e) for p, e in zip(crop_px, batch)])
    examples = {"landmarks": _stack(batch, "landmarks")}
    if "box" in batch[0]:
      examples["box"] = _stack(batch, "box")
    return {"landmarks": pred}, examples
  if kind == "parsing":
    labels = [np.asarray(e["label"]).squeeze() for e in batch]
    pred = [np.argmax(transforms.parsing_to_original(l, e, lab.shape[:2]), -1)
            for l, e, lab in zip(out["logits"], batch, labels)]
    return {"label": pred}, {"label": labels}
  key = {"age": "age", "expression": "label", "attributes": "attributes"}[kind]
  return {"logits": out["logits"]}, {key: _stack(batch, key)}


def evaluate(predictor: Predictor, config, data_dir: str, names=None, baselines: bool = False):
  """{benchmark: {'metrics', 'baseline', 'tables'}} for the configured (or named) benchmarks."""
  results = {}
  for name, entry in config.eval.items():
    if names is not None and name not in names:
      continue
    size = int(config.model.image_size[tasks.get(entry.task).group])
    metrics, baseline, tables = run_benchmark(name, entry, predictor, data_dir, size, baselines)
    results[name] = {"metrics": metrics, "baseline": baseline, "tables": tables}
    log.info("eval %s: %s", name, {k: round(v, 4) for k, v in metrics.items()
                                   if isinstance(v, float) and math.isfinite(v)})
  return results


def format_table(results: dict) -> str:
  """A console table: benchmark, metric, value, trivial baseline."""
  lines = [f"{'benchmark':22s} {'metric':28s} {'model':>10s} {'baseline':>10s}"]
  for name, r in results.items():
    for metric, value in r["metrics"].items():
      if "/" in metric or metric in ("count",):
        continue
      base = r["baseline"].get(metric) if r["baseline"] else None
      lines.append(f"{name:22s} {metric:28s} {value:10.4f} "
                   + (f"{base:10.4f}" if base is not None else f"{'':>10s}"))
  return "\n".join(lines)
