"""The product's entry point: train (or evaluate) Faceptor as a config says.

  python -m faceptor_jax.main                                 # the demo on synthetic faces
  python -m faceptor_jax.main --config=configs/full.py --workdir=runs/full \
      --config.data_dir=/data/tfds --config.init_from=weights/farl_b16
  python -m faceptor_jax.main --config=configs/base.py --workdir=runs/base --mode=eval
  python -m faceptor_jax.main --config=configs/base.py --mode=eval --weights=weights/base

Any config value can be overridden (`--config.tasks.age_morph2.batch_size=32`); an unknown key
or a value of the wrong type is refused. Multi-host: on TPU pods `jax.distributed` finds its
peers itself (`--multihost`); elsewhere pass `--coordinator=host:port --num_processes=N
--process_id=i` on every host.
"""

from __future__ import annotations

import logging
import os
import sys

from absl import app, flags
from ml_collections import config_flags

import configs

DEMO = os.path.join(os.path.dirname(os.path.abspath(configs.__file__)), "demo.py")

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", DEMO, "a config file (configs/*.py)", lock_config=True)
flags.DEFINE_string("workdir", "workdir/demo", "checkpoints, metrics and TensorBoard go here")
flags.DEFINE_enum("mode", "train", ["train", "eval"], "train, or evaluate a checkpoint / weights")
flags.DEFINE_string("weights", None, "--mode=eval: a weights folder instead of the workdir's "
                    "newest checkpoint")
flags.DEFINE_bool("multihost", False, "call jax.distributed.initialize() (TPU pods, SLURM)")
flags.DEFINE_string("coordinator", None, "host:port of process 0 (multi-host without autodetect)")
flags.DEFINE_integer("num_processes", None, "number of processes (multi-host)")
flags.DEFINE_integer("process_id", None, "this process's index (multi-host)")


def main(argv):
  del argv
  import jax
  if FLAGS.coordinator:
    jax.distributed.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  elif FLAGS.multihost:
    jax.distributed.initialize()
  logging.getLogger().setLevel(logging.INFO)
  for noisy in ("absl", "orbax", "tensorflow_datasets", "grain"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  from faceptor_jax import train
  config = FLAGS.config
  if FLAGS.mode == "train":
    train.train(config, FLAGS.workdir)
  else:
    train.evaluate_checkpoint(config, FLAGS.workdir, FLAGS.weights)


def run():
  """Console-script entry (`faceptor-train`)."""
  app.run(main)


if __name__ == "__main__":
  sys.exit(run())
