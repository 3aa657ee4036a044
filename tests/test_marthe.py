"""RTHO and MARTHE: the jvp tangent against the real unrolled run, the
identities μ = 0 ≡ HD, and the reference's μ and β rules in NumPy."""

from flax import nnx
import jax
import jax.numpy as jnp
import nnx_helpers
import numpy as np
import numpy_reference as ref
import optax
import problems
import pytest

import optax_hypergrad as ohg

BASES = {
    'sgd': lambda: optax.identity(),
    'momentum': lambda: optax.trace(0.9),
    'nesterov': lambda: optax.trace(0.9, nesterov=True),
    'adam': lambda: optax.scale_by_adam(),
}


def run(tx, problem, steps, dtype=jnp.float32, jit=True, **extra):
  params = problem.init(dtype)
  state = tx.init(params)

  def step(params, state):
    grads = jax.grad(problem.loss)(params)
    updates, state = tx.update(grads, state, params, value_fn=problem.loss,
                               **extra)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step) if jit else step
  history = []
  for _ in range(steps):
    params, state = step(params, state)
    history.append((problem.flat(params), state))
  return history


@pytest.mark.parametrize('base', list(BASES))
@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
def test_tangent_is_the_derivative_of_the_unrolled_run(base, make_problem):
  """μ = 1, fixed η: Z_T = dw_T/dη, by forward mode and finite differences."""
  problem, steps = make_problem(), 25
  eta = 0.05 if base != 'adam' else 0.01
  with jax.enable_x64(True):
    tx = ohg.scale_by_marthe(BASES[base](), eta, hypergrad_lr=0.0, mu=1.0,
                             rate_dynamics='additive')
    _, state = run(tx, problem, steps, dtype=jnp.float64)[-1]
    tangent = problem.flat(state.tangent)

    def unrolled(eta):
      """The real training run, as a function of its fixed rate."""
      direction = BASES[base]()
      params = problem.init(jnp.float64)

      def step(carry, _):
        params, s = carry
        d, s = direction.update(jax.grad(problem.loss)(params), s, params)
        return (jax.tree.map(lambda p, x: p - eta * x, params, d), s), None

      (params, _), _ = jax.lax.scan(step, (params, direction.init(params)),
                                    length=steps)
      return jnp.concatenate([jnp.ravel(params['b']), params['w']])

    eta = jnp.asarray(eta, jnp.float64)
    _, forward = jax.jvp(unrolled, (eta,), (jnp.ones_like(eta),))
    h = 1e-6
    central = (unrolled(eta + h) - unrolled(eta - h)) / (2 * h)
  assert np.abs(tangent).max() > 1e-3  # a real, non-trivial tangent
  np.testing.assert_allclose(tangent, forward, rtol=1e-4, atol=1e-10)
  np.testing.assert_allclose(tangent, central, rtol=1e-4,
                             atol=1e-6 * np.abs(central).max())


@pytest.mark.parametrize('dynamics', ['additive', 'multiplicative'])
@pytest.mark.parametrize('base', ['sgd', 'nesterov', 'adam'])
def test_mu_zero_is_hypergradient_descent(base, dynamics):
  """μ = 0 is HD (clamped at 0, or on the scale-free rule with its
  gradient clip), to 1e-12 in float64.

  Not bit for bit: the two programs are compiled separately and XLA may sum
  the inner product ``g·d`` in another order (1-ulp differences in float32).
  """
  problem = problems.logistic()
  eta0, beta = (0.1, 1e-2) if base != 'adam' else (0.01, 1e-4)
  if dynamics == 'multiplicative':
    eta0, beta = eta0 / 10, 0.1
  marthe_tx = ohg.scale_by_marthe(BASES[base](), eta0, beta, mu=0.0,
                                  rate_dynamics=dynamics)
  # MARTHE's rule steers the cosine to 0: HD's own balance, not HD's
  # default target for epoch-wise minibatches.
  hd_tx = ohg.scale_by_hypergradient(BASES[base](), eta0, beta,
                                     rate_dynamics=dynamics,
                                     target_cosine=0.0,
                                     min_learning_rate=0.0)
  with jax.enable_x64(True):
    marthe_run = run(marthe_tx, problem, 50, dtype=jnp.float64)
    params = problem.init(jnp.float64)
    state = hd_tx.init(params)
    for t in range(50):
      updates, state = hd_tx.update(jax.grad(problem.loss)(params), state,
                                    params)
      params = optax.apply_updates(params, updates)
      m_params, m_state = marthe_run[t]
      np.testing.assert_allclose(m_params, problem.flat(params), rtol=1e-12,
                                 atol=1e-14)
      np.testing.assert_allclose(float(m_state.learning_rate),
                                 float(state.learning_rate), rtol=1e-12)
  assert abs(float(state.learning_rate) - eta0) > 0.1 * eta0


