"""The learned learning rate: its dtype, its hypergradient and its step.

Every method of the package that learns a step size (HD and its ``_lop``
variants, MARTHE) keeps the rate as a float32-or-wider scalar, or one scalar
per parameter leaf, and moves it with an Optax transformation acting on that
scalar. This module holds that shared machinery.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from optax._src import base

from optax_hypergrad._src import checks

RATE_OPTIMIZERS = ('sgd', 'nesterov', 'adam')
RATE_DYNAMICS = ('multiplicative', 'additive')
# The most a multiplicative rate step may move the rate: a factor of 2 either
# way, whatever the rate optimizer proposes.
MAX_LOG_STEP = math.log(2.0)
# β of the multiplicative rule by rate optimizer: a step of log α per unit of
# cosine, chosen by measurement (`python -m benchmarks.defaults`): 0.05 for
# SGD and Adam on the rate; 0.005 with Nesterov momentum on the rate, whose
# steady step is 1/(1 - 0.9) = 10x larger (0.01 already overshot).
DEFAULT_LOG_STEPS = {'sgd': 0.05, 'nesterov': 0.005, 'adam': 0.05}
# β of the additive rule, whatever the rate optimizer.
DEFAULT_STEPS = dict.fromkeys(RATE_OPTIMIZERS, 1e-3)
# How far above its running level the gradient norm may jump before the
# multiplicative rule clips it.
GROWTH_LIMIT = 2.0


def leaf_dtype(leaf: Any) -> jnp.dtype:
  """A leaf's dtype: an array's, a ``jax.ShapeDtypeStruct``'s (abstract
  initialization, as sharded set-ups use), or a Python number's."""
  dtype = getattr(leaf, 'dtype', None)
  return jnp.dtype(dtype) if dtype is not None else jnp.asarray(leaf).dtype


def rate_dtype(params: base.Params) -> jnp.dtype:
  """The dtype of the learned rate: float32, or wider when params are wider.

  A bfloat16 or float16 rate would round away the small hypergradient steps
  (``β h`` is often 1e-7 of the rate), so the rate never goes below float32.
  """
  # Not optax.tree.dtype: it promotes across leaves, which strict dtype
  # promotion rejects for a bfloat16/float32 mix.
  for leaf in jax.tree.leaves(params):
    dtype = leaf_dtype(leaf)
    if jnp.issubdtype(dtype, jnp.complexfloating):
      dtype = jnp.finfo(dtype).dtype  # complex128: a float64 rate
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize > 4:
      return dtype
  return jnp.dtype(jnp.float32)


def init_rate(
    learning_rate: jax.typing.ArrayLike,
    params: base.Params,
    per_leaf: bool,
) -> Any:
  """The initial rate: a scalar, or a tree of scalars shaped like ``params``."""
  dtype = rate_dtype(params)
  if per_leaf:
    return jax.tree.map(lambda _: jnp.asarray(learning_rate, dtype), params)
  return jnp.asarray(learning_rate, dtype)


def _real_dot(a: jax.Array, b: jax.Array, dtype: jnp.dtype) -> jax.Array:
  """``Re⟨a, b⟩`` in ``dtype``: for complex leaves, the inner product of
  their (real, imaginary) pairs, so a complex parameter behaves as its pair
  (Optax's convention: the updates of a complex parameter are the conjugated
  JAX gradient)."""
  if jnp.iscomplexobj(a) or jnp.iscomplexobj(b):
    return jnp.sum(jnp.real(a).astype(dtype) * jnp.real(b).astype(dtype)
                   + jnp.imag(a).astype(dtype) * jnp.imag(b).astype(dtype))
  return jnp.sum(a.astype(dtype) * b.astype(dtype))


def leaf_dots(x: base.Updates, y: base.Updates, dtype: jnp.dtype) -> Any:
  """Per-leaf inner products ``Re⟨x_i, y_i⟩``, each a scalar of ``dtype``."""
  return jax.tree.map(lambda a, b: _real_dot(a, b, dtype), x, y)


# Leaves of at most this many elements are reduced together, concatenated
# into one vector: on a model with many small leaves (biases, norm scales,
# narrow layers) one reduction over the concatenation replaces a few kernels
# per leaf, whose fixed cost dominated the step; a larger leaf is reduced in
# place, where a copy would cost more memory traffic than the kernel saves.
SMALL_LEAF = 1 << 16


