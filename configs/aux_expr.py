"""Auxiliary supervised learning, expression as the main task (supplement B.2, Table 1).

  python -m faceptor_jax.main --config=configs/aux_expr.py --workdir=runs/aux_expr \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16

AffectNet 64 / alpha 80 and RAF-DB 16 / 20 (main); 300W 2 / 1000, CelebAMask-HQ 2 / 100,
MS1MV3 64 / 1 (auxiliary). Everything else as Faceptor-Base stage 1.
"""

from configs import common


def get_config():
  config = common.make({"affect_affectnet": 64, "affect_rafdb": 16, "align_300w": 2,
                        "parsing_celebam": 2, "recog_ms1mv3": 64},
                       {"affect": 100, "align": 1000, "parsing": 100, "recog": 1})
  config.init_allow_missing = (r"(?!encoder/).*",)
  config.eval = common.eval_entries(["affect_rafdb"])
  return config
