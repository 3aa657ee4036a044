"""Every method, left running: non-finite values, bounds, dtypes,
checkpoints, determinism, property-based inputs and a 100,000-step run."""

import extra_args
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import test_utils
import orbax.checkpoint as ocp
import pytest

import optax_hypergrad as ohg

# This module goes through Optax's Adam and ema (not strict-promotion clean).
pytestmark = pytest.mark.standard_promotion


# Every method at its defaults, with the extra arguments its update takes.
DEFAULTS = [
    ('sgd_hd', ohg.sgd_hd, extra_args.none),
    ('sgd_op_sgdn_lop', ohg.sgd_op_sgdn_lop, extra_args.none),
    ('sgd_op_adam_lop', ohg.sgd_op_adam_lop, extra_args.none),
    ('sgdn_hd', ohg.sgdn_hd, extra_args.none),
    ('sgdn_op_sgdn_lop', ohg.sgdn_op_sgdn_lop, extra_args.none),
    ('sgdn_op_adam_lop', ohg.sgdn_op_adam_lop, extra_args.none),
    ('adam_hd', ohg.adam_hd, extra_args.none),
    ('adam_op_sgdn_lop', ohg.adam_op_sgdn_lop, extra_args.none),
    ('adam_op_adam_lop', ohg.adam_op_adam_lop, extra_args.none),
    ('l4_mom', ohg.l4_mom, extra_args.value),
    ('l4_adam', ohg.l4_adam, extra_args.value),
    ('rtho', ohg.rtho, extra_args.value_fn),
    ('marthe', ohg.marthe, extra_args.value_fn),
    ('marthe_adam', lambda **kw: ohg.marthe(base='adam', **kw),
     extra_args.value_fn),
]
IDS = [d[0] for d in DEFAULTS]
TARGET = jnp.array([1.0, -1.0, 0.5])


def quadratic(w):
  """Curvatures 1, 2, 0.5 and |∇f(0)|² ≈ 5. HD's β is not scale-free: at
  the papers' defaults, SGD_op-SGDN_lop diverges on a quadratic whose first
  |g|² is 260 (its first rate step, β|g|²(1 + μ), overshoots 2/curvature)."""
  return 0.5 * jnp.sum(jnp.array([1.0, 2.0, 0.5], w.dtype)
                       * (w - TARGET.astype(w.dtype)) ** 2)


def make_step(tx, extra, loss_fn=quadratic):
  def step(params, state, grads=None):
    if grads is None:
      grads = jax.grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, **extra(loss_fn, params))
    return optax.apply_updates(params, updates), state
  return jax.jit(step)


def float_leaves_finite(tree):
  return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree)
             if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact))


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_non_finite_gradients_skip_the_step(name, factory, extra):
  del name
  tx = factory()
  step = make_step(tx, extra)
  params = jnp.zeros(3)
  state = tx.init(params)
  for _ in range(5):
    params, state = step(params, state)
  for bad in (jnp.nan, jnp.inf, -jnp.inf):
    grads = jnp.array([1.0, bad, 1.0])
    new_params, new_state = step(params, state, grads)
    np.testing.assert_array_equal(new_params, params)
    jax.tree.map(np.testing.assert_array_equal, new_state, state)
  for _ in range(5):
    params, state = step(params, state)
  assert float_leaves_finite((params, state))


# The methods whose update reads the loss (the HD family never sees it).
TAKE_A_LOSS = [d for d in DEFAULTS if d[2] is not extra_args.none]


@pytest.mark.parametrize('name,factory,extra', TAKE_A_LOSS,
                         ids=[d[0] for d in TAKE_A_LOSS])
def test_non_finite_loss_never_poisons_the_rate(name, factory, extra):
  """A loss that is NaN (value= or value_fn=) with finite gradients."""
  del name
  tx = factory()
  nan_loss = lambda w: quadratic(w) * jnp.nan
  good, bad = make_step(tx, extra), make_step(tx, extra, nan_loss)
  params = jnp.zeros(3)
  state = tx.init(params)
  for _ in range(3):
    params, state = good(params, state)
  params, state = bad(params, state, jax.grad(quadratic)(params))
  assert float_leaves_finite(state)
  for _ in range(3):
    params, state = good(params, state)
  assert float_leaves_finite((params, state))


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_composes_with_apply_if_finite(name, factory, extra):
  del name
  tx = optax.apply_if_finite(factory(), max_consecutive_errors=3)
  step = make_step(tx, extra)
  params = jnp.zeros(3)
  state = tx.init(params)
  params, state = step(params, state)
  params, state = step(params, state, jnp.array([jnp.nan, 0.0, 0.0]))
  assert int(state.notfinite_count) == 1
  params, state = step(params, state)
  assert int(state.notfinite_count) == 0
  assert float_leaves_finite((params, state))


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_max_learning_rate_bounds_every_method(name, factory, extra):
  del name
  tx = factory(max_learning_rate=1e-4)
  step = make_step(tx, extra)
  params = jnp.zeros(3)
  state = tx.init(params)
  rates = []
  for _ in range(30):
    params, state = step(params, state)
    rates.append(float(optax.tree.get(state, 'learning_rate')))
  assert max(rates) <= np.float32(1e-4) * (1 + 1e-6)


