"""Small deterministic problems with JAX losses and independent NumPy grads."""

import dataclasses

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class Problem:
  """A model with params ``{'b': (), 'w': (d,)}`` on fixed data.

  ``flat`` order is the tree order: ``b`` first, then ``w``.
  """

  name: str
  x: np.ndarray
  y: np.ndarray

  def init(self, dtype=jnp.float32):
    d = self.x.shape[1]
    w0 = np.linspace(-0.5, 0.5, d)
    return {'b': jnp.asarray(0.1, dtype), 'w': jnp.asarray(w0, dtype)}

  @staticmethod
  def flat(params) -> np.ndarray:
    flat = [np.ravel(params['b']), np.ravel(params['w'])]
    return np.concatenate(flat).astype(np.float64)

  def groups(self):
    """One index group per leaf, in tree order."""
    return [np.array([0]), np.arange(1, 1 + self.x.shape[1])]

  def loss(self, params, x=None, y=None):
    x = jnp.asarray(self.x if x is None else x, params['w'].dtype)
    y = jnp.asarray(self.y if y is None else y, params['w'].dtype)
    z = x @ params['w'] + params['b']
    if self.name == 'least_squares':
      return 0.5 * jnp.mean((z - y) ** 2)
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z)

  def grad_np(self, flat: np.ndarray) -> np.ndarray:
    return self.loss_grad_np(flat)[1]

  def loss_grad_np(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
    b, w = flat[0], flat[1:]
    z = self.x @ w + b
    if self.name == 'least_squares':
      r = z - self.y
      loss = 0.5 * np.mean(r**2)
    else:
      loss = np.mean(np.logaddexp(0.0, z) - self.y * z)
      r = 1.0 / (1.0 + np.exp(-z)) - self.y
    n = len(self.y)
    return loss, np.concatenate([[r.mean()], self.x.T @ r / n])

  def grad_hess_np(self, flat: np.ndarray):
    """The gradient and the Hessian, analytically, in flat order."""
    a = np.concatenate([np.ones((len(self.y), 1)), self.x], axis=1)
    if self.name == 'least_squares':
      weights = np.ones(len(self.y))
    else:
      p = 1.0 / (1.0 + np.exp(-(a @ flat)))
      weights = p * (1 - p)
    return self.grad_np(flat), (a.T * weights) @ a / len(self.y)


def least_squares(n=32, d=5, seed=0) -> Problem:
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  y = x @ rng.normal(size=d) + 0.1 * rng.normal(size=n) + 0.3
  return Problem('least_squares', x, y)


def logistic(n=32, d=5, seed=1) -> Problem:
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  y = (x @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
  return Problem('logistic', x, y)


PROBLEMS = (least_squares, logistic)
