"""The building blocks against PyTorch's own modules (torch is a test-time reference only)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from faceptor_jax.convert import official
from faceptor_jax.models import layers

torch = pytest.importorskip("torch")


def test_batchnorm_matches_torch_in_training_and_eval():
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, size=(6, 5)).astype(np.float32)
  ref = torch.nn.BatchNorm1d(5, eps=2e-5)
  ours = layers.BatchNorm(5, eps=2e-5)
  y_ref = ref(torch.from_numpy(x)).detach().numpy()
  y = ours(jnp.asarray(x), train=True)
  np.testing.assert_allclose(y, y_ref, atol=1e-5)
  np.testing.assert_allclose(ours.mean[...], ref.running_mean.numpy(), atol=1e-6)
  np.testing.assert_allclose(ours.var[...], ref.running_var.numpy(), atol=1e-6)  # unbiased
  ref.eval()
  np.testing.assert_allclose(ours(jnp.asarray(x), train=False),
                             ref(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
def test_attention_matches_torch_multihead_attention(fused):
  torch.manual_seed(0)
  ref = torch.nn.MultiheadAttention(16, 4)
  with torch.no_grad():
    ref.in_proj_bias.uniform_(-1, 1)
    ref.out_proj.bias.uniform_(-1, 1)
  q = np.random.default_rng(1).normal(size=(2, 3, 16)).astype(np.float32)
  kv = q if fused else np.random.default_rng(2).normal(size=(2, 5, 16)).astype(np.float32)
  ours = layers.MultiHeadAttention(16, 4, rngs=nnx.Rngs(0), fused_qkv=fused)
  sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
  if fused:
    path, w = official.block_param("attn.in_proj_weight", sd["in_proj_weight"], 4)
    ours.qkv_kernel[...] = w
    ours.qkv_bias[...] = sd["in_proj_bias"].reshape(3, 4, 4)
  else:
    for c, w, b in zip("qkv", np.split(sd["in_proj_weight"], 3), np.split(sd["in_proj_bias"], 3)):
      getattr(ours, f"{c}_kernel")[...] = official.heads_in(w, 4)
      getattr(ours, f"{c}_bias")[...] = b.reshape(4, 4)
  ours.out_kernel[...] = official.heads_out(sd["out_proj.weight"], 4)
  ours.out_bias[...] = sd["out_proj.bias"]
  tq, tkv = (torch.from_numpy(a).transpose(0, 1) for a in (q, kv))
  y_ref, w_ref = ref(tq, tkv, tkv, average_attn_weights=False)
  y, w = ours(jnp.asarray(q), jnp.asarray(kv), jnp.asarray(kv), return_weights=True)
  np.testing.assert_allclose(y, y_ref.transpose(0, 1).detach().numpy(), atol=1e-5)
  np.testing.assert_allclose(w, w_ref.detach().numpy(), atol=1e-6)


def test_transposed_convolution_matches_torch():
  ref = torch.nn.ConvTranspose2d(6, 4, kernel_size=2, stride=2)
  ours = layers.ConvTranspose2x2(6, 4, rngs=nnx.Rngs(0))
  ours.kernel[...] = ref.weight.detach().numpy()
  ours.bias[...] = ref.bias.detach().numpy()
  x = np.random.default_rng(0).normal(size=(2, 3, 5, 6)).astype(np.float32)
  y_ref = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).detach().numpy()
  np.testing.assert_allclose(ours(jnp.asarray(x)), y_ref, atol=1e-5)


def test_layernorm_uses_float32_statistics_for_bfloat16_input():
  ln = layers.LayerNorm(8)
  x = jnp.asarray(np.random.default_rng(0).normal(100, 1e-2, size=(3, 8)), jnp.bfloat16)
  y = ln(x)
  assert y.dtype == jnp.float32
  ref = torch.nn.functional.layer_norm(torch.from_numpy(np.asarray(x, np.float32)), (8,))
  np.testing.assert_allclose(y, ref.numpy(), atol=1e-3)


def test_drop_path_keeps_expectation_and_drops_whole_examples():
  import jax
  x = jnp.ones((2000, 3, 4))
  y = np.asarray(layers.drop_path(x, 0.2, jax.random.key(0)))
  per_example = y.reshape(2000, -1)
  assert set(np.unique(per_example.std(1))) == {0.0}  # whole branches
  assert abs(per_example.mean() - 1.0) < 0.05
  assert abs((per_example[:, 0] == 0).mean() - 0.2) < 0.03
  np.testing.assert_array_equal(layers.drop_path(x, 0.2, None), x)


def test_drop_path_along_tokens_drops_positions_shared_by_the_batch():
  import jax
  x = jnp.ones((3, 2000, 4))  # [B, N, D]
  y = np.asarray(layers.drop_path(x, 0.2, jax.random.key(0), axis=1))
  dropped = y[:, :, 0] == 0
  assert (dropped == dropped[:1]).all()  # the same positions in every example
  assert (y[:, :, :1] == y).all()  # whole token vectors
  assert abs(dropped[0].mean() - 0.2) < 0.03
  assert abs(y.mean() - 1.0) < 0.05
