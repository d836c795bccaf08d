"""The parametric face: determinism, landmark layouts against the official flip tables and
against each other, landmarks on the drawn parts, part masks, labels, learnability, speed."""

import time

import cv2
import numpy as np
import pytest

from data_pipelines import landmark_flip
from data_pipelines import synthetic_face as sf
from faceptor_jax import tasks

LAYOUTS = (68, 98, 106, 29, 19, 5)
HEAD_AND_SHOULDERS = sf.ARCFACE_TEMPLATE * 0.8 + np.float32([20, 10])  # in a 128 x 200 image


def face(seed, size=112, **look):
  rng = np.random.default_rng(seed)
  identity = sf.sample_identity(rng)
  look = sf.sample_look(rng, identity, **look)
  g = sf.Geometry(identity, look)
  return sf.render(identity, look, sf.aligned_matrix(g, sf.ARCFACE_TEMPLATE * size / 112),
                   (size, size), keep_extents=True)


def plain_face(seed, **look):
  """Frontal, nothing in front of the features: every landmark must sit on its part."""
  rng = np.random.default_rng(seed)
  identity = sf.sample_identity(rng, bangs=False, hair_style="short", sideburns=False)
  fixed = dict(yaw=0.0, pitch=0.0, glasses=False, hat=False, blur=0.0, expression=0)
  fixed.update(look)
  look = sf.sample_look(rng, identity, **fixed)
  g = sf.Geometry(identity, look)
  return sf.render(identity, look, sf.placed_matrix(g, 140, (96, 100)), (192, 192))


def distance_to_class(parts, points, classes):
  """Per point, the distance in pixels to the nearest pixel of `classes`."""
  outside = (~np.isin(parts, classes)).astype(np.uint8)
  distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
  xy = np.round(points).astype(int)
  return distance[xy[:, 1], xy[:, 0]]


def test_deterministic():
  a, b, c = face(3), face(3), face(4)
  assert np.array_equal(a.image, b.image) and np.array_equal(a.parts, b.parts)
  assert not np.array_equal(a.image, c.image)
  for k in LAYOUTS:
    assert np.array_equal(a.landmarks(k), b.landmarks(k))


@pytest.mark.parametrize("expression", [0, 1, 3])
def test_layouts_mirror_by_the_official_flip_tables(expression):
  # A face without yaw and with a symmetric expression is its own mirror image, so mirroring x
  # and reordering by the dataset's left/right table must give the same points: this checks
  # every layout's point order against DATASETS.md 16.
  identity = sf.sample_identity(np.random.default_rng(expression), mole=None)
  look = sf.sample_look(np.random.default_rng(9), identity, expression=expression, yaw=0.0,
                        pitch=0.0)
  g = sf.Geometry(identity, look)
  for k in LAYOUTS:
    points = sf.canonical_landmarks(g, k)
    assert points.shape == (k, 2)
    order = [1, 0, 2, 4, 3] if k == 5 else list(landmark_flip.PERMUTATIONS[k])
    np.testing.assert_allclose(points[order] * [-1, 1], points, atol=1e-9, err_msg=f"{k} points")


def test_layouts_share_their_common_points():
  r = face(5, yaw=0.3, pitch=0.1, expression=1)
  p68, p98, p106, p29, p19, p5 = (r.landmarks(k) for k in LAYOUTS)
  close = lambda a, b: np.testing.assert_allclose(a, b, atol=1e-3)  # noqa: E731
  close(p98[:33:2], p68[:17])                        # the jaw: 33 points through the 17
  close(p106[:33], p98[:33])
  close(p98[[60, 64, 68, 72]], p68[[36, 39, 42, 45]])  # eye corners
  close(p98[76:96], p68[48:68])                      # the mouth
  close(p106[84:104], p68[48:68])
  close(p98[[96, 97]], p106[[104, 105]])              # pupils
  close(p5, p106[[104, 105, 54, 84, 90]])             # LaPa's alignment points are the 5
  close(p29[[8, 9, 10, 11]], p68[[36, 45, 39, 42]])
  close(p19[[6, 8, 9, 11]], p68[[36, 39, 42, 45]])
  close(p19[[7, 10]], p5[:2])
  close(p19[18], p68[8])                              # chin


