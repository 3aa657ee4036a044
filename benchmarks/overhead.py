"""Per-step cost of the adaptation: method ÷ its base optimizer.

A jitted training step (gradient, optimizer update, parameter update) timed
for each method and for its constant-step base, side by side in one run,
median of repeats, on MLPs from 40-100-100-10 to 784-1000-1000-10 (and
ResNet-18 on request), beside reference rows: each method's bare equations
written by hand (its floor) and Optax's global-norm clip.
``python -m benchmarks.overhead`` prints the ratio table and writes
``results/overhead.json``; ``--one-core`` pins the run to one core. MARTHE
is timed the way its docs recommend writing the step: the gradient from
``jax.value_and_grad`` passed as the updates and the minibatch loss as
``value_fn``, all inside one ``jit``.
"""

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import evidence_io
from benchmarks import models
import optax_hypergrad as ohg


def grad_hvp_floor(learning_rate=1e-3):
  """Reference row: an SGD step plus one Hessian-vector product, nothing else.

  The HVP ``H v`` is kept in the state (so XLA cannot drop it) and used as the
  next ``v``: the least a method needing one gradient and one HVP per step
  can cost.
  """
  def init(params):
    return jax.tree.map(jnp.ones_like, params)

  def update(updates, state, params, *, value_fn, **extra):
    del extra
    _, hvp = jax.jvp(jax.grad(value_fn), (params,), (state,))
    hvp = jax.tree.map(lambda h: h / (1.0 + jnp.max(jnp.abs(h))), hvp)
    return jax.tree.map(lambda g: -learning_rate * g, updates), hvp

  return optax.GradientTransformationExtraArgs(init, update)


def hd_floor(direction, hypergrad_lr):
  """Reference row: HD's bare equations, written by hand as a user would.

  Baydin et al.'s additive rule over an Optax base ``direction``, the global
  product a sum of per-leaf ``vdot``s (``optax.tree.vdot``): ``α ← α + β
  g·d_{t-1}``, update ``-α d_t``, ``d_t`` stored. No skip, no clip, no
  normalization: the least HD's math costs with the state laid out like the
  parameters. The package's ``rate_dynamics='additive'`` runs the same
  steps (a test checks it).
  """
  def init(params):
    return (jnp.asarray(1e-3), optax.tree.zeros_like(params),
            direction.init(params))

  def update(updates, state, params=None, **extra):
    del extra
    alpha, prev, direction_state = state
    alpha = alpha + hypergrad_lr * optax.tree.vdot(updates, prev)
    d, direction_state = direction.update(updates, direction_state, params)
    return (jax.tree.map(lambda x: -alpha * x, d),
            (alpha, d, direction_state))

  return optax.GradientTransformationExtraArgs(init, update)


def l4_floor(adam, alpha=0.15, gamma=0.9, tau=1000.0, gamma_0=0.75,
             eps=1e-12, b1=0.9, b2=0.999, adam_eps=1e-4):
  """Reference row: L4's bare equations (Rolinek and Martius), by hand.

  ``g = m̂`` (bias-corrected momentum), ``v = g`` or Adam's ``m̂/(√ŝ + ε)``;
  ``η = max(0, α (L − γ L_min) / (g·v + ε))`` with ``L_min`` the tracked
  minimal loss (``γ_0 L`` at first, then ``min(L_min, L)``, forgotten by
  ``1 + 1/τ`` a step); update ``-η v``. No skip and no robust rule: the
  package's ``rule='paper'`` runs the same steps (a test checks it).
  """
  def init(params):
    zeros = optax.tree.zeros_like(params)
    return (jnp.zeros([], jnp.int32), zeros, zeros if adam else (),
            jnp.zeros([]))

  def update(updates, state, params=None, *, value, **extra):
    del params, extra
    count, m, s, min_loss = state
    count = count + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, updates)
    g = jax.tree.map(lambda m: m / (1 - b1 ** count), m)
    if adam:
      s = jax.tree.map(lambda s, x: b2 * s + (1 - b2) * x * x, s, updates)
      v = jax.tree.map(
          lambda g, s: g / (jnp.sqrt(s / (1 - b2 ** count)) + adam_eps), g, s)
    else:
      v = g
    min_loss = jnp.where(count == 1, gamma_0 * value,
                         jnp.minimum(min_loss, value))
    eta = jnp.maximum(alpha * (value - gamma * min_loss)
                      / (optax.tree.vdot(g, v) + eps), 0.0)
    return (jax.tree.map(lambda x: -eta * x, v),
            (count, m, s, (1 + 1 / tau) * min_loss))

  return optax.GradientTransformationExtraArgs(init, update)


