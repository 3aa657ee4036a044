"""Choosing a hyperparameter by short trial runs, all in one program.

Donini et al. (2020, end of §4) choose MARTHE's hyper-learning rate by
starting high and dividing it until the run no longer diverges. This module
runs that procedure for any method: the first ``K`` steps of every candidate
setting, as one jitted program vmapped over the candidates, and the setting
with the lowest loss at step ``K`` among those that did not diverge.
"""

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import base


class Selection(NamedTuple):
  """What :func:`select_hyperparams` chose, and why.

  Attributes:
    best: the chosen setting, ``{name: value}``; pass it on as
      ``make_optimizer(**best)``.
    table: one row per candidate, in the order tried: its settings, ``loss``
      (the mean loss over the given batches at the params after ``K`` steps)
      and ``diverged`` (a loss went non-finite, or ended above the start).
  """

  best: dict[str, float]
  table: list[dict[str, Any]]


def decimated(start: float, count: int = 5, factor: float = 10.0
              ) -> tuple[float, ...]:
  """``count`` values from ``start`` down, each ``factor`` below the last.

  Examples:
    >>> import optax_hypergrad as ohg
    >>> ohg.decimated(0.1, 3)
    (0.1, 0.01, 0.001)
  """
  if count < 1:
    raise ValueError(f'count must be >= 1, got {count}')
  if not factor > 1:
    raise ValueError(f'factor must be > 1, got {factor}')
  return tuple(float(start / factor**i) for i in range(count))


def _check(candidates):
  if not candidates:
    raise ValueError(
        'candidates is empty: give at least one hyperparameter and its '
        "values, e.g. {'hypergrad_lr': ohg.decimated(0.1)}")
  for name, values in candidates.items():
    if len(values) == 0:  # pylint: disable=g-explicit-length-test
      raise ValueError(f'candidates[{name!r}] is empty: give it values')
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
      raise ValueError(f'candidates[{name!r}] must be finite numbers, got '
                       f'{values!r}')


def select_hyperparams(
    make_optimizer: Callable[..., base.GradientTransformation],
    candidates: Mapping[str, Sequence[float]],
    loss_fn: Callable[[base.Params, Any], jax.Array],
    params: base.Params,
    batches: Any,
) -> Selection:
  r"""Runs the first steps of each candidate setting; returns the best one.

  Every combination of ``candidates`` (their Cartesian product) trains from
  ``params`` for ``K`` steps, step :math:`t` on batch :math:`t` of
  ``batches``, as ONE compiled program vmapped over the combinations. Each
  ends with its loss averaged over all ``K`` batches; a combination whose
  loss goes non-finite, or ends above the loss at the start, is marked
  diverged and never chosen; the lowest loss among the others wins. Decimated
  candidates (:func:`decimated`) implement the procedure of Donini et al.:
  from a high value down, keep what does not diverge.

  The update receives ``value=`` (the batch loss) and ``value_fn=`` (the
  batch loss as a function of the params), so the procedure serves every
  method of the package: HD's ``hypergrad_lr``, MARTHE's ``kappa``, L4's
  ``alpha``, any initial ``learning_rate``.

  Args:
    make_optimizer: builds the transformation from keyword hyperparameters,
      e.g. :func:`sgd_hd` or ``functools.partial(ohg.marthe, base='adam')``.
      It receives traced scalars, as under ``optax.inject_hyperparams``.
    candidates: ``{name: values}`` for the keywords of ``make_optimizer``.
    loss_fn: ``loss_fn(params, batch) -> scalar``, the training loss.
    params: the initial parameters (the same for every candidate).
    batches: a pytree whose leaves have a leading axis of length ``K``, the
      number of steps each candidate runs.

  Returns:
    A :class:`Selection`: the chosen setting and the per-candidate table.

  Raises:
    ValueError: when ``candidates`` (or one of its value lists) is empty, or
      the loss at ``params`` on the first batch is not finite.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import optax_hypergrad as ohg
    >>> w_true = jnp.array([1.0, -2.0, 0.5])
    >>> loss_fn = lambda w, x: jnp.mean((x @ (w - w_true)) ** 2)
    >>> batches = jax.random.normal(jax.random.key(0), (50, 8, 3))
    >>> sel = ohg.select_hyperparams(
    ...     ohg.sgd_hd, {'learning_rate': ohg.decimated(10.0, 4)},
    ...     loss_fn, jnp.zeros(3), batches)
    >>> sel.best
    {'learning_rate': 1.0}
    >>> [row['diverged'] for row in sel.table]
    [True, False, False, False]

  References:
    Donini et al, `Scheduling the Learning Rate via Hypergradients: New
    Insights and a New Algorithm <https://arxiv.org/abs/1910.08525>`_, 2020
  """
  _check(candidates)
  names = list(candidates)
  combos = list(itertools.product(*(candidates[n] for n in names)))

  def run(hparams):
    tx = base.with_extra_args_support(
        make_optimizer(**dict(zip(names, hparams, strict=True))))

    def step(carry, batch):
      p, state, ok = carry
      value_fn = lambda q: loss_fn(q, batch)
      loss, grads = jax.value_and_grad(value_fn)(p)
      updates, state = tx.update(grads, state, p, value=loss,
                                 value_fn=value_fn)
      return (optax.apply_updates(p, updates), state,
              ok & jnp.isfinite(loss)), loss

    (p, _, ok), losses = jax.lax.scan(
        step, (params, tx.init(params), True), batches)
    loss = jnp.mean(jax.vmap(lambda b: loss_fn(p, b))(batches))
    # losses[0] is the loss at the initial params on the first batch
    return loss, ok & jnp.isfinite(loss), losses[0]

  hs = tuple(jnp.asarray([c[i] for c in combos], jnp.float32)
             for i in range(len(names)))
  # One program: the start loss comes out of it too (an eager evaluation
  # would compile op by op, which cost seconds on the first call).
  losses, ok, first = jax.jit(jax.vmap(lambda *h: run(h)))(*hs)
  start = float(first[0])
  if not np.isfinite(start):
    raise ValueError(
        f'the loss at the initial params is {start} on the first batch: '
        'selection needs a finite starting loss')
  losses, ok = np.asarray(losses, np.float64), np.asarray(ok)
  diverged = ~ok | ~(losses <= start)
  table = [dict(zip(names, map(float, c), strict=True),
                loss=float(loss), diverged=bool(d))
           for c, loss, d in zip(combos, losses, diverged, strict=True)]
  if diverged.all():
    raise ValueError(
        'every candidate diverged (see the table in this message); try '
        f'smaller values: {table}')
  best = int(np.argmin(np.where(diverged, np.inf, losses)))
  return Selection(dict(zip(names, map(float, combos[best]), strict=True)),
                   table)
