"""Markdown report of a suite's results: ``python -m benchmarks.report``.

Reads ``results/<suite>.json`` (from ``benchmarks.run``) and writes a
Markdown page: per task, every method sorted by final training loss (mean ±
std over seeds), test accuracy, the tuned setting, the winner and its margin,
and each adaptive method against the base it is declared against.
"""

import argparse
import json
import sys

import numpy as np

from benchmarks import methods as methods_lib


def _stats(r):
  loss, acc = np.array(r['final_train_loss']), np.array(r['test_accuracy'])
  return loss.mean(), loss.std(), acc.mean(), acc.std()


def task_section(task, by_method, plot=None) -> str:
  any_r = next(iter(by_method.values()))
  lines = [f'## {task}', '',
           f'{any_r["epochs"]} epochs, batch {any_r["batch_size"]}, '
           f'{any_r["seeds"]} seeds; sorted by final training loss.', '',
           '| method | final train loss | test accuracy | setting | '
           'vs its base |', '|---|---|---|---|---|']
  order = sorted(by_method, key=lambda n: _stats(by_method[n])[0])
  for name in order:
    r = by_method[name]
    loss, loss_sd, acc, acc_sd = _stats(r)
    setting = ('' if r['best_hparam'] is None
               else f'lr {r["best_hparam"]:.0e} (best of grid)')
    if r['best_hparam'] is not None and r['grid'] and r['best_hparam'] in (
        min(r['grid']), max(r['grid'])):
      setting += ', at the grid\'s edge'
    base = methods_lib.METHODS[name].base
    vs = ''
    if base in by_method:
      vs = f'{loss / _stats(by_method[base])[0]:.2f}× {base}'
    lines.append(f'| {name} | {loss:.4f} ± {loss_sd:.4f} | '
                 f'{100 * acc:.1f} ± {100 * acc_sd:.1f} % | {setting} | {vs} |')
  best, second = order[0], order[1]
  margin = _stats(by_method[second])[0] / _stats(by_method[best])[0]
  lines += ['', f'Lowest final training loss: **{best}**, {margin:.2f}× below '
            f'the runner-up ({second}).', '']
  if plot:
    lines += [f'![{task}]({plot})', '']
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--results', default='results/full.json')
  parser.add_argument('--out', default='-')
  parser.add_argument('--plots', default='',
                      help='prefix of the plot paths, e.g. "full_" for '
                      'full_<task>.png beside the page')
  args = parser.parse_args(argv)
  with open(args.results) as f:
    data = json.load(f)
  parts = [f'# Benchmark suite `{data["suite"]}`: results', '']
  for task, by_method in data['results'].items():
    plot = f'{args.plots}{task}.png' if args.plots else None
    parts.append(task_section(task, by_method, plot))
  text = '\n'.join(parts)
  if args.out == '-':
    print(text)
  else:
    with open(args.out, 'w') as f:
      f.write(text)
  return 0


if __name__ == '__main__':
  sys.exit(main())
