"""FERPlus: FER2013's 48x48 grey faces with the FER+ crowd votes, majority-voted.

Two raw forms are read (the first one found wins):
- `fer2013.csv` (Kaggle: columns `emotion,pixels,Usage`, 2,304 space-separated grey values a row;
  also found as `fer2013/fer2013.csv`) with `fer2013new.csv` (microsoft/FERPlus: `Usage,Image
  name,` then 10 vote counts, in the same row order; an empty name marks an image FER+ removed).
  The pixels are stored as a lossless grey PNG.
- microsoft/FERPlus's generated folders `data/FER2013{Train,Valid,Test}/label.csv` (no header:
  `name,"(0, 0, 48, 48)",` then 10 votes; the older generator omits the box) beside the PNGs.
  The PNG bytes are stored as distributed.
Votes are in FER+ order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown, NF (not a face).

Label: the FERPlus majority rule. Counts of a single vote are zeroed (outliers); if the largest
remaining count is more than half the remaining votes its class is the label, else there is no
majority (ties included). Rows without a majority, with majority unknown or NF, and removed rows,
are dropped and counted per reason under `filtered` in the skip report, not as errors. The FER+
class is mapped to the model's AffectNet order with [0, 1, 3, 2, 6, 5, 4, 7].

Configs: `7cls` (default; a contempt majority is dropped, as Faceptor's 7 queries need) and
`8cls` (contempt kept as label 7). Read them as `ferplus/7cls` and `ferplus/8cls`.
Splits: `train` (Training / FER2013Train), `val` (PublicTest / FER2013Valid), `test`
(PrivateTest / FER2013Test); Faceptor trains on `train+val`, read as that split expression.
The images are the 48x48 FER crops (the authors' 112-px crop is not released); the transforms
resize them to the group size.
"""

from __future__ import annotations

import csv
import os

import cv2
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

VOTE_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
FERPLUS_TO_AFFECTNET = (0, 1, 3, 2, 6, 5, 4, 7)
CONTEMPT, UNKNOWN, NOT_A_FACE = 7, 8, 9
USAGE_OF_SPLIT = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FOLDER_OF_SPLIT = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
NUM_CLASSES_OF_CONFIG = {"7cls": 7, "8cls": 8}
SIDE = 48


def majority_vote(votes) -> int | None:
  """The FER+ class (0..9) that holds the majority of the 10 vote counts, or None."""
  counts = np.where(np.asarray(votes) > 1, votes, 0)  # a class with a single vote is an outlier
  top = int(np.argmax(counts))
  return top if counts[top] > 0.5 * counts.sum() else None