@pytest.mark.parametrize('momentum', [0.0, 0.9])
@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
@pytest.mark.parametrize('adaptive', [False, True])
@pytest.mark.parametrize('rules', [('additive', 'reference'),
                                   ('multiplicative', 'descent')])
def test_matches_numpy_transcription(rules, adaptive, make_problem, momentum):
  """Fixed μ = 0.9, or μ and β adapted: the reference's rules on the
  paper's additive rate, and the defaults (descent μ, scale-free rate)."""
  dynamics, mu_rule = rules
  mult = dynamics == 'multiplicative'
  # The scale-free rate doubles its way past stability on least squares by
  # step 35, where 1-ulp differences grow to 1e-9: 30 steps there.
  problem, steps = make_problem(), 30 if mult else 50
  kw = dict(eta0=0.05, beta0=0.05 if mult else 1e-3,
            mu0=0.0 if adaptive else 0.9,
            kappa=(0.05 if mult else 1e-2) if adaptive else 0.0)
  direction = optax.trace(momentum) if momentum else optax.identity()
  tx = ohg.scale_by_marthe(direction, kw['eta0'], kw['beta0'], mu=kw['mu0'],
                           kappa=kw['kappa'], adapt_mu=adaptive,
                           mu_rule=mu_rule, rate_dynamics=dynamics)
  with jax.enable_x64(True):
    history = run(tx, problem, steps, dtype=jnp.float64)
    w0 = problem.flat(problem.init(jnp.float64))
  expected = ref.marthe(problem.grad_hess_np, w0, steps, adapt_mu=adaptive,
                        momentum=momentum, dynamics=dynamics,
                        mu_rule=mu_rule, **kw)
  np.testing.assert_allclose([h[0] for h in history], expected['w'],
                             rtol=1e-9, atol=1e-12)
  for key, field in [('eta', 'learning_rate'), ('mu', 'mu'),
                     ('beta', 'hypergrad_lr')]:
    np.testing.assert_allclose([float(getattr(h[1], field)) for h in history],
                               expected[key], rtol=1e-9, atol=1e-15,
                               err_msg=key)
  np.testing.assert_allclose(
      [problem.flat(h[1].tangent) for h in history], expected['z'],
      rtol=1e-9, atol=1e-12)
  # The test means something only if the adapted quantities really moved.
  assert np.ptp(expected['eta']) > 0.01 * kw['eta0']
  if adaptive:
    assert np.ptp(expected['mu']) > 0.1
    assert np.ptp(expected['beta']) > 0.1 * kw['beta0']


def test_float32_close_to_float64():
  problem = problems.least_squares()
  tx = ohg.marthe(0.05, 1e-3, kappa=1e-2)
  f32 = run(tx, problem, 30)
  with jax.enable_x64(True):
    f64 = run(tx, problem, 30, dtype=jnp.float64)
  np.testing.assert_allclose([h[0] for h in f32], [h[0] for h in f64],
                             rtol=1e-4, atol=1e-5)


def test_validation_gradient_drives_the_rate():
  problem = problems.least_squares()
  tx = ohg.rtho(0.05, 1e-3)
  zero_val = jax.tree.map(jnp.zeros_like, problem.init())
  history = run(tx, problem, 10, validation_grad=zero_val)
  # ∇E = 0: the hypergradient is 0 and the rate never moves.
  assert all(float(h[1].learning_rate) == np.float32(0.05) for h in history)
  moved = run(tx, problem, 10)
  assert float(moved[-1][1].learning_rate) != np.float32(0.05)