def _real_flat(a: jax.Array, dtype: jnp.dtype, complex_: bool) -> jax.Array:
  """``a`` as a flat real vector of ``dtype``: a leaf that is complex in any
  of the trees reduced together (``complex_``) as its real and imaginary
  parts, so that ``Re⟨a, b⟩`` is the plain dot product of two such vectors.
  """
  if complex_:
    return jnp.concatenate([jnp.real(a).reshape(-1).astype(dtype),
                            jnp.imag(a).reshape(-1).astype(dtype)])
  return a.reshape(-1).astype(dtype)


def dots(pairs, dtype: jnp.dtype) -> list[jax.Array]:
  """``[x · y for x, y in pairs]`` (``Re⟨x, y⟩``), each over the whole tree,
  computed together.

  The leaves with at most ``SMALL_LEAF`` elements are concatenated, once per
  distinct tree, and every product of them is one row of a single reduction
  (see ``SMALL_LEAF``); larger leaves are reduced in place. The results are
  the same sums as leaf by leaf, in a different order.

  Args:
    pairs: ``(x, y)`` pairs of trees of one structure; a tree passed twice
      (as in ``x · x``) is flattened once.
    dtype: the dtype of the sums.

  Returns:
    One scalar of ``dtype`` per pair.
  """
  trees: list[Any] = []

  def index(tree):
    for i, seen in enumerate(trees):
      if seen is tree:
        return i
    trees.append(tree)
    return len(trees) - 1

  idx = [(index(x), index(y)) for x, y in pairs]
  leaves = [jax.tree.leaves(t) for t in trees]
  if any(len(ls) != len(leaves[0]) for ls in leaves):
    for t in trees[1:]:  # a structure mismatch: let tree.map say so
      jax.tree.map(lambda *_: None, trees[0], t)
  n = len(leaves[0])
  small = [i for i in range(n) if leaves[0][i].size <= SMALL_LEAF]
  if len(small) == 1 and len(pairs) == 1:  # one kernel either way
    small = []
  in_place = sorted(set(range(n)) - set(small))
  totals = [jnp.zeros([], dtype) for _ in pairs]
  for i in in_place:
    for p, (a, b) in enumerate(idx):
      totals[p] = totals[p] + _real_dot(leaves[a][i], leaves[b][i], dtype)
  if small:
    complex_ = {i: any(jnp.iscomplexobj(ls[i]) for ls in leaves)
                for i in small}
    rows = [jnp.concatenate([_real_flat(ls[i], dtype, complex_[i])
                             for i in small]) for ls in leaves]
    sums = jnp.sum(jnp.stack([rows[a] * rows[b] for a, b in idx]), axis=1)
    totals = [t + sums[p] for p, t in enumerate(totals)]
  return totals


def dot(x: base.Updates, y: base.Updates, dtype: jnp.dtype, per_leaf: bool):
  """``x · y`` (``Re⟨x, y⟩``) over the whole tree (see :func:`dots`), or
  per leaf when ``per_leaf``."""
  if per_leaf:
    return leaf_dots(x, y, dtype)
  return dots([(x, y)], dtype)[0]


def cosine_of(xy: Any, xx: Any, yy: Any) -> Any:
  """``cos(x, y)`` from ``x·y``, ``‖x‖²`` and ``‖y‖²`` (scalars or trees of
  scalars): 0 where either side is zero or its squared norm overflows (a
  gradient of 1e20 in float32), where it carries no usable direction and a
  rate moved by it stays where it is."""
  def cos(xy, xx, yy):
    denom = jnp.sqrt(xx) * jnp.sqrt(yy)
    ok = jnp.isfinite(denom) & (denom > 0)
    return jnp.clip(jnp.where(ok, xy / jnp.where(ok, denom, 1.0), 0.0),
                    -1.0, 1.0)

  return jax.tree.map(cos, xy, xx, yy)


def cosine(x: base.Updates, y: base.Updates, dtype: jnp.dtype,
           per_leaf: bool) -> tuple[Any, Any]:
  """``(cos(x, y), ‖x‖)``, over the whole tree or per leaf (see
  :func:`cosine_of`)."""
  if per_leaf:
    xy, xx, yy = (leaf_dots(x, y, dtype), leaf_dots(x, x, dtype),
                  leaf_dots(y, y, dtype))
  else:
    xy, xx, yy = dots([(x, y), (x, x), (y, y)], dtype)
  return cosine_of(xy, xx, yy), jax.tree.map(jnp.sqrt, xx)


