"""Per-task transforms: a prepared example in, the model's input example out (SPEC 2.5).

  transform = transforms.for_task("align_300w", train=True, image_size=512)
  out = transform(example, np.random.default_rng(seed))      # rng unused at evaluation

Transforms are plain picklable objects (grain workers copy them); all randomness comes from the
`rng` argument, so a seed fixes the output. Images stay uint8 RGB: the group's normalisation
(SPEC 2.5) happens on the device. Every pixel constant of the official 512/112-px pipelines is a
fraction of `image_size`, so other sizes (the CPU demo's 128 / 64) scale consistently.

Output by task type (training keeps only these keys, so examples stack into batches):
  recog     image [S, S, 3] uint8, label int32
  age       image, age float32
  affect    image, label int32 (AffectNet order)
  biattr    image, attributes int32 [A] (1, 0, -1 = unknown)
  align     image, landmarks float32 [K, 2] (x, y) in the crop's pixels (centres at integers)
  parsing   image, label uint8 [S, S] (class ids < the task's class count; 0 outside the image)

Evaluation output is deterministic. `image` is the model input as above; the targets stay in
ORIGINAL coordinates under their own names, because the metrics are computed there (the official
test transforms keep them the same way, and faceptor_jax/evaluators expect them so):
  align    landmarks float32 [K, 2] original pixels, box float32 [4] (x0, y0, x1, y1)
  parsing  label uint8 [H, W] at the label map's own resolution (CelebAMask-HQ 512; LaPa the
           image size), where F1 is computed
and the dense types add what maps predictions back:
  matrix       float32 [3, 3]: crop pixels -> original pixels (after undoing the tanh-warp)
  warp_factor  float32: the tanh-warp factor (0.8 for LaPa, else 0)
  crop_size    int32: S
Every other key of the input (name, visible, subset flags, ...) passes through unchanged at
evaluation. `landmarks_to_original` and `parsing_to_original` map predictions back.

Per type (SPEC 2.5):
  recog    resize to S if needed, horizontal flip p 0.5. Eval: resize only.
  age / biattr / affect
           (AffectNet 2017's face `box` cropped first) timm's RandomResizedCrop with scale and
           ratio (1, 1) (a square crop of the short side), PIL bicubic resize to S, flip p 0.5,
           RandAugment rand-m9-mstd0.5-inc1, random erasing p 0.25 in pixel mode.
           Eval: torchvision's `Resize([S, S])`, i.e. PIL bilinear to S x S (the aspect is not
           kept, as in the official evaluation).
  align    the box -> S x S crop matrix, a random similarity about the crop centre (shift
           U(+-0.05) S, rotation U(+-0.174) rad, scale U(mu +- 0.1); mu 0.8 for 300W/WFLW/COFW,
           1.0 for AFLW-19), bilinear warp with border 0, points through the same matrix; then
           RandomOcclusion, NoiseFusion (p 0.5), RandomGray, RandomGamma, RandomBlur. Optional
           flip (`flip=True`) mirrors the crop and reorders points (landmark_flip). Eval: the crop
           and a fixed zoom by mu.
  parsing  an image larger than its label map is first resized to the label's size
           (cv2 INTER_LINEAR, as the official CelebAMask-HQ loader). CelebAMask-HQ: resize to S,
           then a random similarity (shift U(+-0.01) S, rotation N(0, 0.314), scale N(1, 0.1)).
           LaPa: FaRL's 5-point alignment of landmarks [104, 105, 54, 84, 90] onto the template
           scaled to S, the same random similarity, and the tanh-warp with factor 0.8. Image
           bilinear, label nearest, border 0; then RandomGray, RandomGamma, RandomBlur.
           Eval: the deterministic part (resize; alignment + tanh-warp).
"""

from __future__ import annotations

import cv2
import numpy as np
import PIL.Image

from data_pipelines import geometry
from data_pipelines import landmark_flip
from data_pipelines import photometric
from data_pipelines import randaugment
from data_pipelines import random_erasing
from faceptor_jax import tasks

