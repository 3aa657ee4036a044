"""Mutation testing: ``python tests/mutation.py`` (about 20 minutes).

Applies one-line bugs to ``optax_hypergrad/_src``, one at a time, runs the
test files that cover the changed code against each, and lists the bugs no
test catches (the survivors). The source file is restored after every
mutant, also on Ctrl-C. Not part of the test run: it is slow. Each mutant is
a plausible slip (a sign, a comparison, a branch, a bound, a state not
carried), not a random edit; add one whenever a bug is found that the tests
let through.
"""

import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / 'optax_hypergrad' / '_src'

# (name, file, original text, mutated text, test files)
HD = ['tests/test_hypergradient.py', 'tests/test_rate_dynamics.py']
L4 = ['tests/test_l4.py']
MARTHE = ['tests/test_marthe.py']
LRS = ['tests/test_lrs_opt.py']
SEL = ['tests/test_selection.py']
MUTANTS = [
    ('hd: cosine target sign', 'hypergradient.py',
     'lambda c: target_cosine - c', 'lambda c: c - target_cosine', HD),
    ('hd: spike clip not applied', 'hypergradient.py',
     'updates = rate_lib.scale_tree(scale, updates, per_leaf)',
     'updates = updates', HD),
    ('hd: additive hypergradient sign', 'hypergradient.py',
     'lambda x: -x,', 'lambda x: x,', HD),
    ('hd: stored direction is the new gradient', 'hypergradient.py',
     'prev_direction = optax.tree.where(ok, d, state.prev_direction)',
     'prev_direction = optax.tree.where(ok, updates, state.prev_direction)',
     HD),
    ('hd: Adam-over-Adam beta not applied', 'alias.py',
     '    return ADAM_OVER_ADAM_LOG_STEP',
     '    return rate_lib.DEFAULT_LOG_STEPS[rate_optimizer]', HD),
    ('hd: epoch-wise target never applied', 'alias.py',
     "if base_name != 'adam' and rate_optimizer in ('sgd', 'nesterov'):",
     'if False:', HD),
    ('hd: epoch-wise target applied over Adam too', 'alias.py',
     "if base_name != 'adam' and rate_optimizer in ('sgd', 'nesterov'):",
     "if rate_optimizer in ('sgd', 'nesterov'):", HD),
    ('rate: log step not clipped', 'rate.py',
     'jnp.exp(jnp.clip(d, -MAX_LOG_STEP, MAX_LOG_STEP)',
     'jnp.exp(jnp.clip(d, -10 * MAX_LOG_STEP, 10 * MAX_LOG_STEP)', HD),
    ('rate: non-finite rate step kept', 'rate.py',
     'new_rate = optax.tree.where(finite, new_rate, rate)',
     'new_rate = new_rate', HD),
    ('rate: spike limit inverted', 'rate.py',
     's = jnp.where(jump > GROWTH_LIMIT, GROWTH_LIMIT / jump, 1.0)',
     's = jnp.where(jump > GROWTH_LIMIT, jump / GROWTH_LIMIT, 1.0)', HD),
    ('rate: the small leaves left out of a global dot', 'rate.py',
     'totals = [t + sums[p] for p, t in enumerate(totals)]',
     'totals = list(totals)', HD),
    ('rate: products of the small leaves paired wrong', 'rate.py',
     'jnp.stack([rows[a] * rows[b] for a, b in idx])',
     'jnp.stack([rows[a] * rows[a] for a, b in idx])', HD),
    ('rate: a complex leaf\'s imaginary part dropped', 'rate.py',
     'jnp.imag(a).reshape(-1).astype(dtype)])',
     '0 * jnp.imag(a).reshape(-1).astype(dtype)])',
     HD + ['tests/test_complex.py']),
    ('rate: cosine not clipped to [-1, 1]', 'rate.py',
     'return jnp.clip(jnp.where(ok, xy / jnp.where(ok, denom, 1.0), 0.0),',
     'return jnp.clip(jnp.where(ok, xy / jnp.where(ok, denom, 1.0), 0.0) * 2,',
     HD),
    ('l4 paper: forgetting factor inverted', 'l4.py',
     'else (1.0 + 1.0 / tau) * min_loss)', 'else (1.0 - 1.0 / tau) * min_loss)',
     L4),
    ('l4: gap grows on a non-record', 'l4.py',
     'factor = jnp.exp(jnp.where(record, GAP_GROWTH, -GAP_DECAY))',
     'factor = jnp.exp(jnp.where(record, -GAP_DECAY, GAP_GROWTH))', L4),
    ('l4: target ignores the gap', 'l4.py',
     'eta = alpha * (above + gap) / denom', 'eta = alpha * above / denom', L4),
    ('l4: cap not applied', 'l4.py',
     'eta = jnp.minimum(eta, limit)', 'eta = eta', L4),
    ('l4: probe measured by a correlated gradient', 'l4.py',
     'storing = count % 2 == 0', 'storing = count % 1 == 0', L4),
    ('l4: back-calculation drops the excess', 'l4.py',
     'fitted = limit * denom / alpha - above',
     'fitted = limit * denom / alpha', L4),
    ('l4: no trend floor on the gap', 'l4.py',
     'gap = jnp.maximum(gap, jnp.minimum(slow - fast, TREND_CAP * fast))',
     'gap = gap', L4),
    ('l4: trend floor not capped by the height', 'l4.py',
     'jnp.minimum(slow - fast, TREND_CAP * fast)', '(slow - fast)', L4),
    ('l4: trend averages not re-based on a new best', 'l4.py',
     'rebase = state.min_loss - best', 'rebase = 0.0', L4),
    ('l4: noise ratio inverted', 'l4.py',
     'g_dot_v * ratio ** noise_power + eps',
     'g_dot_v / ratio ** noise_power + eps', L4),
    ('l4: negative step allowed', 'l4.py',
     'eta = rate_lib.clip_rate(jnp.maximum(eta, 0.0), min_learning_rate,',
     'eta = rate_lib.clip_rate(eta, min_learning_rate,', L4),
    ('l4: moments advance on a NaN gradient', 'l4.py',
     'moments_ok = jnp.isfinite(loss) & jnp.isfinite(raw_sq)',
     'moments_ok = jnp.isfinite(loss)', L4),
    ('l4: probe measured by the estimate, not the raw gradient', 'l4.py',
     '(updates, state.curvature.probe), (v, state.curvature.probe)',
     '(g, state.curvature.probe), (v, state.curvature.probe)', L4),
    ('packing: offsets not advanced', 'packing.py',
     'offsets[dtype] = start + size', 'offsets[dtype] = start',
     ['tests/test_packing.py']),
    ('packing: large leaves packed too', 'packing.py',
     'if _is_small(leaf, max_size):\n      groups',
     'if True:\n      groups', ['tests/test_packing.py']),
    ('marthe: mu ratio not capped at 1', 'marthe.py',
     'z = jnp.clip(z, 0.0, 1.0)', 'z = jnp.clip(z, 0.0, 10.0)', MARTHE),
    ('marthe: mu accumulator never reset', 'marthe.py',
     'accum = state.mu_accum * jnp.sign(state.mu) + state.mu',
     'accum = state.mu_accum + state.mu', MARTHE),
    ('marthe: beta rule sign', 'marthe.py',
     'new = jnp.maximum(beta + kappa * h * eta, 0.0)',
     'new = jnp.maximum(beta - kappa * h * eta, 0.0)', MARTHE),
    ('marthe: beta kept when non-finite', 'marthe.py',
     'return jnp.where(jnp.isfinite(new), new, beta).astype(beta.dtype)',
     'return new.astype(beta.dtype)', MARTHE),
    ('marthe: 0·inf NaN left in the tangent', 'marthe.py',
     'return jax.tree.map(lambda t: jnp.where(jnp.isnan(t), 0, t), tree)',
     'return tree', MARTHE),
    ('marthe: overflowed tangent carried', 'marthe.py',
     'lambda z: jnp.where(tangent_ok, mu.astype(z.dtype) * z, 0),',
     'lambda z: mu.astype(z.dtype) * z,', MARTHE),
    ('marthe: descent test sign', 'marthe.py',
     'prod = h * state.prev_hypergrad', 'prod = -h * state.prev_hypergrad',
     MARTHE),
    ('marthe: injected beta ignored', 'marthe.py',
     'beta = state.hypergrad_lr + (given - state.hypergrad_lr_given)',
     'beta = state.hypergrad_lr', MARTHE),
    ('marthe: no tangent restart on a gradient jump', 'marthe.py',
     'mu_t = jnp.where(scale < rate_lib.GROWTH_LIMIT / RESET_JUMP,',
     'mu_t = jnp.where(scale < 0.0,', MARTHE),
    ('lrs_opt: schedule may go negative', 'lrs_opt.py',
     'new = jnp.maximum(optax.apply_updates(schedule, updates), 0.0)',
     'new = optax.apply_updates(schedule, updates)', LRS),
    ('lrs_opt: a NaN meta-gradient is written into the schedule', 'lrs_opt.py',
     'return (jnp.where(ok, new, schedule),', 'return (new,', LRS),
    ('selection: a run ending above the start is not diverged', 'selection.py',
     'diverged = ~ok | ~(losses <= start)', 'diverged = ~ok', SEL),
]


