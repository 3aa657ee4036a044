"""How L4's robust rule was chosen: ``python -m benchmarks.l4_defaults``.

Runs L4Mom and L4Adam — the paper's rule and the robust rule at several
curvature caps and noise powers — on the defaults study's problems
(``benchmarks.problems.study_problems()``) plus those L4's paper rule fails
on: quadratics whose minimum is +0.6, −5 (and +5, in the study set), a
second noise level, and full-batch label-noise softmax regression. Each
runs beside constant-step SGD and momentum over a 7-point grid
(1e-3..1), 2 seeds. Prints one table of final loss above the floor (the
loss where no floor is known) and writes ``results/l4_defaults.json``;
about 5 minutes on 2 CPU cores.
"""

import argparse

import numpy as np

from benchmarks import defaults
from benchmarks import problems as problems_lib
import optax_hypergrad as ohg

GRID = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
# (rule, curvature_cap, noise_power); the first robust entry is the default.
SETTINGS = (('paper', None, None), ('robust', 1.9, 0.0), ('robust', 1.9, 0.25),
            ('robust', 1.9, 0.5), ('robust', 1.9, 1.0))
VARIANTS = {'l4_mom': ohg.l4_mom, 'l4_adam': ohg.l4_adam}


def problems():
  quad = problems_lib.quadratic
  return problems_lib.study_problems() + [
      quad(1.0, floor=0.6), quad(1.0, floor=-5.0), quad(1.0, noise=0.1),
      problems_lib.softmax_regression('digits', label_noise=0.2)]


def make(variant, rule, cap, power):
  if rule == 'paper':
    return VARIANTS[variant](rule='paper')
  return VARIANTS[variant](curvature_cap=cap, noise_power=power)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='results/l4_defaults.json')
  parser.add_argument('--problems', nargs='*', default=None)
  args = parser.parse_args(argv)
  probs = [p for p in problems()
           if not args.problems or p.name in args.problems]

  def study(problem):
    res = {'floor': defaults.floor_of(problem), 'const': {}, 'l4': {}}
    for base in ('sgd', 'nesterov'):
      res['const'][base] = defaults.constant_finals(problem, base, GRID)
    for variant in VARIANTS:
      for setting in SETTINGS:
        out = defaults.run_grid(problem, lambda _, v=variant, s=setting:
                                make(v, *s), [(0.0,)])
        final, diverged = defaults.outcome(out)
        res['l4'][f'{variant} {setting}'] = {'final': float(final.mean()),
                                             'diverged': bool(diverged.any())}
    return res

  defaults.run_study(probs, study, args.out, report,
                     {'grid': GRID, 'settings': SETTINGS})


def _excess(final, floor):
  return final - floor if floor is not None else final


def report(results) -> str:
  """Markdown: per problem, the best constant steps and every L4 setting
  (above the floor where it is known; ``!`` marks a diverged run), then per
  setting the diverged count and the geometric mean over the problems of
  its ratio to the best constant step."""
  keys = list(next(iter(results.values()))['l4'])
  short = [k.replace("'robust', ", 'c=').replace(", ('paper', None, None)",
                                                 '') for k in keys]
  rows = ['| problem | best SGD | best momentum | ' + ' | '.join(short) + ' |',
          '|' + '---|' * (3 + len(keys))]
  ratios = {k: [] for k in keys}
  diverged = dict.fromkeys(keys, 0)
  for name, res in results.items():
    floor = res['floor']
    best = min(min(res['const']['sgd']), min(res['const']['nesterov']))
    cells = [f"{_excess(min(res['const'][b]), floor):.2e}"
             for b in ('sgd', 'nesterov')]
    for k in keys:
      r = res['l4'][k]
      cells.append(f"{_excess(r['final'], floor):.2e}"
                   + ('!' if r['diverged'] else ''))
      diverged[k] += r['diverged']
      ratios[k].append((_excess(r['final'], floor) + 1e-12)
                       / (_excess(best, floor) + 1e-12))
    rows.append(f'| {name} | ' + ' | '.join(cells) + ' |')
  geo = [np.exp(np.mean(np.log(np.clip(ratios[k], 1e-30, 1e30))))
         for k in keys]
  rows.append('| **geo-mean ÷ best constant** | | | '
              + ' | '.join(f'{g:.2g}' for g in geo) + ' |')
  rows.append('| **diverged** | | | '
              + ' | '.join(str(diverged[k]) for k in keys) + ' |')
  return '\n'.join(rows)


if __name__ == '__main__':
  main()
