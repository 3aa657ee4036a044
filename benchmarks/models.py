"""Models of the papers' experiments, each an ``init(key) -> params`` and an
``apply(params, x) -> logits`` pair that a whole training run can ``vmap``.

MLPs are plain JAX (params are dicts of arrays); the MNIST-1D 1-D CNN is a
Flax Linen module. The paper-scale CIFAR models live in ``benchmarks.cifar``.
"""

from collections.abc import Callable
import functools
from typing import Any, NamedTuple

from flax import linen as nn
import jax
import jax.numpy as jnp


class Model(NamedTuple):
  """``init(key) -> params`` and ``apply(params, x) -> logits``."""

  init: Callable[[jax.Array], Any]
  apply: Callable[[Any, jax.Array], jax.Array]


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
    x = x @ params[f'w{i}'] + params[f'b{i}'][None, :]
    if i < n - 1:
      x = jax.nn.relu(x)
  return x


def mlp(sizes) -> Model:
  return Model(functools.partial(mlp_init, sizes=sizes), mlp_apply)


class StridedConv1D(nn.Module):
  """A 'SAME'-padded strided 1-D convolution as patches times a ``Dense``.

  The same function as ``nn.Conv``; written as one matmul because
  ``vmap`` over seeds turns ``nn.Conv`` into a grouped convolution that
  XLA:CPU ran ~10× slower here, while a batched matmul stays fast.
  """

  features: int
  kernel: int
  stride: int = 2

  @nn.compact
  def __call__(self, x):  # (batch, length, channels)
    length = x.shape[1]
    out = -(-length // self.stride)
    total_pad = max((out - 1) * self.stride + self.kernel - length, 0)
    x = jnp.pad(x, ((0, 0), (total_pad // 2, total_pad - total_pad // 2),
                    (0, 0)))
    span = (out - 1) * self.stride + 1
    patches = jnp.concatenate(
        [x[:, i:i + span:self.stride] for i in range(self.kernel)], axis=-1)
    return nn.Dense(self.features)(patches)


class CNN1D(nn.Module):
  """A small 1-D CNN for MNIST-1D: three strided convolutions, one dense.

  Greydanus (2020) uses a CNN of this shape (3 conv layers, 25 channels);
  32 channels and stride 2 here, 8,010 parameters.
  """

  channels: int = 32

  @nn.compact
  def __call__(self, x):
    x = x[..., None]  # (batch, length, 1 channel)
    for kernel in (5, 3, 3):
      x = nn.relu(StridedConv1D(self.channels, kernel)(x))
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


def cnn1d(length: int = 40) -> Model:
  module = CNN1D()
  init = lambda key: module.init(key, jnp.zeros((1, length)))['params']
  return Model(init, lambda params, x: module.apply({'params': params}, x))


def softmax_cross_entropy(logits, y):
  return jnp.mean(
      jax.nn.logsumexp(logits, axis=-1)
      - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
  )


def cross_entropy(params, x, y, apply=mlp_apply):
  return softmax_cross_entropy(apply(params, x), y)


def accuracy(params, x, y, apply=mlp_apply):
  return jnp.mean(jnp.argmax(apply(params, x), axis=-1) == y)


# Architectures of the papers: logistic regression (the HD papers), the
# 784-1000-1000-10 MLP (the ICLR 2019 HD study), the 784-300-100-10 MLP
# (Rolinek & Martius), the 3x500 MLP (Donini et al. §5); MNIST-1D's MLP and
# 1-D CNN.
ARCHITECTURES = {
    'logreg': mlp((784, 10)),
    'mlp': mlp((784, 300, 100, 10)),
    'mlp_large': mlp((784, 1000, 1000, 10)),
    'mlp_3x500': mlp((784, 500, 500, 500, 10)),
    'mnist1d_mlp': mlp((40, 100, 100, 10)),
    'mnist1d_cnn': cnn1d(40),
}
