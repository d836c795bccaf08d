"""A parametric face drawn with OpenCV, with exact ground truth for every Faceptor task.

One face is an `Identity` (what stays the same across a person's photos: face shape, skin, eyes,
nose, mouth, hair, beard, and the CelebA attributes that belong to the person) and a `Look` (what
changes from photo to photo: age, expression, accessories, head pose, light, background). From
the two, `Geometry` builds every facial curve; the landmark layouts (68 iBUG, 98 WFLW, 29 COFW,
19 AFLW, 106 LaPa, 5 ArcFace) are points sampled on those same curves and the parsing classes are
the same curves filled, so the labels and the pixels agree exactly.

Canonical frame: x to the image's right, y down, unit = about half the face width; the eye line is
y = 0 and the face is symmetric about x = 0. Every point also has a depth z (towards the camera);
yaw and pitch rotate (x, y, z) and project orthographically, which squashes the face and slides
the features sideways as a turned head does. A 2x3 matrix then places the projected face in the
image in OpenCV's pixel convention (0-based, pixel centres at integers); landmarks use the same.

Sides: side 0 is the image-left feature (the person's right), side 1 the image-right one, and
every landmark layout starts on the image-left, as the datasets do. CelebAMask-HQ's `l_*` parts
are taken to be the image-left ones (FaRL names them rr/rb/re, the person's right), and LaPa's
"left" classes too.

The class map painted by `render` uses the 19 CelebAMask-HQ classes with the FaRL/Faceptor ids
(tasks.PARSING_CLASSES["parsing_celebam"]); `LAPA_OF_CELEBAM` maps it to LaPa's 11 classes.
What each label looks like (so that a small model can learn it at 64 / 128 px):
  age         forehead lines, crow's feet and nose-mouth folds that deepen from 25 on, greying
              hair from the person's onset (35-50), under-eye bags, a lengthening jaw; children
              have rounder faces and larger eyes;
  expression  mouth curve / opening / width, brow height and tilt, eye opening (`EXPRESSIONS`);
  attributes  drawn where CelebA's can be (`celeba_attributes` derives all 40 from the face);
  identity    every shape and colour of `Identity`, plus a mole for some people.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import cv2
import numpy as np

# --- classes -------------------------------------------------------------------------------------

# CelebAMask-HQ classes, with the FaRL/Faceptor ids (the painting order of the 18 part masks).
(BACKGROUND, NECK, SKIN, CLOTH, L_EAR, R_EAR, L_BROW, R_BROW, L_EYE, R_EYE, NOSE, MOUTH, L_LIP,
 U_LIP, HAIR, GLASSES, HAT, EARRING, NECKLACE) = range(19)
# CelebAMask-HQ's part-mask file suffix of class ids 1..18 (`l_lip` is the lower lip).
CELEBAM_PARTS = ("neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye",
                 "nose", "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l")
# CelebAMask-HQ id -> LaPa id (0 background, 1 skin incl. ears, 2/3 brows, 4/5 eyes, 6 nose,
# 7 upper lip, 8 inner mouth, 9 lower lip, 10 hair). LaPa has no neck, cloth or accessories;
# lenses show the skin and eyes behind them, so a lens counts as skin (LaPa faces are drawn
# without glasses and hats, so this only matters for callers that add them).
LAPA_OF_CELEBAM = np.array([0, 0, 1, 0, 1, 1, 2, 3, 4, 5, 6, 8, 9, 7, 10, 1, 0, 0, 0], np.uint8)

# Expression shapes at full intensity, AffectNet order (7 = Contempt, only for AffectNet's and
# FERPlus' raw files): mouth corner drop (negative = corners up), lip gap, mouth width factor,
# brow raise (negative = up), brow tilt (positive = inner ends up), eye opening factor,
# upper-lip raise, right-corner extra drop (asymmetry), teeth shown.
EXPRESSIONS = {
    0: dict(curve=0.0, gap=0.0, width=1.0, raise_=0.0, tilt=0.0, eyes=1.0),              # Neutral
    1: dict(curve=-0.14, gap=0.08, width=1.2, raise_=0.0, tilt=0.0, eyes=0.7, teeth=True),  # Happy
    2: dict(curve=0.12, gap=0.0, width=0.9, raise_=0.0, tilt=0.10, eyes=0.8),            # Sad
    3: dict(curve=0.0, gap=0.32, width=0.66, raise_=-0.14, tilt=0.0, eyes=1.55),         # Surprise
    4: dict(curve=0.05, gap=0.14, width=1.22, raise_=-0.07, tilt=0.09, eyes=1.45,
            teeth=True),                                                                 # Fear
    5: dict(curve=0.05, gap=0.05, width=0.84, raise_=0.05, tilt=-0.03, eyes=0.62,
            lip_raise=0.05, asym=0.05, teeth=True),                                     # Disgust
    6: dict(curve=0.03, gap=0.0, width=0.86, raise_=0.07, tilt=-0.11, eyes=0.72,
            thin=0.55),                                                                  # Anger
    7: dict(curve=0.0, gap=0.0, width=1.0, raise_=0.0, tilt=0.0, eyes=0.9, asym=-0.10),  # Contempt
}
EXPRESSION_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")

HAIR_COLOURS = {"black": (28, 24, 22), "brown": (100, 62, 36), "blond": (222, 188, 116),
                "red": (158, 66, 34)}
GREY_HAIR = (196, 196, 200)
SKIN_TONES = {0: (228, 188, 160), 1: (116, 78, 58), 2: (232, 198, 158), 3: (178, 126, 94),
              4: (204, 152, 118)}  # UTKFace race codes
PALE_SKIN = (248, 226, 214)
IRIS_COLOURS = {"brown": (96, 58, 30), "blue": (70, 120, 190), "green": (80, 130, 80),
                "dark": (40, 28, 22)}

# ArcFace's 112x112 5-point template (left eye, right eye, nose tip, mouth corners), in pixels.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
# CelebA's aligned 178x218 release (its list_landmarks_align_celeba.txt, first image).
CELEBA_TEMPLATE = np.array([[69, 109], [106, 113], [77, 142], [73, 152], [108, 154]], np.float32)


# --- parameters ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Identity:
  """What stays the same across one person's photos (canonical units, RGB colours)."""
  male: bool
  race: int                 # UTKFace codes: 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others
  skin: tuple
  face_width: float         # half-width at the eye line
  chin_length: float        # eye line to chin
  forehead: float           # eye line to the top of the skull
  jaw_power: float          # < 1 widens the lower face (square jaw); 1 is an ellipse
  eye_spacing: float        # eye centre to the midline
  eye_width: float          # half-width of an eye
  eye_height: float         # upper lid above the corner line
  iris: str                 # key of IRIS_COLOURS
  brow_height: float        # brow above the eye line
  brow_thickness: float
  brow_arch: float
  brow_colour: tuple
  nose_length: float        # eye line to the nose tip
  nose_width: float         # half-width of the nostril wings
  mouth_y: float
  mouth_width: float        # half-width
  lip_upper: float
  lip_lower: float
  lip_colour: tuple
  ear_size: float
  hair_style: str           # 'short' | 'medium' | 'long' | 'bald'
  hair_colour: str          # key of HAIR_COLOURS
  hairline: float           # y of the hairline on the midline
  grey_onset: float         # age at which the hair starts to grey
  beard: str                # 'none' | 'stubble' | 'goatee' | 'mustache' | 'full'
  mole: tuple | None        # (x, y) of a mole, or None
  # Person-level CelebA attributes: the drawn ones set the shapes above; `attractive`, `shiny`
  # and `posed` are not drawn (random labels that stay the same for the person).
  arched: bool = False
  bushy: bool = False
  big_lips: bool = False
  big_nose: bool = False
  pointy_nose: bool = False
  chubby: bool = False
  double_chin: bool = False
  narrow_eyes: bool = False
  oval: bool = False
  pale: bool = False
  receding: bool = False
  sideburns: bool = False
  high_cheekbones: bool = False
  bangs: bool = False
  wavy: bool = False
  attractive: bool = False
  shiny: bool = False
  posed: bool = False


