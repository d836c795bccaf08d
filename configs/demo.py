"""The embedded default: a small Faceptor trained on synthetic faces on a laptop CPU.

  python -m faceptor_jax.main                       # = --config=configs/demo.py --workdir=workdir/demo

Generates the synthetic datasets (data_pipelines/synthetic.py) in each real dataset's raw format
if they are absent, prepares them with the real builders, trains the 7 Faceptor-Base tasks with a
small encoder (64-px / 96-px groups, patch 8) for a few minutes on 2 CPU cores, evaluates every
benchmark with its official protocol and prints each metric beside a trivial baseline (the mean
age, the majority class, the mean shape, the per-pixel majority, random embeddings). Every task
beats its baseline (benchmarks/demo_learns.py records the figures).
"""

from configs import common
from data_pipelines import demo_data

# Large enough batches matter more than steps here: with 8 examples a step the query decoder,
# trained from scratch, sits on its "predict the prior" plateau for hundreds of steps.
BATCH = {"recog_ms1mv3": 48, "age_morph2": 48, "biattr_celeba": 48, "affect_affectnet": 32,
         "affect_rafdb": 32, "parsing_celebam": 8, "align_300w": 8}


def get_config():
  # From scratch, the encoder learns from every task: weights that bring the task losses to
  # comparable sizes (the paper's favour the dense tasks, whose features FaRL already has).
  config = common.make(BATCH, {"recog": 1, "age": 1, "biattr": 1, "affect": 10, "parsing": 10,
                               "align": 100}, total_steps=300, warmup_steps=30)
  config.seed = 0
  config.synthetic = {"enabled": True, "seed": 0, "counts": {}}
  m = config.model
  m.image_size = {"small": 64, "large": 96}
  m.encoder.update(width=128, depth=4, heads=4, mlp_dim=256, patch=8, pos_grid=16,
                   embed_dim=64, drop_path=0.0)
  m.decoder.update(width=64, layers=2, heads=4, ffn_dim=128, levels=(4,))
  m.embedding_dim = 64
  m.identities = demo_data.identities()  # the synthetic MS1MV3's identities
  config.schedule.update(base_lr=1e-5, peak_lr=1e-3)
  config.optim.multipliers = ((".*", 1.0),)  # from scratch: one rate for all
  config.losses.cosface.margin = 0.2
  config.input = {"workers": 0, "prefetch": 2}
  # Short training from scratch: geometric augmentation only.
  for name, task in config.tasks.items():
    task.transform = ({"photometric": False} if name.startswith(("align", "parsing"))
                      else {"num_ops": 0, "erase_prob": 0.0} if not name.startswith("recog")
                      else {})
  config.checkpoint = {"every": 200, "keep": 2, "async_save": True}
  config.eval = common.eval_entries(BATCH)
  for name in ("cfp_fp", "agedb_30", "calfw", "cplfw", "300w_full"):
    del config.eval[name]
  config.eval_every = 0
  config.eval_batch_size = 32
  config.eval_baselines = True
  config.log_every = 25
  return config
