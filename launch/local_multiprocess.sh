#!/usr/bin/env bash
# Two processes on one machine training together (what tests/test_train.py checks): a dry run of
# a multi-host launch without a cluster. CPU collectives go through gloo.
#
#   bash launch/local_multiprocess.sh configs/tiny.py /tmp/tiny_2proc
set -euo pipefail
CONFIG="${1:-configs/tiny.py}"; WORKDIR="${2:-/tmp/faceptor_2proc}"; PORT="${PORT:-12355}"
export JAX_PLATFORMS=cpu JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo
for i in 0 1; do
  python -m faceptor_jax.main --config="$CONFIG" --workdir="$WORKDIR" \
      --coordinator="localhost:$PORT" --num_processes=2 --process_id=$i &
done
wait
