"""The converter against the official PyTorch model: parity on the recipe weights, and refusals."""

import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax import models, tasks, weights
from faceptor_jax.convert import official
from faceptor_jax.models import heads, model_config
from tests.conftest import FIXTURES, close, recipe_state


@pytest.fixture(scope="module")
def base_state(official_recipe):
  return recipe_state(official_recipe, "official_base_keys.json")


@pytest.fixture(scope="module")
def fixture():
  return np.load(os.path.join(FIXTURES, "official_base_outputs.npz"))


@pytest.fixture(scope="module")
def base_model(base_state):
  params, unused = official.faceptor_params({"module." + k: v for k, v in base_state.items()})
  model = models.create(model_config.get(), tasks.BASE_TASKS, rngs=nnx.Rngs(0),
                        with_classifier=False)
  assert weights.assign(model, params, unused=unused) == []
  return model


@pytest.fixture(scope="module")
def outputs(base_model, fixture):
  x112 = jnp.asarray(fixture["input_112"].transpose(0, 2, 3, 1))
  x512 = jnp.asarray(fixture["input_512"].transpose(0, 2, 3, 1))
  images = {t: x112 if tasks.get(t).group == tasks.SMALL else x512 for t in tasks.BASE_TASKS}
  forward = nnx.jit(lambda m, im: (m(im), m.encoder(im["age_morph2"]),
                                   m.encoder(im["align_300w"])[-1]))
  return forward(base_model, images)


def test_encoder_layers_equal_official(outputs, fixture):
  _, enc112, enc512 = outputs
  for layer in (2, 4, 6, 8, 10, 12):
    ours = np.asarray(enc112[layer - 1]).reshape(2, 7, 7, -1).transpose(0, 3, 1, 2)
    close(ours, fixture[f"enc112_layer{layer:02d}"])
  close(np.asarray(enc512).reshape(1, 32, 32, -1).transpose(0, 3, 1, 2),
        fixture["enc512_layer12"])


def test_positional_embedding_resize_equals_torch_bicubic(base_model, fixture):
  close(base_model.encoder.positional_embedding_for(7), fixture["pos_embed_resized_7x7"])


def test_every_task_output_equals_official(outputs, fixture):
  out, _, _ = outputs
  close(out["recog_ms1mv3"]["embedding"], fixture["recog_ms1mv3_embedding"])
  for t in ("age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb"):
    close(out[t]["logits"], fixture[f"{t}_logits"])
  for t in ("age_morph2", "biattr_celeba", "affect_affectnet", "affect_rafdb", "parsing_celebam",
            "align_300w"):
    close(np.asarray(out[t]["queries"]).transpose(1, 0, 2), fixture[f"{t}_decoder_output"])
  close(np.asarray(out["parsing_celebam"]["logits"]).transpose(0, 3, 1, 2),
        fixture["parsing_celebam_logits_128"])
  close(out["align_300w"]["heatmap_logits"], fixture["align_300w_heatmap_logits"])
  close(out["align_300w"]["landmarks"], fixture["align_300w_landmarks"], 1e-5)


def test_landmark_decoding_equals_official_probe(fixture):
  h = fixture["align_300w_heatmap_logits"]
  probe = 20.0 * (h - h.max(axis=(2, 3), keepdims=True))
  close(heads.heatmap_to_points(jnp.asarray(probe)), fixture["align_300w_landmarks_probe"], 1e-5)


def test_recognition_head_alone_is_exact(base_model, fixture):
  """The BatchNorm1d eps (2e-5, not 1e-5) shows only at this tolerance (fixtures README)."""
  tokens = fixture["enc112_layer12"].reshape(2, 768, 49).transpose(0, 2, 1)
  emb = base_model.recognition(jnp.asarray(tokens), False)
  assert np.abs(np.asarray(emb) - fixture["recog_ms1mv3_embedding"]).max() < 1e-5


def test_parsing_upsample_equals_official_parsing_output(fixture):
  torch = pytest.importorskip("torch")
  logits = fixture["parsing_celebam_logits_128"]
  ref = torch.nn.functional.interpolate(torch.from_numpy(logits), size=512, mode="bilinear",
                                        align_corners=False).permute(0, 2, 3, 1).numpy()
  close(heads.upsample_parsing(jnp.asarray(logits.transpose(0, 2, 3, 1)), (512, 512)), ref)


def test_converter_lists_missing_unexpected_and_misshaped_keys(base_state):
  state = dict(base_state)
  del state["heads_module.decoder.query_feat.age_morph2.weight"]
  state["heads_module.decoder.bogus.weight"] = np.zeros(3, np.float32)
  state["heads_module.interpreters.value.fc.weight"] = np.zeros((2, 256), np.float32)
  params, unused = official.faceptor_params(state)
  model = models.create(model_config.get(), tasks.BASE_TASKS, rngs=nnx.Rngs(0),
                        with_classifier=False)
  with pytest.raises(weights.WeightsError) as err:
    weights.assign(model, params, unused=unused)
  message = str(err.value)
  assert "decoder/query_feat/age_morph2" in message
  assert "heads_module.decoder.bogus.weight" in message
  assert "value/fc/kernel: weights (256, 2) vs model (256, 1)" in message


