"""The embedded default: a small Faceptor trained on synthetic faces on a laptop CPU.

  python -m faceptor_jax.main                       # = --config=configs/demo.py --workdir=workdir/demo

Generates the synthetic datasets (data_pipelines/synthetic.py) in each real dataset's raw format
if they are absent, prepares them with the real builders, trains the 7 Faceptor-Base tasks with a
small encoder (64-px / 96-px groups, patch 8) for 450 steps on 2 CPU cores (about 8 minutes),
evaluates every benchmark with its official protocol and prints each metric beside a trivial
baseline (the mean age, the majority class, the mean shape, the per-pixel majority, random
embeddings). Every task beats its baseline (benchmarks/demo_learns.py records the figures).
"""

from configs import common
from data_pipelines import demo_data

BATCH = {"recog_ms1mv3": 32, "age_morph2": 32, "biattr_celeba": 48, "affect_affectnet": 32,
         "affect_rafdb": 32, "parsing_celebam": 24, "align_300w": 24}


def get_config():
  # From scratch the encoder learns from every task; these weights give the shared encoder,
  # decoder and map head a share per task that lets each one learn within the short schedule
  # (the paper's favour the dense tasks too, whose features FaRL already has).
  config = common.make(BATCH, {"recog": 1, "age": 1, "biattr": 3, "affect": 10, "parsing": 40,
                               "align": 150}, total_steps=450, warmup_steps=30)
  config.seed = 0
  config.synthetic = {"enabled": True, "seed": 0, "counts": {}}
  m = config.model
  m.image_size = {"small": 64, "large": 96}
  m.encoder.update(width=128, depth=4, heads=4, mlp_dim=256, patch=8, pos_grid=16,
                   embed_dim=64, drop_path=0.0,
                   remat="")  # the figures in the README were measured without recomputation
  m.decoder.update(width=64, layers=2, heads=4, ffn_dim=128, levels=(4,))
  m.embedding_dim = 64
  m.identities = demo_data.identities()  # the synthetic MS1MV3's identities
  config.schedule.update(base_lr=1e-5, peak_lr=1e-3)
  # Trained from scratch, the decoder's task queries collapse onto one vector (every landmark
  # at the same point, every parsing class the same map) once the encoder's residual stream
  # grows: the post-norm cross-attention output, common to all queries, then outweighs each
  # query's own content. A slower encoder (x0.2) keeps the memory small; the map head, a
  # product of two small-initialised factors (mask embeddings x pixel embeddings), needs a fast
  # rate (x30) to leave its flat start within a few hundred steps.
  config.optim.multipliers = (("map/.*", 30.0), ("encoder/.*", 0.2), (".*", 1.0))
  config.losses.cosface.margin = 0.2
  # One grain worker process decodes and augments while the update runs (about half the step).
  config.input = {"workers": 1, "prefetch": 2}
  # Short training from scratch: no photometric augmentation, and the dense tasks train on the
  # evaluation's own aligned crops (no random similarity), so the layout prior is learnt at once.
  still = {"shift_range": 0.0, "photometric": False}
  for name, task in config.tasks.items():
    if name.startswith("align"):
      task.transform = {**still, "rotation_range": 0.0, "scale_range": 0.0}
    elif name.startswith("parsing"):
      task.transform = {**still, "rotation_sigma": 0.0, "scale_sigma": 0.0}
    elif not name.startswith("recog"):
      task.transform = {"num_ops": 0, "erase_prob": 0.0}
  config.checkpoint = {"every": 200, "keep": 2, "async_save": True}
  config.eval = common.eval_entries(BATCH)
  for name in ("cfp_fp", "agedb_30", "calfw", "cplfw", "300w_full"):
    del config.eval[name]
  config.eval_every = 0
  config.eval_batch_size = 32
  config.eval_baselines = True
  config.log_every = 25
  return config