def test_aligned_faces_land_on_the_template():
  r = face(6, yaw=0.0, pitch=0.0, expression=0)
  np.testing.assert_allclose(r.landmarks(5), sf.ARCFACE_TEMPLATE, atol=4.0)
  # turned: the 5 points are still aligned in the least-squares sense, and the inner face is
  # inside the crop (the chin may be cut, as in real 112-px crops)
  points = face(6).landmarks(68)[17:]
  assert points.min() >= 0 and points.max() <= 111
  for k in LAYOUTS:  # a face placed in a picture is inside it whole
    points = plain_face(7, yaw=0.4, expression=3).landmarks(k)
    assert points.min() >= 0 and points.max() <= 191, k


@pytest.mark.parametrize("seed,expression", [(10, 0), (11, 1), (12, 3), (13, 6)])
def test_landmarks_lie_on_their_parts(seed, expression):
  r = plain_face(seed, expression=expression)
  p = r.landmarks(68)
  def on(idx, classes, tol=1.5):
    return distance_to_class(r.parts, p[idx], classes).max() <= tol
  assert on(slice(36, 42), [sf.L_EYE]) and on(slice(42, 48), [sf.R_EYE])
  assert on(slice(17, 22), [sf.L_BROW]) and on(slice(22, 27), [sf.R_BROW])
  assert on(slice(48, 60), [sf.U_LIP, sf.L_LIP]) and on(slice(27, 36), [sf.NOSE], 2.0)
  # the eyes' middles are inside the eyes, the nose tip inside the nose
  centre = lambda idx: np.round(p[idx].mean(0)).astype(int)  # noqa: E731
  assert r.parts[tuple(centre(slice(36, 42))[::-1])] == sf.L_EYE
  assert r.parts[tuple(centre(slice(42, 48))[::-1])] == sf.R_EYE
  assert r.parts[tuple(np.round(p[30]).astype(int)[::-1])] == sf.NOSE
  # the jaw line is the face's edge: skin on one side, something else on the other (its ends,
  # at the temples, may be under the hair as in real photos)
  assert distance_to_class(r.parts, p[1:16], [sf.SKIN]).max() <= 1.5
  assert distance_to_class(r.parts, p[1:16], [sf.BACKGROUND, sf.NECK, sf.HAIR, sf.L_EAR,
                                               sf.R_EAR, sf.CLOTH]).max() <= 2.0
  assert r.visible(68)[17:].all()
  # the 106 and 98 pupils are inside the eyes
  for k, (a, b) in ((98, (96, 97)), (106, (104, 105))):
    xy = np.round(r.landmarks(k)[[a, b]]).astype(int)
    assert list(r.parts[xy[:, 1], xy[:, 0]]) == [sf.L_EYE, sf.R_EYE]


def test_mouth_opens_with_the_expression():
  closed, open_ = plain_face(20, expression=0), plain_face(20, expression=3)
  assert not (closed.parts == sf.MOUTH).any() and (open_.parts == sf.MOUTH).sum() > 50
  p = open_.landmarks(68)
  assert p[66, 1] - p[62, 1] > 5  # inner lips apart


