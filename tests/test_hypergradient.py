"""HD and its `_lop` variants against the papers' equations, step by step."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpy_reference as ref
import optax
import problems
import pytest

import optax_hypergrad as ohg

BASES = ('sgd', 'nesterov', 'adam')
LOPS = ('sgd', 'nesterov', 'adam')
STEPS = 50
# Settings under which the rate moves by tens of percent or more in 50 steps
# (so the rate's dynamics are really tested) while float32 stays well
# conditioned (plain float32 Adam at α=0.01 already drifts 1e-3 from float64).
ALPHA0 = {'sgd': 0.1, 'nesterov': 0.02, 'adam': 0.001}
BETA = {
    ('sgd', 'sgd'): 1e-2, ('sgd', 'nesterov'): 1e-2,
    ('nesterov', 'sgd'): 1e-3, ('nesterov', 'nesterov'): 1e-3,
    ('adam', 'sgd'): 1e-5, ('adam', 'nesterov'): 3e-6,
}


def _beta(base, lop):
  return ALPHA0[base] / 100 if lop == 'adam' else BETA[(base, lop)]


def run(tx, problem, steps=STEPS, jit=True, loss=None):
  """Runs ``tx`` on ``problem``; returns flat params and rates per step."""
  loss = loss or problem.loss
  params = problem.init()
  state = tx.init(params)

  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  if jit:
    step = jax.jit(step)
  ws, rates = [], []
  for _ in range(steps):
    params, state = step(params, state)
    ws.append(problem.flat(params))
    lr = optax.tree.get(state, 'learning_rate')
    rates.append(np.array([float(x) for x in jax.tree.leaves(lr)]))
  return np.array(ws), np.array(rates), state


def assert_matches(ws, rates, ref_ws, ref_rates, rtol=1e-5):
  np.testing.assert_allclose(
      ws, ref_ws, rtol=rtol, atol=rtol * np.abs(ref_ws).max()
  )
  np.testing.assert_allclose(rates, ref_rates, rtol=rtol)


@pytest.mark.parametrize('per_leaf', [False, True])
@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
@pytest.mark.parametrize('base,lop', list(itertools.product(BASES, LOPS)))
def test_matches_numpy_transcription(base, lop, make_problem, per_leaf):
  problem = make_problem()
  alpha0, beta = ALPHA0[base], _beta(base, lop)
  tx = ohg.hypergradient_descent(
      alpha0, beta, base=base, rate_optimizer=lop, per_leaf=per_leaf,
      rate_dynamics='additive',
  )
  ws, rates, _ = run(tx, problem)
  ref_ws, ref_rates = ref.hd(
      problem.grad_np, problem.flat(problem.init()), STEPS, base=base,
      lop=lop, alpha0=alpha0, beta=beta,
      groups=problem.groups() if per_leaf else None,
  )
  # The test means something only if the rate really moved.
  assert np.abs(ref_rates[-1] - alpha0).max() > 0.1 * alpha0
  assert_matches(ws, rates, ref_ws, ref_rates)


NAMED = {
    ('sgd', 'sgd'): ohg.sgd_hd,
    ('sgd', 'nesterov'): ohg.sgd_op_sgdn_lop,
    ('sgd', 'adam'): ohg.sgd_op_adam_lop,
    ('nesterov', 'sgd'): ohg.sgdn_hd,
    ('nesterov', 'nesterov'): ohg.sgdn_op_sgdn_lop,
    ('nesterov', 'adam'): ohg.sgdn_op_adam_lop,
    ('adam', 'sgd'): ohg.adam_hd,
    ('adam', 'nesterov'): ohg.adam_op_sgdn_lop,
    ('adam', 'adam'): ohg.adam_op_adam_lop,
}


@pytest.mark.parametrize('base,lop', list(NAMED))
def test_named_aliases_are_the_general_form(base, lop):
  problem = problems.logistic()
  alpha0, beta = ALPHA0[base], _beta(base, lop)
  named, _, _ = run(NAMED[(base, lop)](alpha0, beta), problem, steps=10)
  general, _, _ = run(
      ohg.hypergradient_descent(alpha0, beta, base=base, rate_optimizer=lop),
      problem, steps=10,
  )
  np.testing.assert_array_equal(named, general)


def test_paper_defaults_sgd_and_adam_are_one_argument_away():
  add = {'rate_dynamics': 'additive'}
  state = ohg.adam_hd(**add).init(jnp.zeros(2))
  assert float(state.learning_rate) == pytest.approx(1e-3)
  # β = 1e-7 over Adam, 1e-3 over SGD: one step with h = -1 moves α by β.
  for tx, beta in [(ohg.adam_hd(**add), 1e-7), (ohg.sgd_hd(**add), 1e-3)]:
    state = tx.init(jnp.zeros(1))
    state = state._replace(prev_direction=jax.tree.map(
        jnp.ones_like, state.prev_direction))
    _, state = tx.update(jnp.ones(1), state, jnp.zeros(1))
    assert float(state.learning_rate) == pytest.approx(1e-3 + beta, rel=1e-6)


@pytest.mark.parametrize('alias,base,lop,target', [
    ('sgd_hd', 'sgd', 'sgd', -0.03), ('sgdn_hd', 'nesterov', 'sgd', -0.03),
    ('sgdn_op_sgdn_lop', 'nesterov', 'nesterov', -0.03),
    ('adam_hd', 'adam', 'sgd', 0.0), ('adam_op_sgdn_lop', 'adam', 'nesterov',
                                      0.0),
    ('sgdn_op_adam_lop', 'nesterov', 'adam', 0.0)])
def test_default_target_cosine_by_base_and_rate_optimizer(alias, base, lop,
                                                          target):
  """-0.03 over SGD and Nesterov with SGD or Nesterov on the rate (epoch-wise
  minibatches), else 0: the alias runs as the general form at that target
  and not as at the other one."""
  problem = problems.least_squares()
  ws, rates, _ = run(getattr(ohg, alias)(), problem, steps=30)
  want, want_rates, _ = run(ohg.hypergradient_descent(
      base=base, rate_optimizer=lop, target_cosine=target), problem, steps=30)
  other, _, _ = run(ohg.hypergradient_descent(
      base=base, rate_optimizer=lop, target_cosine=-0.03 - target), problem,
                    steps=30)
  np.testing.assert_allclose(ws, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(rates, want_rates, rtol=1e-6)
  assert np.max(np.abs(other - want)) > 1e-6


@pytest.mark.parametrize('alias,base,beta,other', [
    ('adam_op_adam_lop', 'adam', 0.02, 0.05),
    ('sgdn_op_adam_lop', 'nesterov', 0.05, 0.02),
    ('sgd_op_adam_lop', 'sgd', 0.05, 0.02)])
def test_default_hypergrad_lr_with_adam_on_the_rate(alias, base, beta, other):
  """Adam on the rate moves log α by 0.02 per step over Adam, 0.05 over SGD
  and Nesterov: the alias runs as the general form at that β and not as at
  the other one."""
  problem = problems.least_squares()
  ws, rates, _ = run(getattr(ohg, alias)(), problem, steps=30)
  want, want_rates, _ = run(ohg.hypergradient_descent(
      hypergrad_lr=beta, base=base, rate_optimizer='adam'), problem, steps=30)
  unlike, _, _ = run(ohg.hypergradient_descent(
      hypergrad_lr=other, base=base, rate_optimizer='adam'), problem,
                     steps=30)
  np.testing.assert_allclose(ws, want, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(rates, want_rates, rtol=1e-6)
  assert np.max(np.abs(unlike - want)) > 1e-6


BASE_OPTAX = {
    'sgd': lambda lr: optax.sgd(lr),
    'nesterov': lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
    'adam': lambda lr: optax.adam(lr),
}


@pytest.mark.parametrize('lop', LOPS)
@pytest.mark.parametrize('base', BASES)
def test_zero_hypergrad_lr_is_the_base_optimizer_exactly(base, lop):
  """Bit for bit op by op; under jit, XLA may fuse the two programs
  differently (an FMA here or there), so 1 ulp."""
  problem = problems.least_squares()
  tx = ohg.hypergradient_descent(0.01, 0.0, base=base, rate_optimizer=lop,
                                 rate_dynamics='additive')
  ws, rates, _ = run(tx, problem, jit=False)
  base_ws, _, _ = run(BASE_OPTAX[base](0.01), problem, jit=False)
  np.testing.assert_array_equal(ws, base_ws)
  np.testing.assert_array_equal(rates, np.full_like(rates, np.float32(0.01)))
  jitted, _, _ = run(tx, problem)
  np.testing.assert_allclose(jitted, base_ws, rtol=3e-7, atol=1e-7)


@pytest.mark.parametrize(
    'momentum,nesterov,weight_decay',
    [(0.0, False, 0.0), (0.9, True, 0.0), (0.9, True, 1e-2), (0.9, False, 0.0)],
)
def test_update_order_of_reference_sgd_hd(momentum, nesterov, weight_decay):
  """SGD-HD, β = 0.001, against the reference PyTorch code's step order."""
  problem = problems.logistic()
  base = 'sgd' if momentum == 0 else ('nesterov' if nesterov else 'momentum')
  tx = optax.chain(
      optax.add_decayed_weights(weight_decay),
      ohg.hypergradient_descent(0.1, 0.001, base=base, momentum=momentum,
                                rate_dynamics='additive'),
  )
  ws, rates, _ = run(tx, problem)
  torch_like = ref.ReferenceSGDHD(
      problem.flat(problem.init()), 0.1, 0.001, momentum, nesterov,
      weight_decay,
  )
  ref_ws, ref_rates = [], []
  for _ in range(STEPS):
    torch_like.step(problem.grad_np(torch_like.w))
    ref_ws.append(torch_like.w.copy())
    ref_rates.append([torch_like.lr])
  assert abs(ref_rates[-1][0] - 0.1) > 0.003  # the rate really moved
  assert_matches(ws, rates, np.array(ref_ws), np.array(ref_rates))


