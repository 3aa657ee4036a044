"""Small problems for choosing and checking defaults, beyond the suite's tasks.

Each problem is deterministic or minibatch-noisy, with a known or measured
floor, at several loss scales: what a default must survive without being
told the problem. Every problem is a ``Problem``: ``init()`` the start,
``loss(params, key)`` the (minibatch) loss a step sees, ``full_loss(params)``
the objective the result is judged by.
"""

from collections.abc import Callable
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Problem:
  """A training problem a whole run can ``vmap`` over settings and seeds.

  Attributes:
    name: a short name for tables.
    init: ``init(key) -> params``.
    loss: ``loss(params, key) -> scalar``: what one step differentiates.
    full_loss: ``full_loss(params) -> scalar``: what the run is judged by.
    steps: the run's length.
    tol: for the alias-test problems, Optax's tolerance on the parameters.
    solution: the minimizer, where it is known.
    spike: ``(step, factor)``: the gradient of that step is multiplied by
      ``factor`` (a single outlier batch), or None.
    epoch_steps: for minibatches drawn epoch-wise (a fresh permutation of
      the data per epoch, as training loops draw them), the steps per
      epoch: ``loss`` then takes ``(epoch_key, step_in_epoch)`` for its key.
  """

  name: str
  init: Callable[[jax.Array], Any]
  loss: Callable[[Any, jax.Array], jax.Array]
  full_loss: Callable[[Any], jax.Array]
  steps: int
  tol: float | None = None
  solution: Any = None
  spike: tuple[int, float] | None = None
  epoch_steps: int | None = None


def _indices(key, n, batch):
  """A minibatch's indices: ``batch`` draws with replacement from ``key``,
  or, for ``key = (epoch_key, j)``, the ``j``-th slice of that epoch's
  permutation (no example twice in an epoch)."""
  if isinstance(key, tuple):
    epoch_key, j = key
    perm = jax.random.permutation(epoch_key, n)
    return jax.lax.dynamic_slice(perm, (j * batch,), (batch,))
  return jax.random.randint(key, (batch,), 0, n)


def _epochwise(name, n, batch, epochwise):
  """``(name, epoch_steps)`` of a minibatch problem."""
  if not epochwise:
    return name, None
  return name + '_epochwise', n // batch


def _deterministic(name, f, w0, steps, **kw):
  return Problem(name, lambda key: w0, lambda p, key: f(p), f, steps, **kw)


def parabola():
  """Optax's alias-test parabola, from its start."""
  target = jnp.array([1.0, -1.0, 1.0])
  f = lambda w: jnp.sum((w - target) ** 2)
  return _deterministic('parabola', f, jnp.array([-1.0, 10.0, 1.0]), 10_000,
                        tol=3e-2, solution=target)


def rosenbrock():
  """Optax's alias-test Rosenbrock (a = 1, b = 100) from (0, 0)."""
  f = lambda w: (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2
  return _deterministic('rosenbrock', f, jnp.zeros(2), 10_000, tol=3e-2,
                        solution=jnp.ones(2))


def quadratic(scale=1.0, noise=0.0, floor=0.0, steps=2000):
  """20 curvatures log-spaced over 1e-2..10, times ``scale``; minimum
  ``floor`` at w = 1; with ``noise``, each step's gradient gets Gaussian
  noise of that standard deviation (times ``scale``)."""
  lam = scale * jnp.logspace(-2, 1, 20)

  def f(w):
    return 0.5 * jnp.sum(lam * (w - 1.0) ** 2) + floor

  def loss(w, key):
    xi = jax.random.normal(key, w.shape)
    return f(w) + scale * noise * jnp.dot(jax.lax.stop_gradient(xi), w)

  name = f'quad_c{scale:g}' + (f'_noise{noise:g}' if noise else '') + (
      f'_floor{floor:g}' if floor else '')
  return Problem(name, lambda key: jnp.zeros(20), loss, f, steps,
                 solution=jnp.ones(20))


def _softmax_loss(params, x, y, l2):
  logits = x @ params['w'] + params['b']
  nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits),
                                      y[:, None], axis=1))
  return nll + 0.5 * l2 * jnp.sum(params['w'] ** 2)


@functools.cache
def _dataset(name):
  from sklearn import datasets  # pylint: disable=g-import-not-at-top

  if name == 'digits':
    d = datasets.load_digits()
    x = d.data / 16.0
  else:
    d = datasets.load_breast_cancer()
    x = (d.data - d.data.mean(0)) / d.data.std(0)
  return x.astype(np.float32), d.target.astype(np.int32)


