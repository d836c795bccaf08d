"""Converts a PyTorch checkpoint into a weights folder that training and inference restore.

  python -m faceptor_jax.convert --kind=faceptor \
      --input=checkpoint_rank0_iter_50000.pth.tar --output=weights/faceptor_base
  python -m faceptor_jax.convert --kind=farl \
      --input=FaRL-Base-Patch16-LAIONFace20M-ep64.pth --output=weights/farl_b16
  python -m faceptor_jax.convert --kind=naive --input=naive_iter_50000.pth.tar --output=weights/naive

`faceptor` reads the official stage-1 checkpoints (Base or Full: the tasks are read off the query
keys) and stage-2 ones (the `new_*` layer-attention keys); `naive` the official Naive Faceptor;
`farl` the FaRL CLIP checkpoint, into the encoder alone. Every tensor is checked against the model
built from the inferred config: a missing, unexpected or mis-shaped key stops the conversion with
a list of each. Needs the torch extra (`pip install 'faceptor-jax[torch]'`).
"""

from __future__ import annotations

import re
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("kind", None, ["faceptor", "naive", "farl"], "what the PyTorch file holds")
flags.DEFINE_string("input", None, "the .pth / .pth.tar file")
flags.DEFINE_string("output", None, "the weights folder to write")


def infer_tasks(state: dict) -> list[str]:
  """The task names of an official Faceptor/Naive state dict, in the official config order."""
  from faceptor_jax import tasks
  names = set()
  for key in state:
    if (m := re.search(r"query_feat\.(\w+)\.weight$", key)) or \
       (m := re.search(r"\.fcs\.(\w+)\.weight$", key)) or \
       (m := re.search(r"losses\.(recog_\w+)\.classifier$", key)):
      names.add(m.group(1))
  if any("feature_v2" in k or "heads.recog." in k for k in state):
    names.add("recog_ms1mv3")
  for key in state:  # Naive's dense heads are keyed by type; their tasks come from the config
    if ".heads.parsing." in key:
      names.add("parsing_celebam")
    if ".heads.align." in key:
      names.add("align_300w")
  order = list(tasks.FULL_TASKS) + [t for t in tasks.TASKS if t not in tasks.FULL_TASKS]
  unknown = names - set(tasks.TASKS)
  if unknown:
    raise ValueError(f"checkpoint has unknown tasks {sorted(unknown)}")
  return [t for t in order if t in names]


def convert(kind: str, state: dict) -> tuple[dict, dict]:
  """({path: array}, meta) for a PyTorch state dict of the given kind."""
  from flax import nnx

  from faceptor_jax import models, weights
  from faceptor_jax.convert import official
  from faceptor_jax.models import model_config

  if kind == "farl":
    params = official.farl_encoder_params(state)
    return params, {"variant": "farl_encoder", "tasks": [], "model": model_config.get().to_dict()}
  state = official.strip_prefix(state)
  cfg = model_config.get(kind)
  new_proj = {k.split("new_input_proj.")[1].split(".")[0] for k in state if "new_input_proj." in k}
  if new_proj:
    cfg.decoder.new_levels = (2, 4, 6, 8, 10)[:len(new_proj)]
  task_names = infer_tasks(state)
  with_classifier = any(k.startswith("losses_module.") for k in state)
  model = models.create(cfg, task_names, rngs=nnx.Rngs(0), with_classifier=with_classifier)
  if kind == "faceptor":
    params, unused = official.faceptor_params(state)
  else:
    from faceptor_jax.convert import official_naive
    params, unused = official_naive.naive_params(state)
  weights.assign(model, params, unused=unused)
  return weights.arrays_of(model), {"variant": kind, "tasks": task_names, "model": cfg.to_dict()}


def main(argv):
  del argv
  for flag in ("kind", "input", "output"):
    if not getattr(FLAGS, flag):
      sys.exit(f"--{flag} is required")
  from faceptor_jax import weights
  from faceptor_jax.convert import torch_file
  state = torch_file.load_state_dict(FLAGS.input)
  try:
    params, meta = convert(FLAGS.kind, state)
  except (weights.WeightsError, ValueError) as e:
    sys.exit(f"cannot convert {FLAGS.input}:\n{e}")
  meta["source"] = FLAGS.input
  weights.save(FLAGS.output, params, meta)
  print(f"wrote {len(params)} arrays ({meta['variant']}, tasks: {', '.join(meta['tasks']) or '-'})"
        f" to {FLAGS.output}")


if __name__ == "__main__":
  app.run(main)
