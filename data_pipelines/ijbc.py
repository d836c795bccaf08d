"""IJB-C 1:1 verification in insightface's test-suite layout (DATASETS.md 3 and 17.2). Not in
Faceptor's configs; SwinFace (its lineage) reports TAR@FAR on it.

The images and the template pairs have different features, so the dataset has two configs,
both built by one `prepare --dataset=ijbc`:

  ijbc/images  split `images`: one example per loose crop. `image` (the JPEG as distributed),
               `name` (`1.jpg`), `landmarks` float32 [5, 2] (x, y: left eye, right eye, nose,
               left and right mouth corner; pixels of the loose crop as the meta file gives them),
               `score` float32 (faceness), `template` int64, `media` int64.
               Read with `tfds.data_source("ijbc/images", split="images", data_dir=...)`.
  ijbc/pairs   split `pairs`: the template pair list in file order, in blocks of up to
               PAIRS_PER_EXAMPLE consecutive lines per example (TFDS moves ~20 k small records/s
               here, so 15.7 M one-pair records would take ~12 min to write and ~10 to read):
               `template_a`, `template_b`, `label` (1 = same), each int64 [n].
               `read_pairs(data_dir)` returns the three whole arrays (the IJB-C evaluator's
               `pairs`); the skip report counts pairs.

Images are joined to their template and media by name (the reference pairs the two meta files
line by line; the names make the join checkable). The 5-point alignment to 112 px
(`data_pipelines.face_align.align`) happens in the eval transform, not here, so the stored crop
stays the distributed one. Skipped, counted: malformed lines of any meta file, images without a
template/media line (or listed there without landmarks), missing or corrupt images.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import builder as builder_lib

IMAGES, PAIRS = "images", "pairs"
PAIRS_PER_EXAMPLE = 100_000
META = {"landmarks": "ijbc_name_5pts_score.txt", "templates": "ijbc_face_tid_mid.txt",
        "pairs": "ijbc_template_pair_label.txt"}


class Builder(builder_lib.FaceDatasetBuilder):
  """IJB-C loose crops with 5 landmarks, faceness, template and media ids; and template pairs."""

  name = "ijbc"
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name=IMAGES, description="loose crops, landmarks, template, media"),
      tfds.core.BuilderConfig(name=PAIRS, description="template pairs with same/different labels"),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Request IJB-C from NIST, or take the insightface test-suite pack `IJB_release` (see
  https://github.com/deepinsight/insightface/tree/master/recognition/_evaluation_/ijb), unpack
  it and pass its `IJBC` folder (the one holding `loose_crop/` and `meta/`) as --manual_dir.
  """
  DISABLE_SHUFFLING = True  # record order
  LAYOUT = """
  loose_crop/1.jpg ...
  meta/ijbc_name_5pts_score.txt       `1.jpg x1 y1 ... x5 y5 faceness_score`
  meta/ijbc_face_tid_mid.txt          `1.jpg template_id media_id`
  meta/ijbc_template_pair_label.txt   `template1 template2 label(1 = same)`
  """

  def _features(self):
    if self.builder_config.name == PAIRS:
      return {key: tfds.features.Tensor(shape=(None,), dtype=np.int64)
              for key in ("template_a", "template_b", "label")}
    return {"image": tfds.features.Image(shape=(None, None, 3)),
            "name": tfds.features.Text(),
            "landmarks": tfds.features.Tensor(shape=(5, 2), dtype=np.float32),
            "score": tfds.features.Scalar(np.float32),
            "template": tfds.features.Scalar(np.int64),
            "media": tfds.features.Scalar(np.int64)}

  def download_and_prepare(self, **kwargs):
    """Prepares this config; the default (`images`) one prepares `pairs` as well, so one prepare
    command gives both, and its skip report covers both."""
    super().download_and_prepare(**kwargs)
    if self.builder_config.name != IMAGES:
      return
    root = os.fspath(self.data_path.parent.parent.parent)  # <data_dir>/ijbc/images/<version>
    pairs = type(self)(config=PAIRS, data_dir=root, file_format=self.info.file_format,
                       validate_images=self.validate_images)
    pairs.download_and_prepare(**kwargs)
    if pairs.read_counts or pairs.skipped:
      pairs.write_skip_report()
    self.read_counts.update(pairs.read_counts)
    self.skipped.update(pairs.skipped)

  def _generate_examples(self, split, reader):
    for key, example in super()._generate_examples(split, reader):
      if split == PAIRS:  # the report counts pairs, not blocks of pairs
        self.read_counts[split] += len(example["label"]) - 1
      yield key, example

  def _split_readers(self, manual_dir):
    # Both configs check every file, so a missing one stops the first before it writes anything.
    crops = self.require(manual_dir, "loose_crop")
    meta = {key: self.require(manual_dir, "meta", file) for key, file in META.items()}
    if self.builder_config.name == PAIRS:
      return {PAIRS: lambda: self._read_pairs(meta["pairs"])}
    return {IMAGES: lambda: self._read_images(crops, meta["landmarks"], meta["templates"])}

  def _read_images(self, crops, landmarks_path, templates_path):
    templates, skips = read_templates(templates_path)
    yield from skips
    listed = set()  # names with a landmark line, even a bad one (skipped once, not twice)
    for n, line in enumerate(builder_lib.read_lines(landmarks_path), 1):
      fields = line.split()
      listed.add(fields[0])
      where = f"{META['landmarks']} line {n}"
      try:
        if len(fields) != 12:
          raise ValueError(f"{len(fields)} fields")
        values = np.asarray(fields[1:], np.float64)
      except ValueError:
        yield builder_lib.Skip(where, f"expected `name x1 y1 ... x5 y5 score` (12 fields): {line!r}")
        continue
      if not np.isfinite(values).all():
        yield builder_lib.Skip(where, f"non-finite landmark or score: {line!r}")
        continue
      name = fields[0]
      if name not in templates:
        yield builder_lib.Skip(name, f"no line in {META['templates']}")
        continue
      image = self.image_or_skip(os.path.join(crops, name), name)
      if isinstance(image, builder_lib.Skip):
        yield image
        continue
      template, media = templates[name]
      yield name, {"image": image, "name": name,
                   "landmarks": values[:10].reshape(5, 2).astype(np.float32),
                   "score": np.float32(values[10]), "template": template, "media": media}
    for name in sorted(set(templates) - listed):
      yield builder_lib.Skip(name, f"in {META['templates']} but without a line in "
                                   f"{META['landmarks']} (no landmarks to align it)")

  def _read_pairs(self, pairs_path):
    block: list[tuple[int, int, int]] = []
    first_line = 1
    for n, line in enumerate(builder_lib.read_lines(pairs_path), 1):
      fields = line.split()
      if len(fields) != 3 or not all(_is_int(v) for v in fields) or fields[2] not in ("0", "1"):
        yield builder_lib.Skip(f"{META['pairs']} line {n}",
                               f"expected `template1 template2 label(0|1)`: {line!r}")
        continue
      block.append((int(fields[0]), int(fields[1]), int(fields[2])))
      if len(block) == PAIRS_PER_EXAMPLE:
        yield _pair_block(first_line, n, block)
        block, first_line = [], n + 1
    if block:
      yield _pair_block(first_line, n, block)