@dataclasses.dataclass(frozen=True)
class Look:
  """What changes from one photo to the next."""
  age: float                # years
  expression: int = 0       # AffectNet order; 7 Contempt
  intensity: float = 1.0    # scale of the expression's shape
  mouth_open: float = 0.0   # lip gap added to the expression's (Mouth_Slightly_Open)
  yaw: float = 0.0          # radians, positive turns the face towards the image's right
  pitch: float = 0.0        # radians, positive tilts the face down
  glasses: bool = False
  hat: bool = False
  earrings: bool = False
  necklace: bool = False
  necktie: bool = False
  lipstick: bool = False
  makeup: bool = False      # eye shadow, eyeliner and blush (Heavy_Makeup)
  rosy: bool = False
  bags: bool = False        # under-eye bags (also from age)
  blur: float = 0.0         # Gaussian blur sigma, in canonical units (0.05 is clearly blurry)
  brightness: float = 1.0
  light_angle: float = 0.0  # direction the light comes from, radians
  light_strength: float = 0.15  # brightness change across the face from the lit side
  tint: tuple = (1.0, 1.0, 1.0)
  background: tuple = (120, 140, 160)
  background2: tuple = (90, 100, 120)  # the other end of a vertical gradient
  clutter: int = 0          # background shapes
  cloth: tuple = (60, 80, 140)
  accessory: tuple = (30, 30, 40)  # hat / frames / tie colour
  grey_image: bool = False  # photographed in greyscale (some 300W and COFW images are)
  occluder: tuple | None = None  # (x, y, rx, ry, r, g, b): an object in front of the face
  seed: int = 0             # texture details (hair strands, skin noise)


def _uniform(rng, low, high):
  return float(rng.uniform(low, high))


def sample_identity(rng: np.random.Generator, **fixed) -> Identity:
  """A random person. `fixed` sets any Identity field (the flags first: they shape the rest)."""
  unknown = set(fixed) - {f.name for f in dataclasses.fields(Identity)}
  if unknown:
    raise TypeError(f"sample_identity: no Identity field {sorted(unknown)}")
  flags = dict(
      male=bool(rng.random() < 0.5), race=int(rng.choice(5, p=[.45, .15, .2, .12, .08])),
      arched=bool(rng.random() < 0.3), bushy=bool(rng.random() < 0.2),
      big_lips=bool(rng.random() < 0.25), big_nose=bool(rng.random() < 0.25),
      chubby=bool(rng.random() < 0.15), double_chin=bool(rng.random() < 0.1),
      narrow_eyes=bool(rng.random() < 0.15), oval=bool(rng.random() < 0.3),
      high_cheekbones=bool(rng.random() < 0.4), attractive=bool(rng.random() < 0.5),
      shiny=bool(rng.random() < 0.3), posed=bool(rng.random() < 0.5),
      hair_colour=str(rng.choice(list(HAIR_COLOURS), p=[.4, .3, .2, .1])),
      wavy=bool(rng.random() < 0.35))
  flags.update({k: v for k, v in fixed.items() if k in flags})
  male = flags["male"]
  flags.update(
      pointy_nose=fixed.get("pointy_nose", bool(not flags["big_nose"] and rng.random() < 0.3)),
      pale=fixed.get("pale", bool(flags["race"] in (0, 2) and rng.random() < 0.3)),
      hair_style=fixed.get("hair_style", str(rng.choice(
          ["short", "medium", "long", "bald"],
          p=[.6, .2, .08, .12] if male else [.1, .3, .6, 0.]))),
      beard=fixed.get("beard", str(rng.choice(
          ["none", "stubble", "goatee", "mustache", "full"], p=[.45, .2, .12, .1, .13]))
          if male else "none"))
  flags.update(
      receding=fixed.get("receding", bool(male and flags["hair_style"] != "bald"
                                          and rng.random() < 0.25)),
      sideburns=fixed.get("sideburns", bool(male and flags["hair_style"] != "bald"
                                            and rng.random() < 0.3)),
      bangs=fixed.get("bangs", bool(flags["hair_style"] != "bald"
                                    and rng.random() < (0.2 if male else 0.4))))
  if flags["hair_style"] == "bald":
    flags.update(receding=False, bangs=False, wavy=False)
  skin = np.array(PALE_SKIN if flags["pale"] else SKIN_TONES[flags["race"]], np.float64)
  skin = tuple(np.clip(skin + rng.normal(0, 8, 3), 0, 255).round().astype(int).tolist())
  hair = np.array(HAIR_COLOURS[flags["hair_colour"]], np.float64)
  chubby, big_nose = flags["chubby"], flags["big_nose"]
  face_width = _uniform(rng, 0.9, 1.0) + (0.12 if chubby else 0.0) + (0.03 if male else 0.0)
  values = dict(
      skin=skin,
      face_width=face_width,
      chin_length=(_uniform(rng, 1.38, 1.5) if flags["oval"] else _uniform(rng, 1.18, 1.32))
      + (0.04 if male else 0.0),
      forehead=_uniform(rng, 0.98, 1.1),
      jaw_power=(_uniform(rng, 0.85, 1.0) if flags["oval"]
                 else _uniform(rng, 0.55, 0.72) if chubby or male else _uniform(rng, 0.7, 0.9)),
      eye_spacing=_uniform(rng, 0.37, 0.46),
      eye_width=_uniform(rng, 0.14, 0.18),
      eye_height=_uniform(rng, 0.035, 0.045) if flags["narrow_eyes"] else _uniform(rng, 0.06, 0.08),
      iris=str(rng.choice(list(IRIS_COLOURS), p=[.5, .2, .1, .2])),
      brow_height=_uniform(rng, 0.22, 0.3),
      brow_thickness=(_uniform(rng, 0.085, 0.1) if flags["bushy"]
                      else _uniform(rng, 0.04, 0.06) + (0.01 if male else 0.0)),
      brow_arch=_uniform(rng, 0.07, 0.09) if flags["arched"] else _uniform(rng, 0.0, 0.03),
      brow_colour=tuple(np.clip(hair * 0.7 + rng.normal(0, 5, 3), 0, 255).round().astype(int)
                        .tolist()),
      nose_length=_uniform(rng, 0.47, 0.55) if big_nose else _uniform(rng, 0.38, 0.46),
      nose_width=(_uniform(rng, 0.2, 0.24) if big_nose else _uniform(rng, 0.1, 0.13)
                  if flags["pointy_nose"] else _uniform(rng, 0.13, 0.17)),
      mouth_y=_uniform(rng, 0.74, 0.82),
      mouth_width=_uniform(rng, 0.26, 0.33),
      lip_upper=_uniform(rng, 0.075, 0.09) if flags["big_lips"] else _uniform(rng, 0.04, 0.055),
      lip_lower=_uniform(rng, 0.1, 0.12) if flags["big_lips"] else _uniform(rng, 0.055, 0.07),
      lip_colour=tuple(np.clip(np.array(skin) * [0.85, 0.6, 0.6] + rng.normal(0, 6, 3), 0, 255)
                       .round().astype(int).tolist()),
      ear_size=_uniform(rng, 0.9, 1.15),
      hairline=_uniform(rng, -0.84, -0.76) if flags["receding"] else _uniform(rng, -0.66, -0.56),
      grey_onset=_uniform(rng, 35, 50),
      mole=((_uniform(rng, -0.6, 0.6), _uniform(rng, 0.3, 0.9)) if rng.random() < 0.35 else None))
  values.update({k: v for k, v in fixed.items() if k in values})
  return Identity(**flags, **values)


