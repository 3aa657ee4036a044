"""The multiplicative (scale-free) rate rule: the math, and its guarantees."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import optax
import problems
import pytest
from test_hypergradient import assert_matches
from test_hypergradient import run

import optax_hypergrad as ohg

BASES = ('sgd', 'nesterov', 'adam')
LOPS = ('sgd', 'nesterov', 'adam')
ALPHA0 = {'sgd': 0.1, 'nesterov': 0.02, 'adam': 0.01}
BETA = {'sgd': 0.05, 'nesterov': 0.005, 'adam': 0.02}


@pytest.mark.parametrize('per_leaf', [False, True])
@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
@pytest.mark.parametrize('base,lop', list(itertools.product(BASES, LOPS)))
def test_matches_numpy_transcription(base, lop, make_problem, per_leaf):
  problem = make_problem()
  alpha0, beta, target = ALPHA0[base], BETA[lop], -0.05
  tx = ohg.hypergradient_descent(alpha0, beta, base=base, rate_optimizer=lop,
                                 per_leaf=per_leaf, target_cosine=target)
  ws, rates, _ = run(tx, problem)
  ref_ws, ref_rates = ref.hd(
      problem.grad_np, problem.flat(problem.init()), 50, base=base, lop=lop,
      alpha0=alpha0, beta=beta, dynamics='multiplicative', target=target,
      groups=problem.groups() if per_leaf else None)
  assert np.abs(np.log(ref_rates[-1] / alpha0)).max() > 0.1  # it moved
  assert_matches(ws, rates, ref_ws, ref_rates, rtol=2e-5)


def test_step_is_clipped_on_a_jump_and_the_rate_kept():
  """A gradient 10x its level: the step is shrunk to twice the level, the
  rate untouched, as the transcription says (the clip's branch runs)."""
  g = [np.ones(3), np.ones(3), 10 * np.ones(3)]
  grads = iter(g)
  ws, rates = ref.hd(lambda w: next(grads), np.zeros(3), 3, base='sgd',
                     lop='sgd', alpha0=0.1, beta=0.0,
                     dynamics='multiplicative')
  np.testing.assert_allclose(ws[-1] - ws[-2], -0.1 * 2 * np.ones(3))
  tx = ohg.sgd_hd(0.1, 0.0)
  w, state = jnp.zeros(3), tx.init(jnp.zeros(3))
  for t in range(3):
    u, state = tx.update(jnp.asarray(g[t], jnp.float32), state, w)
    w = optax.apply_updates(w, u)
  np.testing.assert_allclose(w, ws[-1], rtol=1e-6)
  np.testing.assert_allclose(u, -0.2 * np.ones(3), rtol=1e-6)
  assert float(state.learning_rate) == pytest.approx(rates[-1][0])


@pytest.mark.parametrize('c', [1e-3, 1e-1, 1.0, 10.0, 1e3])
def test_rate_trajectory_invariant_to_loss_scale_adam(c):
  """Adam with ε = 0 is invariant to scaling the loss; so is the rule."""
  problem = problems.logistic()
  tx = lambda: ohg.hypergradient_descent(0.01, base='adam', eps=0.0,
                                         rate_optimizer='adam')
  _, rates, _ = run(tx(), problem, steps=100)
  scaled = lambda p: c * problem.loss(p)
  _, c_rates, _ = run(tx(), problem, steps=100, loss=scaled)
  assert np.abs(np.log(rates[-1] / 0.01)).max() > 0.1
  np.testing.assert_allclose(c_rates, rates, rtol=1e-4)


@pytest.mark.parametrize('name', ['sgd_hd', 'sgdn_hd', 'adam_hd',
                                  'sgd_op_sgdn_lop', 'adam_op_adam_lop'])
def test_rate_stays_positive_finite_and_moves_a_bounded_factor(name):
  """Heavy-tailed random gradients, up to 1e30: the rate never leaves
  (0, inf) and moves by at most a factor of 2 in one step."""
  tx = getattr(ohg, name)()
  rng = np.random.default_rng(0)
  w = jnp.zeros(5)
  state = tx.init(w)
  prev = float(state.learning_rate)
  step = jax.jit(tx.update)
  for t in range(300):
    g = rng.standard_cauchy(5) * (1e30 if t % 50 == 7 else 1.0)
    u, state = step(jnp.asarray(g, jnp.float32), state, w)
    w = optax.apply_updates(w, u)
    lr = float(state.learning_rate)
    assert 0 < lr < np.inf
    assert prev / 2 * (1 - 1e-6) <= lr <= 2 * prev * (1 + 1e-6)
    prev = lr
  assert bool(jnp.all(jnp.isfinite(w)))


def _with_spike(tx, steps=100, at=30):
  problem = problems.least_squares()
  params = problem.init()
  state = tx.init(params)
  rates = []
  for t in range(steps):
    g = jax.grad(problem.loss)(params)
    g = optax.tree.scale(1000.0 if t == at else 1.0, g)
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    rates.append(float(state.learning_rate))
  return float(problem.loss(params)), np.array(rates)


def test_one_gradient_spike():
  """The paper's rule (one argument away) turns negative after a 1000x
  spike; the default stays positive, moves 2x at most, and converges."""
  _, paper = _with_spike(ohg.sgd_hd(0.1, 1e-3, rate_dynamics='additive'))
  assert paper.min() < 0
  loss, ours = _with_spike(ohg.sgd_hd(0.1))
  assert ours.min() > 0
  ratio = ours[1:] / ours[:-1]
  assert np.all(ratio <= 2) and np.all(ratio >= 0.5)
  no_spike, _ = _with_spike(ohg.sgd_hd(0.1), at=-1)
  assert loss < 1.01 * no_spike + 1e-6


def test_invalid_rate_dynamics_raises():
  with pytest.raises(ValueError, match='rate_dynamics'):
    ohg.sgd_hd(rate_dynamics='log')
  with pytest.raises(ValueError, match='learning_rate'):
    ohg.sgd_hd(0.0)  # a multiplicative rate cannot start at 0


def test_any_optax_transformation_moves_log_rate():
  """The rate-optimizer slot takes any Optax transformation, applied to
  log α: optax.sgd(0.05) is the named 'sgd' at β = 0.05 (at the same target
  cosine: a transformation's default is 0, the named 'sgd''s -0.03), and a
  chain with a clip bounds each log step."""
  problem = problems.logistic()
  for target in (None, -0.03):
    named, named_rates, _ = run(ohg.hypergradient_descent(
        0.1, 0.05, target_cosine=0.0 if target is None else target), problem)
    ws, rates, _ = run(ohg.hypergradient_descent(
        0.1, rate_optimizer=optax.sgd(0.05), target_cosine=target), problem)
    np.testing.assert_allclose(ws, named, rtol=1e-6)
    np.testing.assert_allclose(rates, named_rates, rtol=1e-6)
  default, _, _ = run(ohg.hypergradient_descent(0.1, 0.05), problem)
  np.testing.assert_allclose(default, named, rtol=1e-6)  # 'sgd': -0.03
  _, clipped, _ = run(ohg.hypergradient_descent(
      0.1, rate_optimizer=optax.chain(optax.clip(0.01), optax.sgd(1.0))),
                      problem)
  steps = np.abs(np.diff(np.log(clipped[:, 0])))
  assert steps.max() <= 0.01 + 1e-6 and steps.max() > 0.009


def test_a_large_log_step_is_clipped_to_a_factor_of_two():
  """With β = 10 the rate optimizer proposes log-steps of up to 10: each is
  cut to ±log 2, so the rate moves by exactly 2× (or 1/2×) on those steps
  and never by more."""
  tx = ohg.sgd_hd(1e-3, hypergrad_lr=10.0)
  rng = np.random.default_rng(1)
  w = jnp.zeros(5)
  state = tx.init(w)
  prev, factors = float(state.learning_rate), []
  for _ in range(50):
    u, state = tx.update(jnp.asarray(rng.normal(size=5), jnp.float32),
                         state, w)
    w = optax.apply_updates(w, u)
    lr = float(state.learning_rate)
    factors.append(lr / prev)
    prev = lr
  factors = np.array(factors[1:])  # the first step has no hypergradient
  assert np.all(factors <= 2 * (1 + 1e-6))
  assert np.all(factors >= 0.5 * (1 - 1e-6))
  hit = np.isclose(factors, 2.0, rtol=1e-6) | np.isclose(factors, 0.5,
                                                          rtol=1e-6)
  assert hit.sum() > 10, factors  # the clip binds, and binds often


def test_a_rate_step_that_overflows_keeps_the_rate():
  """The papers' additive rule with β = 3e38: β·h overflows float32 although
  h is finite; the rate and the rate optimizer's state stay as they were
  (the update itself still uses the kept rate)."""
  tx = ohg.sgd_hd(0.1, hypergrad_lr=3e38, rate_dynamics='additive')
  w = jnp.zeros(3)
  state = tx.init(w)
  g = jnp.array([1.0, -2.0, 3.0])
  _, state = tx.update(g, state, w)  # stores the direction
  before = float(state.learning_rate)
  u, state = tx.update(g, state, w)
  assert float(state.learning_rate) == before
  assert bool(jnp.all(jnp.isfinite(u)))
