"""Aliases: the named optimizers of the papers, as thin compositions.

Names follow "Hypergradient based optimization methods":
``{model optimizer}_op_{rate optimizer}_lop``; the ``_op_sgd_lop`` ones are
plain HD and go by their usual names (``sgd_hd``, ``sgdn_hd``, ``adam_hd``).
HD's defaults are the package's scale-free rule from the papers'
``α_0 = 0.001``; ``rate_dynamics='additive'`` gives the papers' rule and
their ``β`` (0.001 over SGD and Nesterov, 1e-7 over Adam).
"""

import jax
import optax
from optax._src import base

from optax_hypergrad._src import checks
from optax_hypergrad._src import hypergradient
from optax_hypergrad._src import l4
from optax_hypergrad._src import marthe as marthe_lib
from optax_hypergrad._src import rate as rate_lib

BASES = ('sgd', 'nesterov', 'momentum', 'adam')
# The papers' β for the additive rule, by base (Baydin et al. 2018).
_PAPER_HYPERGRAD_LR = {'sgd': 1e-3, 'nesterov': 1e-3, 'momentum': 1e-3,
                       'adam': 1e-7}

ArrayLike = jax.typing.ArrayLike


# The target cosine c* of the multiplicative rule over SGD and Nesterov
# with SGD or Nesterov on the rate: minibatches drawn epoch-wise (a
# permutation per epoch, as training loops draw them) are negatively
# correlated, which biases the cosine by about -batch/examples; with c* = 0
# the rate decayed on every minibatch task. Not over Adam: there it kept a
# high start high (Adam-HD from 1e-2 ended at 0.22 on the MNIST MLP where
# c* = 0 reached 3e-4), and with Adam on the rate, whose normalized step
# turns an offset into a full-speed climb, it ran the rate away. Measured
# by `python -m benchmarks.defaults` and the benchmark suite.
EPOCHWISE_TARGET_COSINE = -0.03

# β of the multiplicative rule with Adam on the rate over an Adam base: a
# smaller step than Adam on the rate takes over SGD or Nesterov (0.05).
# Both normalize — the base its direction, the rate optimizer the cosine —
# so the log-rate random-walks by about β a step wherever the cosine is
# noise; over Adam the rate has little to climb from 1e-3, over SGD and
# Nesterov it has orders of magnitude (there 0.02 lost on the suite).
# Measured by `python -m benchmarks.defaults` and the benchmark suite.
ADAM_OVER_ADAM_LOG_STEP = 0.02


def default_target_cosine(base_name: str, rate_optimizer) -> float:
  """``c*`` of the multiplicative rule for a named base and rate optimizer:
  -0.03 over SGD, Nesterov or heavy ball with SGD or Nesterov on the rate,
  else 0 (HD's own balance)."""
  if base_name != 'adam' and rate_optimizer in ('sgd', 'nesterov'):
    return EPOCHWISE_TARGET_COSINE
  return 0.0


def default_hypergrad_lr(base_name: str, rate_optimizer,
                         rate_dynamics: str) -> float | None:
  """``β`` for a named base and rate optimizer: the papers' by base with the
  additive rule; with the multiplicative rule 0.02 for Adam on the rate over
  Adam, else the rate optimizer's (0.05 for ``'sgd'`` and ``'adam'``, 0.005
  for ``'nesterov'``). None for an Optax transformation (it brings its own
  step) or an unknown name (rejected with a ValueError where it is made)."""
  if rate_optimizer not in rate_lib.RATE_OPTIMIZERS:
    return None
  if rate_dynamics == 'additive':
    return _PAPER_HYPERGRAD_LR[base_name]
  if base_name == 'adam' and rate_optimizer == 'adam':
    return ADAM_OVER_ADAM_LOG_STEP
  return rate_lib.DEFAULT_LOG_STEPS[rate_optimizer]


# MARTHE's κ by rate rule: fixed β on the scale-free rule (adapting it lost,
# `python -m benchmarks.marthe_defaults`); the reference code's 1e-6.
DEFAULT_MARTHE_KAPPA = {'multiplicative': 0.0, 'additive': 1e-6}


