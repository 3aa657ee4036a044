"""L4Mom and L4Adam against NumPy transcriptions, and L4's exact properties."""

import functools

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

# L4's gradient estimate is optax.ema(debias=True), not strict-promotion
# clean; test_scale_by_l4_is_strict_promotion_clean checks our own code.
pytestmark = pytest.mark.standard_promotion

STEPS = 100
# float32 rounds the Adam decays (0.999 -> 0.99900001), and 1 - b2**t at
# t = 1 magnifies that to 1.3e-5: the transcription uses the decays as
# float32 holds them, so it compares the math and not that rounding.
B1, B2 = float(np.float32(0.9)), float(np.float32(0.999))
VARIANTS = {'mom': ohg.l4_mom, 'adam': ohg.l4_adam}
PAPER = {'mom': functools.partial(ohg.l4_mom, rule='paper'),
         'adam': functools.partial(ohg.l4_adam, rule='paper')}


def run(tx, problem, steps=STEPS, scale=1.0, jit=True, dtype=jnp.float32):
  """Runs ``tx`` on ``scale * loss``; returns flat params and rates."""
  loss_fn = lambda p: scale * problem.loss(p)
  params = problem.init(dtype)
  state = tx.init(params)

  def step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step) if jit else step
  ws, etas = [], []
  for _ in range(steps):
    params, state = step(params, state)
    ws.append(problem.flat(params))
    etas.append(float(state.learning_rate))
  return np.array(ws), np.array(etas), state


@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
@pytest.mark.parametrize('variant', list(VARIANTS))
def test_paper_rule_matches_numpy_transcription(variant, make_problem):
  problem = make_problem()
  ws, etas, _ = run(PAPER[variant](), problem)
  ref_ws, ref_etas = ref.l4(problem.loss_grad_np, problem.flat(problem.init()),
                            STEPS, variant=variant, b1=B1, b2=B2)
  np.testing.assert_allclose(ws, ref_ws, rtol=1e-5,
                             atol=1e-5 * np.abs(ref_ws).max())
  # Optax's Adam computes 1 - b2**t in float32: at t = 2 that is 0.001999
  # with an ulp of 6e-8, a 3e-5 relative error no float32 code avoids. It
  # fades as t grows: the first ten rates get 4e-5, the rest 1e-5.
  np.testing.assert_allclose(etas[:10], ref_etas[:10], rtol=4e-5)
  np.testing.assert_allclose(etas[10:], ref_etas[10:], rtol=1e-5)
  assert ref_etas.max() > 3 * ref_etas.min()  # the rate really varies


@pytest.mark.parametrize('power', [0.0, 0.5])
@pytest.mark.parametrize('make_problem', problems.PROBLEMS)
@pytest.mark.parametrize('variant', list(VARIANTS))
def test_robust_rule_matches_numpy_transcription(variant, make_problem, power):
  """The robust rule over 100 steps: target, gap, probe, cap and noise."""
  problem = make_problem()
  with jax.enable_x64(True):
    ws, etas, _ = run(VARIANTS[variant](noise_power=power), problem,
                      dtype=jnp.float64)
  ref_ws, ref_etas = ref.l4_robust(
      problem.loss_grad_np, problem.flat(problem.init()), STEPS,
      variant=variant, power=power)
  # float64 on both sides. The rule branches (a new best or not, the cap
  # binding or not), so past ~40 steps a 1e-15 difference can take the
  # other branch at a near tie and the runs part: compare the first 25.
  n = 25
  np.testing.assert_allclose(ws[:n], ref_ws[:n], rtol=1e-6,
                             atol=1e-6 * np.abs(ref_ws[:n]).max())
  np.testing.assert_allclose(etas[:n], ref_etas[:n], rtol=1e-6)
  assert ref_etas.max() > 3 * ref_etas.min()  # the rate really varies


def _scales_and_problems(n=6, seed=0):
  rng = np.random.default_rng(seed)
  for i in range(n):
    make = problems.PROBLEMS[i % 2]
    yield 10.0 ** rng.uniform(-2, 2), make(seed=int(rng.integers(100)))