def sample_look(rng: np.random.Generator, identity: Identity, **fixed) -> Look:
  """A random photo of `identity`: accessories, pose, light, background. `fixed` sets any field;
  `age` and `expression` default to 18-70 and a uniform class."""
  female = not identity.male
  look = dict(
      age=_uniform(rng, 18, 70), expression=int(rng.integers(0, 7)),
      intensity=_uniform(rng, 0.75, 1.0),
      mouth_open=_uniform(rng, 0.04, 0.08) if rng.random() < 0.15 else 0.0,
      yaw=_uniform(rng, -0.35, 0.35), pitch=_uniform(rng, -0.2, 0.2),
      glasses=bool(rng.random() < 0.2), hat=bool(rng.random() < 0.12),
      earrings=bool(rng.random() < (0.4 if female else 0.05)),
      necklace=bool(rng.random() < (0.3 if female else 0.05)),
      necktie=bool(rng.random() < (0.2 if identity.male else 0.02)),
      lipstick=bool(female and rng.random() < 0.5),
      rosy=bool(rng.random() < 0.15), bags=bool(rng.random() < 0.15),
      blur=0.05 if rng.random() < 0.08 else 0.0,
      brightness=_uniform(rng, 0.75, 1.2), light_angle=_uniform(rng, 0, 2 * math.pi),
      light_strength=_uniform(rng, 0.0, 0.3),
      tint=tuple(rng.uniform(0.9, 1.1, 3).round(3).tolist()),
      background=tuple(rng.integers(20, 235, 3).tolist()),
      background2=tuple(rng.integers(20, 235, 3).tolist()),
      cloth=tuple(rng.integers(10, 245, 3).tolist()),
      accessory=tuple(rng.integers(0, 120, 3).tolist()),
      seed=int(rng.integers(0, 2**31)))
  look["makeup"] = bool(look["lipstick"] and rng.random() < 0.6)
  look.update(fixed)
  return Look(**look)


# --- geometry ------------------------------------------------------------------------------------

def _arc_resample(points: np.ndarray, n: int) -> np.ndarray:
  """n points evenly spaced along the polyline `points` [N, 2], both ends included."""
  seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
  arc = np.concatenate([[0.0], np.cumsum(seg)])
  at = np.linspace(0.0, arc[-1], n)
  return np.stack([np.interp(at, arc, points[:, 0]), np.interp(at, arc, points[:, 1])], axis=1)


DENSE = 48  # samples per curve for drawing and arc-length resampling