def run_one(name, file, old, new, tests, timeout):
  path = SRC / file
  text = path.read_text()
  if text.count(old) != 1:
    return 'stale', 0.0  # the code changed: update the mutant
  t0 = time.time()
  try:
    path.write_text(text.replace(old, new))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-x', '-q', '-p', 'no:cacheprovider',
         '-o', 'addopts=', '-m', 'not slow', *tests],
        cwd=ROOT, capture_output=True, timeout=timeout, check=False)
    status = 'caught' if proc.returncode != 0 else 'SURVIVED'
  except subprocess.TimeoutExpired:
    status = 'caught (timeout)'
  finally:
    path.write_text(text)
  del name
  return status, time.time() - t0


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--only', nargs='*', help='substrings of mutant names')
  parser.add_argument('--timeout', type=float, default=600)
  args = parser.parse_args(argv)
  todo = [m for m in MUTANTS
          if not args.only or any(s in m[0] for s in args.only)]
  survivors, stale = [], []
  for i, (name, file, old, new, tests) in enumerate(todo, 1):
    status, seconds = run_one(name, file, old, new, tests, args.timeout)
    print(f'[{i}/{len(todo)}] {status:16s} {seconds:6.0f}s  {name}',
          flush=True)
    if status == 'SURVIVED':
      survivors.append(name)
    elif status == 'stale':
      stale.append(name)
  print(f'\n{len(survivors)} of {len(todo) - len(stale)} mutants survived'
        + (f'; {len(stale)} stale (their code changed)' if stale else ''))
  for name in survivors:
    print(f'  survived: {name}')
  return 1 if stale else 0


if __name__ == '__main__':
  sys.exit(main())
