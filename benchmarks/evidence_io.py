"""The committed evidence: compact JSON copies of the benchmark results in
``benchmarks/evidence/``, from which the docs' generated pages and tables are
built (and checked by the tests) without rerunning anything."""

import json
import os

import numpy as np

EVIDENCE = os.path.join(os.path.dirname(__file__), 'evidence')


def load(path):
  """The JSON at ``path``, or None when it is not there."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def write(name, data, evidence_dir=EVIDENCE):
  """``data`` as compact JSON in ``evidence_dir/name``."""
  os.makedirs(evidence_dir, exist_ok=True)
  with open(os.path.join(evidence_dir, name), 'w') as f:
    json.dump(data, f, separators=(',', ':'))


def bad_rate_points(r):
  """Points of a run's rate curve that are non-finite or <= 0."""
  if 'rate_curve_bad_points' in r:  # a compact entry
    return r['rate_curve_bad_points']
  lr = np.asarray(r['learning_rate_curve'], np.float64)
  return int((~np.isfinite(lr) | (lr <= 0)).sum())


def compact(results, keep, rate_points=False):
  """A suite's ``results`` with only the ``keep`` keys of each entry (and,
  with ``rate_points``, each rate curve reduced to its count of bad
  points); the curves stay in ``results/``."""
  out = {}
  for task, by in results.items():
    out[task] = {}
    for name, r in by.items():
      e = {k: r[k] for k in keep if k in r}
      if rate_points:
        e['rate_curve_bad_points'] = bad_rate_points(r)
      out[task][name] = e
  return out
