"""``pack_small_leaves``: the same optimizer, its small leaves run packed."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_hypergrad as ohg
from optax_hypergrad._src import packing


def mixed_params():
  """Small leaves of three shapes and two dtypes, a scalar, a complex leaf,
  a leaf above the packing size, and a None (a frozen leaf)."""
  keys = jax.random.split(jax.random.key(0), 6)
  return {
      'big': jax.random.normal(keys[0], (300, 300)),  # 90,000 > 65,536
      'b': jax.random.normal(keys[1], (7,)),
      'k': jax.random.normal(keys[2], (4, 5)),
      'half': jax.random.normal(keys[3], (6,)).astype(jnp.bfloat16),
      's': jnp.float32(0.5),
      'z': jax.lax.complex(jax.random.normal(keys[4], (3,)),
                           jax.random.normal(keys[5], (3,))),
      'frozen': None,
  }


def test_pack_then_unpack_is_the_tree_bit_for_bit():
  params = mixed_params()
  packed = packing.pack(params)
  # One vector per dtype of the small leaves, in order of first appearance.
  assert [v.dtype for v in packed.small] == [
      jnp.float32, jnp.bfloat16, jnp.complex64]
  assert [v.size for v in packed.small] == [7 + 20 + 1, 6, 3]
  assert [x.shape for x in packed.large] == [(300, 300)]
  back = packing.unpack(packed, params)
  assert jax.tree.structure(back) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def loss_fn(params):
  real = [x for x in jax.tree.leaves(params)
          if not jnp.iscomplexobj(x)]
  value = sum(jnp.mean((x.astype(jnp.float32) - 1.0) ** 2) for x in real)
  return value + jnp.mean(jnp.abs(params['z'] - (1 + 1j)) ** 2)


def run(tx, params, steps=20):
  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    grads = jax.tree.map(jnp.conj, grads)  # Optax's convention for complex
    updates, state = tx.update(grads, state, params, value=loss)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  for _ in range(steps):
    params, state = step(params, state)
  return params, state


def test_elementwise_optax_optimizer_is_unchanged_bit_for_bit():
  """Adam touches each element alone: packed, op by op, it is Adam."""
  params = {k: v for k, v in mixed_params().items() if k not in ('half', 'z')}
  grads = jax.tree.map(lambda x: 0.3 * x - 0.1, params)
  tx, packed = optax.adam(1e-2), ohg.pack_small_leaves(optax.adam(1e-2))
  with jax.disable_jit():
    s1, s2 = tx.init(params), packed.init(params)
    for _ in range(3):
      u1, s1 = tx.update(grads, s1, params)
      u2, s2 = packed.update(grads, s2, params)
      for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize('factory', [
    ohg.sgd_hd, ohg.sgdn_hd, ohg.adam_hd, ohg.adam_op_adam_lop,
    ohg.sgdn_op_sgdn_lop, ohg.l4_mom, ohg.l4_adam])
def test_packed_alias_follows_its_per_leaf_run(factory):
  """The same steps and rates; only the order of the global sums differs."""
  params = mixed_params()
  want, want_state = run(factory(), params)
  got, got_state = run(ohg.pack_small_leaves(factory()), params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    assert a.dtype == b.dtype and a.shape == b.shape
    tol = 2e-2 if a.dtype == jnp.bfloat16 else 1e-4
    np.testing.assert_allclose(np.asarray(a, np.complex64),
                               np.asarray(b, np.complex64), rtol=tol,
                               atol=tol)
  np.testing.assert_allclose(float(got_state.learning_rate),
                             float(want_state.learning_rate), rtol=1e-3)
  assert loss_fn(got) < loss_fn(params)


def test_inner_sees_the_packed_tree():
  seen = []

  def update(updates, state, params=None):
    del params
    seen.append(updates)
    return updates, state

  tx = ohg.pack_small_leaves(optax.GradientTransformation(
      lambda p: optax.EmptyState(), update))
  params = mixed_params()
  updates, _ = tx.update(params, tx.init(params), params)
  assert isinstance(seen[0], ohg.Packed)
  assert len(jax.tree.leaves(seen[0])) == 4  # 3 dtypes + the big leaf
  assert jax.tree.structure(updates) == jax.tree.structure(params)
  with pytest.raises(ValueError, match='Packed'):  # a packing of its own
    jax.tree.map(lambda a, b: None, seen[0], params)


def test_abstract_init_gives_the_concrete_state():
  params = {k: v for k, v in mixed_params().items() if k != 'frozen'}
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  for tx in (ohg.pack_small_leaves(ohg.adam_hd()),
             ohg.pack_small_leaves(ohg.l4_adam())):
    got, want = tx.init(abstract), tx.init(params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want),
                    strict=True):
      assert a.shape == b.shape and a.dtype == b.dtype


def test_map_params_reaches_the_packed_fields():
  params = mixed_params()
  tx = ohg.pack_small_leaves(ohg.adam_hd())
  state = tx.init(params)
  state = optax.tree.map_params(tx, lambda v: jnp.full_like(v, 7), state)
  for field in (state.prev_direction, state.direction_state.mu):
    leaves = jax.tree.leaves(field)
    assert len(leaves) == 4
    assert all(np.all(np.asarray(x) == 7) for x in leaves)
  assert float(state.learning_rate) == pytest.approx(1e-3)
