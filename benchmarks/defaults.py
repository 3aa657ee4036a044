"""How the defaults were chosen: ``python -m benchmarks.defaults``.

Every HD setting tried (each base × each rate optimizer; the multiplicative
rule at initial rates 1e-3 and 1e-2 and three hyper-learning rates around
the default, and the papers' additive rule at their defaults) runs on every
problem of ``benchmarks.problems.study_problems()`` — loss scales 1e-3..1e3,
noise, a floor above zero, a gradient spike, Optax's parabola and
Rosenbrock, full-batch and minibatch softmax regression, MLPs, the minibatch
problems again drawn epoch-wise — next to the
base optimizer's constant step over a 13-point grid (1e-5..10). A setting's
score on a problem is its final loss over the best constant step's
(suboptimality where the minimum is known); the table gives the geometric
mean and the worst of that ratio over the problems, and counts the problems
each diverges on (a non-finite final loss, or one above the start). Writes
``results/defaults.json``; about 25 minutes on 2 CPU cores (the epoch-wise
problems draw a permutation per step).
"""

import argparse
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
from optax_hypergrad._src import alias as alias_lib

CONST_GRID = tuple(float(x) for x in np.logspace(-5, 1, 13))
BASES = ('sgd', 'nesterov', 'adam')
LOPS = ('sgd', 'nesterov', 'adam')
# The settings tried per rate optimizer: (α_0, β) of the multiplicative rule
# around the chosen default (α_0 = 1e-3, β = `default_hypergrad_lr`), and the
# papers' additive rule at their defaults. Earlier rounds (see the docs)
# also tried α_0 = 1e-4..1e-2, β up to 0.2, target cosines below 0 and a
# rate cut on gradient jumps; those lost and were dropped from the grid.
ALPHA0S = (1e-3, 1e-2)
BETAS = {'sgd': (0.02, 0.05, 0.1), 'nesterov': (0.002, 0.005, 0.01),
         'adam': (0.02, 0.05, 0.1)}
PAPER_BETA = {'sgd': 1e-3, 'nesterov': 1e-3, 'adam': 1e-7}
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
      if problem.epoch_steps:  # epoch-wise: that epoch's key, the slice
        k = (jax.random.fold_in(key, t // problem.epoch_steps),
             t % problem.epoch_steps)
      else:
        k = jax.random.fold_in(key, t)
      loss, grads = jax.value_and_grad(problem.loss)(params, k)
      if problem.spike is not None:
        at, factor = problem.spike
        grads = optax.tree.scale(jnp.where(t == at, factor, 1.0), grads)
      updates, state = tx.update(  # value= for L4, value_fn= for MARTHE
          grads, state, params, value=loss,
          value_fn=lambda p, k=k: problem.loss(p, k))
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


def outcome(out):
  """``(final, diverged)`` per grid point and seed: the final loss with a
  non-finite one as inf, and whether the run diverged (a non-finite final
  loss, or one above the start)."""
  final = np.where(np.isfinite(out['final']), out['final'], np.inf)
  return final, ~np.isfinite(out['final']) | (out['final'] > out['start'])


def constant_finals(problem, base, grid):
  """The constant step's mean final loss (over seeds) at each rate of
  ``grid``, a diverged run as inf."""
  out = run_grid(problem, lambda lr: constant(base, lr), [(lr,) for lr in grid])
  return outcome(out)[0].mean(1).tolist()


def score(final, best, floor):
  """Final over best constant: suboptimality ratio where the floor is
  known, loss ratio otherwise; a diverged run scores inf."""
  final = np.where(np.isfinite(final), final, np.inf)
  if floor is not None:
    return (final - floor + 1e-12) / (best - floor + 1e-12)
  return final / best


def settings(lop):
  """``[(rule, α_0, β)]`` tried for a rate optimizer."""
  mult = [('multiplicative', a, b) for a in ALPHA0S for b in BETAS[lop]]
  return mult + [('additive', 1e-3, None)]


def run_settings(problem, base, lop):
  """Every setting of ``settings(lop)`` on ``problem``: two programs."""
  out = {}
  for rule in ('multiplicative', 'additive'):
    grid = [(a, b if b is not None else PAPER_BETA[base])
            for r, a, b in settings(lop) if r == rule]
    res = run_grid(problem, lambda a, beta, rule=rule:
                   ohg.hypergradient_descent(a, beta, base=base,
                                             rate_optimizer=lop,
                                             rate_dynamics=rule), grid)
    for k, v in res.items():
      out[k] = v if k not in out else np.concatenate([out[k], v])
  final, diverged = outcome(out)
  return {
      'final': final.mean(1).tolist(),
      'diverged': diverged.any(1).tolist(),
      'rate_end': np.exp(np.log(np.abs(out['rates'][:, :, -1]) + 1e-30)
                         .mean(1)).tolist(),
  }


def run_study(probs, study, out, report_fn, meta):
  """``study(problem) -> dict`` on every problem, with a progress bar;
  prints the time and ``report_fn(results)``, writes ``{**meta,
  'results': results}`` to ``out``. The driver of the defaults studies."""
  results = {}
  t0 = time.time()
  for problem in tqdm.tqdm(probs, desc='problems'):
    results[problem.name] = study(problem)
  print(f'{time.time() - t0:.0f} s on {len(probs)} problems')
  print(report_fn(results))
  os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
  with open(out, 'w') as f:
    json.dump({**meta, 'results': results}, f)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='results/defaults.json')
  parser.add_argument('--problems', nargs='*', default=None)
  args = parser.parse_args(argv)
  probs = [p for p in (problems_lib.study_problems()
                       + problems_lib.epochwise_problems())
           if not args.problems or p.name in args.problems]

  def study(problem):
    res = {'floor': floor_of(problem), 'const': {}, 'hd': {}}
    for b in BASES:
      res['const'][b] = constant_finals(problem, b, CONST_GRID)
      for lop in LOPS:
        res['hd'][f'{b}/{lop}'] = run_settings(problem, b, lop)
    return res

  run_study(probs, study, args.out, report,
            {'settings': {lop: settings(lop) for lop in LOPS},
             'const_grid': CONST_GRID})