CASES = {
    # name: (base name, factory)
    'sgd': (None, lambda: optax.sgd(1e-3)),
    'sgdn': (None, lambda: optax.sgd(1e-3, momentum=0.9, nesterov=True)),
    'adam': (None, lambda: optax.adam(1e-3)),
    'sgd_hd': ('sgd', lambda: ohg.sgd_hd()),
    'sgdn_hd': ('sgdn', lambda: ohg.sgdn_hd()),
    'adam_hd': ('adam', lambda: ohg.adam_hd()),
    'adam_op_adam_lop': ('adam', lambda: ohg.adam_op_adam_lop()),
    'l4_mom': ('sgdn', lambda: ohg.l4_mom()),
    'l4_adam': ('adam', lambda: ohg.l4_adam()),
    'marthe': ('sgd', lambda: ohg.marthe()),
    'marthe_adam': ('adam', lambda: ohg.marthe(base='adam')),
    'rtho': ('sgd', lambda: ohg.rtho()),
    'grad+hvp floor': ('sgd', grad_hvp_floor),
    # The bare equations of HD and L4 by hand: what the math costs.
    'sgd_hd floor': ('sgd', lambda: hd_floor(optax.identity(), 1e-3)),
    'adam_hd floor': ('adam', lambda: hd_floor(optax.scale_by_adam(),
                                               1e-7)),
    'l4_mom floor': ('sgdn', lambda: l4_floor(adam=False)),
    'l4_adam floor': ('adam', lambda: l4_floor(adam=True)),
    # References: the cost of any global reduction that gates the step, here
    # Optax's own global-norm clip (a bound it never reaches).
    'sgd+global clip': ('sgd', lambda: optax.chain(
        optax.clip_by_global_norm(1e30), optax.sgd(1e-3))),
    'adam+global clip': ('adam', lambda: optax.chain(
        optax.clip_by_global_norm(1e30), optax.adam(1e-3))),
}
# Not a method of its own: a reference row, never wrapped.
REFERENCES = ('grad+hvp floor', 'sgd_hd floor', 'adam_hd floor',
              'l4_mom floor', 'l4_adam floor', 'sgd+global clip',
              'adam+global clip')
# MARTHE's value_fn takes the parameter tree, which a wrapper hides.
UNWRAPPABLE = REFERENCES + ('marthe', 'marthe_adam', 'rtho')
# Wrappers timed with --flatten / --pack: (label in the tables, wrapper).
WRAPPERS = {
    'flat': ('flattened', optax.flatten, 'optax.flatten'),
    'packed': ('packed', ohg.pack_small_leaves, 'ohg.pack_small_leaves'),
}

def mlp(sizes, batch):
  """A ReLU MLP on one fixed random minibatch: (params, x, y, loss)."""
  def build():
    key = jax.random.key(0)
    params = models.mlp_init(key, sizes)
    x = jax.random.normal(key, (batch, sizes[0]), jnp.float32)
    y = jax.random.randint(key, (batch,), 0, sizes[-1])
    return params, x, y, models.cross_entropy
  return build


def resnet18(batch):
  """ResNet-18 of the CIFAR benchmark (62 parameter leaves), on one random
  batch of 32x32 images, batch norm in inference mode."""
  def build():
    from benchmarks import cifar  # pylint: disable=g-import-not-at-top
    key = jax.random.key(0)
    model = cifar.make_model('resnet18')
    x = jax.random.normal(key, (batch, 32, 32, 3), jnp.float32)
    y = jax.random.randint(key, (batch,), 0, 10)
    variables = model.init(key, x[:1])
    stats = variables['batch_stats']
    loss = lambda p, x, y: cifar.cross_entropy(
        model.apply({'params': p, 'batch_stats': stats}, x), y)
    return variables['params'], x, y, loss
  return build


