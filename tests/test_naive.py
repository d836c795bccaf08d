"""Naive Faceptor on tiny sizes: the output contract, heads per type, training mode, global BN."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import models, tasks
from faceptor_jax.models import model_config
from tests.conftest import random_images

ALL = tasks.FULL_TASKS


@pytest.fixture(scope="module")
def tiny():
  cfg = model_config.tiny("naive")
  return cfg, models.create(cfg, ALL, rngs=nnx.Rngs(0))


def test_every_task_type_has_its_contracted_outputs(tiny):
  cfg, model = tiny
  imgs = random_images(cfg, ALL)
  grid = cfg.image_size[tasks.LARGE] // cfg.encoder.patch

  def forward(m, im):
    # Also every channel of the parsing head on the LaPa images: LaPa must read its own range.
    feats = m.encoder(im["parsing_lapa"])
    head = m.heads["parsing"]
    maps = [feats[i - 1].reshape(2, grid, grid, -1) for i in head.encoder_layers]
    return m(im), head.head(head.adapters(maps, False), train=False)

  out, every_parsing_channel = nnx.jit(forward)(model, imgs)
  s = 4 * grid
  assert set(out) == set(ALL)
  assert out["recog_ms1mv3"]["embedding"].shape == (2, cfg.embedding_dim)
  assert "cos_logits" not in out["recog_ms1mv3"]  # eval: no classifier
  assert out["age_utkface"]["logits"].shape == (2, 101)
  assert out["biattr_celeba"]["logits"].shape == (2, 40)
  assert out["affect_ferplus"]["logits"].shape == (2, 7)
  assert out["parsing_celebam"]["logits"].shape == (2, s, s, 19)
  assert out["parsing_lapa"]["logits"].shape == (2, s, s, 11)
  np.testing.assert_allclose(out["parsing_lapa"]["logits"], every_parsing_channel[..., 19:30],
                             atol=1e-5)
  assert out["align_wflw"]["heatmap_logits"].shape == (2, 98, s, s)
  lm = np.asarray(out["align_aflw"]["landmarks"])
  assert lm.shape == (2, 19, 2) and (lm > 0).all() and (lm < 1).all()


def test_one_head_per_type_with_one_output_layer_per_task(tiny):
  _, model = tiny
  assert set(model.heads) == {"recog", "age", "biattr", "affect", "parsing", "align"}
  assert set(model.heads["affect"].fcs) == {"affect_affectnet", "affect_rafdb", "affect_ferplus"}
  # A dense head's classifier covers all its tasks; each task reads its own channel range.
  parsing = model.heads["parsing"]
  assert parsing.channel_ranges == (("parsing_celebam", 0, 19), ("parsing_lapa", 19, 30))
  assert parsing.head.conv_seg.kernel.shape[-1] == 30
  assert model.heads["align"].channel_ranges[-1] == ("align_aflw", 68 + 29 + 98, 68 + 29 + 98 + 19)


def test_unknown_task_and_layer_attention_are_refused(tiny):
  cfg, _ = tiny
  small = models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0))
  with pytest.raises(KeyError, match="no task"):
    small(random_images(cfg, ("age_utkface",)))
  with pytest.raises(ValueError, match="no decoder"):
    small(random_images(cfg, ("age_morph2",)), return_attention=True)


def batch_stats(model):
  return {p: np.asarray(v[...]).copy() for p, v in nnx.to_flat_state(nnx.state(model,
                                                                               nnx.BatchStat))}


def test_training_updates_every_batch_norm_and_draws_dropout_from_the_key():
  cfg = model_config.tiny("naive")
  cfg.encoder.drop_path = 0.0  # so that only the heads' dropout depends on the key
  names = ("recog_ms1mv3", "age_morph2", "parsing_celebam")
  model = models.create(cfg, names, rngs=nnx.Rngs(0))
  imgs = random_images(cfg, names, batch=3)
  step = nnx.jit(lambda m, im, k: m(im, train=True, key=k))
  before = batch_stats(model)
  a = step(model, imgs, jax.random.key(0))
  after = batch_stats(model)
  moved = {p for p in before if not np.array_equal(before[p], after[p])}
  assert moved == set(before)  # recognition BN1d, MLCA BN1d, adapter BN, every ConvModule BN
  assert ("heads", "age", "norm", "mean") in moved
  assert ("heads", "parsing", "head", "psp_modules", 0, "bn", "var") in moved
  assert a["recog_ms1mv3"]["cos_logits"].shape == (3, 93431)
  b = step(model, imgs, jax.random.key(1))
  c = step(model, imgs, jax.random.key(0))
  # Dropout(0.5) in the MLCA head, Dropout2d(0.1) in the UPerHead; none in recognition.
  for t in ("age_morph2", "parsing_celebam"):
    assert not np.allclose(a[t]["logits"], b[t]["logits"])
    np.testing.assert_allclose(a[t]["logits"], c[t]["logits"], atol=1e-5)
  np.testing.assert_allclose(a["recog_ms1mv3"]["embedding"], b["recog_ms1mv3"]["embedding"],
                             atol=1e-5)


def test_bfloat16_matmuls_stay_close_to_float32():
  cfg = model_config.tiny("naive")
  names = ("age_morph2", "parsing_celebam")
  m32 = models.create(cfg, names, rngs=nnx.Rngs(0))
  cfg.dtype = "bfloat16"
  m16 = models.create(cfg, names, rngs=nnx.Rngs(0))
  imgs = random_images(cfg, names)
  forward = nnx.jit(lambda m, im: m(im))
  a, b = forward(m32, imgs), forward(m16, imgs)
  for t in names:
    x, y = np.asarray(a[t]["logits"]), np.asarray(b[t]["logits"])
    assert b[t]["logits"].dtype == jnp.float32
    assert np.abs(x - y).max() < 0.05 * max(1.0, np.abs(x).max())


def test_parameters_carry_logical_sharding_names(tiny):
  _, model = tiny
  params = {tuple(p): v for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  specs = {p: v.get_metadata().get("out_sharding") for p, v in params.items()}
  assert all(specs[p] is not None and len(specs[p]) == v.ndim for p, v in params.items())
  assert specs[("heads", "age", "conv", 0, "kernel")] == (None, None, "conv_in", "conv_out")


GLOBAL_BN_SCRIPT = textwrap.dedent("""
  import os
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  import jax, jax.numpy as jnp, numpy as np
  from flax import nnx
  from faceptor_jax import models
  from faceptor_jax.models import model_config
  assert len(jax.devices()) == 2
  cfg = model_config.tiny("naive")
  names = ("age_morph2",)
  rng = np.random.default_rng(0)
  imgs = {"age_morph2": jnp.asarray(rng.normal(size=(4, 32, 32, 3)), jnp.float32)}
  mesh = jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  data = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  sharded = {t: jax.device_put(x, data) for t, x in imgs.items()}
  step = nnx.jit(lambda m, im: m(im, train=True))
  results = []
  for batch in (imgs, sharded):
    model = models.create(cfg, names, rngs=nnx.Rngs(0))
    out = step(model, batch)
    stats = nnx.state(model, nnx.BatchStat)
    results.append((jax.device_get(out), jax.device_get(stats)))
  (o1, s1), (o2, s2) = results
  assert len(sharded["age_morph2"].sharding.device_set) == 2
  for t in names:
    np.testing.assert_allclose(o1[t]["logits"], o2[t]["logits"], atol=1e-5)
  for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2)):
    np.testing.assert_allclose(a, b, atol=1e-6)
  print("GLOBAL_BN_OK")
""")


def test_batch_norm_statistics_are_global_over_a_sharded_batch():
  """Two CPU devices, the batch split over them: outputs and running statistics equal those of
  the unsharded batch (the official SyncBN), so no statistic is per device. Every batch norm of
  the model is `layers.BatchNorm`; the MLCA head's keeps this test fast."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  run = subprocess.run([sys.executable, "-c", GLOBAL_BN_SCRIPT], capture_output=True, text=True,
                       cwd=root, env={**os.environ, "PYTHONPATH": root}, timeout=300)
  assert "GLOBAL_BN_OK" in run.stdout, run.stderr[-3000:]