class Geometry:
  """Every curve of one face (identity + look), projected to the canonical 2-D frame."""

  def __init__(self, identity: Identity, look: Look):
    self.identity, self.look = identity, look
    i, age = identity, look.age
    shape = {k: v * look.intensity if isinstance(v, float) and k not in ("width", "eyes") else v
             for k, v in EXPRESSIONS[look.expression].items()}
    self.expression = shape
    child = float(np.clip((16.0 - age) / 14.0, 0.0, 1.0))  # 1 for a toddler, 0 from 16 on
    sag = float(np.clip((age - 30.0) / 45.0, 0.0, 1.0))    # 0 under 30, 1 at 75
    self.child, self.sag = child, sag
    self.W = i.face_width * (1 + 0.05 * child)
    self.Hb = i.chin_length * (1 - 0.18 * child) + 0.1 * sag
    self.Ht = i.forehead * (1 + 0.1 * child)
    self.jaw = i.jaw_power + 0.25 * child * (1 - i.jaw_power)
    self.s = i.eye_spacing
    self.ew = i.eye_width * (1 + 0.15 * child)
    mix = lambda f: 1 + (f - 1) * look.intensity  # noqa: E731  (factors scale towards 1)
    self.eh = i.eye_height * (1 + 0.3 * child) * mix(shape["eyes"])
    self.brow_y = -i.brow_height + shape["raise_"] + 0.02 * sag
    self.brow_tilt = shape["tilt"]
    self.tip = i.nose_length * (1 - 0.2 * child) + 0.02 * sag
    self.nw = i.nose_width * (1 - 0.15 * child)
    self.my = i.mouth_y * (1 - 0.1 * child) + 0.03 * sag
    self.mw = i.mouth_width * mix(shape["width"])
    self.gap = shape["gap"] + look.mouth_open
    self.curve = shape["curve"]
    self.asym = shape.get("asym", 0.0)
    self.lip_raise = shape.get("lip_raise", 0.0)
    thin = 1 - shape.get("thin", 0.0)
    self.lip_u, self.lip_l = i.lip_upper * thin, i.lip_lower * thin
    cy, sy = math.cos(look.yaw), math.sin(look.yaw)
    cp, sp = math.cos(look.pitch), math.sin(look.pitch)
    self._rot = (cy, sy, cp, sp)

  # -- projection

  def depth(self, x, y):
    """Depth of the face's surface (an ellipsoid) at canonical (x, y)."""
    r = (np.asarray(x) / self.W) ** 2 + ((np.asarray(y) - 0.15) / (self.Hb + 0.1)) ** 2
    return 0.6 * np.sqrt(np.maximum(1.0 - r, 0.0))

  def project(self, x, y, z) -> np.ndarray:
    """[N, 2] of canonical (x, y, z) after yaw then pitch (orthographic)."""
    cy, sy, cp, sp = self._rot
    x, y, z = (np.asarray(v, np.float64) for v in (x, y, z))
    x2 = x * cy + z * sy
    y2 = y * cp - (z * cy - x * sy) * sp
    if x2.shape != y2.shape:
      x2, y2 = np.broadcast_arrays(x2, y2)
    return np.stack([x2, y2], axis=-1)

  def surface(self, x, y, lift=0.0) -> np.ndarray:
    """Points on the face's surface (plus `lift` towards the camera), projected."""
    return self.project(x, y, self.depth(x, y) + lift)

  # -- outline

  def _outline_xy(self, a):
    """Head outline at angle a (0 = image right, pi/2 = chin, 3pi/2 = top of the skull)."""
    a = np.asarray(a, np.float64)
    c, s = np.cos(a), np.sin(a)
    lower = s >= 0
    x = np.where(lower, self.W * np.sign(c) * np.abs(c) ** self.jaw, self.W * c)
    y = np.where(lower, self.Hb * s, self.Ht * s)
    return x, y

  def outline(self, a) -> np.ndarray:
    x, y = self._outline_xy(a)
    chin = np.clip(np.sin(a), 0, None) ** 4 * 0.3  # the chin stands out a little
    return self.project(x, y, chin)

  def jaw_line(self, n: int = DENSE) -> np.ndarray:
    """From the image-left temple (just above the eye line) round the chin to the right one."""
    start = math.asin(min(0.99, 0.12 / self.Ht))
    a = np.linspace(math.pi + start, -start, DENSE * 2)
    return _arc_resample(self.outline(a), n)

  def face_polygon(self) -> np.ndarray:
    return self.outline(np.linspace(0, 2 * math.pi, DENSE * 3, endpoint=False))

  # -- brows: t = 0 outer end, 1 inner end

  def _brow_mid(self, side, t):
    sx = -1 if side == 0 else 1
    outer, inner = self.s + self.ew + 0.07, 0.11
    x = sx * (outer - (outer - inner) * t)
    y = (self.brow_y - self.identity.brow_arch * np.sin(np.pi * t ** 0.8)
         - self.brow_tilt * t + 0.03 * (1 - t) ** 2)
    return x, y

  def brow(self, side, edge, n=DENSE) -> np.ndarray:
    """edge: 'upper' | 'lower' | 'mid', from the outer end to the inner one."""
    t = np.linspace(0, 1, n)
    x, y = self._brow_mid(side, t)
    half = 0.5 * self.identity.brow_thickness * (0.45 + 0.55 * t ** 0.6)
    y = y + {"upper": -half, "lower": half, "mid": 0.0}[edge]
    return self.surface(x, y, 0.02)

  def brow_polygon(self, side):
    return np.concatenate([self.brow(side, "upper"), self.brow(side, "lower")[::-1]])

  # -- eyes: t = 0 outer corner, 1 inner corner

  def eye_centre(self, side):
    return (-self.s if side == 0 else self.s), 0.0

  def _lid_xy(self, side, lid, t):
    cx, _ = self.eye_centre(side)
    sx = -1 if side == 0 else 1
    x = cx + sx * self.ew * (1 - 2 * t)
    base = -0.02 * (1 - t)  # outer corners sit a little higher
    bump = np.sin(np.pi * t)
    if lid == "upper":
      y = base - self.eh * bump * (1 + 0.15 * np.sin(np.pi * t) * (t - 0.3))
    else:
      lower = 0.55 * self.eh * (0.7 if self.look.expression == 1 else 1.0)
      y = base + lower * bump
    return x, y

  def lid(self, side, lid, n=DENSE) -> np.ndarray:
    x, y = self._lid_xy(side, lid, np.linspace(0, 1, n))
    return self.surface(x, y)

  def eye_polygon(self, side):
    return np.concatenate([self.lid(side, "upper"), self.lid(side, "lower")[::-1]])

  def pupil(self, side) -> np.ndarray:
    """The iris centre: between the two lids, half-way between the corners."""
    x, yu = self._lid_xy(side, "upper", 0.5)
    _, yl = self._lid_xy(side, "lower", 0.5)
    return self.surface(x, 0.5 * (yu + yl))

  def iris_radius(self):
    return 0.8 * self.ew * 0.5

  # -- nose

  def nose_bridge(self, n=DENSE) -> np.ndarray:
    """From between the eyes to the nose tip."""
    y = np.linspace(0.02, self.tip, n)
    return self.surface(np.zeros_like(y), y, 0.45 * ((y - 0.02) / (self.tip - 0.02)) ** 1.5)

  def _nose_points(self, xs, ys, lift):
    return self.surface(np.asarray(xs), np.asarray(ys), np.asarray(lift))

  def nose_base(self, n=DENSE) -> np.ndarray:
    """Under the nose, from the image-left nostril wing to the right one via the subnasale."""
    u = np.linspace(-1, 1, n)
    return self._nose_points(0.75 * self.nw * u, self.tip + 0.07 - 0.035 * u ** 2,
                             0.3 - 0.1 * np.abs(u))

  def nose_lower_outline(self, n=DENSE) -> np.ndarray:
    """LaPa's lower nose: image-left wing top, round the wing, under the tip, to the right."""
    t, nw = self.tip, self.nw
    xs = np.array([-0.8 * nw, -1.0 * nw, -0.8 * nw, -0.35 * nw, 0.0])
    ys = np.array([t - 0.13, t - 0.02, t + 0.045, t + 0.065, t + 0.07])
    xs, ys = np.concatenate([xs, -xs[-2::-1]]), np.concatenate([ys, ys[-2::-1]])
    lift = 0.25 - 0.1 * np.abs(xs) / nw
    return _arc_resample(self._nose_points(xs, ys, lift), n)

  def nose_polygon(self):
    t, nw = self.tip, self.nw
    pointy = 0.75 if self.identity.pointy_nose else 1.0
    xs = np.array([-0.05, -0.065, -0.08 * pointy, -nw, -0.85 * nw, -0.35 * nw, 0.0])
    ys = np.array([0.02, t * 0.5, t - 0.14, t - 0.01, t + 0.05, t + 0.075, t + 0.075])
    xs, ys = np.concatenate([xs, -xs[-2::-1]]), np.concatenate([ys, ys[-2::-1]])
    lift = np.where(np.abs(xs) < 0.09, 0.45 * ((ys - 0.02) / (t - 0.02)).clip(0, 1) ** 1.5, 0.2)
    return self._nose_points(xs, ys, lift)

  # -- mouth: t = 0 image-left corner, 1 image-right corner

  def _lip_y(self, which, u):
    corner = np.where(u < 0, self.curve, self.curve + self.asym)
    mid = self.my + corner * u ** 2
    gap = self.gap * (1 - u ** 2) ** 0.7
    inner_upper = mid - 0.5 * gap - self.lip_raise * (1 - u ** 2) * (1 + 0.6 * u)
    if which == "inner_upper":
      return inner_upper
    if which == "inner_lower":
      return mid + 0.5 * gap
    if which == "outer_upper":
      bow = 1 - 0.35 * np.exp(-(u / 0.16) ** 2)  # the Cupid's bow dips in the middle
      return inner_upper - self.lip_u * np.sqrt(1 - u ** 2) * bow
    return mid + 0.5 * gap + self.lip_l * (1 - u ** 2) ** 0.55  # outer_lower

  def lip(self, which, n=DENSE) -> np.ndarray:
    """which: 'outer_upper' | 'inner_upper' | 'inner_lower' | 'outer_lower', left to right."""
    u = np.linspace(-1, 1, n)
    half = self.mw if which.startswith("outer") else self.mw - 0.03
    return self.surface(half * u, self._lip_y(which, u), 0.05)

  # -- other parts (polygons only)

  def ear(self, side, n=24) -> np.ndarray:
    sx = -1 if side == 0 else 1
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    e = self.identity.ear_size
    x = sx * (self.W + 0.03 + 0.12 * e * np.cos(a))
    y = 0.15 + 0.26 * e * np.sin(a)
    return self.project(x, y, -0.3)

  def earlobe(self, side):
    sx = -1 if side == 0 else 1
    return self.project(sx * (self.W + 0.05), 0.15 + 0.26 * self.identity.ear_size + 0.06, -0.2)

  def neck_polygon(self):
    w = 0.5 * self.W
    xs = np.array([-w, -w * 1.02, -w * 1.25, w * 1.25, w * 1.02, w])
    ys = np.array([0.5, 1.7, 6.0, 6.0, 1.7, 0.5])
    return self.project(xs, ys, -0.1)

  def cloth_polygon(self, vneck=True):
    w = 0.5 * self.W
    dip = 2.3 if vneck else 2.0
    xs = np.array([-3.4, -3.3, -2.4, -1.3, -w * 1.05, 0, w * 1.05, 1.3, 2.4, 3.3, 3.4])
    ys = np.array([6.0, 3.0, 2.3, 1.95, 1.8, dip, 1.8, 1.95, 2.3, 3.0, 6.0])
    return self.project(xs, ys, -0.2)

  def necktie_polygon(self):
    xs = np.array([-0.09, 0.09, 0.06, 0.17, 0.0, -0.17, -0.06])
    ys = np.array([2.12, 2.12, 2.3, 3.3, 3.5, 3.3, 2.3])
    return self.project(xs, ys, -0.1)

  def necklace_line(self):
    u = np.linspace(-1, 1, 24)
    return self.project(0.52 * self.W * u, 1.3 + 0.28 * (1 - u ** 2), -0.05)

  def _hairline(self, n=DENSE):
    """From the image-right temple over the forehead to the image-left temple."""
    xs = np.linspace(1, -1, n) * self.W * 0.97
    r = np.abs(xs) / (self.W * 0.97)
    hl, temple = self.identity.hairline, -0.22
    ys = hl + (temple - hl) * r ** 3.5  # high over the brows, down at the temples
    if self.identity.receding:  # the temples recede into an M
      ys = ys - 0.16 * np.exp(-((r - 0.55) / 0.18) ** 2)
    return xs, ys

  def _hair_outer(self, bottom, volume, n=DENSE):
    """The outside of the hair from the image-left side at y=bottom over the top to the right."""
    a = np.linspace(math.pi, 2 * math.pi, n)
    xs = (self.W + volume) * np.cos(a)
    ys = (self.Ht + volume) * np.sin(a)
    if self.identity.wavy:
      wave = 0.045 * np.sin(a * 11 + 1.0)
      xs, ys = xs + wave * np.cos(a), ys + wave * np.sin(a)
    xs = np.concatenate([[xs[0]], xs, [xs[-1]]])
    ys = np.concatenate([[bottom], ys, [bottom]])
    return xs, ys

  def hair_cap_polygon(self):
    """The hair on top of the head: outside edge, then the hairline back."""
    volume = {"short": 0.08, "medium": 0.12, "long": 0.14}.get(self.identity.hair_style, 0.08)
    ox, oy = self._hair_outer(0.05, volume)
    hx, hy = self._hairline()
    xs, ys = np.concatenate([ox, hx]), np.concatenate([oy, hy])
    return self.project(xs, ys, 0.0)

  def hair_back_polygon(self):
    """Long or medium hair falling behind the head, to the shoulders or the chin."""
    length = {"long": 2.4, "medium": 1.25}.get(self.identity.hair_style)
    if length is None:
      return None
    ox, oy = self._hair_outer(0.0, 0.16)
    w = self.W + 0.3
    xs = np.concatenate([[-w, -w - 0.05], ox[1:-1], [w + 0.05, w]])
    ys = np.concatenate([[length, 0.5], oy[1:-1], [0.5, length]])
    if self.identity.wavy:
      ys[0] += 0.1
      ys[-1] += 0.1
    return self.project(xs, ys, -0.3)

  def bald_fringe_polygons(self):
    """What a bald head keeps: hair over the ears and at the back."""
    out = []
    for sx in (-1, 1):
      xs = sx * np.array([self.W * 0.98, self.W * 1.1, self.W * 1.12, self.W * 1.0])
      ys = np.array([-0.45, -0.5, 0.25, 0.3])
      out.append(self.project(xs, ys, -0.1))
    return out

  def bangs_polygon(self):
    hx, hy = self._hairline()
    xs = np.linspace(-0.88, 0.88, 13) * self.W
    ys = -0.43 + 0.04 * (np.arange(13) % 2) + 0.02 * (np.abs(xs) / self.W) ** 2
    return self.project(np.concatenate([hx, xs]), np.concatenate([hy - 0.02, ys]), 0.15)

  def sideburn_polygons(self):
    out = []
    for sx in (-1, 1):
      xs = sx * np.array([self.W * 0.99, self.W * 0.9, self.W * 0.93, self.W * 0.99])
      ys = np.array([-0.12, -0.12, 0.3, 0.38])
      out.append(self.project(xs, ys, 0.05))
    return out

  def hat_polygons(self):
    """Crown and brim."""
    a = np.linspace(math.pi, 2 * math.pi, DENSE)
    w = self.W + 0.12
    crown = self.project(w * np.cos(a), -0.62 + (self.Ht + 0.5) * np.sin(a), 0.0)
    u = np.linspace(-1, 1, 16)
    bw = self.W + 0.38
    top = -0.74 + 0.08 * u ** 2
    brim_x = np.concatenate([bw * u, bw * u[::-1]])
    brim_y = np.concatenate([top, top[::-1] + 0.14])
    return crown, self.project(brim_x, brim_y, 0.2)

  def glasses_polygons(self):
    """(lens outer rims [2], lens insides [2], bridge and temples [3]) as polygons."""
    rims, insides = [], []
    gw, gh = self.ew + 0.08, 0.15
    a = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    sq_c = np.sign(c) * np.abs(c) ** 0.5  # superellipse: a rounded rectangle
    sq_s = np.sign(s) * np.abs(s) ** 0.5
    for side in (0, 1):
      cx, _ = self.eye_centre(side)
      for scale, out in ((1.0, rims), (0.78, insides)):
        x = cx + gw * sq_c * (1 - (1 - scale) * 0.6)
        y = 0.0 + gh * sq_s * scale
        out.append(self.surface(x, y, 0.12))
    bars = []
    inner = self.s - gw
    bars.append(self.surface(np.array([-inner - 0.02, inner + 0.02, inner + 0.02, -inner - 0.02]),
                             np.array([-0.05, -0.05, -0.01, -0.01]), 0.15))
    for sx in (-1, 1):
      x0, x1 = sx * (self.s + gw - 0.02), sx * (self.W + 0.04)
      bars.append(self.project(np.array([x0, x1, x1, x0]), np.array([-0.06, -0.04, -0.01, -0.02]),
                               np.array([0.3, 0.0, 0.0, 0.3])))
    return rims, insides, bars