def test_rate_is_clamped_at_zero_and_bounded_above():
  problem = problems.least_squares()
  high = run(ohg.rtho(0.05, 1.0, max_learning_rate=0.06,
                      rate_dynamics='additive'), problem, 20)
  rates = np.array([float(h[1].learning_rate) for h in high])
  assert rates.min() >= 0.0 and rates.max() <= np.float32(0.06)
  assert (rates == 0.0).any() or (rates == np.float32(0.06)).any()


def test_rate_clamp_at_zero_binds():
  """A rate too large for f = 10 |w|^2 makes the iterate oscillate: the
  hypergradient (800 per coordinate at step 2) pushes the rate to
  0.15 - 1e-3 * 1600 < 0, which the clamp holds at exactly 0."""
  f = lambda w: 10.0 * jnp.sum(w ** 2)
  tx = ohg.marthe(learning_rate=0.15, hypergrad_lr=1e-3, kappa=0.0, mu=0.0,
                  adapt_mu=False, rate_dynamics='additive')
  w = jnp.ones(2)
  state = tx.init(w)
  rates = []
  for _ in range(2):
    updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    w = optax.apply_updates(w, updates)
    rates.append(float(state.learning_rate))
  assert rates == [pytest.approx(0.15), 0.0]


def test_missing_value_fn_says_how_to_pass_it():
  tx = optax.chain(optax.clip_by_global_norm(1.0), ohg.marthe())
  params = jnp.ones(3)
  state = tx.init(params)
  with pytest.raises(ValueError, match='value_fn='):
    tx.update(params, state, params)
  with pytest.raises(ValueError, match='value_fn='):
    tx.update(params, state, params, value=1.0)


@pytest.mark.parametrize('kwargs,name', [
    ({'learning_rate': -1.0}, 'learning_rate'),
    ({'hypergrad_lr': float('inf')}, 'hypergrad_lr'),
    ({'mu': 1.5}, 'mu'), ({'kappa': -1.0}, 'kappa'),
    ({'base': 'lion'}, 'base'),
])
def test_invalid_constants_raise(kwargs, name):
  with pytest.raises(ValueError, match=name):
    ohg.marthe(**kwargs)


def test_chained_and_in_flax_nnx_step():
  """value_fn through optax.chain and nnx.Optimizer, on the pure state."""

  class Model(nnx.Module):

    def __init__(self, rngs):
      self.l1 = nnx.Linear(5, 8, rngs=rngs)
      self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
      return self.l2(jnp.tanh(self.l1(x)))[:, 0]

  problem = problems.least_squares()
  x = jnp.asarray(problem.x, jnp.float32)
  y = jnp.asarray(problem.y, jnp.float32)
  make_tx = lambda: optax.chain(optax.clip_by_global_norm(10.0),
                                ohg.marthe(0.05, 1e-3, kappa=1e-2))

  loss_of = lambda m: 0.5 * jnp.mean((m(x) - y) ** 2)
  losses, _, _ = nnx_helpers.run_nnx_and_optax(
      lambda: Model(nnx.Rngs(0)), make_tx, loss_of, 40,
      lambda loss, pure_loss: {'value_fn': pure_loss})
  assert losses[-1] < 0.5 * losses[0]


def _mu_step(rule, mu, c, agreement, b, count=1):
  """One step of the adaptive μ rule with ∇E = (1, 1), η = 1."""
  from optax_hypergrad._src import marthe as marthe_lib  # pylint: disable=g-import-not-at-top
  f = jnp.float32
  state = marthe_lib.ScaleByMartheState(
      learning_rate=f(1.0), hypergrad_lr=f(0), hypergrad_lr_given=f(0),
      mu=f(mu), mu_accum=f(c), agreement=f(agreement),
      agreement_scale=f(0), prev_hypergrad=f(0), grad_norm=f(0),
      tangent=None, state_tangent=None, prev_grad=b, base_state=None,
      count=jnp.int32(count))
  return marthe_lib._step_mu(state, f(1.0), jnp.ones(2), rule, f(0))[:3]  # pylint: disable=protected-access


