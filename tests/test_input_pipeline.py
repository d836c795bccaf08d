"""benchmarks/input_pipeline.py runs end to end and prints a rate for every task and record line.

Run as a subprocess, as users run it: its absl flags then cannot clash with other modules' flags.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_benchmark_prints_a_positive_rate_per_line():
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.input_pipeline", "--seconds=0.01", "--repeats=1",
       "--num_images=1", "--small_size=32", "--large_size=64"],
      cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
  lines = result.stdout.splitlines()
  for task_name in ("recog_ms1mv3", "biattr_celeba", "affect_rafdb", "age_utkface", "align_300w",
                    "parsing_celebam", "parsing_lapa"):
    size = 64 if task_name.startswith(("align", "parsing")) else 32
    line = next(l for l in lines if l.startswith(f"{task_name} train transform @ {size}"))
    with_decode, transform_only = (float(v) for v in re.findall(r"\s(\d+)", line)[-2:])
    assert 0 < with_decode <= transform_only * 1.5  # decoding can only add work (+ noise)
  for dataset in ("rafdb", "lapa"):  # builders owned by others: a rate, or a reason
    record_lines = [l for l in lines if l.startswith(f"{dataset} records")]
    assert record_lines and all(re.search(r"\s\d+\s*$", l) or "skipped (" in l
                                for l in record_lines)
