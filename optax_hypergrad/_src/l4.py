"""L4: a step size computed afresh at every step from the loss value."""

from typing import Any, NamedTuple

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


RULES = ('robust', 'paper')
# The robust rule's gap ``Δ`` (the target sits ``Δ`` below the best loss)
# grows by this log-factor on a step that sets a new best loss and shrinks by
# the other on a step that does not, chosen by measurement
# (``python -m benchmarks.l4_defaults``), with the noise power 0.25.
GAP_GROWTH = 0.05
GAP_DECAY = 0.02
# The curvature probe's average: short, since the rate moves fast.
CURVATURE_DECAY = 0.5
# The average of the raw gradient's squared norm that measures the noise in
# the gradient estimate (the timescale of the default momentum).
NOISE_DECAY = 0.9
# While the curvature cap binds, the gap moves toward the one whose step the
# cap allows by at most this factor per step (back-calculation).
CAP_GAP_SHRINK = 0.95
# The gap's floor from the loss's trend: a fast and a slow average of the
# loss (decays 0.9 and 0.99); while the loss keeps falling, slow − fast is
# its fall over about 90 steps, and the gap is kept at least that — at most
# TREND_CAP times the fast average's height above the lowest loss, which
# goes to 0 once a run has converged. Without it, minibatch noise makes
# records rare and the gap decays to 0 while the loss is still falling.
TREND_FAST = 0.9
TREND_SLOW = 0.99
TREND_CAP = 3.0


class ScaleByL4State(NamedTuple):
  """State of :func:`scale_by_l4`.

  Attributes:
    learning_rate: the effective rate ``η`` of the last step (float32 or
      wider); it may jump by orders of magnitude from step to step by design.
    min_loss: the paper's rule: ``L_min``, the tracked minimal loss, after
      the forgetting factor of the last step. The robust rule: the lowest
      loss seen.
    count: number of steps taken (skipped non-finite steps not counted).
    gradient_state: the state of the gradient estimate ``g``.
    direction_state: the state of the direction ``v`` (empty when ``v = g``).
    gap: the robust rule's ``Δ``: the target is ``min_loss − Δ``.
    curvature: the robust rule's probe of the curvature (see
      :class:`CurvatureProbe`).
    grad_sq: the robust rule's average of the raw gradient's squared norm.
    loss_fast: the robust rule's fast average of the loss (decay 0.9), kept
      as its height above ``min_loss`` (exact however far the loss is from
      0 in float32).
    loss_slow: its slow average (decay 0.99), likewise.
  """

  learning_rate: jax.Array
  min_loss: jax.Array
  count: jax.Array  # type: ignore[assignment]  # as in optax
  gradient_state: base.OptState
  direction_state: base.OptState
  gap: jax.Array
  curvature: 'CurvatureProbe'
  grad_sq: jax.Array
  loss_fast: jax.Array
  loss_slow: jax.Array


class CurvatureProbe(NamedTuple):
  """The curvature along a stored direction, measured without bias.

  Every other step stores the direction ``p`` just taken; the next two
  gradients, both drawn after ``p`` was fixed, give ``(g_a − g_b)·p`` over
  the step between them, ``η v·p``: the curvature ``pᵀHv / pᵀv``. Two fresh
  gradients make it unbiased under minibatch noise; the last step's own
  gradient would correlate with ``p`` and inflate the estimate by the
  noise's power over the step, shrinking the rate step after step.

  Attributes:
    probe: the stored direction ``p``.
    first_dot: ``g_a · p``, the first gradient after storing ``p``.
    step_dot: ``η v·p`` of the step between the two measurements.
    num: the average of ``(g_a − g_b)·p``.
    den: the average of ``η v·p``.
  """

  probe: base.Updates
  first_dot: jax.Array
  step_dot: jax.Array
  num: jax.Array
  den: jax.Array


