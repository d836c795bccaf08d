"""The task table: every Faceptor task, by its official name `<type>_<dataset>`.

The type (the name's prefix) decides the resolution group, the interpreter (head), the output
module, the loss, the evaluator and the loss-weight rule. Nothing else in the project decides
these: models, losses, the data mixture and the evaluators all look them up here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Resolution groups. The encoder runs once per group on the concatenated images of its tasks.
# The sizes are config values (`config.model.image_size[group]`); these are the official ones.
SMALL, LARGE = "small", "large"
GROUP_IMAGE_SIZE = {SMALL: 112, LARGE: 512}

# Input normalisation per group, as the released checkpoints were trained (SPEC 2.5): the 112-px
# tasks see [-1, 1] (mean = std = 0.5), the 512-px tasks the CLIP statistics.
GROUP_MEAN_STD = {
    SMALL: ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    LARGE: ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


@dataclasses.dataclass(frozen=True)
class TaskType:
  """What every task of one type shares."""
  name: str
  group: str            # resolution group, SMALL or LARGE
  interpreter: str      # official interpreter: 'feature_v2' | 'value' | 'map_v2'
  output: str | None    # parameter-free output module: 'parsing' | 'align' | None
  evaluator: str        # evaluator module name under faceptor_jax/evaluators/

  @property
  def uses_decoder(self) -> bool:
    return self.interpreter != "feature_v2"


TYPES = {t.name: t for t in (
    TaskType("recog", SMALL, "feature_v2", None, "verification"),
    TaskType("age", SMALL, "value", None, "age"),
    TaskType("biattr", SMALL, "value", None, "attributes"),
    TaskType("affect", SMALL, "value", None, "expression"),
    TaskType("parsing", LARGE, "map_v2", "parsing", "parsing"),
    TaskType("align", LARGE, "map_v2", "align", "landmarks"),
)}


@dataclasses.dataclass(frozen=True)
class Task:
  """One task: a type applied to one dataset."""
  name: str             # official name, e.g. 'align_300w'
  num_outputs: int      # queries of the decoder = logits / classes / points; identities for recog
  dataset: str          # the TFDS dataset name in data_pipelines

  @property
  def type(self) -> TaskType:
    return TYPES[self.name.split("_", 1)[0]]

  @property
  def num_queries(self) -> int:
    """Decoder queries. Recognition skips the decoder, so it has none (the official '2' is dead)."""
    return self.num_outputs if self.type.uses_decoder else 0

  @property
  def group(self) -> str:
    return self.type.group


TASKS = {t.name: t for t in (
    Task("recog_ms1mv3", 93431, "ms1mv3"),
    Task("age_morph2", 101, "morph2"),
    Task("age_utkface", 101, "utkface"),
    Task("biattr_celeba", 40, "celeba"),
    Task("biattr_lfw73", 73, "lfw73"),
    Task("affect_affectnet", 7, "affectnet"),
    Task("affect_rafdb", 7, "rafdb"),
    Task("affect_ferplus", 7, "ferplus"),
    Task("parsing_celebam", 19, "celebamask_hq"),
    Task("parsing_lapa", 11, "lapa"),
    Task("align_300w", 68, "ibug300w"),
    Task("align_wflw", 98, "wflw"),
    Task("align_cofw", 29, "cofw"),
    Task("align_aflw", 19, "aflw19"),
)}

# The task lists of the released stage-1 configs, in the official config order.
BASE_TASKS = ("recog_ms1mv3", "age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb",
              "parsing_celebam", "align_300w")
FULL_TASKS = ("recog_ms1mv3", "age_morph2", "age_utkface", "biattr_celeba", "affect_affectnet",
              "affect_rafdb", "affect_ferplus", "parsing_celebam", "parsing_lapa", "align_300w",
              "align_cofw", "align_wflw", "align_aflw")

# Class names, in the order the model's outputs use.
EXPRESSION_CLASSES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger")
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns",
    "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young")
# LFW-73: lfw_attributes.txt's 73 columns (Kumar et al.'s attribute classifiers), in its order.
LFW73_ATTRIBUTES = (
    "Male", "Asian", "White", "Black", "Baby", "Child", "Youth", "Middle Aged", "Senior",
    "Black Hair", "Blond Hair", "Brown Hair", "Bald", "No Eyewear", "Eyeglasses", "Sunglasses",
    "Mustache",
    "Smiling", "Frowning", "Chubby", "Blurry", "Harsh Lighting", "Flash", "Soft Lighting",
    "Outdoor", "Curly Hair", "Wavy Hair", "Straight Hair", "Receding Hairline", "Bangs",
    "Sideburns", "Fully Visible Forehead", "Partially Visible Forehead", "Obstructed Forehead",
    "Bushy Eyebrows", "Arched Eyebrows", "Narrow Eyes", "Eyes Open", "Big Nose", "Pointy Nose",
    "Big Lips", "Mouth Closed", "Mouth Slightly Open", "Mouth Wide Open", "Teeth Not Visible",
    "No Beard", "Goatee", "Round Jaw", "Double Chin", "Wearing Hat", "Oval Face", "Square Face",
    "Round Face", "Color Photo", "Posed Photo", "Attractive Man", "Attractive Woman", "Indian",
    "Gray Hair", "Bags Under Eyes", "Heavy Makeup", "Rosy Cheeks", "Shiny Skin", "Pale Skin",
    "5 o' Clock Shadow", "Strong Nose-Mouth Lines", "Wearing Lipstick", "Flushed Face",
    "High Cheekbones", "Brown Eyes", "Wearing Earrings", "Wearing Necktie", "Wearing Necklace")
_ATTRIBUTE_NAMES = {"biattr_celeba": CELEBA_ATTRIBUTES, "biattr_lfw73": LFW73_ATTRIBUTES}
PARSING_CLASSES = {
    "parsing_celebam": ("background", "neck", "face", "cloth", "rr", "lr", "rb", "lb", "re", "le",
                        "nose", "imouth", "llip", "ulip", "hair", "glass", "hat", "earr", "neckl"),
    "parsing_lapa": ("background", "face_lr_rr", "lb", "rb", "le", "re", "nose", "ul", "im", "ll",
                     "hair"),
}


def get(name: str) -> Task:
  """The task called `name`, or an error that lists the known tasks."""
  try:
    return TASKS[name]
  except KeyError:
    raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def attribute_names(task: str) -> tuple:
  """The names of an attribute task's outputs, in order (attr_<i> where the dataset has none)."""
  return _ATTRIBUTE_NAMES.get(task) or tuple(f"attr_{i}" for i in range(get(task).num_outputs))


def group_of(names) -> dict[str, list[str]]:
  """{group: [task names in the given order]} for the groups that have tasks."""
  groups: dict[str, list[str]] = {}
  for name in names:
    groups.setdefault(get(name).group, []).append(name)
  return groups


def normalize(images, group: str):
  """uint8 or [0, 255] float images [..., H, W, 3] -> the group's normalised float32 input."""
  # Works on numpy and jax arrays alike (on the device inside the jitted step).
  mean, std = (np.asarray(v, np.float32) for v in GROUP_MEAN_STD[group])
  return (images.astype(np.float32) / 255.0 - mean) / std
