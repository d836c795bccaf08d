"""Synthetic faces written in every dataset's raw distribution format (the embedded default).

  python -m data_pipelines.synthetic --out=/tmp/faceptor_raw [--datasets=rafdb,celeba] [--num=20] \
      [--seed=0] [--overwrite]

writes `<out>/<dataset>/` for each dataset of `prepare.DATASETS`, laid out exactly as the real
release is (DATASETS.md, section 19 included), so that `python -m data_pipelines.prepare
--dataset=<dataset> --manual_dir=<out>/<dataset>` reads it with the real builder. The faces come
from `synthetic_face` and carry exact ground truth for their dataset's task.

API: `write_dataset(name, root, num_per_split, seed, image_size, **options)` -> `root/name`;
`write_all(root, ...)`. `num_per_split` is an int (every split) or {split: count}; the splits
and what a count means, per dataset (`SPLITS`):
  ibug300w       train (afw, helen/trainset, lfpw/trainset), valid_common (helen/testset,
                 lfpw/testset), valid_challenge (ibug), test (300W/01_Indoor, 02_Outdoor)
  wflw           train, test (every 3rd image holds two faces; the first test face has all six
                 subset flags, so every subset list has a face)
  cofw, aflw19   train, test (AFLW-19: `ra` puts the `train` faces first; the builder's
                 prepare option train_size must equal that count)
  celebamask_hq, lapa, celeba, ferplus   train, val, test
  morph2         all (one pool; the builder makes its seeded 80/20 split)
  utkface        train, test (the CORAL lists: ages 21-60), plus unlisted images of other ages
  affectnet      train (train_set), test (val_set), plus Contempt images the builder filters
  rafdb          train, test
  lfw73          all (the builder splits people by a hash of their name; the names are picked
                 so that people alternate between its two splits)
  ms1mv3         train (images; `images_per_identity`, default IMAGES_PER_IDENTITY, per person)
  verification   pairs in each of lfw.bin, cfp_fp.bin (frontal vs turned), agedb_30.bin (ages
                 30 years apart)
  ijbc           images (2 templates of 2 photos per person, the first template's photos one
                 media; all genuine template pairs and as many impostor ones)
FERPlus adds per split one row each of the kinds its majority rule drops (no majority, majority
unknown, majority not-a-face, removed = empty name) and one Contempt row (kept by `8cls`).

Everything is a pure function of (seed, dataset, split, index): the same arguments give the same
files, byte for byte, except the `.mat` files (MATLAB headers and HDF5 carry a creation time).
Pass `truth={}` to get, per builder split, {example name as the builder stores it: label}.

Image sizes: `image_size` is the width (`DEFAULT_SIZES`; heights follow each release's shape:
CelebA 178:218, MORPH 5:6, the in-the-wild sets vary). The aligned 112-px datasets are written
at 112 (RAF-DB at its own 100, FERPlus at its format's fixed 48), the dense ones at 192-224 with
faces of about half the picture; CelebAMask-HQ's masks are `image_size` and its images twice
that (512 vs 1024 in the real set). Landmark files keep each format's convention: 300W `.pts`
are 1-based, the rest 0-based pixel centres (COFW, AFLW-19, WFLW and LaPa are read as they are).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import zlib

import cv2
import numpy as np
from absl import app, flags

from data_pipelines import synthetic_face as sf
from faceptor_jax import tasks

SPLITS = {
    "ibug300w": ("train", "valid_common", "valid_challenge", "test"),
    "wflw": ("train", "test"), "cofw": ("train", "test"), "aflw19": ("train", "test"),
    "celebamask_hq": ("train", "val", "test"), "lapa": ("train", "val", "test"),
    "morph2": ("all",), "utkface": ("train", "test"),
    "affectnet": ("train", "test"), "rafdb": ("train", "test"), "ferplus": ("train", "val", "test"),
    "celeba": ("train", "val", "test"), "lfw73": ("all",),
    "ms1mv3": ("train",), "verification": ("lfw", "cfp_fp", "agedb_30"), "ijbc": ("images",),
}
DEFAULT_SIZES = {
    "ibug300w": 224, "wflw": 224, "cofw": 192, "aflw19": 224, "celebamask_hq": 128, "lapa": 192,
    "morph2": 128, "utkface": 128, "affectnet": 128, "rafdb": 100, "ferplus": 48, "celeba": 112,
    "lfw73": 128, "ms1mv3": 112, "verification": 112, "ijbc": 128,
}
IMAGES_PER_IDENTITY = 10  # MS1MV3
JPEG_QUALITY = 95         # insightface's


# --- shared pieces -------------------------------------------------------------------------------

def item_rng(seed: int, *keys) -> np.random.Generator:
  """The generator of one item: a pure function of the seed and the item's keys, so an item does
  not depend on what else is written or in which order."""
  words = [zlib.crc32(str(k).encode()) for k in keys]
  return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def _counts(name, num_per_split) -> dict:
  if isinstance(num_per_split, dict):
    unknown = set(num_per_split) - set(SPLITS[name])
    if unknown:
      raise ValueError(f"synthetic {name}: unknown splits {sorted(unknown)}; "
                       f"its splits are {SPLITS[name]}")
    return {s: int(num_per_split.get(s, 0)) for s in SPLITS[name]}
  return {s: int(num_per_split) for s in SPLITS[name]}


def _jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
  image = rgb[..., ::-1] if rgb.ndim == 3 else rgb  # OpenCV encodes BGR
  ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, quality])
  assert ok
  return data.tobytes()


def _png(array: np.ndarray) -> bytes:
  image = array[..., ::-1] if array.ndim == 3 else array
  ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
  assert ok
  return data.tobytes()


def _save(path: str, data: bytes | str, newline: str = "\n") -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if isinstance(data, str):
    data = data.replace("\n", newline).encode("utf-8")
  with open(path, "wb") as f:
    f.write(data)


def _aligned(identity, look, size, rng, template=sf.ARCFACE_TEMPLATE, template_size=(112, 112),
             jitter=0.02) -> sf.Rendering:
  """A crop aligned on 5 points like the aligned releases, `size` = (w, h)."""
  g = sf.Geometry(identity, look)
  scale = np.array(size, np.float64) / np.array(template_size, np.float64)
  return sf.render(identity, look, sf.aligned_matrix(g, template * scale, rng, jitter), size)


def _picture(identity, look, size, rng, face=(0.45, 0.6), roll=0.25) -> sf.Rendering:
  """The face somewhere in a larger photo: its 68-point box spans `face` of the shorter side."""
  w, h = size
  g = sf.Geometry(identity, look)
  side = float(rng.uniform(*face)) * min(w, h)
  room = np.array([w, h]) - side
  centre = np.array([w, h]) / 2 + rng.uniform(-0.25, 0.25, 2) * room
  matrix = sf.placed_matrix(g, side, centre, float(rng.uniform(-roll, roll)))
  return sf.render(identity, look, matrix, size)


def _person(seed, *keys, **fixed) -> sf.Identity:
  return sf.sample_identity(item_rng(seed, "identity", *keys), **fixed)


def _balanced(n: int, classes: int, rng) -> np.ndarray:
  """n labels with every class as often as possible, in a random order."""
  return rng.permutation(np.arange(n) % classes)


def _fmt(values, digits=3) -> str:
  return " ".join(f"{v:.{digits}f}" for v in np.asarray(values).reshape(-1))


# --- landmarks -----------------------------------------------------------------------------------

def _landmark_look(rng, identity, hard=False, **fixed):
  """In-the-wild looks: more pose, light and occlusion when `hard` (300W's challenging set)."""
  spread = 1.6 if hard else 1.0
  look = dict(yaw=float(rng.uniform(-0.35, 0.35) * spread), pitch=float(rng.uniform(-0.2, 0.2)),
              clutter=int(rng.integers(0, 6)), grey_image=bool(rng.random() < 0.05))
  look.update(fixed)
  return sf.sample_look(rng, identity, **look)


def write_ibug300w(folder, counts, seed, size, truth, **_):
  """300W: iBUG folders of images with `.pts` files (1-based), one face per image."""
  layout = {"train": ("afw", "helen/trainset", "lfpw/trainset"),
            "valid_common": ("helen/testset", "lfpw/testset"), "valid_challenge": ("ibug",),
            "test": ("300W/01_Indoor", "300W/02_Outdoor")}
  for split, n in counts.items():
    for sub in layout[split] if n else ():  # every folder of the release, even when few faces
      os.makedirs(os.path.join(folder, sub), exist_ok=True)
    for k in range(n):
      rng = item_rng(seed, "ibug300w", split, k)
      sub = layout[split][k % len(layout[split])]
      stem = {"afw": f"{1000 + 37 * k}_1", "helen/trainset": f"{20000 + 53 * k}_1",
              "helen/testset": f"{30000 + 29 * k}_1", "lfpw/trainset": f"image_{k + 1:04d}",
              "lfpw/testset": f"image_{k + 1:04d}_1", "ibug": f"image_{k + 3:03d}_1",
              "300W/01_Indoor": f"indoor_{k + 1:03d}",
              "300W/02_Outdoor": f"outdoor_{k + 1:03d}"}[sub]
      if sub == "ibug" and k == 1:  # a real iBUG file name holds a space
        stem = "image_092 _01"
      ext = ".png" if sub.startswith(("lfpw", "300W")) else ".jpg"
      identity = _person(seed, "ibug300w", split, k)
      look = _landmark_look(rng, identity, hard=split == "valid_challenge",
                            **({"grey_image": True} if k == 0 else {}))  # one grey file a split
      wh = (size, int(size * rng.uniform(0.8, 1.2)))
      r = _picture(identity, look, wh, rng, roll=0.5 if split == "valid_challenge" else 0.25)
      image = r.image[..., 0] if look.grey_image else r.image  # a greyscale file
      _save(os.path.join(folder, sub, stem + ext), _jpeg(image) if ext == ".jpg" else _png(image))
      points = r.landmarks(68)
      pts = "version: 1\nn_points:  68\n{\n" + "".join(
          f"{x:.3f} {y:.3f}\n" for x, y in points + 1.0) + "}"
      _save(os.path.join(folder, sub, stem + ".pts"), pts + ("" if k % 3 == 2 else "\n"))
      truth.setdefault(split, {})[f"{sub}/{stem}{ext}"] = points


WFLW_EVENTS = ("0--Parade", "2--Demonstration", "12--Group", "20--Family_Group",
               "37--Soccer", "51--Dresses")


def _wflw_flags(r: sf.Rendering, roll: float) -> list[int]:
  """pose, expression, illumination, make-up, occlusion, blur as WFLW's annotators would tick."""
  look = r.geometry.look
  return [int(abs(look.yaw) > 0.3 or abs(roll) > 0.35), int(look.expression != 0),
          int(look.light_strength > 0.3 or not 0.65 <= look.brightness <= 1.3),
          int(look.makeup), int(not r.visible(98).all() or look.glasses or look.hat),
          int(look.blur > 0)]


def write_wflw(folder, counts, seed, size, truth, **_):
  """WFLW: the 207-field train/test lists and the six 197-field test subset lists."""
  lines = {"train": [], "test": []}
  subsets = {s: [] for s in ("largepose", "expression", "illumination", "makeup", "occlusion",
                             "blur")}
  for split, n in counts.items():
    image_no = 0
    k = 0
    while k < n:
      faces = 2 if (image_no % 3 == 2 and k + 1 < n) else 1  # some images hold two faces
      event = WFLW_EVENTS[image_no % len(WFLW_EVENTS)]
      name = f"{event}/{event.split('--')[1]}_{split}_{image_no}_{100 + image_no}.jpg"
      tiles, annotations = [], []
      for f in range(faces):
        rng = item_rng(seed, "wflw", split, k + f)
        identity = _person(seed, "wflw", split, k + f)
        hard = split == "test" and k + f == 0  # every subset flag, so no subset list is empty
        fixed = dict(yaw=0.45, expression=3, light_strength=0.45, lipstick=True, makeup=True,
                     glasses=True, blur=0.04) if hard else {}
        theme = (k + f) % 6  # spread the conditions over the faces
        if not hard:
          fixed.update([dict(yaw=float(rng.choice([-0.45, 0.45]))), dict(expression=1 + theme),
                        dict(light_strength=0.45), dict(lipstick=True, makeup=True),
                        dict(hat=True), dict(blur=0.04)][theme])
        look = _landmark_look(rng, identity, **fixed)
        roll = float(rng.uniform(-0.3, 0.3))
        g = sf.Geometry(identity, look)
        side = float(rng.uniform(0.45, 0.6)) * size
        centre = (size / 2 + rng.uniform(-0.15, 0.15) * size, size / 2)
        r = sf.render(identity, look, sf.placed_matrix(g, side, centre, roll), (size, size))
        points = r.landmarks(98) + np.float32([f * size, 0])
        lo, hi = points.min(0), points.max(0)
        pad = 0.08 * (hi - lo)
        box = [int(math.floor(v)) for v in lo - pad] + [int(math.ceil(v)) for v in hi + pad]
        tiles.append(r.image)
        annotations.append((points, box, _wflw_flags(r, roll)))
      _save(os.path.join(folder, "WFLW_images", name), _jpeg(np.concatenate(tiles, axis=1)))
      for points, box, flag_values in annotations:
        coords = " ".join(f"{v:.6f}" for v in points.reshape(-1))
        lines[split].append(f"{coords} {' '.join(map(str, box))} "
                            f"{' '.join(map(str, flag_values))} {name}")
        truth.setdefault(split, []).append((name, points))
        if split == "test":
          for subset, on in zip(subsets, flag_values):
            if on:
              subsets[subset].append(f"{coords} {name}")
              truth.setdefault(f"test_{subset}", []).append((name, points))
      k += faces
      image_no += 1
  annotations_dir = os.path.join(folder, "WFLW_annotations")
  for split, split_lines in lines.items():
    _save(os.path.join(annotations_dir, "list_98pt_rect_attr_train_test",
                       f"list_98pt_rect_attr_{split}.txt"), "".join(l + "\n" for l in split_lines))
  for subset, subset_lines in subsets.items():
    _save(os.path.join(annotations_dir, "list_98pt_test", f"list_98pt_test_{subset}.txt"),
          "".join(l + "\n" for l in subset_lines))


def write_cofw(folder, counts, seed, size, truth, **_):
  """COFW: MATLAB v7.3 (HDF5) files; images in a cell (some grey 2-D), phis = 29 x, 29 y, 29
  occlusion flags (0-based pixels), boxes x y w h. Many faces have an object in front."""
  import hdf5storage  # only this writer needs it
  variables = {"train": ("COFW_train_color.mat", "IsTr", "bboxesTr", "phisTr"),
               "test": ("COFW_test_color.mat", "IsT", "bboxesT", "phisT")}
  for split, (file_name, images_var, boxes_var, phis_var) in variables.items():
    n = counts[split]
    cells = np.empty((n, 1), dtype=object)
    phis, boxes = np.zeros((n, 87)), np.zeros((n, 4))
    for k in range(n):
      rng = item_rng(seed, "cofw", split, k)
      identity = _person(seed, "cofw", split, k)
      occluder = None
      if rng.random() < 0.5:  # a hand, a microphone, food: COFW's occlusions
        occluder = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.2, 0.9)),
                    float(rng.uniform(0.15, 0.35)), float(rng.uniform(0.15, 0.35)),
                    *(int(v) for v in rng.integers(0, 256, 3)))
      look = _landmark_look(rng, identity, occluder=occluder,
                            grey_image=k % 4 == 1)  # some cells are 2-D grey images
      wh = (size, int(size * rng.uniform(0.9, 1.2)))
      r = _picture(identity, look, wh, rng, face=(0.5, 0.65))
      points = r.landmarks(29).astype(np.float64)
      cells[k, 0] = r.image[..., 0].copy() if look.grey_image else r.image
      phis[k] = np.concatenate([points[:, 0], points[:, 1], (~r.visible(29)).astype(float)])
      lo, hi = points.min(0), points.max(0)
      boxes[k] = [*(lo - 0.1 * (hi - lo)), *(1.2 * (hi - lo))]
      truth.setdefault(split, {})[f"{file_name}#{k}"] = points.astype(np.float32)
    os.makedirs(folder, exist_ok=True)
    hdf5storage.savemat(os.path.join(folder, file_name),
                        {images_var: cells, boxes_var: boxes, phis_var: phis},
                        format="7.3", matlab_compatible=True, store_python_metadata=False,
                        truncate_existing=True)