def test_invariant_to_scaling_the_loss_l4_mom():
  """Paper §2.3: L → aL (a > 0) leaves the trajectory unchanged.

  Exactly with ``eps = 0``; the default ``eps = 1e-12`` added to ``g·v``
  (which scales as a²) perturbs it by about ``eps / (a² g·v)``.
  """
  with jax.enable_x64(True):
    for a, problem in _scales_and_problems():
      for eps, rtol, rule in [(0.0, 1e-7, 'paper'), (1e-12, 1e-4, 'paper'),
                              (0.0, 1e-7, 'robust')]:
        make = lambda e=eps, r=rule: ohg.l4_mom(eps=e, rule=r, noise_power=0.5)
        base, _, _ = run(make(), problem, 60, dtype=jnp.float64)
        scaled, _, _ = run(make(), problem, 60, scale=a, dtype=jnp.float64)
        np.testing.assert_allclose(scaled, base, rtol=rtol, atol=rtol * 1e-2,
                                   err_msg=f'a={a}, eps={eps}, {rule}')


def test_invariant_to_scaling_the_loss_l4_adam_without_adam_eps():
  """L4Adam is invariant only when Adam's ε is 0: ε breaks the scaling.

  With the paper's ε = 1e-4 the direction m̂/(√ŝ + ε) changes shape with
  the gradient's scale; without it the invariance is exact.
  """
  with jax.enable_x64(True):
    for a, problem in _scales_and_problems():
      for rule in ('paper', 'robust'):
        exact = ohg.l4_adam(adam_eps=0.0, eps=0.0, rule=rule)
        base, _, _ = run(exact, problem, 60, dtype=jnp.float64)
        scaled, _, _ = run(exact, problem, 60, scale=a, dtype=jnp.float64)
        np.testing.assert_allclose(scaled, base, rtol=1e-7, atol=1e-9,
                                   err_msg=f'a={a}, {rule}')
    # ... and with ε = 1e-4 a small scale does change the trajectory.
    problem = problems.least_squares()
    base, _, _ = run(ohg.l4_adam(), problem, 60, dtype=jnp.float64)
    scaled, _, _ = run(ohg.l4_adam(), problem, 60, scale=1e-3,
                       dtype=jnp.float64)
    assert np.abs(scaled - base).max() > 1e-3


def test_rate_is_exactly_zero_at_zero_loss_and_at_a_new_minimum():
  params = jnp.ones(3)
  grads = jnp.ones(3)
  tx = ohg.l4_mom(rule='paper')
  state = tx.init(params)
  _, state = tx.update(grads, state, params, value=jnp.asarray(2.0))
  updates, state = tx.update(grads, state, params, value=jnp.asarray(0.0))
  assert float(state.learning_rate) == 0.0
  assert not np.any(np.asarray(updates))
  # With γ = 1 the step aims at L_min itself: a new lowest loss (L = L_min
  # after the min) gives exactly zero.
  tx = ohg.l4_mom(gamma=1.0, rule='paper')
  state = tx.init(params)
  _, state = tx.update(grads, state, params, value=jnp.asarray(2.0))
  _, state = tx.update(grads, state, params, value=jnp.asarray(1.0))
  assert float(state.learning_rate) == 0.0


@pytest.mark.parametrize('rule', ['robust', 'paper'])
def test_update_descends_along_the_gradient_estimate(rule):
  """The update the transformation returns satisfies ``-u·g ≥ 0`` for the
  gradient estimate ``g`` it holds, under heavy-tailed gradients and losses
  that rise and fall: L4 never steps against its own gradient estimate."""
  rng = np.random.default_rng(0)
  for variant in ('mom', 'adam'):
    tx = (VARIANTS if rule == 'robust' else PAPER)[variant]()
    params = jnp.zeros(20)
    state = tx.init(params)
    moved = 0
    for t in range(1, 200):
      g_raw = jnp.asarray(rng.standard_cauchy(20), jnp.float32)  # heavy tails
      loss = jnp.asarray(1.0 + rng.exponential(), jnp.float32)
      updates, state = tx.update(g_raw, state, params, value=loss)
      g = state.gradient_state.ema / (1 - 0.9**t)
      descent = -float(jnp.vdot(updates, g))
      assert descent >= 0.0, (variant, t, descent)
      moved += descent > 0
    assert moved > 100, (variant, moved)  # the steps are not all zero


