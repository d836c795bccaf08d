"""What every Faceptor config shares: the official recipe (SPEC 2) and the paper's benchmarks.

A config file calls `make(...)` with its tasks, per-dataset batch sizes (global, over all
devices) and per-type task weights, then adjusts. Every key is listed here, so a command-line
override of an unknown key (`--config.nope=1`) is refused.
"""

from __future__ import annotations

import ml_collections

from faceptor_jax import losses, optim, sharding
from faceptor_jax.models import model_config

# The per-dataset batch sizes of the paper (SPEC 2.2, totals over the GPUs).
BASE_BATCH = {"recog_ms1mv3": 256, "age_morph2": 64, "biattr_celeba": 64,
              "affect_affectnet": 64, "affect_rafdb": 16, "parsing_celebam": 4, "align_300w": 4}
FULL_BATCH = {**BASE_BATCH, "age_utkface": 16, "affect_ferplus": 16, "parsing_lapa": 4,
              "align_cofw": 4, "align_wflw": 4, "align_aflw": 4}
BASE_TASK_WEIGHT = {"recog": 5, "age": 6, "biattr": 2, "affect": 5, "parsing": 100, "align": 1000}
FULL_TASK_WEIGHT = {"recog": 5, "age": 5, "biattr": 2, "affect": 10, "parsing": 200, "align": 1000}

# The training split of each dataset (train+val where the paper trains on both).
TRAIN_SPLIT = {"recog_ms1mv3": "train", "age_morph2": "train", "age_utkface": "train",
               "biattr_celeba": "train+val", "biattr_lfw73": "train",
               "affect_affectnet": "train", "affect_rafdb": "train",
               "affect_ferplus": "train+val", "parsing_celebam": "train+val",
               "parsing_lapa": "train+val", "align_300w": "train", "align_wflw": "train",
               "align_cofw": "train", "align_aflw": "train"}

# The paper's benchmarks per task: {name: (task, split, extra)}.
VERIFICATION = ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")
BENCHMARKS = {
    "recog_ms1mv3": {v: ("recog_ms1mv3", v, {"dataset": "verification"}) for v in VERIFICATION},
    "age_morph2": {"morph2": ("age_morph2", "test", {})},
    "age_utkface": {"utkface": ("age_utkface", "test", {})},
    "biattr_celeba": {"celeba": ("biattr_celeba", "test", {})},
    "biattr_lfw73": {"lfw73": ("biattr_lfw73", "test", {})},
    "affect_rafdb": {"rafdb": ("affect_rafdb", "test", {})},
    "affect_ferplus": {"ferplus": ("affect_ferplus", "test", {})},
    "parsing_celebam": {"celebamask_hq": ("parsing_celebam", "test", {})},
    "parsing_lapa": {"lapa": ("parsing_lapa", "test", {})},
    "align_300w": {"300w_common": ("align_300w", "valid_common", {}),
                   "300w_challenge": ("align_300w", "valid_challenge", {}),
                   "300w_full": ("align_300w", "valid_common+valid_challenge", {})},
    "align_wflw": {f"wflw_{s}" if s else "wflw": ("align_wflw", f"test_{s}" if s else "test", {})
                   for s in ("", "largepose", "expression", "illumination", "makeup",
                             "occlusion", "blur")},
    "align_cofw": {"cofw": ("align_cofw", "test", {})},
    "align_aflw": {"aflw_full": ("align_aflw", "test_full", {}),
                   "aflw_frontal": ("align_aflw", "test_frontal", {})},
}


def eval_entries(task_names) -> dict:
  """The paper's benchmarks of these tasks as `config.eval` entries."""
  out = {}
  for t in task_names:
    for name, (task, split, extra) in BENCHMARKS.get(t, {}).items():
      out[name] = {"task": task, "split": split, "dataset": extra.get("dataset", ""),
                   "config": "", "data_dir": "", "evaluator": "", "batch_size": 0,
                   "options": {}, "transform": {}}
  return out


def task_entry(name: str, batch_size: int, split: str | None = None) -> dict:
  return {"batch_size": batch_size, "split": split or TRAIN_SPLIT[name], "dataset": "",
          "config": "", "data_dir": "", "rec": "", "transform": {}}


def make(batch_sizes: dict, task_weight: dict, *, variant: str = "faceptor",
         total_steps: int = 50000, warmup_steps: int = 2000) -> ml_collections.ConfigDict:
  """A stage-1 config with the official recipe for `batch_sizes` {task: n_t}."""
  config = ml_collections.ConfigDict()
  config.seed = 2048
  config.data_dir = ""          # the prepared datasets (python -m data_pipelines.prepare)
  config.init_from = ""         # a weights folder (python -m faceptor_jax.convert)
  config.init_allow_missing = ()    # regexes of parameters the weights may lack
  config.init_allow_unexpected = ()  # regexes of weights the model may lack
  # Render and prepare synthetic stand-ins of absent datasets (the demo; demo_data.py).
  config.synthetic = {"enabled": False, "seed": 0, "counts": {}}
  config.model = model_config.get(variant)
  config.tasks = {t: task_entry(t, n) for t, n in batch_sizes.items()}
  config.task_weight = dict(task_weight)
  config.optim = optim.default_config()
  config.schedule = optim.schedule_config()
  config.schedule.total_steps = total_steps
  config.schedule.warmup_steps = warmup_steps
  config.losses = losses.default_config()
  config.mesh = {"data": -1, "fsdp": 1}
  config.sharding = {"rules": sharding.DEFAULT_RULES, "overrides": ()}
  config.checkpoint = {"every": 5000, "keep": 3, "async_save": True}
  config.input = {"workers": 4, "prefetch": 2}
  config.eval = eval_entries(batch_sizes)
  config.eval_every = 2500
  config.eval_batch_size = 32
  config.eval_baselines = False
  config.log_every = 50
  config.max_nonfinite = 10
  return config
