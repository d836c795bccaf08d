"""data_pipelines.landmark_flip: mirror tables for 68, 98, 29, 19 and 106 points."""

import numpy as np
import pytest

from data_pipelines import landmark_flip


@pytest.mark.parametrize("count", sorted(landmark_flip.PERMUTATIONS))
def test_tables_are_involutive_permutations(count):
  perm = np.array(landmark_flip.PERMUTATIONS[count])
  assert sorted(perm.tolist()) == list(range(count))
  np.testing.assert_array_equal(perm[perm], np.arange(count))


def test_flip_mirrors_and_swaps_left_and_right():
  points = np.random.default_rng(0).uniform(0, 100, size=(68, 2))
  flipped = landmark_flip.flip_landmarks(points, width=100)
  # The outer eye corners 36 and 45 trade places; the nose tip 30 stays, mirrored.
  np.testing.assert_allclose(flipped[36], [99 - points[45, 0], points[45, 1]])
  np.testing.assert_allclose(flipped[30], [99 - points[30, 0], points[30, 1]])
  np.testing.assert_allclose(landmark_flip.flip_landmarks(flipped, width=100), points)


def test_a_flipped_image_holds_each_point_where_the_flipped_points_say():
  image = np.zeros((20, 30), np.uint8)
  points = np.array([[3.0, 4.0], [25.0, 9.0]] + [[15.0, 10.0]] * 17)  # 19 points (AFLW)
  image[4, 3], image[9, 25] = 1, 2
  mirrored = image[:, ::-1]
  flipped = landmark_flip.flip_landmarks(points, width=30)
  # AFLW point 0 (a brow end) becomes point 5, point 1 becomes point 4.
  assert mirrored[int(flipped[5, 1]), int(flipped[5, 0])] == 1
  assert mirrored[int(flipped[4, 1]), int(flipped[4, 0])] == 2


def test_unknown_point_count_is_a_clear_error():
  with pytest.raises(ValueError, match="no left/right table for 7 landmarks"):
    landmark_flip.flip_landmarks(np.zeros((7, 2)), width=10)