MODELS = {
    'mlp_784_1000_1000_10_b128': mlp((784, 1000, 1000, 10), 128),
    'mlp_40_100_100_10_b128': mlp((40, 100, 100, 10), 128),  # MNIST-1D sized
    # deep and narrow: 18 small leaves, where per-leaf fixed costs show
    'mlp_40_9x64_10_b128': mlp((40,) + (64,) * 8 + (10,), 128),
    # many leaves (12 layers: 24), a small batch: the per-leaf cost at its
    # largest share of the step
    'mlp_40_12x64_10_b32': mlp((40,) + (64,) * 11 + (10,), 32),
    # many leaves of every size; about 1 s a step here: ask for it by name
    'resnet18_b32': resnet18(32),
}
DEFAULT_MODELS = tuple(m for m in MODELS if m.startswith('mlp'))


def make_step(tx, loss_fn):
  tx = optax.with_extra_args_support(tx)

  @jax.jit
  def step(params, state, x, y):
    loss_of = lambda p: loss_fn(p, x, y)
    loss, grads = jax.value_and_grad(loss_of)(params)
    updates, state = tx.update(grads, state, params, value=loss,
                               value_fn=loss_of)
    return optax.apply_updates(params, updates), state, loss

  return step


def make_scan(tx, loss_fn, n):
  """``n`` of :func:`make_step`'s steps as one compiled ``lax.scan``: the
  per-step cost without Python's dispatch of the step's arrays."""
  step = make_step(tx, loss_fn)

  @jax.jit
  def steps(params, state, x, y):
    def body(carry, _):
      params, state, _ = step(*carry, x, y)
      return (params, state), None
    (params, state), _ = jax.lax.scan(body, (params, state), None, n)
    return params, state

  return steps


def time_scanned(steps, params, state, x, y, n):
  jax.block_until_ready(steps(params, state, x, y))  # compile
  t0 = time.perf_counter()
  jax.block_until_ready(steps(params, state, x, y))
  return (time.perf_counter() - t0) / n


def time_steps(step, params, state, x, y, n):
  params, state, loss = step(params, state, x, y)  # compile
  jax.block_until_ready(loss)
  t0 = time.perf_counter()
  for _ in range(n):
    params, state, loss = step(params, state, x, y)
  jax.block_until_ready((params, state, loss))
  return (time.perf_counter() - t0) / n


# What the math needs beyond the base optimizer, in parameter-sized copies.
NEEDS = {
    'sgd_hd': 'd_{t-1}: 1', 'sgdn_hd': 'd_{t-1}: 1', 'adam_hd': 'd_{t-1}: 1',
    'adam_op_adam_lop': 'd_{t-1}: 1 (+ scalar moments)',
    'l4_mom': 'the curvature probe: 1 (g = v = momentum)',
    'l4_adam': 'the curvature probe: 1 (m̂ held once)',
    'marthe': 'Z_w: 1 (the descent μ rule stores no gradient)',
    'marthe_adam': 'Z_w, Z_m, Z_v: 3',
    'rtho': 'Z_w: 1',
}


def state_bytes(tx, params):
  return sum(x.nbytes for x in jax.tree.leaves(tx.init(params)))


def memory_table(sizes, names):
  params = models.mlp_init(jax.random.key(0), sizes)
  n = sum(x.nbytes for x in jax.tree.leaves(params))
  rows = {}
  for name in names:
    base = CASES[name][0]
    if base is None or name not in NEEDS:
      continue
    extra = (state_bytes(CASES[name][1](), params)
             - state_bytes(CASES[base][1](), params))
    rows[name] = {'extra_bytes': int(extra), 'param_copies': extra / n,
                  'needs': NEEDS[name]}
  return n, rows


def factory(name):
  """The optimizer of a case name; ``'<method> flat'`` is the method
  wrapped in ``optax.flatten`` (one leaf: what a user can do today to cut
  per-leaf costs), ``'<method> packed'`` in ``ohg.pack_small_leaves``."""
  method, _, wrapper = name.rpartition(' ')
  if wrapper in WRAPPERS:
    return WRAPPERS[wrapper][1](CASES[method][1]())
  return CASES[name][1]()


