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


def test_nnx_value_fn_recipe_for_a_model_with_batch_norm():
  """The guide's recipe: split off the batch statistics and merge them back
  with copy=True inside value_fn (without copy, merging the live variables
  inside the transformation's jvp raises TraceContextError)."""

  class Net(nnx.Module):

    def __init__(self, rngs):
      self.l1 = nnx.Linear(5, 16, rngs=rngs)
      self.bn = nnx.BatchNorm(16, rngs=rngs)
      self.l2 = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
      return self.l2(nnx.relu(self.bn(self.l1(x))))[:, 0]

  x = jax.random.normal(jax.random.key(0), (64, 5))
  y = jnp.sin(x[:, 0])
  loss_of = lambda m: jnp.mean((m(x) - y) ** 2)

  def train(copy):
    model = Net(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, ohg.marthe(), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
      loss, grads = nnx.value_and_grad(loss_of)(model)
      graphdef, _, rest = nnx.split(model, nnx.Param, ...)
      value_fn = lambda p: loss_of(nnx.merge(graphdef, p, rest, copy=copy))
      optimizer.update(model, grads, value_fn=value_fn)
      return loss

    losses = [float(step(model, optimizer)) for _ in range(60)]
    return losses, ohg.live_learning_rate(nnx.as_pure(optimizer.opt_state))

  losses, rate = train(copy=True)
  assert losses[-1] < 0.5 * losses[0] and float(rate) > 2e-3
  with pytest.raises(Exception, match='Trace'):
    train(copy=False)


@pytest.mark.standard_promotion  # L4's momentum is an optax.ema
def test_linen_train_state_passing_extra_arguments():
  """The guide's TrainState subclass: apply_gradients(grads=, value=,
  value_fn=) routes the extras to tx.update (Flax's own calls tx.update
  without them and passes them to replace)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from flax.training import train_state  # pylint: disable=g-import-not-at-top

  class TrainState(train_state.TrainState):

    def apply_gradients(self, *, grads, **extra_args):
      updates, opt_state = self.tx.update(grads, self.opt_state, self.params,
                                          **extra_args)
      return self.replace(step=self.step + 1,
                          params=optax.apply_updates(self.params, updates),
                          opt_state=opt_state)

  model = nn.Dense(1)
  x = jax.random.normal(jax.random.key(0), (32, 3))
  y = x @ jnp.array([1.0, -2.0, 0.5])
  params = model.init(jax.random.key(1), x)
  loss_fn = lambda p: jnp.mean((model.apply(p, x)[:, 0] - y) ** 2)
  for tx, extra in [(ohg.l4_mom(), lambda v, f: {'value': v}),
                    (ohg.marthe(), lambda v, f: {'value_fn': f})]:
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    first = float(loss_fn(params))
    for _ in range(100):
      loss, grads = jax.value_and_grad(loss_fn)(state.params)
      state = state.apply_gradients(grads=grads, **extra(loss, loss_fn))
    assert float(loss_fn(state.params)) < 0.1 * first
    assert int(state.step) == 100
  # Flax's own drops value= before tx.update, which then says what is missing.
  with pytest.raises(ValueError, match='value='):
    train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=ohg.l4_mom()).apply_gradients(
            grads=grads, value=loss)