def test_mu_rule_resets_its_accumulator():
  """The reference μ rule, c ← c·sign(μ) + μ, μ ← z^{1/(c+1)}: after a step
  where the gradients disagree (μ = 0), c restarts from 0, so the next μ is
  z itself. Without the reset the old c would give z^{1/(c+1)} instead."""
  agree, disagree = jnp.ones(2), -jnp.ones(2)  # ∇E·b = 2 or -2
  mu, c, _ = _mu_step('reference', 0.5, 0.0, 0.0, agree)  # q = 1/2
  assert float(c) == 0.5 and float(mu) == pytest.approx(0.5 ** (1 / 1.5))
  mu, c, _ = _mu_step('reference', mu, c, 0.0, disagree)
  assert float(mu) == 0.0 and float(c) > 0.5
  mu, c, _ = _mu_step('reference', mu, c, 0.0, agree)
  assert float(c) == 0.0 and float(mu) == pytest.approx(0.5)


def test_descent_mu_rule_survives_one_disagreement():
  """The 'descent' rule cuts the horizon only when consecutive rate steps
  disagree on average: one step with ĥ_t ĥ_{t-1} < 0 after a run of
  agreement leaves z > 0 (the reference rule, fed disagreeing gradients,
  sets μ = 0 at once), and a run of disagreement resets μ to 0 and c."""
  from optax_hypergrad._src import marthe as marthe_lib  # pylint: disable=g-import-not-at-top
  f = jnp.float32

  def step(mu, c, rho, rho_abs, h, h_prev):
    state = marthe_lib.ScaleByMartheState(
        learning_rate=f(1.0), hypergrad_lr=f(0), hypergrad_lr_given=f(0),
        mu=f(mu), mu_accum=f(c), agreement=f(rho),
        agreement_scale=f(rho_abs), prev_hypergrad=f(h_prev), grad_norm=f(0),
        tangent=None, state_tangent=None, prev_grad=None, base_state=None,
        count=jnp.int32(100))
    return marthe_lib._step_mu(state, f(1.0), None, 'descent', f(h))  # pylint: disable=protected-access

  # ρ̄ = 0.9·0.25 - 0.1·0.25 = 0.2, ā = 0.25: z = 0.8, c = 2.9.
  mu, c, rho, rho_abs = step(0.9, 2.0, 0.25, 0.25, 0.5, -0.5)
  assert float(rho) == pytest.approx(0.2) and float(rho_abs) == 0.25
  assert float(c) == pytest.approx(2.9)
  assert float(mu) == pytest.approx(0.8 ** (1 / 3.9))
  for _ in range(10):
    mu, c, rho, rho_abs = step(mu, c, rho, rho_abs, 0.5, -0.5)
  assert float(rho) < 0 and float(mu) == 0.0
  mu, c, _, _ = step(mu, c, rho, rho_abs, 0.5, -0.5)
  assert float(c) == 0.0  # reset: c·sign(0) + 0


@pytest.mark.parametrize('dynamics', ['additive', 'multiplicative'])
def test_an_overflowing_beta_step_keeps_beta(dynamics):
  """κ = 3e38: κ·h·η (additive) or exp(κ ĥ_t ĥ_{t-1}) (multiplicative)
  overflows on an adapted step; β keeps its value instead of becoming inf,
  and the rate and parameters stay finite."""
  tx = ohg.marthe(0.2, 1e-3, kappa=3e38, rate_dynamics=dynamics)
  f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * (w - 1.0) ** 2)
  w = jnp.zeros(2)
  state = tx.init(w)
  for _ in range(4):
    updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    w = optax.apply_updates(w, updates)
    assert np.isfinite(float(state.hypergrad_lr))
    assert np.isfinite(float(state.learning_rate))
  assert bool(jnp.all(jnp.isfinite(w)))


@pytest.mark.parametrize('value_fn,what', [
    (lambda w: (w - 1.0) ** 2, r'shape \(2,\)'),
    (lambda w: (jnp.sum(w ** 2), {'aux': 1.0}), 'tuple'),
])
def test_value_fn_must_return_a_real_scalar(value_fn, what):
  """A per-example loss or a ``(loss, aux)`` pair is named as such, not left
  to JAX's generic message from inside the Hessian-vector product."""
  tx = ohg.marthe()
  w = jnp.zeros(2)
  state = tx.init(w)
  with pytest.raises(ValueError, match=rf'value_fn=.*{what}'):
    tx.update(jnp.ones(2), state, w, value_fn=value_fn)


