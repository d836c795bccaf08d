"""Horizontal flip of landmark sets: mirror x and swap left/right points (DATASETS.md section 16).

`new[i] = old[PERMUTATIONS[K][i]]` after mirroring; every table is an involution and agrees with
HRNet's MATCHED_PARTS (68, 98, 29, 19) and PIPNet's `points_flip` (106, LaPa). Faceptor itself
never flips landmark tasks; this serves the optional flip augmentation and flip tests.
"""

from __future__ import annotations

import numpy as np

PERMUTATIONS = {
    68: (16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 26, 25, 24, 23, 22, 21, 20, 19,
         18, 17, 27, 28, 29, 30, 35, 34, 33, 32, 31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41,
         40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65),
    98: (32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
         10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33,
         41, 40, 39, 38, 51, 52, 53, 54, 59, 58, 57, 56, 55, 72, 71, 70, 69, 68, 75, 74, 73, 64,
         63, 62, 61, 60, 67, 66, 65, 82, 81, 80, 79, 78, 77, 76, 87, 86, 85, 84, 83, 92, 91, 90,
         89, 88, 95, 94, 93, 97, 96),
    29: (1, 0, 3, 2, 6, 7, 4, 5, 9, 8, 11, 10, 14, 15, 12, 13, 17, 16, 19, 18, 20, 21, 23, 22,
         24, 25, 26, 27, 28),
    19: (5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 14, 13, 12, 17, 16, 15, 18),
    106: tuple(range(32, -1, -1)) + (
        46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40, 39, 38,
        51, 52, 53, 54, 65, 64, 63, 62, 61, 60, 59, 58, 57, 56, 55,
        79, 78, 77, 76, 75, 82, 81, 80, 83, 70, 69, 68, 67, 66, 73, 72, 71, 74,
        90, 89, 88, 87, 86, 85, 84, 95, 94, 93, 92, 91,
        100, 99, 98, 97, 96, 103, 102, 101, 105, 104),
}


def flip_landmarks(points: np.ndarray, width: int) -> np.ndarray:
  """Points [K, 2] of an image of `width` pixels -> the points of its mirror image, reordered so
  that index i still names the same facial point (x -> width - 1 - x, pixel centres at integers)."""
  points = np.asarray(points)
  count = points.shape[0]
  if count not in PERMUTATIONS:
    raise ValueError(f"no left/right table for {count} landmarks; known: {sorted(PERMUTATIONS)}")
  flipped = points[list(PERMUTATIONS[count])].copy()
  flipped[:, 0] = width - 1 - flipped[:, 0]
  return flipped
