"""The selection procedure: one vmapped program, divergence never chosen."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg


def _least_squares():
  x = jax.random.normal(jax.random.key(0), (40, 8, 3))
  w_true = jnp.array([1.0, -2.0, 0.5])
  loss_fn = lambda w, x: jnp.mean((x @ (w - w_true)) ** 2)
  return loss_fn, jnp.zeros(3), x


def _run(make, loss_fn, params, batches):
  tx = make()
  state = tx.init(params)
  for t in range(batches.shape[0]):
    g = jax.grad(loss_fn)(params, batches[t])
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
  return float(jnp.mean(jax.vmap(lambda b: loss_fn(params, b))(batches)))


def test_table_matches_separate_runs_and_best_is_lowest():
  loss_fn, params, batches = _least_squares()
  lrs = ohg.decimated(10.0, 5)
  sel = ohg.select_hyperparams(ohg.sgd_hd, {'learning_rate': lrs}, loss_fn,
                               params, batches)
  assert [row['learning_rate'] for row in sel.table] == list(lrs)
  for row in sel.table:
    loss = _run(lambda r=row: ohg.sgd_hd(r['learning_rate']), loss_fn,
                params, batches)
    if np.isfinite(loss) and loss < 1e6:
      np.testing.assert_allclose(row['loss'], loss, rtol=1e-3)
  assert sel.table[0]['diverged']  # lr 10 on this problem blows up
  finite = [r for r in sel.table if not r['diverged']]
  best = min(finite, key=lambda r: r['loss'])
  assert sel.best == {'learning_rate': best['learning_rate']}


def test_product_of_candidates_and_extra_args_for_l4_and_marthe():
  loss_fn, params, batches = _least_squares()
  sel = ohg.select_hyperparams(
      ohg.l4_mom, {'alpha': (0.15, 0.01), 'gamma': (0.9, 0.5)}, loss_fn,
      params, batches)
  assert len(sel.table) == 4  # value= reached L4
  assert set(sel.best) == {'alpha', 'gamma'}
  sel = ohg.select_hyperparams(
      functools.partial(ohg.marthe, learning_rate=0.05),
      {'kappa': ohg.decimated(1e-2, 3)}, loss_fn, params, batches)
  assert not all(r['diverged'] for r in sel.table)  # value_fn= reached it


def test_a_candidate_going_non_finite_is_diverged_and_never_chosen():
  loss_fn, params, batches = _least_squares()
  sel = ohg.select_hyperparams(
      lambda learning_rate: optax.sgd(learning_rate),
      {'learning_rate': (1e3, 0.01)}, loss_fn, params, batches)
  assert sel.table[0]['diverged'] and not np.isfinite(sel.table[0]['loss'])
  assert sel.best == {'learning_rate': 0.01}


@pytest.mark.parametrize('candidates,match', [
    ({}, 'candidates is empty'),
    ({'hypergrad_lr': ()}, "candidates\\['hypergrad_lr'\\] is empty"),
    ({'hypergrad_lr': (float('nan'),)}, 'finite'),
])
def test_bad_candidates_raise(candidates, match):
  loss_fn, params, batches = _least_squares()
  with pytest.raises(ValueError, match=match):
    ohg.select_hyperparams(ohg.sgd_hd, candidates, loss_fn, params, batches)


def test_non_finite_start_raises():
  loss_fn, params, batches = _least_squares()
  with pytest.raises(ValueError, match='initial params'):
    ohg.select_hyperparams(ohg.sgd_hd, {'hypergrad_lr': (0.1,)}, loss_fn,
                           params * jnp.nan, batches)


def test_every_candidate_diverging_raises():
  loss_fn, params, batches = _least_squares()
  with pytest.raises(ValueError, match='every candidate diverged'):
    ohg.select_hyperparams(lambda learning_rate: optax.sgd(learning_rate),
                           {'learning_rate': (1e3, 1e4)}, loss_fn, params,
                           batches)
