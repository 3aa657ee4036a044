"""Hypergradient descent (HD) over any Optax base direction.

One transformation serves SGD-HD, SGDN-HD, Adam-HD and the ``_lop`` variants
of seed 001: the base optimizer proposes a direction ``d_t``, a learned scalar
rate ``α_t`` scales it, and ``α`` is moved before each step by an Optax
optimizer of its own, fed the hypergradient ``h_t = -g_t · d_{t-1}``.
"""

from typing import Any, NamedTuple

import jax
import optax
from optax._src import base

from optax_hypergrad._src import checks
from optax_hypergrad._src import rate as rate_lib


class ScaleByHypergradientState(NamedTuple):
  """State of :func:`scale_by_hypergradient`.

  Attributes:
    learning_rate: the live rate ``α_t`` used by the last step: a float32 (or
      wider) scalar, or a tree of scalars shaped like the parameters when
      ``per_leaf=True``.
    prev_direction: the base direction ``d_{t-1}`` of the previous step (zeros
      before the first), the only extra copy of the parameters HD needs.
    direction_state: the state of the base direction's transformation.
    rate_state: the state of the optimizer that moves the rate.
  """

  learning_rate: Any
  prev_direction: base.Updates
  direction_state: base.OptState
  rate_state: base.OptState


def scale_by_hypergradient(
    direction: base.GradientTransformation | None = None,
    learning_rate: jax.typing.ArrayLike = 1e-3,
    hypergrad_lr: jax.typing.ArrayLike | None = None,
    *,
    rate_optimizer: str | base.GradientTransformation = 'sgd',
    per_leaf: bool = False,
    min_learning_rate: jax.typing.ArrayLike | None = None,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a base direction by a rate learned by hypergradient descent.

  With :math:`g_t` the incoming updates (the gradient), :math:`d_t` the
  direction the base transformation proposes for it, and :math:`\alpha_t` the
  learned rate:

  .. math::

    h_t &= \frac{\partial L_t}{\partial \alpha} = -g_t \cdot d_{t-1},
      \qquad d_0 = 0 \\
    \alpha_t &= \alpha_{t-1} + \mathrm{RateOpt}(h_t) \\
    u_t &= -\alpha_t\, d_t

  ``RateOpt`` is an Optax transformation on the scalar :math:`\alpha`; plain
  SGD gives :math:`\alpha_t = \alpha_{t-1} - \beta h_t` (Baydin et al.).
  The returned updates already carry the minus sign, as those of
  :func:`optax.scale_by_learning_rate` do: apply them with
  :func:`optax.apply_updates`.

  The rate is updated *before* the step and the direction stored *after* it,
  as in the reference implementation; for Nesterov the stored direction is
  :math:`g_t + \mu v_t`, the full Nesterov step.

  A non-finite gradient (NaN or inf, hence a non-finite :math:`h_t`) skips
  the step: zero updates, state unchanged.

  Args:
    direction: the base direction, any Optax transformation (e.g.
      :func:`optax.scale_by_adam`, ``optax.trace(0.9, nesterov=True)``).
      ``None`` for plain SGD (the gradient itself).
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: the hyper-learning rate :math:`\beta` of a named
      ``rate_optimizer``; None for 1e-3. Leave it None when
      ``rate_optimizer`` is a transformation.
    rate_optimizer: ``'sgd'`` (HD), ``'nesterov'`` (``SGDN_lop``) or
      ``'adam'`` (``Adam_lop``), or any Optax transformation to move the rate
      with, e.g. ``optax.adam(1e-7)``.
    per_leaf: learn one rate per leaf of the parameter tree (e.g. per layer)
      instead of one global rate; each leaf's hypergradient is that leaf's
      share of the inner product.
    min_learning_rate: optional lower bound of the rate (the paper has none:
      HD's rate may go negative).
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.scale_by_hypergradient(
    ...     optax.scale_by_adam(), learning_rate=0.01, hypergrad_lr=1e-3)
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> for _ in range(200):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w)
    ...   w = optax.apply_updates(w, updates)
    >>> print(f'loss {f(w):.1e}, rate {state.learning_rate:.3f}')
    loss 2.9e-09, rate 0.078

  References:
    Baydin et al, `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018

    Chandra et al, `Hypergradient based optimization methods
    <https://openreview.net/forum?id=BkrsAzWAb>`_ (seed 001), 2019
  """
  checks.check_scalar('learning_rate', learning_rate)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  if direction is None:
    direction = optax.identity()
  direction = base.with_extra_args_support(direction)
  rate_opt = rate_lib.make_rate_optimizer(rate_optimizer, hypergrad_lr, 1e-3)

  def init_fn(params):
    lr = rate_lib.init_rate(learning_rate, params, per_leaf)
    return ScaleByHypergradientState(
        learning_rate=lr,
        prev_direction=optax.tree.zeros_like(params),
        direction_state=direction.init(params),
        rate_state=rate_opt.init(lr),
    )

  def update_fn(updates, state, params=None, **extra_args):
    dtype = rate_lib.rate_dtype(state.learning_rate)
    # h_t = g_t · ∇_α u_{t-1} = -g_t · d_{t-1}
    hypergrad = jax.tree.map(
        lambda x: -x,
        rate_lib.dot(updates, state.prev_direction, dtype, per_leaf),
    )
    lr, rate_state = rate_lib.step_rate(
        state.learning_rate,
        state.rate_state,
        hypergrad,
        rate_opt,
        min_learning_rate,
        max_learning_rate,
    )
    d, direction_state = direction.update(
        updates, state.direction_state, params, **extra_args
    )
    new_updates = rate_lib.scale_by_rate(lr, d, per_leaf)
    new_state = ScaleByHypergradientState(
        learning_rate=lr,
        prev_direction=d,
        direction_state=direction_state,
        rate_state=rate_state,
    )
    # A non-finite gradient makes h non-finite (NaN·0 is NaN, so also at the
    # first step): skip the whole step, so neither the rate nor the base
    # optimizer's moments nor the stored direction are poisoned.
    return rate_lib.skip_unless(rate_lib.all_finite(hypergrad), new_updates,
                                new_state, state)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)

