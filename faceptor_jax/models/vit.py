"""The FaRL ViT-B/16 encoder in CLIP's layout (SPEC 1.1).

Patch embedding without bias, a class token, a positional embedding stored on a fixed grid (32x32,
for 512-px input) and resized on every call to the input's grid with PyTorch's bicubic, `ln_pre`,
then pre-norm residual blocks (attention and a QuickGELU MLP) with drop-path rising linearly to
`drop_path`. The call returns every block's output tokens without the class token: the heads pick
the layers they read. `ln_post` and `proj` are CLIP's image-embedding head: Faceptor never uses them,
but they are in every checkpoint and in the official parameter count, and `clip_embedding` uses them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from faceptor_jax.models import layers
from faceptor_jax.models.resize import resize


# drop_path's axis on [B, N, width] for encoder.drop_path_per.
DROP_AXIS = {"token": 1, "example": 0}


def quick_gelu(x):
  return x * jax.nn.sigmoid(1.702 * x)


class Block(nnx.Module):
  """x + DropPath(Attn(LN(x))); x + DropPath(MLP(LN(x)))."""

  def __init__(self, width: int, heads: int, mlp_dim: int, *, rngs: nnx.Rngs, dtype,
               drop_axis: int = DROP_AXIS["token"], unroll_attention: bool = False):
    # The axis drop-path draws along: tokens (the official code) or examples (see drop_path).
    self.drop_axis = drop_axis
    self.ln_1 = layers.LayerNorm(width)
    self.attn = layers.MultiHeadAttention(width, heads, rngs=rngs, dtype=dtype, fused_qkv=True,
                                          unroll_blocks=unroll_attention)
    self.ln_2 = layers.LayerNorm(width)
    self.c_fc = layers.Dense(width, mlp_dim, rngs=rngs, dtype=dtype, names=("embed", "mlp"))
    self.c_proj = layers.Dense(mlp_dim, width, rngs=rngs, dtype=dtype, names=("mlp", "embed"))

  def __call__(self, x, drop_rate=0.0, key=None):
    k1, k2 = jax.random.split(key) if key is not None else (None, None)
    x = x + layers.drop_path(self.attn(self.ln_1(x)), drop_rate, k1, self.drop_axis)
    x = x + layers.drop_path(self.c_proj(quick_gelu(self.c_fc(self.ln_2(x)))), drop_rate, k2,
                             self.drop_axis)
    return x


class VisionTransformer(nnx.Module):
  """FaRL's visual tower. `cfg`: width, depth, heads, mlp_dim, patch, pos_grid, embed_dim,
  drop_path (and optionally drop_path_per, scan_unroll, remat); `dtype`: the matmul dtype."""

  def __init__(self, cfg, *, rngs: nnx.Rngs, dtype="float32"):
    w, p, dtype = cfg.width, cfg.patch, jnp.dtype(dtype)
    self.patch, self.pos_grid, self.dtype = p, cfg.pos_grid, dtype
    scale = w ** -0.5
    self.conv1 = layers.param(layers.torch_linear_init(rngs, 3 * p * p, (p, p, 3, w)),
                              (None, None, None, "embed"))
    self.class_embedding = layers.param(layers.normal(rngs, (w,), scale),
                                        ("embed",))
    self.positional_embedding = layers.param(
        layers.normal(rngs, (1 + cfg.pos_grid ** 2, w), scale), (None, "embed"))
    self.ln_pre = layers.LayerNorm(w)
    drop_per = cfg.get("drop_path_per", "token")
    if drop_per not in DROP_AXIS:
      raise ValueError(f"encoder.drop_path_per={drop_per!r}: expected one of {sorted(DROP_AXIS)}")
    # lax.scan's `unroll` (True unrolls every block, and blockwise attention's loops: used to
    # count FLOPs, which XLA's cost analysis counts once per loop body).
    self.unroll = cfg.get("scan_unroll", 1)
    self.blocks = nnx.List([Block(w, cfg.heads, cfg.mlp_dim, rngs=rngs, dtype=dtype,
                                  drop_axis=DROP_AXIS[drop_per],
                                  unroll_attention=self.unroll is True)
                            for _ in range(cfg.depth)])
    self.drop_rates = tuple(float(r) for r in np.linspace(0.0, cfg.drop_path, cfg.depth))
    # What the backward pass keeps of each block: None keeps everything autodiff saves; a policy
    # of jax.checkpoint_policies recomputes the rest. Recomputing the elementwise work is cheaper
    # on the CPU than writing it to and reading it back from the per-block residual stacks
    # (benchmarks/train_step.py: see the README's speed figures).
    remat = cfg.get("remat", "")
    if remat and not hasattr(jax.checkpoint_policies, remat):
      raise ValueError(f"encoder.remat={remat!r} is not in jax.checkpoint_policies")
    self.remat_policy = getattr(jax.checkpoint_policies, remat) if remat else None
    self.ln_post = layers.LayerNorm(w)
    self.proj = layers.param(layers.normal(rngs, (w, cfg.embed_dim), scale),
                             ("embed", None))

  def positional_embedding_for(self, grid: int):
    """[1 + grid^2, width]: the class row unchanged, the stored grid resized bicubically."""
    pe = self.positional_embedding[...]
    if grid == self.pos_grid:
      return pe
    g = pe[1:].reshape(self.pos_grid, self.pos_grid, -1)
    g = resize(g, (grid, grid), "bicubic", axes=(0, 1))
    return jnp.concatenate([pe[:1], g.reshape(grid * grid, -1)], axis=0)

  def tokens(self, images):
    """[B, H, W, 3] normalised images -> [B, 1 + (H/p)(W/p), width] after ln_pre."""
    b, h, w, c = images.shape
    p = self.patch
    if h % p or w % p or h != w:
      raise ValueError(f"input {h}x{w} is not a square multiple of the patch size {p}")
    x = images.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, (h // p) * (w // p), p * p * c)
    x = layers.matmul(x, self.conv1[...].reshape(p * p * c, -1), self.dtype)
    cls = jnp.broadcast_to(self.class_embedding[...], (b, 1, x.shape[-1]))
    x = jnp.concatenate([cls, x], axis=1) + self.positional_embedding_for(h // p)
    return self.ln_pre(x)

  def __call__(self, images, *, train: bool = False, key=None):
    """Every block's output tokens without the class token: a list of `depth` [B, N, width]."""
    outputs = self.run_blocks(self.tokens(images), train=train, key=key)
    return [outputs[i] for i in range(outputs.shape[0])]

  def run_blocks(self, x, *, train: bool = False, key=None):
    """[depth, B, N - 1, width]: the blocks as one `lax.scan` over their stacked parameters.

    Scanning (rather than unrolling 12 blocks) compiles several times faster, and on the CPU the
    update runs ~20% faster: XLA keeps one block's working set at a time. The parameters stay
    stored per block (checkpoint layout, sharding); stacking them costs one copy per call.
    """
    graphdef = nnx.graphdef(self.blocks[0])
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[nnx.state(b) for b in self.blocks])
    depth = len(self.blocks)
    dropping = train and key is not None
    rates = jnp.asarray(self.drop_rates if dropping else (0.0,) * depth, jnp.float32)
    keys = jax.random.split(key, depth) if dropping else jnp.zeros((depth,), jnp.uint32)

    def body(x, layer):
      state, rate, k = layer
      x = nnx.merge(graphdef, state)(x, rate, k if dropping else None)
      return x, x[:, 1:]

    if self.remat_policy is not None:
      body = jax.checkpoint(body, policy=self.remat_policy,
                            prevent_cse=False)  # prevent_cse is not needed inside scan
    _, outputs = jax.lax.scan(body, x, (stacked, rates, keys), unroll=self.unroll)
    return outputs

  def clip_embedding(self, images):
    """CLIP's image embedding (ln_post of the class token, then proj): FaRL's own image feature."""
    x = self.tokens(images)
    for block in self.blocks:
      x = block(x)
    return layers.matmul(self.ln_post(x[:, 0]), self.proj[...], self.dtype)
