"""Complex parameters: a complex leaf behaves exactly as its (real,
imaginary) pair wherever the base direction does (SGD, momentum). Optax's
convention: the updates of a complex parameter are the conjugated JAX
gradient. (Convergence on Optax's complex targets, for every optimizer, is
in test_common.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg

A = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])


def pair_loss(x, y):
  """A real loss of (x, y), not separable between them."""
  a = A.astype(x.dtype)
  return (x @ a @ x + 0.5 * y @ a @ y + jnp.sum(x * y)
          + 0.1 * jnp.sum(x ** 4) - jnp.sum(x) + 2.0 * jnp.sum(y))


def complex_loss(z):
  return pair_loss(jnp.real(z), jnp.imag(z))


def real_loss(p):
  return pair_loss(p['x'], p['y'])


# (name, factory, extra argument builder) — linear bases only: Adam's second
# moment of a complex leaf is |g|^2, not the pair's g_x^2 and g_y^2.
PAIRED = [
    ('sgd_hd', lambda: ohg.sgd_hd(0.01), None),
    ('sgdn_hd', lambda: ohg.sgdn_hd(0.01), None),
    ('sgd_op_adam_lop', lambda: ohg.sgd_op_adam_lop(0.01), None),
    ('sgd_hd_additive',
     lambda: ohg.sgd_hd(0.01, 1e-3, rate_dynamics='additive'), None),
    ('l4_mom', ohg.l4_mom, 'value'),
    ('rtho', lambda: ohg.rtho(0.01), 'value_fn'),
    ('marthe', lambda: ohg.marthe(0.01), 'value_fn'),
    ('marthe_momentum', lambda: ohg.marthe(0.01, base='momentum'),
     'value_fn'),
]


def run(tx, loss, params, to_updates, extra, steps=60):
  state = tx.init(params)
  rates = []
  for _ in range(steps):
    value, grads = jax.value_and_grad(loss)(params)
    kw = {} if extra is None else (
        {'value': value} if extra == 'value' else {'value_fn': loss})
    updates, state = tx.update(to_updates(grads), state, params, **kw)
    params = optax.apply_updates(params, updates)
    rates.append(float(ohg.live_learning_rate(state)))
  return params, np.array(rates)


@pytest.mark.parametrize('name,factory,extra', PAIRED,
                         ids=[p[0] for p in PAIRED])
def test_complex_leaf_is_its_real_pair(name, factory, extra):
  del name
  with jax.enable_x64(True):
    z0 = jnp.array([0.5 + 1.0j, -1.0 - 0.5j, 2.0 + 0.0j], jnp.complex128)
    z, z_rates = run(factory(), complex_loss, z0, jnp.conj, extra)
    p, p_rates = run(factory(), real_loss,
                     {'x': jnp.real(z0), 'y': jnp.imag(z0)}, lambda g: g,
                     extra)
  assert np.ptp(p_rates) > 0.1 * p_rates[0]  # the rate really moved
  np.testing.assert_allclose(z_rates, p_rates, rtol=1e-9)
  np.testing.assert_allclose(jnp.real(z), p['x'], rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(jnp.imag(z), p['y'], rtol=1e-9, atol=1e-12)


def test_tree_inner_product_over_mixed_small_leaves_is_the_real_pair_one():
  """The global inner product concatenates the small leaves: complex ones
  enter as their (real, imaginary) pairs, next to real ones and to a leaf
  too large to concatenate."""
  from optax_hypergrad._src import rate as rate_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  big = rate_lib.SMALL_LEAF + 5

  def tree():
    return {'c': rng.normal(size=3) + 1j * rng.normal(size=3),
            'd': rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2)),
            'r': rng.normal(size=4), 'big': rng.normal(size=big)}

  x, y = tree(), tree()
  expected = sum(np.sum(np.real(x[k]) * np.real(y[k])
                        + np.imag(x[k]) * np.imag(y[k])) for k in x)
  cast = lambda t: {k: jnp.asarray(v, jnp.complex64 if np.iscomplexobj(v)
                                   else jnp.float32) for k, v in t.items()}
  got = rate_lib.dot(cast(x), cast(y), jnp.float32, per_leaf=False)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)
  assert bool(rate_lib.all_finite(cast(x)))
  x['d'] = x['d'] * np.array([[1.0, np.inf], [1.0, 1.0]])
  assert not bool(rate_lib.all_finite(cast(x)))
