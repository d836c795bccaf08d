"""Transfer from Faceptor-Base to AFLW-19 (supplement B.3): align_aflw, batch 8, 20k steps.

  python -m faceptor_jax.main --config=configs/transfer_aflw19.py --workdir=runs/transfer_aflw19 \
      --config.data_dir=/data/tfds --config.init_from=weights/faceptor_base
"""

from configs import transfer_common


def get_config():
  return transfer_common.make("align_aflw", 8)
