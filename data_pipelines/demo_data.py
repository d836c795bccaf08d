"""The demo's data: synthetic faces written in each real dataset's raw format, then prepared.

`ensure(config, data_dir)` makes sure every dataset the config trains or evaluates on is prepared
under `data_dir`: a dataset that is absent is rendered by `synthetic.py` into
`<data_dir>/raw/<dataset>` and prepared by its real builder; `config.synthetic.counts` overrides
`COUNTS` per dataset. A prepared one is left alone, so a
second run starts training at once.
"""

from __future__ import annotations

import logging
import os

from data_pipelines import prepare, synthetic
from faceptor_jax import tasks

log = logging.getLogger(__name__)

# Examples per split of each synthetic dataset (sized for a few CPU minutes of training).
COUNTS = {
    "ms1mv3": {"train": 1000},
    "verification": {"lfw": 300, "cfp_fp": 60, "agedb_30": 60},
    "morph2": {"all": 1000},
    "celeba": {"train": 1200, "val": 100, "test": 300},
    "affectnet": {"train": 1200, "test": 280},
    "rafdb": {"train": 600, "test": 280},
    "celebamask_hq": {"train": 400, "val": 40, "test": 100},
    "ibug300w": {"train": 400, "valid_common": 100, "valid_challenge": 40, "test": 0},
}
IMAGES_PER_IDENTITY = 10


def datasets_of(config) -> list[str]:
  names = [tc.get("dataset") or tasks.get(t).dataset for t, tc in config.tasks.items()]
  for entry in config.get("eval", {}).values():
    kind = entry.get("evaluator") or tasks.get(entry.task).type.evaluator
    names.append(entry.get("dataset") or ("verification" if kind == "verification"
                                          else tasks.get(entry.task).dataset))
  return list(dict.fromkeys(names))


def is_prepared(name: str, data_dir: str) -> bool:
  folder = os.path.join(data_dir, name)
  return os.path.isdir(folder) and any(
      os.path.exists(os.path.join(folder, v, "dataset_info.json")) for v in os.listdir(folder))


def ensure(config, data_dir: str) -> None:
  seed = int(config.synthetic.get("seed", 0))
  for name in datasets_of(config):
    if is_prepared(name, data_dir):
      continue
    override = config.synthetic.get("counts", {}).get(name)
    counts = dict(override) if override else COUNTS.get(name)
    if counts is None:
      raise KeyError(f"the demo has no synthetic counts for dataset {name!r}")
    log.info("synthetic %s: rendering %s", name, counts)
    raw = synthetic.write_dataset(name, os.path.join(data_dir, "raw"), counts, seed=seed,
                                  overwrite=True,
                                  **({"images_per_identity": IMAGES_PER_IDENTITY}
                                     if name == "ms1mv3" else {}))
    options = {"train_size": counts["train"]} if name == "aflw19" else None
    report = prepare.prepare(name, raw, data_dir, options=options)
    skipped = sum(len(r["skipped"]) for r in report.values())
    log.info("synthetic %s: prepared %s (%d skipped)",
             name, {s: r["read"] for s, r in report.items()}, skipped)


def identities(counts=None) -> int:
  """Identities of the synthetic MS1MV3 (the demo's CosFace classifier size)."""
  ms1mv3 = (counts or {}).get("ms1mv3") or COUNTS["ms1mv3"]
  return -(-ms1mv3["train"] // IMAGES_PER_IDENTITY)