def write_aflw19(folder, counts, seed, size, truth, **_):
  """AFLW-19: `AFLWinfo_release.mat` (MAT v5) + images under data/flickr/{0,2,3}/; `ra` lists
  the train faces first, so prepare's option train_size must be counts['train']."""
  import scipy.io
  n_train, n = counts["train"], counts["train"] + counts["test"]
  order = item_rng(seed, "aflw19", "order").permutation(n)  # face index of each ra position
  bbox, data, mask = np.zeros((n, 4)), np.zeros((n, 38)), np.zeros((n, 19))
  names = np.empty((n, 1), dtype=object)
  for position, face in enumerate(order):
    split = "train" if position < n_train else "test"
    rng = item_rng(seed, "aflw19", "face", face)
    identity = _person(seed, "aflw19", face)
    look = _landmark_look(rng, identity, yaw=float(rng.uniform(-0.5, 0.5)))
    r = _picture(identity, look, (size, size), rng, roll=0.35)
    points, visible = r.landmarks(19).astype(np.float64), r.visible(19)
    box68 = r.landmarks(68)
    lo, hi = box68.min(0), box68.max(0)
    top = lo[1] - 0.3 * (hi[1] - lo[1])  # AFLW boxes take in the forehead
    bbox[face] = [lo[0], hi[0], top, hi[1]]
    data[face], mask[face] = np.concatenate([points[:, 0], points[:, 1]]), visible
    name = f"{(0, 2, 3)[face % 3]}/image{face + 2:05d}.jpg"
    names[face, 0] = name
    _save(os.path.join(folder, "data", "flickr", name), _jpeg(r.image))
    truth.setdefault(split, {})[name] = (points.astype(np.float32), visible)
    if split == "test" and visible.all():
      truth.setdefault("test_frontal", {})[name] = (points.astype(np.float32), visible)
  truth["test_full"] = truth.pop("test", {})
  scipy.io.savemat(os.path.join(folder, "AFLWinfo_release.mat"),
                   {"bbox": bbox, "data": data, "mask_new": mask, "nameList": names,
                    "ra": (order + 1).astype(np.float64)[None]})


