"""Plain-JAX models of the papers' experiments (params are dicts of arrays)."""

import jax
import jax.numpy as jnp


def mlp_init(key, sizes):
  """Glorot-uniform weights, zero biases, for layer ``sizes`` (in, ..., out)."""
  params = {}
  keys = jax.random.split(key, len(sizes) - 1)
  layers = zip(keys, sizes[:-1], sizes[1:], strict=True)
  for i, (k, n_in, n_out) in enumerate(layers):
    lim = jnp.sqrt(6.0 / (n_in + n_out))
    params[f'w{i}'] = jax.random.uniform(k, (n_in, n_out), jnp.float32, -lim,
                                         lim)
    params[f'b{i}'] = jnp.zeros((n_out,), jnp.float32)
  return params


def mlp_apply(params, x):
  """ReLU MLP; with one layer it is multinomial logistic regression."""
  n = len(params) // 2
  for i in range(n):
    x = x @ params[f'w{i}'] + params[f'b{i}']
    if i < n - 1:
      x = jax.nn.relu(x)
  return x


def cross_entropy(params, x, y):
  logits = mlp_apply(params, x)
  return jnp.mean(
      jax.nn.logsumexp(logits, axis=-1)
      - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
  )


def accuracy(params, x, y):
  return jnp.mean(jnp.argmax(mlp_apply(params, x), axis=-1) == y)


# Architectures of the seeds: logistic regression (seeds 000/001), the
# 784-1000-1000-10 MLP (seed 000), the 784-300-100-10 MLP (seed 003).
ARCHITECTURES = {
    'logreg': (784, 10),
    'mlp': (784, 300, 100, 10),
    'mlp_large': (784, 1000, 1000, 10),
    'mnist1d_mlp': (40, 100, 100, 10),
}
