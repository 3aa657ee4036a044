"""How the defaults were chosen: ``python -m benchmarks.defaults``.

Every HD setting of a grid (initial rate × hyper-learning rate, each base ×
each rate optimizer, multiplicative rate dynamics) runs on every problem of
``benchmarks.problems.study_problems()`` — loss scales 1e-3..1e3, noise,
floors above zero, a gradient spike, Optax's parabola and Rosenbrock, full-
batch and minibatch softmax regression, MLPs — next to the base optimizer's
constant step over a grid. A setting's score on a problem is its final loss
over the best constant step's (suboptimality where the minimum is known);
the table ranks settings by the geometric mean of that ratio, and counts the
problems each diverges on. Writes ``results/defaults.json``.
"""

import argparse
import itertools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from benchmarks import problems as problems_lib
import optax_hypergrad as ohg

CONST_GRID = tuple(float(x) for x in np.logspace(-5, 1, 13))
ALPHA0S = (1e-3, 1e-2)
BETAS = (0.02, 0.05, 0.1)
TARGETS = (0.0,)
BASES = ('sgd', 'nesterov', 'adam')
LOPS = ('sgd', 'nesterov', 'adam')
SEEDS = 2


def constant(base, lr):
  if base == 'sgd':
    return optax.sgd(lr)
  if base == 'nesterov':
    return optax.sgd(lr, momentum=0.9, nesterov=True)
  return optax.adam(lr)


def make_run(problem, make_tx):
  """``run(hparams, seed) -> (final loss, rates)``, one whole run, pure."""
  def run(hparams, seed):
    tx = make_tx(*hparams)
    key = jax.random.key(seed)
    params = problem.init(key)

    def step(carry, t):
      params, state = carry
      k = jax.random.fold_in(key, t)
      loss, grads = jax.value_and_grad(problem.loss)(params, k)
      if problem.spike is not None:
        at, factor = problem.spike
        grads = optax.tree.scale(jnp.where(t == at, factor, 1.0), grads)
      updates, state = tx.update(grads, state, params)
      lr = optax.tree.get(state, 'learning_rate', jnp.nan)
      return (optax.apply_updates(params, updates), state), lr

    (params, _), lrs = jax.lax.scan(
        step, (params, tx.init(params)), jnp.arange(problem.steps))
    final = problem.full_loss(params)
    start = problem.full_loss(problem.init(key))
    dist = jnp.nan
    if problem.solution is not None:
      dist = jnp.max(jnp.abs(params - problem.solution))
    return {'final': final, 'start': start, 'dist': dist,
            'rates': lrs[:: max(1, problem.steps // 50)]}

  return run


def run_grid(problem, make_tx, grid, seeds=SEEDS):
  """Every grid point × seed as one program; metrics shaped (grid, seed)."""
  hs = np.repeat(np.asarray(grid, np.float32).reshape(len(grid), -1), seeds,
                 axis=0)
  ss = np.tile(np.arange(seeds, dtype=np.int32), len(grid))
  out = jax.jit(jax.vmap(make_run(problem, make_tx)))(hs, ss)
  return jax.tree.map(
      lambda a: np.asarray(a).reshape(len(grid), seeds, *a.shape[1:]), out)


def floor_of(problem):
  """The minimum where it is known (0 for the alias-test problems, the
  quadratic's floor), else None."""
  if problem.solution is None:
    return None
  return float(problem.full_loss(problem.solution))


def score(final, best, floor):
  """Final over best constant: suboptimality ratio where the floor is
  known, loss ratio otherwise; a diverged run scores inf."""
  final = np.where(np.isfinite(final), final, np.inf)
  if floor is not None:
    return (final - floor + 1e-12) / (best - floor + 1e-12)
  return final / best


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='results/defaults.json')
  parser.add_argument('--problems', nargs='*', default=None)
  parser.add_argument('--lops', nargs='*', default=LOPS, choices=LOPS)
  parser.add_argument('--betas', nargs='*', type=float, default=BETAS)
  parser.add_argument('--alpha0s', nargs='*', type=float, default=ALPHA0S)
  args = parser.parse_args(argv)
  probs = [p for p in problems_lib.study_problems()
           if not args.problems or p.name in args.problems]
  hd_grid = list(itertools.product(args.alpha0s, args.betas, TARGETS))
  results = {}
  t0 = time.time()
  for problem in tqdm.tqdm(probs, desc='problems'):
    floor = floor_of(problem)
    res = {'floor': floor, 'const': {}, 'hd': {}}
    for b in BASES:
      out = run_grid(problem, lambda lr, b=b: constant(b, lr),
                     [(lr,) for lr in CONST_GRID])
      final = np.where(np.isfinite(out['final']), out['final'], np.inf)
      res['const'][b] = final.mean(1).tolist()
      for lop in args.lops:
        out = run_grid(problem, lambda a, beta, c, b=b, lop=lop:
                       ohg.hypergradient_descent(
                           a, beta, base=b, rate_optimizer=lop,
                           target_cosine=c), hd_grid)
        res['hd'][f'{b}/{lop}'] = {
            'final': np.where(np.isfinite(out['final']), out['final'],
                              np.inf).mean(1).tolist(),
            'diverged': (~np.isfinite(out['final'])
                         | (out['final'] > out['start'])).any(1).tolist(),
            'dist': np.nanmax(out['dist'], axis=1).tolist()
            if floor is not None else None,
            'rate_end': np.exp(np.log(np.abs(out['rates'][:, :, -1]))
                               .mean(1)).tolist(),
        }
    results[problem.name] = res
  print(f'{time.time() - t0:.0f} s')
  _report(results, hd_grid, args.lops)
  os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump({'grid': hd_grid, 'const_grid': CONST_GRID,
               'results': results}, f)


def _report(results, hd_grid, lops=LOPS):
  """Per base × rate optimizer × setting: geometric-mean ratio to the best
  constant step, worst ratio, problems diverged, problems where it ends
  below the constant step at the same initial rate."""
  rows = []
  for key in [f'{b}/{lop}' for b in BASES for lop in lops]:
    b = key.split('/')[0]
    for i, (a, beta, c) in enumerate(hd_grid):
      ratios, div, beats = [], 0, 0
      for res in results.values():
        best = min(res['const'][b])
        r = score(res['hd'][key]['final'][i], best, res['floor'])
        ratios.append(r)
        div += res['hd'][key]['diverged'][i]
        same = res['const'][b][int(np.argmin(np.abs(
            np.log(np.asarray(CONST_GRID)) - np.log(a))))]
        beats += res['hd'][key]['final'][i] <= same
      ratios = np.asarray(ratios)
      gm = float(np.exp(np.mean(np.log(np.minimum(ratios, 1e30)))))
      rows.append((key, a, beta, c, gm, float(ratios.max()), div, beats))
  rows.sort(key=lambda r: (r[0], r[4]))
  n = len(results)
  print(f'{"base/lop":18} {"a0":>7} {"beta":>6} {"target":>6} {"geo":>9} '
        f'{"worst":>9} {"div":>4} {"<=base@a0":>9}  (of {n})')
  for r in rows:
    print(f'{r[0]:18} {r[1]:7.0e} {r[2]:6.2f} {r[3]:6.2f} {r[4]:9.3g} '
          f'{r[5]:9.3g} {r[6]:4d} {r[7]:9d}')


if __name__ == '__main__':
  main()
