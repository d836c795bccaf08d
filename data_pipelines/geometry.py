"""Coordinate geometry of the dense-task crops: 3x3 matrices, the tanh-warp, warps, inverses.

Conventions are FaRL's (py-blueprint `augmenters/transform.py`), so converted checkpoints see the
crops they were trained on:
  * pixel centres sit at integer coordinates (`align_corners=False`): pixel (0, 0) covers
    [-0.5, 0.5]^2, and an image of width W spans [-0.5, W - 0.5];
  * a "to-crop" matrix is 3x3 and maps (x, y, 1) in the original image to the aligned crop;
  * the tanh-warp (Lin et al., CVPR 2019, "RoI tanh-warping") acts after the matrix, per axis, on
    coordinates normalised as n = c / S * 2 - 1 (exactly blueprint's formula, which is not
    centred on pixel centres: it is kept for parity). Inside |n| < 1 - w the map is the identity;
    beyond it, the band is squeezed by tanh so the whole plane fits into [0, S].

Points go forward (`to_crop`: matrix, then tanh) and back (`to_original`: arctanh, then the inverse
matrix). Images are warped by sampling the source at `to_original` of every crop pixel; label maps
and logits go back by sampling the crop at `to_crop` of every original pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

# FaRL's 5-point face template (eye centres, nose tip, mouth corners) in [-1, 1] (x, y); it is
# scaled to the crop by (p + 1) * (S - 1) / 2 (blueprint `GetFaceAlignMatrix`).
FACE_TEMPLATE_5 = np.array([[196.0, 226.0], [316.0, 226.0], [256.0, 286.0],
                            [220.0, 360.4], [292.0, 360.4]], np.float64) / 256.0 - 1.0

# blueprint clips the arctanh argument here so crop pixels in the outermost band stay finite.
_ARCTANH_LIMIT = 0.999


# --- matrices ---------------------------------------------------------------------------------

def crop_resize_matrix(box, size: int) -> np.ndarray:
  """The to-crop matrix that maps the box (x0, y0, x1, y1), given by its pixel edges, onto an
  S x S crop (align_corners=False: x -> (x - x0) / (x1 - x0) * S - 0.5)."""
  x0, y0, x1, y1 = (float(v) for v in box)
  if not (x1 > x0 and y1 > y0 and np.isfinite([x0, y0, x1, y1]).all()):
    raise ValueError(f"crop box (x0, y0, x1, y1) = {box!r} is empty or not finite")
  ax, ay = size / (x1 - x0), size / (y1 - y0)
  return np.array([[ax, 0.0, -x0 * ax - 0.5],
                   [0.0, ay, -y0 * ay - 0.5],
                   [0.0, 0.0, 1.0]])


def resize_matrix(from_hw, to_hw) -> np.ndarray:
  """The to-crop matrix of a plain resize H x W -> h x w (align_corners=False, as cv2.resize)."""
  (fh, fw), (th, tw) = from_hw[:2], to_hw[:2]
  sx, sy = tw / fw, th / fh
  return np.array([[sx, 0.0, 0.5 * sx - 0.5],
                   [0.0, sy, 0.5 * sy - 0.5],
                   [0.0, 0.0, 1.0]])


def similarity_about_center(angle: float, scale: float, shift_xy, size: int) -> np.ndarray:
  """Rotation by `angle` (radians) and scaling about the crop centre ((S-1)/2, (S-1)/2), then a
  shift in crop pixels (blueprint `_compose_rotate_and_scale` with equal from/to shapes)."""
  c = (size - 1) / 2.0
  cos, sin = scale * np.cos(angle), scale * np.sin(angle)
  return np.array([[cos, -sin, c - cos * c + sin * c + shift_xy[0]],
                   [sin, cos, c - sin * c - cos * c + shift_xy[1]],
                   [0.0, 0.0, 1.0]])


def similarity_fit(src, dst) -> np.ndarray:
  """The least-squares similarity (rotation, uniform scale, shift; no reflection) taking points
  `src` [N, 2] onto `dst` [N, 2] (Umeyama 1991, as skimage's SimilarityTransform.estimate)."""
  src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
  src_mean, dst_mean = src.mean(0), dst.mean(0)
  src_c, dst_c = src - src_mean, dst - dst_mean
  src_var = (src_c ** 2).sum(1).mean()
  if not np.isfinite(src).all() or src_var < 1e-12:
    raise ValueError(f"cannot fit a similarity to degenerate points {src.tolist()}")
  u, sv, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
  d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
  rotation = u @ np.diag(d) @ vt
  scale = (sv * d).sum() / src_var
  m = np.eye(3)
  m[:2, :2] = scale * rotation
  m[:2, 2] = dst_mean - scale * rotation @ src_mean
  return m


def face_align_matrix(points5, size: int) -> np.ndarray:
  """The to-crop matrix that aligns 5 face points (eyes, nose tip, mouth corners) to FaRL's
  template scaled to an S x S crop (blueprint `GetFaceAlignMatrix`, target_face_scale 1)."""
  target = (FACE_TEMPLATE_5 + 1.0) * (size - 1) / 2.0
  return similarity_fit(points5, target)


def apply_matrix(points, matrix) -> np.ndarray:
  """(x, y) points [..., K, 2] through 3x3 matrices [..., 3, 3] (homogeneous divide included)."""
  points = np.asarray(points, np.float64)
  matrix = np.asarray(matrix, np.float64)
  out = np.einsum("...ij,...kj->...ki", matrix[..., :, :2], points) + matrix[..., None, :, 2]
  return out[..., :2] / out[..., 2:3]


# --- the tanh-warp, per axis --------------------------------------------------------------------

def _tanh_squeeze(n: np.ndarray, w: float) -> np.ndarray:
  """Normalised unwarped -> warped coordinate (blueprint `_inverted_tanh_warp_transform`)."""
  out = n.copy()
  hi, lo = n > 1.0 - w, n < -1.0 + w
  out[hi] = np.tanh((n[hi] - 1.0 + w) / w) * w + 1.0 - w
  out[lo] = np.tanh((n[lo] + 1.0 - w) / w) * w - 1.0 + w
  return out


def _tanh_unsqueeze(n: np.ndarray, w: float) -> np.ndarray:
  """Normalised warped -> unwarped coordinate (blueprint `_tanh_warp_transform`)."""
  out = n.copy()
  hi, lo = n > 1.0 - w, n < -1.0 + w
  lim = _ARCTANH_LIMIT
  out[hi] = np.arctanh(np.clip((n[hi] - 1.0 + w) / w, -lim, lim)) * w + 1.0 - w
  out[lo] = np.arctanh(np.clip((n[lo] + 1.0 - w) / w, -lim, lim)) * w - 1.0 + w
  return out


def _warp_axis(c: np.ndarray, size: int, warp_factor: float, inverse: bool) -> np.ndarray:
  n = c / size * 2.0 - 1.0
  n = _tanh_unsqueeze(n, warp_factor) if inverse else _tanh_squeeze(n, warp_factor)
  return (n + 1.0) / 2.0 * size


def to_crop(points, matrix, warp_factor: float = 0.0, size: int | None = None) -> np.ndarray:
  """Original-image points [..., K, 2] -> crop pixels: the to-crop matrix, then the tanh-warp."""
  out = apply_matrix(points, matrix)
  if warp_factor > 0:
    out = _warp_axis(out, size, warp_factor, inverse=False)
  return out


def to_original(points, matrix, warp_factor: float = 0.0, size: int | None = None) -> np.ndarray:
  """Crop pixels [..., K, 2] -> original-image points: undo the tanh-warp, then the inverse of the
  to-crop matrix (the exact inverse of `to_crop`)."""
  points = np.asarray(points, np.float64)
  if warp_factor > 0:
    points = _warp_axis(points, size, warp_factor, inverse=True)
  return apply_matrix(points, np.linalg.inv(np.asarray(matrix, np.float64)))


# --- images -------------------------------------------------------------------------------------

def warp_image(image: np.ndarray, matrix, size: int, warp_factor: float = 0.0,
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
  """The S x S crop of `image` under a to-crop matrix (and tanh-warp), border 0."""
  return warp_images([image], [interpolation], matrix, size, warp_factor)[0]


def warp_images(images, interpolations, matrix, size: int, warp_factor: float = 0.0) -> list:
  """The S x S crops of several arrays of one image (e.g. the image bilinearly and its label map
  with nearest neighbours) under one to-crop matrix and tanh-warp, border 0.

  Every crop pixel samples the source at `to_original` of its centre. The tanh-warp is separable
  (it acts per axis before the affine inverse), so the sampling maps are two 1-D warps broadcast
  through the affine part, built once for all the arrays.
  """
  matrix = np.asarray(matrix, np.float64)
  if warp_factor <= 0:
    warped = [cv2.warpAffine(image, matrix[:2], (size, size), flags=interpolation,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
              for image, interpolation in zip(images, interpolations)]
  else:
    axis = _warp_axis(np.arange(size, dtype=np.float64), size, warp_factor, inverse=True)
    inv = np.linalg.inv(matrix)
    map_x = (inv[0, 0] * axis[None, :] + inv[0, 1] * axis[:, None] + inv[0, 2]).astype(np.float32)
    map_y = (inv[1, 0] * axis[None, :] + inv[1, 1] * axis[:, None] + inv[1, 2]).astype(np.float32)
    warped = [cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0) for image, interpolation in zip(images, interpolations)]
  # cv2 drops a trailing channel axis of 1: restore the input's trailing shape.
  return [out.reshape(size, size, *image.shape[2:]) for out, image in zip(warped, images)]


def warp_to_original(crop: np.ndarray, matrix, original_hw, warp_factor: float = 0.0,
                     interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
  """Maps a crop [S, S, ...] (e.g. logits) back onto the original H x W image, border 0: every
  original pixel samples the crop at `to_crop` of its centre (blueprint GetInvertedTransformMap)."""
  h, w = (int(v) for v in original_hw[:2])
  size = crop.shape[0]
  matrix = np.asarray(matrix, np.float64)
  if crop.dtype == np.float64:  # cv2 warps float32 / uint8; logits do not need float64
    crop = crop.astype(np.float32)
  if warp_factor <= 0:
    out = cv2.warpAffine(crop, matrix[:2], (w, h), flags=interpolation | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(h, w, *crop.shape[2:])  # cv2 drops a trailing channel axis of 1
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
  map_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
  map_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
  map_x = _warp_axis(map_x, size, warp_factor, inverse=False).astype(np.float32)
  map_y = _warp_axis(map_y, size, warp_factor, inverse=False).astype(np.float32)
  out = cv2.remap(crop, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT,
                  borderValue=0)
  return out.reshape(h, w, *crop.shape[2:])  # cv2 drops a trailing channel axis of 1