def _pair_block(first_line: int, last_line: int, block: list) -> tuple[str, dict]:
  columns = np.asarray(block, np.int64)
  return f"lines {first_line}-{last_line}", {
      "template_a": columns[:, 0], "template_b": columns[:, 1], "label": columns[:, 2]}


def _is_int(text: str) -> bool:
  return text.lstrip("-").isdigit()


def read_templates(path: str) -> tuple[dict, list]:
  """({image name: (template, media)}, [Skip]) of `ijbc_face_tid_mid.txt`. A name listed again
  keeps its first ids; the repeat is skipped (counted) when its ids differ."""
  found, skips = {}, []
  for n, line in enumerate(builder_lib.read_lines(path), 1):
    fields = line.split()
    if len(fields) != 3 or not (_is_int(fields[1]) and _is_int(fields[2])):
      skips.append(builder_lib.Skip(f"{META['templates']} line {n}",
                                    f"expected `name template_id media_id`: {line!r}"))
      continue
    name, ids = fields[0], (int(fields[1]), int(fields[2]))
    if found.setdefault(name, ids) != ids:
      skips.append(builder_lib.Skip(f"{META['templates']} line {n}", f"{name} listed again with "
                                    f"other ids {ids}; the first line's {found[name]} are kept"))
  return found, skips


def read_pairs(data_dir: str) -> dict[str, np.ndarray]:
  """The whole prepared pair list: {"template_a", "template_b", "label"} int64 [num_pairs], in
  the order of `ijbc_template_pair_label.txt`."""
  source = tfds.data_source(f"ijbc/{PAIRS}", split=PAIRS, data_dir=data_dir)
  blocks = [source[i] for i in range(len(source))]
  return {key: np.concatenate([b[key] for b in blocks]) if blocks else np.zeros(0, np.int64)
          for key in ("template_a", "template_b", "label")}
