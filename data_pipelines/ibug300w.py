"""300W (68 landmarks), read from the iBUG folders of `.pts` files as distributed.

Splits (the official ones; the folders are those of the iBUG downloads):
  train            afw/ + helen/trainset/ + lfpw/trainset/      3,148 faces
  valid_common     helen/testset/ + lfpw/testset/                 554
  valid_challenge  ibug/                                          135
  test             300W private set 01_Indoor/ + 02_Outdoor/      600, only where present
The full validation set (689, the official `valid`) is not stored twice: read it as
`tfds.data_source("ibug300w", split=VALID)`, VALID = "valid_common+valid_challenge" (a split
union works with array_record).

Stored: `image` (the distributed JPEG/PNG bytes; some are greyscale, tfds decodes them to 3
channels), `name` (the image path under the manual folder, as on disk), `landmarks` float32
[68, 2] (x, y) and `box` float32 [4] (x0, y0, x1, y1), the official square crop box.

Coordinates and the crop box. The official loaders (FaRL, Faceptor) read HRNet's
`face_landmarks_300w_*.csv` (`image_path,scale,center_w,center_h,x0,y0,...`) and crop the square
centre ± 100·scale. HRNet made those columns from the landmarks' bounding box: per axis
lo = floor(min), hi = ceil(max); centre = (lo + hi) / 2; scale = max(hi_x - lo_x, hi_y - lo_y)/200
(checked on HRNet's own rows; `box_from_extent`). Two modes:
  * `.pts` (default). `.pts` coordinates are 1-based, so landmarks = pts - 1 (0-based pixels) and
    the box is HRNet's rule on those points. floor/ceil commute with an integer shift, so the box
    sits on the face exactly where the official one does.
  * HRNet CSVs, used when `face_landmarks_300w_*.csv` lie in the manual folder (then
    train/valid_common/valid_challenge are required, test optional; `..._valid.csv` is ignored,
    see VALID). Split membership, landmarks, centre and scale all come from the CSVs, with the
    official convention applied to points and centre alike: landmarks = csv - 2.0 and
    box = (centre - 2.0) ± 100·scale. HRNet's CSV coordinates are the `.pts` values (assumed: the
    rows we read match the rule above, but we had no `.pts` file to compare), so this is the
    `.pts` mode's data one pixel further up-left: the same crop of the face, at the origin the
    released checkpoints were trained and evaluated with. The CSVs spell
    `ibug/image_092_01.jpg`, stored on disk as `ibug/image_092 _01.jpg` (mapped).
"""

from __future__ import annotations

import collections
import logging
import math
import os

import numpy as np

from data_pipelines import builder as builder_lib

log = logging.getLogger(__name__)

NUM_LANDMARKS = 68
VALID = "valid_common+valid_challenge"
PTS_FOLDERS = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "valid_common": ("helen/testset", "lfpw/testset"),
    "valid_challenge": ("ibug",),
}
TEST_FOLDERS = ("01_Indoor", "02_Outdoor")  # the private set, in the manual folder or its 300W/
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")  # matched case-insensitively
PTS_ORIGIN = 1.0  # .pts files count pixels from 1
CSV_SHIFT = 2.0   # what FaRL/Faceptor subtract from HRNet's CSV points and centres
CSV_FILE = "face_landmarks_300w_{}.csv"
CSV_SPLITS = ("train", "valid_common", "valid_challenge", "test")  # test optional
CSV_PATH_TYPOS = {"ibug/image_092_01.jpg": "ibug/image_092 _01.jpg"}