# --- landmark layouts ----------------------------------------------------------------------------

def _ends(curve, n):
  """n points evenly spaced along `curve`, ends included."""
  return _arc_resample(curve, n)


def _inner(curve, n):
  """n points evenly spaced along `curve`, ends excluded."""
  return _arc_resample(curve, n + 2)[1:-1]


def _at(curve, fraction):
  """The point at a fraction of the curve's length."""
  return _arc_resample(curve, 201)[int(round(fraction * 200))][None]


def _eye_points(g, side, n_upper, n_lower, outer_first):
  """One eye: `n_upper` points on the upper lid corner to corner, then `n_lower` inside the lower
  lid, going round (clockwise on the image-left eye, mirrored on the right one)."""
  upper, lower = g.lid(side, "upper"), g.lid(side, "lower")
  if not outer_first:  # start at the inner corner
    upper, lower = upper[::-1], lower[::-1]
  return np.concatenate([_ends(upper, n_upper), _inner(lower[::-1], n_lower)])


def _brow_points(g, side, n_upper, n_lower):
  """A brow from its image-left end: the upper edge, then the lower edge back (WFLW, LaPa)."""
  upper, lower = g.brow(side, "upper"), g.brow(side, "lower")
  if side == 1:  # brows are stored outer -> inner; the right brow's image-left end is inner
    upper, lower = upper[::-1], lower[::-1]
  return np.concatenate([_ends(upper, n_upper), _ends(lower[::-1], n_lower + 2)[1:-1]])


def _mouth_points(g, n_outer_upper, n_outer_lower, n_inner_upper, n_inner_lower):
  """Outer lip from the left corner over the top to the right corner and back along the
  bottom, then the inner lip the same way (the 68 / 98 / 106 layouts)."""
  return np.concatenate([
      _ends(g.lip("outer_upper"), n_outer_upper), _inner(g.lip("outer_lower")[::-1], n_outer_lower),
      _ends(g.lip("inner_upper"), n_inner_upper),
      _inner(g.lip("inner_lower")[::-1], n_inner_lower)])


def _layout_68(g):
  return np.concatenate([
      g.jaw_line(17),
      _ends(g.brow(0, "upper"), 5), _ends(g.brow(1, "upper")[::-1], 5),
      _ends(g.nose_bridge(), 4), _ends(g.nose_base(), 5),
      _eye_points(g, 0, 4, 2, True), _eye_points(g, 1, 4, 2, False),
      _mouth_points(g, 7, 5, 5, 3)])


def _layout_98(g):
  return np.concatenate([
      g.jaw_line(33), _brow_points(g, 0, 5, 4), _brow_points(g, 1, 5, 4),
      _ends(g.nose_bridge(), 4), _ends(g.nose_base(), 5),
      _eye_points(g, 0, 5, 3, True), _eye_points(g, 1, 5, 3, False),
      _mouth_points(g, 7, 5, 5, 3), g.pupil(0)[None], g.pupil(1)[None]])


def _layout_106(g):
  eyes = []
  for side, outer_first in ((0, True), (1, False)):
    eyes += [_eye_points(g, side, 5, 3, outer_first), g.pupil(side)[None]]
  return np.concatenate([
      g.jaw_line(33), _brow_points(g, 0, 5, 4), _brow_points(g, 1, 5, 4),
      _ends(g.nose_bridge(), 4), _ends(g.nose_lower_outline(), 11), *eyes,
      _mouth_points(g, 7, 5, 5, 3), g.pupil(0)[None], g.pupil(1)[None]])


def _layout_29(g):
  """COFW (the LFPW 29-point order): brow ends, brow top/bottom centres, eye corners, lid
  centres, pupils, nose wings, nose tip, under the nose, mouth corners, lip centres, chin."""
  brow_end = lambda side, end: g.brow(side, "mid")[0 if end == "outer" else -1][None]  # noqa: E731
  lid_mid = lambda side, lid: _at(g.lid(side, lid), 0.5)  # noqa: E731
  eye_corner = lambda side, c: g.lid(side, "upper")[0 if c == "outer" else -1][None]  # noqa: E731
  base = g.nose_base()
  lip_mid = lambda which: _at(g.lip(which), 0.5)  # noqa: E731
  return np.concatenate([
      brow_end(0, "outer"), brow_end(1, "outer"), brow_end(0, "inner"), brow_end(1, "inner"),
      _at(g.brow(0, "upper"), 0.5), _at(g.brow(0, "lower"), 0.5),
      _at(g.brow(1, "upper"), 0.5), _at(g.brow(1, "lower"), 0.5),
      eye_corner(0, "outer"), eye_corner(1, "outer"), eye_corner(0, "inner"),
      eye_corner(1, "inner"),
      lid_mid(0, "upper"), lid_mid(0, "lower"), lid_mid(1, "upper"), lid_mid(1, "lower"),
      g.pupil(0)[None], g.pupil(1)[None],
      base[0][None], base[-1][None], g.nose_bridge()[-1][None], _at(base, 0.5),
      g.lip("outer_upper")[0][None], g.lip("outer_upper")[-1][None],
      lip_mid("outer_upper"), lip_mid("inner_upper"), lip_mid("inner_lower"),
      lip_mid("outer_lower"), g.jaw_line(3)[1:2]])


