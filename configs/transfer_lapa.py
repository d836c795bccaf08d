"""Transfer from Faceptor-Base to LaPa (supplement B.3): parsing_lapa, batch 8, 20k steps.

  python -m faceptor_jax.main --config=configs/transfer_lapa.py --workdir=runs/transfer_lapa \
      --config.data_dir=/data/tfds --config.init_from=weights/faceptor_base
"""

from configs import transfer_common


def get_config():
  return transfer_common.make("parsing_lapa", 8)