def measure(build, names, repeats, n, scan=False):
  params, x, y, loss = build()
  if scan:
    steps = {name: make_scan(factory(name), loss, n) for name in names}
  else:
    steps = {name: make_step(factory(name), loss) for name in names}
  states = {name: factory(name).init(params) for name in names}
  times = {name: [] for name in names}
  timer = time_scanned if scan else time_steps
  for r in range(repeats):  # interleaved, so drift hits every method alike
    for name in names:
      times[name].append(timer(steps[name], params, states[name], x, y, n))
    print(f'  repeat {r + 1}/{repeats}', flush=True)
  return {name: float(np.median(t)) for name, t in times.items()}


EVIDENCE = evidence_io.EVIDENCE
DOCS = os.path.join(os.path.dirname(__file__), '..', 'docs', 'performance.md')
BEGIN = '<!-- generated by python -m benchmarks.overhead --docs: begin -->'
END = '<!-- generated: end -->'
# The one-core run's ratio table (--one-core --docs) has a block of its own.
BEGIN_ONE_CORE = ('<!-- generated by python -m benchmarks.overhead --one-core '
                  '--docs: begin -->')


def tables(results, ratios_only=False) -> str:
  """The time and memory tables of docs/performance.md, from the JSON; with
  ``ratios_only``, the method ÷ base table alone."""
  models = list(results['models'])
  names = sorted({n for by in results['models'].values() for n in by},
                 key=list(CASES).index)
  wrapped = [w for w in WRAPPERS
             if any(f'{w}_ratio' in r for by in results['models'].values()
                    for r in by.values())]
  runs = sorted({(r['repeats'], r['steps'])
                 for r in results['runs'].values()})
  timing = '; '.join(
      f'median of {r} repeats of {n} steps'
      + ('' if len(runs) == 1 else ' (' + ', '.join(
          m for m in models if (results['runs'][m]['repeats'],
                                results['runs'][m]['steps']) == (r, n)) + ')')
      for r, n in runs)
  lines = [f'{timing[0].upper()}{timing[1:]}; {results["machine"]}. '
           'Each model is one run: its methods timed side by side.']
  metrics = [('Time per step, ms', 'seconds_per_step', 1e3, ''),
             ('Method ÷ its base', 'ratio', 1, '×')]
  if ratios_only:
    metrics, wrapped = metrics[1:], []
  metrics += [(f'{WRAPPERS[w][0].capitalize()} (`{WRAPPERS[w][2]}`) ÷ the '
               'base as is', f'{w}_ratio', 1, '×') for w in wrapped]
  for title, key, factor, unit in metrics:
    rows = []
    for name in names:
      cells = [results['models'][m].get(name, {}).get(key) for m in models]
      if all(c is None for c in cells):
        continue
      rows.append(f'| {name} | {CASES[name][0] or "-"} | ' + ' | '.join(
          '–' if c is None else f'{factor * c:.2f}{unit}' for c in cells)
                  + ' |')
    lines += ['', f'{title}:', '', '| method | base | ' + ' | '.join(models)
              + ' |', '|---|---|' + '---|' * len(models), *rows]
  if ratios_only:
    return '\n'.join(lines)
  mem = results['memory']
  lines += ['', f'Extra optimizer state over the base, 784-1000-1000-10 MLP '
            f'({mem["param_bytes"]:,} bytes of parameters):', '',
            '| method | base | extra bytes | parameter copies | the math '
            'needs |', '|---|---|---|---|---|']
  for name, r in mem['methods'].items():
    lines.append(f'| {name} | {CASES[name][0]} | {r["extra_bytes"]:,} | '
                 f'{r["param_copies"]:.3f} | {r["needs"]} |')
  return '\n'.join(lines)


def generated_block(text, begin=BEGIN):
  """The part of docs/performance.md between ``begin`` and its end marker."""
  start = text.index(begin) + len(begin)
  return text[start:text.index(END, start)].strip('\n')


