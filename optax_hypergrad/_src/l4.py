"""L4: a step size computed afresh at every step from the loss value."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from optax_hypergrad._src import checks
from optax_hypergrad._src import rate as rate_lib

MISSING_VALUE_MSG = (
    'pass it as `tx.update(grads, state, params, value=loss)` (with Flax '
    'NNX: `optimizer.update(model, grads, value=loss)`).'
)


class ScaleByGradientRmsState(NamedTuple):
  """State of :func:`scale_by_gradient_rms`: the second moment and a count."""

  count: jax.Array  # type: ignore[assignment]  # as in optax
  nu: base.Updates


def scale_by_gradient_rms(
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-4,
) -> base.GradientTransformationExtraArgs:
  r"""L4Adam's direction from a gradient estimate: ``g / (√ŝ + ε)``.

  ``ŝ`` is the bias-corrected exponential average of the squared *raw*
  gradients; ``g`` is the gradient estimate that :func:`scale_by_l4` passes
  as the extra argument ``gradient_estimate`` (the raw gradient if absent).
  With ``g = m̂`` this is Adam's direction ``m̂ / (√v̂ + ε)`` holding one
  moment instead of two, since ``m̂`` is already L4's gradient estimate.

  Args:
    b2: decay of the second moment.
    eps: added to ``√ŝ``.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """

  def init_fn(params):
    return ScaleByGradientRmsState(jnp.zeros([], jnp.int32),
                                   optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None, *, gradient_estimate=None,
                **extra_args):
    del params, extra_args
    nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
    count = optax.safe_increment(state.count)
    nu_hat = optax.tree.bias_correction(nu, b2, count)
    g = updates if gradient_estimate is None else gradient_estimate
    v = jax.tree.map(lambda m, n: m / (jnp.sqrt(n) + eps).astype(m.dtype),
                     g, nu_hat)
    return v, ScaleByGradientRmsState(count, nu)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)


class ScaleByL4State(NamedTuple):
  """State of :func:`scale_by_l4`.

  Attributes:
    learning_rate: the effective rate ``η`` of the last step (float32 or
      wider); it may jump by orders of magnitude from step to step by design.
    min_loss: ``L_min``, the tracked minimal loss, after the forgetting
      factor of the last step.
    count: number of steps taken (skipped non-finite steps not counted).
    gradient_state: the state of the gradient estimate ``g``.
    direction_state: the state of the direction ``v`` (empty when ``v = g``).
  """

  learning_rate: jax.Array
  min_loss: jax.Array
  count: jax.Array  # type: ignore[assignment]  # as in optax
  gradient_state: base.OptState
  direction_state: base.OptState


def scale_by_l4(
    gradient_estimate: base.GradientTransformation | None = None,
    direction: base.GradientTransformation | None = None,
    alpha: jax.typing.ArrayLike = 0.15,
    gamma: jax.typing.ArrayLike = 0.9,
    tau: jax.typing.ArrayLike = 1000.0,
    gamma_0: jax.typing.ArrayLike = 0.75,
    eps: jax.typing.ArrayLike = 1e-12,
    *,
    min_learning_rate: jax.typing.ArrayLike | None = None,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a direction by L4's loss-based step size.

  With :math:`L` the current loss (``value=``), :math:`g` a gradient
  estimate and :math:`v` the update direction:

  .. math::

    L_{\min} &\leftarrow \begin{cases} \gamma_0 L & \text{first step} \\
      \min(L_{\min}, L) & \text{otherwise} \end{cases} \\
    \eta &= \alpha\, \frac{L - \gamma L_{\min}}{g \cdot v + \epsilon} \\
    u &= -\eta\, v, \qquad L_{\min} \leftarrow (1 + 1/\tau)\, L_{\min}

  ``g`` and ``v`` must satisfy ``g·v ≥ 0``: L4Mom takes ``v = g`` (a
  bias-corrected momentum), L4Adam ``v = m̂/(√ŝ + ε)`` with ``g = m̂``.

  The loss must be non-negative (paper §2.2). For a non-negative loss
  ``η ≥ 0`` always; a negative loss would give a negative ``η`` (a step
  uphill), so ``η`` is clipped at 0 instead: shift such a loss by a known
  lower bound. A non-finite loss, gradient or ``g·v`` skips the step: zero
  update, state unchanged.

  Args:
    gradient_estimate: transformation giving ``g`` from the gradient;
      None for a bias-corrected momentum ``optax.ema(0.9, debias=True)``.
    direction: transformation giving ``v`` from the gradient (it also
      receives ``g`` as the extra argument ``gradient_estimate``, which
      :func:`scale_by_gradient_rms` uses and others ignore); None for
      ``v = g``.
    alpha: the fraction :math:`\alpha` of the linearized step taken.
    gamma: the fraction :math:`\gamma` of the minimal loss aimed for.
    tau: the timescale :math:`\tau` over which ``L_min`` is forgotten.
    gamma_0: ``L_min`` starts at :math:`\gamma_0` times the first loss.
    eps: :math:`\epsilon`, regularizes the division.
    min_learning_rate: optional lower bound of ``η`` (the paper has none).
    max_learning_rate: optional upper bound of ``η`` (the paper has none;
      L4's rate may jump by orders of magnitude by design).

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    the current loss as the keyword argument ``value``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.scale_by_l4()
    >>> @jax.jit
    ... def step(w, state):
    ...   loss, grads = jax.value_and_grad(f)(w)
    ...   updates, state = tx.update(grads, state, w, value=loss)
    ...   return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> for _ in range(500):
    ...   w, state = step(w, state)
    >>> print(f'loss {f(w):.1e}')
    loss 2.2e-03

  References:
    Rolinek & Martius, `L4: Practical loss-based stepsize adaptation for deep
    learning <https://arxiv.org/abs/1802.05074>`_, 2018
  """
  checks.check_scalar('alpha', alpha, low_inclusive=False)
  checks.check_scalar('gamma', gamma, high=1.0)
  checks.check_scalar('tau', tau, low_inclusive=False)
  checks.check_scalar('gamma_0', gamma_0, high=1.0)
  checks.check_scalar('eps', eps)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  if gradient_estimate is None:
    gradient_estimate = optax.ema(0.9, debias=True)
  gradient_estimate = base.with_extra_args_support(gradient_estimate)
  if direction is not None:
    direction = base.with_extra_args_support(direction)

  def init_fn(params):
    dtype = rate_lib.rate_dtype(params)
    return ScaleByL4State(
        learning_rate=jnp.zeros([], dtype),
        min_loss=jnp.zeros([], dtype),
        count=jnp.zeros([], jnp.int32),
        gradient_state=gradient_estimate.init(params),
        direction_state=(
            base.EmptyState() if direction is None else direction.init(params)
        ),
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    if value is None:
      raise ValueError(rate_lib.missing_extra_arg_message(
          'scale_by_l4 needs the current minibatch loss `value=`:',
          MISSING_VALUE_MSG, extra_args))
    dtype = state.min_loss.dtype
    loss = jnp.asarray(value).astype(dtype)
    g, gradient_state = gradient_estimate.update(
        updates, state.gradient_state, params, **extra_args)
    if direction is None:
      v, direction_state = g, state.direction_state
    else:
      v, direction_state = direction.update(
          updates, state.direction_state, params, gradient_estimate=g,
          **extra_args)

    min_loss = jnp.where(state.count == 0, gamma_0 * loss,
                         jnp.minimum(state.min_loss, loss))
    g_dot_v = rate_lib.dot(g, v, dtype, per_leaf=False)
    eta = alpha * (loss - gamma * min_loss) / (g_dot_v + eps)
    eta = rate_lib.clip_rate(jnp.maximum(eta, 0.0), min_learning_rate,
                             max_learning_rate).astype(dtype)
    new_updates = rate_lib.scale_by_rate(eta, v, per_leaf=False)
    new_state = ScaleByL4State(
        learning_rate=eta,
        min_loss=((1.0 + 1.0 / tau) * min_loss).astype(dtype),
        count=optax.safe_increment(state.count),
        gradient_state=gradient_state,
        direction_state=direction_state,
    )
    # A NaN/inf loss or gradient skips the step instead of poisoning L_min,
    # the moments or the parameters.
    finite = jnp.isfinite(loss) & jnp.isfinite(g_dot_v) & jnp.isfinite(eta)
    return rate_lib.skip_unless(finite, new_updates, new_state, state)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)
