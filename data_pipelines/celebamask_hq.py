"""CelebAMask-HQ (face parsing, 19 classes), read from the zip's folders as distributed.

Each HQ image's 18 per-part masks (`CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png`,
3-channel PNGs, white = part) are painted into one label map in the FaRL/Faceptor class order
(`tasks.PARSING_CLASSES["parsing_celebam"]`): 1 neck, 2 face (`skin`), 3 cloth, 4 rr (`l_ear`),
5 lr (`r_ear`), 6 rb (`l_brow`), 7 lb (`r_brow`), 8 re (`l_eye`), 9 le (`r_eye`), 10 nose,
11 imouth (`mouth`), 12 llip (`l_lip`), 13 ulip (`u_lip`), 14 hair, 15 glass (`eye_g`), 16 hat,
17 earr (`ear_r`), 18 neckl (`neck_l`); 0 background. Masks are painted 1 -> 18, so a later class
overwrites an earlier one (hair over face, glasses over eyes). This is NOT the order of the
dataset's own `g_mask.py`. A pixel belongs to a part where any mask channel is > 127; a missing
part file means the part is absent.

Stored: `image` (the distributed JPEG, 1024x1024 in the real release), `label` (PNG at the mask
resolution, 512x512 in the real release) and `name` (`<id>.jpg`). Image and label sizes differ:
the transform resizes the image to the label's size (cv2.INTER_LINEAR, as the official loader
does for 1024 -> 512) before anything else.

Splits `train` (24,183), `val` (2,993), `test` (2,824): the CelebA evaluation partition of each HQ
image's original CelebA file, read from CelebA's `list_eval_partition.txt` when it is in the
manual folder; otherwise from the partition's fixed ranges of the 1-based CelebA file number
n = orig_idx + 1 (n <= 162,770 train, n <= 182,637 val, else test), which is the same partition.
Faceptor trains on train+val: read it as `split="train+val"` (works with array_record).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

# Mask file suffix of each class id 1..18, in the FaRL/Faceptor order (painting order).
PART_SUFFIXES = ("neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye",
                 "nose", "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l")
SPLITS = ("train", "val", "test")
# Last 1-based CelebA file number of the train and val partitions (list_eval_partition.txt).
LAST_TRAIN_FILE, LAST_VAL_FILE = 162_770, 182_637
MASK_FOLDER_SIZE = 2000  # HQ ids per mask sub-folder
PART_THRESHOLD = 127


class Builder(builder_lib.FaceDatasetBuilder):
  """CelebAMask-HQ: 30,000 faces with 19-class label maps (FaRL/Faceptor class order)."""

  name = "celebamask_hq"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download CelebAMask-HQ.zip (https://github.com/switchablenorms/CelebAMask-HQ), unpack it and pass
  the `CelebAMask-HQ/` folder as --manual_dir. Put CelebA's `list_eval_partition.txt`
  (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, Eval/) into that folder too; without it the
  split is taken from the partition's fixed file-number ranges, which give the same split.
  """
  LAYOUT = """
  CelebA-HQ-img/0.jpg ... 29999.jpg
  CelebAMask-HQ-mask-anno/0/00000_skin.png ... 14/29999_hair.png   <id // 2000>/<id:05d>_<part>
  CelebA-HQ-to-CelebA-mapping.txt   header `idx orig_idx orig_file`, rows `0 119613 119614.jpg`
  list_eval_partition.txt           CelebA's partition, rows `000001.jpg 0`: copy it here from
                                    CelebA's Eval/ (optional: the same split follows from the
                                    file numbers)
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    images = self.require(manual_dir, "CelebA-HQ-img")
    masks = self.require(manual_dir, "CelebAMask-HQ-mask-anno")
    mapping = self.require(manual_dir, "CelebA-HQ-to-CelebA-mapping.txt")
    partition_path = os.path.join(manual_dir, "list_eval_partition.txt")
    partition, partition_skips = {}, []
    if os.path.exists(partition_path):
      partition, partition_skips = read_partition(partition_path)
    mask_files = MaskIndex(masks)
    return {split: (lambda split=split: self._read(split, images, mask_files, mapping, partition,
                                                   partition_skips))
            for split in SPLITS}

  def _read(self, split, image_dir, mask_files, mapping_path, partition, partition_skips):
    # A malformed line's split is unknown, so it is reported in every split (as RAF-DB does).
    yield from partition_skips
    for item in read_mapping(mapping_path):
      if isinstance(item, builder_lib.Skip):
        yield item
        continue
      hq_id, file_number = item
      key = f"{hq_id}.jpg"
      if partition:
        if file_number not in partition:
          yield builder_lib.Skip(key, f"CelebA file {file_number:06d}.jpg is not in "
                                      "list_eval_partition.txt")
          continue
        image_split = partition[file_number]
      else:
        image_split = split_of_file_number(file_number)
      if image_split != split:
        continue
      image = self.image_or_skip(os.path.join(image_dir, key), key)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      label = paint_label(hq_id, mask_files)
      if isinstance(label, str):
        yield builder_lib.Skip(key, label)
        continue
      yield key, {"image": image, "label": encode_png(label), "name": key}


def split_of_file_number(n: int) -> str:
  """CelebA's evaluation partition of its 1-based file number n."""
  return "train" if n <= LAST_TRAIN_FILE else "val" if n <= LAST_VAL_FILE else "test"


