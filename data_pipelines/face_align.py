"""ArcFace 5-point face alignment: the least-squares similarity that takes five landmarks (left eye,
right eye, nose tip, left and right mouth corner) onto the ArcFace template, and the warp with it.

This is insightface's `norm_crop` (`estimate_norm` + `cv2.warpAffine`, used by `eval_ijbc.py` and
for the aligned face sets): the transform is skimage's `SimilarityTransform.estimate`, i.e.
Umeyama's least-squares rotation + uniform scale + translation (no reflection). In 2-D that
problem has a closed form in complex numbers: with centred points s_k, d_k as x + iy, the optimum
is d = a s + t with a = sum(conj(s_k) d_k) / sum(|s_k|^2), the same optimum Umeyama's SVD reaches.

Template sizes follow insightface: a multiple of 112 scales the 112-px template; a multiple of 128
(not of 112) scales it by size/128 and shifts x by 8 * size/128; any other size scales by size/112.
"""

from __future__ import annotations

import numpy as np
import cv2

# ArcFace's five points in a 112x112 crop (x, y).
ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                                 [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def template(size: int = 112) -> np.ndarray:
  """The ArcFace template, float64 [5, 2], for a `size` x `size` output."""
  if size % 112 != 0 and size % 128 == 0:
    ratio = size / 128.0
    return ARCFACE_TEMPLATE_112 * ratio + [8.0 * ratio, 0.0]
  return ARCFACE_TEMPLATE_112 * (size / 112.0)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """The 2x3 matrix [[a, -b, tx], [b, a, ty]] (float64) of the similarity that maps the points
  `src` [N, 2] onto `dst` [N, 2] with the least squared error."""
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
    raise ValueError(f"need two [N >= 2, 2] point arrays, got {src.shape} and {dst.shape}")
  if not (np.isfinite(src).all() and np.isfinite(dst).all()):
    raise ValueError(f"landmarks must be finite, got {src.tolist()}")
  zs, zd = src @ [1, 1j], dst @ [1, 1j]
  zs_mean, zd_mean = zs.mean(), zd.mean()
  zs, zd = zs - zs_mean, zd - zd_mean
  spread = np.sum(np.abs(zs) ** 2)
  if spread <= 1e-12 * max(1.0, np.abs(zs_mean) ** 2):
    raise ValueError(f"landmarks are degenerate (all at one point): {src.tolist()}")
  a = np.sum(np.conj(zs) * zd) / spread
  t = zd_mean - a * zs_mean
  return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def align(image: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
  """(aligned image [size, size, C] of the input's dtype, 2x3 float64 matrix original -> aligned
  pixels). Bilinear, border 0, as insightface's `norm_crop`."""
  landmarks5 = np.asarray(landmarks5, np.float64)
  if landmarks5.shape != (5, 2):
    raise ValueError(f"need 5 landmarks [5, 2] (eyes, nose, mouth corners), got {landmarks5.shape}")
  matrix = estimate_similarity(landmarks5, template(size))
  aligned = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  return aligned, matrix
