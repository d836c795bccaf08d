"""AffectNet (expression, 7 classes), either release, detected from the folder layout.

- 2017 release: `Manually_Annotated_file_lists/{training,validation}.csv` and the full-size images
  under `Manually_Annotated_Images/`. A CSV row is `subDirectory_filePath, face_x, face_y,
  face_width, face_height, facial_landmarks, expression, valence, arousal`; the landmark field is
  not quoted and holds `;`-separated numbers, so a row is read as the first five and the last
  three comma-separated fields. The header line is optional (validation.csv may lack it).
- March-2021 release: `{train_set,val_set}/images/<id>.jpg` (cropped faces) and
  `{train_set,val_set}/annotations/<id>_exp.npy` (a 0-d array, number or string).
When both are present the 2017 release is read.

Every example stores the image bytes as distributed, `label` int64 (AffectNet order, which is the
model's), and `box` float32 [4] (x0, y0, x1, y1), the face box in original pixels, clipped to the
image: the transforms crop it first, then take a centre square crop and resize to the group size.
The 2017 images are full photos (box = the CSV's face box); the 2021 images are already crops
(box = the whole image). The full images are kept rather than cropped here: the stored bytes stay
the distributed ones (a lossless PNG of a photo crop is several times the size of the JPEG it
came from, and a JPEG re-encode loses detail), and the crop rule stays in one place, the
transforms.

Faceptor uses 7 classes: expression codes 7 (Contempt), 8 (None), 9 (Uncertain) and
10 (No-Face) are dropped and counted per code under `filtered` in the skip report, not as errors.
Splits: `train` (training.csv / train_set) and `test` (the official validation set,
validation.csv / val_set: 500 per class, 3,500 for 7 classes).
"""

from __future__ import annotations

import io
import os

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

NUM_CLASSES = 7
CODE_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
              "None", "Uncertain", "No-Face")
CSV_HEADER_FIRST_FIELD = "subDirectory_filePath"
LISTS_2017 = {"train": "training.csv", "test": "validation.csv"}
FOLDERS_2021 = {"train": "train_set", "test": "val_set"}


