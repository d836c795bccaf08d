"""Every size of the Faceptor networks as an `ml_collections` config; the defaults are official.

Tests and the CPU demo shrink these (`tiny()`); configs under `configs/` start from `get()`.
"""

from __future__ import annotations

import ml_collections

from faceptor_jax import tasks


def get(variant: str = "faceptor") -> ml_collections.ConfigDict:
  """The official FaRL ViT-B/16 + decoder sizes. `variant`: 'faceptor' or 'naive'."""
  return ml_collections.ConfigDict({
      "variant": variant,
      # Matmul input dtype: 'float32', or 'bfloat16' on accelerators (float32 accumulation).
      "dtype": "float32",
      "image_size": dict(tasks.GROUP_IMAGE_SIZE),  # per resolution group
      "encoder": {"width": 768, "depth": 12, "heads": 12, "mlp_dim": 3072, "patch": 16,
                  "pos_grid": 32, "embed_dim": 512, "drop_path": 0.2,
                  # Drop-path draws per 'token' position shared by the batch (the official
                  # code: FaRL's blocks are sequence-first) or per 'example' (the paper's
                  # stochastic depth).
                  "drop_path_per": "token",
                  # Backward-pass recomputation (see vit.VisionTransformer; '' = none).
                  "remat": "dots_with_no_batch_dims_saveable"},
      "decoder": {"width": 256, "layers": 9, "heads": 8, "ffn_dim": 2048,
                  "levels": (12,), "new_levels": ()},
      "embedding_dim": 512,   # identity embedding
      # CosFace classifier rows are padded to a multiple of this to shard evenly (the trainer
      # sets it to the number of devices that share the classes).
      "classifier_multiple": 1,
      # Identities of the CosFace classifier; 0 = the task table's (93,431 for MS1MV3).
      "identities": 0,
      "naive": {"attr_layers": (6, 8, 10, 12), "dense_layers": (4, 6, 8, 12),
                "attr_channels": 128, "attr_hidden": 512, "uper_channels": 512,
                "pool_scales": (1, 2, 3, 6)},
  })


def tiny(variant: str = "faceptor") -> ml_collections.ConfigDict:
  """A few-second model for tests: same structure, tiny widths, small images."""
  cfg = get(variant)
  cfg.image_size = {tasks.SMALL: 32, tasks.LARGE: 64}
  cfg.encoder.update(width=32, depth=4, heads=2, mlp_dim=64, patch=8, pos_grid=8, embed_dim=16,
                     drop_path=0.1)
  cfg.decoder.update(width=16, layers=2, heads=2, ffn_dim=32, levels=(4,), new_levels=())
  cfg.embedding_dim = 16
  cfg.naive.update(attr_layers=(1, 2, 3, 4), dense_layers=(1, 2, 3, 4), attr_channels=8,
                   attr_hidden=16, uper_channels=16)
  return cfg