def check_value(value: Any) -> jax.Array:
  """The loss ``value=`` as an array, or a ValueError saying what arrived."""
  if isinstance(value, (tuple, list, dict)):
    raise ValueError(
        'value= must be the loss as a real scalar, got a '
        f'{type(value).__name__} (a `(loss, aux)` pair from '
        '`has_aux=True`? pass the loss alone).')
  try:
    arr = jnp.asarray(value)
  except TypeError:
    raise ValueError(f'value= must be the loss as a real scalar, got '
                     f'{type(value).__name__}') from None
  if arr.size != 1 or arr.ndim > 1:
    raise ValueError(
        f'value= must be the loss as a real scalar, got shape {arr.shape} '
        '(a per-example loss? pass its mean).')
  if not (jnp.issubdtype(arr.dtype, jnp.floating)
          or jnp.issubdtype(arr.dtype, jnp.integer)):
    raise ValueError(f'value= must be the loss as a real scalar, got dtype '
                     f'{arr.dtype}')
  return arr.reshape(())


def _robust_target(loss, state, gamma, gamma_0):
  """``(best, Δ, fast, slow)`` after this loss: the target is ``best − Δ``;
  ``fast`` and ``slow`` are the loss's averages as heights above ``best``."""
  first = state.count == 0
  record = loss < state.min_loss
  best = jnp.where(first, loss, jnp.minimum(state.min_loss, loss))
  factor = jnp.exp(jnp.where(record, GAP_GROWTH, -GAP_DECAY))
  gap = jnp.where(first, (1.0 - gamma * gamma_0) * jnp.abs(loss),
                  state.gap * factor)
  # The averages move with a new best (re-based), and start at the first
  # loss: height 0.
  rebase = state.min_loss - best
  height = loss - best
  fast = jnp.where(first, 0.0, TREND_FAST * (state.loss_fast + rebase)
                   + (1 - TREND_FAST) * height)
  slow = jnp.where(first, 0.0, TREND_SLOW * (state.loss_slow + rebase)
                   + (1 - TREND_SLOW) * height)
  gap = jnp.maximum(gap, jnp.minimum(slow - fast, TREND_CAP * fast))
  dtype = loss.dtype
  return best, gap.astype(dtype), fast.astype(dtype), slow.astype(dtype)


def _noise_ratio(raw_sq, g_sq, state, dtype):
  """``(ratio, grad_sq)``: the averaged squared norm of the raw gradients
  (this step's ``raw_sq``) over that of the gradient estimate ``g_sq`` (at
  least 1): about 1 when the gradients agree, up to ``(1 + b)/(1 − b)`` for a
  momentum ``b`` when they are noise."""
  grad_sq = NOISE_DECAY * state.grad_sq + (1 - NOISE_DECAY) * raw_sq
  t = optax.safe_increment(state.count).astype(dtype)
  avg = grad_sq / (1.0 - NOISE_DECAY ** t)
  ratio = jnp.where(g_sq > 0, avg / jnp.where(g_sq > 0, g_sq, 1.0), 1.0)
  return jnp.maximum(ratio, 1.0), grad_sq.astype(dtype)


def _curvature_limit(probe, g_dot_v, v_sq, cap):
  """The largest rate the measured curvature allows: ``cap·g·v/(κ‖v‖²)``
  with ``κ`` the probe's averaged curvature; inf before it has one."""
  kappa_ok = (probe.den > 0) & (probe.num > 0)
  kappa = probe.num / jnp.where(kappa_ok, probe.den, 1.0)
  limit = cap * g_dot_v / jnp.where(kappa_ok & (v_sq > 0), kappa * v_sq, 1.0)
  return jnp.where(kappa_ok & (v_sq > 0), limit, jnp.inf)


def _update_probe(probe, v, g_dot_p, v_dot_p, eta, count, dtype):
  """One step of :class:`CurvatureProbe`: store, measure, or average, given
  the raw gradient's and the direction's products with the stored probe."""
  storing = count % 2 == 0  # even steps: second measurement, then store v
  average = storing & (count >= 2)
  d = CURVATURE_DECAY
  num = jnp.where(average, d * probe.num + (1 - d) * (probe.first_dot
                                                      - g_dot_p), probe.num)
  den = jnp.where(average, d * probe.den + (1 - d) * probe.step_dot,
                  probe.den)
  return CurvatureProbe(
      probe=optax.tree.where(storing, v, probe.probe),
      first_dot=jnp.where(storing, probe.first_dot, g_dot_p).astype(dtype),
      step_dot=jnp.where(storing, probe.step_dot, eta * v_dot_p).astype(dtype),
      num=num.astype(dtype), den=den.astype(dtype))


