"""Mesh and parameter shardings from config, on 8 simulated CPU devices (a subprocess: the device
count is fixed when jax starts)."""

import os
import subprocess
import sys
import textwrap

import pytest
from jax.sharding import PartitionSpec as P

from faceptor_jax import sharding

SCRIPT = textwrap.dedent("""
    import jax, numpy as np, ml_collections
    from flax import nnx
    from jax.sharding import PartitionSpec as P
    from faceptor_jax import models, sharding, weights
    from faceptor_jax.models import model_config
    mesh = sharding.make_mesh({"data": -1, "fsdp": 2})
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2}, mesh.shape
    cfg = model_config.tiny()
    cfg.classifier_multiple = 8
    model = models.create(cfg, ("recog_ms1mv3", "age_morph2"), rngs=nnx.Rngs(0))
    assert model.classifiers["recog_ms1mv3"].weight.shape == (93432, 16)
    state = nnx.state(model)
    shard = sharding.state_shardings(state, mesh, ml_collections.ConfigDict(
        {"rules": sharding.DEFAULT_RULES, "overrides": [(r"decoder/query_feat/.*", (None, "fsdp"))]}))
    flat = {"/".join(map(str, p)): s.get_value().spec for p, s in nnx.to_flat_state(shard)}
    assert flat["classifiers/recog_ms1mv3/weight"] == P(("data", "fsdp"), None), flat
    assert flat["encoder/blocks/0/c_fc/kernel"] == P("fsdp", None)
    assert flat["encoder/blocks/0/attn/qkv_kernel"] == P("fsdp", None, None, None)
    assert flat["decoder/query_feat/age_morph2"] == P(None, "fsdp")
    assert flat["recognition/bn1/mean"] == P(None)
    placed = jax.device_put(state, shard)
    w = nnx.to_flat_state(placed)
    cos = jax.jit(lambda m, e: m(e))(model.classifiers["recog_ms1mv3"], np.ones((8, 16), "f4"))
    assert cos.shape == (8, 93432) and float(cos[0, -1]) == -1e4
    # A checkpoint with the official row count loads into the padded classifier.
    params = {("classifiers", "recog_ms1mv3", "weight"): np.ones((93431, 16), "f4")}
    weights.assign(model, params, allow_missing=[".*"])
    assert float(model.classifiers["recog_ms1mv3"].weight[...][-1].sum()) == 0.0
    print("OK")
""")


def test_mesh_rules_and_padded_classifier_on_8_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_uneven_dimension_stays_replicated():
  class FakeMesh:
    shape = {"data": 4, "fsdp": 2}
  spec = sharding.spec_for("x", (6, 10), ("embed", None), sharding.DEFAULT_RULES, (), FakeMesh)
  assert spec == P("fsdp", None)
  spec = sharding.spec_for("x", (5, 10), ("embed", None), sharding.DEFAULT_RULES, (), FakeMesh)
  assert spec == P(None, None)


def test_mesh_sizes_must_cover_the_devices():
  with pytest.raises(ValueError, match="needs 6 devices"):
    sharding.make_mesh({"data": 3, "fsdp": 2}, devices=list(range(8)))
  with pytest.raises(ValueError, match="at most one"):
    sharding.make_mesh({"data": -1, "fsdp": -1}, devices=list(range(8)))


def test_batch_sizes_that_do_not_divide_are_named():
  class FakeMesh:
    shape = {"data": 4, "fsdp": 2}
  with pytest.raises(ValueError, match=r"align_300w.*multiples of 8"):
    sharding.check_batch_sizes({"age_morph2": 64, "align_300w": 4}, FakeMesh)
