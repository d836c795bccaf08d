"""The Faceptor model on tiny sizes: the output contract, grouping, training mode, counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import models, tasks
from faceptor_jax.models import model_config
from tests.conftest import random_images

ALL = tuple(t for t in tasks.FULL_TASKS)
ONE_PER_OUTPUT = ("recog_ms1mv3", "age_morph2", "biattr_celeba", "affect_ferplus", "parsing_lapa",
                  "align_wflw", "align_aflw")


@pytest.fixture(scope="module")
def tiny():
  cfg = model_config.tiny()
  return cfg, models.create(cfg, ALL, rngs=nnx.Rngs(0))


def test_every_task_type_has_its_contracted_outputs(tiny):
  cfg, model = tiny
  out = nnx.jit(lambda m, x: m(x))(model, random_images(cfg, ONE_PER_OUTPUT))
  s = cfg.image_size[tasks.LARGE] // cfg.encoder.patch * 4  # the pixel decoder is 4x the grid
  assert out["recog_ms1mv3"]["embedding"].shape == (2, cfg.embedding_dim)
  assert "cos_logits" not in out["recog_ms1mv3"]  # eval: no classifier
  assert out["age_morph2"]["logits"].shape == (2, 101)
  assert out["biattr_celeba"]["logits"].shape == (2, 40)
  assert out["affect_ferplus"]["logits"].shape == (2, 7)
  assert out["parsing_lapa"]["logits"].shape == (2, s, s, 11)
  assert out["align_wflw"]["heatmap_logits"].shape == (2, 98, s, s)
  lm = np.asarray(out["align_aflw"]["landmarks"])
  assert lm.shape == (2, 19, 2) and (lm > 0).all() and (lm < 1).all()


def test_grouped_pass_equals_separate_passes(tiny):
  """One encoder pass per resolution group on concatenated images = one pass per task."""
  cfg, model = tiny
  names = ("age_morph2", "affect_rafdb", "parsing_celebam", "align_300w")
  imgs = random_images(cfg, names, seed=1)
  together = model(imgs)
  for t in names:
    alone = model({t: imgs[t]})[t]
    for k, v in alone.items():
      np.testing.assert_allclose(np.asarray(together[t][k]), np.asarray(v), atol=1e-5, rtol=1e-5)


def test_tasks_of_a_step_may_be_a_subset_but_not_unknown(tiny):
  cfg, model = tiny
  assert set(model(random_images(cfg, ("age_utkface",)))) == {"age_utkface"}
  small = models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0))
  with pytest.raises(KeyError, match="no task"):
    small(random_images(cfg, ("age_utkface",)))


def test_training_mode_uses_drop_path_batch_statistics_and_the_classifier():
  cfg = model_config.tiny()
  model = models.create(cfg, ("recog_ms1mv3", "age_morph2"), rngs=nnx.Rngs(0))
  imgs = random_images(cfg, ("recog_ms1mv3", "age_morph2"), batch=4)
  mean_before = np.asarray(model.recognition.bn1.mean[...]).copy()
  a = model(imgs, train=True, key=jax.random.key(0))
  b = model(imgs, train=True, key=jax.random.key(1))
  assert a["recog_ms1mv3"]["cos_logits"].shape == (4, 93431)
  cos = np.asarray(a["recog_ms1mv3"]["cos_logits"])
  assert np.abs(cos).max() <= 1 + 1e-5
  assert not np.allclose(a["age_morph2"]["logits"], b["age_morph2"]["logits"])  # drop-path
  assert not np.allclose(mean_before, model.recognition.bn1.mean[...])  # running stats moved
  c = model(imgs, train=True, key=jax.random.key(0))
  np.testing.assert_allclose(a["age_morph2"]["logits"], c["age_morph2"]["logits"], atol=1e-6)


def test_layer_attention_levels_and_attention_mass():
  cfg = model_config.tiny()
  cfg.decoder.new_levels = (1, 2, 3)
  model = models.create(cfg, ("age_morph2", "parsing_celebam"), rngs=nnx.Rngs(0))
  out = model(random_images(cfg, ("age_morph2", "parsing_celebam")), return_attention=True)
  att = np.asarray(out["age_morph2"]["layer_attention"])
  assert att.shape == (cfg.decoder.layers, 2, 101, 4)
  np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
  # The new levels change the memory, so the output differs from layer 4 alone.
  model.decoder.new_level_embed[...] = model.decoder.new_level_embed[...] + 1.0
  out2 = model(random_images(cfg, ("age_morph2",)))
  assert not np.allclose(out["age_morph2"]["logits"], out2["age_morph2"]["logits"])


def test_bfloat16_matmuls_stay_close_to_float32():
  cfg = model_config.tiny()
  m32 = models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0))
  cfg.dtype = "bfloat16"
  m16 = models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0))
  imgs = random_images(cfg, ("age_morph2",))
  a, b = m32(imgs)["age_morph2"]["logits"], m16(imgs)["age_morph2"]["logits"]
  assert b.dtype == jnp.float32
  assert np.abs(np.asarray(a) - np.asarray(b)).max() < 0.05 * max(1, np.abs(np.asarray(a)).max())


@pytest.mark.parametrize("names,expected", [(tasks.BASE_TASKS, 103_200_001),
                                            (tasks.FULL_TASKS, 103_335_681)])
def test_parameter_count_is_the_official_one(names, expected):
  """Counted as the official solver logs "All Inference Params" (SPEC 1.5)."""
  model = nnx.eval_shape(lambda: models.create(model_config.get(), names, rngs=nnx.Rngs(0)))
  assert models.count_parameters(model) == expected


def test_parameters_carry_logical_sharding_names(tiny):
  _, model = tiny
  specs = {tuple(p): v.get_metadata().get("out_sharding")
           for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  assert all(s is not None for s in specs.values())
  assert specs[("classifiers", "recog_ms1mv3", "weight")] == ("classes", None)
  assert specs[("encoder", "blocks", 0, "c_fc", "kernel")] == ("embed", "mlp")


def encoder_grads(cfg, images, key):
  from faceptor_jax.models import vit
  enc = vit.VisionTransformer(cfg.encoder, rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(enc)

  def loss(params):
    feats = nnx.merge(graphdef, params)(images, train=True, key=key)
    return sum(jnp.sum(f * jnp.cos(f)) for f in feats)
  return jax.grad(loss)(params)


def test_encoder_recomputation_does_not_change_gradients():
  cfg = model_config.tiny()
  images = random_images(cfg, ("age_morph2",))["age_morph2"]
  cfg.encoder.remat = ""
  stored = encoder_grads(cfg, images, jax.random.key(3))
  cfg.encoder.remat = "nothing_saveable"
  recomputed = encoder_grads(cfg, images, jax.random.key(3))
  for a, b in zip(jax.tree.leaves(stored), jax.tree.leaves(recomputed)):
    # Recomputed values may be fused differently: float rounding only.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key,value", [("remat", "save_everything_please"),
                                       ("drop_path_per", "batch")])
def test_bad_encoder_options_are_refused_by_name(key, value):
  cfg = model_config.tiny()
  cfg.encoder[key] = value
  with pytest.raises(ValueError, match=key):
    models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0))


def test_encoder_drop_path_follows_the_official_token_axis_by_default():
  from faceptor_jax.models import vit
  cfg = model_config.tiny()
  enc = vit.VisionTransformer(cfg.encoder, rngs=nnx.Rngs(0))
  assert {b.drop_axis for b in enc.blocks} == {1}  # [B, N, D]: tokens
  cfg.encoder.drop_path_per = "example"
  enc = vit.VisionTransformer(cfg.encoder, rngs=nnx.Rngs(0))
  assert {b.drop_axis for b in enc.blocks} == {0}
