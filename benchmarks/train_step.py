"""Times a Faceptor training update and inference at a given batch composition, and prints figures.

  python benchmarks/train_step.py                       # Base, 8 per 112-px task, 1 per 512-px task
  python benchmarks/train_step.py --dtype=bfloat16      # bf16 matmuls (float32 accumulation)
  python benchmarks/train_step.py --n112=32 --n512=0    # the official 160-image timing
  XLA_FLAGS=--xla_force_host_platform_device_count=8 \
    python benchmarks/train_step.py --mesh=4,2 --n112=8 --n512=8   # data x fsdp mesh

The update is the real one (faceptor_jax/train_step.py: every task loss, gradients, clip, AdamW
with LR multipliers) on random images and labels. Printed: compile time, median step time after
warm-up, images/s, XLA's FLOP count of the update (recomputation included: the encoder's remat
policy and blockwise attention recompute in the backward pass), the achieved FLOP/s, and a
2048^3 matmul measured in the same process and precision (the CPU's ceiling).

The official PyTorch model took 18.69 s per update and 5.00 s per inference at 8 + 1 on a 2-core
EPYC (tests/fixtures/official/README.md). CPUs differ: benchmarks/official_torch_step.py runs the
official model on the same batch, for a comparison on the machine at hand.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from faceptor_jax import losses, models, optim, sharding, tasks, train_step
from faceptor_jax.models import model_config


def matmul_rate(dtype, n=2048, repeats=7) -> float:
  """FLOP/s of an n^3 matmul in `dtype` (float32 accumulation for bf16)."""
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), dtype)
  f = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
  f(a, a).block_until_ready()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    f(a, a).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2 * n ** 3 / statistics.median(times)


def random_batch(names, cfg, sizes, rng):
  batch = {}
  for t in names:
    spec = tasks.get(t)
    n, s = sizes[spec.group], cfg.image_size[spec.group]
    b = {"image": rng.integers(0, 256, (n, s, s, 3), dtype=np.uint8)}
    kind = spec.type.name
    if kind == "recog":
      b["label"] = rng.integers(0, spec.num_outputs, n).astype(np.int32)
    elif kind == "age":
      b["age"] = rng.uniform(16, 77, n).astype(np.float32)
    elif kind == "biattr":
      b["attributes"] = rng.integers(0, 2, (n, spec.num_outputs)).astype(np.int32)
    elif kind == "affect":
      b["label"] = rng.integers(0, 7, n).astype(np.int32)
    elif kind == "parsing":
      b["label"] = rng.integers(0, spec.num_outputs, (n, s, s)).astype(np.int32)
    else:
      b["landmarks"] = rng.uniform(0.3 * s, 0.7 * s, (n, spec.num_outputs, 2)).astype(np.float32)
    batch[t] = b
  return batch


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--tasks", default="base", help="base | full | comma-separated task names")
  p.add_argument("--n112", type=int, default=8, help="images per 112-px task")
  p.add_argument("--n512", type=int, default=1, help="images per 512-px task")
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
  p.add_argument("--mesh", default="", help="data,fsdp sizes (default: all devices on data)")
  p.add_argument("--tiny", action="store_true", help="the test-size model (a smoke run)")
  args = p.parse_args()

  names = {"base": tasks.BASE_TASKS, "full": tasks.FULL_TASKS}.get(args.tasks)
  names = names or tuple(args.tasks.split(","))
  sizes = {tasks.SMALL: args.n112, tasks.LARGE: args.n512}
  names = tuple(t for t in names if sizes[tasks.get(t).group] > 0)
  cfg = model_config.tiny() if args.tiny else model_config.get()
  cfg.dtype = args.dtype
  dims = [int(x) for x in args.mesh.split(",")] if args.mesh else [-1, 1]
  mesh = sharding.make_mesh({"data": dims[0], "fsdp": dims[1]})
  cfg.classifier_multiple = mesh.size
  config = ml_collections.ConfigDict({
      "optim": optim.default_config(), "schedule": optim.schedule_config(),
      "losses": losses.default_config(), "seed": 0,
      "sharding": {"rules": sharding.DEFAULT_RULES, "overrides": ()}})
  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; mesh {dict(mesh.shape)}")
  print(f"tasks: {', '.join(names)}; per task {args.n112} @ {cfg.image_size['small']} px, "
        f"{args.n512} @ {cfg.image_size['large']} px; matmul dtype {args.dtype}")

  peak = matmul_rate(jnp.dtype(args.dtype))
  print(f"matmul 2048^3 ({args.dtype}): {peak / 1e9:.0f} GFLOP/s")

  model = models.create(cfg, names, rngs=nnx.Rngs(0))
  graphdef, state = train_step.init_state(model, config.optim)
  del model
  state_sh = sharding.state_shardings(state, mesh, config.sharding)
  state = jax.device_put(state, state_sh)
  batch_sizes = {t: sizes[tasks.get(t).group] for t in names}
  alpha = losses.loss_weights(batch_sizes, {"recog": 5, "age": 6, "biattr": 2, "affect": 5,
                                            "parsing": 100, "align": 1000})
  update = train_step.make_update(graphdef, state, config, alpha)
  rng = np.random.default_rng(0)
  batch = jax.device_put(random_batch(names, cfg, sizes, rng), sharding.batch_sharding(mesh))
  step = jax.jit(update, in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)

  t = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t
  flops = train_step.count_flops(cfg, names, config, alpha, batch)
  times = []
  for i in range(args.steps + 2):
    t = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    if i >= 2:
      times.append(time.perf_counter() - t)
  images = sum(batch_sizes.values())
  step_s = statistics.median(times)
  print(f"train update: compile {compile_s:.1f} s; median {step_s:.2f} s over {len(times)} steps "
        f"(min {min(times):.2f}); {images / step_s:.2f} img/s; loss {float(metrics['loss']):.3f}")
  print(f"  XLA FLOPs per update {flops / 1e12:.3f} T; achieved {flops / step_s / 1e9:.0f} "
        f"GFLOP/s = {100 * flops / step_s / peak:.0f}% of the matmul rate")

  infer_model = nnx.merge(graphdef, state["params"], state["frozen"], state["stats"])
  forward = nnx.jit(lambda m, im: m(im, train=False))
  images_in = {t: tasks.normalize(b["image"], tasks.get(t).group) for t, b in batch.items()}
  t = time.perf_counter()
  jax.block_until_ready(forward(infer_model, images_in))
  compile_i = time.perf_counter() - t
  times = []
  for _ in range(args.steps):
    t = time.perf_counter()
    jax.block_until_ready(forward(infer_model, images_in))
    times.append(time.perf_counter() - t)
  print(f"inference: first call {compile_i:.1f} s; median {statistics.median(times):.2f} s; "
        f"{images / statistics.median(times):.2f} img/s")


if __name__ == "__main__":
  main()