def test_chained_with_clipping_and_weight_decay():
  """Clipping and decay come first: HD sees the gradient they produce."""
  problem = problems.least_squares()
  max_norm, wd = 0.5, 1e-2
  tx = optax.chain(
      optax.clip_by_global_norm(max_norm),
      optax.add_decayed_weights(wd),
      ohg.sgdn_hd(0.02, 1e-3, rate_dynamics='additive'),
  )

  def processed_grad(w):
    g = problem.grad_np(w)
    g = g * min(1.0, max_norm / np.linalg.norm(g))
    return g + wd * w

  ws, rates, _ = run(tx, problem)
  ref_ws, ref_rates = ref.hd(
      processed_grad, problem.flat(problem.init()), STEPS, base='nesterov',
      lop='sgd', alpha0=0.02, beta=1e-3,
  )
  assert_matches(ws, rates, ref_ws, ref_rates)


def test_inject_hyperparams():
  problem = problems.least_squares()
  plain, _, _ = run(ohg.sgd_hd(0.1, 1e-2), problem, steps=20)
  tx = optax.inject_hyperparams(ohg.sgd_hd)(learning_rate=0.1,
                                            hypergrad_lr=1e-2)
  params = problem.init()
  state = tx.init(params)
  ws = []
  for _ in range(20):
    updates, state = tx.update(jax.grad(problem.loss)(params), state, params)
    params = optax.apply_updates(params, updates)
    ws.append(problem.flat(params))
  np.testing.assert_allclose(np.array(ws), plain, rtol=1e-5, atol=1e-7)
  # The injected hyper-learning rate is live: setting it to 0 freezes α.
  state.hyperparams['hypergrad_lr'] = jnp.zeros([])
  frozen = state.inner_state.learning_rate
  updates, state = tx.update(jax.grad(problem.loss)(params), state, params)
  assert float(state.inner_state.learning_rate) == float(frozen)