def base_direction(
    base_name: str,
    *,
    momentum: ArrayLike = 0.9,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
) -> base.GradientTransformation:
  """The direction ``d_t`` of a named base optimizer, as an Optax transform.

  Args:
    base_name: ``'sgd'`` (``d = g``), ``'nesterov'`` (``d = g + μ v``,
      ``v ← μ v + g``), ``'momentum'`` (heavy ball, ``d = v``) or ``'adam'``
      (``d = m̂ / (√v̂ + ε)``).
    momentum: ``μ`` of ``'nesterov'`` and ``'momentum'``.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's ``ε``, added to ``√v̂``.

  Returns:
    An Optax transformation producing the (unscaled, unsigned) direction.
  """
  checks.check_choice('base', base_name, BASES)
  if base_name == 'sgd':
    return optax.identity()
  if base_name in ('nesterov', 'momentum'):
    checks.check_scalar('momentum', momentum, high=1.0)
    return optax.trace(decay=momentum, nesterov=base_name == 'nesterov')
  checks.check_scalar('b1', b1, high=1.0, high_inclusive=False)
  checks.check_scalar('b2', b2, high=1.0, high_inclusive=False)
  checks.check_scalar('eps', eps)
  return optax.scale_by_adam(b1=b1, b2=b2, eps=eps)