def summarize(results, key, i):
  """One setting of one base/lop over every problem: geometric-mean and
  worst ratio to the best constant step (and where), problems diverged,
  problems where it ends at or below the constant step from 1e-3."""
  base = key.split('/')[0]
  start = int(np.argmin(np.abs(np.log(np.asarray(CONST_GRID) / 1e-3))))
  ratios, div, beats = [], 0, 0
  for res in results.values():
    final = res['hd'][key]['final'][i]
    ratios.append(score(final, min(res['const'][base]), res['floor']))
    div += res['hd'][key]['diverged'][i]
    beats += final <= res['const'][base][start]
  ratios = np.asarray(ratios)
  worst = int(np.argmax(ratios))
  return {'geo': float(np.exp(np.mean(np.log(np.minimum(ratios, 1e30))))),
          'worst': float(ratios[worst]), 'worst_on': list(results)[worst],
          'diverged': div, 'beats_base': beats}


def report(results) -> str:
  """A Markdown table: every setting of every base × rate optimizer."""
  n = len(results)
  rows = [f'| base / rate opt. | rule | α_0 | β | geo-mean ÷ best const | '
          f'worst (problem) | diverged (of {n}) | ≤ base from 1e-3 |',
          '|---|---|---|---|---|---|---|---|']
  for base in BASES:
    for lop in LOPS:
      key = f'{base}/{lop}'
      for i, (rule, a, b) in enumerate(settings(lop)):
        s = summarize(results, key, i)
        beta = PAPER_BETA[base] if b is None else b
        default = rule == 'multiplicative' and a == 1e-3 and beta == (
            alias_lib.default_hypergrad_lr(base, lop, 'multiplicative'))
        name = f'**{key}**' if default else key
        rows.append(
            f'| {name} | {rule} | {a:g} | {beta:g} | {s["geo"]:.3g} | '
            f'{s["worst"]:.3g} ({s["worst_on"]}) | {s["diverged"]} | '
            f'{s["beats_base"]} |')
  return '\n'.join(rows)


if __name__ == '__main__':
  main()
