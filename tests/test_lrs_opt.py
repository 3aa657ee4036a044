"""LRS-OPT: the reverse-mode schedule gradient and the optimized schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg


def _mlp_problem(steps=40, batch=16, seed=0, dtype=jnp.float32):
  """A small MLP on a fixed synthetic stream, with a held-out objective."""
  rng = np.random.default_rng(seed)
  w_true = rng.normal(size=(8, 3))
  def data(n):
    x = rng.normal(size=(n, 8)).astype(dtype)
    return x, np.argmax(x @ w_true + 0.3 * rng.normal(size=(n, 3)), -1)
  xs, ys = data(steps * batch)
  batches = (jnp.asarray(xs.reshape(steps, batch, 8)),
             jnp.asarray(ys.reshape(steps, batch)))
  x_val, y_val = (jnp.asarray(a) for a in data(256))
  k1, k2 = jax.random.split(jax.random.key(seed))
  params = {'w1': 0.3 * jax.random.normal(k1, (8, 16), dtype),
            'w2': 0.3 * jax.random.normal(k2, (16, 3), dtype)}

  def loss_fn(params, batch):
    x, y = batch
    logits = jnp.tanh(x @ params['w1']) @ params['w2']
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  return params, batches, loss_fn, lambda p: loss_fn(p, (x_val, y_val))


@pytest.mark.parametrize('direction', [None, optax.trace(0.9)],
                         ids=['sgd', 'momentum'])
def test_schedule_gradient_matches_finite_differences(direction):
  with jax.enable_x64(True):
    params, batches, loss_fn, objective = _mlp_problem(steps=10,
                                                       dtype=jnp.float64)
    f = lambda s: ohg.unrolled_objective(s, params, batches, loss_fn,
                                         objective, direction)
    schedule = jnp.linspace(0.3, 0.1, 10, dtype=jnp.float64)
    grad = jax.grad(f)(schedule)
    eps = 1e-6
    for t in (0, 4, 9):
      e = jnp.zeros(10).at[t].set(eps)
      fd = (f(schedule + e) - f(schedule - e)) / (2 * eps)
      np.testing.assert_allclose(grad[t], fd, rtol=1e-5)


@pytest.mark.standard_promotion  # the default meta-optimizer is optax.adam
def test_lowers_the_final_objective_of_a_small_mlp():
  params, batches, loss_fn, objective = _mlp_problem()
  initial = jnp.full(40, 0.1)
  result = ohg.lrs_opt(initial, params, batches, loss_fn, objective,
                       iterations=40)
  assert result.objective.shape == (41,)
  assert float(result.objective[-1]) < 0.8 * float(result.objective[0])
  assert float(result.schedule.min()) >= 0.0
  assert float(jnp.ptp(result.schedule)) > 0.05  # no longer constant
  # The reported objective is that of a real run with the final schedule.
  again = ohg.unrolled_objective(result.schedule, params, batches, loss_fn,
                                 objective)
  np.testing.assert_allclose(float(again), float(result.objective[-1]),
                             rtol=1e-5)


def test_invalid_schedule_shape():
  with pytest.raises(ValueError, match='schedule'):
    ohg.lrs_opt(jnp.ones((2, 2)), jnp.zeros(2), jnp.zeros((2, 2)),
                lambda p, b: jnp.sum(p), jnp.sum)


@pytest.mark.parametrize('momentum', [0.0, 0.9], ids=['sgd', 'momentum'])
@pytest.mark.parametrize('kind', ['constant', 'rising', 'random'])
def test_unrolled_objective_is_an_independent_numpy_loop(momentum, kind):
  """The unrolled run against a plain NumPy loop written from the update
  (v ← μ v + g, w ← w − η_t v): a momentum state that is not carried, or a
  schedule shifted by one step, changes the objective well above 1e-10."""
  rng = np.random.default_rng(3)
  steps, batch, dim = 12, 8, 5
  xs = rng.normal(size=(steps, batch, dim))
  ys = xs @ rng.normal(size=dim) + 0.1 * rng.normal(size=(steps, batch))
  x_val = rng.normal(size=(64, dim))
  y_val = x_val @ rng.normal(size=dim)
  schedule = {'constant': np.full(steps, 0.05),
              'rising': np.linspace(0.01, 0.1, steps),
              'random': rng.uniform(0.0, 0.1, steps)}[kind]
  w = np.zeros(dim)
  v = np.zeros(dim)
  for t in range(steps):
    g = xs[t].T @ (xs[t] @ w - ys[t]) / batch
    v = momentum * v + g
    w = w - schedule[t] * v
  expected = 0.5 * np.mean((x_val @ w - y_val) ** 2)
  with jax.enable_x64(True):
    loss_fn = lambda p, b: 0.5 * jnp.mean((b[0] @ p - b[1]) ** 2)
    got = ohg.unrolled_objective(
        jnp.asarray(schedule), jnp.zeros(dim), (jnp.asarray(xs),
                                                jnp.asarray(ys)),
        loss_fn, lambda p: loss_fn(p, (jnp.asarray(x_val),
                                       jnp.asarray(y_val))),
        None if momentum == 0 else optax.trace(momentum))
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def _clamp_problem():
  target = jnp.array([1.0, -2.0])
  loss_fn = lambda w, batch: jnp.sum(batch * (w - target) ** 2)
  batches = jnp.tile(jnp.array([1.0, 10.0]), (20, 1))
  return loss_fn, batches


def test_schedule_is_clamped_at_zero():
  """An objective that any step makes worse (the distance from the start)
  pushes every rate below 0 in one meta-step: each is clamped to 0."""
  loss_fn, batches = _clamp_problem()
  result = ohg.lrs_opt(jnp.full(20, 0.01), jnp.zeros(2), batches, loss_fn,
                       lambda w: jnp.sum(w ** 2), iterations=2,
                       meta_optimizer=optax.sgd(0.1))
  np.testing.assert_array_equal(result.schedule, np.zeros(20))
  assert float(result.objective[-1]) == 0.0


def test_non_finite_meta_gradient_skips_the_meta_step():
  """A meta-learning rate of 1 sends the schedule where the unrolled run
  overflows (objective NaN); the gradient there is NaN, and the schedule
  keeps its last finite value instead of turning NaN."""
  loss_fn, batches = _clamp_problem()
  result = ohg.lrs_opt(jnp.full(20, 0.09), jnp.zeros(2), batches, loss_fn,
                       lambda w: loss_fn(w, batches[0]), iterations=3,
                       meta_optimizer=optax.sgd(1.0))
  assert not bool(jnp.all(jnp.isfinite(result.objective)))  # it overflowed
  assert bool(jnp.all(jnp.isfinite(result.schedule)))
