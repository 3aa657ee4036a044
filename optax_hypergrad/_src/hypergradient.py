"""Hypergradient descent (HD) over any Optax base direction.

One transformation serves SGD-HD, SGDN-HD, Adam-HD and the ``_lop`` variants
of "Hypergradient based optimization methods": the base optimizer proposes a
direction ``d_t``, a learned scalar rate ``α_t`` scales it, and ``α`` is
moved before each step by an Optax optimizer of its own, fed the
hypergradient ``h_t = -g_t · d_{t-1}`` (by default normalized to a cosine and
applied to ``log α``: the scale-free rule).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
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
    grad_norm: the running level of the gradient norm that the
      multiplicative rule clips jumps to (0 before the first step; unused by
      the additive rule).
  """

  learning_rate: Any
  prev_direction: base.Updates
  direction_state: base.OptState
  rate_state: base.OptState
  grad_norm: Any


def scale_by_hypergradient(
    direction: base.GradientTransformation | None = None,
    learning_rate: jax.typing.ArrayLike = 1e-3,
    hypergrad_lr: jax.typing.ArrayLike | None = None,
    *,
    rate_optimizer: str | base.GradientTransformation = 'sgd',
    rate_dynamics: str = 'multiplicative',
    target_cosine: jax.typing.ArrayLike = 0.0,
    per_leaf: bool = False,
    min_learning_rate: jax.typing.ArrayLike | None = None,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a base direction by a rate learned by hypergradient descent.

  With :math:`g_t` the incoming updates (the gradient), :math:`d_t` the
  direction the base transformation proposes for it, and :math:`\alpha_t` the
  learned rate, the hypergradient is
  :math:`h_t = \partial L_t / \partial \alpha = -g_t \cdot d_{t-1}`
  (:math:`d_0 = 0`). Two rules move the rate with it.

  ``rate_dynamics='multiplicative'`` (the default) moves :math:`\log\alpha`
  along the hypergradient normalized to a cosine, so the step is
  dimensionless, the same for any scale of the loss, and the rate stays
  positive:

  .. math::

    c_t &= \cos(g_t, d_{t-1}) \in [-1, 1] \\
    \log\alpha_t &= \log\alpha_{t-1}
      + \mathrm{clip}\big(\mathrm{RateOpt}(c^\star - c_t), \pm\log 2\big) \\
    s_t &= \min\big(1, 2\bar n_{t-1} / \|g_t\|\big) \\
    u_t &= -\alpha_t\, d_t(s_t g_t)

  where :math:`c^\star` is ``target_cosine`` (the rate rises while
  consecutive steps agree more than that) and :math:`\bar n` a running level
  of :math:`\|g\|` (decay 0.9, fed :math:`\min(\|g_t\|, 2\bar n_{t-1})`):
  a gradient norm that jumps above twice its level — a spike, or a rate gone
  unstable — is clipped to that limit before the base direction
  :math:`d_t` sees it (so momentum and Adam's moments never hold a spike);
  the rate itself is left alone. The rate moves by at most a factor of 2 in
  a step.

  ``rate_dynamics='additive'`` is the rule of the papers,
  :math:`\alpha_t = \alpha_{t-1} + \mathrm{RateOpt}(h_t)`, :math:`u_t =
  -\alpha_t d_t`: plain SGD as ``RateOpt`` gives :math:`\alpha_t =
  \alpha_{t-1} - \beta h_t` (Baydin et al.). Its step :math:`\beta h_t` has
  the units of the squared gradient, so no one :math:`\beta` fits two
  problems, and the rate may go negative.

  ``RateOpt`` is an Optax transformation on the scalar rate (on
  :math:`\log\alpha` for the multiplicative rule). The returned updates
  already carry the minus sign, as those of
  :func:`optax.scale_by_learning_rate` do: apply them with
  :func:`optax.apply_updates`.

  The rate is updated *before* the step and the direction stored *after* it,
  as in the reference implementation; for Nesterov the stored direction is
  :math:`g_t + \mu v_t`, the full Nesterov step.

  A non-finite gradient (NaN or inf) skips the step: zero updates, state
  unchanged. With the multiplicative rule so does a finite gradient whose
  squared norm overflows (about 1e19 per element in float32).

  Args:
    direction: the base direction, any Optax transformation (e.g.
      :func:`optax.scale_by_adam`, ``optax.trace(0.9, nesterov=True)``).
      ``None`` for plain SGD (the gradient itself).
    learning_rate: the initial rate :math:`\alpha_0` (> 0 for the
      multiplicative rule).
    hypergrad_lr: the hyper-learning rate :math:`\beta` of a named
      ``rate_optimizer``; None for the default. Multiplicative: a step of
      :math:`\log\alpha` per unit of cosine, 0.05 for ``'sgd'`` and
      ``'adam'``, 0.005 for ``'nesterov'`` (measured across problems, scales
      and bases); additive: 1e-3. Leave it None when ``rate_optimizer`` is a
      transformation.
    rate_optimizer: ``'sgd'`` (HD), ``'nesterov'`` (``SGDN_lop``) or
      ``'adam'`` (``Adam_lop``), or any Optax transformation to move the rate
      with, e.g. ``optax.adam(1e-7)``.
    rate_dynamics: ``'multiplicative'`` or ``'additive'`` (see above).
    target_cosine: :math:`c^\star` of the multiplicative rule: 0 is HD's own
      balance; a negative value keeps the rate where consecutive steps
      slightly disagree, higher under minibatch noise (the aliases over SGD
      and Nesterov use -0.03: see :func:`hypergradient_descent`).
    per_leaf: learn one rate per leaf of the parameter tree (e.g. per layer)
      instead of one global rate; each leaf's hypergradient (cosine, norm
      level) is that leaf's own.
    min_learning_rate: optional lower bound of the rate (the paper has none:
      the additive rate may go negative).
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.scale_by_hypergradient(
    ...     optax.scale_by_adam(), learning_rate=0.01)
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> for _ in range(200):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w)
    ...   w = optax.apply_updates(w, updates)
    >>> print(f'loss {f(w):.1e}, rate {state.learning_rate:.3f}')
    loss 4.0e-08, rate 0.173

  References:
    Baydin et al, `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018

    `Hypergradient based optimization methods
    <https://openreview.net/forum?id=BkrsAzWAb>`_, 2019

    Schraudolph, `Local Gain Adaptation in Stochastic Gradient Descent
    <https://doi.org/10.1049/cp:19991170>`_, 1999
  """
  checks.check_choice('rate_dynamics', rate_dynamics, rate_lib.RATE_DYNAMICS)
  multiplicative = rate_dynamics == 'multiplicative'
  checks.check_scalar('learning_rate', learning_rate,
                      low_inclusive=not multiplicative)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  if direction is None:
    direction = optax.identity()
  direction = base.with_extra_args_support(direction)
  checks.check_scalar('target_cosine', target_cosine, low=-1.0, high=1.0)
  rate_opt = rate_lib.make_rate_optimizer(
      rate_optimizer, hypergrad_lr,
      rate_lib.DEFAULT_LOG_STEPS if multiplicative else rate_lib.DEFAULT_STEPS)

  def init_fn(params):
    lr = rate_lib.init_rate(learning_rate, params, per_leaf)
    return ScaleByHypergradientState(
        learning_rate=lr,
        prev_direction=optax.tree.zeros_like(params),
        direction_state=direction.init(params),
        rate_state=rate_opt.init(lr),
        grad_norm=jax.tree.map(jnp.zeros_like, lr),
    )

  def update_fn(updates, state, params=None, **extra_args):
    dtype = rate_lib.rate_dtype(state.learning_rate)
    if multiplicative:
      # ∂L/∂log α = α h_t, normalized: -cos(g_t, d_{t-1}) in [-1, 1].
      cos, norm = rate_lib.cosine(updates, state.prev_direction, dtype,
                                  per_leaf)
      lr, rate_state = rate_lib.step_rate(
          state.learning_rate, state.rate_state,
          jax.tree.map(lambda c: target_cosine - c, cos), rate_opt,
          min_learning_rate, max_learning_rate, multiplicative=True)
      scale, grad_norm = rate_lib.clip_to_level(norm, state.grad_norm)
      # ‖g‖ is NaN or inf iff g is, or its square overflows (|g| ~ 1e19 in
      # float32): such a step is skipped, at no extra pass over g.
      ok = rate_lib.all_finite(norm)
      # Clipped before the base sees it: its moments never hold a spike.
      updates = rate_lib.scale_tree(scale, updates, per_leaf)
    else:
      # h_t = g_t · ∇_α u_{t-1} = -g_t · d_{t-1}
      hypergrad = jax.tree.map(
          lambda x: -x,
          rate_lib.dot(updates, state.prev_direction, dtype, per_leaf),
      )
      lr, rate_state = rate_lib.step_rate(
          state.learning_rate, state.rate_state, hypergrad, rate_opt,
          min_learning_rate, max_learning_rate)
      ok = rate_lib.all_finite(hypergrad)
      grad_norm = state.grad_norm
    d, direction_state = direction.update(
        updates, state.direction_state, params, **extra_args
    )
    # A non-finite gradient makes h non-finite (NaN·0 is NaN, so also at the
    # first step): skip the whole step, so neither the rate nor the base
    # optimizer's moments nor the stored direction are poisoned. The stored
    # direction is selected once and the update computed from it, so the
    # base direction is written once per leaf, not once for the update and
    # again for a select of the state.
    prev_direction = optax.tree.where(ok, d, state.prev_direction)
    new_updates, (lr, direction_state, rate_state, grad_norm) = (
        rate_lib.skip_unless(
            ok, rate_lib.scale_by_rate(lr, prev_direction, per_leaf),
            (lr, direction_state, rate_state, grad_norm),
            (state.learning_rate, state.direction_state, state.rate_state,
             state.grad_norm)))
    return new_updates, ScaleByHypergradientState(
        learning_rate=lr,
        prev_direction=prev_direction,
        direction_state=direction_state,
        rate_state=rate_state,
        grad_norm=grad_norm,
    )

  return base.GradientTransformationExtraArgs(init_fn, update_fn)

