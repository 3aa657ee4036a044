"""ohg.live_learning_rate: one way to read the live rate, in every wrapping."""

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg

TARGET = jnp.array([1.0, -2.0, 3.0])


def loss(w):
  return jnp.sum(jnp.array([1.0, 4.0, 9.0]) * (w - TARGET) ** 2)


WRAPPINGS = {
    'bare': lambda tx: tx,
    'chain': lambda tx: optax.chain(optax.clip_by_global_norm(1e3), tx),
    'inject_hyperparams': lambda tx: optax.inject_hyperparams(
        ohg.sgd_hd)(learning_rate=1e-3),
    'multi_steps': lambda tx: optax.MultiSteps(tx, every_k_schedule=1),
    'masked': lambda tx: optax.masked(tx, True),
    'multi_transform': lambda tx: optax.multi_transform({'a': tx}, 'a'),
}


def run(tx, steps=30):
  w = jnp.zeros(3)
  state = tx.init(w)
  for _ in range(steps):
    updates, state = tx.update(jax.grad(loss)(w), state, w)
    w = optax.apply_updates(w, updates)
  return state


@pytest.mark.parametrize('wrap', list(WRAPPINGS))
def test_reads_the_live_rate_in_every_wrapping(wrap):
  bare = run(ohg.sgd_hd())
  assert bare.learning_rate > 2e-3  # it moved from 1e-3: not the initial
  got = ohg.live_learning_rate(run(WRAPPINGS[wrap](ohg.sgd_hd())))
  np.testing.assert_allclose(got, bare.learning_rate, rtol=1e-6)


def test_inject_hyperparams_initial_value_is_not_the_live_rate():
  state = run(optax.inject_hyperparams(ohg.sgd_hd)(learning_rate=1e-3))
  assert float(state.hyperparams['learning_rate']) == np.float32(1e-3)
  assert float(ohg.live_learning_rate(state)) > 2e-3


def test_reads_the_live_rate_from_nnx_optimizer():
  model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, ohg.sgd_hd(), wrt=nnx.Param)
  x = jnp.eye(3)
  y = jnp.array([1.0, -2.0, 3.0])

  @nnx.jit
  def step(model, optimizer):
    grads = nnx.grad(lambda m: jnp.mean((m(x)[:, 0] - y) ** 2))(model)
    optimizer.update(model, grads)

  for _ in range(30):
    step(model, optimizer)
  rate = ohg.live_learning_rate(nnx.as_pure(optimizer.opt_state))
  assert float(rate) > 2e-3


def test_the_step_used_the_live_rate():
  """For SGD-HD the update is -α g: the rate read is the one applied."""
  tx = ohg.sgd_hd()
  state = run(tx)
  w = jnp.full(3, 0.5)
  g = jax.grad(loss)(w)
  updates, state = tx.update(g, state, w)
  np.testing.assert_allclose(-updates / g, ohg.live_learning_rate(state),
                             rtol=1e-6)


@pytest.mark.parametrize('state,what', [
    (optax.sgd(0.1).init(jnp.zeros(2)), 'none'),
    (optax.chain(ohg.sgd_hd(), ohg.adam_hd()).init(jnp.zeros(2)), '2: '),
])
def test_says_when_there_is_not_exactly_one_rate(state, what):
  with pytest.raises(ValueError, match=f'holds {what}'):
    ohg.live_learning_rate(state)
