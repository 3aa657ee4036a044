"""RTHO and MARTHE: hypergradients through a discounted tangent system.

The tangent ``Z ≈ dw/dη`` of the parameters *and* of the base optimizer's
state is carried forward with one ``jax.jvp`` of the optimizer step, so any
Optax base direction works without a hand-derived Jacobian.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import base

from optax_hypergrad._src import checks
from optax_hypergrad._src import rate as rate_lib

MISSING_VALUE_FN_MSG = (
    'pass it as `tx.update(grads, state, params, value_fn=lambda p: '
    'loss_fn(p, batch))` (with Flax NNX: `optimizer.update(model, grads, '
    'value_fn=...)` on the pure parameter state, see docs/marthe.md).'
)


class ScaleByMartheState(NamedTuple):
  """State of :func:`scale_by_marthe`.

  Attributes:
    learning_rate: the rate ``η_t`` used by the last step (float32 or wider).
    hypergrad_lr: the hyper-learning rate ``β``, adapted when ``kappa > 0``.
    mu: the discount ``μ`` used by the last tangent update.
    mu_accum: ``c``, the accumulated ``μ`` of the adaptive rule.
    tangent: ``Z^w ≈ dw/dη``, shaped like the parameters.
    state_tangent: the tangent of the base state: a tree shaped like it,
      with the tangent at each floating-point leaf and None at the others
      (step counters).
    prev_grad: the previous training gradient (adaptive ``μ`` only; an
      empty state otherwise).
    base_state: the base direction's state.
    count: number of steps taken.
  """

  learning_rate: jax.Array
  hypergrad_lr: jax.Array
  mu: jax.Array
  mu_accum: jax.Array
  tangent: base.Updates
  state_tangent: Any
  prev_grad: Any
  base_state: base.OptState
  count: jax.Array  # type: ignore[assignment]  # as in optax


def _check_value_fn(value_fn, params) -> None:
  """A ValueError, naming ``value_fn=``, unless it returns a real scalar.

  Checked on shapes alone (``jax.eval_shape``): nothing is computed.
  """
  out = jax.eval_shape(value_fn, params)
  if isinstance(out, (tuple, list, dict)):
    raise ValueError(
        'value_fn= must return the loss as a real scalar, got a '
        f'{type(out).__name__} (a `(loss, aux)` pair? return the loss '
        'alone).')
  if getattr(out, 'shape', None) != () or not jnp.issubdtype(
      out.dtype, jnp.floating):
    raise ValueError(
        'value_fn= must return the loss as a real (floating) scalar, got '
        f'shape {getattr(out, "shape", None)} and dtype '
        f'{getattr(out, "dtype", type(out).__name__)} (a per-example loss? '
        'return its mean).')


def _is_float(x) -> bool:
  return jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)


def _float_part(base_state, tangent):
  """``tangent`` at the float leaves of ``base_state``, None elsewhere."""
  return jax.tree.map(lambda x, t: t if _is_float(x) else None,
                      base_state, tangent)


def _state_tangent_in(base_state, state_tangent, mu):
  """The jvp tangent of the base state: ``μ Z^s`` on floats, float0 else."""
  leaves, treedef = jax.tree.flatten(base_state)
  it = iter(jax.tree.leaves(state_tangent))  # None entries are dropped
  tangents = [
      (mu.astype(x.dtype) * next(it)) if _is_float(x)
      else np.zeros(jnp.shape(x), jax.dtypes.float0)
      for x in leaves
  ]
  return jax.tree.unflatten(treedef, tangents)


def _adapt_mu(mu, mu_accum, eta, e_grad, prev_grad, dtype):
  """The reference's automatic μ (METHODS.md §3), its division guarded.

  ``q = η / (∇E·b)``, ``z = clip(q, 0, 1)``, ``c ← c·sign(μ) + μ``,
  ``μ ← z^{1/(c+1)}``. A zero or negative ``∇E·b`` (the two gradients
  disagree) gives ``z = 0``, hence ``μ = 0`` and a reset of ``c``.
  """
  agreement = rate_lib.dot(e_grad, prev_grad, dtype, per_leaf=False)
  safe = jnp.where(agreement > 0, agreement, 1.0)
  z = jnp.clip(jnp.where(agreement > 0, eta / safe, 0.0), 0.0, 1.0)
  mu_accum = mu_accum * jnp.sign(mu) + mu
  return (z ** (1.0 / (mu_accum + 1.0))).astype(dtype), mu_accum


def scale_by_marthe(
    direction: base.GradientTransformation | None = None,
    learning_rate: jax.typing.ArrayLike = 0.01,
    hypergrad_lr: jax.typing.ArrayLike = 1e-8,
    mu: jax.typing.ArrayLike = 1.0,
    kappa: jax.typing.ArrayLike = 0.0,
    *,
    adapt_mu: bool = False,
    min_learning_rate: jax.typing.ArrayLike | None = 0.0,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a base direction by a rate learned through a discounted tangent.

  With :math:`\Phi_t(w, s; \eta)` one step of the base optimizer (state
  :math:`s`) from the gradient of the minibatch loss ``value_fn``, and
  :math:`Z_t \approx dw_t/d\eta` (parameters and base state):

  .. math::

    \eta_t &= \max(\eta_{t-1} - \beta\, \nabla E(w_t) \cdot Z^w_t, 0) \\
    Z_{t+1} &= \mu\, J_t Z_t + \partial \Phi_t / \partial \eta, \qquad
      J_t = \partial \Phi_t / \partial (w, s) \\
    w_{t+1} &= \Phi_t(w_t, s_t; \eta_t)

  ``μ J_t Z_t + ∂Φ_t/∂η`` is one ``jax.jvp`` of the step at
  :math:`(w_t, s_t, \eta_t)` with tangent :math:`(\mu Z^w, \mu Z^s, 1)`,
  Hessian-vector product included. ``μ = 0`` is hypergradient descent
  (clamped at 0), ``μ = 1`` is RTHO.

  :math:`\nabla E` is the incoming (training) gradient unless a validation
  gradient is passed as ``validation_grad=``. With ``adapt_mu=True``, ``μ``
  follows the reference rule (``mu`` is then the starting value); with
  ``kappa > 0``, :math:`\beta \leftarrow \max(\beta + \kappa\,
  (\nabla E \cdot Z)\, \eta, 0)`.

  The primal step uses the incoming updates as the gradient, so transforms
  chained before (clipping, weight decay) act on the step; the tangent sees
  them as the identity (put weight decay into ``value_fn`` for an exact
  tangent).

  Args:
    direction: the base direction (``None`` for SGD), any Optax transform.
    learning_rate: the initial rate :math:`\eta_0`.
    hypergrad_lr: the initial hyper-learning rate :math:`\beta`.
    mu: the discount :math:`\mu \in [0, 1]` (its start with ``adapt_mu``).
    kappa: the step :math:`\kappa` of the hyper-learning rate (0: fixed).
    adapt_mu: adapt ``μ`` online by the reference rule.
    min_learning_rate: lower bound of the rate; 0 as in the paper.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    ``value_fn=`` (the minibatch loss as a function of the parameters) and
    optionally ``validation_grad=``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * (w - 1.0) ** 2)
    >>> tx = ohg.scale_by_marthe(learning_rate=0.01, hypergrad_lr=1e-4)
    >>> @jax.jit
    ... def step(w, state):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    ...   return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(2)
    >>> state = tx.init(w)
    >>> for _ in range(100):
    ...   w, state = step(w, state)
    >>> print(f'loss {f(w):.1e}, rate {state.learning_rate:.3f}')
    loss 3.8e-11, rate 0.058

  References:
    Donini et al, `Scheduling the Learning Rate via Hypergradients: New
    Insights and a New Algorithm <https://arxiv.org/abs/1910.08525>`_, 2020

    Franceschi et al, `Forward and Reverse Gradient-Based Hyperparameter
    Optimization <https://arxiv.org/abs/1703.01785>`_, 2017
  """
  checks.check_scalar('learning_rate', learning_rate)
  checks.check_scalar('hypergrad_lr', hypergrad_lr)
  checks.check_scalar('mu', mu, high=1.0)
  checks.check_scalar('kappa', kappa)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  if direction is None:
    direction = optax.identity()
  direction = base.with_extra_args_support(direction)

  def init_fn(params):
    dtype = rate_lib.rate_dtype(params)
    base_state = direction.init(params)
    return ScaleByMartheState(
        learning_rate=jnp.asarray(learning_rate, dtype),
        hypergrad_lr=jnp.asarray(hypergrad_lr, dtype),
        mu=jnp.asarray(mu, dtype),
        mu_accum=jnp.zeros([], dtype),
        tangent=optax.tree.zeros_like(params),
        state_tangent=_float_part(base_state,
                                  optax.tree.zeros_like(base_state)),
        prev_grad=(optax.tree.zeros_like(params) if adapt_mu
                   else base.EmptyState()),
        base_state=base_state,
        count=jnp.zeros([], jnp.int32),
    )

  def update_fn(updates, state, params=None, *, value_fn=None,
                validation_grad=None, **extra_args):
    if value_fn is None:
      raise ValueError(rate_lib.missing_extra_arg_message(
          'scale_by_marthe needs the minibatch loss as a function of the '
          'parameters `value_fn=`, for its Hessian-vector products:',
          MISSING_VALUE_FN_MSG, extra_args))
    if params is None:
      raise ValueError(base.NO_PARAMS_MSG)
    _check_value_fn(value_fn, params)
    dtype = state.learning_rate.dtype
    e_grad = updates if validation_grad is None else validation_grad

    # The reference's order (adatune's hyper_step): the rate moves along
    # h = ∇E(w_t)·Z_t with the current β; then μ is adapted from the *new*
    # rate, ∇E(w_t) and the previous training gradient b; then β. At t = 0,
    # Z = 0 gives h = 0, so the rate update is skipped as in the paper.
    hypergrad = rate_lib.dot(e_grad, state.tangent, dtype, per_leaf=False)
    rate_opt = optax.sgd(state.hypergrad_lr)  # stateless: β lives in state
    eta, _ = rate_lib.step_rate(
        state.learning_rate, rate_opt.init(state.learning_rate), hypergrad,
        rate_opt, min_learning_rate, max_learning_rate)

    mu_t, mu_accum = state.mu, state.mu_accum
    if adapt_mu:
      new_mu, new_accum = _adapt_mu(state.mu, state.mu_accum, eta, e_grad,
                                    state.prev_grad, dtype)
      first = state.count == 0
      mu_t = jnp.where(first, state.mu, new_mu)
      mu_accum = jnp.where(first, state.mu_accum, new_accum)

    # β ← max(β + κ h η, 0) (METHODS.md; commented out in the reference). As
    # η > 0, β shrinks while h < 0 asks for a larger rate and grows while
    # h > 0 asks for a smaller one: a brake on rate increases.
    beta = jnp.maximum(state.hypergrad_lr + kappa * hypergrad * eta, 0.0)
    beta = jnp.where(jnp.isfinite(beta), beta, state.hypergrad_lr)
    beta = beta.astype(dtype)

    # H μZ^w, from a jvp of the loss gradient (forward-over-reverse).
    z_w = jax.tree.map(lambda z: mu_t.astype(z.dtype) * z, state.tangent)
    _, hvp = jax.jvp(jax.grad(value_fn), (params,), (z_w,))

    def step(grads, base_state, params, eta):
      d, base_state = direction.update(grads, base_state, params,
                                       **extra_args)
      return rate_lib.scale_by_rate(eta, d, per_leaf=False), base_state

    (new_updates, base_state), (du, ds) = jax.jvp(
        step,
        (updates, state.base_state, params, eta),
        (hvp, _state_tangent_in(state.base_state, state.state_tangent, mu_t),
         z_w, jnp.ones_like(eta)),
    )
    tangent = jax.tree.map(jnp.add, z_w, du)
    new_state = ScaleByMartheState(
        learning_rate=eta,
        hypergrad_lr=beta,
        mu=mu_t,
        mu_accum=mu_accum,
        tangent=tangent,
        state_tangent=_float_part(base_state, ds),
        prev_grad=updates if adapt_mu else state.prev_grad,
        base_state=base_state,
        count=optax.safe_increment(state.count),
    )
    # A tangent that overflows with finite gradients (RTHO's instability) is
    # reset to zero rather than carried.
    finite = rate_lib.all_finite((tangent, new_state.state_tangent))
    new_state = new_state._replace(
        tangent=optax.tree.where(finite, tangent,
                                 optax.tree.zeros_like(tangent)),
        state_tangent=optax.tree.where(
            finite, new_state.state_tangent,
            optax.tree.zeros_like(new_state.state_tangent)),
    )
    # A non-finite gradient (or validation gradient) makes h non-finite
    # (NaN·0 is NaN, so also at the first step): skip the whole step.
    return rate_lib.skip_unless(jnp.isfinite(hypergrad), new_updates,
                                new_state, state)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)

