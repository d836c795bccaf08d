"""Faceptor-Full, stage 1 (SPEC 2.1-2.4): 13 datasets, 50k steps, layer 12 only.

  python -m faceptor_jax.main --config=configs/full.py --workdir=runs/full \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16

Paper figures (README tables): WFLW NME 4.03, 300W 2.52/4.25/2.86, COFW 3.01, AFLW-19 NME_diag
0.95/0.87; CelebAMask-HQ 88.2, LaPa 91.5; MORPH II 1.96, UTKFace 4.10; RAF-DB 91.26,
FERPlus 90.40; CelebA 91.39; LFW 99.40, CFP-FP 96.34, AgeDB-30 93.65, CALFW 94.75, CPLFW 92.27.
Batch sizes are the paper's totals (4 GPUs).
"""

from configs import common


def get_config():
  config = common.make(common.FULL_BATCH, common.FULL_TASK_WEIGHT)
  config.init_allow_missing = (r"(?!encoder/).*",)
  return config
