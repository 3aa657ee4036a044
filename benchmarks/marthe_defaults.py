"""How MARTHE's and RTHO's defaults were chosen: ``python -m
benchmarks.marthe_defaults``.

Runs MARTHE over SGD, Nesterov momentum and Adam — the scale-free
(multiplicative) rate rule at several initial rates, hyper-learning rates and
κ, with the 'descent' and the reference μ rule, next to RTHO (μ = 1) and HD
(μ = 0) on the same rule and the paper's additive settings (η_0 = 0.01,
β = 1e-8, κ = 1e-6) — on the problems of the L4 defaults study (the HD study's
problems plus shifted minima, a second noise level and full-batch label
noise), 2 seeds, beside the base's constant step over a 7-point grid. Prints
one table (per setting: geometric mean and worst of the final loss over the
best constant step's, above the floor where it is known; runs diverged;
problems where the rate ends ≥ 2× from its start although the best constant
step is ≥ 10× away, of how many such) and writes
``results/marthe_defaults.json``; about 18 minutes on 2 CPU cores. The
committed evidence also holds a μ rule that lost and was dropped: a running
mean of the consecutive gradients' cosine in place of the reference's
per-step ``z`` ("smoothed-μ").
"""

import argparse

import numpy as np

from benchmarks import defaults
from benchmarks import l4_defaults
import optax_hypergrad as ohg
from optax_hypergrad._src import alias

BASES = ('sgd', 'nesterov', 'adam')
GRID = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
# name -> (static (rate_dynamics, mu_rule, adapt_mu), (η_0, β, κ, μ_0)).
# The first is the default.
SETTINGS = {
    'marthe': (('multiplicative', 'descent', True), (1e-3, 0.05, 0.0, 0.0)),
    'marthe η0=1e-2': (('multiplicative', 'descent', True),
                       (1e-2, 0.05, 0.0, 0.0)),
    'marthe β=0.02': (('multiplicative', 'descent', True),
                      (1e-3, 0.02, 0.0, 0.0)),
    'marthe β=0.1': (('multiplicative', 'descent', True),
                     (1e-3, 0.1, 0.0, 0.0)),
    'marthe κ=0.1': (('multiplicative', 'descent', True),
                     (1e-3, 0.05, 0.1, 0.0)),
    'marthe ref-μ': (('multiplicative', 'reference', True),
                     (1e-3, 0.05, 0.0, 0.0)),
    'rtho': (('multiplicative', 'descent', False), (1e-3, 0.05, 0.0, 1.0)),
    'hd (μ=0)': (('multiplicative', 'descent', False),
                 (1e-3, 0.05, 0.0, 0.0)),
    'marthe paper': (('additive', 'reference', True),
                     (1e-2, 1e-8, 1e-6, 0.0)),
    'rtho paper': (('additive', 'reference', False), (1e-2, 1e-8, 0.0, 1.0)),
}


def make(base, static):
  dynamics, rule, adapt = static
  def tx(eta0, beta, kappa, mu):
    return ohg.scale_by_marthe(alias.base_direction(base), eta0, beta, mu,
                               kappa, adapt_mu=adapt, mu_rule=rule,
                               rate_dynamics=dynamics)
  return tx


def run_settings(problem, base):
  """Every setting on ``problem``: one program per static configuration."""
  groups = {}
  for name, (static, numeric) in SETTINGS.items():
    groups.setdefault(static, []).append((name, numeric))
  out = {}
  for static, entries in groups.items():
    res = defaults.run_grid(problem, make(base, static),
                            [numeric for _, numeric in entries])
    final, diverged = defaults.outcome(res)
    rates = res['rates']
    for i, (name, numeric) in enumerate(entries):
      end = np.exp(np.log(np.abs(rates[i, :, -1]) + 1e-30).mean())
      moved = np.exp(np.log(np.abs(rates[i] / numeric[0]) + 1e-30).mean(0))
      out[name] = {'final': float(final[i].mean()),
                   'diverged': bool(diverged[i].any()),
                   'rate_end': float(end),
                   'max_move': float(np.max(np.maximum(moved, 1 / moved)))}
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='results/marthe_defaults.json')
  parser.add_argument('--problems', nargs='*', default=None)
  parser.add_argument('--bases', nargs='*', default=list(BASES))
  args = parser.parse_args(argv)
  probs = [p for p in l4_defaults.problems()
           if not args.problems or p.name in args.problems]

  def study(problem):
    res = {'floor': defaults.floor_of(problem), 'const': {}, 'marthe': {}}
    for base in args.bases:
      res['const'][base] = defaults.constant_finals(problem, base, GRID)
      res['marthe'][base] = run_settings(problem, base)
    return res

  defaults.run_study(probs, study, args.out,
                     lambda results: report(results, args.bases),
                     {'grid': GRID, 'settings': SETTINGS})


def summarize(results, base, name, settings=SETTINGS):
  """One setting over every problem: geometric-mean and worst ratio to the
  best constant step, runs diverged, and how often the rate moved ≥ 2×
  where the best constant step is ≥ 10× from the start."""
  ratios, div, moved, needed = [], 0, 0, 0
  for res in results.values():
    r = res['marthe'][base][name]
    const = res['const'][base]
    ratios.append(defaults.score(r['final'], min(const), res['floor']))
    div += r['diverged']
    eta0 = settings[name][1][0]
    best = GRID[int(np.argmin(const))]
    if max(best / eta0, eta0 / best) >= 10:
      needed += 1
      moved += r['max_move'] >= 2
  ratios = np.asarray(ratios)
  worst = int(np.argmax(ratios))
  return {'geo': float(np.exp(np.mean(np.log(np.clip(ratios, 1e-30, 1e30))))),
          'worst': float(ratios[worst]), 'worst_on': list(results)[worst],
          'diverged': div, 'moved': moved, 'needed': needed}


def report(results, bases=BASES, settings=SETTINGS) -> str:
  """A Markdown table: every setting over every base (``settings``: those
  the results were run with, as their JSON records them)."""
  n = len(results)
  rows = [f'| base | setting | geo-mean ÷ best const | worst (problem) | '
          f'diverged (of {n}) | rate moved ≥ 2× where needed |',
          '|---|---|---|---|---|---|']
  for base in bases:
    for name in settings:
      s = summarize(results, base, name, settings)
      rows.append(f'| {base} | {name} | {s["geo"]:.3g} | {s["worst"]:.3g} '
                  f'({s["worst_on"]}) | {s["diverged"]} | '
                  f'{s["moved"]}/{s["needed"]} |')
  return '\n'.join(rows)


if __name__ == '__main__':
  main()