class Builder(builder_lib.FaceDatasetBuilder):
  """300W: 68 landmarks on in-the-wild faces (afw, helen, lfpw, ibug; private test set)."""

  name = "ibug300w"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download afw, helen, lfpw and ibug from
  https://ibug.doc.ic.ac.uk/resources/facial-point-annotations/ (and the 300W private test set
  `300w.zip` if wanted), unpack them into one folder and pass that folder as --manual_dir.
  Optional: put HRNet's face_landmarks_300w_{train,valid_common,valid_challenge,test}.csv (links
  in the HRNet-Facial-Landmark-Detection README) in the same folder to take points, centres and
  scales from them exactly as the official code does.
  """
  LAYOUT = """
  afw/<name>.jpg + afw/<name>.pts           `.pts`: version: 1 / n_points: 68 / { 68 lines `x y` }
  helen/trainset/  helen/testset/           <name>.jpg + <name>.pts
  lfpw/trainset/   lfpw/testset/            <name>.png + <name>.pts
  ibug/                                     <name>.jpg + <name>.pts (one name holds a space)
  300W/01_Indoor/  300W/02_Outdoor/         optional private test set (<name>.png + <name>.pts);
                                            01_Indoor/ 02_Outdoor/ directly here also work
  face_landmarks_300w_<split>.csv           optional HRNet CSVs (header line, then
                                            `image_path,scale,center_w,center_h,x0,y0,...,x67,y67`)
  """

  def _features(self):
    return builder_lib.landmark_features(NUM_LANDMARKS)

  def _split_readers(self, manual_dir):
    csvs = {split: os.path.join(manual_dir, CSV_FILE.format(split)) for split in CSV_SPLITS}
    if any(os.path.exists(path) for path in csvs.values()):
      log.info("ibug300w: HRNet CSVs found, taking splits, points and boxes from them")
      for split in CSV_SPLITS[:-1]:
        self.require(csvs[split])
      return {split: (lambda path=path: self._read_csv(manual_dir, path))
              for split, path in csvs.items() if os.path.exists(path)}
    folders = {split: [self.require(manual_dir, *folder.split("/")) for folder in names]
               for split, names in PTS_FOLDERS.items()}
    test = self._test_folders(manual_dir)
    if test:
      folders["test"] = test
    else:
      log.info("ibug300w: no 300W private test set (01_Indoor/, 02_Outdoor/): no `test` split")
    return {split: (lambda dirs=dirs: self._read_pts_folders(manual_dir, dirs))
            for split, dirs in folders.items()}

  def _test_folders(self, manual_dir):
    """The private set's two folders (both required once one is there), or [] if absent."""
    for parent in (manual_dir, os.path.join(manual_dir, "300W")):
      if any(os.path.isdir(os.path.join(parent, name)) for name in TEST_FOLDERS):
        return [self.require(parent, name) for name in TEST_FOLDERS]
    return []

  # --- .pts mode ------------------------------------------------------------------------------

  def _read_pts_folders(self, manual_dir, folders):
    for folder in folders:
      by_stem = collections.defaultdict(list)  # a .pts and its image share the stem
      for file_name in sorted(os.listdir(folder)):
        by_stem[os.path.splitext(file_name)[0]].append(file_name)
      for stem, files in by_stem.items():
        pts = [f for f in files if os.path.splitext(f)[1].lower() == ".pts"]
        images = [f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        relative = os.path.relpath(os.path.join(folder, stem), manual_dir).replace(os.sep, "/")
        if not pts:
          for image_file in images:
            yield builder_lib.Skip(f"{relative}{os.path.splitext(image_file)[1]}",
                                   "image without a .pts annotation beside it")
          continue
        if not images:
          yield builder_lib.Skip(f"{relative}.pts", "no image <name>.jpg/.png beside the .pts")
          continue
        image_name = f"{relative}{os.path.splitext(images[0])[1]}"
        image = self.image_or_skip(os.path.join(folder, images[0]), image_name)
        if isinstance(image, builder_lib.Skip):
          yield image
          continue
        try:
          points = read_pts(os.path.join(folder, pts[0])) - PTS_ORIGIN
          box = box_from_extent(points)
        except ValueError as e:
          yield builder_lib.Skip(f"{relative}.pts", str(e))
          continue
        yield image_name, {"image": image, "name": image_name, "landmarks": points, "box": box}

  # --- HRNet CSV mode -------------------------------------------------------------------------

  def _read_csv(self, manual_dir, csv_path):
    csv_name = os.path.basename(csv_path)
    lines = builder_lib.read_lines(csv_path)
    if lines and not is_number(lines[0].split(",")[1:2]):
      lines = lines[1:]  # the header line
    for n, line in enumerate(lines, 1):
      key = f"{csv_name} row {n}"
      fields = [f.strip() for f in line.split(",")]
      if len(fields) != 4 + 2 * NUM_LANDMARKS:
        yield builder_lib.Skip(key, f"{len(fields)} fields, expected "
                                    f"image_path,scale,center_w,center_h + {2 * NUM_LANDMARKS}")
        continue
      try:
        scale, cx, cy, *coords = [float(v) for v in fields[1:]]
      except ValueError:
        yield builder_lib.Skip(key, f"a non-number in {line[:80]!r}...")
        continue
      if not all(map(math.isfinite, [scale, cx, cy, *coords])) or scale <= 0:
        yield builder_lib.Skip(key, "non-finite value or non-positive scale")
        continue
      image_name = fields[0]
      if not os.path.exists(os.path.join(manual_dir, image_name)):
        image_name = CSV_PATH_TYPOS.get(image_name, image_name)
      image = self.image_or_skip(os.path.join(manual_dir, image_name), image_name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      points = np.asarray(coords, np.float32).reshape(NUM_LANDMARKS, 2) - CSV_SHIFT
      box = box_from_centre_scale(cx - CSV_SHIFT, cy - CSV_SHIFT, scale)
      yield image_name, {"image": image, "name": image_name, "landmarks": points, "box": box}


def read_pts(path: str) -> np.ndarray:
  """The float32 [68, 2] points of a `.pts` file as written; ValueError says what is wrong.

  `version: 1` / `n_points:  68` / `{` / 68 lines `x y` / `}`; CRLF, trailing spaces and a
  missing final newline are accepted.
  """
  try:
    lines = builder_lib.read_lines(path)
  except OSError as e:
    raise ValueError(f"cannot read {path}: {e}") from e
  header = {key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in lines if ":" in line)}
  if header.get("n_points") != str(NUM_LANDMARKS) or "{" not in lines or "}" not in lines:
    raise ValueError(f"{path} is not a {NUM_LANDMARKS}-point .pts file "
                     f"(expected `n_points: {NUM_LANDMARKS}` and a {{ }} block)")
  block = lines[lines.index("{") + 1:lines.index("}")]
  try:
    rows = [[float(v) for v in line.split()] for line in block]
  except ValueError as e:
    raise ValueError(f"{path}: a point line holds a non-number ({e})") from e
  if len(rows) != NUM_LANDMARKS or any(len(row) != 2 for row in rows):
    raise ValueError(f"{path} holds {len(rows)} point lines of "
                     f"{sorted({len(row) for row in rows})} numbers, expected "
                     f"{NUM_LANDMARKS} lines `x y`")
  points = np.asarray(rows, np.float32)
  if not np.isfinite(points).all():
    raise ValueError(f"{path} holds a non-finite coordinate")
  return points


def is_number(fields: list[str]) -> bool:
  try:
    return bool(fields) and math.isfinite(float(fields[0]))
  except ValueError:
    return False


def box_from_centre_scale(cx: float, cy: float, scale: float) -> np.ndarray:
  """The official square crop box (x0, y0, x1, y1) = centre ± 100·scale (HRNet's scale unit)."""
  half = 100.0 * scale
  return np.asarray([cx - half, cy - half, cx + half, cy + half], np.float32)


def box_from_extent(points: np.ndarray) -> np.ndarray:
  """HRNet's square box around landmarks (how its CSVs were made; also COFW's rule).

  Per axis lo = floor(min), hi = ceil(max); centre = (lo + hi) / 2; the half-side is half the
  longer of the two extents. ValueError if the points span no area.
  """
  lo = np.floor(points.min(axis=0)).astype(np.float64)
  hi = np.ceil(points.max(axis=0)).astype(np.float64)
  half = float((hi - lo).max()) / 2.0
  if half <= 0:
    raise ValueError("the landmarks coincide (an empty bounding box)")
  cx, cy = (lo + hi) / 2.0
  return np.asarray([cx - half, cy - half, cx + half, cy + half], np.float32)
