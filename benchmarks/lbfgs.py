"""Deterministic convex problems against L-BFGS: ``python -m benchmarks.lbfgs``.

Full-batch softmax regression (L2 1e-3) on scikit-learn's digits and breast
cancer data and a full-batch least-squares problem. ``optax.lbfgs`` (with its
zoom line search) runs 300 iterations; its final loss is the target. Every
HD alias at its defaults (and at the papers' additive rule) runs up to 5,000
iterations; the table gives the iterations each needs to come within 1e-4
(relative) of the target, and the ratio to what L-BFGS needs. Writes
``results/lbfgs.json``.
"""

import argparse
import json
import os

import jax
import numpy as np
import optax

from benchmarks import headline
from benchmarks import methods as methods_lib
from benchmarks import problems as problems_lib
import optax_hypergrad as ohg

RTOL = 1e-4
MAX_ITERS = 5000


def problems():
  lsq = problems_lib.least_squares()
  return {
      'softmax_digits': problems_lib.softmax_regression('digits'),
      'softmax_breast_cancer': problems_lib.softmax_regression(
          'breast_cancer'),
      'least_squares': lsq,
  }


def losses(tx, f, params, steps, value_and_grad=None):
  """The loss before each of ``steps`` iterations of ``tx`` on ``f``."""
  state = tx.init(params)

  def step(carry, _):
    p, s = carry
    if value_and_grad is not None:
      v, g = value_and_grad(p, state=s)
      u, s = tx.update(g, s, p, value=v, grad=g, value_fn=f)
    else:
      v, g = jax.value_and_grad(f)(p)
      u, s = tx.update(g, s, p)
    return (optax.apply_updates(p, u), s), v

  _, vs = jax.jit(lambda p, s: jax.lax.scan(step, (p, s), None, steps))(
      params, state)
  return np.asarray(vs, np.float64)


def iters_to(vs, target):
  hit = np.nonzero(vs <= target * (1 + RTOL))[0]
  return int(hit[0]) if hit.size else None


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default='results/lbfgs.json')
  args = parser.parse_args(argv)
  results = {}
  for name, prob in problems().items():
    f = lambda p, prob=prob: prob.full_loss(p)
    p0 = prob.init(jax.random.key(0))
    lb = optax.lbfgs()
    vs = losses(lb, f, p0, 300,
                optax.value_and_grad_from_state(f))
    target = float(vs.min())
    row = {'target': target, 'lbfgs': iters_to(vs, target)}
    for alias in methods_lib.HD_ALIASES:
      row[alias] = iters_to(losses(getattr(ohg, alias)(), f, p0, MAX_ITERS),
                            target)
      row[alias + '_paper'] = iters_to(
          losses(getattr(ohg, alias)(rate_dynamics='additive'), f, p0,
                 MAX_ITERS), target)
    results[name] = row
  out = {'rtol': RTOL, 'max_iters': MAX_ITERS, 'results': results}
  print(headline.lbfgs_table(out))
  os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
  with open(args.out, 'w') as fh:
    json.dump(out, fh)


if __name__ == '__main__':
  main()