def test_missing_value_says_how_to_pass_it():
  tx = optax.chain(optax.clip_by_global_norm(1.0), ohg.l4_adam())
  params = jnp.ones(3)
  state = tx.init(params)
  with pytest.raises(ValueError, match=r'value=loss'):
    tx.update(params, state, params)
  with pytest.raises(ValueError, match=r'value=loss'):
    tx.update(params, state, params, loss=1.0)  # misspelled


@pytest.mark.parametrize('kwargs,name', [
    ({'alpha': 0.0}, 'alpha'), ({'alpha': -0.1}, 'alpha'),
    ({'gamma': 1.5}, 'gamma'), ({'tau': 0.0}, 'tau'),
    ({'gamma_0': -1.0}, 'gamma_0'), ({'eps': float('nan')}, 'eps'),
    ({'b1': 1.0}, 'b1'),
])
def test_invalid_constants_raise(kwargs, name):
  with pytest.raises(ValueError, match=name):
    ohg.l4_mom(**kwargs)
  with pytest.raises(ValueError, match=name):
    ohg.l4_adam(**kwargs)


def test_non_finite_loss_skips_the_step():
  tx = ohg.l4_adam()
  params = jnp.ones(3)
  state = tx.init(params)
  _, state = tx.update(jnp.ones(3), state, params, value=jnp.asarray(1.0))
  for bad_loss, bad_grad in [(jnp.nan, jnp.ones(3)), (jnp.inf, jnp.ones(3)),
                             (1.0, jnp.array([1.0, jnp.nan, 1.0]))]:
    updates, new_state = tx.update(bad_grad, state, params,
                                   value=jnp.asarray(bad_loss))
    assert not np.any(np.asarray(updates))
    jax.tree.map(np.testing.assert_array_equal, new_state, state)


@pytest.mark.parametrize('rule', ['robust', 'paper'])
def test_negative_loss_never_steps_uphill(rule):
  tx = ohg.l4_mom(rule=rule)
  params = jnp.ones(2)
  state = tx.init(params)
  for loss in [-1.0, -2.0, -0.5]:
    updates, state = tx.update(jnp.ones(2), state, params,
                               value=jnp.asarray(loss))
    assert float(state.learning_rate) >= 0.0
    assert np.all(np.asarray(updates) <= 0.0)  # never against the gradient


def test_chained_and_in_flax_nnx_step():
  """value= passes through optax.chain and nnx.Optimizer.update."""

  class Model(nnx.Module):

    def __init__(self, rngs):
      self.linear = nnx.Linear(5, 1, rngs=rngs)

    def __call__(self, x):
      return self.linear(x)[:, 0]

  problem = problems.least_squares()
  x = jnp.asarray(problem.x, jnp.float32)
  y = jnp.asarray(problem.y, jnp.float32)
  make_tx = lambda: optax.chain(optax.clip_by_global_norm(10.0),
                                ohg.l4_mom())
  loss_of = lambda m: 0.5 * jnp.mean((m(x) - y) ** 2)

  losses, _, _ = nnx_helpers.run_nnx_and_optax(
      lambda: Model(nnx.Rngs(0)), make_tx, loss_of, 50,
      lambda loss, pure_loss: {'value': loss})
  assert losses[-1] < 0.5 * losses[0]


def test_scale_by_l4_is_strict_promotion_clean():
  """Our code under strict promotion, with a bias-free gradient estimate."""
  tx = ohg.scale_by_l4(optax.trace(0.9))
  params = {'a': jnp.ones(3, jnp.bfloat16), 'b': jnp.ones(2, jnp.float32)}
  with jax.numpy_dtype_promotion('strict'):
    state = tx.init(params)
    step = jax.jit(lambda g, s, p, v: tx.update(g, s, p, value=v))
    for _ in range(3):
      updates, state = step(params, state, params, jnp.asarray(1.0,
                                                                jnp.float16))
  assert updates['a'].dtype == jnp.bfloat16
  assert state.learning_rate.dtype == jnp.float32


