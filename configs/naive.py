"""Naive Faceptor (supplement A.2, SPEC 1.3): the FaRL encoder with one head per task type.

  python -m faceptor_jax.main --config=configs/naive.py --workdir=runs/naive \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16

Same datasets and batches as Base; every task type weighs 1 (alpha = 1 for recognition, age,
attributes, parsing and landmarks, 0.8 AffectNet, 0.2 RAF-DB). The official recipe writes the
same peak rates as base 1e-5 / warm-up 5e-4 with backbone x0.1 and heads x1; here: x1 / x10 of
5e-5. Paper: 300W 2.75/4.84/3.16, CelebAMask-HQ 88.04, MORPH II 1.873, RAF-DB 87.58, CelebA
91.40, verification mean 95.57.
"""

from configs import common


def get_config():
  config = common.make(common.BASE_BATCH, {t: 1 for t in common.BASE_TASK_WEIGHT},
                       variant="naive")
  config.init_allow_missing = (r"(?!encoder/).*",)
  return config
