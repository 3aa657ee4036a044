"""The matrix every optimizer of the package passes (after optax's contrib).

Each entry names a factory, its kwargs for the convergence runs, and the
extra arguments its update needs (``value=`` for L4, ``value_fn=`` for
MARTHE), built from the loss and params of the step.
"""

from absl.testing import parameterized
import chex
import extra_args
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax._src import numerics
from optax._src import test_utils
import pytest

import optax_hypergrad as ohg

OPTIMIZERS = [
    # (name, factory, kwargs that converge on the targets, extra-args builder)
    # Every HD alias at its defaults (the papers' additive rule diverged on
    # Rosenbrock for β >= 1e-4 over SGD: the rate kept growing along the
    # valley; the default scale-free rule needs no setting).
    ('sgd_hd', ohg.sgd_hd, {}, extra_args.none),
    ('sgdn_hd', ohg.sgdn_hd, {}, extra_args.none),
    ('adam_hd', ohg.adam_hd, {}, extra_args.none),
    ('sgd_op_sgdn_lop', ohg.sgd_op_sgdn_lop, {}, extra_args.none),
    ('sgdn_op_sgdn_lop', ohg.sgdn_op_sgdn_lop, {}, extra_args.none),
    ('adam_op_adam_lop', ohg.adam_op_adam_lop, {}, extra_args.none),
    ('sgd_op_adam_lop', ohg.sgd_op_adam_lop, {}, extra_args.none),
    ('sgdn_op_adam_lop', ohg.sgdn_op_adam_lop, {}, extra_args.none),
    ('adam_op_sgdn_lop', ohg.adam_op_sgdn_lop, {}, extra_args.none),
    ('sgd_hd_per_leaf', ohg.sgd_hd, {'per_leaf': True}, extra_args.none),
    ('sgd_hd_paper', ohg.sgd_hd,
     {'learning_rate': 0.001, 'hypergrad_lr': 1e-05,
      'rate_dynamics': 'additive'}, extra_args.none),
    ('l4_mom', ohg.l4_mom, {}, extra_args.value),
    ('l4_adam', ohg.l4_adam, {}, extra_args.value),
    # RTHO and MARTHE at their defaults too (on the paper's additive rule
    # RTHO converged on all three only for β <= 1e-7 at η_0 = 3e-4).
    ('rtho', ohg.rtho, {}, extra_args.value_fn),
    ('marthe', ohg.marthe, {}, extra_args.value_fn),
    # Over Adam the default 'descent' μ keeps a long horizon on Rosenbrock
    # and its rate collapses (0.038 after 10k steps; docs/marthe.md): the
    # reference μ rule, short-sighted there, converges.
    ('marthe_adam', ohg.marthe, {'base': 'adam', 'mu_rule': 'reference'},
     extra_args.value_fn),
    ('marthe_paper', ohg.marthe,
     {'learning_rate': 1e-3, 'hypergrad_lr': 1e-5,
      'rate_dynamics': 'additive', 'mu_rule': 'reference'},
     extra_args.value_fn),
]
IDS = [o[0] for o in OPTIMIZERS]


def parabola(dtype):
  target = jnp.array([1.0, -1.0, 1.0], dtype)
  return jnp.array([-1.0, 10.0, 1.0], dtype), target, (
      lambda p: jnp.sum((p - target) ** 2))


def rosenbrock(dtype):
  def f(p):
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2
  return jnp.zeros(2, dtype), jnp.ones(2, dtype), f


def mixed_tree(dtype):
  target = (jnp.array([1.0, -1.0, 2.0], dtype),
            jnp.array([[1.0, 0.0], [-1.0, 1.0]], dtype))

  def f(p):
    return sum(jnp.sum((a - b) ** 2) for a, b in zip(p, target, strict=True))
  return (jnp.zeros(3, dtype), jnp.zeros((2, 2), dtype)), target, f


def make_step(opt, loss_fn, extra):
  def step(params, state):
    value, grads = jax.value_and_grad(loss_fn)(params)
    del value
    updates, state = opt.update(grads, state, params, **extra(loss_fn, params))
    return optax.apply_updates(params, updates), state
  return step


@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_accepts_extra_args_and_does_not_recompile(name, factory, kwargs,
                                                   extra):
  del name
  opt = factory(**kwargs)
  params, _, loss_fn = rosenbrock(jnp.float32)
  step = make_step(opt, loss_fn, lambda f, p: {
      **extra(f, p), 'unexpected_extra_arg': 1})
  step = jax.jit(step)
  state = opt.init(params)
  params, state = step(params, state)
  with test_utils.log_compilations() as logs:
    step(params, state)
  assert not logs, 'recompiled on the second call'


