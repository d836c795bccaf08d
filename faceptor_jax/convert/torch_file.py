"""Reads a PyTorch `.pth` / `.pth.tar` checkpoint into `{key: numpy array}` (needs the torch extra).

`torch.load(..., weights_only=True)` never runs code from the file; the official Faceptor and FaRL
checkpoints load that way. This module is the only place the project imports torch outside tests.
"""

from __future__ import annotations

import numpy as np


def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """The checkpoint's state dict (under `state_dict` when wrapped, as the official files are)."""
  try:
    import torch
  except ImportError:
    raise SystemExit("reading .pth files needs torch: pip install 'faceptor-jax[torch]'") from None
  obj = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
    obj = obj["state_dict"]
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: not a state dict (got {type(obj).__name__})")
  out = {}
  for key, value in obj.items():
    if torch.is_tensor(value):
      out[key] = value.detach().cpu().numpy()
  return out
