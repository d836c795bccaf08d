"""Transfer from Faceptor-Base to LFW-73 (supplement B.3): biattr_lfw73, batch 32, 20k steps.

  python -m faceptor_jax.main --config=configs/transfer_lfw73.py --workdir=runs/transfer_lfw73 \
      --config.data_dir=/data/tfds --config.init_from=weights/faceptor_base
"""

from configs import transfer_common


def get_config():
  return transfer_common.make("biattr_lfw73", 32)
