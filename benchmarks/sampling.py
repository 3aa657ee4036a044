"""HD's rate under epoch-wise sampling: ``python -m benchmarks.sampling``.

Minibatches drawn as a fresh permutation per epoch (without replacement, as
training loops and this package's benchmarks draw them) are negatively
correlated within an epoch: they sum to the full gradient. Near the noise
floor that makes the one-step hypergradient ``−g_t·d_{t−1}`` positive on
average, and every HD alias lowers its rate step after step. This runs a
least-squares problem (4,000 examples, 40 features, label noise 2) and the
benchmark suite's MNIST-1D MLP (50 epochs), batch 128, with both samplings,
and prints each alias's live rate and final training loss beside constant
Adam's; ``results/sampling.json`` holds them.
"""

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from benchmarks import data as data_lib
from benchmarks import models
import optax_hypergrad as ohg

OPTIMIZERS = {'adam': lambda: optax.adam(1e-3), 'sgd_hd': ohg.sgd_hd,
              'sgdn_hd': ohg.sgdn_hd, 'adam_hd': ohg.adam_hd,
              'adam_op_adam_lop': ohg.adam_op_adam_lop}


def least_squares(n=4000, d=40, noise=2.0):
  """``(loss(params, idx), full_loss(params), init(key), n, steps)``."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = x @ rng.normal(size=d).astype(np.float32) + noise * rng.normal(size=n)
  x, y = jnp.asarray(x), jnp.asarray(y.astype(np.float32))
  loss = lambda w, idx: 0.5 * jnp.mean((x[idx] @ w - y[idx]) ** 2)
  return (loss, lambda w: loss(w, jnp.arange(n)), lambda key: jnp.zeros(d),
          n, 3000)


def mnist1d_mlp(epochs=50, batch=128):
  """The suite's ``mnist1d_mlp`` task, as :func:`least_squares` returns."""
  x, y = (jnp.asarray(a) for a in data_lib.mnist1d()[:2])
  model = models.ARCHITECTURES['mnist1d_mlp']
  loss = lambda p, idx: models.cross_entropy(p, x[idx], y[idx], model.apply)
  n = x.shape[0]
  return (loss, lambda p: models.cross_entropy(p, x, y, model.apply),
          model.init, n, epochs * (n // batch))


PROBLEMS = {'least squares': least_squares, 'MNIST-1D MLP': mnist1d_mlp}


def batches(n, batch, steps, replace, seed):
  """Indices per step: epoch permutations, or draws with replacement."""
  rng = np.random.default_rng(seed)
  if replace:
    return rng.integers(0, n, (steps, batch))
  per_epoch = n // batch
  epochs = -(-steps // per_epoch)
  idx = np.concatenate([rng.permutation(n)[:per_epoch * batch].reshape(
      per_epoch, batch) for _ in range(epochs)])
  return idx[:steps]


def run(tx, problem, idx, seed, record_every):
  """Final full loss and the live rate (NaN for a constant step) every
  ``record_every`` steps."""
  loss, full_loss, init, _, _ = problem

  def step(carry, i):
    w, state = carry
    value, grads = jax.value_and_grad(loss)(w, i)
    updates, state = tx.update(grads, state, w, value=value)
    try:
      rate = ohg.live_learning_rate(state)
    except ValueError:  # a constant-step Optax optimizer
      rate = jnp.nan
    return (optax.apply_updates(w, updates), state), rate

  w0 = init(jax.random.key(seed))
  (w, _), rates = jax.jit(lambda idx: jax.lax.scan(
      step, (w0, tx.init(w0)), idx))(jnp.asarray(idx))
  return float(full_loss(w)), np.asarray(rates)[record_every -
                                                1::record_every]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  results = {'batch_size': args.batch_size, 'seeds': args.seeds,
             'problems': {}}
  todo = [(p, o, r) for p in PROBLEMS for o in OPTIMIZERS
          for r in (False, True)]
  problems = {}
  for name, opt, replace in tqdm.tqdm(todo, desc='runs'):
    if name not in problems:
      problems[name] = PROBLEMS[name]()
    problem = problems[name]
    n, steps = problem[3], problem[4]
    out = results['problems'].setdefault(name, {
        'steps': steps, 'record_every': steps // 6, 'runs': {}})
    finals, rates = [], []
    for seed in range(args.seeds):
      idx = batches(n, args.batch_size, steps, replace, seed)
      final, rate = run(OPTIMIZERS[opt](), problem, idx, seed,
                        out['record_every'])
      finals.append(final)
      rates.append(rate.tolist())
    key = f'{opt} {"with" if replace else "without"} replacement'
    out['runs'][key] = {'final_loss': finals, 'rate': rates}
  for name, out in results['problems'].items():
    print(f'\n{name}: live rate every {out["record_every"]} steps and final '
          f'training loss, median over {args.seeds} seeds')
    for key, r in out['runs'].items():
      rate = np.median(np.asarray(r['rate']), axis=0)
      print(f'{key:38s} ' + ' '.join(f'{v:8.1e}' for v in rate)
            + f'   loss {np.median(r["final_loss"]):.4f}')
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, 'sampling.json'), 'w') as f:
    json.dump(results, f)
  return 0


if __name__ == '__main__':
  sys.exit(main())