def test_parts_and_masks():
  rng = np.random.default_rng(1)
  identity = sf.sample_identity(rng, hair_style="long", bangs=True)
  look = sf.sample_look(rng, identity, glasses=True, hat=True, earrings=True, necklace=True,
                        yaw=0.0, expression=3)
  g = sf.Geometry(identity, look)
  r = sf.render(identity, look, sf.aligned_matrix(g, HEAD_AND_SHOULDERS), (128, 200),
                keep_extents=True)
  # every class but the eyes, which are behind the lenses
  assert set(np.unique(r.parts)) == set(range(19)) - {sf.L_EYE, sf.R_EYE}
  # CelebAMask-HQ's masks painted in id order, later on top, give back the class map exactly
  masks = r.celebam_masks()
  assert set(masks) <= set(sf.CELEBAM_PARTS)
  painted = np.zeros_like(r.parts)
  for class_id, part in enumerate(sf.CELEBAM_PARTS, 1):
    if part in masks:
      painted[masks[part]] = class_id
  np.testing.assert_array_equal(painted, r.parts)
  # skin runs under the eyes and the glasses (masks overlap, as the real ones do)
  assert (masks["skin"] & (r.parts == sf.GLASSES)).any()
  # LaPa's classes: 11 ids, ears with the skin, no neck/cloth/accessories
  lapa = r.lapa_parts()
  assert lapa.max() <= 10 and (lapa[r.parts == sf.NECK] == 0).all()
  assert (lapa[r.parts == sf.U_LIP] == 7).all() and (lapa[r.parts == sf.MOUTH] == 8).all()



def test_hidden_points_are_not_visible():
  rng = np.random.default_rng(2)
  identity = sf.sample_identity(rng)
  look = sf.sample_look(rng, identity, yaw=0.0, occluder=(0.0, 0.78, 0.5, 0.3, 10, 200, 10))
  g = sf.Geometry(identity, look)
  r = sf.render(identity, look, sf.placed_matrix(g, 120, (80, 80)), (160, 160))
  visible = r.visible(29)
  assert not visible[22:28].any()  # the mouth is behind the object
  assert visible[8:12].all()       # the eye corners are not


def test_celeba_attributes_follow_the_drawing():
  rng = np.random.default_rng(3)
  identity = sf.sample_identity(rng, male=True, beard="goatee", hair_style="short",
                                hair_colour="black", grey_onset=45.0)
  look = sf.sample_look(rng, identity, age=25.0, expression=1, glasses=True, hat=False)
  a = sf.celeba_attributes(identity, look)
  assert list(a) == list(tasks.CELEBA_ATTRIBUTES)
  assert a["Male"] and a["Goatee"] and not a["No_Beard"] and a["Smiling"] and a["Eyeglasses"]
  assert a["Black_Hair"] and not a["Gray_Hair"] and a["Young"] and a["Mouth_Slightly_Open"]
  old = sf.celeba_attributes(identity, sf.sample_look(rng, identity, age=75.0))
  assert old["Gray_Hair"] and not old["Black_Hair"] and not old["Young"]


def mean_f1(predicted, truth):
  """Mean per-class pixel F1 over the classes in the ground truth."""
  scores = []
  for c in np.unique(truth):
    tp = np.sum((predicted == c) & (truth == c))
    scores.append(2 * tp / (np.sum(predicted == c) + np.sum(truth == c)))
  return float(np.mean(scores))


