"""data_pipelines.geometry: crop matrices, the tanh-warp, and image warps that agree with points."""

import cv2
import numpy as np
import pytest

from data_pipelines import geometry


def _dot_image(hw, center, sigma=1.5):
  """A black uint8 image with one bright Gaussian dot whose centre is `center` (x, y)."""
  ys, xs = np.mgrid[0:hw[0], 0:hw[1]]
  d2 = (xs - center[0]) ** 2 + (ys - center[1]) ** 2
  return np.round(255 * np.exp(-d2 / (2 * sigma ** 2))).astype(np.uint8)


def _dot_centre(image):
  """Intensity-weighted centre (x, y) of the 9x9 window around the brightest pixel."""
  image = image.astype(np.float64)
  y, x = np.unravel_index(np.argmax(image), image.shape)
  y0, x0 = max(y - 4, 0), max(x - 4, 0)
  window = image[y0:y + 5, x0:x + 5]
  ys, xs = np.mgrid[y0:y0 + window.shape[0], x0:x0 + window.shape[1]]
  return np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()


def _face_crop_matrix(size):
  crop = geometry.crop_resize_matrix((40.0, 30.0, 160.0, 150.0), size)
  return geometry.similarity_about_center(0.3, 1.1, (3.0, -4.0), size) @ crop


def test_crop_resize_matrix_maps_the_box_edges_onto_the_crop_edges():
  m = geometry.crop_resize_matrix((10.0, 20.0, 110.0, 70.0), 64)
  np.testing.assert_allclose(geometry.apply_matrix([[10.0, 20.0], [110.0, 70.0]], m),
                             [[-0.5, -0.5], [63.5, 63.5]])


@pytest.mark.parametrize("box", [(5, 5, 5, 20), (10, 10, 0, 20), (0, 0, np.nan, 5)])
def test_crop_resize_matrix_rejects_empty_boxes(box):
  with pytest.raises(ValueError, match="empty or not finite"):
    geometry.crop_resize_matrix(box, 64)


def test_resize_matrix_agrees_with_cv2_resize():
  image = _dot_image((160, 200), (73.3, 51.7), sigma=3.0)
  small = cv2.resize(image, (100, 80), interpolation=cv2.INTER_LINEAR)
  expected = geometry.apply_matrix([[73.3, 51.7]], geometry.resize_matrix((160, 200), (80, 100)))
  np.testing.assert_allclose(_dot_centre(small), expected[0], atol=0.15)


@pytest.mark.parametrize("warp_factor,point,in_band", [(0.0, (101.3, 77.6), False),
                                                       (0.8, (98.4, 97.2), False),
                                                       (0.8, (52.4, 138.2), True)])
def test_a_warped_dot_lands_where_its_point_goes(warp_factor, point, in_band):
  size = 96
  matrix = _face_crop_matrix(size)
  crop = geometry.warp_image(_dot_image((200, 240), point), matrix, size, warp_factor)
  expected = geometry.to_crop([point], matrix, warp_factor, size)[0]
  # The third dot lies in the tanh-squeezed band (|n| > 1 - 0.8), the others in the linear part.
  assert (np.abs(expected / size * 2 - 1).max() > 1 - warp_factor) == in_band
  np.testing.assert_allclose(_dot_centre(crop), expected, atol=0.5)


@pytest.mark.parametrize("warp_factor", [0.0, 0.8])
def test_to_original_inverts_to_crop(warp_factor):
  size = 128
  matrix = _face_crop_matrix(size)
  points = np.random.default_rng(0).uniform(0, 200, size=(50, 2))
  crop = geometry.to_crop(points, matrix, warp_factor, size)
  np.testing.assert_allclose(geometry.to_original(crop, matrix, warp_factor, size), points,
                             atol=1e-6)


def test_the_tanh_warp_is_identity_inside_and_squeezes_outside():
  size, matrix = 100, np.eye(3)
  # With factor 0.8 the linear part is |n| < 0.2, n = c / 100 * 2 - 1: c in (40, 60).
  np.testing.assert_allclose(geometry.to_crop([[45.0, 55.0]], matrix, 0.8, size), [[45.0, 55.0]])
  squeezed = geometry.to_crop([[30.0, 75.0]], matrix, 0.8, size)[0]
  assert 30.0 < squeezed[0] < 40.0 and 60.0 < squeezed[1] < 75.0  # pulled towards the centre
  far = geometry.to_crop([[-300.0, 900.0]], matrix, 0.8, size)  # far outside the crop ...
  assert (far >= 0).all() and (far <= size).all()  # ... still lands inside it


def test_warp_to_original_brings_a_tanh_warped_crop_back():
  yy, xx = np.mgrid[0:200, 0:240].astype(np.float64)
  image = (120 + 80 * np.sin(xx / 9.0) * np.cos(yy / 11.0)).astype(np.uint8)[..., None]
  matrix, size = _face_crop_matrix(192), 192
  crop = geometry.warp_image(image, matrix, size, 0.8)
  back = geometry.warp_to_original(crop.astype(np.float32), matrix, (200, 240), 0.8)
  assert back.shape == (200, 240, 1)
  diff = np.abs(back[60:120, 70:130, 0] - image[60:120, 70:130, 0])  # the well-sampled centre
  assert diff.mean() < 2.0


@pytest.mark.parametrize("channels", [1, 19])
def test_warp_to_original_keeps_the_channel_axis(channels):
  logits = np.random.default_rng(1).normal(size=(32, 32, channels)).astype(np.float32)
  for warp_factor in (0.0, 0.8):
    out = geometry.warp_to_original(logits, geometry.resize_matrix((50, 40), (32, 32)), (50, 40),
                                    warp_factor)
    assert out.shape == (50, 40, channels) and out.dtype == np.float32


def test_face_align_matrix_recovers_a_known_similarity():
  size = 256
  template = (geometry.FACE_TEMPLATE_5 + 1) * (size - 1) / 2
  known = geometry.similarity_about_center(-0.4, 0.7, (12.0, -5.0), size)
  face_points = geometry.apply_matrix(template, np.linalg.inv(known))
  matrix = geometry.face_align_matrix(face_points, size)
  np.testing.assert_allclose(matrix, known, atol=1e-9)
  np.testing.assert_allclose(geometry.apply_matrix(face_points, matrix), template, atol=1e-9)


def test_similarity_fit_is_the_least_squares_fit_without_reflection():
  rng = np.random.default_rng(2)
  src = rng.uniform(0, 100, size=(5, 2))
  mirrored = src * [-1, 1]  # a reflection cannot be fitted by a similarity
  m = geometry.similarity_fit(src, mirrored)
  assert np.linalg.det(m[:2, :2]) > 0
  with pytest.raises(ValueError, match="degenerate"):
    geometry.similarity_fit(np.ones((5, 2)), src)


def test_apply_matrix_broadcasts_over_a_batch():
  points = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
  matrices = np.stack([np.eye(3), geometry.resize_matrix((10, 10), (20, 20))])
  out = geometry.apply_matrix(points, matrices)
  np.testing.assert_allclose(out[0], points[0])
  np.testing.assert_allclose(out[1], points[1] * 2 + 0.5)
