"""Pictures of predictions: parsing colours, landmarks, the face box and the scalar outputs.

`overlay(image, prediction, box)` draws one image's decoded predictions (faceptor_jax.inference)
on a copy of it and returns RGB uint8.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from faceptor_jax import tasks

PARSING_ALPHA = 0.45
LANDMARK_COLOR = (0, 255, 0)
BOX_COLOR = (255, 200, 0)


def palette(n: int) -> np.ndarray:
  """n distinguishable RGB uint8 colours (hues spaced by the golden ratio); class 0 is black."""
  colors = [(0, 0, 0)] + [colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 1.0)
                          for i in range(1, n)]
  return (np.asarray(colors) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, prediction: dict, box=None) -> np.ndarray:
  """`image` (RGB uint8) with the first parsing map blended in (background left as is), every
  landmark set as dots, the face box, and age / expression / present attributes as text."""
  out = image.copy()
  scale = max(1, round(max(image.shape[:2]) / 512))  # line widths that show on large photos
  for task, p in prediction.items():
    if "label" in p:
      label = p["label"]
      colors = palette(len(tasks.PARSING_CLASSES.get(task, ())) or int(label.max()) + 1)
      face = label > 0
      blend = (1 - PARSING_ALPHA) * out[face] + PARSING_ALPHA * colors[label[face]]
      out[face] = blend.round().astype(np.uint8)
      break
  for p in prediction.values():
    for x, y in p.get("landmarks", ()):
      if np.isfinite([x, y]).all():
        cv2.circle(out, (int(round(x)), int(round(y))), 2 * scale, LANDMARK_COLOR, -1,
                   cv2.LINE_AA)
  if box is not None:
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, scale)
  _text(out, _summary(prediction), scale)
  return out


def _summary(prediction: dict) -> list[str]:
  lines = []
  for task, p in prediction.items():
    if "age" in p:
      lines.append(f"{task}: age {p['age']:.1f}")
    elif "expression" in p:
      lines.append(f"{task}: {p['expression']} ({p['probabilities'][p['expression']]:.2f})")
    elif "present" in p:
      shown = ", ".join(p["present"][:6]) + (" ..." if len(p["present"]) > 6 else "")
      lines.append(f"{task}: {shown or 'none'}")
  return lines


def _text(image: np.ndarray, lines: list[str], scale: int) -> None:
  """Lines of text at the top left, white on a dark band so they read on any photo."""
  font, size, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, scale
  y = 0
  for line in lines:
    (w, h), base = cv2.getTextSize(line, font, size, thick)
    band = image[y:y + h + base + 4, :w + 6]
    band[...] = (band * 0.35).astype(np.uint8)
    cv2.putText(image, line, (3, y + h + 2), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    y += h + base + 4
