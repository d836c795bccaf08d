"""The Naive Faceptor converter against the official PyTorch model: parity on the recipe weights
(tests/fixtures/official/README.md), and refusals of keys that do not fit."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import models, tasks, weights
from faceptor_jax.convert import official_naive
from faceptor_jax.convert import __main__ as command
from faceptor_jax.models import heads, model_config
from tests.conftest import FIXTURES, close, recipe_state


def naive_model_of_official_size():
  return models.create(model_config.get("naive"), tasks.BASE_TASKS, rngs=nnx.Rngs(0),
                       with_classifier=False)


@pytest.fixture(scope="module")
def naive_state(official_recipe):
  return recipe_state(official_recipe, "official_naive_keys.json")


@pytest.fixture(scope="module")
def fixture():
  return np.load(os.path.join(FIXTURES, "official_naive_outputs.npz"))


@pytest.fixture(scope="module")
def naive_model(naive_state):
  params, unused = official_naive.naive_params({"module." + k: v for k, v in naive_state.items()})
  model = naive_model_of_official_size()
  assert weights.assign(model, params, unused=unused) == []
  return model


@pytest.fixture(scope="module")
def outputs(naive_model, fixture):
  x112 = jnp.asarray(fixture["input_112"].transpose(0, 2, 3, 1))
  x512 = jnp.asarray(fixture["input_512"].transpose(0, 2, 3, 1))
  images = {t: x112 if tasks.get(t).group == tasks.SMALL else x512 for t in tasks.BASE_TASKS}
  forward = nnx.jit(lambda m, im: (m(im), m.encoder(im["age_morph2"]),
                                   m.encoder(im["align_300w"])))
  return forward(naive_model, images)


def test_encoder_layers_equal_official(outputs, fixture, naive_model):
  _, enc112, enc512 = outputs
  for layer in (2, 4, 6, 8, 10, 12):
    ours = np.asarray(enc112[layer - 1]).reshape(2, 7, 7, -1).transpose(0, 3, 1, 2)
    close(ours, fixture[f"enc112_layer{layer:02d}"])
  for layer in (4, 6, 8, 12):  # the layers the dense heads read
    ours = np.asarray(enc512[layer - 1]).reshape(1, 32, 32, -1).transpose(0, 3, 1, 2)
    close(ours, fixture[f"enc512_layer{layer:02d}"])
  close(naive_model.encoder.positional_embedding_for(7), fixture["pos_embed_resized_7x7"])


def test_every_task_output_equals_official(outputs, fixture):
  out, _, _ = outputs
  assert set(out) == set(tasks.BASE_TASKS)
  close(out["recog_ms1mv3"]["embedding"], fixture["recog_ms1mv3_embedding"])
  for t in ("age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb"):
    close(out[t]["logits"], fixture[f"{t}_logits"])
  close(np.asarray(out["parsing_celebam"]["logits"]).transpose(0, 3, 1, 2),
        fixture["parsing_celebam_logits_128"])
  close(out["align_300w"]["heatmap_logits"], fixture["align_300w_heatmap_logits"])
  close(out["align_300w"]["landmarks"], fixture["align_300w_landmarks"], 1e-5)


def test_landmark_decoding_equals_official_probe(fixture):
  """Naive's sharpened heatmaps spread the points over 0.004-0.996: a real check of the decoder."""
  h = fixture["align_300w_heatmap_logits"]
  probe = 20.0 * (h - h.max(axis=(2, 3), keepdims=True))
  close(heads.heatmap_to_points(jnp.asarray(probe)), fixture["align_300w_landmarks_probe"], 1e-5)


def test_recognition_head_alone_is_exact(naive_model, fixture):
  """The BatchNorm1d eps (2e-5, not 1e-5) shows only at this tolerance (fixtures README)."""
  tokens = fixture["enc112_layer12"].reshape(2, 768, 49).transpose(0, 2, 1)
  emb = naive_model.heads["recog"](jnp.asarray(tokens), False)
  assert np.abs(np.asarray(emb) - fixture["recog_ms1mv3_embedding"]).max() < 1e-5


def test_attribute_heads_alone_on_the_recorded_features(naive_model, fixture):
  """Fed the official layer 6-12 features, the MLCA heads are within 4e-6 of the official logits;
  a BatchNorm1d eps of 1e-5 instead of 2e-5 would put them 2-3e-5 off."""
  feats = [None] * 12
  for layer in (6, 8, 10, 12):
    feats[layer - 1] = jnp.asarray(
        fixture[f"enc112_layer{layer:02d}"].reshape(2, 768, 49).transpose(0, 2, 1))
  for t in ("age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb"):
    logits = naive_model.head(t, feats, 7, train=False)["logits"]
    assert np.abs(np.asarray(logits) - fixture[f"{t}_logits"]).max() < 1e-5, t


def test_parameter_count_is_the_official_one(fixture):
  """README: Naive Faceptor 178.9 M; the official "All Inference Params" (backbone incl. ln_post
  and proj, every head; no BN statistics, no CosFace classifier) is 178,911,058."""
  model = nnx.eval_shape(lambda: models.create(model_config.get("naive"), tasks.BASE_TASKS,
                                               rngs=nnx.Rngs(0)))
  meta = json.loads(fixture["meta_json"].item())
  assert models.count_parameters(model) == 178_911_058
  assert meta["inference_params_excluding_bn_stats_and_ln_aliases"] == 178_911_058


def test_convert_command_infers_the_naive_tasks(naive_state):
  assert command.infer_tasks(naive_state) == list(tasks.BASE_TASKS)


def test_converter_lists_missing_unexpected_and_misshaped_keys(naive_state):
  state = dict(naive_state)
  del state["heads_module.heads.affect.fcs.affect_rafdb.bias"]
  del state["heads_module.heads.align.head.fpn_convs.1.bn.running_var"]
  state["heads_module.heads.age.bogus.weight"] = np.zeros(3, np.float32)
  state["heads_module.heads.gaze.fc.weight"] = np.zeros(3, np.float32)
  state["heads_module.heads.parsing.head.conv_seg.weight"] = np.zeros((11, 512, 1, 1), np.float32)
  params, unused = official_naive.naive_params(state)
  with pytest.raises(weights.WeightsError) as err:
    weights.assign(naive_model_of_official_size(), params, unused=unused)
  message = str(err.value)
  assert "2 missing" in message and "2 unexpected" in message and "1 mis-shaped" in message
  assert "heads/affect/fcs/affect_rafdb/bias" in message
  assert "heads/align/head/fpn_convs/1/bn/var" in message
  assert "heads_module.heads.age.bogus.weight" in message
  assert "heads_module.heads.gaze.fc.weight" in message
  assert "heads/parsing/head/conv_seg/kernel: weights (1, 1, 512, 11) vs model (1, 1, 512, 19)" \
      in message


def test_classifier_and_module_prefix_are_read(naive_state):
  state = {"module." + k: v for k, v in naive_state.items()
           if k.startswith("heads_module.heads.recog.")}
  state["module.losses_module.losses.recog_ms1mv3.classifier"] = np.ones((5, 512), np.float32)
  params, unused = official_naive.naive_params(state)
  assert unused == []
  assert params[("classifiers", "recog_ms1mv3", "weight")].shape == (5, 512)
  np.testing.assert_array_equal(params[("heads", "recog", "fc2", "kernel")],
                                state["module.heads_module.heads.recog.head.2.weight"].T)