# SPEC 2.5: landmark crops are zoomed by mu (0.8 leaves a margin around the 300W/WFLW/COFW boxes;
# AFLW-19's boxes are used as given).
ALIGN_SCALE_MU = {"align_300w": 0.8, "align_wflw": 0.8, "align_cofw": 0.8, "align_aflw": 1.0}
PARSING_WARP_FACTOR = {"parsing_celebam": 0.0, "parsing_lapa": 0.8}
# LaPa's 106 points: the two pupils, the nose tip and the two mouth corners (FaRL's choice).
LAPA_ALIGN_POINTS = (104, 105, 54, 84, 90)


def for_task(task_name: str, train: bool, image_size: int, **options):
  """The transform of `task_name` (see the module docstring): a picklable callable
  `(example, rng) -> example`. Options are the keyword arguments of the type's class."""
  task = tasks.get(task_name)
  kind = {"recog": RecognitionTransform, "age": AttributeTransform,
          "biattr": AttributeTransform, "affect": AttributeTransform,
          "align": AlignTransform, "parsing": ParsingTransform}[task.type.name]
  return kind(task_name, train, image_size, **options)


# --- shared helpers ---------------------------------------------------------------------------

def _rgb(image, task_name: str) -> np.ndarray:
  """The example's image as uint8 [H, W, 3]; grey images are replicated, alpha is dropped."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4) \
      or image.shape[0] == 0 or image.shape[1] == 0:
    raise ValueError(f"{task_name}: expected a uint8 image [H, W, 3], got {image.dtype} "
                     f"{image.shape}")
  if image.shape[-1] == 1:
    return np.repeat(image, 3, axis=-1)
  return np.ascontiguousarray(image[..., :3])  # a copy only when alpha is dropped


def _pil_resize(image: np.ndarray, size: int, resample) -> np.ndarray:
  """PIL's resize (antialiased when shrinking), which torchvision and timm use on PIL images."""
  if image.shape[:2] == (size, size):
    return image
  return np.asarray(PIL.Image.fromarray(image).resize((size, size), resample))


def _crop_box(image: np.ndarray, box, task_name: str) -> np.ndarray:
  """The face box (x0, y0, x1, y1) cut out of the image (rounded to pixels, clipped to it)."""
  h, w = image.shape[:2]
  x0, y0, x1, y1 = (int(round(float(v))) for v in box)
  x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f"{task_name}: face box {list(box)} lies outside the {w}x{h} image")
  return image[y0:y1, x0:x1]


def _require(example: dict, key: str, task_name: str):
  if key not in example:
    raise KeyError(f"{task_name}: the example has no {key!r} (keys: {sorted(example)})")
  return example[key]


def _passthrough(example: dict, consumed) -> dict:
  return {k: v for k, v in example.items() if k not in consumed}


