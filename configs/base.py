"""Faceptor-Base, stage 1 (SPEC 2.1-2.4): 7 datasets, 50k steps, layer 12 only.

  python -m faceptor_jax.main --config=configs/base.py --workdir=runs/base \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16

`init_from` is FaRL-B/16 converted with `python -m faceptor_jax.convert --kind=farl`; only the
encoder is in it (hence `init_allow_missing`). The paper reports (README tables): 300W NME
2.60/4.60/3.00 (common/challenge/full), CelebAMask-HQ F1 88.22, MORPH II MAE 1.869, RAF-DB 90.38,
CelebA mAcc 91.43, LFW 99.52 / CFP-FP 95.86 / AgeDB-30 93.33 / CALFW 94.70 / CPLFW 92.12.
Batch sizes are the paper's totals (2 GPUs x 128/32/32/32/8/2/2).
"""

from configs import common


def get_config():
  config = common.make(common.BASE_BATCH, common.BASE_TASK_WEIGHT)
  config.init_allow_missing = (r"(?!encoder/).*",)
  return config
