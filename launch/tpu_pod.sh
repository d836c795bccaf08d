#!/usr/bin/env bash
# Faceptor on a Cloud TPU pod slice: the same command on every worker; jax.distributed finds its
# peers itself (--multihost). Each host reads its share of every dataset's batch.
#
#   TPU=my-v4-32 ZONE=us-central2-b CONFIG=configs/full.py WORKDIR=gs://bucket/runs/full \
#   DATA_DIR=gs://bucket/tfds INIT=gs://bucket/weights/farl_b16 bash launch/tpu_pod.sh
#
# Batch sizes are global: they must divide over the chips (the trainer names the offending task
# and the multiples that work). bf16 matmuls: add --config.model.dtype=bfloat16.
set -euo pipefail
: "${TPU:?name of the TPU VM}" "${ZONE:?its zone}" "${CONFIG:=configs/full.py}"
: "${WORKDIR:?checkpoint/metrics folder (gs:// or a shared path)}" "${DATA_DIR:?prepared datasets}"
REPO="${REPO:-https://example.invalid/faceptor-jax.git}"  # where the workers get the code
EXTRA="${*:-}"

gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  set -e
  [ -d faceptor-jax ] || git clone $REPO faceptor-jax
  cd faceptor-jax && pip install -q -e . 'jax[tpu]' \
      -f https://storage.googleapis.com/jax-releases/libtpu_releases.html
  python -m faceptor_jax.main --multihost --config=$CONFIG --workdir=$WORKDIR \
      --config.data_dir=$DATA_DIR ${INIT:+--config.init_from=$INIT} \
      --config.model.dtype=bfloat16 $EXTRA
"
