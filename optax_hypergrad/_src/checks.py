"""Construction-time validation of hyperparameters.

Checks run only on concrete values: under ``optax.inject_hyperparams`` or
``jax.jit`` the constants may be tracers, and a tracer cannot be compared to a
number without concretization, so those are left to the caller.
"""

from typing import Any

import jax
import numpy as np


def concrete(value: Any) -> float | None:
  """Returns ``value`` as a Python float, or None when it is traced."""
  if isinstance(value, jax.core.Tracer):
    return None
  arr = np.asarray(value)
  if arr.dtype.kind not in 'biuf':  # '1e-7' as YAML loads it, None, ...
    raise ValueError(f'expected a real number, got {type(value).__name__} '
                     f'{value!r}')
  if arr.ndim != 0:
    raise ValueError(f'expected a scalar hyperparameter, got shape {arr.shape}')
  return float(arr)


def check_scalar(
    name: str,
    value: Any,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is in range.

  Args:
    name: the argument's name, as the user wrote it.
    value: the value to check; skipped when it is a tracer.
    low: lower bound, or None for none.
    high: upper bound, or None for none.
    low_inclusive: whether ``low`` itself is allowed.
    high_inclusive: whether ``high`` itself is allowed.
  """
  try:
    v = concrete(value)
  except ValueError as e:
    raise ValueError(f'{name}: {e}') from None
  if v is None:
    return
  if not np.isfinite(v):
    raise ValueError(f'{name} must be finite, got {v}')
  if low is not None and (v < low or (v == low and not low_inclusive)):
    op = '>=' if low_inclusive else '>'
    raise ValueError(f'{name} must be {op} {low}, got {v}')
  if high is not None and (v > high or (v == high and not high_inclusive)):
    op = '<=' if high_inclusive else '<'
    raise ValueError(f'{name} must be {op} {high}, got {v}')


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is a choice."""
  if value not in choices:
    raise ValueError(f'{name} must be one of {choices}, got {value!r}')


def check_bounds(min_value: Any, max_value: Any) -> None:
  """Checks optional ``[min_learning_rate, max_learning_rate]`` bounds."""
  lo_name, hi_name = 'min_learning_rate', 'max_learning_rate'
  if min_value is not None:
    check_scalar(lo_name, min_value, low=None)
  if max_value is not None:
    check_scalar(hi_name, max_value, low=None)
  if min_value is not None and max_value is not None:
    lo, hi = concrete(min_value), concrete(max_value)
    if lo is not None and hi is not None and lo > hi:
      raise ValueError(f'{lo_name} must be <= {hi_name}, got {lo} > {hi}')
