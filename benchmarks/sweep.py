"""A sweep as one program: 45 full training runs vmapped vs one by one.

SGD-HD on MNIST-1D (a 40-100-100-10 MLP, batch 128, 20 epochs), 9 initial
rates × 5 seeds. The same 45 runs as one ``jit(vmap(train))`` program, and
one after another through ``jit(train)`` (compiled once, called 45 times).
``python -m benchmarks.sweep`` prints the timings and the speed-up and writes
``results/sweep.json``.
"""

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import data as data_lib
from benchmarks import models
from benchmarks import training
import optax_hypergrad as ohg


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--epochs', type=int, default=20)
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)

  train, _ = training.make_train(
      lambda lr, _: ohg.sgd_hd(lr), models.ARCHITECTURES['mnist1d_mlp'],
      data_lib.mnist1d(), epochs=args.epochs, batch_size=128)
  rates = np.logspace(-3, -1, 9)
  hs, seeds = (jnp.asarray(a) for a in np.meshgrid(rates, np.arange(5)))
  hs, seeds = hs.ravel().astype(jnp.float32), seeds.ravel().astype(jnp.int32)

  swept = jax.jit(jax.vmap(train)).lower(hs, seeds).compile()
  single = jax.jit(train).lower(hs[0], seeds[0]).compile()

  def one_program():
    return jax.block_until_ready(swept(hs, seeds))

  def one_by_one():
    return [jax.block_until_ready(single(h, s))
            for h, s in zip(hs, seeds, strict=True)]

  times = {'vmapped': [], 'sequential': []}
  for r in range(args.repeats):
    for name, fn in (('vmapped', one_program), ('sequential', one_by_one)):
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
    print(f'  repeat {r + 1}/{args.repeats}: vmapped '
          f'{times["vmapped"][-1]:.2f}s, one by one '
          f'{times["sequential"][-1]:.2f}s', flush=True)
  med = {k: float(np.median(v)) for k, v in times.items()}
  # The two give the same runs, up to float reassociation (vmap batches the
  # matmuls, which sums in another order; 620 steps amplify it a little).
  seq = np.array([o['final_train_loss'] for o in one_by_one()])
  vm = one_program()
  rel = np.abs(seq - np.asarray(vm['final_train_loss'])) / np.abs(seq)
  best = rates[int(np.argmin(np.asarray(vm['final_train_loss']).reshape(
      5, 9).mean(0)))]
  print(f'\n45 runs (9 rates × 5 seeds), {args.epochs} epochs each, median of '
        f'{args.repeats}: vmapped {med["vmapped"]:.2f}s, one by one '
        f'{med["sequential"]:.2f}s: speed-up '
        f'{med["sequential"] / med["vmapped"]:.1f}×\nfinal losses of the two '
        f'agree to {rel.max():.1e} relative (median {np.median(rel):.1e}); '
        f'best initial rate {best:.1e}')
  with open(os.path.join(args.out, 'sweep.json'), 'w') as f:
    json.dump({'seconds': med, 'speedup': med['sequential'] / med['vmapped'],
               'max_relative_difference': float(rel.max()),
               'device': str(jax.devices()[0]),
               'epochs': args.epochs}, f)
  return 0


if __name__ == '__main__':
  sys.exit(main())