def _layout_19(g):
  """AFLW-19: brows (outer, centre, inner; mirrored on the right), eyes (outer corner, centre,
  inner corner; mirrored), nose (left wing, tip, right wing), mouth (left, centre, right), chin."""
  brows = [_ends(g.brow(0, "mid"), 3), _ends(g.brow(1, "mid")[::-1], 3)]
  eyes = []
  for side in (0, 1):
    upper = g.lid(side, "upper")
    pts = np.stack([upper[0], g.pupil(side), upper[-1]])
    eyes.append(pts if side == 0 else pts[::-1])
  base = g.nose_base()
  mouth = np.stack([g.lip("outer_upper")[0], 0.5 * (_at(g.lip("inner_upper"), 0.5)[0]
                                                   + _at(g.lip("inner_lower"), 0.5)[0]),
                    g.lip("outer_upper")[-1]])
  return np.concatenate([*brows, *eyes, np.stack([base[0], g.nose_bridge()[-1], base[-1]]),
                         mouth, g.jaw_line(3)[1:2]])


def _layout_5(g):
  return np.stack([g.pupil(0), g.pupil(1), g.nose_bridge()[-1], g.lip("outer_upper")[0],
                   g.lip("outer_upper")[-1]])


LAYOUTS = {68: _layout_68, 98: _layout_98, 106: _layout_106, 29: _layout_29, 19: _layout_19,
           5: _layout_5}


def canonical_landmarks(geometry: Geometry, layout: int) -> np.ndarray:
  """float64 [layout, 2] in the canonical (projected) frame."""
  points = LAYOUTS[layout](geometry)
  assert points.shape == (layout, 2), (layout, points.shape)
  return points


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
  """[N, 2] points through a 2x3 affine matrix."""
  return points @ matrix[:, :2].T + matrix[:, 2]


# --- placement -----------------------------------------------------------------------------------

def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """The least-squares similarity (rotation, uniform scale, shift) taking src [N, 2] to dst,
  as a 2x3 matrix (Umeyama's solution, in complex numbers: dst ~ a * src + b)."""
  s = src[:, 0] + 1j * src[:, 1]
  d = dst[:, 0] + 1j * dst[:, 1]
  s0, d0 = s - s.mean(), d - d.mean()
  a = np.vdot(s0, d0) / np.vdot(s0, s0)
  b = d.mean() - a * s.mean()
  return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def aligned_matrix(geometry: Geometry, template: np.ndarray, rng=None, jitter=0.0) -> np.ndarray:
  """Aligns the face's 5 points onto `template` (pixels), as an aligned dataset's crops are;
  `jitter` moves the template points by that fraction of its eye distance (a detector's error)."""
  dst = np.asarray(template, np.float64)
  if rng is not None and jitter:
    eyes = np.linalg.norm(dst[1] - dst[0])
    dst = dst + rng.normal(0, jitter * eyes, dst.shape)
  return fit_similarity(canonical_landmarks(geometry, 5), dst)


def placed_matrix(geometry: Geometry, face_size: float, centre, roll: float = 0.0) -> np.ndarray:
  """Puts the face in a larger picture: the 68-point box's longer side becomes `face_size`
  pixels, its centre goes to `centre` (pixels), and the face turns by `roll` radians."""
  points = canonical_landmarks(geometry, 68)
  lo, hi = points.min(0), points.max(0)
  scale = face_size / max(hi - lo)
  c, s = math.cos(roll) * scale, math.sin(roll) * scale
  linear = np.array([[c, -s], [s, c]])
  shift = np.asarray(centre, np.float64) - linear @ (0.5 * (lo + hi))
  return np.concatenate([linear, shift[:, None]], axis=1)


# --- rendering -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Rendering:
  """One drawn face and its ground truth."""
  image: np.ndarray         # uint8 [H, W, 3] RGB
  parts: np.ndarray         # uint8 [H, W] CelebAMask-HQ class ids (FaRL order) of what is seen
  matrix: np.ndarray        # 2x3, canonical -> pixels
  geometry: Geometry
  extents: dict | None = None  # {class id: bool [H, W]} whole part, also where hidden

  def landmarks(self, layout: int) -> np.ndarray:
    """float32 [layout, 2], 0-based pixels (pixel centres at integers)."""
    return apply(self.matrix, canonical_landmarks(self.geometry, layout)).astype(np.float32)

  def visible(self, layout: int) -> np.ndarray:
    """bool [layout]: the point is inside the image and not behind hair, a hat or an object
    (see-through lenses do not hide a point)."""
    points = self.landmarks(layout)
    h, w = self.parts.shape
    xy = np.round(points).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    # a point on a part's edge (the jaw line) is seen if any pixel next to it is
    seen = np.zeros(len(xy), bool)
    for dx in (-1, 0, 1):
      for dy in (-1, 0, 1):
        cls = self.parts[(xy[:, 1] + dy).clip(0, h - 1), (xy[:, 0] + dx).clip(0, w - 1)]
        seen |= ~np.isin(cls, (HAIR, HAT, BACKGROUND))
    return inside & seen

  def lapa_parts(self) -> np.ndarray:
    return LAPA_OF_CELEBAM[self.parts]

  def celebam_masks(self) -> dict:
    """{part suffix: bool [H, W]} CelebAMask-HQ's part masks: each part's whole extent minus
    what a class painted before it (in id order) shows, so painting them 1 -> 18 with later
    classes on top gives back `parts` exactly (skin runs under the eyes, hair under the hat)."""
    return {CELEBAM_PARTS[c - 1]: mask & (self.parts >= c)
            for c, mask in self.extents.items() if (mask & (self.parts >= c)).any()}


class _Canvas:
  """The image, the class map and the part extents drawn together, polygon by polygon."""

  SHIFT = 4  # sub-pixel bits for OpenCV's drawing

  def __init__(self, size, matrix, keep_extents):
    w, h = size
    self.image = np.zeros((h, w, 3), np.uint8)
    self.parts = np.zeros((h, w), np.uint8)
    self.matrix = matrix
    self.extents = {} if keep_extents else None
    self.unit = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # pixels per canonical unit

  def px(self, points):
    return np.round(apply(self.matrix, points) * (1 << self.SHIFT)).astype(np.int32)

  def _extent(self, cls):
    if cls not in self.extents:
      self.extents[cls] = np.zeros(self.parts.shape, bool)
    return self.extents[cls]

  def fill(self, polygons, cls, colour):
    """Fills polygons (canonical) with a colour, and with a class unless cls is None."""
    pts = [self.px(p) for p in polygons]
    cv2.fillPoly(self.image, pts, colour, cv2.LINE_AA, self.SHIFT)
    if cls is not None:
      cv2.fillPoly(self.parts, pts, int(cls), cv2.LINE_8, self.SHIFT)
      if self.extents is not None:
        mask = np.zeros(self.parts.shape, np.uint8)
        cv2.fillPoly(mask, pts, 1, cv2.LINE_8, self.SHIFT)
        self._extent(cls)[mask > 0] = True

  def stroke(self, line, colour, width, cls=None, closed=False):
    """A polyline `width` canonical units wide; with `cls` it is also a part."""
    thickness = max(1, int(round(width * self.unit)))
    pts = [self.px(line)]
    cv2.polylines(self.image, pts, closed, colour, thickness, cv2.LINE_AA, self.SHIFT)
    if cls is not None:
      cv2.polylines(self.parts, pts, closed, int(cls), thickness, cv2.LINE_8, self.SHIFT)
      if self.extents is not None:
        mask = np.zeros(self.parts.shape, np.uint8)
        cv2.polylines(mask, pts, closed, 1, thickness, cv2.LINE_8, self.SHIFT)
        self._extent(cls)[mask > 0] = True

  def ellipse(self, centre, axes, colour, cls=None, angle=0.0):
    """An ellipse at a canonical centre with canonical semi-axes (image only unless cls)."""
    c = apply(self.matrix, np.asarray(centre, np.float64)[None])[0]
    ax = (max(1, int(round(axes[0] * self.unit * (1 << self.SHIFT)))),
          max(1, int(round(axes[1] * self.unit * (1 << self.SHIFT)))))
    rot = math.degrees(math.atan2(self.matrix[1, 0], self.matrix[0, 0])) + angle
    cc = tuple(int(round(v * (1 << self.SHIFT))) for v in c)
    cv2.ellipse(self.image, cc, ax, rot, 0, 360, colour, -1, cv2.LINE_AA, self.SHIFT)
    if cls is not None:
      cv2.ellipse(self.parts, cc, ax, rot, 0, 360, int(cls), -1, cv2.LINE_8, self.SHIFT)
      if self.extents is not None and cls != BACKGROUND:
        mask = np.zeros(self.parts.shape, np.uint8)
        cv2.ellipse(mask, cc, ax, rot, 0, 360, 1, -1, cv2.LINE_8, self.SHIFT)
        self._extent(cls)[mask > 0] = True

  @contextlib.contextmanager
  def clipped(self, classes):
    """Image-only drawing inside the block shows only where the class map is in `classes`
    (details clipped to their part: an iris to its eye, beard to the skin)."""
    before = self.image.copy()
    yield
    outside = ~np.isin(self.parts, classes)
    np.copyto(self.image, before, where=outside[..., None])


