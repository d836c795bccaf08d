"""Stage 2 layer attention for affect_rafdb (SPEC 1.4) from Faceptor-Full.

  python -m faceptor_jax.main --config=configs/stage2_affect_rafdb.py --workdir=runs/stage2_affect_rafdb \
      --config.data_dir=/data/tfds --config.init_from=weights/faceptor_full

(`weights/faceptor_full`: the official Full checkpoint converted with
`python -m faceptor_jax.convert --kind=faceptor`, or a stage-1 run exported to weights.)
"""

from configs import stage2_common


def get_config():
  return stage2_common.make("affect_rafdb")