def clip_to_level(grad_norm: Any, level: Any) -> tuple[Any, Any]:
  """A relative clip: the step shrinks when ``‖g‖`` jumps above its level.

  ``level`` is a running average of ``‖g‖`` (0 before the first step). When
  ``‖g_t‖`` exceeds ``GROWTH_LIMIT`` times it — a spike, or the gradient
  growing because the rate has become unstable — this step's update is
  scaled down to that limit. The level follows ``‖g‖`` clipped to the
  limit, so a spike neither passes nor blinds the clip, and a rate gone
  unstable meets steps that grow by at most 10% per step while the
  hypergradient brings it down. The rate itself is left alone: a one-off
  spike costs it nothing, and heavy-tailed minibatch gradients do not
  ratchet it down.

  Returns:
    ``(scale for this step's update, new level)``, shaped like ``level``.
  """
  def scale(n, lvl):
    seen = lvl > 0
    jump = jnp.where(seen, n / jnp.where(seen, lvl, 1.0), 1.0)
    s = jnp.where(jump > GROWTH_LIMIT, GROWTH_LIMIT / jump, 1.0)
    return jnp.where(jnp.isfinite(s), s, 1.0)

  def new_level(n, lvl):
    new = jnp.where(lvl > 0, 0.9 * lvl + 0.1 * jnp.minimum(
        n, GROWTH_LIMIT * lvl), n)
    return jnp.where(jnp.isfinite(new), new, lvl)

  return (jax.tree.map(scale, grad_norm, level),
          jax.tree.map(new_level, grad_norm, level))


def scale_tree(scale: Any, tree: base.Updates, per_leaf: bool):
  """``scale * tree``, in the dtype of each leaf of ``tree``; ``scale`` a
  scalar, or a tree of scalars shaped like ``tree`` when ``per_leaf``."""
  if per_leaf:
    return jax.tree.map(lambda s, x: s.astype(x.dtype) * x, scale, tree)
  return jax.tree.map(lambda x: scale.astype(x.dtype) * x, tree)


def scale_by_rate(rate: Any, direction: base.Updates, per_leaf: bool):
  """``-rate * direction``, in the dtype of each leaf of ``direction``."""
  return scale_tree(jax.tree.map(jnp.negative, rate), direction, per_leaf)


def all_finite(tree: Any) -> jax.Array:
  """Whether every element of every leaf of ``tree`` is finite (the small
  leaves checked together, concatenated by dtype, as in :func:`dot`)."""
  checks = []
  small: dict[Any, list[jax.Array]] = {}
  for x in jax.tree.leaves(tree):
    x = jnp.asarray(x)
    if x.size <= SMALL_LEAF and x.ndim > 0:
      small.setdefault(x.dtype, []).append(x.reshape(-1))
    else:
      checks.append(jnp.all(jnp.isfinite(x)))
  checks += [jnp.all(jnp.isfinite(jnp.concatenate(xs)))
             for xs in small.values()]
  if not checks:
    return jnp.array(True)
  return jnp.all(jnp.stack(checks)) if len(checks) > 1 else checks[0]


def skip_unless(ok, updates, new_state, state):
  """``(updates, new_state)`` if ``ok``, else zero updates and ``state``."""
  updates = optax.tree.where(ok, updates, optax.tree.zeros_like(updates))
  return updates, optax.tree.where(ok, new_state, state)


def missing_extra_arg_message(what: str, how: str, extra_args: dict) -> str:
  """The error for a missing extra argument, naming what did arrive."""
  got = sorted(extra_args)
  received = (f' It received the extra arguments {got}: a misspelling?'
              if got else '')
  return f'{what} {how}{received}'


def clip_rate(rate: Any, min_learning_rate, max_learning_rate) -> Any:
  """Clips the rate into ``[min_learning_rate, max_learning_rate]``."""
  if min_learning_rate is None and max_learning_rate is None:
    return rate
  return jax.tree.map(
      lambda r: jnp.clip(r, min_learning_rate, max_learning_rate).astype(
          r.dtype
      ),
      rate,
  )