def softmax_regression(dataset='digits', l2=1e-3, scale=1.0, batch=None,
                       label_noise=0.0, steps=2000, epochwise=False):
  """Softmax regression on a dataset scikit-learn ships, full batch or in
  minibatches; ``scale`` multiplies the loss; ``label_noise`` re-draws that
  fraction of the labels at random once (a loss floor well above 0)."""
  x, y = _dataset(dataset)
  if label_noise:
    rng = np.random.default_rng(0)
    flip = rng.random(len(y)) < label_noise
    y = np.where(flip, rng.integers(0, y.max() + 1, len(y)), y)
  x, y = jnp.asarray(x), jnp.asarray(y)
  k = int(y.max()) + 1
  full = lambda p: scale * _softmax_loss(p, x, y, l2)

  def loss(p, key):
    if batch is None:
      return full(p)
    idx = _indices(key, x.shape[0], batch)
    return scale * _softmax_loss(p, x[idx], y[idx], l2)

  init = lambda key: {'b': jnp.zeros(k), 'w': jnp.zeros((x.shape[1], k))}
  name = f'softmax_{dataset}' + (f'_b{batch}' if batch else '') + (
      f'_c{scale:g}' if scale != 1 else '') + (
          f'_noise{label_noise:g}' if label_noise else '')
  name, epoch_steps = _epochwise(name, x.shape[0], batch, epochwise)
  return Problem(name, init, loss, full, steps, epoch_steps=epoch_steps)


def mlp(depth=2, width=64, batch=32, scale=1.0, steps=2000,
        epochwise=False):
  """A ReLU MLP on scikit-learn's digits, minibatches of ``batch``."""
  x, y = (jnp.asarray(a) for a in _dataset('digits'))
  sizes = [x.shape[1]] + [width] * depth + [10]

  def init(key):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
      key, k = jax.random.split(key)
      params[f'w{i}'] = jax.random.normal(k, (n_in, n_out)) * jnp.sqrt(
          2.0 / n_in)
      params[f'b{i}'] = jnp.zeros(n_out)
    return params

  def apply(p, xb):
    for i in range(len(sizes) - 1):
      xb = xb @ p[f'w{i}'] + p[f'b{i}']
      if i < len(sizes) - 2:
        xb = jax.nn.relu(xb)
    return xb

  def nll(p, xb, yb):
    logp = jax.nn.log_softmax(apply(p, xb))
    return -scale * jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

  def loss(p, key):
    idx = _indices(key, x.shape[0], batch)
    return nll(p, x[idx], y[idx])

  name = f'mlp{depth}x{width}_b{batch}' + (f'_c{scale:g}' if scale != 1
                                           else '')
  name, epoch_steps = _epochwise(name, x.shape[0], batch, epochwise)
  return Problem(name, init, loss, lambda p: nll(p, x, y), steps,
                 epoch_steps=epoch_steps)


def least_squares(batch=16, noise=0.5, steps=2000, epochwise=False):
  """Linear regression with noisy targets in minibatches: floor ≈ noise²/2."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=(512, 30)) * np.logspace(0, -1.5, 30)
  w_true = rng.normal(size=30)
  y = x @ w_true + noise * rng.normal(size=512)
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  full = lambda w: 0.5 * jnp.mean((x @ w - y) ** 2)

  def loss(w, key):
    idx = _indices(key, x.shape[0], batch)
    return 0.5 * jnp.mean((x[idx] @ w - y[idx]) ** 2)

  name, epoch_steps = _epochwise(f'lsq_b{batch}', x.shape[0], batch,
                                 epochwise)
  return Problem(name, lambda key: jnp.zeros(30), loss, full, steps,
                 epoch_steps=epoch_steps)


def spike(problem, at=200, factor=1000.0):
  """``problem`` with one step's gradient ``factor``× (at step ``at``)."""
  return dataclasses.replace(problem, name=problem.name + '_spike',
                             spike=(at, factor))


def study_problems():
  """The problems defaults are chosen on: scales, noise, floors, depths."""
  quad = [quadratic(c) for c in (1e-3, 1.0, 1e3)]
  return quad + [
      quadratic(1.0, noise=0.3),
      quadratic(1.0, floor=5.0),
      spike(quadratic(1.0)),
      parabola(),
      rosenbrock(),
      softmax_regression('digits'),
      softmax_regression('breast_cancer'),
      softmax_regression('digits', scale=100.0),
      softmax_regression('digits', batch=32, label_noise=0.2),
      least_squares(),
      mlp(2, 64, 32),
      mlp(6, 32, 32),
      mlp(2, 64, 32, scale=0.01),
  ]


def epochwise_problems():
  """The minibatch problems of :func:`study_problems` drawn as training
  loops draw them, a permutation per epoch: consecutive batches are then
  negatively correlated, which biases HD's cosine downward."""
  return [
      softmax_regression('digits', batch=32, label_noise=0.2,
                         epochwise=True),
      least_squares(epochwise=True),
      mlp(2, 64, 32, epochwise=True),
      mlp(6, 32, 32, epochwise=True),
  ]
