"""RTHO and MARTHE: hypergradients through a discounted tangent system.

The tangent ``Z ≈ dw/dη`` of the parameters *and* of the base optimizer's
state is carried forward with one ``jax.jvp`` of the optimizer step, so any
Optax base direction works without a hand-derived Jacobian. One update is
four named steps: the rate (:func:`_step_rate`), the discount μ
(:func:`_step_mu`), the hyper-learning rate (:func:`_step_beta`) and the
tangent (:func:`_step_tangent`).
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
MASKED_MSG = (
    'scale_by_marthe received parameters with masked-out leaves (it runs '
    'inside optax.masked or optax.multi_transform), so value_fn= would see '
    'only part of the model. Pass value_fn=ohg.masked_value_fn(loss_fn, '
    'params), which fills the masked-out leaves from the full parameters.'
)
MU_RULES = ('descent', 'reference')
# β by rate rule: a step of log η per unit of cosine (the HD default, chosen
# by `python -m benchmarks.marthe_defaults`); the reference code's 1e-8.
DEFAULT_HYPERGRAD_LR = {'multiplicative': 0.05, 'additive': 1e-8}
# Decay of the running means of ĥ_t ĥ_{t-1} and |ĥ_t ĥ_{t-1}| (μ rule).
AGREEMENT_DECAY = 0.9
# A gradient norm this many times its running level restarts the tangent
# (μ = 0 for that step), on the multiplicative rule. 2 and 3 (where the step
# clip starts) cost RTHO most of its gain on minibatch MLPs; without a reset
# RTHO diverged on Rosenbrock and full-batch softmax regression
# (`python -m benchmarks.marthe_defaults`).
RESET_JUMP = 6.0


class ScaleByMartheState(NamedTuple):
  """State of :func:`scale_by_marthe`.

  Attributes:
    learning_rate: the rate ``η_t`` used by the last step (float32 or wider).
    hypergrad_lr: the live hyper-learning rate ``β``, adapted when
      ``kappa > 0``.
    hypergrad_lr_given: ``hypergrad_lr`` as last passed to the
      transformation: under ``optax.inject_hyperparams`` a new value moves
      the live ``β`` by as much.
    mu: the discount ``μ`` used by the last tangent update.
    mu_accum: ``c``, the accumulated ``μ`` of the adaptive rules.
    agreement: the running mean of ``ĥ_t ĥ_{t-1}`` (``'descent'`` μ rule).
    agreement_scale: the running mean of ``|ĥ_t ĥ_{t-1}|``.
    prev_hypergrad: the last hypergradient ``ĥ`` (the cosine on the
      multiplicative rule, ``h`` on the additive one).
    grad_norm: the running level of ``‖g‖`` the multiplicative rule clips
      jumps to (0 before the first step).
    tangent: ``Z^w ≈ dw/dη``, shaped like the parameters. After a step
      whose tangent overflowed it holds the overflow (±inf), which the next
      step sees in ``‖Z‖²`` and does not carry (see :func:`_tangent_ok`).
    state_tangent: the tangent of the base state: a tree shaped like it,
      with the tangent at each floating-point leaf and None at the others
      (step counters).
    prev_grad: the previous training gradient (the reference ``μ`` rule
      only; an empty state otherwise).
    base_state: the base direction's state.
    count: number of steps taken.
  """

  learning_rate: jax.Array
  hypergrad_lr: jax.Array
  hypergrad_lr_given: jax.Array
  mu: jax.Array
  mu_accum: jax.Array
  agreement: jax.Array
  agreement_scale: jax.Array
  prev_hypergrad: jax.Array
  grad_norm: jax.Array
  tangent: base.Updates
  state_tangent: Any
  prev_grad: Any
  base_state: base.OptState
  count: jax.Array  # type: ignore[assignment]  # as in optax


def masked_value_fn(loss_fn, params):
  """``value_fn=`` for MARTHE inside ``optax.masked`` or ``multi_transform``.

  There the transformation sees only its subset of the parameters, the
  others replaced by ``optax.MaskedNode()``; the returned function fills
  those from ``params`` (the full parameters of this step) and calls
  ``loss_fn`` on the whole model, so the Hessian-vector products are those of
  the real loss restricted to the subset.

  Args:
    loss_fn: the minibatch loss as a function of the full parameters.
    params: the full parameters at this step.

  Returns:
    A function of the masked parameter tree, to pass as ``value_fn=``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> params = {'w': jnp.zeros(2), 'b': jnp.zeros(())}
    >>> loss = lambda p: jnp.sum((p['w'] - 1.0) ** 2) + p['b'] ** 2
    >>> tx = optax.multi_transform(
    ...     {'marthe': ohg.marthe(), 'sgd': optax.sgd(0.1)},
    ...     {'w': 'marthe', 'b': 'sgd'})
    >>> state = tx.init(params)
    >>> updates, state = tx.update(
    ...     jax.grad(loss)(params), state, params,
    ...     value_fn=ohg.masked_value_fn(loss, params))
  """
  def value_fn(sub):
    full = jax.tree.map(lambda s, p: p if _is_masked(s) else s, sub, params,
                        is_leaf=_is_masked)
    return loss_fn(full)

  value_fn.fills_masked_leaves = True  # for _check_params
  return value_fn


def _is_masked(x) -> bool:
  return isinstance(x, optax.MaskedNode)


def _check_params(params, value_fn) -> None:
  """A ValueError saying what to do for masked-out or non-float leaves."""
  leaves = jax.tree.leaves(params, is_leaf=_is_masked)
  if any(_is_masked(x) for x in leaves) and not getattr(
      value_fn, 'fills_masked_leaves', False):
    raise ValueError(MASKED_MSG)
  paths = [jax.tree_util.keystr(p) for p, x in
           jax.tree_util.tree_leaves_with_path(params) if not _is_float(x)]
  if paths:
    raise ValueError(
        f'scale_by_marthe differentiates value_fn= through the parameters, '
        f'but the leaves {paths} are not floating-point. Keep them out of '
        f'the optimized tree, or apply MARTHE to the float leaves alone: '
        f'optax.masked(ohg.marthe(...), float_mask) with '
        f'value_fn=ohg.masked_value_fn(loss_fn, params).')


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
  return jnp.issubdtype(rate_lib.leaf_dtype(x), jnp.inexact)


def _float_part(base_state, tangent):
  """``tangent`` at the float leaves of ``base_state``, None elsewhere."""
  return jax.tree.map(lambda x, t: t if _is_float(x) else None,
                      base_state, tangent)


def _state_tangent_in(base_state, state_tangent, mu, tangent_ok):
  """The jvp tangent of the base state: ``μ Z^s`` on floats (0 if the
  tangent overflowed), float0 else."""
  leaves, treedef = jax.tree.flatten(base_state)
  it = iter(jax.tree.leaves(state_tangent))  # None entries are dropped
  tangents = [
      jnp.where(tangent_ok, mu.astype(x.dtype) * next(it), 0)
      if _is_float(x)
      else np.zeros(jnp.shape(x), jax.dtypes.float0)
      for x in leaves
  ]
  return jax.tree.unflatten(treedef, tangents)


def _zero_nans(tree):
  """NaN → 0 in a tangent.

  A base step with a square root (Adam's √v) at a coordinate whose gradient
  is exactly zero gives 0·∞ = NaN in the jvp, though the step does not move
  along the tangent there: its directional derivative is 0. An overflow
  (±∞) is kept, for the reset guard to see.
  """
  return jax.tree.map(lambda t: jnp.where(jnp.isnan(t), 0, t), tree)


def _tangent_ok(zz, state_tangent, dtype):
  """Whether the stored tangent may be carried: ``‖Z^w‖²`` (which the
  hypergradient's products give anyway) and ``‖Z^s‖²`` are finite.

  RTHO's tangent can overflow (``|1 - ηλ| > 1`` for long). Checked here, on
  products already reduced, an overflowed tangent is dropped where it is
  read — the step runs as if it were 0, the one-step ``∂Φ/∂η`` then starts
  it afresh — with no pass over it when it is written.
  """
  ok = jnp.isfinite(zz)
  if jax.tree.leaves(state_tangent):
    ok &= jnp.isfinite(rate_lib.dots([(state_tangent, state_tangent)],
                                     dtype)[0])
  return ok


def _step_rate(state, e_grad, updates, beta, multiplicative, bounds):
  """The rate, moved along ``h = ∇E(w_t)·Z_t`` before the step.

  Additive (the paper): ``η ← max(η - β h, 0)``. Multiplicative: ``log η ←
  log η - β ĥ`` with ``ĥ = cos(∇E, Z)`` in [-1, 1], clipped to a factor of 2
  (the HD family's scale-free rule; ``μ = 0`` is its HD exactly). At t = 0,
  ``Z = 0`` leaves the rate where it is.

  Returns:
    ``(η, ĥ or h, scale of this step's gradient, new norm level, ok,
    tangent_ok)``: the gradient scale clips a jump of ``‖g‖`` above twice
    its running level (multiplicative only), ``ok`` is False for a
    non-finite gradient, which skips the step, and ``tangent_ok`` is
    :func:`_tangent_ok` (the products then use ``Z = 0``).
  """
  dtype = state.learning_rate.dtype
  rate_opt = optax.sgd(beta)  # stateless: β lives in the state
  rate_opt_state = rate_opt.init(state.learning_rate)
  if not multiplicative:
    gz, zz = rate_lib.dots([(e_grad, state.tangent),
                            (state.tangent, state.tangent)], dtype)
    tangent_ok = _tangent_ok(zz, state.state_tangent, dtype)
    h = jnp.where(tangent_ok, gz, 0.0)
    eta, _ = rate_lib.step_rate(state.learning_rate, rate_opt_state, h,
                                rate_opt, *bounds)
    return (eta, h, jnp.ones([], dtype), state.grad_norm, jnp.isfinite(h),
            tangent_ok)
  # The cosine's three products and ‖g‖² (when the training gradient is not
  # ∇E), reduced together.
  pairs = [(e_grad, state.tangent), (e_grad, e_grad),
           (state.tangent, state.tangent)]
  if e_grad is not updates:
    pairs.append((updates, updates))
  products = rate_lib.dots(pairs, dtype)
  tangent_ok = _tangent_ok(products[2], state.state_tangent, dtype)
  cos = rate_lib.cosine_of(jnp.where(tangent_ok, products[0], 0.0),
                           products[1],
                           jnp.where(tangent_ok, products[2], 0.0))
  e_norm = jnp.sqrt(products[1])
  g_norm = e_norm if e_grad is updates else jnp.sqrt(products[3])
  eta, _ = rate_lib.step_rate(state.learning_rate, rate_opt_state, cos,
                              rate_opt, *bounds, multiplicative=True)
  scale, grad_norm = rate_lib.clip_to_level(g_norm, state.grad_norm)
  ok = jnp.isfinite(e_norm) & jnp.isfinite(g_norm)
  return eta, cos, scale, grad_norm, ok, tangent_ok


def _step_mu(state, eta, e_grad, rule, h):
  """The adaptive discount: ``c ← c·sign(μ) + μ``, ``μ ← z^{1/(c+1)}``.

  ``c`` counts the horizon, so ``μ`` drifts toward 1 while ``z > 0`` and is
  reset to 0 when ``z = 0``. ``'reference'``: ``z = clip(η / (∇E·b), 0, 1)``
  from this step's ``∇E`` and the previous training gradient ``b``, as the
  authors' code; near HD's balance consecutive gradients disagree about as
  often as they agree, and under minibatch noise it resets on most steps.
  ``'descent'``: the ex-post descent test of the last rate step — it was a
  descent step for the new hypergradient iff ``ĥ_t ĥ_{t-1} > 0`` — smoothed:
  ``z = clip(ρ̄ / ā, 0, 1)`` with ``ρ̄`` and ``ā`` running means of
  ``ĥ_t ĥ_{t-1}`` and ``|ĥ_t ĥ_{t-1}|``. A long horizon makes ``ĥ`` smooth,
  which keeps the horizon; an outdated tangent makes the rate steps
  alternate, which cuts it.

  Returns:
    ``(μ, c, ρ̄, ā)``; unchanged at the first step.
  """
  dtype = state.learning_rate.dtype
  scale = state.agreement_scale
  if rule == 'reference':
    agreement = rate_lib.dot(e_grad, state.prev_grad, dtype, per_leaf=False)
    safe = jnp.where(agreement > 0, agreement, 1.0)
    z = jnp.where(agreement > 0, eta / safe, 0.0)
    running = state.agreement
  else:
    prod = h * state.prev_hypergrad
    running = AGREEMENT_DECAY * state.agreement + (1 - AGREEMENT_DECAY) * prod
    scale = AGREEMENT_DECAY * scale + (1 - AGREEMENT_DECAY) * jnp.abs(prod)
    ok = scale > 0
    z = jnp.where(ok, running / jnp.where(ok, scale, 1.0), 0.0)
  z = jnp.clip(z, 0.0, 1.0)
  accum = state.mu_accum * jnp.sign(state.mu) + state.mu
  mu = (z ** (1.0 / (accum + 1.0))).astype(dtype)
  first = state.count == 0
  return (jnp.where(first, state.mu, mu),
          jnp.where(first, state.mu_accum, accum),
          jnp.where(first, state.agreement, running).astype(dtype),
          jnp.where(first, state.agreement_scale, scale).astype(dtype))


def _step_beta(state, beta, h, eta, kappa, multiplicative):
  """The hyper-learning rate, kept where its step is not finite.

  Additive (the reference): ``β ← max(β + κ h η, 0)``; as ``η > 0`` it
  shrinks while ``h < 0`` asks for a larger rate: a brake. Multiplicative:
  ``log β ← log β + κ ĥ_t ĥ_{t-1}``, gradient descent on ``log β`` through
  the last rate step: ``β`` grows while consecutive rate steps agree and
  shrinks while they alternate.
  """
  if multiplicative:
    new = beta * jnp.exp(kappa * h * state.prev_hypergrad)
  else:
    new = jnp.maximum(beta + kappa * h * eta, 0.0)
  return jnp.where(jnp.isfinite(new), new, beta).astype(beta.dtype)


def _step_tangent(direction, value_fn, updates, scale, state, params, eta,
                  mu, tangent_ok, extra_args):
  """The base step and ``Z_{t+1} = μ J_t Z_t + ∂Φ_t/∂η``, one ``jax.jvp``.

  The step sees the incoming gradient times ``scale`` (the clip), and the
  Hessian-vector product ``H μZ^w`` (a jvp of ``jax.grad(value_fn)``,
  forward-over-reverse) is scaled alike. A tangent that overflowed
  (``tangent_ok`` False) enters as 0 instead of being carried.

  Returns:
    ``(updates, base state, Z^w, Z^s)``.
  """
  z_w = jax.tree.map(
      lambda z: jnp.where(tangent_ok, mu.astype(z.dtype) * z, 0),
      state.tangent)
  _, hvp = jax.jvp(jax.grad(value_fn), (params,), (z_w,))
  # JAX's gradient of a real loss w.r.t. a complex leaf is the conjugate of
  # the updates' convention (Optax's): conjugate its derivative alike.
  hvp = jax.tree.map(lambda h: jnp.conj(h) if jnp.iscomplexobj(h) else h,
                     hvp)
  hvp = rate_lib.scale_tree(scale, hvp, per_leaf=False)
  grads = rate_lib.scale_tree(scale, updates, per_leaf=False)

  def step(grads, base_state, params, eta):
    d, base_state = direction.update(grads, base_state, params, **extra_args)
    return rate_lib.scale_by_rate(eta, d, per_leaf=False), base_state

  (new_updates, base_state), (du, ds) = jax.jvp(
      step,
      (grads, state.base_state, params, eta),
      (hvp, _state_tangent_in(state.base_state, state.state_tangent, mu,
                              tangent_ok),
       z_w, jnp.ones_like(eta)),
  )
  tangent = _zero_nans(jax.tree.map(jnp.add, z_w, du))
  state_tangent = _zero_nans(_float_part(base_state, ds))
  return new_updates, base_state, tangent, state_tangent


def scale_by_marthe(
    direction: base.GradientTransformation | None = None,
    learning_rate: jax.typing.ArrayLike = 1e-3,
    hypergrad_lr: jax.typing.ArrayLike | None = None,
    mu: jax.typing.ArrayLike = 1.0,
    kappa: jax.typing.ArrayLike = 0.0,
    *,
    adapt_mu: bool = False,
    mu_rule: str = 'descent',
    rate_dynamics: str = 'multiplicative',
    min_learning_rate: jax.typing.ArrayLike | None = 0.0,
    max_learning_rate: jax.typing.ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Scales a base direction by a rate learned through a discounted tangent.

  With :math:`\Phi_t(w, s; \eta)` one step of the base optimizer (state
  :math:`s`) from the gradient of the minibatch loss ``value_fn``, and
  :math:`Z_t \approx dw_t/d\eta` (parameters and base state):

  .. math::

    h_t &= \nabla E(w_t) \cdot Z^w_t \\
    \eta_t &= \max(\eta_{t-1} - \beta\, h_t, 0)
      \quad\text{or}\quad
      \log\eta_t = \log\eta_{t-1}
        - \mathrm{clip}(\beta \cos(\nabla E(w_t), Z^w_t), \pm\log 2) \\
    Z_{t+1} &= \mu\, J_t Z_t + \partial \Phi_t / \partial \eta, \qquad
      J_t = \partial \Phi_t / \partial (w, s) \\
    w_{t+1} &= \Phi_t(w_t, s_t; \eta_t)

  The first rate rule is the paper's (``rate_dynamics='additive'``); the
  second, the default, is the HD family's scale-free rule: the rate moves in
  log space by a normalized hypergradient, so ``β`` has no units, the rate
  stays positive and moves by at most a factor of 2 per step, and a jump of
  ``‖g‖`` above twice its running level is clipped before the step; a jump
  above six times it also restarts the tangent (``μ = 0`` for that step),
  which keeps RTHO stable where its outdated history would drive the rate
  up through an instability.

  ``μ J_t Z_t + ∂Φ_t/∂η`` is one ``jax.jvp`` of the step at
  :math:`(w_t, s_t, \eta_t)` with tangent :math:`(\mu Z^w, \mu Z^s, 1)`,
  Hessian-vector product included. ``μ = 0`` is hypergradient descent,
  ``μ = 1`` is RTHO.

  :math:`\nabla E` is the incoming (training) gradient unless a validation
  gradient is passed as ``validation_grad=``. With ``adapt_mu=True``, ``μ``
  follows ``mu_rule`` (``mu`` is then the starting value): ``'reference'``
  is the authors' rule, ``z = clip(η / (∇E·b), 0, 1)`` from the previous
  training gradient ``b``; ``'descent'`` (the default) tests ex post
  whether the last rate step was a descent step for the new hypergradient,
  :math:`z = \mathrm{clip}(\overline{\hat h_t \hat h_{t-1}} /
  \overline{|\hat h_t \hat h_{t-1}|}, 0, 1)` (running means, decay 0.9),
  so minibatch noise does not reset the horizon on most steps. Either way
  ``c ← c·sign(μ) + μ``, ``μ ← z^{1/(c+1)}``. With ``kappa > 0`` the
  hyper-learning rate adapts:
  :math:`\beta \leftarrow \max(\beta + \kappa\, h_t \eta_t, 0)` (additive,
  as the reference) or :math:`\log\beta \leftarrow \log\beta + \kappa\,
  \hat h_t \hat h_{t-1}` with :math:`\hat h` the cosine above
  (multiplicative).

  The primal step uses the incoming updates as the gradient, so transforms
  chained before (clipping, weight decay) act on the step; the tangent sees
  them as the identity (put weight decay into ``value_fn`` for an exact
  tangent). ``value_fn`` must be the loss whose gradient the updates are (a
  sum where the gradients are of a mean scales every Hessian-vector product
  by the batch size). A base step with a square root (Adam) differentiated
  at a coordinate whose gradient is exactly zero contributes 0, not NaN, to
  the tangent. Under ``optax.inject_hyperparams``, a changed ``mu`` (fixed
  μ), ``kappa`` or ``hypergrad_lr`` takes effect at the next step (the
  live ``β`` moves by the change); ``learning_rate`` is the initial rate.

  Args:
    direction: the base direction (``None`` for SGD), any Optax transform.
    learning_rate: the initial rate :math:`\eta_0`.
    hypergrad_lr: the (initial) hyper-learning rate :math:`\beta`; None for
      the default: 0.05 for the multiplicative rule, 1e-8 (the reference
      code's) for the additive one.
    mu: the discount :math:`\mu \in [0, 1]` (its start with ``adapt_mu``).
    kappa: the step :math:`\kappa` of the hyper-learning rate (0: fixed).
    adapt_mu: adapt ``μ`` online by ``mu_rule``.
    mu_rule: ``'descent'`` or ``'reference'`` (see above).
    rate_dynamics: ``'multiplicative'`` or ``'additive'`` (see above).
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
    >>> tx = ohg.scale_by_marthe()
    >>> @jax.jit
    ... def step(w, state):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    ...   return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(2)
    >>> state = tx.init(w)
    >>> for _ in range(100):
    ...   w, state = step(w, state)
    >>> print(f'loss {f(w):.1e}, rate {state.learning_rate:.3f}')
    loss 3.9e-06, rate 0.141

  References:
    Donini et al, `Scheduling the Learning Rate via Hypergradients: New
    Insights and a New Algorithm <https://arxiv.org/abs/1910.08525>`_, 2020

    Franceschi et al, `Forward and Reverse Gradient-Based Hyperparameter
    Optimization <https://arxiv.org/abs/1703.01785>`_, 2017

    Schraudolph, `Local Gain Adaptation in Stochastic Gradient Descent
    <https://doi.org/10.1049/cp:19991170>`_, 1999
  """
  checks.check_choice('rate_dynamics', rate_dynamics, rate_lib.RATE_DYNAMICS)
  checks.check_choice('mu_rule', mu_rule, MU_RULES)
  multiplicative = rate_dynamics == 'multiplicative'
  if hypergrad_lr is None:
    hypergrad_lr = DEFAULT_HYPERGRAD_LR[rate_dynamics]
  checks.check_scalar('learning_rate', learning_rate,
                      low_inclusive=not multiplicative)
  checks.check_scalar('hypergrad_lr', hypergrad_lr)
  checks.check_scalar('mu', mu, high=1.0)
  checks.check_scalar('kappa', kappa)
  checks.check_bounds(min_learning_rate, max_learning_rate)
  bounds = (min_learning_rate, max_learning_rate)
  if direction is None:
    direction = optax.identity()
  direction = base.with_extra_args_support(direction)

  def init_fn(params):
    dtype = rate_lib.rate_dtype(params)
    base_state = direction.init(params)
    zero = lambda: jnp.zeros([], dtype)  # a fresh buffer per field
    return ScaleByMartheState(
        learning_rate=jnp.asarray(learning_rate, dtype),
        hypergrad_lr=jnp.asarray(hypergrad_lr, dtype),
        hypergrad_lr_given=jnp.asarray(hypergrad_lr, dtype),
        mu=jnp.asarray(mu, dtype),
        mu_accum=zero(),
        agreement=zero(),
        agreement_scale=zero(),
        prev_hypergrad=zero(),
        grad_norm=zero(),
        tangent=optax.tree.zeros_like(params),
        state_tangent=_float_part(base_state,
                                  optax.tree.zeros_like(base_state)),
        prev_grad=(optax.tree.zeros_like(params)
                   if adapt_mu and mu_rule == 'reference'
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
    _check_params(params, value_fn)
    _check_value_fn(value_fn, params)
    dtype = state.learning_rate.dtype
    e_grad = updates if validation_grad is None else validation_grad
    # The live β, moved by a hypergrad_lr changed since the last step (a
    # no-op, exactly, unless optax.inject_hyperparams changed it).
    given = jnp.asarray(hypergrad_lr, dtype)
    beta = state.hypergrad_lr + (given - state.hypergrad_lr_given)

    # The reference's order (adatune's hyper_step): the rate moves with the
    # current β; then μ is adapted from the *new* rate; then β.
    eta, h, scale, grad_norm, ok, tangent_ok = _step_rate(
        state, e_grad, updates, beta, multiplicative, bounds)
    if adapt_mu:
      mu_t, mu_accum, agreement, agreement_scale = _step_mu(
          state, eta, e_grad, mu_rule, h)
    else:  # the argument, so that an injected μ takes effect
      mu_t, mu_accum, agreement, agreement_scale = (
          jnp.asarray(mu, dtype), state.mu_accum, state.agreement,
          state.agreement_scale)
    new_beta = _step_beta(state, beta, h, eta, kappa, multiplicative)
    if multiplicative:
      # A jump of ‖g‖ far above its level marks a change of regime or a
      # rate gone unstable: the tangent's history is outdated, restart it.
      mu_t = jnp.where(scale < rate_lib.GROWTH_LIMIT / RESET_JUMP,
                       jnp.zeros_like(mu_t), mu_t)

    new_updates, base_state, tangent, state_tangent = _step_tangent(
        direction, value_fn, updates, scale, state, params, eta, mu_t,
        tangent_ok, extra_args)
    new_state = ScaleByMartheState(
        learning_rate=eta,
        hypergrad_lr=new_beta,
        hypergrad_lr_given=given,
        mu=mu_t,
        mu_accum=mu_accum,
        agreement=agreement,
        agreement_scale=agreement_scale,
        prev_hypergrad=h.astype(dtype),
        grad_norm=grad_norm,
        tangent=tangent,
        state_tangent=state_tangent,
        prev_grad=(updates if adapt_mu and mu_rule == 'reference'
                   else state.prev_grad),
        base_state=base_state,
        count=optax.safe_increment(state.count),
    )
    # A non-finite gradient (or validation gradient) makes h non-finite
    # (NaN·0 is NaN, so also at the first step): skip the whole step.
    return rate_lib.skip_unless(ok, new_updates, new_state, state)

  return base.GradientTransformationExtraArgs(init_fn, update_fn)