def test_tasks_are_learnable_by_simple_models():
  """Ridge regression on 16x16 grey pixels of 64-px aligned faces beats each trivial baseline:
  expression (majority class), age (mean age), glasses (majority) and 68-point landmarks (mean
  shape); a per-pixel decision tree beats the per-position prior on parsing; identities are told
  apart by nearest neighbour far above chance."""
  from sklearn.linear_model import Ridge, RidgeClassifier
  from sklearn.neighbors import KNeighborsClassifier
  rng = np.random.default_rng(0)
  features, expression, age, glasses, points = [], [], [], [], []
  for k in range(280):
    identity = sf.sample_identity(rng)
    look = sf.sample_look(rng, identity, expression=k % 7, blur=0.0, hat=False)
    g = sf.Geometry(identity, look)
    r = sf.render(identity, look, sf.aligned_matrix(g, sf.ARCFACE_TEMPLATE * 64 / 112, rng, 0.03),
                  (64, 64))
    grey = cv2.cvtColor(r.image, cv2.COLOR_RGB2GRAY)
    features.append(cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) / 255)
    expression.append(k % 7)
    age.append(look.age)
    glasses.append(look.glasses)
    points.append(r.landmarks(68).reshape(-1))
  x, expression, age, glasses, points = map(np.array, (features, expression, age, glasses, points))
  train, test = slice(0, 200), slice(200, None)
  accuracy = RidgeClassifier(alpha=1.0).fit(x[train], expression[train]).score(x[test],
                                                                             expression[test])
  assert accuracy > 0.45  # chance 1/7
  mae = np.abs(Ridge(alpha=1.0).fit(x[train], age[train]).predict(x[test]) - age[test]).mean()
  assert mae < 0.85 * np.abs(age[train].mean() - age[test]).mean()
  accuracy = RidgeClassifier(alpha=1.0).fit(x[train], glasses[train]).score(x[test], glasses[test])
  assert accuracy > max(glasses[test].mean(), 1 - glasses[test].mean()) + 0.05
  predicted = Ridge(alpha=1.0).fit(x[train], points[train]).predict(x[test]).reshape(-1, 68, 2)
  truth = points[test].reshape(-1, 68, 2)
  error = np.linalg.norm(predicted - truth, axis=2).mean()
  assert error < 0.8 * np.linalg.norm(points[train].mean(0).reshape(68, 2) - truth, axis=2).mean()

  # parsing (LaPa-like faces placed anywhere in the picture): a decision tree on each pixel's
  # colour and position against the most frequent class at each position, scored by the mean
  # F1 over the classes present (DATASETS.md 17.4)
  from sklearn.tree import DecisionTreeClassifier
  pixels, labels = [], []
  ys, xs = np.mgrid[0:32, 0:32]
  for k in range(24):
    identity = sf.sample_identity(rng)
    look = sf.sample_look(rng, identity, blur=0.0, glasses=False, hat=False)
    g = sf.Geometry(identity, look)
    centre = 16 + rng.uniform(-5, 5, 2)
    r = sf.render(identity, look, sf.placed_matrix(g, rng.uniform(16, 22), centre,
                                                   rng.uniform(-0.4, 0.4)), (32, 32))
    pixels.append(np.concatenate([r.image.reshape(-1, 3), xs.reshape(-1, 1), ys.reshape(-1, 1)],
                                 axis=1))
    labels.append(r.lapa_parts().reshape(-1))
  pixels, labels = np.array(pixels), np.array(labels)
  tree = DecisionTreeClassifier(min_samples_leaf=5, random_state=0).fit(
      pixels[:16].reshape(-1, 5), labels[:16].reshape(-1))
  predicted = tree.predict(pixels[16:].reshape(-1, 5)).reshape(8, -1)
  prior = np.array([np.bincount(column, minlength=11).argmax() for column in labels[:16].T])
  assert mean_f1(predicted, labels[16:]) > mean_f1(np.broadcast_to(prior, (8, 1024)),
                                                   labels[16:]) + 0.04

  people, photos = [], []
  for person in range(15):
    identity = sf.sample_identity(rng)
    for _ in range(3):
      look = sf.sample_look(rng, identity, age=40.0, glasses=False, hat=False, blur=0.0)
      g = sf.Geometry(identity, look)
      image = sf.render(identity, look, sf.aligned_matrix(g, sf.ARCFACE_TEMPLATE * 64 / 112,
                                                          rng, 0.03), (64, 64)).image
      photos.append(cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA).reshape(-1) / 255)
      people.append(person)
  photos, people = np.array(photos), np.array(people)
  gallery = np.arange(len(people)) % 3 == 0
  rank1 = KNeighborsClassifier(1).fit(photos[gallery], people[gallery]).score(
      photos[~gallery], people[~gallery])
  assert rank1 > 3 / 15  # chance 1/15


def test_renders_fast_enough():
  rng = np.random.default_rng(0)
  faces = [(i, sf.sample_look(rng, i)) for i in (sf.sample_identity(rng) for _ in range(40))]
  start = time.process_time()
  for identity, look in faces:
    g = sf.Geometry(identity, look)
    sf.render(identity, look, sf.aligned_matrix(g, sf.ARCFACE_TEMPLATE), (112, 112))
  rate = len(faces) / (time.process_time() - start)
  assert rate > 40, f"{rate:.0f} faces/s (about 150/s of one core expected at 112 px)"
