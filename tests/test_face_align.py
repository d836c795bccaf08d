"""ArcFace 5-point alignment: exact recovery of a known similarity, least-squares optimum on noisy
points, no reflection, template scaling, and the warp putting the landmarks on the template."""

import cv2
import numpy as np
import pytest

from data_pipelines import face_align


def similarity(scale, angle, tx, ty):
  c, s = scale * np.cos(angle), scale * np.sin(angle)
  return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix, points):
  return points @ matrix[:, :2].T + matrix[:, 2]


def test_recovers_a_known_similarity_exactly():
  known = similarity(0.37, np.deg2rad(-23.0), 41.5, -7.25)  # original -> aligned
  inverse = cv2.invertAffineTransform(known)
  landmarks = apply(inverse, face_align.template(112))       # where the face sits in the original
  estimated = face_align.estimate_similarity(landmarks, face_align.template(112))
  np.testing.assert_allclose(estimated, known, atol=1e-9)


def test_least_squares_optimum_on_noisy_points():
  rng = np.random.default_rng(0)
  src = rng.uniform(0, 200, (5, 2))
  dst = apply(similarity(0.6, 0.4, 10, 20), src) + rng.normal(0, 3, (5, 2))
  # the same problem as a linear least squares over (a, b, tx, ty): x' = a x - b y + tx, ...
  rows = np.concatenate([np.stack([src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)], 1),
                         np.stack([src[:, 1], src[:, 0], np.zeros(5), np.ones(5)], 1)])
  (a, b, tx, ty), *_ = np.linalg.lstsq(rows, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)
  np.testing.assert_allclose(face_align.estimate_similarity(src, dst),
                             [[a, -b, tx], [b, a, ty]], atol=1e-9)


def test_mirrored_landmarks_give_no_reflection():
  mirrored = face_align.template(112) * [-1, 1] + [112, 0]  # left and right swapped
  matrix = face_align.estimate_similarity(mirrored, face_align.template(112))
  assert np.linalg.det(matrix[:, :2]) > 0


def test_template_sizes_follow_insightface():
  np.testing.assert_allclose(face_align.template(112)[0], [38.2946, 51.6963])
  np.testing.assert_allclose(face_align.template(224), face_align.template(112) * 2)
  # 128: the 112 template in a 128 frame, x shifted by 8
  np.testing.assert_allclose(face_align.template(128)[0], [46.2946, 51.6963])
  np.testing.assert_allclose(face_align.template(64), face_align.template(112) * 64 / 112)


def test_align_puts_the_landmarks_on_the_template():
  landmarks = np.array([[60, 70], [100, 62], [84, 92], [66, 118], [102, 112]], np.float64)
  image = np.zeros((180, 160, 3), np.uint8)
  for channel, (x, y) in zip((0, 1, 2), landmarks):  # eyes and nose: one colour each
    cv2.circle(image, (int(x), int(y)), 3, [255 if c == channel else 0 for c in range(3)], -1)
  aligned, matrix = face_align.align(image, landmarks, 112)
  assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
  assert matrix.shape == (2, 3)
  mapped = apply(matrix, landmarks)
  residual = np.sqrt(((mapped - face_align.template(112)) ** 2).sum(1))
  assert residual.max() < 4  # a least-squares fit of a hand-placed face: close, not exact
  # each dot of the image lands where the matrix sends its landmark
  for channel, point in zip((0, 1, 2), mapped[:3]):
    ys, xs = np.nonzero(aligned[..., channel] > 128)
    assert len(xs) and np.hypot(xs.mean() - point[0], ys.mean() - point[1]) < 1.5


def test_bad_landmarks_raise():
  with pytest.raises(ValueError, match="degenerate"):
    face_align.estimate_similarity(np.ones((5, 2)), face_align.template())
  with pytest.raises(ValueError, match="finite"):
    face_align.estimate_similarity(np.full((5, 2), np.nan), face_align.template())
  with pytest.raises(ValueError, match=r"\[5, 2\]"):
    face_align.align(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 2)))