def test_badly_conditioned_regression_short():
  """A short version of benchmarks/conditioning.py (Rolinek & Martius §3.1).

  3 problems, 3000 steps, a 13-point grid. What holds at this scale: both L4
  variants at their defaults end below the best constant-step SGD of the
  grid, from an initial loss near 1e4, with the robust rule (the default)
  and the paper's. The paper's claim of 1000x below the best Adam does not
  reproduce here (see docs/l4.md): L4 is level with it.
  """
  from benchmarks import conditioning  # pylint: disable=g-import-not-at-top

  def geo_final(name, grid=None):
    make_tx, default_grid = conditioning.METHODS[name]
    curves = conditioning.final_losses(
        make_tx, default_grid if grid is None else grid, [0, 1, 2], 3000)
    return np.exp(np.log(curves[:, :, -1]).mean(axis=0))

  best_sgd = np.nanmin(geo_final('sgd', np.logspace(-6, 0, 13)))
  for name in ('l4_mom', 'l4_adam', 'l4_mom_paper', 'l4_adam_paper'):
    final = geo_final(name)[0]
    assert final < 1e-4, name
    assert final < best_sgd, (name, final, best_sgd)


def test_l4_adam_keeps_two_moments_like_adam():
  """The first moment is held once (as g), not again inside the direction;
  the robust rule adds one parameter-sized buffer, its curvature probe."""
  params = {'w': jnp.zeros((100, 10)), 'b': jnp.zeros(10)}
  size = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  n = size(params)
  assert size(ohg.l4_adam(rule='paper').init(params)) - 2 * n < 20
  assert size(optax.adam(1e-3).init(params)) - 2 * n < 10
  assert size(ohg.l4_mom(rule='paper').init(params)) - n < 20
  assert size(ohg.l4_adam().init(params)) - 3 * n < 20  # a few scalars
  assert size(ohg.l4_mom().init(params)) - 2 * n < 20


def _run_study_problem(tx, problem, seed=0):
  """Final full loss and start of a whole run of a benchmarks problem."""
  key = jax.random.key(seed)
  params = problem.init(key)
  state = tx.init(params)

  @jax.jit
  def step(params, state, t):
    loss, grads = jax.value_and_grad(problem.loss)(
        params, jax.random.fold_in(key, t))
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  with jax.numpy_rank_promotion('allow'):  # the problem broadcasts a bias
    for t in range(problem.steps):
      params, state = step(params, state, t)
    return float(problem.full_loss(params)), float(
        problem.full_loss(problem.init(key)))


@pytest.mark.parametrize('floor', [0.6, 5.0, -5.0])
@pytest.mark.parametrize('variant', list(VARIANTS))
def test_defaults_converge_whatever_the_minimum(variant, floor):
  """Quadratics whose minimum is +0.6, +5 or −5: within 1e-3 of it at the
  defaults; the paper's rule stays far from it (it assumes a minimum of 0)."""
  from benchmarks import problems as study  # pylint: disable=g-import-not-at-top

  problem = study.quadratic(1.0, floor=floor, steps=1000)
  final, _ = _run_study_problem(VARIANTS[variant](), problem)
  assert abs(final - floor) < 1e-3, final
  paper, _ = _run_study_problem(PAPER[variant](), problem)
  assert not abs(paper - floor) < 1e-2, paper


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_defaults_survive_label_noise(variant):
  """Softmax regression on digits with 20% of the labels redrawn (a floor
  near 1): the defaults end within 2% of the best constant step of a 7-point
  SGD grid; the paper's rule ends above it (how far moves with the order
  of a sum: 1.09–1.31, measured)."""
  from benchmarks import problems as study  # pylint: disable=g-import-not-at-top

  problem = study.softmax_regression('digits', label_noise=0.2, steps=500)
  best = min(_run_study_problem(optax.sgd(lr), problem)[0]
             for lr in (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0))
  final, start = _run_study_problem(VARIANTS[variant](), problem)
  assert final < 1.02 * best, (final, best)
  paper, _ = _run_study_problem(PAPER[variant](), problem)
  assert paper > 1.03 * best, (paper, best)