def test_bound_binds_on_l4():
  tx = ohg.l4_mom(max_learning_rate=1e-3)
  free = ohg.l4_mom()
  for t, bound in ((tx, True), (free, False)):
    step = make_step(t, extra_args.value)
    params, state = jnp.zeros(3), t.init(jnp.zeros(3))
    rates = []
    for _ in range(20):
      params, state = step(params, state)
      rates.append(float(state.learning_rate))
    assert (max(rates) == pytest.approx(1e-3)) == bound, rates


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_low_precision_params_keep_a_float32_rate(name, factory, extra,
                                                   dtype):
  del name
  tx = factory()
  step = make_step(tx, extra)
  params = jnp.zeros(3, dtype)
  state = tx.init(params)
  params, state = step(params, state)
  with test_utils.log_compilations() as logs:
    params, state = step(params, state)
  assert not logs, 'recompiled on the second step'
  assert params.dtype == jnp.dtype(dtype)
  rate = optax.tree.get(state, 'learning_rate')
  assert rate.dtype == jnp.float32


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_float64_under_x64(name, factory, extra):
  del name
  with jax.enable_x64(True):
    tx = factory()
    step = make_step(tx, extra)
    params = jnp.zeros(3, jnp.float64)
    state = tx.init(params)
    for _ in range(3):
      params, state = step(params, state)
    assert params.dtype == jnp.float64
    assert optax.tree.get(state, 'learning_rate').dtype == jnp.float64


def _run(step, params, state, n):
  for _ in range(n):
    params, state = step(params, state)
  return params, state


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_orbax_checkpoint_resumes_bit_identically(name, factory, extra,
                                                  tmp_path):
  del name
  tx = factory()
  step = make_step(tx, extra)
  params = jnp.zeros(3)
  params, state = _run(step, params, tx.init(params), 10)
  path = tmp_path / 'ckpt'
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(path, {'params': params, 'opt_state': state})
  straight = _run(step, params, state, 10)

  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                          {'params': params, 'opt_state': tx.init(params)})
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(path, abstract)
  resumed = _run(step, restored['params'], restored['opt_state'], 10)
  jax.tree.map(np.testing.assert_array_equal, resumed, straight)


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_deterministic(name, factory, extra):
  del name
  runs = []
  for _ in range(2):
    tx = factory()
    step = make_step(tx, extra)  # a fresh compilation each time
    runs.append(_run(step, jnp.zeros(3), tx.init(jnp.zeros(3)), 20))
  jax.tree.map(np.testing.assert_array_equal, runs[0], runs[1])


@pytest.mark.parametrize('name,factory,extra', DEFAULTS, ids=IDS)
def test_hundred_thousand_steps_stay_finite(name, factory, extra):
  tx = factory()
  step = make_step(tx, extra)

  @jax.jit
  def run(params):
    def body(carry, _):
      return step(*carry), None
    return jax.lax.scan(body, (params, tx.init(params)), length=100_000)[0]

  params, state = run(jnp.zeros(3))
  assert float_leaves_finite((params, state)), name
  # The minimum is 0 at TARGET: every method at its defaults gets there.
  assert float(quadratic(params)) < 1e-8, (name, float(quadratic(params)))


# Property-based: hyperparameters, shapes and gradient values.
ANY = st.floats(allow_nan=True, allow_infinity=True, width=32)


def mostly(low, high):
  """Valid values in [low, high] two times in three, anything otherwise, so
  most examples build a transformation and exercise the runtime property."""
  low, high = float(np.float32(low)), float(np.float32(high))
  valid = st.floats(min_value=low, max_value=high, width=32)
  return st.one_of(valid, valid, ANY)

GRADS = st.floats(min_value=-2.0**100, max_value=2.0**100, allow_nan=False,
                  width=32)
