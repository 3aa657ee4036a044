"""Sharded over 8 devices, the same trajectory as on one (issue 6).

Data-parallel (the batch split over a 'data' axis, parameters replicated) and
model-parallel (the large layers split over a 'model' axis), on 8 simulated
CPU devices (tests/conftest.py sets XLA_FLAGS). The methods' global inner
products (HD's g·d, L4's g·v, MARTHE's ∇E·Z) must reduce across devices: a
per-shard dot would change the rate and the trajectory.
"""

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg

pytestmark = [
    pytest.mark.standard_promotion,  # Adam and ema go through optax
    pytest.mark.skipif(jax.device_count() < 8, reason='needs 8 devices'),
]

METHODS = {
    'sgd_hd': (lambda: ohg.sgd_hd(0.05, 1e-2), 'none'),
    'adam_hd_per_leaf': (lambda: ohg.adam_hd(1e-3, 1e-5, per_leaf=True),
                         'none'),
    'sgdn_op_adam_lop': (lambda: ohg.sgdn_op_adam_lop(0.01, 1e-4), 'none'),
    'l4_mom': (ohg.l4_mom, 'value'),
    'l4_adam': (ohg.l4_adam, 'value'),
    'rtho': (lambda: ohg.rtho(0.05, 1e-3), 'value_fn'),
    'marthe': (lambda: ohg.marthe(0.05, 1e-3, kappa=1e-2), 'value_fn'),
}

# The parameters' absolute tolerance after 25 steps. L4 divides the loss gap
# (a small difference of losses) by g·v, so the last-bit difference of a loss
# summed over 8 shards is amplified: its largest deviation measured 0.6–0.7e-6
# with per-leaf reductions and 1.0e-6 with the small leaves reduced as one
# vector (both rounding); every other method stays below 3e-7.
PARAMS_ATOL = {'l4_mom': 2e-6, 'l4_adam': 2e-6}

# Parameter specs: replicated (data-parallel) or the wide layers split.
SPECS = {
    'data_parallel': {'w0': P(), 'b0': P(), 'w1': P(), 'b1': P(), 'w2': P(),
                      'b2': P()},
    'model_parallel': {'w0': P(None, 'model'), 'b0': P('model'),
                       'w1': P('model', None), 'b1': P(), 'w2': P(),
                       'b2': P()},
}


def _problem():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(64, 16)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, size=64), jnp.int32)
  k = jax.random.split(jax.random.key(0), 3)
  params = {
      'w0': jax.random.normal(k[0], (16, 64)) / 4.0, 'b0': jnp.zeros(64),
      'w1': jax.random.normal(k[1], (64, 32)) / 8.0, 'b1': jnp.zeros(32),
      'w2': jax.random.normal(k[2], (32, 10)) / 6.0, 'b2': jnp.zeros(10),
  }
  return params, x, y


def _loss(params, x, y):
  h = jnp.tanh(x @ params['w0'] + params['b0'][None])
  h = jnp.tanh(h @ params['w1'] + params['b1'][None])
  logits = h @ params['w2'] + params['b2'][None]
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _train(tx, kind, params, x, y, steps=25):
  @jax.jit
  def step(params, state, x, y):
    loss_of = lambda p: _loss(p, x, y)
    loss, grads = jax.value_and_grad(loss_of)(params)
    extra = {'none': {}, 'value': {'value': loss},
             'value_fn': {'value_fn': loss_of}}[kind]
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state, loss

  state = tx.init(params)
  losses, rates = [], []
  for _ in range(steps):
    params, state, loss = step(params, state, x, y)
    losses.append(float(loss))
    rates.append(np.array(jax.tree.leaves(
        optax.tree.get(state, 'learning_rate')), np.float64))
  return params, np.array(losses), np.array(rates)


@pytest.mark.parametrize('layout', list(SPECS))
@pytest.mark.parametrize('name', list(METHODS))
def test_sharded_run_matches_one_device(name, layout):
  make_tx, kind = METHODS[name]
  params, x, y = _problem()
  one_params, one_losses, one_rates = _train(make_tx(), kind, params, x, y)

  mesh = jax.make_mesh((2, 4), ('data', 'model'),
                       axis_types=(jax.sharding.AxisType.Auto,) * 2)
  shard = lambda tree, specs: jax.tree.map(
      lambda a, s: jax.device_put(a, NamedSharding(mesh, s)), tree, specs)
  sharded = shard(params, SPECS[layout])
  xs = jax.device_put(x, NamedSharding(mesh, P('data', None)))
  ys = jax.device_put(y, NamedSharding(mesh, P('data')))
  out_params, losses, rates = _train(make_tx(), kind, sharded, xs, ys)

  assert len(xs.sharding.device_set) == 8
  if layout == 'model_parallel':  # the split survives the optimizer step
    assert out_params['w0'].sharding.spec == P(None, 'model')
    assert out_params['w0'].addressable_shards[0].data.shape == (16, 16)
  np.testing.assert_allclose(losses, one_losses, rtol=1e-5)
  np.testing.assert_allclose(rates, one_rates, rtol=1e-5, atol=1e-12)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                              rtol=1e-5,
                                              atol=PARAMS_ATOL.get(name,
                                                                   1e-6)),
      out_params, one_params)
  assert np.ptp(one_rates) > 0  # the rate really adapted