class Builder(builder_lib.FaceDatasetBuilder):
  """FERPlus: 48x48 grey faces with majority-voted FER+ labels (AffectNet order)."""

  name = "ferplus"
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="7cls", description="7 classes, contempt majority dropped"),
      tfds.core.BuilderConfig(name="8cls", description="8 classes, contempt = 7"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Get `fer2013.csv` from the Kaggle challenge "Challenges in Representation Learning: Facial
  Expression Recognition" and `fer2013new.csv` from https://github.com/microsoft/FERPlus; put
  both in one folder (or use a FERPlus checkout whose `data/FER2013*/` folders were generated
  with its `generate_training_data.py`) and pass it as --manual_dir.
  """
  LAYOUT = """
  either
    fer2013.csv          (or fer2013/fer2013.csv)   emotion,pixels,Usage
                                                     0,70 80 82 ... (2304 values),Training
    fer2013new.csv       Usage,Image name,neutral,happiness,...,unknown,NF
                         Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0
  or
    data/FER2013Train/label.csv   fer0000000.png,"(0, 0, 48, 48)",4,0,0,1,3,2,0,0,0,0
    data/FER2013Train/fer0000000.png ...   (likewise FER2013Valid/, FER2013Test/)
  """

  def _features(self):
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.Scalar(np.int64),
            "name": tfds.features.Text()}

  def _split_readers(self, manual_dir):
    votes_path = os.path.join(manual_dir, "fer2013new.csv")
    pixel_paths = [os.path.join(manual_dir, "fer2013.csv"),
                   os.path.join(manual_dir, "fer2013", "fer2013.csv")]
    pixels_path = next((p for p in pixel_paths if os.path.isfile(p)), None)
    if os.path.isfile(votes_path) and pixels_path:
      return self._csv_readers(pixels_path, votes_path)
    for data_dir in (os.path.join(manual_dir, "data"), manual_dir):
      if os.path.isdir(os.path.join(data_dir, FOLDER_OF_SPLIT["train"])):
        return self._folder_readers(data_dir)
    # Neither form: name the file the first form misses.
    missing = pixel_paths[0] if os.path.isfile(votes_path) else votes_path
    raise builder_lib.MissingDataError(self.name, missing, self.LAYOUT)

  # --- shared ---------------------------------------------------------------------------------

  def _label(self, fields, key, split) -> "int | builder_lib.Skip | None":
    """The AffectNet-order label of 10 vote fields; a Skip if malformed; None if filtered."""
    try:
      votes = np.array([int(v) for v in fields], np.int64)
    except ValueError:
      votes = None
    if votes is None or len(votes) != len(VOTE_CLASSES) or (votes < 0).any():
      return builder_lib.Skip(key, f"malformed votes {fields} (want 10 counts >= 0)")
    top = majority_vote(votes)
    num_classes = NUM_CLASSES_OF_CONFIG[self.builder_config.name]
    if top is None:
      self.filtered[split]["no majority"] += 1
    elif top in (UNKNOWN, NOT_A_FACE):
      self.filtered[split][f"majority {VOTE_CLASSES[top]}"] += 1
    elif FERPLUS_TO_AFFECTNET[top] >= num_classes:
      self.filtered[split][f"majority {VOTE_CLASSES[top]} ({num_classes}-class config)"] += 1
    else:
      return FERPLUS_TO_AFFECTNET[top]
    return None

  # --- fer2013.csv + fer2013new.csv -----------------------------------------------------------

  def _csv_readers(self, pixels_path, votes_path):
    vote_rows = self._read_vote_rows(votes_path)
    for n, row in enumerate(vote_rows, 1):  # a row of no split is reported once, here
      if (row[0] if row else "") not in USAGE_OF_SPLIT.values():
        key, reason = f"fer2013new.csv row {n}", f"unknown Usage in {','.join(row)[:60]!r}"
        builder_lib.log.warning("%s: skipped %s: %s", self.name, key, reason)
        self.skipped["unassigned"].append(builder_lib.Skip(key, reason))
    return {split: (lambda split=split: self._read_csv(pixels_path, vote_rows, split))
            for split in USAGE_OF_SPLIT}

  def _read_vote_rows(self, path) -> list[list[str]]:
    """fer2013new.csv's rows after the header, fields stripped (order matters: row i of
    fer2013.csv is row i here)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
      rows = [[v.strip() for v in row] for row in csv.reader(f) if any(v.strip() for v in row)]
    if rows and rows[0][:1] == ["Usage"]:
      rows = rows[1:]
    return rows

  def _read_csv(self, pixels_path, vote_rows, split):
    usage = USAGE_OF_SPLIT[split]
    with open(pixels_path, encoding="utf-8-sig", errors="replace", newline="") as f:
      reader = csv.reader(f)
      header = [v.strip() for v in next(reader, [])]
      if "pixels" not in header or "Usage" not in header:
        raise ValueError(f"dataset 'ferplus': {pixels_path!r} must start with the header "
                         f"`emotion,pixels,Usage`; found {header}")
      pixels_col, usage_col = header.index("pixels"), header.index("Usage")
      n = -1
      for n, row in enumerate(r for r in reader if any(v.strip() for v in r)):
        key = f"fer2013.csv row {n + 1}"
        row_usage = row[usage_col].strip() if len(row) > usage_col else ""
        if n >= len(vote_rows):
          if row_usage == usage:
            yield builder_lib.Skip(key, "no matching row in fer2013new.csv (file shorter)")
          continue
        votes_row = vote_rows[n]
        if votes_row[:1] != [usage]:  # fer2013new.csv's Usage decides the split
          continue
        if len(votes_row) < 2 or not votes_row[1]:
          self.filtered[split]["removed by FER+ (empty image name)"] += 1
          continue
        name = votes_row[1]
        if row_usage != usage:
          yield builder_lib.Skip(name, f"fer2013.csv row {n + 1} has Usage {row_usage!r}, "
                                 f"fer2013new.csv says {usage!r} (files out of step)")
          continue
        label = self._label(votes_row[2:], name, split)
        if isinstance(label, builder_lib.Skip):
          yield label
        if not isinstance(label, int):
          continue
        image = _png_of_pixels(row[pixels_col] if len(row) > pixels_col else "")
        if image is None:
          yield builder_lib.Skip(name, f"{key}: pixels are not {SIDE * SIDE} values in 0..255")
          continue
        yield name, {"image": image, "label": label, "name": name}
    for m in range(n + 1, len(vote_rows)):  # rows fer2013.csv lacks
      if vote_rows[m][:1] == [usage]:
        yield builder_lib.Skip(f"fer2013new.csv row {m + 1}", "no matching row in fer2013.csv")

  # --- data/FER2013*/label.csv + PNGs ---------------------------------------------------------

  def _folder_readers(self, data_dir):
    folders = {split: self.require(data_dir, folder) for split, folder in FOLDER_OF_SPLIT.items()}
    labels = {split: self.require(folder, "label.csv") for split, folder in folders.items()}
    return {split: (lambda split=split: self._read_folder(labels[split], split))
            for split in FOLDER_OF_SPLIT}

  def _read_folder(self, label_path, split):
    folder = os.path.dirname(label_path)
    with open(label_path, encoding="utf-8-sig", errors="replace", newline="") as f:
      rows = [[v.strip() for v in row] for row in csv.reader(f) if any(v.strip() for v in row)]
    for n, row in enumerate(rows, 1):
      key = f"{os.path.basename(folder)}/label.csv line {n}"
      # `name,"(x, y, w, h)",10 votes` from the repository; `name,10 votes` from older generators
      votes = row[2:] if len(row) == 12 else row[1:]
      if len(row) not in (11, 12) or not row[0]:
        yield builder_lib.Skip(key, f"malformed line {','.join(row)[:80]!r}")
        continue
      name = row[0]
      label = self._label(votes, name, split)
      if isinstance(label, builder_lib.Skip):
        yield label
      if not isinstance(label, int):
        continue
      image = self.image_or_skip(os.path.join(folder, name), name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      yield name, {"image": image, "label": label, "name": name}


def _png_of_pixels(text: str) -> bytes | None:
  """A 48x48 grey PNG of FER2013's space-separated pixel string, or None if malformed."""
  try:
    values = np.array(text.split(), np.int64)
  except ValueError:
    return None
  if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
    return None
  ok, png = cv2.imencode(".png", values.astype(np.uint8).reshape(SIDE, SIDE))
  return png.tobytes() if ok else None
