"""Optax's Rosenbrock alias test from many starts, not one.

Optax's alias test runs 10,000 steps from the origin and asks for the
minimum within 3e-2. This runs every HD alias at its defaults from
``--starts`` starts ``(k·1e-6, k·1e-6)``, k = 0, 1, …, on the real
Rosenbrock and on its complex form (Optax's complex alias test: a
4-dimensional valley, the conjugated gradient as the updates), vmapped over
the starts, and counts the runs that miss the tolerance. A pass from the
origin alone can be luck: a one-ulp change in a sum flips some of them.
``python -m benchmarks.rosenbrock_starts`` (about a minute) prints the table
and writes ``results/rosenbrock_starts.json``.
"""

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import optax
from optax._src import numerics

import optax_hypergrad as ohg

ALIASES = ('sgd_hd', 'sgdn_hd', 'adam_hd', 'sgd_op_sgdn_lop',
           'sgdn_op_sgdn_lop', 'adam_op_sgdn_lop', 'sgd_op_adam_lop',
           'sgdn_op_adam_lop', 'adam_op_adam_lop')
A = 1.0 + 1.0j


def rosenbrock(p):
  return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def complex_rosenbrock(p):
  return (numerics.abs_sq(A - p[0])
          + 100.0 * numerics.abs_sq(p[1] - p[0] ** 2))


PROBLEMS = {
    'real': (rosenbrock, jnp.zeros(2), jnp.ones(2)),
    'complex': (complex_rosenbrock, jnp.zeros(2, jnp.complex64),
                jnp.array([A, A ** 2], jnp.complex64)),
}


def misses(tx, problem, starts, steps):
  """How many of ``starts`` runs end outside Optax's tolerance, and the
  final rates."""
  loss_fn, origin, final = PROBLEMS[problem]

  def step(carry, _):
    params, state = carry
    grads = jax.tree.map(jnp.conj, jax.grad(loss_fn)(params))
    updates, state = tx.update(grads, state, params)
    return (optax.apply_updates(params, updates), state), None

  def run(p):
    (p, state), _ = jax.lax.scan(step, (p, tx.init(p)), length=steps)
    return p, state.learning_rate

  shifts = (1e-6 * jnp.arange(starts, dtype=jnp.float32)).astype(
      origin.dtype)
  params, rates = jax.jit(jax.vmap(run))(origin[None, :] + shifts[:, None])
  ok = jnp.all(jnp.abs(params - final[None, :])
               <= 3e-2 + 3e-2 * jnp.abs(final[None, :]), axis=1)
  return int(jnp.sum(~ok)), [float(r) for r in rates]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--starts', type=int, default=16)
  parser.add_argument('--steps', type=int, default=10_000)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  results = {'starts': args.starts, 'steps': args.steps, 'aliases': {}}
  print(f'| alias | real: missed of {args.starts} | complex: missed of '
        f'{args.starts} | complex: final rates |\n|---|---|---|---|')
  for name in ALIASES:
    row = {}
    for problem in PROBLEMS:
      row[problem], rates = misses(getattr(ohg, name)(), problem,
                                   args.starts, args.steps)
    row['complex_rates'] = rates
    results['aliases'][name] = row
    print(f'| {name} | {row["real"]} | {row["complex"]} | '
          f'{min(rates):.1e}–{max(rates):.1e} |', flush=True)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'rosenbrock_starts.json'), 'w') as f:
    json.dump(results, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