HD_ALIASES = [ohg.sgd_hd, ohg.sgdn_hd, ohg.adam_hd, ohg.sgd_op_sgdn_lop,
              ohg.adam_op_adam_lop, ohg.sgdn_op_adam_lop]


def _check(make, value_kw, shape, grads, values):
  """Only documented ValueErrors; if built, the rate never goes non-finite."""
  try:
    tx = make()
  except ValueError as e:
    assert 'must be' in str(e), e
    return
  params = jnp.zeros(shape, jnp.float32)
  state = tx.init(params)
  loss_fn = lambda p: jnp.sum(p**2)
  for g, v in zip(grads, values, strict=False):  # losses may be longer
    g = jnp.full(shape, g, jnp.float32)
    kw = {'value': jnp.asarray(v, jnp.float32)} if value_kw == 'value' else (
        {'value_fn': loss_fn} if value_kw == 'value_fn' else {})
    updates, state = tx.update(g, state, params, **kw)
    params = optax.apply_updates(params, updates)
    assert float_leaves_finite(optax.tree.get(state, 'learning_rate')), state


@settings(max_examples=40, deadline=None)
@given(alias=st.sampled_from(HD_ALIASES), lr=mostly(1e-6, 1.0),
       beta=mostly(0.0, 1.0),
       shape=st.sampled_from([(1,), (3,), (2, 2)]),
       grads=st.lists(GRADS, min_size=1, max_size=6))
def test_property_hd(alias, lr, beta, shape, grads):
  _check(lambda: alias(lr, beta), None, shape, grads, grads)


@settings(max_examples=40, deadline=None)
@given(alias=st.sampled_from([ohg.l4_mom, ohg.l4_adam]),
       alpha=mostly(1e-3, 1.0), gamma=mostly(0.0, 1.0),
       shape=st.sampled_from([(1,), (3,), (2, 2)]),
       grads=st.lists(GRADS, min_size=1, max_size=6),
       losses=st.lists(ANY, min_size=6, max_size=6))
def test_property_l4(alias, alpha, gamma, shape, grads, losses):
  _check(lambda: alias(alpha, gamma), 'value', shape, grads, losses)


@settings(max_examples=25, deadline=None)
@given(alias=st.sampled_from([ohg.marthe, ohg.rtho]), lr=mostly(1e-6, 1.0),
       beta=mostly(0.0, 1.0),
       shape=st.sampled_from([(1,), (3,)]),
       grads=st.lists(GRADS, min_size=1, max_size=5))
def test_property_marthe(alias, lr, beta, shape, grads):
  _check(lambda: alias(lr, beta), 'value_fn', shape, grads, grads)



@pytest.mark.parametrize('factory,right,wrong', [
    (ohg.l4_adam, 'value=', {'loss': 1.0}),
    (ohg.l4_mom, 'value=', {'values': 1.0}),
    (ohg.marthe, 'value_fn=', {'loss_fn': quadratic}),
    (ohg.rtho, 'value_fn=', {'value': 1.0}),
])
def test_misspelled_extra_argument_is_named_inside_chain(factory, right,
                                                         wrong):
  tx = optax.chain(optax.clip_by_global_norm(1.0), factory())
  params = jnp.zeros(3)
  state = tx.init(params)
  with pytest.raises(ValueError) as e:
    tx.update(params, state, params, **wrong)
  message = str(e.value)
  assert right in message and 'tx.update(grads, state, params' in message
  assert repr(next(iter(wrong))) in message  # names what it did receive


@pytest.mark.parametrize('factory,kwargs,name', [
    (ohg.sgd_hd, {'hypergrad_lr': '1e-7'}, 'hypergrad_lr'),
    (ohg.adam_hd, {'learning_rate': None}, 'learning_rate'),
    (ohg.sgdn_hd, {'learning_rate': '0.1'}, 'learning_rate'),
    (ohg.l4_mom, {'alpha': '0.15'}, 'alpha'),
    (ohg.l4_adam, {'curvature_cap': None}, 'curvature_cap'),
    (ohg.marthe, {'kappa': '1e-3'}, 'kappa'),
])
def test_a_number_given_as_text_or_none_is_refused_by_name(factory, kwargs,
                                                           name):
  """A numeric string (as YAML loads '1e-7') or None fails at construction,
  naming the argument and what it received, not later inside the update."""
  with pytest.raises(ValueError, match=rf'{name}: expected a real number, '
                     rf'got (str|NoneType)'):
    factory(**kwargs)
