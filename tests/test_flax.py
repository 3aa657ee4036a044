"""HD inside Flax NNX training steps, against the same run in plain Optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

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
  model = MLP(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, make_tx(), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer, x, y):
    loss, grads = nnx.value_and_grad(_loss)(model, x, y)
    optimizer.update(model, grads)
    return loss

  nnx_losses = [float(train_step(model, optimizer, x, y)) for _ in range(30)]

  # The same run in plain Optax on the pure parameter state of a twin model
  # (same seed, so same initial weights).
  tx = make_tx()
  graphdef, params = nnx.split(MLP(nnx.Rngs(0)), nnx.Param)
  pure_loss = lambda p: _loss(nnx.merge(graphdef, p), x, y)
  state = tx.init(params)
  losses = []
  for _ in range(30):
    loss, grads = jax.value_and_grad(pure_loss)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    losses.append(float(loss))

  np.testing.assert_allclose(nnx_losses, losses, rtol=1e-5)
  assert nnx_losses[-1] < 0.9 * nnx_losses[0]
  # The live rate, read from the NNX optimizer's state, matches Optax's.
  nnx_rate = optax.tree.get(nnx.as_pure(optimizer.opt_state),
                            'learning_rate')
  rate = optax.tree.get(state, 'learning_rate')
  np.testing.assert_allclose(
      np.array(jax.tree.leaves(nnx_rate)), np.array(jax.tree.leaves(rate)),
      rtol=1e-5)
