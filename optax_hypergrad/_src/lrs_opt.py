"""LRS-OPT: the offline optimized learning-rate schedule (Donini et al. §5).

The whole schedule ``η_0..η_{T-1}`` of a training run is one vector,
optimized by gradient descent on the final objective ``E(w_T)``, its gradient
taken in reverse mode through the unrolled run (``jax.grad`` through
``lax.scan``). Costly and exact: a reference for the online methods.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from optax_hypergrad._src import checks


class LrsOptResult(NamedTuple):
  """What :func:`lrs_opt` returns.

  Attributes:
    schedule: the optimized schedule, shape ``(T,)``.
    objective: ``E(w_T)`` before each meta-iteration and after the last,
      shape ``(iterations + 1,)``.
  """

  schedule: jax.Array
  objective: jax.Array


def unrolled_objective(
    schedule: jax.Array,
    params: base.Params,
    batches: Any,
    loss_fn: Callable[[base.Params, Any], jax.Array],
    objective_fn: Callable[[base.Params], jax.Array],
    direction: base.GradientTransformation | None = None,
    *,
    remat: bool = True,
) -> jax.Array:
  """``E(w_T)`` after a run with rate ``schedule[t]`` at step ``t``.

  Args:
    schedule: the rates, shape ``(T,)``.
    params: the initial parameters.
    batches: a pytree whose leaves have leading axis ``T``: batch ``t`` is
      ``jax.tree.map(lambda x: x[t], batches)``.
    loss_fn: the training loss ``loss_fn(params, batch)``.
    objective_fn: the objective ``E(params)`` of the final parameters.
    direction: the base direction (``None`` for SGD).
    remat: rematerialize each step in the backward pass, so memory grows
      with ``T`` only by one parameter copy per step.

  Returns:
    The scalar ``E(w_T)``.
  """
  direction = optax.identity() if direction is None else direction

  def step(carry, xs):
    params, state = carry
    eta, batch = xs
    d, state = direction.update(jax.grad(loss_fn)(params, batch), state,
                                params)
    params = jax.tree.map(lambda p, x: p - eta.astype(x.dtype) * x, params, d)
    return (params, state), None

  if remat:
    step = jax.checkpoint(step)
  (params, _), _ = jax.lax.scan(
      step, (params, direction.init(params)), (schedule, batches))
  return objective_fn(params)


def lrs_opt(
    schedule: jax.Array,
    params: base.Params,
    batches: Any,
    loss_fn: Callable[[base.Params, Any], jax.Array],
    objective_fn: Callable[[base.Params], jax.Array],
    direction: base.GradientTransformation | None = None,
    *,
    iterations: int = 100,
    meta_optimizer: base.GradientTransformation | None = None,
    callback: Callable[[int, jax.Array], None] | None = None,
) -> LrsOptResult:
  r"""Optimizes a whole learning-rate schedule through the unrolled run.

  .. math::

    \eta \leftarrow \max\big(\eta + \mathrm{MetaOpt}(\nabla_\eta E(w_T(\eta))),
    0\big), \qquad \eta \in \mathbb{R}^T

  with :math:`\nabla_\eta E` by reverse mode through :func:`jax.lax.scan`
  (:func:`unrolled_objective`); the schedule is kept non-negative, and a
  meta-step whose gradient is not finite (the unrolled run overflowed) is
  skipped.

  Args:
    schedule: the initial schedule, shape ``(T,)`` (e.g. constant).
    params: the initial parameters of every run.
    batches: the data stream, leaves with leading axis ``T``.
    loss_fn: the training loss ``loss_fn(params, batch)``.
    objective_fn: the objective ``E`` of the final parameters (e.g. a
      validation loss).
    direction: the base direction (``None`` for SGD).
    iterations: meta-iterations of the schedule.
    meta_optimizer: the optimizer of the schedule; None for Adam with step
      ``0.05 × max(schedule)``, which moves each rate by a few percent of
      the largest one per iteration.
    callback: called as ``callback(i, objective)`` after each iteration
      (e.g. a progress bar).

  Returns:
    An :class:`LrsOptResult`.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> import optax_hypergrad as ohg
    >>> target = jnp.array([1.0, -2.0])
    >>> loss_fn = lambda w, batch: jnp.sum(batch * (w - target) ** 2)
    >>> batches = jnp.tile(jnp.array([1.0, 10.0]), (20, 1))
    >>> result = ohg.lrs_opt(
    ...     jnp.full(20, 0.01), jnp.zeros(2), batches, loss_fn,
    ...     lambda w: loss_fn(w, batches[0]), iterations=50)
    >>> print(f'{result.objective[0]:.2f} -> {result.objective[-1]:.4f}')
    0.45 -> 0.0895

  References:
    Donini et al, `Scheduling the Learning Rate via Hypergradients: New
    Insights and a New Algorithm <https://arxiv.org/abs/1910.08525>`_, 2020
  """
  checks.check_scalar('iterations', iterations, low=1)
  schedule = jnp.asarray(schedule)
  if schedule.ndim != 1:
    raise ValueError(f'schedule must be one-dimensional, got shape '
                     f'{schedule.shape}')
  if meta_optimizer is None:
    meta_optimizer = optax.adam(0.05 * jnp.max(schedule))

  value_and_grad = jax.jit(jax.value_and_grad(
      lambda s: unrolled_objective(s, params, batches, loss_fn, objective_fn,
                                   direction)))

  @jax.jit
  def meta_step(schedule, state, grad):
    updates, new_state = meta_optimizer.update(grad, state, schedule)
    new = jnp.maximum(optax.apply_updates(schedule, updates), 0.0)
    # A schedule whose unrolled run overflowed has a non-finite gradient:
    # that meta-step is skipped rather than written into the schedule.
    ok = jnp.all(jnp.isfinite(grad)) & jnp.all(jnp.isfinite(new))
    return (jnp.where(ok, new, schedule),
            optax.tree.where(ok, new_state, state))

  state = meta_optimizer.init(schedule)
  objectives = []
  for i in range(iterations):
    value, grad = value_and_grad(schedule)
    objectives.append(value)
    schedule, state = meta_step(schedule, state, grad)
    if callback is not None:
      callback(i, value)
  objectives.append(value_and_grad(schedule)[0])
  return LrsOptResult(schedule, jnp.stack(objectives))