ZERO_GRAD_BASES = {
    **BASES,
    'rmsprop': lambda: optax.scale_by_rms(),
}


@pytest.mark.parametrize('base', list(ZERO_GRAD_BASES))
def test_zero_gradient_coordinate_and_leaf_keep_the_tangent_finite(base):
  """A coordinate and a whole leaf whose gradient is exactly 0 (a dead unit,
  an unused embedding row): Adam's √v at v = 0 made the jvp 0·∞ = NaN, and
  the guard reset the tangent every step, freezing the rate. The tangent
  must stay finite, be 0 where the gradient is, and the rate must move as
  it does without the dead parameters."""
  scale = jnp.array([1.0, 10.0, 0.0])
  f = lambda p: jnp.sum(scale * (p['w'] - 1.0) ** 2) + 0.0 * jnp.sum(p['dead'])
  f_live = lambda p: jnp.sum(scale[:2] * (p['w'] - 1.0) ** 2)
  make = lambda: ohg.scale_by_marthe(ZERO_GRAD_BASES[base](), 1e-3, mu=1.0)

  def run_(loss, params, steps=100):
    tx = make()
    state = tx.init(params)
    step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p,
                                          value_fn=loss))
    for _ in range(steps):
      updates, state = step(params, state)
      params = optax.apply_updates(params, updates)
    return params, state

  params, state = run_(f, {'w': jnp.zeros(3), 'dead': jnp.zeros(4)})
  live, live_state = run_(f_live, {'w': jnp.zeros(2)})
  assert all(bool(jnp.all(jnp.isfinite(x)))
             for x in jax.tree.leaves(state.tangent))
  assert float(state.tangent['w'][2]) == 0.0
  assert float(jnp.abs(state.tangent['dead']).max()) == 0.0
  assert abs(np.log(float(state.learning_rate) / 1e-3)) > np.log(1.2)
  np.testing.assert_allclose(float(state.learning_rate),
                             float(live_state.learning_rate), rtol=1e-4)
  np.testing.assert_allclose(params['w'][:2], live['w'], rtol=1e-4,
                             atol=1e-6)


def test_inject_hyperparams_changes_take_effect():
  """Under optax.inject_hyperparams a new hypergrad_lr moves the live β by
  as much (β = 0 freezes the rate), and a new fixed μ is used at once."""
  f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * (w - 1.0) ** 2)
  tx = optax.inject_hyperparams(ohg.marthe)(hypergrad_lr=0.05, mu=1.0,
                                            adapt_mu=False)
  w = jnp.zeros(2)
  state = tx.init(w)
  step = jax.jit(lambda w, s: tx.update(jax.grad(f)(w), s, w, value_fn=f))
  for _ in range(10):
    updates, state = step(w, state)
    w = optax.apply_updates(w, updates)
  inner = state.inner_state
  assert float(inner.learning_rate) > 1.2e-3 and float(inner.mu) == 1.0
  state.hyperparams['hypergrad_lr'] = jnp.asarray(0.0)
  state.hyperparams['mu'] = jnp.asarray(0.5)
  frozen = float(inner.learning_rate)
  for _ in range(10):
    updates, state = step(w, state)
    w = optax.apply_updates(w, updates)
  assert float(state.inner_state.hypergrad_lr) == 0.0
  assert float(state.inner_state.learning_rate) == frozen
  assert float(state.inner_state.mu) == 0.5


@pytest.mark.parametrize('wrap', ['masked', 'multi_transform'])
def test_on_a_subset_of_parameters(wrap):
  """MARTHE on ``w``, SGD on ``b``, with ``value_fn=masked_value_fn(...)``.
  The loss is separable, so MARTHE's part must equal MARTHE run on ``w``
  alone with the loss of ``w`` alone, step for step."""
  loss = lambda p: jnp.sum((p['w'] - 1.0) ** 2 * jnp.array([1.0, 4.0])) + (
      p['b'] - 2.0) ** 2
  params = {'w': jnp.zeros(2), 'b': jnp.zeros(())}
  if wrap == 'masked':
    tx = optax.chain(optax.masked(ohg.marthe(), {'w': True, 'b': False}),
                     optax.masked(optax.sgd(0.1), {'w': False, 'b': True}))
  else:
    tx = optax.multi_transform({'m': ohg.marthe(), 's': optax.sgd(0.1)},
                               {'w': 'm', 'b': 's'})
  state = tx.init(params)
  alone = ohg.marthe()
  w, w_state = params['w'], alone.init(params['w'])
  loss_w = lambda w: jnp.sum((w - 1.0) ** 2 * jnp.array([1.0, 4.0]))
  for _ in range(100):
    updates, state = tx.update(jax.grad(loss)(params), state, params,
                               value_fn=ohg.masked_value_fn(loss, params))
    params = optax.apply_updates(params, updates)
    u, w_state = alone.update(jax.grad(loss_w)(w), w_state, w,
                              value_fn=loss_w)
    w = optax.apply_updates(w, u)
  np.testing.assert_allclose(params['w'], w, rtol=1e-5, atol=1e-7)
  assert float(w_state.learning_rate) > 0.01  # a rate that adapted
  assert abs(float(params['b']) - 2.0) < 1e-3


