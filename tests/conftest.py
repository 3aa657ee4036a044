"""Test configuration: strict numerics, as the house style asks."""

import os

# Eight simulated CPU devices for the sharded-equivalence tests; set before
# JAX starts its backend. Single-device tests run on device 0 as before (and
# no slower: measured).
if 'xla_force_host_platform_device_count' not in os.environ.get('XLA_FLAGS',
                                                                 ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             ' --xla_force_host_platform_device_count=8')

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

jax.config.update('jax_numpy_rank_promotion', 'raise')

# Optax parts that strict promotion rejects: the bias correction of
# scale_by_adam and ema(debias=True) computes ``decay**count`` (a float to an
# int32 power); MultiSteps divides summed gradients by an int32 count. Tests
# that go through them (their id names adam, l4 (whose momentum is an
# optax.ema) or multi_steps, or they are
# marked ``standard_promotion``) run under standard promotion; everything
# else, our code included, under strict.
_NOT_STRICT_IN_OPTAX = ('adam', 'l4', 'multi_steps')


def pytest_configure(config):
  config.addinivalue_line(
      'markers', 'standard_promotion: goes through optax code that is not '
      'strict-dtype-promotion clean')


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
  name = request.node.name.lower()
  strict = not (
      any(part in name for part in _NOT_STRICT_IN_OPTAX)
      or request.node.get_closest_marker('standard_promotion')
  )
  with jax.numpy_dtype_promotion('strict' if strict else 'standard'):
    yield