def write_docs(tables_text, path=DOCS, begin=BEGIN):
  with open(path) as f:
    text = f.read()
  start = text.index(begin) + len(begin)
  stop = text.index(END, start)
  with open(path, 'w') as f:
    f.write(text[:start] + '\n' + tables_text + '\n' + text[stop:])


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--repeats', type=int, default=7)
  parser.add_argument('--steps', type=int, default=20,
                      help='steps per timed repeat')
  parser.add_argument('--methods', nargs='*', choices=sorted(CASES))
  parser.add_argument('--flatten', action='store_true',
                      help='also time each method wrapped in optax.flatten')
  parser.add_argument('--pack', action='store_true',
                      help='also time each method wrapped in '
                      'ohg.pack_small_leaves')
  parser.add_argument('--models', nargs='*', choices=sorted(MODELS),
                      help=f'default: {" ".join(DEFAULT_MODELS)}')
  parser.add_argument('--merge', action='store_true',
                      help='keep the models of the output file that this '
                      'run does not measure')
  parser.add_argument('--scan', action='store_true',
                      help='time the steps inside one compiled lax.scan (no '
                      'per-step Python dispatch); writes overhead_scan.json')
  parser.add_argument('--one-core', action='store_true',
                      help='pin the run to one CPU core, so that no method '
                      'gains or loses by overlapping its kernels; writes '
                      'overhead_one_core.json')
  parser.add_argument('--out', default='results')
  parser.add_argument('--docs', action='store_true',
                      help='also commit the results as evidence and '
                      'regenerate the tables in docs/performance.md')
  args = parser.parse_args(argv)
  if args.scan and (args.docs or args.one_core):
    parser.error('--scan takes neither --docs nor --one-core')
  if args.one_core:  # before JAX starts its CPU client and thread pool
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
  os.makedirs(args.out, exist_ok=True)
  filename = ('overhead_scan.json' if args.scan else
              'overhead_one_core.json' if args.one_core else 'overhead.json')
  path = os.path.join(args.out, filename)
  names = args.methods or list(CASES)
  names = sorted(set(names) | {CASES[n][0] for n in names if CASES[n][0]},
                 key=list(CASES).index)
  device = jax.devices()[0]
  machine = (f'{device.platform}: {device.device_kind}, '
             f'{os.cpu_count()} cores, {platform.processor() or "?"}')
  if args.scan:
    machine += '; steps timed inside one lax.scan'
  if args.one_core:
    machine += '; pinned to one core'
  results = {'machine': machine, 'models': {}, 'runs': {}}
  if args.merge and os.path.exists(path):
    with open(path) as f:
      results = json.load(f)
  print(f'device: {machine}')
  wrapped = [f'{n} {w}' for w, on in (('flat', args.flatten),
                                      ('packed', args.pack)) if on
             for n in names if CASES[n][0] and n not in UNWRAPPABLE]
  for model in args.models or DEFAULT_MODELS:
    print(f'{model}:', flush=True)
    t = measure(MODELS[model], names + wrapped, args.repeats, args.steps,
                args.scan)
    results['runs'][model] = {'repeats': args.repeats, 'steps': args.steps}
    results['models'][model] = {
        name: {'seconds_per_step': t[name],
               'base': CASES[name][0],
               'ratio': (t[name] / t[CASES[name][0]] if CASES[name][0]
                         else 1.0)}
        for name in names}
    for name in wrapped:
      method, _, wrapper = name.rpartition(' ')
      entry = results['models'][model][method]
      entry[f'{wrapper}_ratio'] = t[name] / t[entry['base']]
  n, mem = memory_table((784, 1000, 1000, 10), names)
  kept = results.get('memory', {}).get('methods', {})
  results['memory'] = {'param_bytes': n, 'methods': {**kept, **mem}}
  text = tables(results, ratios_only=args.one_core)
  print('\n' + text)
  with open(path, 'w') as f:
    json.dump(results, f)
  if args.docs:
    os.makedirs(EVIDENCE, exist_ok=True)
    with open(os.path.join(EVIDENCE, filename), 'w') as f:
      json.dump(results, f, indent=1)
    write_docs(text, begin=BEGIN_ONE_CORE if args.one_core else BEGIN)
  return 0


if __name__ == '__main__':
  sys.exit(main())