def test_masked_without_the_helper_says_what_to_do():
  loss = lambda p: jnp.sum(p['w'] ** 2) + p['b'] ** 2
  params = {'w': jnp.ones(2), 'b': jnp.ones(())}
  tx = optax.masked(ohg.marthe(), {'w': True, 'b': False})
  state = tx.init(params)
  with pytest.raises(ValueError, match='masked_value_fn'):
    tx.update(jax.grad(loss)(params), state, params, value_fn=loss)


def test_integer_leaf_is_named():
  params = {'w': jnp.ones(2), 'step': jnp.zeros((), jnp.int32)}
  tx = ohg.marthe()
  state = tx.init(params)
  grads = {'w': jnp.ones(2), 'step': jnp.zeros((), jnp.int32)}
  with pytest.raises(ValueError, match=r"\['step'\].*masked_value_fn"):
    tx.update(grads, state, params, value_fn=lambda p: jnp.sum(p['w'] ** 2))


def test_a_gradient_jump_restarts_the_tangent():
  """RTHO on the scale-free rule: a gradient 1000× its level (a spike)
  restarts the tangent — μ = 0 for that step only, so Z is then the one-step
  ∂Φ/∂η = -d, the (clipped) step direction — while a 1.5× jump (noise)
  does not."""
  f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * w ** 2)
  tx = ohg.rtho()
  w = jnp.ones(2)
  state = tx.init(w)
  mus = []
  for t in range(30):
    g = jax.grad(f)(w) * (1000.0 if t == 20 else 1.5 if t == 10 else 1.0)
    updates, state = tx.update(g, state, w, value_fn=f)
    w = optax.apply_updates(w, updates)
    mus.append(float(state.mu))
    if t == 20:
      d = -updates / state.learning_rate  # SGD: the clipped gradient
      np.testing.assert_allclose(state.tangent, -d, rtol=1e-5)
  assert mus[20] == 0.0
  assert all(m == 1.0 for i, m in enumerate(mus) if i != 20)


def test_an_overflowed_tangent_is_not_carried():
  """RTHO's tangent grows without bound where ``|1 - ηλ| > 1`` along the
  curvature value_fn= sees. Once its squared norm overflows, the next step
  reads it as 0 — the rate stays where it is and the tangent restarts at the
  one-step ``∂Φ/∂η = -d`` — instead of carrying the overflow into the
  Hessian-vector product (the next tangent would be ±inf or NaN)."""
  f = lambda w: 0.5 * jnp.sum(w ** 2)
  stiff = lambda w: 1e25 * jnp.sum(w ** 2)  # H = 2e25 I for the tangent
  tx = ohg.rtho()
  w = jnp.ones(2)
  state = tx.init(w)
  restarts = 0
  for _ in range(8):
    overflowed = (np.sum(np.asarray(state.tangent, np.float64) ** 2)
                  > np.finfo(np.float32).max)
    rate = float(state.learning_rate)
    updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=stiff)
    w = optax.apply_updates(w, updates)
    if overflowed:
      restarts += 1
      assert float(state.learning_rate) == rate
      d = -updates / state.learning_rate
      np.testing.assert_allclose(state.tangent, -d, rtol=1e-6)
  assert restarts >= 2
  assert bool(jnp.all(jnp.isfinite(w)))
  assert np.isfinite(float(state.learning_rate))
