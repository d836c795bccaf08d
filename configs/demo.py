"""The embedded default: a small Faceptor trained on synthetic faces on a laptop CPU.

  python -m faceptor_jax.main                       # = --config=configs/demo.py --workdir=workdir/demo

Generates the synthetic datasets (data_pipelines/synthetic.py) in each real dataset's raw format
if they are absent, prepares them with the real builders, trains the 7 Faceptor-Base tasks with a
small encoder (64-px / 128-px groups, patch 8) for a few minutes on 2 CPU cores, evaluates every
benchmark with its official protocol and prints each metric beside a trivial baseline (the mean
age, the majority class, the mean shape, the per-pixel majority, random embeddings). Every task
beats its baseline (benchmarks/demo_learns.py records the figures).
"""

from configs import common
from data_pipelines import demo_data
from faceptor_jax.models import model_config

BATCH = {"recog_ms1mv3": 32, "age_morph2": 16, "biattr_celeba": 16, "affect_affectnet": 16,
         "affect_rafdb": 8, "parsing_celebam": 4, "align_300w": 4}


def get_config():
  config = common.make(BATCH, common.BASE_TASK_WEIGHT, total_steps=600, warmup_steps=50)
  config.seed = 0
  config.synthetic = {"enabled": True, "num_per_split": 0, "seed": 0}
  m = config.model
  m.image_size = {"small": 64, "large": 128}
  m.encoder.update(width=128, depth=4, heads=4, mlp_dim=256, patch=8, pos_grid=16,
                   embed_dim=64, drop_path=0.0)
  m.decoder.update(width=64, layers=2, heads=4, ffn_dim=128, levels=(4,))
  m.embedding_dim = 64
  m.identities = demo_data.identities(config)  # the synthetic MS1MV3's identities
  config.schedule.update(base_lr=1e-5, peak_lr=1e-3)
  config.optim.multipliers = ((".*", 1.0),)  # from scratch: one rate for all
  config.losses.cosface.margin = 0.2
  config.input = {"workers": 0, "prefetch": 2}
  config.checkpoint = {"every": 200, "keep": 2, "async_save": True}
  config.eval = common.eval_entries(BATCH)
  for name in ("cfp_fp", "agedb_30", "calfw", "cplfw", "300w_full"):
    del config.eval[name]
  config.eval_every = 0
  config.eval_batch_size = 32
  config.eval_baselines = True
  config.log_every = 25
  return config
