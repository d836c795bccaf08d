"""Auxiliary supervised learning, age as the main task (supplement B.2, Table 1).

  python -m faceptor_jax.main --config=configs/aux_age.py --workdir=runs/aux_age \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16

MORPH II 64 / alpha 10 (main); 300W 4 / 1000, CelebAMask-HQ 4 / 100, MS1MV3 256 / 10
(auxiliary). Everything else as Faceptor-Base stage 1.
"""

from configs import common


def get_config():
  config = common.make({"age_morph2": 64, "align_300w": 4, "parsing_celebam": 4,
                        "recog_ms1mv3": 256},
                       {"age": 10, "align": 1000, "parsing": 100, "recog": 10})
  config.init_allow_missing = (r"(?!encoder/).*",)
  config.eval = common.eval_entries(["age_morph2"])
  return config