def hypergradient_descent(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    base: str = 'sgd',
    rate_optimizer: str | base.GradientTransformation = 'sgd',
    rate_dynamics: str = 'multiplicative',
    target_cosine: ArrayLike | None = None,
    momentum: ArrayLike = 0.9,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Any base optimizer with its learning rate learned by hypergradients.

  The general form behind every alias of this module: the ``base``
  optimizer's direction :math:`d_t`, scaled by a rate :math:`\alpha_t` that
  ``rate_optimizer`` moves along the hypergradient
  :math:`h_t = -g_t \cdot d_{t-1}` (see :func:`scale_by_hypergradient`).

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate optimizer; None for the
      default: with the multiplicative rule 0.05 (rate optimizer ``'sgd'``
      or ``'adam'``) or 0.005 (``'nesterov'``), a step of :math:`\log\alpha`
      per unit of cosine, except 0.02 for ``'adam'`` on the rate over an
      ``'adam'`` base; with the additive rule the papers' 1e-3 (SGD,
      Nesterov) or 1e-7 (Adam).
    base: ``'sgd'``, ``'nesterov'``, ``'momentum'`` or ``'adam'``.
    rate_optimizer: ``'sgd'``, ``'nesterov'``, ``'adam'`` or an Optax
      transformation (then ``hypergrad_lr`` must be None).
    rate_dynamics: ``'multiplicative'`` (the default: scale-free, the rate
      stays positive and moves by at most 2x a step) or ``'additive'`` (the
      papers' rule); see :func:`scale_by_hypergradient`.
    target_cosine: the cosine of consecutive steps the multiplicative rule
      steers to; None for the default: -0.03 over ``'sgd'``, ``'nesterov'``
      or ``'momentum'`` with ``'sgd'`` or ``'nesterov'`` on the rate (it
      offsets the negative correlation of minibatches drawn a permutation
      per epoch, about -batch/examples), else 0 (HD's own balance).
    momentum: the base's momentum (``'nesterov'``, ``'momentum'``).
    b1: Adam's first-moment decay (``'adam'``).
    b2: Adam's second-moment decay (``'adam'``).
    eps: Adam's ``ε`` (``'adam'``).
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.hypergradient_descent(base='nesterov', rate_optimizer='adam')
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> for _ in range(300):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w)
    ...   w = optax.apply_updates(w, updates)
    >>> print(f'loss {f(w):.1e}, rate {state.learning_rate:.3f}')
    loss 0.0e+00, rate 0.046

  References:
    Baydin et al, `Online Learning Rate Adaptation with Hypergradient Descent
    <https://arxiv.org/abs/1703.04782>`_, 2018

    `Hypergradient based optimization methods
    <https://openreview.net/forum?id=BkrsAzWAb>`_, 2019
  """
  direction = base_direction(base, momentum=momentum, b1=b1, b2=b2, eps=eps)
  if target_cosine is None:
    target_cosine = default_target_cosine(base, rate_optimizer)
  if hypergrad_lr is None:
    hypergrad_lr = default_hypergrad_lr(base, rate_optimizer, rate_dynamics)
  return hypergradient.scale_by_hypergradient(
      direction,
      learning_rate,
      hypergrad_lr,
      rate_optimizer=rate_optimizer,
      rate_dynamics=rate_dynamics,
      target_cosine=target_cosine,
      per_leaf=per_leaf,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate,
  )


def sgd_hd(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGD-HD: SGD, rate learned by HD.

  The rate is moved by plain gradient steps along its hypergradient
  :math:`h_t = -g_t \cdot d_{t-1}`: by default on :math:`\log\alpha`, along
  the cosine of :math:`g_t` and :math:`d_{t-1}` (scale-free); with
  ``rate_dynamics='additive'`` the paper's :math:`\alpha_t = \alpha_{t-1} -
  \beta h_t`. See :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='sgd', rate_optimizer='sgd',
      rate_dynamics=rate_dynamics,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def sgd_op_sgdn_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGD_op-SGDN_lop: SGD, rate by SGDN_lop.

  The rate is moved by Nesterov momentum on the rate ("Hypergradient based
  optimization methods", Algorithm 1, :math:`\mu = 0.9`), along the
  hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by default on
  :math:`\log\alpha` along its cosine); see :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='sgd', rate_optimizer='nesterov',
      rate_dynamics=rate_dynamics,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def sgd_op_adam_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGD_op-Adam_lop: SGD, rate by Adam_lop.

  The rate is moved by Adam on the rate ("Hypergradient based optimization
  methods", Algorithm 2, :math:`\beta_1 = 0.9, \beta_2 = 0.999, \epsilon =
  10^{-8}`), along the hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by
  default on :math:`\log\alpha` along its cosine); see
  :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='sgd', rate_optimizer='adam',
      rate_dynamics=rate_dynamics,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def sgdn_hd(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    momentum: ArrayLike = 0.9,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGDN-HD: Nesterov SGD, rate learned by HD.

  The rate is moved by plain gradient steps along its hypergradient
  :math:`h_t = -g_t \cdot d_{t-1}`: by default on :math:`\log\alpha`, along
  the cosine of :math:`g_t` and :math:`d_{t-1}` (scale-free); with
  ``rate_dynamics='additive'`` the paper's :math:`\alpha_t = \alpha_{t-1} -
  \beta h_t`. See :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    momentum: the Nesterov momentum :math:`\mu` of the base.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='nesterov', rate_optimizer='sgd',
      rate_dynamics=rate_dynamics,
      momentum=momentum,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def sgdn_op_sgdn_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    momentum: ArrayLike = 0.9,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGDN_op-SGDN_lop: Nesterov SGD, rate by SGDN_lop.

  The rate is moved by Nesterov momentum on the rate ("Hypergradient based
  optimization methods", Algorithm 1, :math:`\mu = 0.9`), along the
  hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by default on
  :math:`\log\alpha` along its cosine); see :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    momentum: the Nesterov momentum :math:`\mu` of the base.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='nesterov', rate_optimizer='nesterov',
      rate_dynamics=rate_dynamics,
      momentum=momentum,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def sgdn_op_adam_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    momentum: ArrayLike = 0.9,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""SGDN_op-Adam_lop: Nesterov SGD, rate by Adam_lop.

  The rate is moved by Adam on the rate ("Hypergradient based optimization
  methods", Algorithm 2, :math:`\beta_1 = 0.9, \beta_2 = 0.999, \epsilon =
  10^{-8}`), along the hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by
  default on :math:`\log\alpha` along its cosine); see
  :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    momentum: the Nesterov momentum :math:`\mu` of the base.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='nesterov', rate_optimizer='adam',
      rate_dynamics=rate_dynamics,
      momentum=momentum,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def adam_hd(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Adam-HD: Adam, rate learned by HD.

  The rate is moved by plain gradient steps along its hypergradient
  :math:`h_t = -g_t \cdot d_{t-1}`: by default on :math:`\log\alpha`, along
  the cosine of :math:`g_t` and :math:`d_{t-1}` (scale-free); with
  ``rate_dynamics='additive'`` the paper's :math:`\alpha_t = \alpha_{t-1} -
  \beta h_t`. See :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's :math:`\epsilon`, added to :math:`\sqrt{\hat v}`.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='adam', rate_optimizer='sgd',
      rate_dynamics=rate_dynamics,
      b1=b1, b2=b2, eps=eps,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def adam_op_sgdn_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Adam_op-SGDN_lop: Adam, rate by SGDN_lop.

  The rate is moved by Nesterov momentum on the rate ("Hypergradient based
  optimization methods", Algorithm 1, :math:`\mu = 0.9`), along the
  hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by default on
  :math:`\log\alpha` along its cosine); see :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's :math:`\epsilon`, added to :math:`\sqrt{\hat v}`.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='adam', rate_optimizer='nesterov',
      rate_dynamics=rate_dynamics,
      b1=b1, b2=b2, eps=eps,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def adam_op_adam_lop(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    rate_dynamics: str = 'multiplicative',
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    per_leaf: bool = False,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""Adam_op-Adam_lop: Adam, rate by Adam_lop.

  The rate is moved by Adam on the rate ("Hypergradient based optimization
  methods", Algorithm 2, :math:`\beta_1 = 0.9, \beta_2 = 0.999, \epsilon =
  10^{-8}`), along the hypergradient :math:`h_t = -g_t \cdot d_{t-1}` (by
  default on :math:`\log\alpha` along its cosine); see
  :func:`scale_by_hypergradient`.

  Args:
    learning_rate: the initial rate :math:`\alpha_0`.
    hypergrad_lr: :math:`\beta`, the step of the rate's optimizer; None for
      the default of ``rate_dynamics`` (see :func:`hypergradient_descent`).
    rate_dynamics: ``'multiplicative'`` (scale-free, the default) or
      ``'additive'`` (the paper's :math:`\alpha \leftarrow \alpha - \beta
      h`).
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's :math:`\epsilon`, added to :math:`\sqrt{\hat v}`.
    per_leaf: one rate per parameter leaf instead of one global rate.
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs`.
  """
  return hypergradient_descent(
      learning_rate, hypergrad_lr, base='adam', rate_optimizer='adam',
      rate_dynamics=rate_dynamics,
      b1=b1, b2=b2, eps=eps,
      per_leaf=per_leaf, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def l4_mom(
    alpha: ArrayLike = 0.15,
    gamma: ArrayLike = 0.9,
    tau: ArrayLike = 1000.0,
    gamma_0: ArrayLike = 0.75,
    eps: ArrayLike = 1e-12,
    b1: ArrayLike = 0.9,
    *,
    rule: str = 'robust',
    curvature_cap: ArrayLike = 1.9,
    noise_power: ArrayLike = 0.25,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""L4Mom: L4's step size on a bias-corrected momentum direction.

  ``g = v = ⟨∇L⟩_{τ_m}``, the bias-corrected exponential average of the
  gradients with timescale ``τ_m = 1/(1 - b1) = 10``; see
  :func:`scale_by_l4`. The update takes the loss as ``value=``.

  Args:
    alpha: the fraction of the linearized step taken.
    gamma: the fraction of the minimal loss aimed for.
    tau: the timescale over which ``L_min`` is forgotten.
    gamma_0: ``L_min`` starts at ``gamma_0`` times the first loss.
    eps: regularizes the division by ``g·v``.
    b1: the momentum decay (timescale 10 for 0.9).
    rule: ``'robust'`` (default: a target that follows the reachable
      minimum, a curvature cap and noise scaling) or ``'paper'``
      (Rolinek & Martius exactly); see :func:`scale_by_l4`.
    curvature_cap: the robust rule's cap on the step, in units of the
      measured curvature's stable step.
    noise_power: how strongly the robust rule shrinks the step when
      gradient noise dominates (0: not at all).
    min_learning_rate: optional lower bound of the effective rate.
    max_learning_rate: optional upper bound of the effective rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` taking ``value=``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.l4_mom()
    >>> @jax.jit
    ... def step(w, state):
    ...   loss, grads = jax.value_and_grad(f)(w)
    ...   updates, state = tx.update(grads, state, w, value=loss)
    ...   return optax.apply_updates(w, updates), state
    >>> w = jnp.zeros(3)
    >>> state = tx.init(w)
    >>> for _ in range(200):
    ...   w, state = step(w, state)
    >>> print(f'converged: {f(w) < 1e-6}, rate {state.learning_rate:.2f}')
    converged: True, rate 0.95

    The rate sits at the curvature cap, ``1.9`` over the curvature ``2``.

  References:
    Rolinek & Martius, `L4: Practical loss-based stepsize adaptation for deep
    learning <https://arxiv.org/abs/1802.05074>`_, 2018
  """
  checks.check_scalar('b1', b1, high=1.0, high_inclusive=False)
  return l4.scale_by_l4(
      optax.ema(b1, debias=True), None, alpha, gamma, tau, gamma_0, eps,
      rule=rule, curvature_cap=curvature_cap, noise_power=noise_power,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def l4_adam(
    alpha: ArrayLike = 0.15,
    gamma: ArrayLike = 0.9,
    tau: ArrayLike = 1000.0,
    gamma_0: ArrayLike = 0.75,
    eps: ArrayLike = 1e-12,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    adam_eps: ArrayLike = 1e-4,
    *,
    rule: str = 'robust',
    curvature_cap: ArrayLike = 1.9,
    noise_power: ArrayLike = 0.25,
    min_learning_rate: ArrayLike | None = None,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""L4Adam: L4's step size on Adam's direction.

  ``v = m̂ / (√ŝ + adam_eps)`` with timescales 10 and 1000 (``b1 = 0.9``,
  ``b2 = 0.999``) and ``adam_eps = 1e-4`` as in the paper; the gradient
  estimate is the bias-corrected momentum ``g = m̂``, so ``g·v ≥ 0``. ``m̂``
  is kept once, as the gradient estimate, and
  :func:`scale_by_gradient_rms` divides it by ``√ŝ + ε``: the state holds
  two parameter-sized moments, as Adam's does. See :func:`scale_by_l4`. The
  update takes the loss as ``value=``.

  Args:
    alpha: the fraction of the linearized step taken.
    gamma: the fraction of the minimal loss aimed for.
    tau: the timescale over which ``L_min`` is forgotten.
    gamma_0: ``L_min`` starts at ``gamma_0`` times the first loss.
    eps: regularizes the division by ``g·v``.
    b1: decay of the first moment (and of the gradient estimate).
    b2: decay of the second moment.
    adam_eps: Adam's ``ε``, added outside the root.
    rule: ``'robust'`` (default: a target that follows the reachable
      minimum, a curvature cap and noise scaling) or ``'paper'``
      (Rolinek & Martius exactly); see :func:`scale_by_l4`.
    curvature_cap: the robust rule's cap on the step, in units of the
      measured curvature's stable step.
    noise_power: how strongly the robust rule shrinks the step when
      gradient noise dominates (0: not at all).
    min_learning_rate: optional lower bound of the effective rate.
    max_learning_rate: optional upper bound of the effective rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` taking ``value=``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
    >>> tx = ohg.l4_adam()
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
    loss 0.0e+00

  References:
    Rolinek & Martius, `L4: Practical loss-based stepsize adaptation for deep
    learning <https://arxiv.org/abs/1802.05074>`_, 2018
  """
  checks.check_scalar('b1', b1, high=1.0, high_inclusive=False)
  checks.check_scalar('b2', b2, high=1.0, high_inclusive=False)
  checks.check_scalar('adam_eps', adam_eps)
  return l4.scale_by_l4(
      optax.ema(b1, debias=True),
      l4.scale_by_gradient_rms(b2=b2, eps=adam_eps),
      alpha, gamma, tau, gamma_0, eps, rule=rule,
      curvature_cap=curvature_cap, noise_power=noise_power,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def rtho(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    *,
    base: str = 'sgd',
    rate_dynamics: str = 'multiplicative',
    momentum: ArrayLike = 0.9,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    min_learning_rate: ArrayLike | None = 0.0,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""RTHO: the rate learned through the full (undiscounted) tangent.

  :func:`scale_by_marthe` with ``μ = 1`` (Franceschi et al. 2017): the
  hypergradient of the loss w.r.t. a rate held fixed since the start, carried
  forward in real time. The default rate rule is the scale-free one
  (``β = 0.05`` per unit of cosine, ``η_0 = 1e-3``); the paper's additive
  rule at the reference code's setting is
  ``rtho(0.01, 1e-8, rate_dynamics='additive')``. The update takes
  ``value_fn=``.

  Args:
    learning_rate: the initial rate :math:`\eta_0`.
    hypergrad_lr: the hyper-learning rate :math:`\beta`; None for 0.05
      (multiplicative) or 1e-8 (additive).
    base: ``'sgd'``, ``'nesterov'``, ``'momentum'`` or ``'adam'``.
    rate_dynamics: ``'multiplicative'`` (scale-free) or ``'additive'`` (the
      paper's).
    momentum: the base's momentum.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's :math:`\epsilon`.
    min_learning_rate: lower bound of the rate: 0 as in the paper.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` taking ``value_fn=``.

  References:
    Franceschi et al, `Forward and Reverse Gradient-Based Hyperparameter
    Optimization <https://arxiv.org/abs/1703.01785>`_, 2017
  """
  direction = base_direction(base, momentum=momentum, b1=b1, b2=b2, eps=eps)
  return marthe_lib.scale_by_marthe(
      direction, learning_rate, hypergrad_lr, mu=1.0,
      rate_dynamics=rate_dynamics, min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)


def marthe(
    learning_rate: ArrayLike = 1e-3,
    hypergrad_lr: ArrayLike | None = None,
    kappa: ArrayLike | None = None,
    mu: ArrayLike = 0.0,
    *,
    base: str = 'sgd',
    adapt_mu: bool = True,
    mu_rule: str = 'descent',
    rate_dynamics: str = 'multiplicative',
    momentum: ArrayLike = 0.9,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    min_learning_rate: ArrayLike | None = 0.0,
    max_learning_rate: ArrayLike | None = None,
) -> base.GradientTransformationExtraArgs:
  r"""MARTHE: discounted tangent, with ``μ`` (and ``β``) adapted online.

  :func:`scale_by_marthe` with ``μ`` adapted online (starting from ``mu``;
  0 makes the first step plain HD). The defaults adapt and never diverged
  across the problems they were chosen on: the scale-free rate rule
  (``η_0 = 1e-3``, ``β = 0.05`` per unit of cosine, ``κ = 0``) and the
  ``'descent'`` ``μ`` rule. The paper's rules at the reference code's setting
  (the paper's own were lost) are one call away:
  ``marthe(0.01, 1e-8, 1e-6, rate_dynamics='additive',
  mu_rule='reference')``. The update takes ``value_fn=`` and optionally
  ``validation_grad=``.

  Args:
    learning_rate: the initial rate :math:`\eta_0`.
    hypergrad_lr: the initial hyper-learning rate :math:`\beta_0`; None for
      0.05 (multiplicative) or 1e-8 (additive).
    kappa: the step of the hyper-learning rate (0 keeps it fixed); None for
      0 (multiplicative) or 1e-6 (additive, the reference code's).
    mu: the starting discount :math:`\mu_0` (the fixed one if not
      ``adapt_mu``).
    base: ``'sgd'``, ``'nesterov'``, ``'momentum'`` or ``'adam'``.
    adapt_mu: adapt ``μ`` online (MARTHE); False keeps ``mu`` fixed.
    mu_rule: ``'descent'`` or ``'reference'`` (the authors' rule).
    rate_dynamics: ``'multiplicative'`` (scale-free) or ``'additive'`` (the
      paper's).
    momentum: the base's momentum.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    eps: Adam's :math:`\epsilon`.
    min_learning_rate: lower bound of the rate: 0 as in the paper.
    max_learning_rate: optional upper bound of the rate.

  Returns:
    A :class:`optax.GradientTransformationExtraArgs` taking ``value_fn=``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optax_hypergrad as ohg
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * (w - 1.0) ** 2)
    >>> tx = ohg.marthe()
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
  """
  if kappa is None:
    kappa = DEFAULT_MARTHE_KAPPA.get(rate_dynamics, 0.0)
  direction = base_direction(base, momentum=momentum, b1=b1, b2=b2, eps=eps)
  return marthe_lib.scale_by_marthe(
      direction, learning_rate, hypergrad_lr, mu=mu, kappa=kappa,
      adapt_mu=adapt_mu, mu_rule=mu_rule, rate_dynamics=rate_dynamics,
      min_learning_rate=min_learning_rate,
      max_learning_rate=max_learning_rate)
