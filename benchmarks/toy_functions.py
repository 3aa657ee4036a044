"""HD, RTHO and MARTHE on Beale and smoothed Bukin (Donini et al. 2020, Fig. 1).

500 steps of gradient descent from a fixed start, the rate adapted online by
each method, for a grid of hyper-learning rates ``β``; the best value reached
within the 500 steps is reported per ``β``. ``python -m
benchmarks.toy_functions`` prints the table and writes
``results/toy_functions.json`` and ``results/toy_functions.png``
(trajectories of each method's best ``β`` and their learning rates).
"""

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hypergrad as ohg


def beale(p):
  x, y = p[0], p[1]
  return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
          + (2.625 - x + x * y**3) ** 2)


def bukin_smoothed(p):
  """Bukin N.6, simplified and smoothed.

  ``100 (y - 0.01 x²)² + 0.01 (x + 10)²``: a narrow curved valley.
  """
  x, y = p[0], p[1]
  return 100.0 * (y - 0.01 * x**2) ** 2 + 0.01 * (x + 10.0) ** 2


FUNCTIONS = {
    # name: (function, start, initial rate, plot box, minimum)
    'beale': (beale, (1.0, 1.5), 1e-3, ((-0.5, 4.0), (-1.0, 2.0)), 0.0),
    'bukin': (bukin_smoothed, (-5.0, 2.0), 1e-3, ((-12.0, 2.0), (-0.5, 2.5)),
              0.0),
}

# The paper's additive rate rule and the reference μ rule, over a β grid.
METHODS = {
    'HD': lambda eta0, beta: ohg.scale_by_marthe(
        None, eta0, beta, mu=0.0, rate_dynamics='additive'),
    'RTHO': lambda eta0, beta: ohg.scale_by_marthe(
        None, eta0, beta, mu=1.0, rate_dynamics='additive'),
    'MARTHE': lambda eta0, beta: ohg.scale_by_marthe(
        None, eta0, beta, mu=0.0, adapt_mu=True, mu_rule='reference',
        rate_dynamics='additive'),
}
BETAS = np.logspace(-8, 0, 17)
STEPS = 500


def run(f, start, tx):
  def step(carry, _):
    w, state = carry
    updates, state = tx.update(jax.grad(f)(w), state, w, value_fn=f)
    w = optax.apply_updates(w, updates)
    return (w, state), (w, f(w), state.learning_rate)

  w0 = jnp.asarray(start, jnp.float32)
  _, (ws, values, rates) = jax.lax.scan(step, (w0, tx.init(w0)),
                                        length=STEPS)
  return ws, values, rates


def compare():
  results = {}
  for fname, (f, start, eta0, _, _) in FUNCTIONS.items():
    results[fname] = {}
    for mname, make in METHODS.items():
      best_values, runs = [], []
      for beta in BETAS:
        ws, values, rates = jax.jit(run, static_argnums=(0, 1))(
            f, start, make(eta0, beta))
        values = np.where(np.isfinite(values), values, np.inf)
        best_values.append(float(values.min()))
        runs.append((np.asarray(ws), np.asarray(rates)))
      i = int(np.argmin(best_values))
      results[fname][mname] = {
          'betas': BETAS.tolist(), 'best_value_per_beta': best_values,
          'best_beta': float(BETAS[i]), 'best_value': best_values[i],
          'trajectory': runs[i][0].tolist(),
          'learning_rate': runs[i][1].tolist(),
      }
      print(f'{fname:6s} {mname:7s} best β {BETAS[i]:.0e}: '
            f'min f within {STEPS} steps {best_values[i]:.3e}', flush=True)
  return results


def table(results) -> str:
  rows = ['| function | method | best β | best value in 500 steps | '
          'β giving < 10× the best |', '|---|---|---|---|---|']
  for fname, by_method in results.items():
    for mname, r in by_method.items():
      vals = np.array(r['best_value_per_beta'])
      good = np.array(r['betas'])[vals < 10 * max(r['best_value'], 1e-12)]
      span = f'{good.min():.0e} – {good.max():.0e}' if len(good) else '-'
      rows.append(f'| {fname} | {mname} | {r["best_beta"]:.0e} | '
                  f'{r["best_value"]:.3e} | {span} |')
  return '\n'.join(rows)


def plot(results, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(2, len(results), figsize=(12, 9))
  for col, (fname, by_method) in enumerate(results.items()):
    f, start, _, ((x0, x1), (y0, y1)), _ = FUNCTIONS[fname]
    xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    zs = np.asarray(jax.vmap(jax.vmap(lambda a, b, f=f: f((a, b))))(
        jnp.asarray(xs), jnp.asarray(ys)))
    ax = axes[0, col]
    ax.contour(xs, ys, np.log10(zs + 1e-3), levels=25, cmap='Greys',
               linewidths=0.6)
    for mname, r in by_method.items():
      traj = np.array(r['trajectory'])
      ax.plot(traj[:, 0], traj[:, 1], '-', lw=1.3,
              label=f'{mname} (β={r["best_beta"]:.0e})')
    ax.plot(*start, 'ko')
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(f'{fname}: trajectories at each method\'s best β')
    ax.legend(fontsize=8)
    ax = axes[1, col]
    for mname, r in by_method.items():
      ax.plot(r['learning_rate'], label=mname)
    ax.set_yscale('symlog', linthresh=1e-4)
    ax.set_xlabel('step')
    ax.set_ylabel('learning rate')
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  results = compare()
  print()
  print(table(results))
  with open(os.path.join(args.out, 'toy_functions.json'), 'w') as f:
    json.dump(results, f)
  plot(results, os.path.join(args.out, 'toy_functions.png'))
  return 0


if __name__ == '__main__':
  sys.exit(main())