def _shade(colour, factor):
  return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def _mix(a, b, t):
  return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))


def hair_grey(identity: Identity, age: float) -> float:
  """How grey the hair is, 0..1: from the person's onset age, fully grey 25 years later."""
  return float(np.clip((age - identity.grey_onset) / 25.0, 0.0, 1.0))


def render(identity: Identity, look: Look, matrix: np.ndarray, size, *,
           keep_extents: bool = False) -> Rendering:
  """Draws the face through `matrix` (canonical -> pixels) into an image of size (w, h)."""
  g = Geometry(identity, look)
  cv = _Canvas(size, np.asarray(matrix, np.float64), keep_extents)
  rng = np.random.default_rng(look.seed)
  i, age = identity, look.age
  h, w = cv.parts.shape
  # background: a vertical gradient and optional clutter
  ramp = np.linspace(0, 1, h)[:, None, None]
  cv.image[:] = ((1 - ramp) * np.array(look.background) + ramp * np.array(look.background2))[
      :, :1].astype(np.uint8).repeat(w, axis=1)
  for _ in range(look.clutter):
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
    axes = (int(rng.integers(2, max(3, w // 4))), int(rng.integers(2, max(3, h // 4))))
    cv2.ellipse(cv.image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1,
                cv2.LINE_AA)

  grey = hair_grey(i, age)
  hair_colour = _mix(HAIR_COLOURS[i.hair_colour], GREY_HAIR, grey)
  skin = i.skin
  if age > 55:  # older skin is a little paler and greyer
    skin = _mix(skin, (200, 190, 185), min(0.25, (age - 55) / 80))

  # long hair behind the head, neck and shoulders; then the body
  back = g.hair_back_polygon()
  if back is not None:
    cv.fill([back], HAIR, _shade(hair_colour, 0.85))
  cv.fill([g.neck_polygon()], NECK, _shade(skin, 0.85))
  cv.fill([g.cloth_polygon(vneck=bool(look.seed % 2))], CLOTH, look.cloth)
  if look.necktie:
    cv.fill([g.necktie_polygon()], CLOTH, look.accessory)
  if look.necklace:
    cv.stroke(g.necklace_line(), (230, 200, 90), 0.05, NECKLACE)
  for side, cls in ((0, L_EAR), (1, R_EAR)):
    cv.fill([g.ear(side)], cls, _shade(skin, 0.92))
  if look.earrings:
    for side in (0, 1):
      cv.ellipse(g.earlobe(side), (0.055, 0.055), (235, 205, 80), EARRING)

  # face and skin details (drawn before the parts that cover them)
  cv.fill([g.face_polygon()], SKIN, skin)
  with cv.clipped([SKIN]):
    _draw_skin_details(cv, g, i, look, skin, hair_colour)
  if i.double_chin or g.sag > 0.6:
    with cv.clipped([NECK]):
      u = np.linspace(-0.45, 0.45, 12)
      cv.stroke(g.project(u, g.Hb + 0.07 - 0.12 * u ** 2, 0.3), _shade(skin, 0.6), 0.025)

  # nose
  cv.fill([g.nose_polygon()], NOSE, _shade(skin, 0.9))
  with cv.clipped([NOSE]):  # a lit bridge, a shaded side wall and the nostrils
    cv.stroke(g.nose_bridge(8)[1:-1], _shade(skin, 1.1), 0.035)
    cv.stroke(g.surface(np.full(6, 0.06), np.linspace(0.1, g.tip - 0.06, 6), 0.3),
              _shade(skin, 0.75), 0.03)
    for sx in (-1, 1):
      cv.ellipse(g.surface(sx * 0.42 * g.nw, g.tip + 0.04, 0.25), (0.3 * g.nw, 0.025),
                 _shade(skin, 0.45))

  # eyes
  iris = IRIS_COLOURS[i.iris]
  for side, cls in ((0, L_EYE), (1, R_EYE)):
    cv.fill([g.eye_polygon(side)], cls, (238, 236, 232))
    with cv.clipped([cls]):
      radius = g.iris_radius()
      cv.ellipse(g.pupil(side), (radius, radius), iris)
      cv.ellipse(g.pupil(side), (0.45 * radius, 0.45 * radius), (12, 10, 10))
    cv.stroke(g.lid(side, "upper"), (40, 30, 30) if look.makeup else _shade(skin, 0.45),
              0.03 if look.makeup else 0.018)

  # brows
  for side, cls in ((0, L_BROW), (1, R_BROW)):
    cv.fill([g.brow_polygon(side)], cls, _mix(i.brow_colour, hair_colour, grey * 0.6))

  # mouth
  lips = (170, 20, 45) if look.lipstick else i.lip_colour
  inner_upper, inner_lower = g.lip("inner_upper"), g.lip("inner_lower")
  if g.gap > 0.01:
    cv.fill([np.concatenate([inner_upper, inner_lower[::-1]])], MOUTH, (60, 18, 22))
    if g.expression.get("teeth"):
      with cv.clipped([MOUTH]):
        band = np.concatenate([inner_upper, inner_upper[::-1] + [0, 0.05 + 0.25 * g.gap]])
        cv.fill([band], None, (245, 245, 238))
  cv.fill([np.concatenate([g.lip("outer_upper"), inner_upper[::-1]])], U_LIP, _shade(lips, 0.9))
  cv.fill([np.concatenate([inner_lower, g.lip("outer_lower")[::-1]])], L_LIP, lips)
  if g.gap <= 0.01:
    cv.stroke(inner_upper, _shade(lips, 0.45), 0.015)

  # hair in front of the face
  if i.hair_style == "bald":
    cv.fill(g.bald_fringe_polygons(), HAIR, hair_colour)
  else:
    cv.fill([g.hair_cap_polygon()], HAIR, hair_colour)
    if i.sideburns:
      cv.fill(g.sideburn_polygons(), HAIR, hair_colour)
    if i.bangs:
      cv.fill([g.bangs_polygon()], HAIR, _shade(hair_colour, 0.95))
  with cv.clipped([HAIR]):  # strands
    for _ in range(10):
      x0 = rng.uniform(-g.W, g.W)
      strand = np.stack([x0 + 0.2 * np.sin(np.linspace(0, 3, 8) + x0),
                         np.linspace(-g.Ht - 0.1, 1.5, 8)], axis=1)
      cv.stroke(strand, _shade(hair_colour, 0.75), 0.015)

  # accessories in front of everything
  if look.glasses:
    _draw_glasses(cv, g, look)
  if look.hat:
    crown, brim = g.hat_polygons()
    cv.fill([crown], HAT, look.accessory)
    cv.fill([brim], HAT, _shade(look.accessory, 0.75))
  if look.occluder is not None:
    x, y, rx, ry, *colour = look.occluder
    cv.ellipse(g.surface(x, y, 0.5), (rx, ry), tuple(colour), BACKGROUND)

  cv.image = _light(cv, g, look)
  return Rendering(cv.image, cv.parts, cv.matrix, g, cv.extents)


def _draw_skin_details(cv, g, i, look, skin, hair_colour):
  """Age lines, beard, cheeks, make-up and the mole (image only; the caller clips to skin)."""
  age, W = look.age, g.W
  line = _shade(skin, 0.62)
  wrinkle = float(np.clip((age - 25) / 40.0, 0.0, 1.0))  # 0 at 25, 1 at 65
  if wrinkle > 0:
    for k in range(1 + int(wrinkle * 4)):  # forehead lines
      y = -0.42 - 0.09 * k
      xs = np.linspace(-0.45, 0.45, 12) * W
      cv.stroke(g.surface(xs, y + 0.03 * (xs / W) ** 2, 0.0),
                _mix(skin, line, min(1.0, 0.4 + wrinkle)), 0.012 + 0.012 * wrinkle)
    for sx in (-1, 1):  # nose-mouth folds
      t = np.linspace(0, 1, 10)
      xs = sx * (g.nw + 0.03 + (g.mw - g.nw + 0.05) * t)
      ys = g.tip - 0.02 + (g.my + 0.12 - g.tip) * t ** 1.3
      cv.stroke(g.surface(xs, ys, 0.1), _mix(skin, line, 0.3 + 0.7 * wrinkle),
                0.012 + 0.015 * wrinkle)
    if age > 38:  # crow's feet
      for sx in (-1, 1):
        ox = sx * (g.s + g.ew + 0.04)
        for dy in (-0.05, 0.0, 0.05):
          cv.stroke(g.surface(np.array([ox, ox + sx * 0.1]), np.array([dy * 0.5, dy * 1.4])),
                    _mix(skin, line, wrinkle), 0.012)
  if look.bags or age > 50:
    for side in (0, 1):
      lower = g.lid(side, "lower", 12)
      cv.stroke(lower + [0, 0.05], _mix(skin, line, 0.6), 0.02)
  if i.high_cheekbones:
    for sx in (-1, 1):
      cv.ellipse(g.surface(sx * 0.55 * W, 0.32, 0.02), (0.16, 0.06),
                 _shade(skin, 1.12), angle=-sx * 20)
  if look.rosy or look.makeup:
    for sx in (-1, 1):
      cv.ellipse(g.surface(sx * 0.55 * W, 0.45, 0.02), (0.13, 0.09),
                 _mix(skin, (225, 80, 90), 0.45))
  if look.makeup:
    for side in (0, 1):
      upper = g.lid(side, "upper", 12)
      cv.fill([np.concatenate([upper, (upper - [0, 0.08])[::-1]])], None, (120, 70, 140))
  beard = _mix(skin, hair_colour, 0.85)
  if i.beard in ("stubble",):
    jaw = g.jaw_line(24)[3:-3]
    cv.stroke(jaw, _mix(skin, hair_colour, 0.45), 0.22)
    cv.fill([np.concatenate([g.lip("outer_upper") - [0, 0.01],
                             (g.lip("outer_upper") - [0, 0.09])[::-1]])],
            None, _mix(skin, hair_colour, 0.45))
  if i.beard in ("goatee", "full"):
    u = np.linspace(-1, 1, 16)
    top = g.my + 0.13 + 0.02 * u ** 2
    cv.fill([g.surface(np.concatenate([0.75 * g.mw * u, 0.55 * g.mw * u[::-1]]),
                       np.concatenate([top, g.Hb + 0.08 - 0.05 * u[::-1] ** 2]), 0.05)],
            None, beard)
  if i.beard in ("mustache", "full"):
    upper = g.lip("outer_upper")
    cv.fill([np.concatenate([upper + [0, -0.005], (upper * [1.1, 1] - [0, 0.1])[::-1]])],
            None, beard)
  if i.mole is not None:
    cv.ellipse(g.surface(*i.mole, 0.0), (0.028, 0.028), _shade(skin, 0.35))


def _draw_glasses(cv, g, look):
  """Frames and lenses; the lenses tint what is behind them (the class map says glasses)."""
  rims, insides, bars = g.glasses_polygons()
  behind = cv.image.copy()
  cv.fill(rims + bars, GLASSES, look.accessory)
  lens = np.zeros(cv.parts.shape, np.uint8)
  cv2.fillPoly(lens, [cv.px(p) for p in insides], 1, cv2.LINE_AA, cv.SHIFT)
  tinted = (behind.astype(np.float32) * 0.88 + 20).clip(0, 255).astype(np.uint8)
  np.copyto(cv.image, tinted, where=lens[..., None] > 0)


def _light(cv, g, look):
  """Shading of the face's roundness, directional light, colour tint, blur and sensor noise."""
  h, w = cv.parts.shape
  inverse = cv2.invertAffineTransform(cv.matrix)
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
  cx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
  cy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
  r2 = (cx / g.W) ** 2 + ((cy - 0.1) / g.Hb) ** 2
  skin_like = np.isin(cv.parts, (SKIN, NOSE, L_EAR, R_EAR, NECK))
  round_shade = np.where(skin_like, 1.0 - 0.22 * np.clip(r2, 0, 1.3) ** 2, 1.0)
  along = math.cos(look.light_angle) * cx + math.sin(look.light_angle) * cy
  light = look.brightness * round_shade * (1.0 + look.light_strength * np.clip(along, -1.5, 1.5))
  image = cv.image.astype(np.float32) * light[..., None] * np.asarray(look.tint, np.float32)
  if look.blur > 0:
    image = cv2.GaussianBlur(image, (0, 0), look.blur * cv.unit)
  noise = np.random.default_rng(look.seed + 1).normal(0, 2.0, image.shape).astype(np.float32)
  image = np.clip(image + noise, 0, 255).astype(np.uint8)
  if look.grey_image:
    image = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
  return image


# --- labels --------------------------------------------------------------------------------------

def hair_colour_name(identity: Identity, age: float) -> str | None:
  """The colour CelebA would name: 'gray' once mostly grey, None when bald."""
  if identity.hair_style == "bald":
    return None
  return "gray" if hair_grey(identity, age) > 0.5 else identity.hair_colour


def mouth_gap(identity: Identity, look: Look) -> float:
  return Geometry(identity, look).gap


def celeba_attributes(identity: Identity, look: Look) -> dict:
  """The 40 CelebA attributes of this face, {name: bool}, derived from what is drawn."""
  hair = hair_colour_name(identity, look.age)
  gap = mouth_gap(identity, look)
  beard = identity.beard
  return {
      "5_o_Clock_Shadow": beard == "stubble",
      "Arched_Eyebrows": identity.arched,
      "Attractive": identity.attractive,
      "Bags_Under_Eyes": look.bags or look.age > 50,
      "Bald": identity.hair_style == "bald",
      "Bangs": identity.bangs,
      "Big_Lips": identity.big_lips,
      "Big_Nose": identity.big_nose,
      "Black_Hair": hair == "black",
      "Blond_Hair": hair == "blond",
      "Blurry": look.blur > 0,
      "Brown_Hair": hair in ("brown", "red"),
      "Bushy_Eyebrows": identity.bushy,
      "Chubby": identity.chubby,
      "Double_Chin": identity.double_chin,
      "Eyeglasses": look.glasses,
      "Goatee": beard in ("goatee", "full"),
      "Gray_Hair": hair == "gray",
      "Heavy_Makeup": look.makeup,
      "High_Cheekbones": identity.high_cheekbones,
      "Male": identity.male,
      "Mouth_Slightly_Open": 0.01 < gap <= 0.16,
      "Mustache": beard in ("mustache", "full"),
      "Narrow_Eyes": identity.narrow_eyes,
      "No_Beard": beard in ("none", "stubble"),
      "Oval_Face": identity.oval,
      "Pale_Skin": identity.pale,
      "Pointy_Nose": identity.pointy_nose,
      "Receding_Hairline": identity.receding,
      "Rosy_Cheeks": look.rosy,
      "Sideburns": identity.sideburns,
      "Smiling": look.expression == 1,
      "Straight_Hair": hair is not None and not identity.wavy,
      "Wavy_Hair": hair is not None and identity.wavy,
      "Wearing_Earrings": look.earrings,
      "Wearing_Hat": look.hat,
      "Wearing_Lipstick": look.lipstick,
      "Wearing_Necklace": look.necklace,
      "Wearing_Necktie": look.necktie,
      "Young": look.age < 36,
  }
