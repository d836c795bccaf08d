"""Times softmax attention forward + backward: the plain form against blockwise query blocks.

  python benchmarks/attention.py                          # the 512-px encoder group, float32
  python benchmarks/attention.py --dtype=bfloat16 --blocks=64,128,256
  python benchmarks/attention.py --batch=40 --tokens=50   # the 112-px group

Shapes are one encoder layer's: [batch, 12 heads, tokens, 64]. Printed per form: the minimum
time of `--repeats` runs after a warm-up (minimum, not median: it is the least disturbed by other
work on a shared machine), the speed-up over the plain form, and the largest difference from the
plain form's output and gradients. This is how faceptor_jax/models/attention.QUERY_BLOCK was
chosen.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from faceptor_jax.models import attention, layers


def forward_backward(fn):
  def run(q, k, v, g):
    out, vjp = jax.vjp(fn, q, k, v)
    return (out,) + vjp(g)
  return jax.jit(run)


def min_time(fn, args, repeats):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return min(times)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--batch", type=int, default=2)
  p.add_argument("--tokens", type=int, default=1025)
  p.add_argument("--blocks", default="64,128,256", help="query rows per block, comma-separated")
  p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  p.add_argument("--repeats", type=int, default=8)
  args = p.parse_args()

  rng = np.random.default_rng(0)
  shape = (args.batch, 12, args.tokens, 64)
  q, k, v, g = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(4))
  q = q / 8.0  # the 1/sqrt(head_dim) the model applies
  dtype = jnp.dtype(args.dtype)
  ref_fn = forward_backward(lambda q, k, v: layers.softmax_attention(q, k, v, dtype)[0])
  ref = ref_fn(q, k, v, g)
  base = min_time(ref_fn, (q, k, v, g), args.repeats)
  print(f"q, k, v {shape} {args.dtype}: plain {base * 1e3:.1f} ms (forward + backward)")
  for block in (int(b) for b in args.blocks.split(",")):
    fn = forward_backward(lambda q, k, v, b=block: attention.blockwise_attention(q, k, v, dtype, b))
    out = fn(q, k, v, g)
    err = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(out, ref))
    t = min_time(fn, (q, k, v, g), args.repeats)
    print(f"  blockwise, {block:4d} rows: {t * 1e3:7.1f} ms  x{base / t:.2f}  max |diff| {err:.1e}")


if __name__ == "__main__":
  main()