# --- parsing -------------------------------------------------------------------------------------

CELEBA_PARTITION = (162_770, 182_637, 202_599)  # last file number of train, val, test


def _celeba_partition_text() -> str:
  """CelebA's Eval/list_eval_partition.txt, all 202,599 lines."""
  parts = []
  first = 1
  for group, last in enumerate(CELEBA_PARTITION):
    parts.append("".join(f"{i:06d}.jpg {group}\n" for i in range(first, last + 1)))
    first = last + 1
  return "".join(parts)


def _celeba_attribute_text(rows, count) -> str:
  """A CelebA-style attribute list: count line, names line, padded -1/1 columns."""
  header = f"{count}\n" + " ".join(tasks.CELEBA_ATTRIBUTES) + " \n"
  return header + "".join(f"{name}" + "".join(f" {1 if v else -1:2d}" for v in values) + "\n"
                          for name, values in rows)


# CelebA-HQ's framing (fractions of the side): eyes, nose tip, mouth corners, as in FFHQ-style
# crops where the face is about half the image and hair, neck and shoulders show.
CELEBAM_TEMPLATE = np.array([[0.385, 0.47], [0.615, 0.47], [0.5, 0.585], [0.41, 0.68],
                             [0.59, 0.68]], np.float32)


def write_celebamask_hq(folder, counts, seed, size, truth, **_):
  """CelebAMask-HQ: CelebA-HQ-img (twice the mask size), per-part 3-channel PNG masks in
  <id // 2000>/ folders, the HQ -> CelebA mapping, and CelebA's partition file."""
  first_file = {"train": 1, "val": CELEBA_PARTITION[0] + 1, "test": CELEBA_PARTITION[1] + 1}
  last_file = dict(zip(("train", "val", "test"), CELEBA_PARTITION))
  mapping, attributes, poses = [], [], []
  hq_id = 0
  for split, n in counts.items():
    files = item_rng(seed, "celebamask_hq", split, "files").choice(
        np.arange(first_file[split], last_file[split] + 1), n, replace=False)
    for k in range(n):
      rng = item_rng(seed, "celebamask_hq", split, k)
      identity = _person(seed, "celebamask_hq", split, k)
      look = sf.sample_look(rng, identity, yaw=float(rng.uniform(-0.3, 0.3)),
                            expression=int(rng.choice([0, 0, 1, 1, 3])))
      g = sf.Geometry(identity, look)
      big = sf.aligned_matrix(g, CELEBAM_TEMPLATE * 2 * size, rng, 0.02)
      # the same face at mask size: halving with pixel centres kept (INTER_LINEAR's 2:1 grid)
      half = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25]]) @ np.vstack([big, [0, 0, 1]])
      image = sf.render(identity, look, big, (2 * size, 2 * size)).image
      masks = sf.render(identity, look, half, (size, size), keep_extents=True)
      _save(os.path.join(folder, "CelebA-HQ-img", f"{hq_id}.jpg"), _jpeg(image))
      for part, mask in masks.celebam_masks().items():
        white = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
        _save(os.path.join(folder, "CelebAMask-HQ-mask-anno", str(hq_id // 2000),
                           f"{hq_id:05d}_{part}.png"), _png(white))
      mapping.append(f"{hq_id} {files[k] - 1} {files[k]:06d}.jpg")
      values = sf.celeba_attributes(identity, look)
      attributes.append((f"{hq_id}.jpg", [values[a] for a in tasks.CELEBA_ATTRIBUTES]))
      poses.append(f"{hq_id}.jpg {math.degrees(look.yaw):.2f} {math.degrees(look.pitch):.2f} 0.00")
      truth.setdefault(split, {})[f"{hq_id}.jpg"] = masks.parts
      hq_id += 1
  _save(os.path.join(folder, "CelebA-HQ-to-CelebA-mapping.txt"),
        "idx orig_idx orig_file\n" + "".join(f"{m}\n" for m in mapping))
  _save(os.path.join(folder, "list_eval_partition.txt"), _celeba_partition_text(), "\r\n")
  _save(os.path.join(folder, "CelebAMask-HQ-attribute-anno.txt"),
        _celeba_attribute_text(attributes, hq_id))
  _save(os.path.join(folder, "CelebAMask-HQ-pose-anno.txt"),
        f"{hq_id}\nYaw Pitch Raw\n" + "".join(f"{p}\n" for p in poses))



def write_lapa(folder, counts, seed, size, truth, **_):
  """LaPa: <split>/images/*.jpg, labels/*.png (11 classes), landmarks/*.txt (106 points)."""
  for split, n in counts.items():
    for k in range(n):
      rng = item_rng(seed, "lapa", split, k)
      identity = _person(seed, "lapa", split, k)
      look = _landmark_look(rng, identity, glasses=False, hat=False, occluder=None)
      wh = (size, int(size * rng.uniform(0.85, 1.2)))
      r = _picture(identity, look, wh, rng, face=(0.5, 0.7), roll=0.3)
      stem = f"{int(rng.integers(10**7, 10**8))}_{k}"
      _save(os.path.join(folder, split, "images", f"{stem}.jpg"), _jpeg(r.image))
      _save(os.path.join(folder, split, "labels", f"{stem}.png"), _png(r.lapa_parts()))
      points = r.landmarks(106)
      _save(os.path.join(folder, split, "landmarks", f"{stem}.txt"),
            "106\n" + "".join(f"{x:.3f} {y:.3f}\n" for x, y in points))
      truth.setdefault(split, {})[f"{split}/images/{stem}.jpg"] = (r.lapa_parts(), points)


# --- age -----------------------------------------------------------------------------------------

def _age_crop(identity, look, size, rng):
  """Face crops with a margin (MORPH's mug shots, UTKFace's aligned-and-cropped release)."""
  w, h = size
  template = sf.ARCFACE_TEMPLATE * 0.78 + np.float32([12.3, 16.0])  # the 112 template, zoomed out
  return _aligned(identity, look, (w, h), rng, template, (112, 112 * h / w), jitter=0.03)


def write_morph2(folder, counts, seed, size, truth, **_):
  """MORPH II: `<subject>_<index><sex><age>.JPG` mug shots (1- or 2-digit index), ages 16-77;
  a subject is photographed at several ages."""
  n, k, subject_no = counts["all"], 0, 0
  while k < n:
    rng = item_rng(seed, "morph2", "subject", subject_no)
    identity = _person(seed, "morph2", subject_no)
    subject = f"{10007 + 13 * subject_no:06d}"
    first_age = int(rng.integers(16, 60))
    index = int(rng.integers(0, 12))  # indices run past 9 for some subjects
    for visit in range(min(int(rng.integers(1, 4)), n - k)):
      age = min(77, first_age + visit * int(rng.integers(1, 8)))
      look = sf.sample_look(rng, identity, age=float(age) + float(rng.uniform(0, 1)),
                            expression=0, yaw=float(rng.uniform(-0.1, 0.1)),
                            pitch=float(rng.uniform(-0.08, 0.08)), glasses=False, hat=False,
                            blur=0.0, background=(170, 170, 175), background2=(140, 140, 150))
      r = _age_crop(identity, look, (size, int(size * 1.2)), rng)
      name = f"{subject}_{index}{'M' if identity.male else 'F'}{age}.JPG"
      _save(os.path.join(folder, name), _jpeg(r.image))
      truth.setdefault("all", {})[name] = float(age)
      index += 1
      k += 1
    subject_no += 1


def write_utkface(folder, counts, seed, size, truth, **_):
  """UTKFace: `UTKFace/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg` and the MWR/CORAL lists
  (ages 21-60, names without `.chip.jpg`, CRLF); images of other ages are left unlisted, and one
  listed name lacks the race field, as three real ones do."""
  row_id = 0
  for split, n in [*counts.items(), ("unlisted", max(1, sum(counts.values()) // 4))]:
    rows = []
    for k in range(n):
      rng = item_rng(seed, "utkface", split, k)
      age = (int(rng.integers(21, 61)) if split != "unlisted"
             else int(rng.choice([int(rng.integers(1, 21)), int(rng.integers(61, 100))])))
      identity = _person(seed, "utkface", split, k)
      look = sf.sample_look(rng, identity, age=float(age) + float(rng.uniform(0, 1)),
                            intensity=float(rng.uniform(0.3, 0.8)), hat=False)
      r = _age_crop(identity, look, (size, size), rng)
      stamp = f"2017011{int(rng.integers(0, 10))}{int(rng.integers(10**8, 10**9))}"
      gender = 0 if identity.male else 1
      no_race = split == "train" and k == 2
      race = "" if no_race else f"{identity.race}_"
      listed = f"{age}_{gender}_{race}{stamp}.jpg"
      _save(os.path.join(folder, "UTKFace", listed + ".chip.jpg"), _jpeg(r.image))
      row_id += int(rng.integers(1, 9))
      rows.append(f"{row_id},{listed},{age},utk")
      if split != "unlisted":
        truth.setdefault(split, {})[listed + ".chip.jpg"] = float(age)
    if split != "unlisted":
      _save(os.path.join(folder, f"UTK_{split}_coral.csv"),
            ",filename,age,database\n" + "".join(f"{row}\n" for row in rows), "\r\n")


# --- expression ----------------------------------------------------------------------------------

RAF_OF_AFFECTNET = {3: 1, 4: 2, 5: 3, 1: 4, 2: 5, 6: 6, 0: 7}  # RAF-DB labels 1..7
FER2013_OF_AFFECTNET = {6: 0, 5: 1, 4: 2, 1: 3, 2: 4, 3: 5, 0: 6, 7: 0}  # contempt: no FER class
FERPLUS_OF_AFFECTNET = {0: 0, 1: 1, 3: 2, 2: 3, 6: 4, 5: 5, 4: 6, 7: 7}  # vote columns
VALENCE_AROUSAL = {0: (0.0, 0.0), 1: (0.8, 0.4), 2: (-0.7, -0.3), 3: (0.2, 0.8),
                   4: (-0.6, 0.7), 5: (-0.7, 0.3), 6: (-0.6, 0.7), 7: (-0.3, 0.2)}


def _expression_look(rng, identity, expression, **fixed):
  fixed.setdefault("blur", 0.0)
  fixed.setdefault("intensity", float(rng.uniform(0.8, 1.0)))
  return sf.sample_look(rng, identity, expression=int(expression), **fixed)


def write_affectnet(folder, counts, seed, size, truth, **_):
  """AffectNet, March-2021 release: {train_set,val_set}/images/<id>.jpg and 0-d string arrays
  annotations/<id>_{exp,val,aro}.npy, <id>_lnd.npy (68 points); a few Contempt (7) faces."""
  for split, n in counts.items():
    set_name = {"train": "train_set", "test": "val_set"}[split]
    rng_split = item_rng(seed, "affectnet", split, "labels")
    labels = list(_balanced(n, 7, rng_split)) + [7] * max(1, n // 8)
    image_id = int(rng_split.integers(0, 50))
    for k, expression in enumerate(labels):
      rng = item_rng(seed, "affectnet", split, k)
      identity = _person(seed, "affectnet", split, k)
      look = _expression_look(rng, identity, expression, hat=bool(rng.random() < 0.05))
      r = _aligned(identity, look, (size, size), rng,
                   sf.ARCFACE_TEMPLATE * 0.85 + np.float32([8.4, 10.0]), jitter=0.04)
      image_id += int(rng.integers(1, 4))
      base = os.path.join(folder, set_name)
      _save(os.path.join(base, "images", f"{image_id}.jpg"), _jpeg(r.image))
      valence, arousal = VALENCE_AROUSAL[int(expression)]
      for suffix, value in (("exp", str(int(expression))), ("val", f"{valence:.6f}"),
                            ("aro", f"{arousal:.6f}")):
        buffer = io.BytesIO()
        np.save(buffer, np.array(value))
        _save(os.path.join(base, "annotations", f"{image_id}_{suffix}.npy"), buffer.getvalue())
      buffer = io.BytesIO()
      np.save(buffer, np.array([f"{v:.3f}" for v in r.landmarks(68).reshape(-1)]))
      _save(os.path.join(base, "annotations", f"{image_id}_lnd.npy"), buffer.getvalue())
      if expression < 7:
        truth.setdefault(split, {})[f"{set_name}/images/{image_id}.jpg"] = int(expression)


def write_rafdb(folder, counts, seed, size, truth, **_):
  """RAF-DB basic: EmoLabel/list_patition_label.txt (labels 1..7), Image/original/<name>.jpg
  photos and Image/aligned/<name>_aligned.jpg crops made from them."""
  lines = []
  for split, n in counts.items():
    labels = _balanced(n, 7, item_rng(seed, "rafdb", split, "labels"))
    for k, expression in enumerate(labels):
      rng = item_rng(seed, "rafdb", split, k)
      identity = _person(seed, "rafdb", split, k)
      look = _expression_look(rng, identity, expression)
      name = f"train_{k + 1:05d}.jpg" if split == "train" else f"test_{k + 1:04d}.jpg"
      photo = _picture(identity, look, (2 * size, int(2.4 * size)), rng, face=(0.4, 0.55))
      # the aligned crop is cut from the photo, as RAF-DB's were
      g = photo.geometry
      crop = sf.aligned_matrix(g, sf.ARCFACE_TEMPLATE * size / 112, rng, 0.03)
      to_crop = crop[:, :2] @ np.linalg.inv(photo.matrix[:, :2])
      to_crop = np.concatenate([to_crop, (crop[:, 2] - to_crop @ photo.matrix[:, 2])[:, None]], 1)
      aligned = cv2.warpAffine(photo.image, to_crop, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
      stem = name[:-4]
      _save(os.path.join(folder, "basic", "Image", "original", name), _jpeg(photo.image))
      _save(os.path.join(folder, "basic", "Image", "aligned", f"{stem}_aligned.jpg"),
            _jpeg(aligned))
      lines.append(f"{name} {RAF_OF_AFFECTNET[int(expression)]}")
      truth.setdefault(split, {})[name] = int(expression)
  _save(os.path.join(folder, "basic", "EmoLabel", "list_patition_label.txt"),
        "".join(f"{l}\n" for l in lines))


def _ferplus_votes(rng, column: int) -> list[int]:
  """Ten crowd votes with a clear majority for one column (FER+ order + unknown, NF)."""
  votes = [0] * 10
  votes[column] = int(rng.integers(6, 11))
  for _ in range(10 - votes[column]):
    votes[int(rng.choice([c for c in range(8) if c != column]))] += 1
  return votes


def write_ferplus(folder, counts, seed, size, truth, **_):
  """FERPlus: FER2013's fer2013.csv (48x48 grey pixels) and FER+'s fer2013new.csv (10 votes,
  same row order), with the rows the majority rule drops."""
  del size  # the format fixes 48 x 48
  usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
  pixels_rows, vote_rows = [], []
  row = 0
  for split, n in counts.items():
    labels = list(_balanced(n, 7, item_rng(seed, "ferplus", split, "labels")))
    # what the rule drops, and contempt (kept by 8cls only)
    specials = ["no majority", "unknown", "not a face", "removed", "contempt"]
    for k, item in enumerate(labels + specials):
      rng = item_rng(seed, "ferplus", split, k)
      identity = _person(seed, "ferplus", split, k)
      expression = 7 if item == "contempt" else int(item) if not isinstance(item, str) else 0
      look = _expression_look(rng, identity, expression, glasses=bool(rng.random() < 0.1),
                              hat=False, earrings=False)
      image = cv2.cvtColor(_aligned(identity, look, (48, 48), rng,
                                    sf.ARCFACE_TEMPLATE * 1.12 - np.float32([6.7, 3.0])).image,
                           cv2.COLOR_RGB2GRAY)
      if item == "not a face":
        image = rng.integers(0, 256, (48, 48)).astype(np.uint8)
      name = f"fer{row:07d}.png"
      if item == "no majority":
        votes = [5, 5, 0, 0, 0, 0, 0, 0, 0, 0]
      elif item == "unknown":
        votes = _ferplus_votes(rng, 8)
      elif item == "not a face":
        votes = _ferplus_votes(rng, 9)
      elif item == "removed":
        votes, name = _ferplus_votes(rng, 9), ""
      else:
        votes = _ferplus_votes(rng, FERPLUS_OF_AFFECTNET[expression])
        if item != "contempt":  # the default 7-class config's truth
          truth.setdefault(split, {})[name] = expression
      pixels_rows.append(f"{FER2013_OF_AFFECTNET[expression]},{_fmt(image, 0)},{usage[split]}")
      vote_rows.append(f"{usage[split]},{name},{','.join(map(str, votes))}")
      row += 1
  _save(os.path.join(folder, "fer2013.csv"),
        "emotion,pixels,Usage\n" + "".join(f"{r}\n" for r in pixels_rows))
  _save(os.path.join(folder, "fer2013new.csv"),
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
        "unknown,NF\n" + "".join(f"{r}\n" for r in vote_rows))


# --- attributes ----------------------------------------------------------------------------------

def _attribute_look(rng, identity, **fixed):
  """CelebA-like photos: mostly neutral or smiling, small pose, the per-photo attributes drawn."""
  fixed.setdefault("expression", int(rng.choice([0, 1], p=[0.5, 0.5])))
  fixed.setdefault("age", float(rng.choice([rng.uniform(18, 35), rng.uniform(37, 75)],
                                           p=[0.65, 0.35])))
  fixed.setdefault("yaw", float(rng.uniform(-0.25, 0.25)))
  return sf.sample_look(rng, identity, **fixed)


def write_celeba(folder, counts, seed, size, truth, **_):
  """CelebA: img_align_celeba/<6 digits>.jpg (178x218 framing), Anno/list_attr_celeba.txt,
  Anno/list_landmarks_align_celeba.txt, Anno/identity_CelebA.txt, Eval/list_eval_partition.txt."""
  wh = (size, int(round(size * 218 / 178)))
  attr_rows, landmark_rows, identity_rows, partition = [], [], [], []
  number = 0
  for group, (split, n) in enumerate(counts.items()):
    for k in range(n):
      number += 1
      rng = item_rng(seed, "celeba", split, k)
      person = int(rng.integers(1, 10178))
      identity = _person(seed, "celeba", split, k)
      look = _attribute_look(rng, identity)
      r = _aligned(identity, look, wh, rng, sf.CELEBA_TEMPLATE, (178, 218), jitter=0.02)
      name = f"{number:06d}.jpg"
      _save(os.path.join(folder, "img_align_celeba", name), _jpeg(r.image))
      values = sf.celeba_attributes(identity, look)
      row = [values[a] for a in tasks.CELEBA_ATTRIBUTES]
      attr_rows.append((name, row))
      five = np.round(r.landmarks(5)).astype(int).reshape(-1)  # this image's pixels
      landmark_rows.append(f"{name:<10}" + "".join(f" {v:5d}" for v in five))
      identity_rows.append(f"{name} {person}")
      partition.append(f"{name} {group}")
      truth.setdefault(split, {})[name] = np.array(row, np.int64)
  _save(os.path.join(folder, "Anno", "list_attr_celeba.txt"),
        _celeba_attribute_text(attr_rows, number), "\r\n")
  _save(os.path.join(folder, "Anno", "list_landmarks_align_celeba.txt"),
        f"{number}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
        "leftmouth_y rightmouth_x rightmouth_y\n" + "".join(f"{l}\n" for l in landmark_rows),
        "\r\n")
  _save(os.path.join(folder, "Anno", "identity_CelebA.txt"),
        "".join(f"{l}\n" for l in identity_rows), "\r\n")
  _save(os.path.join(folder, "Eval", "list_eval_partition.txt"),
        "".join(f"{l}\n" for l in partition), "\r\n")


def lfw73_attributes(identity: sf.Identity, look: sf.Look) -> dict:
  """The 73 LFW attributes of a face, {name: bool}, from what is drawn (or kept per person)."""
  c = sf.celeba_attributes(identity, look)
  age, gap, race = look.age, sf.mouth_gap(identity, look), identity.race
  teeth = bool(sf.EXPRESSIONS[look.expression].get("teeth")) and gap > 0.01
  forehead_hidden = look.hat or identity.bangs
  return {
      "Male": identity.male, "Asian": race == 2, "White": race == 0, "Black": race == 1,
      "Baby": age < 3, "Child": 3 <= age < 13, "Youth": 13 <= age < 30,
      "Middle Aged": 30 <= age < 55, "Senior": age >= 55,
      "Black Hair": c["Black_Hair"], "Blond Hair": c["Blond_Hair"],
      "Brown Hair": c["Brown_Hair"], "Bald": c["Bald"],
      "No Eyewear": not look.glasses, "Eyeglasses": look.glasses, "Sunglasses": False,
      "Mustache": c["Mustache"], "Smiling": look.expression == 1,
      "Frowning": look.expression in (2, 6), "Chubby": identity.chubby, "Blurry": c["Blurry"],
      "Harsh Lighting": look.light_strength > 0.25, "Flash": look.brightness > 1.1,
      "Soft Lighting": look.light_strength < 0.1, "Outdoor": look.clutter > 2,
      "Curly Hair": False, "Wavy Hair": c["Wavy_Hair"], "Straight Hair": c["Straight_Hair"],
      "Receding Hairline": identity.receding, "Bangs": identity.bangs,
      "Sideburns": identity.sideburns, "Fully Visible Forehead": not forehead_hidden,
      "Partially Visible Forehead": identity.bangs and not look.hat,
      "Obstructed Forehead": look.hat, "Bushy Eyebrows": identity.bushy,
      "Arched Eyebrows": identity.arched, "Narrow Eyes": identity.narrow_eyes,
      "Eyes Open": not identity.narrow_eyes, "Big Nose": identity.big_nose,
      "Pointy Nose": identity.pointy_nose, "Big Lips": identity.big_lips,
      "Mouth Closed": gap <= 0.01, "Mouth Slightly Open": 0.01 < gap <= 0.16,
      "Mouth Wide Open": gap > 0.16, "Teeth Not Visible": not teeth, "No Beard": c["No_Beard"],
      "Goatee": c["Goatee"], "Round Jaw": identity.jaw_power > 0.85,
      "Double Chin": identity.double_chin, "Wearing Hat": look.hat, "Oval Face": identity.oval,
      "Square Face": identity.jaw_power < 0.72, "Round Face": identity.chubby,
      "Color Photo": not look.grey_image, "Posed Photo": identity.posed,
      "Attractive Man": identity.male and identity.attractive,
      "Attractive Woman": not identity.male and identity.attractive, "Indian": race == 3,
      "Gray Hair": c["Gray_Hair"], "Bags Under Eyes": c["Bags_Under_Eyes"],
      "Heavy Makeup": look.makeup, "Rosy Cheeks": look.rosy, "Shiny Skin": identity.shiny,
      "Pale Skin": identity.pale, "5 o' Clock Shadow": c["5_o_Clock_Shadow"],
      "Strong Nose-Mouth Lines": age > 45, "Wearing Lipstick": look.lipstick,
      "Flushed Face": look.rosy, "High Cheekbones": identity.high_cheekbones,
      "Brown Eyes": identity.iris == "brown", "Wearing Earrings": look.earrings,
      "Wearing Necktie": look.necktie, "Wearing Necklace": look.necklace}


FIRST_NAMES = ("Ada", "Bruno", "Chen", "Dara", "Emil", "Fatou", "Goran", "Hana", "Ivo", "Jun",
               "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq")
LAST_NAMES = ("Abara", "Berg", "Costa", "Dumont", "Eze", "Fischer", "Garcia", "Haddad", "Ito",
              "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Quispe",
              "Rossi", "Silva", "Tanaka", "Van der Berg")


def _person_names():
  """Distinct "First Last" names, then the same with a number."""
  n = 0
  while True:
    first = FIRST_NAMES[n % len(FIRST_NAMES)]
    last = LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]
    rounds = n // (len(FIRST_NAMES) * len(LAST_NAMES))
    yield f"{first} {last}" + (f" {rounds + 1}" if rounds else "")
    n += 1


def write_lfw73(folder, counts, seed, size, truth, **_):
  """LFW-73: lfw_attributes.txt (tab-separated, `#` header quirk, real-valued scores) and the
  LFW images lfw/<First_Last>/<First_Last>_<num:04d>.jpg (faces centred with a wide margin)."""
  from data_pipelines import lfw73  # its identity split: people alternate between its splits
  n, k, person_no = counts["all"], 0, 0
  names = _person_names()
  rows = []
  while k < n:
    rng = item_rng(seed, "lfw73", "person", person_no)
    identity = _person(seed, "lfw73", person_no)
    wanted = ("train", "test")[person_no % 2]
    person = next(name for name in names if lfw73.split_of_person(name) == wanted)
    photos = min(int(rng.integers(1, 4)), n - k, max(1, n // 2))  # both splits get someone
    for number in range(1, 1 + photos):
      look = _attribute_look(rng, identity, expression=int(rng.choice([0, 1, 1, 2, 6])))
      template = sf.ARCFACE_TEMPLATE * 0.48 + np.float32([29.0, 31.0])  # LFW's 250-px framing
      r = _aligned(identity, look, (size, size), rng, template, jitter=0.03)
      folder_name = person.replace(" ", "_")
      name = f"{folder_name}/{folder_name}_{number:04d}.jpg"
      _save(os.path.join(folder, "lfw", name), _jpeg(r.image))
      values = lfw73_attributes(identity, look)
      scores = [(1 if values[a] else -1) * float(rng.uniform(0.05, 2.5))
                for a in tasks.LFW73_ATTRIBUTES]
      rows.append("\t".join([person, str(number), *(f"{s:.5f}" for s in scores)]))
      truth.setdefault("all", {})[name] = np.array([values[a] for a in tasks.LFW73_ATTRIBUTES],
                                                     np.int64)
      k += 1
    person_no += 1
  _save(os.path.join(folder, "lfw_attributes.txt"),
        f"# {n} images\n" + "\t".join(["#", "person", "imagenum", *tasks.LFW73_ATTRIBUTES]) + "\n"
        + "".join(f"{r}\n" for r in rows))


# --- identity ------------------------------------------------------------------------------------

def _identity_look(rng, identity, **fixed):
  """Another photo of the same person: pose, light, expression, a few years, rare accessories."""
  fixed.setdefault("glasses", bool(rng.random() < 0.1))
  fixed.setdefault("hat", bool(rng.random() < 0.03))
  fixed.setdefault("blur", 0.0)
  fixed.setdefault("intensity", float(rng.uniform(0.3, 1.0)))
  return sf.sample_look(rng, identity, **fixed)


def _identity_age(seed, *keys) -> float:
  return float(item_rng(seed, "age", *keys).uniform(20, 60))


def write_ms1mv3(folder, counts, seed, size, truth, images_per_identity=IMAGES_PER_IDENTITY,
                 **_):
  """MS1MV3: train.rec/train.idx in insightface RecBuilder's layout (images keyed 1..N with their
  identity as a float label, one record per identity with its key range, and the header keyed 0
  written last) and `property`; 112x112 aligned JPEGs (quality 95, encoded from BGR)."""
  from data_pipelines import recordio
  n = counts["train"]
  num_ids = max(1, math.ceil(n / images_per_identity))
  os.makedirs(folder, exist_ok=True)
  ranges = []
  with recordio.RecordIOWriter(os.path.join(folder, "train.rec"),
                               os.path.join(folder, "train.idx")) as writer:
    key = 1
    for person in range(num_ids):
      identity = _person(seed, "ms1mv3", person)
      age = _identity_age(seed, "ms1mv3", person)
      start = key
      for j in range(min(images_per_identity, n - (key - 1))):
        rng = item_rng(seed, "ms1mv3", person, j)
        look = _identity_look(rng, identity, age=age + float(rng.uniform(-3, 3)))
        r = _aligned(identity, look, (size, size), rng, jitter=0.03)
        writer.write(key, float(person), _jpeg(r.image))
        truth.setdefault("train", {})[f"train.rec#{key}"] = person
        key += 1
      ranges.append((start, key))
    first_identity_key = key
    for start, stop in ranges:
      writer.write(key, [float(start), float(stop)], b"")
      key += 1
    writer.write(0, [float(first_identity_key), float(key)], b"", id=0, id2=1)
  _save(os.path.join(folder, "property"), f"{num_ids},{size},{size}\n")


def pickle_like_python2(items: list[bytes], same: list[bool]) -> bytes:
  """pickle.dump((items, same), f, protocol=2) as Python 2 wrote it: byte strings as BINSTRING
  opcodes (Python 3 writes bytes in protocol 2 as a _codecs.encode call instead)."""
  out = [b"\x80\x02", b"]q\x00", b"("]  # PROTO 2, EMPTY_LIST, BINPUT 0, MARK
  memo = 1
  for k, item in enumerate(items):
    out.append(b"U" + bytes([len(item)]) + item if len(item) < 256
               else b"T" + struct.pack("<i", len(item)) + item)
    out.append(b"q" + bytes([memo % 256]) if memo < 256 else b"r" + struct.pack("<I", memo))
    memo += 1
    if k % 1000 == 999:  # Python 2 batched APPENDS per 1000 items
      out += [b"e", b"("]
  out += [b"e", b"]", b"r" + struct.pack("<I", memo), b"("]
  memo += 1
  out += [b"\x88" if s else b"\x89" for s in same]
  out += [b"e", b"\x86", b"r" + struct.pack("<I", memo), b"."]  # APPENDS, TUPLE2, BINPUT, STOP
  return b"".join(out)


def write_verification(folder, counts, seed, size, truth, **_):
  """Verification `.bin`s: pairs of 112x112 aligned JPEGs of people not in MS1MV3, alternating
  blocks of same / different pairs. lfw: any pose; cfp_fp: a frontal face against a turned one;
  agedb_30: the same person 30 years apart."""
  for split, n in counts.items():
    items, same_list = [], []
    block = max(1, n // 20)
    for i in range(n):
      rng = item_rng(seed, "verification", split, i)
      same = (i // block) % 2 == 0
      a = _person(seed, "verification", split, i, "a")
      b = a if same else _person(seed, "verification", split, i, "b")
      age = _identity_age(seed, "verification", split, i)
      if split == "agedb_30":
        age_a, age_b = age - 10, age + 20
      else:
        age_a, age_b = age, age + float(rng.uniform(-3, 3))
      yaw_b = float(rng.choice([-1, 1]) * rng.uniform(0.5, 0.6)) if split == "cfp_fp" else None
      looks = [_identity_look(rng, a, age=age_a, **({"yaw": float(rng.uniform(-0.05, 0.05))}
                                                    if split == "cfp_fp" else {})),
               _identity_look(rng, b, age=age_b, **({"yaw": yaw_b} if yaw_b is not None else {}))]
      for person, look in zip((a, b), looks):
        items.append(_jpeg(_aligned(person, look, (size, size), rng, jitter=0.03).image))
      same_list.append(same)
      truth.setdefault(split, {})[f"{split}.bin#{i}"] = same
    _save(os.path.join(folder, f"{split}.bin"), pickle_like_python2(items, same_list))


def write_ijbc(folder, counts, seed, size, truth, **_):
  """IJB-C, insightface's test-suite layout: loose_crop/<n>.jpg and the three meta files.
  Two templates per person, two photos per template (the first template's are frames of one
  video: one media id); every genuine template pair and as many impostor ones."""
  landmark_lines, template_lines = [], []
  templates = {}  # template id -> person
  media = 1000
  for k in range(counts["images"]):
    person, template = k // 4, k // 2 + 1  # photos k = 4p .. 4p+3: templates 2p+1, 2p+2
    templates[template] = person
    identity = _person(seed, "ijbc", person)
    rng = item_rng(seed, "ijbc", k)
    look = _identity_look(rng, identity, age=_identity_age(seed, "ijbc", person),
                          yaw=float(rng.uniform(-0.5, 0.5)), clutter=int(rng.integers(0, 5)))
    r = _picture(identity, look, (size, int(size * rng.uniform(1.0, 1.25))), rng,
                 face=(0.5, 0.65), roll=0.3)
    if k % 4 != 1:  # a person's first template is two frames of one video (one media)
      media += int(rng.integers(1, 5))
    name = f"{k + 1}.jpg"
    _save(os.path.join(folder, "loose_crop", name), _jpeg(r.image))
    landmark_lines.append(f"{name} {_fmt(r.landmarks(5), 2)} {rng.uniform(0.9, 1.0):.3f}")
    template_lines.append(f"{name} {template} {media}")
    truth.setdefault("images", {})[name] = (template, media)
  templates = sorted(templates.items())
  pairs = []
  for i, (ta, pa) in enumerate(templates):
    for tb, pb in templates[i + 1:]:
      if pa == pb:
        pairs.append((ta, tb, 1))
  impostors = [(ta, tb, 0) for i, (ta, pa) in enumerate(templates) for tb, pb in templates[i + 1:]
               if pa != pb]
  pairs += [impostors[j] for j in sorted(item_rng(seed, "ijbc", "pairs").permutation(
      len(impostors))[:len(pairs)])]
  truth["pairs"] = pairs
  _save(os.path.join(folder, "meta", "ijbc_name_5pts_score.txt"),
        "".join(f"{l}\n" for l in landmark_lines))
  _save(os.path.join(folder, "meta", "ijbc_face_tid_mid.txt"),
        "".join(f"{l}\n" for l in template_lines))
  _save(os.path.join(folder, "meta", "ijbc_template_pair_label.txt"),
        "".join(f"{a} {b} {s}\n" for a, b, s in pairs))


WRITERS = {
    "ibug300w": write_ibug300w, "wflw": write_wflw, "cofw": write_cofw, "aflw19": write_aflw19,
    "celebamask_hq": write_celebamask_hq, "lapa": write_lapa, "morph2": write_morph2,
    "utkface": write_utkface, "affectnet": write_affectnet, "rafdb": write_rafdb,
    "ferplus": write_ferplus, "celeba": write_celeba, "lfw73": write_lfw73,
    "ms1mv3": write_ms1mv3, "verification": write_verification, "ijbc": write_ijbc,
}


# --- API -----------------------------------------------------------------------------------------

def write_dataset(name: str, root: str, num_per_split=20, seed: int = 0,
                  image_size: int | None = None, truth: dict | None = None,
                  overwrite: bool = False, **options) -> str:
  """Writes dataset `name` (a key of prepare.DATASETS) in its raw format under `root/name`;
  returns that folder (the builder's --manual_dir). `truth`, if given, is filled with
  {builder split: {example name: label}} (module docstring). A non-empty `root/name` is an
  error unless `overwrite` (then it is deleted first: left-over files would join the dataset).
  Options: `images_per_identity` (ms1mv3)."""
  if name not in WRITERS:
    raise KeyError(f"no synthetic writer for {name!r}; known: {', '.join(WRITERS)}")
  counts = _counts(name, num_per_split)
  folder = os.path.join(root, name)
  if os.path.isdir(folder) and os.listdir(folder):
    if not overwrite:
      raise FileExistsError(f"synthetic {name}: {folder} is not empty (pass overwrite=True, or "
                            "--overwrite, to replace it)")
    shutil.rmtree(folder)
  os.makedirs(folder, exist_ok=True)
  WRITERS[name](folder, counts, seed, image_size or DEFAULT_SIZES[name],
                {} if truth is None else truth, **options)
  return folder


def write_all(root: str, num_per_split=20, seed: int = 0, datasets=None,
              image_sizes: dict | None = None, overwrite: bool = False, **options) -> dict:
  """Writes every dataset (or `datasets`) under root; returns {name: folder}."""
  sizes = image_sizes or {}
  return {name: write_dataset(name, root, num_per_split, seed, sizes.get(name),
                              overwrite=overwrite, **options)
          for name in (datasets or WRITERS)}


def main(argv):
  del argv
  options = flags.FLAGS
  if not options.out:
    raise app.UsageError("--out is required")
  for name in options.datasets or WRITERS:
    folder = write_dataset(name, options.out, options.num, options.seed,
                           overwrite=options.overwrite)
    print(f"{name}: {folder}")


if __name__ == "__main__":
  # Defined here, not on import: a program that imports this module keeps its own flag names.
  flags.DEFINE_string("out", None, "folder that receives one raw folder per dataset")
  flags.DEFINE_list("datasets", None, f"datasets to write (default all: {','.join(WRITERS)})")
  flags.DEFINE_integer("num", 20, "images (pairs for verification) per split")
  flags.DEFINE_integer("seed", 0, "seed of everything drawn")
  flags.DEFINE_bool("overwrite", False, "replace dataset folders that already exist")
  app.run(main)