@pytest.mark.parametrize('target', [parabola, rosenbrock, mixed_tree])
@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_converges_in_scan(name, factory, kwargs, extra, target):
  del name
  params, final, loss_fn = target(jnp.float32)
  opt = factory(**kwargs)
  step = make_step(opt, loss_fn, extra)
  state = opt.init(params)
  state = optax.tree.map_params(opt, lambda v: v, state)

  @jax.jit
  def run(params, state):
    return jax.lax.scan(lambda c, _: (step(*c), None), (params, state),
                        length=30_000)[0]

  params, _ = run(params, state)
  test_utils.assert_trees_all_close(params, final, rtol=3e-2, atol=3e-2)


def complex_parabola():
  target = jnp.array([1.0, -1.0, 1.0], jnp.complex64) * (1 + 1j)
  return (jnp.array([-1.0, 10.0, 1.0], jnp.complex64), target,
          lambda p: jnp.sum(numerics.abs_sq(p - target)))


def complex_rosenbrock():
  a = 1.0 + 1.0j
  return (jnp.zeros(2, jnp.complex64), jnp.array([a, a ** 2], jnp.complex64),
          lambda p: numerics.abs_sq(a - p[0]) + 100.0 * numerics.abs_sq(
              p[1] - p[0] ** 2))


# Adam-HD with Adam or momentum on its rate misses the complex Rosenbrock (a
# 4-dimensional valley) from 2 (each) of 16 starts within 1.5e-5 of the origin
# (`python -m benchmarks.rosenbrock_starts`): the rate climbs to 0.1-0.9 and
# Adam's step circles the valley. From the origin itself it passed or missed
# with the last bit of a sum, so that one start proves nothing either way.
ROSENBROCK_MISSES = ('adam_op_adam_lop', 'adam_op_sgdn_lop')


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason='a known miss of the default rate dynamics over '
                   'Adam; fixed, this test passes: then drop the xfail and '
                   'the skip above')
@pytest.mark.parametrize('name', ROSENBROCK_MISSES)
def test_complex_rosenbrock_from_nearby_starts(name):
  from benchmarks import rosenbrock_starts  # pylint: disable=g-import-not-at-top
  missed, _ = rosenbrock_starts.misses(getattr(ohg, name)(), 'complex',
                                       starts=16, steps=10_000)
  assert missed == 0


@pytest.mark.parametrize('target', [complex_parabola, complex_rosenbrock],
                         ids=['parabola', 'rosenbrock'])