def scale_by_l4(
    gradient_estimate: base.GradientTransformation | None = None,
    direction: base.GradientTransformation | None = None,
    alpha: jax.typing.ArrayLike = 0.15,
    gamma: jax.typing.ArrayLike = 0.9,
    tau: jax.typing.ArrayLike = 1000.0,
    gamma_0: jax.typing.ArrayLike = 0.75,
    eps: jax.typing.ArrayLike = 1e-12,
    *,
    rule: str = 'robust',
    curvature_cap: jax.typing.ArrayLike = 1.9,
    noise_power: jax.typing.ArrayLike = 0.25,
    min_learning_rate: jax.typing.ArrayLike | None = None,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a direction by L4's loss-based step size.

  With :math:`L` the current loss (``value=``), :math:`g` a gradient
  estimate and :math:`v` the update direction, the step is
  :math:`u = -\eta v` with

  .. math::

    \eta = \alpha\, \frac{L - L_{\text{target}}}{g \cdot v + \epsilon}.

  ``rule='paper'`` is Rolinek & Martius's target, exactly:

  .. math::

    L_{\min} &\leftarrow \begin{cases} \gamma_0 L & \text{first step} \\
      \min(L_{\min}, L) & \text{otherwise} \end{cases}, \qquad
    L_{\text{target}} = \gamma L_{\min}, \qquad
    L_{\min} \leftarrow (1 + 1/\tau)\, L_{\min}.

  It assumes the reachable minimum is 0: with a floor above 0 the target
  stays below what can be reached and ``η`` grows without bound as ``g·v``
  vanishes (a label-noise logistic regression diverges); with a minimum
  below 0 ``η`` is clipped at 0 and the run stops.

  ``rule='robust'`` (the default) changes three things, each invariant to
  scaling the loss (the target also follows a shift of the loss, except for
  the first gap, which is set by the first loss):

  - **The target** is :math:`L_{\text{best}} - \Delta`, the lowest loss seen
    less a gap, so it never sits far below the reachable minimum whatever
    that is. :math:`\Delta_0 = (1 - \gamma\gamma_0)|L_0|` (the paper's first
    target); it grows by :math:`e^{0.05}` on a step that sets a new lowest
    loss and shrinks by :math:`e^{-0.02}` on one that does not, but never
    below the loss's recent fall, :math:`\min(\bar L_{0.99} - \bar L_{0.9},
    3(\bar L_{0.9} - L_{\text{best}}))` with :math:`\bar L_b` the loss's
    exponential average of decay :math:`b` (so minibatch noise, which makes
    new lowest losses rare, does not shrink the gap while the loss still
    falls; it vanishes once the run has converged).
  - **A curvature cap**: :math:`\eta \le c\, g\cdot v / (\kappa \|v\|^2)`
    with :math:`c` = ``curvature_cap`` and :math:`\kappa` the curvature
    measured along the recent steps by :class:`CurvatureProbe` (``c = 2`` is
    the edge of stability of a quadratic along ``v``). It binds when the
    loss-based step overshoots what the observed curvature allows.
  - **Noise scaling**: ``g·v`` is multiplied by :math:`\rho^p`, ``p`` =
    ``noise_power``, where :math:`\rho \ge 1` is the averaged squared norm of
    the raw gradients over that of ``g``: 1 when they agree, up to 19 when
    momentum 0.9 averages pure noise. A loss that the noise dominates then
    takes smaller steps.

  ``g`` and ``v`` must satisfy ``g·v ≥ 0``: L4Mom takes ``v = g`` (a
  bias-corrected momentum), L4Adam ``v = m̂/(√ŝ + ε)`` with ``g = m̂``.
  ``η`` is clipped at 0 (never a step uphill). A non-finite loss, gradient
  or ``g·v`` skips the step: zero update, state unchanged.

  Args:
    gradient_estimate: transformation giving ``g`` from the gradient;
      None for a bias-corrected momentum ``optax.ema(0.9, debias=True)``.
    direction: transformation giving ``v`` from the gradient (it also
      receives ``g`` as the extra argument ``gradient_estimate``, which
      :func:`scale_by_gradient_rms` uses and others ignore); None for
      ``v = g``.
    alpha: the fraction :math:`\alpha` of the linearized step taken.
    gamma: the fraction :math:`\gamma` of the minimal loss aimed for (the
      robust rule uses it only for its first target).
    tau: the timescale :math:`\tau` over which ``L_min`` is forgotten (paper
      rule only).
    gamma_0: ``L_min`` starts at :math:`\gamma_0` times the first loss.
    eps: :math:`\epsilon`, regularizes the division.
    rule: ``'robust'`` (default) or ``'paper'``, see above.
    curvature_cap: the robust rule's :math:`c` in ``(0, 2]``.
    noise_power: the robust rule's :math:`p \ge 0`; 0 turns noise scaling
      off. 0.25 by measurement: 0 lets minibatch label noise slow the run
      (and diverge once over Adam), 0.5 and above cost the MLPs 10-100×.
    min_learning_rate: optional lower bound of ``η`` (the paper has none).
    max_learning_rate: optional upper bound of ``η`` (the paper has none;
      L4's rate may jump by orders of magnitude by design).

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` whose ``update`` takes
    the current loss as the keyword argument ``value``, a real scalar.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2) + 5.0  # minimum 5, not 0
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
    >>> print(f'loss - 5 = {f(w) - 5:.1e}')
    loss - 5 = 0.0e+00

  References:
    Rolinek & Martius, `L4: Practical loss-based stepsize adaptation for deep
    learning <https://arxiv.org/abs/1802.05074>`_, 2018
  """
  checks.check_scalar('alpha', alpha, low_inclusive=False)
  checks.check_scalar('gamma', gamma, high=1.0)
  checks.check_scalar('tau', tau, low_inclusive=False)
  checks.check_scalar('gamma_0', gamma_0, high=1.0)
  checks.check_scalar('eps', eps)
  checks.check_choice('rule', rule, RULES)
  checks.check_scalar('curvature_cap', curvature_cap, high=2.0,
                      low_inclusive=False)
  checks.check_scalar('noise_power', noise_power)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  robust = rule == 'robust'
  if gradient_estimate is None:
    gradient_estimate = optax.ema(0.9, debias=True)
  gradient_estimate = base.with_extra_args_support(gradient_estimate)
  if direction is not None:
    direction = base.with_extra_args_support(direction)

  def init_fn(params):
    dtype = rate_lib.rate_dtype(params)
    # A fresh array per field: one buffer shared by two fields breaks buffer
    # donation (jax.jit(..., donate_argnums=...)) of the state.
    zero = lambda: jnp.zeros([], dtype)
    probe = CurvatureProbe(
        optax.tree.zeros_like(params) if robust else base.EmptyState(),
        zero(), zero(), zero(), zero())
    return ScaleByL4State(
        learning_rate=zero(),
        min_loss=zero(),
        count=jnp.zeros([], jnp.int32),
        gradient_state=gradient_estimate.init(params),
        direction_state=(
            base.EmptyState() if direction is None else direction.init(params)
        ),
        gap=zero(),
        curvature=probe,
        grad_sq=zero(),
        loss_fast=zero(),
        loss_slow=zero(),
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    if value is None:
      raise ValueError(rate_lib.missing_extra_arg_message(
          'scale_by_l4 needs the current minibatch loss `value=`:',
          MISSING_VALUE_MSG, extra_args))
    dtype = state.min_loss.dtype
    loss = check_value(value).astype(dtype)
    g, gradient_state = gradient_estimate.update(
        updates, state.gradient_state, params, **extra_args)
    if direction is None:
      v, direction_state = g, state.direction_state
    else:
      v, direction_state = direction.update(
          updates, state.direction_state, params, gradient_estimate=g,
          **extra_args)
    if robust:
      # Every product the rule needs, reduced together.
      g_dot_v, raw_sq, g_sq, v_sq, g_dot_p, v_dot_p = rate_lib.dots(
          [(g, v), (updates, updates), (g, g), (v, v),
           (updates, state.curvature.probe), (v, state.curvature.probe)],
          dtype)
      min_loss, gap, loss_fast, loss_slow = _robust_target(loss, state, gamma,
                                                          gamma_0)
      ratio, grad_sq = _noise_ratio(raw_sq, g_sq, state, dtype)
      above = loss - min_loss
      denom = g_dot_v * ratio ** noise_power + eps
      eta = alpha * (above + gap) / denom
      limit = _curvature_limit(state.curvature, g_dot_v, v_sq, curvature_cap)
      # Back-calculation: while the cap binds, the gap moves (by at most 5%
      # a step) toward the one whose step the cap allows. A gap the run has
      # outgrown would otherwise wait behind the cap and size a huge step
      # the moment the cap lapses (a curvature probe gone negative).
      fitted = limit * denom / alpha - above
      gap = jnp.where(eta > limit,
                      jnp.clip(fitted, CAP_GAP_SHRINK * gap, gap),
                      gap).astype(dtype)
      eta = jnp.minimum(eta, limit)
      # A finite loss and gradient keep the moments and the probe finite:
      # that check, made before them, lets each be computed and selected
      # in one pass per leaf.
      moments_ok = jnp.isfinite(loss) & jnp.isfinite(raw_sq)
    else:
      min_loss = jnp.where(state.count == 0, gamma_0 * loss,
                           jnp.minimum(state.min_loss, loss))
      gap, grad_sq = state.gap, state.grad_sq
      loss_fast, loss_slow = state.loss_fast, state.loss_slow
      g_dot_v = rate_lib.dot(g, v, dtype, per_leaf=False)
      eta = alpha * (loss - gamma * min_loss) / (g_dot_v + eps)
    eta = rate_lib.clip_rate(jnp.maximum(eta, 0.0), min_learning_rate,
                             max_learning_rate).astype(dtype)
    new_updates = rate_lib.scale_by_rate(eta, v, per_leaf=False)
    # A NaN/inf loss or gradient skips the step instead of poisoning L_min,
    # the moments or the parameters.
    finite = jnp.isfinite(loss) & jnp.isfinite(g_dot_v) & jnp.isfinite(eta)
    if robust:
      finite &= moments_ok
      curvature = _update_probe(state.curvature, v, g_dot_p, v_dot_p, eta,
                                state.count, dtype)
      # The parameter-sized state follows the check made before it.
      gradient_state, direction_state, probe = optax.tree.where(
          moments_ok, (gradient_state, direction_state, curvature.probe),
          (state.gradient_state, state.direction_state,
           state.curvature.probe))
      curvature = curvature._replace(probe=state.curvature.probe)
    else:
      curvature = state.curvature
    new_state = ScaleByL4State(
        learning_rate=eta,
        min_loss=(min_loss if robust
                  else (1.0 + 1.0 / tau) * min_loss).astype(dtype),
        count=optax.safe_increment(state.count),
        gradient_state=gradient_state,
        direction_state=direction_state,
        gap=gap,
        curvature=curvature,
        grad_sq=grad_sq,
        loss_fast=loss_fast,
        loss_slow=loss_slow,
    )
    new_updates, new_state = rate_lib.skip_unless(finite, new_updates,
                                                  new_state, state)
    if robust:
      new_state = new_state._replace(
          gradient_state=gradient_state, direction_state=direction_state,
          curvature=new_state.curvature._replace(probe=probe))
    return new_updates, new_state

  return base.GradientTransformationExtraArgs(init_fn, update_fn)
