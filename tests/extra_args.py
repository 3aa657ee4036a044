"""What each method's update needs besides the gradient, per step.

Each builder takes the step's loss function and parameters and returns the
keyword arguments for ``update``.
"""


def none(loss_fn, params):
  """HD and the ``_lop`` variants: nothing."""
  del loss_fn, params
  return {}


def value(loss_fn, params):
  """L4: the loss value, ``value=``."""
  return {'value': loss_fn(params)}


def value_fn(loss_fn, params):
  """RTHO and MARTHE: the loss as a function, ``value_fn=``."""
  del params
  return {'value_fn': loss_fn}