class Builder(builder_lib.FaceDatasetBuilder):
  """AffectNet: faces with 7 expression labels (AffectNet order) and the face box."""

  name = "affectnet"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request AffectNet from http://mohammadmahoor.com/affectnet/ and pass the folder that holds
  either release as --manual_dir: the 2017 release (`Manually_Annotated_Images/` and
  `Manually_Annotated_file_lists/`) or the March-2021 release (`train_set/`, `val_set/`).
  """
  LAYOUT = """
  either the 2017 release:
    Manually_Annotated_file_lists/training.csv
        subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,...
        689/abc.jpg,134,134,899,899,181.6;530.9;...;410.2,1,0.785714,-0.055556
    Manually_Annotated_file_lists/validation.csv     (same rows; the header line may be absent)
    Manually_Annotated_Images/689/abc.jpg ...
  or the March-2021 release:
    train_set/images/0.jpg ...      train_set/annotations/0_exp.npy ...
    val_set/images/0.jpg ...        val_set/annotations/0_exp.npy ...
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Scalar(np.int64),
            "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    lists = os.path.join(manual_dir, "Manually_Annotated_file_lists")
    if os.path.isdir(lists):
      images = self.require(manual_dir, "Manually_Annotated_Images")
      csvs = {split: self.require(lists, file) for split, file in LISTS_2017.items()}
      builder_lib.log.info("affectnet: reading the 2017 release in %s", manual_dir)
      return {split: (lambda split=split: self._read_2017(csvs[split], images, split))
              for split in LISTS_2017}
    if not any(os.path.isdir(os.path.join(manual_dir, f)) for f in FOLDERS_2021.values()):
      raise builder_lib.MissingDataError(self.name, lists, self.LAYOUT)
    folders = {split: self.require(manual_dir, folder) for split, folder in FOLDERS_2021.items()}
    for folder in folders.values():
      self.require(folder, "images")
      self.require(folder, "annotations")
    builder_lib.log.info("affectnet: reading the March-2021 release in %s", manual_dir)
    return {split: (lambda split=split: self._read_2021(folders[split], split))
            for split in FOLDERS_2021}

  # --- shared ---------------------------------------------------------------------------------

  def _kept(self, code: int, split: str) -> bool:
    """Whether an expression code is one of the 7 classes; counts the dropped ones."""
    if code < NUM_CLASSES:
      return True
    self.filtered[split][f"expression {code} ({CODE_NAMES[code]})"] += 1
    return False

  def _example(self, path, name, box, label) -> "tuple[str, dict] | builder_lib.Skip":
    """The example of one image with its box clipped to the image (None: the whole image)."""
    image = self.image_or_skip(path, name)
    if isinstance(image, builder_lib.Skip):
      return image
    try:
      with PIL.Image.open(io.BytesIO(image)) as im:
        width, height = im.size
    except (OSError, ValueError) as e:
      return builder_lib.Skip(name, f"cannot read the image size: {e}")
    if box is None:
      box = (0, 0, width, height)
    x0, y0, x1, y1 = np.clip(box, 0, [width, height, width, height])
    if x1 <= x0 or y1 <= y0:
      return builder_lib.Skip(name, f"face box {list(box)} lies outside the {width}x{height} image")
    return name, {"image": image, "label": label, "name": name,
                  "box": np.array([x0, y0, x1, y1], np.float32)}

  # --- the 2017 release -----------------------------------------------------------------------

  def _read_2017(self, csv_path, image_dir, split):
    # Streamed: training.csv is about half a gigabyte (136 landmark numbers per row).
    with open(csv_path, encoding="utf-8-sig", errors="replace") as f:
      for n, raw in enumerate(f, 1):
        line = raw.strip()
        if not line or (n == 1 and line.startswith(CSV_HEADER_FIRST_FIELD)):
          continue
        fields = [field.strip() for field in line.split(",")]
        try:
          if len(fields) < 9:
            raise ValueError(f"{len(fields)} fields")
          x, y, w, h = (float(v) for v in fields[1:5])
          code = int(fields[-3])
        except ValueError:
          yield builder_lib.Skip(f"{os.path.basename(csv_path)} line {n}",
                                 f"malformed row {line[:80]!r}")
          continue
        name = fields[0]
        if not 0 <= code < len(CODE_NAMES):
          yield builder_lib.Skip(name, f"expression code {code} is not in 0..10")
          continue
        if not self._kept(code, split):
          continue
        if w <= 0 or h <= 0:
          yield builder_lib.Skip(name, f"empty face box (width {w}, height {h})")
          continue
        yield self._example(os.path.join(image_dir, name), name, (x, y, x + w, y + h), code)

  # --- the March-2021 release -----------------------------------------------------------------

  def _read_2021(self, folder, split):
    image_dir, annotation_dir = os.path.join(folder, "images"), os.path.join(folder, "annotations")
    images = {os.path.splitext(f)[0]: f for f in os.listdir(image_dir)}
    suffix = "_exp.npy"
    annotated = {f[:-len(suffix)] for f in os.listdir(annotation_dir) if f.endswith(suffix)}
    for image_id in sorted(images.keys() | annotated, key=lambda i: (len(i), i)):
      name = f"{os.path.basename(folder)}/images/{images.get(image_id, image_id + '.jpg')}"
      if image_id not in images:
        yield builder_lib.Skip(name, f"annotations/{image_id}{suffix} has no image")
        continue
      if image_id not in annotated:
        yield builder_lib.Skip(name, f"no annotations/{image_id}{suffix}")
        continue
      try:
        # allow_pickle=False: an annotation file stays data, never code.
        value = np.load(os.path.join(annotation_dir, image_id + suffix), allow_pickle=False)
        code = int(value.item())
      except (OSError, ValueError, TypeError, EOFError) as e:
        yield builder_lib.Skip(name, f"unreadable {image_id}{suffix}: {e}")
        continue
      if not 0 <= code < len(CODE_NAMES):
        yield builder_lib.Skip(name, f"expression code {code} is not in 0..10")
        continue
      if self._kept(code, split):
        yield self._example(os.path.join(image_dir, images[image_id]), name, None, code)
