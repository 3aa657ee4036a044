"""Compare the methods on real data: ``python -m benchmarks.run``.

Prints a table, writes ``results/<suite>.json`` and one PNG per task of the
training loss and the live learning rate.
"""

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

from benchmarks import data as data_lib
from benchmarks import methods as methods_lib
from benchmarks import models
from benchmarks import plots
from benchmarks import training

SUITES = {
    # task: (architecture, dataset, epochs, batch size, seeds)
    'quick': {
        'logreg': ('logreg', 'mnist', 10, 128, 3),
        'mlp': ('mlp', 'mnist', 10, 128, 3),
    },
    'full': {
        'logreg': ('logreg', 'mnist', 20, 128, 5),
        'mlp': ('mlp', 'mnist', 20, 64, 5),
        'mlp_large': ('mlp_large', 'mnist', 10, 128, 5),
        'mnist1d_mlp': ('mnist1d_mlp', 'mnist1d', 50, 128, 5),
    },
}
DEFAULT_METHODS = {'quick': methods_lib.QUICK,
                   'full': tuple(methods_lib.METHODS)}
DATASETS = {'mnist': data_lib.mnist, 'mnist1d': data_lib.mnist1d}


def run_method(method, sizes, data, epochs, batch_size, n_seeds):
  """All grid points × seeds as one program; the best grid point's metrics.

  Returns:
    (metrics of the best grid point per seed, best h or None, mean final
    loss per grid point, compile seconds, run seconds).
  """
  train, steps_per_epoch = training.make_train(
      method.make, sizes, data, epochs=epochs, batch_size=batch_size,
      schedule_free=method.schedule_free)
  grid = method.grid or (0.0,)
  hs = np.repeat(np.asarray(grid, np.float32), n_seeds)
  seeds = np.tile(np.arange(n_seeds, dtype=np.int32), len(grid))
  run = jax.jit(jax.vmap(train))
  t0 = time.perf_counter()
  compiled = run.lower(hs, seeds).compile()
  t1 = time.perf_counter()
  out = jax.block_until_ready(compiled(hs, seeds))
  t2 = time.perf_counter()
  out = jax.tree.map(lambda a: np.asarray(a).reshape(len(grid), n_seeds,
                                                     *a.shape[1:]), out)
  final = out['final_train_loss'].mean(axis=1)
  final = np.where(np.isfinite(final), final, np.inf)
  best = int(np.argmin(final))
  metrics = jax.tree.map(lambda a: a[best], out)
  return (metrics, grid[best] if method.grid else None, final.tolist(),
          t1 - t0, t2 - t1, steps_per_epoch)


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
  names = args.methods or list(DEFAULT_METHODS[args.suite])
  os.makedirs(args.out, exist_ok=True)

  results = {}
  total, done = len(tasks) * len(names), 0
  for task, (arch, dataset, epochs, batch_size, n_seeds) in tasks.items():
    data = DATASETS[dataset]()
    results[task] = {}
    for name in names:
      metrics, best_h, per_grid, t_compile, t_run, spe = run_method(
          methods_lib.METHODS[name], models.ARCHITECTURES[arch], data,
          epochs, batch_size, n_seeds)
      done += 1
      tuned = '' if best_h is None else f' (best lr {best_h:.0e})'
      print(f'[{done}/{total}] {task:11s} {name:20s} '
            f'compile {t_compile:5.1f}s  run {t_run:6.1f}s  '
            f'loss {metrics["final_train_loss"].mean():.4f}{tuned}',
            flush=True)
      results[task][name] = {
          'final_train_loss': metrics['final_train_loss'].tolist(),
          'test_accuracy': metrics['test_accuracy'].tolist(),
          'best_hparam': best_h,
          'grid': list(methods_lib.METHODS[name].grid or ()),
          'final_loss_per_grid_point': per_grid,
          'run_seconds': t_run,
          'compile_seconds': t_compile,
          'steps_per_epoch': spe,
          'epochs': epochs,
          'batch_size': batch_size,
          'seeds': n_seeds,
          'loss_curve': metrics['loss'].mean(0).tolist(),
          'learning_rate_curve': metrics['learning_rate'].mean(0).tolist(),
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
      base = methods_lib.METHODS[name].base
      vs = ''
      if base in by_method:
        ratio = loss.mean() / np.mean(by_method[base]['final_train_loss'])
        vs = f'{ratio:.2f}× {base} loss'
      if r['best_hparam'] is not None:
        name = f'{name} (lr {r["best_hparam"]:.0e})'
      rows.append(
          f'| {task} | {name} | {loss.mean():.4f} ± {loss.std():.4f} | '
          f'{100 * acc.mean():.1f} ± {100 * acc.std():.1f} % | {vs} | '
          f'{r["run_seconds"]:.1f} |')
  return '\n'.join(rows)


if __name__ == '__main__':
  sys.exit(main())