@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_converges_on_complex_targets(name, factory, kwargs, extra, target):
  """Optax's complex alias test: complex64, the conjugated gradient as the
  updates, 10k steps, its 3e-2 tolerance."""
  if name == 'rtho' and target is complex_rosenbrock:
    # The complex Rosenbrock is a 4-dimensional valley; on its real pair
    # RTHO too ends 0.07 from the minimum after 10k steps (its rate stays
    # near 1e-3 there): a property of RTHO, not of complex numbers
    # (test_complex.py checks the pair to 1e-9).
    pytest.skip('RTHO is as slow on the real pair of this problem')
  if name in ROSENBROCK_MISSES and target is complex_rosenbrock:
    pytest.skip('misses from some starts near the origin: see '
                'test_complex_rosenbrock_from_nearby_starts')
  params, final, loss_fn = target()
  opt = factory(**kwargs)

  def step(carry, _):
    params, state = carry
    grads = jax.tree.map(jnp.conj, jax.grad(loss_fn)(params))
    updates, state = opt.update(grads, state, params,
                                **extra(loss_fn, params))
    return (optax.apply_updates(params, updates), state), None

  (params, _), _ = jax.jit(lambda p: jax.lax.scan(
      step, (p, opt.init(p)), length=10_000))(params)
  np.testing.assert_allclose(params, final, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float32'])
@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_preserves_param_dtype(name, factory, kwargs, extra, dtype):
  del name
  opt = factory(**kwargs)
  params = jnp.array([1.0, 2.0], jnp.dtype(dtype))
  loss_fn = lambda x: jnp.sum(x**2)
  state = jax.jit(opt.init)(params)
  grads = jax.grad(loss_fn)(params)
  updates, _ = jax.jit(
      lambda g, s, p: opt.update(g, s, p, **extra(loss_fn, p)))(
          grads, state, params)
  assert updates.dtype == params.dtype


@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_inject_hyperparams(name, factory, kwargs, extra):
  del name
  opt = factory(**kwargs)
  injected = optax.inject_hyperparams(factory)(**kwargs)
  params = [-jnp.ones((2, 3)), jnp.ones((2, 5, 2))]
  grads = [jnp.ones((2, 3)), -jnp.ones((2, 5, 2))]
  loss_fn = lambda p: sum(jnp.sum(x**2) for x in p)
  state, istate = opt.init(params), injected.init(params)
  for _ in range(3):
    updates, state = jax.jit(
        lambda g, s, p: opt.update(g, s, p, **extra(loss_fn, p)))(
            grads, state, params)
    iupdates, istate = jax.jit(
        lambda g, s, p: injected.update(g, s, p, **extra(loss_fn, p)))(
            grads, istate, params)
    # inject_hyperparams hands Adam's b1, b2 as float32 arrays, not Python
    # floats, so its bias correction rounds differently: 1e-5 apart.
    test_utils.assert_trees_all_close(iupdates, updates, rtol=1e-4)
  test_utils.assert_trees_all_close(istate.inner_state, state, rtol=1e-4,
                                    atol=1e-8)


@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_multi_steps(name, factory, kwargs, extra):
  del name
  opt = optax.MultiSteps(factory(**kwargs), every_k_schedule=4)
  params = jnp.array([1.0, 2.0])
  loss_fn = lambda x: jnp.sum(x**2)
  state = jax.jit(opt.init)(params)
  step = jax.jit(make_step(opt, loss_fn, extra))
  seen = []
  for _ in range(8):
    new_params, state = step(params, state)
    seen.append(bool(jnp.any(new_params != params)))
    params = new_params
  assert seen == [False, False, False, True] * 2


@pytest.mark.parametrize('dtype', ['float16', 'bfloat16', 'float32', 'float64'])
@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_state_dtype_stable_under_cond(name, factory, kwargs, extra, dtype):
  del name
  with jax.enable_x64(dtype == 'float64'):
    dtype = jnp.dtype(dtype)
    opt = factory(**kwargs)
    params, _, loss_fn = parabola(dtype)

    @jax.jit
    def step(params, state):
      grads = jax.grad(loss_fn)(params)
      cond = jax.random.randint(jax.random.key(0), (), 0, 2) == 0
      updates, state = jax.lax.cond(
          cond, lambda: opt.update(grads, state, params,
                                   **extra(loss_fn, params)),
          lambda: (jnp.zeros_like(params), state))
      return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(2):
      params, state = step(params, state)
      assert params.dtype == dtype
    assert np.all(np.isfinite(np.asarray(params, np.float32)))


@pytest.mark.skipif(jax.device_count() < 8, reason='needs 8 devices')
@pytest.mark.parametrize('name,factory,kwargs,extra', OPTIMIZERS, ids=IDS)
def test_init_on_abstract_sharded_params(name, factory, kwargs, extra):
  """``tx.init`` on ``jax.ShapeDtypeStruct`` leaves (sharded initialization
  of a large model) gives the state that concrete sharded params give:
  same shapes, dtypes and shardings."""
  del name, extra
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  mesh = jax.make_mesh((2, 4), ('data', 'model'))
  specs = {'w': P('data', 'model'), 'b': P('model'), 'h': P()}
  params = {'w': jnp.ones((8, 4)), 'b': jnp.ones(4, jnp.bfloat16),
            'h': jnp.ones((3,))}
  params = jax.tree.map(
      lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), params, specs)
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      params)
  opt = factory(**kwargs)
  got, want = opt.init(abstract), opt.init(params)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert a.shape == b.shape and a.dtype == b.dtype
    if a.ndim:
      assert a.sharding.is_equivalent_to(b.sharding, a.ndim)


class JitVariantsTest(chex.TestCase):
  """Every optimizer, jitted and not (``chex.variants``), against the same
  steps run eagerly op by op: the same parameters and state, a finite state,
  and a state whose shapes and dtypes never change."""

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*[(o[0], *o[1:]) for o in OPTIMIZERS])
  def test_step(self, factory, kwargs, extra):
    opt = factory(**kwargs)
    params, _, loss_fn = mixed_tree(jnp.float32)
    step = make_step(opt, loss_fn, extra)
    state0 = opt.init(params)
    p, s = params, state0
    q, t = params, state0
    with jax.disable_jit():
      for _ in range(5):
        q, t = step(q, t)
    run = self.variant(step)
    for _ in range(5):
      p, s = run(p, s)
    chex.assert_trees_all_close(p, q, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(s, t, rtol=1e-5, atol=1e-6)
    chex.assert_tree_all_finite(s)
    chex.assert_trees_all_equal_shapes_and_dtypes(s, state0)