def test_tree_get_returns_live_rate_inside_chain():
  """``optax.tree.get(state, 'learning_rate')`` is the rate the last update
  used: that update is exactly ``-rate`` times the clipped gradient."""
  problem = problems.least_squares()
  tx = optax.chain(optax.clip_by_global_norm(1.0), ohg.sgd_hd(0.1, 1e-2))
  params, state = problem.init(), None
  state = tx.init(params)
  for _ in range(6):
    grads = jax.grad(problem.loss)(params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  live = optax.tree.get(state, 'learning_rate')
  clipped, _ = optax.clip_by_global_norm(1.0).update(grads, None)
  jax.tree.map(lambda u, g: np.testing.assert_allclose(
      u, -float(live) * g, rtol=1e-6), updates, clipped)
  assert float(live) != pytest.approx(0.1)  # the rate moved


def test_rate_state_is_float32_for_low_precision_params_adam():
  params = {'w': jnp.ones(3, jnp.bfloat16)}
  tx = ohg.adam_hd(1e-3, 1e-3)
  state = tx.init(params)
  assert state.learning_rate.dtype == jnp.float32
  updates, state = jax.jit(tx.update)({'w': jnp.ones(3, jnp.bfloat16)}, state,
                                      params)
  assert updates['w'].dtype == jnp.bfloat16
  assert state.learning_rate.dtype == jnp.float32


def test_bounds_clip_the_rate():
  problem = problems.least_squares()
  tx = ohg.sgd_hd(0.1, 1e-2, max_learning_rate=0.12)
  _, rates, _ = run(tx, problem)
  assert rates.max() == pytest.approx(0.12)
  _, free_rates, _ = run(ohg.sgd_hd(0.1, 1e-2), problem)
  assert free_rates.max() > 0.15  # so the bound above did bind


def test_non_finite_gradient_skips_the_step_adam_lop():
  tx = ohg.sgd_op_adam_lop(0.1, 1e-3)
  params = jnp.ones(3)
  state = tx.init(params)
  for _ in range(3):
    _, state = tx.update(params, state, params)
  before = state
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    updates, state = tx.update(jnp.array([1.0, bad, 1.0]), before, params)
    chex.assert_trees_all_equal(state, before)  # rate, moments, direction
    assert not np.any(np.asarray(updates))
  _, state = tx.update(jnp.ones(3), state, params)  # training goes on
  assert bool(jnp.isfinite(state.learning_rate))
  assert float(state.learning_rate) != float(before.learning_rate)


@pytest.mark.parametrize(
    'kwargs,name',
    [
        ({'learning_rate': -1.0}, 'learning_rate'),
        ({'learning_rate': float('nan')}, 'learning_rate'),
        ({'hypergrad_lr': -1e-3}, 'hypergrad_lr'),
        ({'hypergrad_lr': float('inf')}, 'hypergrad_lr'),
        ({'base': 'rmsprop'}, 'base'),
        ({'rate_optimizer': 'lbfgs'}, 'rate_optimizer'),
        ({'target_cosine': 1.5}, 'target_cosine'),
        ({'target_cosine': float('nan')}, 'target_cosine'),
        ({'momentum': 1.5, 'base': 'nesterov'}, 'momentum'),
        ({'b2': 1.0, 'base': 'adam'}, 'b2'),
        ({'min_learning_rate': 1.0, 'max_learning_rate': 0.1},
         'min_learning_rate'),
        ({'rate_optimizer': optax.adam(1e-3), 'hypergrad_lr': 1e-3},
         'hypergrad_lr'),
    ],
)
def test_invalid_constants_raise_naming_the_parameter(kwargs, name):
  with pytest.raises(ValueError, match=name):
    ohg.hypergradient_descent(**kwargs)


def test_any_optax_rate_optimizer_adam():
  problem = problems.least_squares()
  tx = ohg.hypergradient_descent(0.1, base='sgd',
                                 rate_optimizer=optax.adam(1e-3),
                                 rate_dynamics='additive')
  ws, rates, _ = run(tx, problem)
  ref_ws, ref_rates = ref.hd(problem.grad_np, problem.flat(problem.init()),
                             STEPS, base='sgd', lop='adam', alpha0=0.1,
                             beta=1e-3)
  assert_matches(ws, rates, ref_ws, ref_rates)
