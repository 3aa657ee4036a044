"""Reading the live learning rate out of any optimizer state."""

from typing import Any

import jax
from optax._src import base

from optax_hypergrad._src import hypergradient
from optax_hypergrad._src import l4
from optax_hypergrad._src import marthe

STATES = (hypergradient.ScaleByHypergradientState, l4.ScaleByL4State,
          marthe.ScaleByMartheState)


def live_learning_rate(state: base.OptState) -> Any:
  """The rate the last step of this package's transformation used.

  Finds the transformation's state wherever a wrapper put it — inside
  ``optax.chain``, ``optax.inject_hyperparams`` (whose
  ``hyperparams['learning_rate']`` is the initial rate, not the live one),
  ``optax.MultiSteps``, ``optax.masked``, ``optax.multi_transform`` or a
  Flax ``nnx.Optimizer`` (pass ``nnx.as_pure(optimizer.opt_state)``) — and
  returns its ``learning_rate`` field: a scalar, or a tree of scalars with
  ``per_leaf=True``. L4's is its effective rate ``η``.

  Args:
    state: an optimizer state holding exactly one of the package's rates.

  Returns:
    The live rate.

  Raises:
    ValueError: the state holds none of the package's transformations, or
      more than one (then read each from its own part of the state).

  Examples:
    >>> import jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> tx = optax.inject_hyperparams(ohg.sgd_hd)(learning_rate=0.01)
    >>> state = tx.init(jnp.zeros(2))
    >>> print(ohg.live_learning_rate(state))
    0.01
  """
  found = [s for s in jax.tree.leaves(
      state, is_leaf=lambda x: isinstance(x, STATES)) if isinstance(s, STATES)]
  if len(found) != 1:
    what = 'none' if not found else f'{len(found)}: ' + ', '.join(
        type(s).__name__ for s in found)
    raise ValueError(
        'live_learning_rate needs a state holding exactly one of '
        f'optax_hypergrad\'s transformations; this one holds {what}.')
  return found[0].learning_rate