def read_mapping(path: str):
  """Yields (hq_id, 1-based CelebA file number) per row of CelebA-HQ-to-CelebA-mapping.txt, or a
  Skip for a malformed row. The header line is recognised by its non-numeric first field."""
  for n, line in enumerate(builder_lib.read_lines(path), 1):
    fields = line.split()
    if n == 1 and fields and not fields[0].isdigit():
      continue
    stem, ext = os.path.splitext(fields[2]) if len(fields) == 3 else ("", "")
    if (len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit()
        or not stem.isdigit() or ext.lower() != ".jpg" or int(stem) != int(fields[1]) + 1):
      yield builder_lib.Skip(f"mapping line {n}", f"malformed mapping row {line!r} "
                                                  "(expected `idx orig_idx orig_file`, "
                                                  "orig_file = orig_idx + 1)")
      continue
    yield int(fields[0]), int(stem)


def read_partition(path: str) -> tuple[dict[int, str], list[builder_lib.Skip]]:
  """CelebA's list_eval_partition.txt as {file number: split}, and a Skip per malformed row."""
  partition, skips = {}, []
  for n, line in enumerate(builder_lib.read_lines(path), 1):
    fields = line.split()
    stem = os.path.splitext(fields[0])[0] if fields else ""
    if len(fields) != 2 or not stem.isdigit() or fields[1] not in ("0", "1", "2"):
      skips.append(builder_lib.Skip(f"partition line {n}", f"malformed partition row {line!r} "
                                                           "(expected `000001.jpg 0`)"))
      continue
    partition[int(stem)] = SPLITS[int(fields[1])]
  return partition, skips


class MaskIndex:
  """The part-mask file names of each mask sub-folder, listed once (not 18 stats per image)."""

  def __init__(self, root: str):
    self.root = root
    self._listed: dict[str, frozenset[str]] = {}

  def path(self, hq_id: int, suffix: str) -> str | None:
    """The path of image hq_id's `suffix` mask, or None when the part is absent."""
    folder = str(hq_id // MASK_FOLDER_SIZE)
    if folder not in self._listed:
      folder_path = os.path.join(self.root, folder)
      self._listed[folder] = frozenset(
          os.listdir(folder_path) if os.path.isdir(folder_path) else ())
    name = f"{hq_id:05d}_{suffix}.png"
    return os.path.join(self.root, folder, name) if name in self._listed[folder] else None


def paint_label(hq_id: int, mask_files: MaskIndex) -> "np.ndarray | str":
  """The uint8 [H, W] label of one image, or why it cannot be built."""
  label = None
  for class_id, suffix in enumerate(PART_SUFFIXES, 1):
    path = mask_files.path(hq_id, suffix)
    if path is None:
      continue
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None or mask.size == 0:
      return f"part mask {path} does not decode"
    part = mask[..., :3].max(axis=-1) if mask.ndim == 3 else mask  # drop an alpha channel
    if label is None:
      label = np.zeros(part.shape[:2], np.uint8)
    elif part.shape[:2] != label.shape:
      return (f"part mask {path} is {part.shape[1]}x{part.shape[0]}, the image's other masks "
              f"{label.shape[1]}x{label.shape[0]}")
    label[part > PART_THRESHOLD] = class_id
  if label is None:
    return (f"no part mask under {os.path.join(mask_files.root, str(hq_id // MASK_FOLDER_SIZE))}"
            f" ({hq_id:05d}_<part>.png)")
  return label


def encode_png(label: np.ndarray) -> bytes:
  """A single-channel uint8 map as lossless PNG bytes."""
  ok, data = cv2.imencode(".png", label)
  if not ok:
    raise RuntimeError("cv2 failed to encode a label map as PNG")
  return data.tobytes()
