"""Runs the embedded default (configs/demo.py) and checks that every task beats its trivial baseline.

  python benchmarks/demo_learns.py [--workdir=/tmp/faceptor_demo] [--steps=N]

Prints the wall-clock time of the whole demo (data rendering and preparation on a first run,
compilation, training, evaluation) and, per benchmark, the headline metric beside its trivial
baseline (the mean age, the majority class, the mean shape, the per-pixel majority class, random
embeddings), with the verdict. Exits 1 if a task does not beat its baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# The headline metric of each benchmark and whether higher is better.
HEADLINE = {"accuracy": True, "mean_accuracy": True, "f1_fg_mean": True, "mae": False,
            "nme_inter_ocular": False}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", default="/tmp/faceptor_demo")
  p.add_argument("--steps", type=int, default=0, help="override the demo's step count")
  args = p.parse_args()
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  import logging
  logging.basicConfig(level=logging.INFO)
  from configs import demo
  from faceptor_jax import train
  config = demo.get_config()
  if args.steps:
    config.schedule.total_steps = args.steps
  t = time.perf_counter()
  results = train.train(config, args.workdir)
  minutes = (time.perf_counter() - t) / 60
  print(f"\ndemo: {minutes:.1f} min end to end ({config.schedule.total_steps} steps)")
  failures = 0
  for name, r in results.items():
    metric = next(m for m in HEADLINE if m in r["metrics"])
    model, base = r["metrics"][metric], r["baseline"][metric]
    better = model > base if HEADLINE[metric] else model < base
    failures += not better
    print(f"{name:18s} {metric:18s} model {model:9.4f}  baseline {base:9.4f}  "
          f"{'beats the baseline' if better else 'DOES NOT beat the baseline'}")
  sys.exit(1 if failures else 0)


if __name__ == "__main__":
  main()
