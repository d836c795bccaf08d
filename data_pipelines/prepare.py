"""Prepares one dataset: reads its raw distribution, writes ArrayRecord shards for grain.

  python -m data_pipelines.prepare --dataset=rafdb --manual_dir=/data/raw/RAF-DB \
      --data_dir=/data/tfds

prints what was read and what was skipped per split, and writes `skipped.json` beside the shards.
`--dataset=list` lists the datasets with their expected layouts.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from absl import app, flags

# dataset name -> module under data_pipelines that defines `Builder`. A dict, not a registry:
# importing every builder (and its dependencies) up front would slow every command down.
DATASETS = {
    # landmarks
    "ibug300w": "ibug300w", "wflw": "wflw", "cofw": "cofw", "aflw19": "aflw19",
    # parsing
    "celebamask_hq": "celebamask_hq", "lapa": "lapa",
    # age
    "morph2": "morph2", "utkface": "utkface",
    # expression
    "affectnet": "affectnet", "rafdb": "rafdb", "ferplus": "ferplus",
    # attributes
    "celeba": "celeba", "lfw73": "lfw73",
    # identity
    "ms1mv3": "ms1mv3", "verification": "verification", "ijbc": "ijbc",
}

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", None, "dataset name (see --dataset=list)")
flags.DEFINE_string("manual_dir", None, "folder holding the raw dataset as distributed")
flags.DEFINE_string("data_dir", None, "output folder of the prepared datasets")
flags.DEFINE_bool("validate_images", True, "decode every image once and skip the corrupt ones")
flags.DEFINE_list("options", [], "protocol options a dataset documents, key=value (e.g. "
                  "aflw19's train_size=20000)")


def builder_class(name: str):
  """The Builder class of dataset `name` (`name/config` names a config), or a KeyError that
  lists the known names."""
  name = name.split("/")[0]
  if name not in DATASETS:
    raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
  return importlib.import_module(f"data_pipelines.{DATASETS[name]}").Builder


def prepare(name: str, manual_dir: str, data_dir: str, validate_images: bool = True,
            options: dict | None = None) -> dict:
  """Builds dataset `name`; returns its skip report {split: {read, skipped}}."""
  import tensorflow_datasets as tfds  # lazy: `--dataset=list` stays fast
  from data_pipelines import builder as builder_lib
  cls = builder_class(name)
  if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
    raise builder_lib.MissingDataError(name, manual_dir, cls.LAYOUT)
  config = name.split("/")[1] if "/" in name else None
  builder = cls(data_dir=data_dir, file_format="array_record", validate_images=validate_images,
                options=options, **({"config": config} if config else {}))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  if builder.read_counts or builder.skipped:  # empty when the dataset was already prepared
    builder.write_skip_report()
  return builder.skip_report()


def summary(name: str, report: dict) -> str:
  lines = [f"{name}: prepared"]
  for split, r in report.items():
    filtered = sum(r.get("filtered", {}).values())
    lines.append(f"  {split:24s} read {r['read']:>9,}   skipped {len(r['skipped']):>6,}"
                 + (f"   filtered by the protocol {filtered:,}" if filtered else ""))
    for reason, n in sorted(r.get("filtered", {}).items()):
      lines.append(f"      filtered {n:,}: {reason}")
    for key, reason in r["skipped"][:10]:
      lines.append(f"      skipped {key}: {reason}")
    if len(r["skipped"]) > 10:
      lines.append(f"      ... and {len(r['skipped']) - 10} more (see skipped.json)")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.getLogger("data_pipelines").setLevel(logging.ERROR)  # the summary lists the skips
  if FLAGS.dataset == "list":
    for name in sorted(DATASETS):
      print(f"{name}:\n{builder_class(name).LAYOUT.rstrip()}\n")
    return
  for flag in ("dataset", "manual_dir", "data_dir"):
    if not getattr(FLAGS, flag):
      sys.exit(f"--{flag} is required")
  from data_pipelines import builder as builder_lib
  try:
    options = dict(o.split("=", 1) for o in FLAGS.options)
    report = prepare(FLAGS.dataset, FLAGS.manual_dir, FLAGS.data_dir, FLAGS.validate_images,
                     options)
  except (builder_lib.MissingDataError, KeyError, ValueError) as e:
    sys.exit(f"error: {e}")
  print(summary(FLAGS.dataset, report))


if __name__ == "__main__":
  app.run(main)
