"""Every HD alias called with no arguments: it adapts, and never diverges.

Optax's alias-test parabola and Rosenbrock (10,000 steps, Optax's 3e-2
tolerance; Rosenbrock from 16 starts near the origin), an ill-conditioned
quadratic at loss scales 1e-3, 1 and 1e3 (the same start, rates 2e-4..2e4
apart), and one 1000x gradient spike.
"""

import numpy as np
import pytest

from benchmarks import defaults
from benchmarks import methods as methods_lib
from benchmarks import problems as bench_problems
from benchmarks import rosenbrock_starts
import optax_hypergrad as ohg

HD_ALIASES = methods_lib.HD_ALIASES
PROBLEMS = {
    'parabola': bench_problems.parabola,
    'rosenbrock': bench_problems.rosenbrock,
    'quad_c1e-3': lambda: bench_problems.quadratic(1e-3),
    'quad_c1': lambda: bench_problems.quadratic(1.0),
    'quad_c1e3': lambda: bench_problems.quadratic(1e3),
    'quad_spike': lambda: bench_problems.spike(bench_problems.quadratic(1.0)),
}


@pytest.mark.standard_promotion
@pytest.mark.parametrize('problem', list(PROBLEMS))
@pytest.mark.parametrize('alias', HD_ALIASES)
def test_alias_at_defaults_converges(alias, problem):
  prob = PROBLEMS[problem]()
  out = defaults.run_grid(prob, lambda: getattr(ohg, alias)(), [()], seeds=1)
  rates = out['rates'][0, 0]
  assert np.all(np.isfinite(rates)) and np.all(rates > 0)
  final, start = float(out['final'][0, 0]), float(out['start'][0, 0])
  assert np.isfinite(final)
  if problem == 'rosenbrock':
    # Optax's bar, from 16 starts within 1.5e-5 of its origin rather than
    # the origin alone: some runs there sit at an edge where the rounding of
    # the compiled program decides (with a target cosine of -0.03, tried,
    # adam_op_sgdn_lop ended 0.35 from the minimum in this file's step
    # program and within 3e-2 from all 16 starts in the vmapped one).
    missed, _ = rosenbrock_starts.misses(getattr(ohg, alias)(), 'real',
                                         starts=16, steps=prob.steps)
    assert missed == 0
  elif prob.tol is not None:  # Optax's own bar for its aliases
    assert float(out['dist'][0, 0]) < prob.tol
  else:
    assert final < 1e-3 * start
  # It adapts: where the best constant step is 10x or more from the start
  # (all but Rosenbrock, whose best is ~1e-3), the rate moves 2x or more.
  if problem != 'rosenbrock':
    assert abs(np.log(rates[-1] / 1e-3)) > np.log(2)