def _photometric_tail(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  image = photometric.random_gray(image, rng)
  image = photometric.random_gamma(image, rng)
  return photometric.random_blur(image, rng)


# --- recognition --------------------------------------------------------------------------------

class RecognitionTransform:
  """Already-aligned 112-px faces: resize if the size differs, random horizontal flip."""

  def __init__(self, task_name: str, train: bool, image_size: int, flip_prob: float = 0.5):
    self.task_name, self.train, self.size = task_name, train, image_size
    self.flip_prob = flip_prob

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    image = _rgb(_require(example, "image", self.task_name), self.task_name)
    image = _pil_resize(image, self.size, PIL.Image.BILINEAR)
    out = {} if self.train else _passthrough(example, ("image", "label"))
    if self.train and rng.random() < self.flip_prob:
      image = image[:, ::-1]
    out["image"] = np.ascontiguousarray(image)
    if self.train or "label" in example:  # verification pairs carry no identity label
      out["label"] = np.int32(_require(example, "label", self.task_name))
    return out


def flip_horizontal(images):
  """Mirror images [..., H, W, C] left-right (verification's flip test); numpy or jax arrays."""
  return images[..., ::-1, :]


class IjbcEvalTransform:
  """IJB-C's loose crops aligned by their 5 points to the ArcFace template at S x S
  (data_pipelines.face_align), plus `matrix` [3, 3] crop -> original like the dense tasks."""

  def __init__(self, image_size: int = 112, landmarks_key: str = "landmarks"):
    self.size, self.landmarks_key = image_size, landmarks_key

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    from data_pipelines import face_align  # another module of the project, imported on use
    image, matrix = face_align.align(_rgb(example["image"], "ijbc"),
                                     np.asarray(example[self.landmarks_key], np.float32),
                                     self.size)
    to_crop = np.vstack([np.asarray(matrix, np.float64)[:2], [0.0, 0.0, 1.0]])
    out = _passthrough(example, ("image",))
    out["image"] = np.ascontiguousarray(image, dtype=np.uint8)
    out["matrix"] = np.linalg.inv(to_crop).astype(np.float32)
    return out


# --- age, attributes, expression ------------------------------------------------------------

_TARGETS = {"age": ("age", np.float32), "affect": ("label", np.int32),
            "biattr": ("attributes", np.int32)}


def timm_square_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """timm's RandomResizedCrop with scale = ratio = (1, 1), before its resize: a square of side
  round(sqrt(H W)) at a random offset when it fits (near-square images), else timm's fallback,
  the centred square of the short side."""
  h, w = image.shape[:2]
  side = int(round(np.sqrt(h * w)))
  if side <= w and side <= h:
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
  else:
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
  return image[top:top + side, left:left + side]


class AttributeTransform:
  """The 112-px non-identity tasks (age, binary attributes, expression): timm's training
  transform (see the module docstring) or the official `Resize([S, S])` at evaluation."""

  def __init__(self, task_name: str, train: bool, image_size: int, magnitude: float = 9,
               magnitude_std: float = 0.5, num_ops: int = 2, erase_prob: float = 0.25,
               flip_prob: float = 0.5):
    task = tasks.get(task_name)
    self.task_name, self.train, self.size = task_name, train, image_size
    self.target_key, self.target_dtype = _TARGETS[task.type.name]
    mean, std = tasks.GROUP_MEAN_STD[task.group]
    self.flip_prob = flip_prob
    self.randaugment = randaugment.RandAugment(magnitude, magnitude_std, num_ops,
                                               fill=randaugment.fill_for_mean(mean))
    self.erasing = random_erasing.RandomErasing(erase_prob, mean=mean, std=std)

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    image = _rgb(_require(example, "image", self.task_name), self.task_name)
    if "box" in example:  # AffectNet 2017 ships full images with a face box
      image = _crop_box(image, example["box"], self.task_name)
    if self.train:
      image = _pil_resize(timm_square_crop(image, rng), self.size, PIL.Image.BICUBIC)
      if rng.random() < self.flip_prob:
        image = image[:, ::-1]
      image = self.erasing(self.randaugment(np.ascontiguousarray(image), rng), rng)
      out = {}
    else:
      image = _pil_resize(image, self.size, PIL.Image.BILINEAR)
      out = _passthrough(example, ("image", "box", self.target_key))
    out["image"] = np.ascontiguousarray(image)
    out[self.target_key] = np.asarray(_require(example, self.target_key, self.task_name),
                                      self.target_dtype)
    return out


# --- landmarks ---------------------------------------------------------------------------------

class AlignTransform:
  """Landmark tasks: the dataset's box cropped to S x S with FaRL's random similarity."""

  def __init__(self, task_name: str, train: bool, image_size: int,
               scale_mu: float | None = None, flip: bool = False, shift_range: float = 0.05,
               rotation_range: float = 0.174, scale_range: float = 0.1,
               photometric: bool = True):
    self.task_name, self.train, self.size = task_name, train, image_size
    self.photometric = photometric  # occlusion, noise, gray, gamma, blur (official: on)
    self.num_points = tasks.get(task_name).num_outputs
    self.scale_mu = ALIGN_SCALE_MU[task_name] if scale_mu is None else scale_mu
    self.flip = flip
    if flip and self.num_points not in landmark_flip.PERMUTATIONS:  # fail here, not in a worker
      raise ValueError(f"{task_name}: no left/right table for {self.num_points} landmarks")
    self.shift_range, self.rotation_range, self.scale_range = \
        shift_range, rotation_range, scale_range

  def warp(self, example: dict, rng: np.random.Generator | None = None):
    """The geometric part: (crop [S, S, 3], points [K, 2] in crop pixels, to-crop matrix)."""
    image = _rgb(_require(example, "image", self.task_name), self.task_name)
    points = np.asarray(_require(example, "landmarks", self.task_name), np.float64)
    if points.shape != (self.num_points, 2):
      raise ValueError(f"{self.task_name}: expected landmarks [{self.num_points}, 2], got "
                       f"{points.shape}")
    matrix = geometry.crop_resize_matrix(_require(example, "box", self.task_name), self.size)
    if self.train:
      shift = rng.uniform(-self.shift_range, self.shift_range, size=2) * self.size
      angle = rng.uniform(-self.rotation_range, self.rotation_range)
      scale = rng.uniform(self.scale_mu - self.scale_range, self.scale_mu + self.scale_range)
    else:
      shift, angle, scale = (0.0, 0.0), 0.0, self.scale_mu
    matrix = geometry.similarity_about_center(angle, scale, shift, self.size) @ matrix
    return geometry.warp_image(image, matrix, self.size), geometry.to_crop(points, matrix), matrix

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    crop, crop_points, matrix = self.warp(example, rng)
    if not self.train:
      out = _passthrough(example, ("image",))
      out.update(image=crop, landmarks=np.asarray(example["landmarks"], np.float32),
                 box=np.asarray(example["box"], np.float32), **_crop_meta(matrix, 0.0, self.size))
      return out
    if self.flip and rng.random() < 0.5:
      crop = np.ascontiguousarray(crop[:, ::-1])
      crop_points = landmark_flip.flip_landmarks(crop_points, self.size)
    if self.photometric:
      crop = photometric.random_occlusion(crop, rng)
      if rng.random() < 0.5:
        crop = photometric.noise_fusion(crop, rng)
      crop = _photometric_tail(crop, rng)
    return {"image": crop, "landmarks": crop_points.astype(np.float32)}


def _crop_meta(to_crop: np.ndarray, warp_factor: float, size: int) -> dict:
  return {"matrix": np.linalg.inv(to_crop).astype(np.float32),
          "warp_factor": np.float32(warp_factor), "crop_size": np.int32(size)}


# --- parsing -----------------------------------------------------------------------------------

class ParsingTransform:
  """Face parsing: CelebAMask-HQ (resize) or LaPa (5-point alignment + tanh-warp), see above."""

  def __init__(self, task_name: str, train: bool, image_size: int,
               warp_factor: float | None = None, shift_range: float = 0.01,
               rotation_sigma: float = 0.314, scale_sigma: float = 0.1,
               photometric: bool = True):
    self.task_name, self.train, self.size = task_name, train, image_size
    self.photometric = photometric  # gray, gamma, blur (official: on)
    self.num_classes = tasks.get(task_name).num_outputs
    self.aligned = task_name == "parsing_lapa"
    self.warp_factor = PARSING_WARP_FACTOR[task_name] if warp_factor is None else warp_factor
    self.shift_range, self.rotation_sigma, self.scale_sigma = \
        shift_range, rotation_sigma, scale_sigma

  def _label(self, example: dict) -> np.ndarray:
    label = np.asarray(_require(example, "label", self.task_name))
    if label.ndim == 3 and label.shape[-1] == 1:
      label = label[..., 0]
    if label.ndim != 2 or label.dtype != np.uint8:
      raise ValueError(f"{self.task_name}: expected a uint8 label map [H, W(, 1)], got "
                       f"{label.dtype} {label.shape}")
    if label.size and label.max() >= self.num_classes:
      bad = np.unique(label[label >= self.num_classes])
      raise ValueError(f"{self.task_name}: label map holds class ids {bad.tolist()} outside "
                       f"0..{self.num_classes - 1}")
    return label

  def warp(self, example: dict, rng: np.random.Generator | None = None):
    """The geometric part: (crop [S, S, 3], crop label [S, S], to-crop matrix, original label)."""
    image = _rgb(_require(example, "image", self.task_name), self.task_name)
    label = self._label(example)
    if self.aligned:
      points = np.asarray(_require(example, "landmarks", self.task_name), np.float64)
      if points.ndim != 2 or points.shape[0] <= max(LAPA_ALIGN_POINTS):
        raise ValueError(f"{self.task_name}: expected landmarks [106, 2], got {points.shape}")
    if image.shape[:2] != label.shape:
      # The label map defines the original resolution (CelebAMask-HQ: 1024 image, 512 labels).
      if self.aligned:
        points = geometry.apply_matrix(points, geometry.resize_matrix(image.shape, label.shape))
      image = cv2.resize(image, label.shape[::-1], interpolation=cv2.INTER_LINEAR)
    if self.aligned:
      matrix = geometry.face_align_matrix(points[list(LAPA_ALIGN_POINTS)], self.size)
    else:
      matrix = geometry.resize_matrix(label.shape, (self.size, self.size))
    if self.train:
      shift = rng.uniform(-self.shift_range, self.shift_range, size=2) * self.size
      angle = rng.normal(0.0, self.rotation_sigma)
      scale = rng.normal(1.0, self.scale_sigma)
      matrix = geometry.similarity_about_center(angle, scale, shift, self.size) @ matrix
    crop, crop_label = geometry.warp_images([image, label], [cv2.INTER_LINEAR, cv2.INTER_NEAREST],
                                            matrix, self.size, self.warp_factor)
    return crop, crop_label, matrix, label

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    crop, crop_label, matrix, label = self.warp(example, rng)
    if self.train:
      return {"image": _photometric_tail(crop, rng) if self.photometric else crop,
              "label": crop_label}
    out = _passthrough(example, ("image", "label"))
    out.update(image=crop, label=label, **_crop_meta(matrix, self.warp_factor, self.size))
    return out


# --- predictions back to the original image ----------------------------------------------------

def _single_warp_factor(example_meta: dict) -> float:
  factors = np.unique(np.asarray(example_meta.get("warp_factor", 0.0), np.float64))
  if factors.size != 1:
    raise ValueError(f"examples with different warp factors {factors.tolist()} in one call")
  return float(factors[0])


def landmarks_to_original(points_crop_px, example_meta: dict) -> np.ndarray:
  """Points [..., K, 2] in crop pixels (e.g. the model's [0, 1] output * S - 0.5) -> original
  image pixels, through the example's (or batch's) `matrix` [..., 3, 3] and tanh-warp."""
  warp_factor = _single_warp_factor(example_meta)
  size = int(np.max(example_meta.get("crop_size", 0)))
  if warp_factor > 0 and size <= 0:
    raise KeyError("undoing a tanh-warp needs the example's 'crop_size'")
  matrix = np.asarray(example_meta["matrix"], np.float64)
  return geometry.to_original(points_crop_px, np.linalg.inv(matrix), warp_factor, size)


def parsing_to_original(logits, example_meta: dict, original_hw) -> np.ndarray:
  """Per-class scores [S, S, C] of one example -> [H, W, C] float32 on the original label grid,
  sampled bilinearly through the inverse of the example's crop (and tanh-warp), 0 outside the
  crop (so argmax gives background there)."""
  logits = np.asarray(logits, np.float32)
  to_crop = np.linalg.inv(np.asarray(example_meta["matrix"], np.float64))
  return geometry.warp_to_original(logits, to_crop, original_hw, _single_warp_factor(example_meta))
