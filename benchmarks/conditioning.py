"""L4's "optimization floor" claim (Rolinek & Martius §3.1, Fig. 2).

A two-layer linear net ``W1 W2 x ≈ A x`` with ``x ∈ R^6``, ``W1 ∈ R^{10×6}``,
``W2 ∈ R^{6×6}``, ``κ(A) = 1e10`` and 1000 fixed samples, trained full batch
(it is a deterministic problem). L4Mom and L4Adam at their defaults against
the best of a fine grid of constant-step SGD and Adam (Adam with the paper's
``ε = 1e-4``), all for the same number of steps, over several random ``A``.

``python -m benchmarks.conditioning`` prints the table and writes
``results/conditioning.json`` and ``results/conditioning.png``.
"""

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_hypergrad as ohg

N_IN, N_OUT, N_SAMPLES = 6, 10, 1000


def make_problem(seed, kappa=1e10, top=100.0):
  """``A``: the singular vectors of a uniform random matrix (as in Recht's
  notebook), singular values log-spaced from ``top`` down to ``top / κ``.

  ``top = 100`` puts the initial loss near 1e4, where the paper's Fig. 2
  starts; the paper does not give its construction of ``A`` beyond ``κ``.
  """
  rng = np.random.default_rng(seed)
  u, _, vt = np.linalg.svd(rng.uniform(size=(N_OUT, N_IN)),
                           full_matrices=False)
  a = u @ np.diag(np.logspace(np.log10(top), np.log10(top / kappa), N_IN)) @ vt
  x = rng.normal(size=(N_SAMPLES, N_IN))
  w1 = rng.normal(size=(N_OUT, N_IN)) / np.sqrt(N_IN)
  w2 = rng.normal(size=(N_IN, N_IN)) / np.sqrt(N_IN)
  f32 = lambda z: jnp.asarray(z, jnp.float32)
  return f32(x), f32(x @ a.T), {'w1': f32(w1), 'w2': f32(w2)}


def loss_fn(params, x, y):
  pred = x @ (params['w1'] @ params['w2']).T
  return jnp.mean(jnp.sum((pred - y) ** 2, axis=-1))


def final_losses(make_tx, hparams, seeds, steps):
  """Loss curves (seed, hparam, window) of ``make_tx(h)`` for each ``h``.

  One compiled program: a ``lax.scan`` over steps, vmapped over the
  hyperparameter grid; problems are looped over (they differ in data).
  """
  def run(h, x, y, params):
    tx = make_tx(h)

    def step(carry, _):
      params, state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
      updates, state = tx.update(grads, state, params, value=loss)
      return (optax.apply_updates(params, updates), state), loss

    _, losses = jax.lax.scan(step, (params, tx.init(params)), length=steps)
    # Geometric mean over each 100-step window: a lucky dip of an
    # oscillating run (a best-so-far would keep it) does not count, and a
    # diverged window is inf.
    logs = jnp.log(jnp.where(jnp.isfinite(losses) & (losses > 0), losses,
                             jnp.inf))
    return jnp.exp(logs[: steps // 100 * 100].reshape(-1, 100).mean(-1))

  grid = jax.jit(jax.vmap(run, in_axes=(0, None, None, None)))
  out = [grid(jnp.asarray(hparams, jnp.float32), *make_problem(s))
         for s in seeds]
  return np.array(out)


METHODS = {
    # name: (factory of a hyperparameter h, grid of h)
    'sgd': (lambda h: optax.with_extra_args_support(optax.sgd(h)),
            np.logspace(-6, 0, 25)),
    'adam': (lambda h: optax.with_extra_args_support(optax.adam(h, eps=1e-4)),
             np.logspace(-6, 0, 25)),
    'l4_mom': (lambda h: ohg.l4_mom(alpha=h), np.array([0.15])),
    'l4_adam': (lambda h: ohg.l4_adam(alpha=h), np.array([0.15])),
    'l4_mom_paper': (lambda h: ohg.l4_mom(alpha=h, rule='paper'),
                     np.array([0.15])),
    'l4_adam_paper': (lambda h: ohg.l4_adam(alpha=h, rule='paper'),
                      np.array([0.15])),
}


def compare(steps, seeds):
  """Loss curves per method: the grid's best setting for the baselines."""
  results = {}
  for name, (make_tx, grid) in METHODS.items():
    t0 = time.perf_counter()
    curves = final_losses(make_tx, grid, seeds, steps)  # (seed, h, t)
    # Best setting: lowest mean (over seeds, in log space) final loss.
    score = np.mean(np.log10(np.maximum(curves[:, :, -1], 1e-30)), axis=0)
    best = int(np.argmin(score))
    results[name] = {
        'best_hparam': float(grid[best]),
        'final_loss': curves[:, best, -1].tolist(),
        'curve': np.exp(np.mean(np.log(np.maximum(curves[:, best], 1e-30)),
                                axis=0)).tolist(),
        'seconds': time.perf_counter() - t0,
    }
    print(f'{name:8s} best h={grid[best]:.2e}  final loss (geo-mean) '
          f'{10 ** score[best]:.3e}  [{time.perf_counter() - t0:.1f}s]',
          flush=True)
  return results


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--steps', type=int, default=30_000)
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  results = compare(args.steps, list(range(args.seeds)))
  best_const = min(np.exp(np.mean(np.log(results[m]['final_loss'])))
                   for m in ('sgd', 'adam'))
  print(f'\n| method | best setting | final loss, geo-mean over {args.seeds} '
        f'problems | best constant ÷ method |\n|---|---|---|---|')
  for name, r in results.items():
    geo = np.exp(np.mean(np.log(r['final_loss'])))
    print(f'| {name} | {r["best_hparam"]:.2e} | {geo:.3e} | '
          f'{best_const / geo:.3g}× |')
  with open(os.path.join(args.out, 'conditioning.json'), 'w') as f:
    json.dump({'steps': args.steps, 'seeds': args.seeds,
               'results': results}, f)
  _plot(results, args.steps, os.path.join(args.out, 'conditioning.png'))
  return 0


def _plot(results, steps, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name, r in results.items():
    label = name if name.startswith('l4') else (
        f'{name}* (best of grid, lr={r["best_hparam"]:.1e})')
    t = np.arange(1, len(r['curve']) + 1) * 100
    ax.plot(t, r['curve'], label=label)
  ax.set_yscale('log')
  ax.set_xlabel('iteration')
  ax.set_ylabel('training loss (100-step and problem geo-mean)')
  ax.set_title(f'Badly conditioned regression, κ(A) = 1e10, {steps} steps')
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


if __name__ == '__main__':
  sys.exit(main())
