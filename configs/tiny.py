"""A seconds-per-step Faceptor on tiny synthetic data: smoke runs and the trainer's tests.

  python -m faceptor_jax.main --config=configs/tiny.py --workdir=/tmp/tiny

The 7 Faceptor-Base tasks with test-size widths (model_config.tiny(): 32/64-px groups, patch 8),
8 examples per dataset per step (divisible over 8 devices), synthetic datasets of a few dozen
faces, 8 steps, a synchronous checkpoint every 4 steps, no evaluation.
"""

from configs import common
from data_pipelines import demo_data
from faceptor_jax.models import model_config

TASKS = ("recog_ms1mv3", "age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb",
         "parsing_celebam", "align_300w")
COUNTS = {"ms1mv3": {"train": 40}, "verification": {"lfw": 20, "cfp_fp": 10, "agedb_30": 10},
          "morph2": {"all": 40}, "celeba": {"train": 24, "val": 8, "test": 12},
          "affectnet": {"train": 24, "test": 14}, "rafdb": {"train": 24, "test": 14},
          "celebamask_hq": {"train": 16, "val": 4, "test": 8},
          "ibug300w": {"train": 16, "valid_common": 8, "valid_challenge": 4, "test": 0}}


def get_config():
  config = common.make({t: 8 for t in TASKS}, common.BASE_TASK_WEIGHT, total_steps=8,
                       warmup_steps=2)
  config.seed = 0
  config.synthetic = {"enabled": True, "seed": 0, "counts": COUNTS}
  config.model = model_config.tiny()
  config.model.identities = demo_data.identities(COUNTS)
  config.schedule.update(base_lr=1e-5, peak_lr=1e-3)
  config.input = {"workers": 0, "prefetch": 2}
  config.checkpoint = {"every": 4, "keep": 3, "async_save": False}
  config.eval = {}
  config.eval_every = 0
  config.eval_batch_size = 8
  config.log_every = 1
  return config