@pytest.mark.parametrize('value,what', [
    (jnp.ones(4), 'shape'), ((1.0, {'acc': 0.5}), 'tuple'),
    (jnp.asarray(1.0 + 0j), 'complex'), ('1.0', 'str')])
def test_value_must_be_a_real_scalar(value, what):
  tx = ohg.l4_mom()
  params = jnp.ones(4)
  state = tx.init(params)
  with pytest.raises(ValueError, match=rf'value=.*{what}'):
    tx.update(params, state, params, value=value)


def test_gap_is_back_calculated_while_the_cap_binds():
  """One step with the cap binding: the gap becomes the one whose step the
  cap allows, ``limit·g·v/α − (L − best)``, within ``[0.95, 1]×`` its
  previous value (here strictly inside, so every term counts)."""
  alpha, kappa, best, loss = 0.15, 1e3, 1.0, 1.5
  tx = ohg.l4_mom(alpha=alpha, noise_power=0.0, eps=0.0)
  gap = 0.5 * np.exp(-0.02)  # the gap after a step that sets no new best
  limit = 1.9 / kappa  # 1.9 g·v / (κ ‖v‖²) with v = g
  g_sq = (0.97 * gap + (loss - best)) * alpha / limit  # fitted = 0.97 gap
  g = jnp.full(2, np.sqrt(g_sq / 2), jnp.float32)
  params = jnp.zeros(2)
  state = tx.init(params)
  _, state = tx.update(g, state, params, value=jnp.asarray(2.0))
  state = state._replace(
      min_loss=jnp.asarray(best), gap=jnp.asarray(0.5),
      curvature=state.curvature._replace(num=jnp.asarray(kappa),
                                         den=jnp.asarray(1.0)))
  updates, state = tx.update(g, state, params, value=jnp.asarray(loss))
  assert float(state.learning_rate) == pytest.approx(limit, rel=1e-5)
  np.testing.assert_allclose(updates, -limit * g, rtol=1e-5)
  assert float(state.gap) == pytest.approx(0.97 * gap, rel=1e-4)


def test_gap_is_kept_at_least_the_loss_trend():
  """A loss that keeps falling under noise (a new lowest loss is rare, so
  the gap alone would decay ×e^-0.02 a step) keeps a gap of at least its
  recent fall, ``min(L̄_0.99 − L̄_0.9, 3(L̄_0.9 − best))``, as a plain
  transcription with ordinary averages of the loss computes it (the
  package keeps them as heights above the best loss). The loss sits near 5,
  so the averages must follow each new best exactly."""
  rng = np.random.default_rng(0)
  steps = 400
  losses = (5.0 + 1.0 / (1.0 + 0.01 * np.arange(steps))
            + 0.05 * rng.normal(size=steps))
  with jax.enable_x64(True):
    g = jnp.ones(3, jnp.float64)  # constant: no curvature, the cap never binds
    tx = ohg.l4_mom()
    params = jnp.zeros(3, jnp.float64)
    state = tx.init(params)
    gaps = []
    for loss in losses:
      _, state = tx.update(g, state, params, value=jnp.asarray(loss))
      gaps.append(float(state.gap))
  best = fast = slow = gap = 0.0
  expected, floor_binds = [], 0
  for t, loss in enumerate(losses):
    if t == 0:
      best, fast, slow = loss, loss, loss
      gap = (1 - 0.9 * 0.75) * abs(loss)
    else:
      gap *= np.exp(0.05 if loss < best else -0.02)
      best = min(best, loss)
      fast = 0.9 * fast + 0.1 * loss
      slow = 0.99 * slow + 0.01 * loss
      floor = min(slow - fast, 3 * (fast - best))
      floor_binds += floor > gap
      gap = max(gap, floor)
    expected.append(gap)
  np.testing.assert_allclose(gaps, expected, rtol=1e-9)
  assert floor_binds > 50
  assert expected[-1] > 0.05  # without the floor: 0.006 here