def test_converter_refuses_an_alias_that_differs(base_state):
  state = dict(base_state)
  key = "heads_module.interpreters.map_v2.mask_map.1.ln.weight"
  state[key] = state[key] + 1
  with pytest.raises(ValueError, match="differs from its alias"):
    official.faceptor_params(state)


def test_stage2_keys_load_into_a_layer_attention_model(base_state):
  """A stage-2 checkpoint's new_* keys fill the new levels; a stage-1 one leaves them missing."""
  cfg = model_config.get()
  cfg.decoder.new_levels = (2, 4, 6, 8, 10)
  model = models.create(cfg, ("age_morph2",), rngs=nnx.Rngs(0), with_classifier=False)
  state = {k: v for k, v in base_state.items()
           if not k.startswith("heads_module.decoder.query_")
           or ".age_morph2." in k}
  state = {k: v for k, v in state.items() if not k.startswith("heads_module.interpreters.")
           or k.startswith("heads_module.interpreters.value")}
  params, unused = official.faceptor_params(state)
  with pytest.raises(weights.WeightsError, match="new_level_embed"):
    weights.assign(model, params, unused=unused)
  left = weights.assign(model, params, unused=unused, allow_missing=[r"decoder/new_.*"])
  assert "decoder/new_level_embed" in left and len(left) == 11
  rng = np.random.default_rng(0)
  state["heads_module.decoder.new_level_embed.weight"] = rng.normal(size=(5, 256)).astype("f4")
  for i in range(5):
    state[f"heads_module.decoder.new_input_proj.{i}.weight"] = rng.normal(
        size=(256, 768, 1, 1)).astype("f4")
    state[f"heads_module.decoder.new_input_proj.{i}.bias"] = rng.normal(size=256).astype("f4")
  params, unused = official.faceptor_params(state)
  assert weights.assign(model, params, unused=unused) == []
  np.testing.assert_array_equal(model.decoder.new_level_embed[...][2],
                                state["heads_module.decoder.new_level_embed.weight"][2])


def test_farl_checkpoint_resizes_the_14x14_grid_like_torch(base_state):
  torch = pytest.importorskip("torch")
  visual = {"visual." + k[len("backbone_module.visual."):]: v for k, v in base_state.items()
            if k.startswith("backbone_module.visual.")}
  pe14 = np.random.default_rng(0).normal(size=(197, 768)).astype(np.float32)
  visual["visual.positional_embedding"] = pe14
  visual["token_embedding.weight"] = np.zeros((4, 8), np.float32)  # text tower: ignored
  params = official.farl_encoder_params(visual)
  grid = torch.from_numpy(pe14[1:].reshape(1, 14, 14, 768)).permute(0, 3, 1, 2)
  ref = torch.nn.functional.interpolate(grid, size=(32, 32), mode="bicubic",
                                        align_corners=False)
  ref = np.concatenate([pe14[:1], ref.permute(0, 2, 3, 1).reshape(1024, 768).numpy()])
  close(params[("encoder", "positional_embedding")], ref, 1e-5)
  model = models.create(model_config.get(), ("recog_ms1mv3",), rngs=nnx.Rngs(0))
  left = weights.assign(model, params, allow_missing=[r"(?!encoder/).*"])
  assert all(not name.startswith("encoder/") for name in left)


def test_weights_folder_round_trip(tmp_path):
  cfg = model_config.tiny()
  model = models.create(cfg, ("age_morph2", "recog_ms1mv3"), rngs=nnx.Rngs(1))
  weights.save(str(tmp_path / "w"), weights.arrays_of(model), {"variant": "faceptor"})
  params, meta = weights.load(str(tmp_path / "w"))
  other = models.create(cfg, ("age_morph2", "recog_ms1mv3"), rngs=nnx.Rngs(2))
  assert weights.assign(other, params) == [] and meta["variant"] == "faceptor"
  for (p, a), (_, b) in zip(sorted(weights.arrays_of(model).items()),
                            sorted(weights.arrays_of(other).items())):
    np.testing.assert_array_equal(a, b, err_msg=str(p))


def test_convert_command_reads_an_official_format_file(tmp_path, base_state):
  torch = pytest.importorskip("torch")
  from faceptor_jax.convert import __main__ as command
  from faceptor_jax.convert import torch_file
  sd = {"module." + k: torch.from_numpy(v) for k, v in base_state.items()}
  sd["module.losses_module.losses.recog_ms1mv3.classifier"] = torch.zeros(93431, 512)
  path = str(tmp_path / "ckpt.pth.tar")
  torch.save({"step": 0, "state_dict": sd, "optimizer": {}}, path)
  state = torch_file.load_state_dict(path)
  params, meta = command.convert("faceptor", state)
  assert meta["tasks"] == list(tasks.BASE_TASKS)
  assert params[("classifiers", "recog_ms1mv3", "weight")].shape == (93431, 512)
