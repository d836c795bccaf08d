"""The trainer end to end on configs/tiny.py: exact resume after kill -9, a (data 4, fsdp 2) mesh,
two processes, evaluation of a checkpoint, config overrides.

Every run is a subprocess, as a user runs it (the device count is fixed when jax starts). The tiny
synthetic datasets are prepared once per session.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(workdir, *flags, devices=1, env=None, check=True, timeout=900):
  environ = dict(os.environ, JAX_PLATFORMS="cpu",
                 XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **(env or {}))
  cmd = [sys.executable, "-m", "faceptor_jax.main", "--config=configs/tiny.py",
         f"--workdir={workdir}", *flags]
  result = subprocess.run(cmd, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=timeout)
  if check and result.returncode != 0:
    raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
  return result


def losses(workdir) -> dict:
  """{step: loss} of a run's metrics.jsonl (the last record of a step wins: a resumed run)."""
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if "train/loss" in record:
        out[record["step"]] = record["train/loss"]
  return out


def final_state(workdir, step):
  import orbax.checkpoint as ocp
  path = os.path.join(workdir, "checkpoints", str(step), "state")
  with ocp.StandardCheckpointer() as ckptr:
    return ckptr.restore(path)


def flat(tree):
  import jax
  return {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="session")
def unbroken(tmp_path_factory, data_dir):
  """8 steps in one go."""
  workdir = str(tmp_path_factory.mktemp("unbroken"))
  run(workdir, f"--config.data_dir={data_dir}")
  return workdir


def test_resume_after_kill_is_bit_exact(tmp_path, data_dir, unbroken):
  workdir = str(tmp_path / "killed")
  first = run(workdir, f"--config.data_dir={data_dir}", env={"FACEPTOR_KILL_AFTER_STEP": "6"},
              check=False)
  assert first.returncode == -9, first.stderr[-2000:]  # SIGKILL: no cleanup, no final save
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
  second = run(workdir, f"--config.data_dir={data_dir}")
  assert "resumed from step 4" in second.stderr
  expected, got = losses(unbroken), losses(workdir)
  assert sorted(expected) == list(range(1, 9))
  for step in range(5, 9):  # the steps after the resume, bit for bit
    assert got[step] == expected[step], (step, got[step], expected[step])
  a, b = flat(final_state(unbroken, 8)), flat(final_state(workdir, 8))
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_data_fsdp_mesh_on_8_devices_matches_one_device(tmp_path, data_dir, unbroken):
  workdir = str(tmp_path / "mesh")
  run(workdir, f"--config.data_dir={data_dir}", "--config.mesh.data=4", "--config.mesh.fsdp=2",
      "--config.schedule.total_steps=3", devices=8)
  single, sharded = losses(unbroken), losses(workdir)
  for step in (1, 2, 3):
    assert abs(single[step] - sharded[step]) <= 2e-4 * abs(single[step]), (step, single, sharded)


def test_two_processes_train_together_like_one(tmp_path, data_dir, unbroken):
  workdir = str(tmp_path / "multihost")
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  environ = dict(os.environ, JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
                 XLA_FLAGS="--xla_force_host_platform_device_count=1")
  procs = [subprocess.Popen(
      [sys.executable, "-m", "faceptor_jax.main", "--config=configs/tiny.py",
       f"--workdir={workdir}", f"--config.data_dir={data_dir}", "--config.schedule.total_steps=3",
       f"--coordinator=localhost:{port}", "--num_processes=2", f"--process_id={i}"],
      cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  outs = [p.communicate(timeout=900) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  assert "2 host(s)" in outs[0][1]
  single, multi = losses(unbroken), losses(workdir)
  for step in (1, 2, 3):
    assert abs(single[step] - multi[step]) <= 2e-4 * abs(single[step]), (step, single, multi)


def test_eval_mode_scores_the_newest_checkpoint(tmp_path, data_dir, unbroken):
  result = run(unbroken, f"--config.data_dir={data_dir}", "--mode=eval",
               "--config.eval_batch_size=8")
  assert "restored step 8" in result.stderr
  assert "benchmark" in result.stdout  # the table (tiny.py names no benchmark: just its header)


def test_unknown_config_key_and_wrong_type_are_refused(tmp_path):
  bad_key = run(str(tmp_path), "--config.model.encoder.widht=8", check=False)
  assert bad_key.returncode != 0 and "widht" in bad_key.stderr
  assert "width" in bad_key.stderr  # the valid keys are named
  bad_type = run(str(tmp_path), "--config.schedule.total_steps=many", check=False)
  assert bad_type.returncode != 0 and "many" in bad_type.stderr