def step_rate(
    rate: Any,
    rate_state: base.OptState,
    hypergradient: Any,
    rate_optimizer: base.GradientTransformation,
    min_learning_rate: jax.typing.ArrayLike | None = None,
    max_learning_rate: jax.typing.ArrayLike | None = None,
    *,
    multiplicative: bool = False,
) -> tuple[Any, base.OptState]:
  """One step of ``rate_optimizer`` on the rate, given its hypergradient.

  Additive: ``α ← clip(α + u)`` with ``u`` what ``rate_optimizer`` proposes
  for the gradient ``h`` (for ``optax.sgd(β)``, ``u = -β h``).
  Multiplicative: ``log α ← log α + clip(u, ±log 2)``, ``u`` proposed for
  ``h`` at ``log α``; there ``h`` is the hypergradient normalized to be
  dimensionless (a cosine, in [-1, 1]), so the step does not depend on the
  scale of the loss, and the rate stays positive and moves by at most a
  factor of 2 per step. Either way a non-finite ``h`` (or a rate step that
  overflows) leaves the rate and the rate optimizer's state as they were, so
  a NaN loss or gradient never poisons the learned rate.

  Args:
    rate: the current rate, scalar or tree of scalars.
    rate_state: the state of ``rate_optimizer``.
    hypergradient: ``h``, shaped like ``rate``: ``∂L/∂α``, or its normalized
      form for the multiplicative rule.
    rate_optimizer: any Optax transformation, applied to the rate (to
      ``log α`` for the multiplicative rule).
    min_learning_rate: optional lower bound of the rate.
    max_learning_rate: optional upper bound of the rate.
    multiplicative: move ``log α`` rather than ``α``.

  Returns:
    The new rate and the new state of ``rate_optimizer``.
  """
  if multiplicative:
    delta, new_rate_state = rate_optimizer.update(
        hypergradient, rate_state, jax.tree.map(jnp.log, rate))
    new_rate = jax.tree.map(
        lambda r, d: r * jnp.exp(jnp.clip(d, -MAX_LOG_STEP, MAX_LOG_STEP)
                                 ).astype(r.dtype), rate, delta)
  else:
    delta, new_rate_state = rate_optimizer.update(hypergradient, rate_state,
                                                  rate)
    new_rate = optax.apply_updates(rate, delta)
  new_rate = clip_rate(new_rate, min_learning_rate, max_learning_rate)
  finite = all_finite((hypergradient, new_rate))  # β h may overflow too
  new_rate = optax.tree.where(finite, new_rate, rate)
  new_rate_state = optax.tree.where(finite, new_rate_state, rate_state)
  return new_rate, new_rate_state


def make_rate_optimizer(
    rate_optimizer: str | base.GradientTransformation,
    hypergrad_lr: jax.typing.ArrayLike | None,
    default_hypergrad_lr: dict[str, float],
) -> base.GradientTransformation:
  """The Optax transformation that moves the rate.

  Args:
    rate_optimizer: ``'sgd'`` (plain HD, ``α ← α - β h``), ``'nesterov'``
      (``SGDN_lop``, Algorithm 1 of "Hypergradient based optimization
      methods", momentum 0.9) or ``'adam'``
      (``Adam_lop``, Algorithm 2, ``b1=0.9, b2=0.999, eps=1e-8``); or any
      Optax transformation, which then brings its own step size.
    hypergrad_lr: the step ``β`` of a named rate optimizer; None for
      ``default_hypergrad_lr``. Must be None with a transformation.
    default_hypergrad_lr: ``β`` by ``rate_optimizer`` name, for
      ``hypergrad_lr`` None.

  Returns:
    An Optax transformation to apply to the scalar rate.
  """
  if isinstance(rate_optimizer, base.GradientTransformation):
    if hypergrad_lr is not None:
      raise ValueError(
          'hypergrad_lr must be None when rate_optimizer is an Optax '
          'transformation: give the step size to that transformation, e.g. '
          'rate_optimizer=optax.adam(1e-7)'
      )
    return rate_optimizer
  checks.check_choice('rate_optimizer', rate_optimizer, RATE_OPTIMIZERS)
  if hypergrad_lr is None:
    hypergrad_lr = default_hypergrad_lr[rate_optimizer]
  checks.check_scalar('hypergrad_lr', hypergrad_lr)
  if rate_optimizer == 'sgd':
    return optax.sgd(hypergrad_lr)
  if rate_optimizer == 'nesterov':
    return optax.sgd(hypergrad_lr, momentum=0.9, nesterov=True)
  return optax.adam(hypergrad_lr, b1=0.9, b2=0.999, eps=1e-8)
