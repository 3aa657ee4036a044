"""Compare the methods on real data: ``python -m benchmarks.run``.

Prints a table, writes ``results/<suite>.json`` and one PNG per task of the
training loss and the live learning rate.
"""

import argparse
import json
import os
import sys

import numpy as np

from benchmarks import data as data_lib
from benchmarks import methods as methods_lib
from benchmarks import models
from benchmarks import plots
from benchmarks import training

SUITES = {
    # task: (architecture, epochs, batch size, seeds)
    'quick': {
        'logreg': ('logreg', 10, 128, 3),
        'mlp': ('mlp', 10, 128, 3),
    },
    'full': {
        'logreg': ('logreg', 20, 128, 5),
        'mlp': ('mlp', 50, 64, 5),
        'mlp_large': ('mlp_large', 20, 128, 5),
    },
}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--suite', choices=sorted(SUITES), default='quick')
  parser.add_argument('--tasks', nargs='*', help='subset of the suite tasks')
  parser.add_argument('--methods', nargs='*',
                      choices=sorted(methods_lib.METHODS),
                      help='subset of the methods')
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)

  tasks = SUITES[args.suite]
  if args.tasks:
    unknown = set(args.tasks) - set(tasks)
    if unknown:
      parser.error(f'unknown tasks {sorted(unknown)}; '
                   f'choose from {list(tasks)}')
    tasks = {t: tasks[t] for t in args.tasks}
  names = args.methods or list(methods_lib.METHODS)
  os.makedirs(args.out, exist_ok=True)
  data = data_lib.mnist()

  results = {}
  total, done = len(tasks) * len(names), 0
  for task, (arch, epochs, batch_size, n_seeds) in tasks.items():
    results[task] = {}
    for name in names:
      run, steps_per_epoch = training.make_run(
          methods_lib.METHODS[name](), models.ARCHITECTURES[arch], data,
          epochs=epochs, batch_size=batch_size)
      out, t_compile, t_run = training.timed(run, np.arange(n_seeds))
      done += 1
      print(f'[{done}/{total}] {task:10s} {name:18s} '
            f'compile {t_compile:5.1f}s  run {t_run:5.1f}s  '
            f'loss {out["final_train_loss"].mean():.4f}', flush=True)
      results[task][name] = {
          'final_train_loss': out['final_train_loss'].tolist(),
          'test_accuracy': out['test_accuracy'].tolist(),
          'run_seconds': t_run,
          'compile_seconds': t_compile,
          'steps_per_epoch': steps_per_epoch,
          'epochs': epochs,
          'batch_size': batch_size,
          'loss_curve': out['loss'].mean(0).tolist(),
          'learning_rate_curve': out['learning_rate'].mean(0).tolist(),
      }
    plots.curves(results[task], task, os.path.join(args.out,
                                                   f'{args.suite}_{task}.png'))

  path = os.path.join(args.out, f'{args.suite}.json')
  with open(path, 'w') as f:
    json.dump({'suite': args.suite, 'results': results}, f)
  print()
  print(table(results))
  print(f'\nwrote {path} and {len(tasks)} plot(s) in {args.out}/')
  return 0


def table(results) -> str:
  """A Markdown table: final loss and test accuracy, mean ± std over seeds."""
  rows = ['| task | method | final train loss | test accuracy | vs base | '
          'run time (s) |', '|---|---|---|---|---|---|']
  for task, by_method in results.items():
    for name, r in by_method.items():
      loss, acc = np.array(r['final_train_loss']), np.array(r['test_accuracy'])
      base = methods_lib.BASE_OF.get(name)
      vs = ''
      if base in by_method:
        ratio = loss.mean() / np.mean(by_method[base]['final_train_loss'])
        vs = f'{ratio:.2f}× {base} loss'
      rows.append(
          f'| {task} | {name} | {loss.mean():.4f} ± {loss.std():.4f} | '
          f'{100 * acc.mean():.1f} ± {100 * acc.std():.1f} % | {vs} | '
          f'{r["run_seconds"]:.1f} |')
  return '\n'.join(rows)


if __name__ == '__main__':
  sys.exit(main())
