"""HD inside Flax NNX training steps, against the same run in plain Optax."""

from flax import nnx
import jax
import jax.numpy as jnp
import nnx_helpers
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg


class MLP(nnx.Module):

  def __init__(self, rngs):
    self.l1 = nnx.Linear(8, 16, rngs=rngs)
    self.l2 = nnx.Linear(16, 3, rngs=rngs)

  def __call__(self, x):
    return self.l2(jax.nn.relu(self.l1(x)))


def _data():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(64, 8)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, size=64), jnp.int32)
  return x, y


def _loss(model, x, y):
  logits = model(x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@pytest.mark.parametrize('make_tx', [
    lambda: ohg.sgdn_hd(0.05, 1e-3),
    lambda: optax.chain(optax.clip_by_global_norm(1.0),
                        ohg.adam_op_adam_lop(1e-2, 1e-4)),
    lambda: ohg.sgd_hd(0.1, 1e-2, per_leaf=True),
], ids=['sgdn_hd', 'chain_adam_op_adam_lop', 'sgd_hd_per_leaf'])
def test_nnx_optimizer_matches_plain_optax(make_tx):
  x, y = _data()
  losses, optimizer, state = nnx_helpers.run_nnx_and_optax(
      lambda: MLP(nnx.Rngs(0)), make_tx, lambda m: _loss(m, x, y), 30)
  assert losses[-1] < 0.9 * losses[0]
  # The live rate, read from the NNX optimizer's state, matches Optax's.
  nnx_rate = optax.tree.get(nnx.as_pure(optimizer.opt_state), 'learning_rate')
  rate = optax.tree.get(state, 'learning_rate')
  np.testing.assert_allclose(
      np.array(jax.tree.leaves(nnx_rate)), np.array(jax.tree.leaves(rate)),
      rtol=1e-5)
