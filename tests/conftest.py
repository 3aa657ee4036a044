"""Test configuration: strict numerics, as the house style asks."""

import jax
import pytest

jax.config.update('jax_numpy_rank_promotion', 'raise')

# Optax parts that strict promotion rejects: Adam's bias correction computes
# ``decay**count`` (float to an int32 power), MultiSteps divides the summed
# gradients by an int32 count. Tests whose id names them run under standard
# promotion; everything else, our code included, under strict.
_NOT_STRICT_IN_OPTAX = ('adam', 'multi_steps')


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
  name = request.node.name.lower()
  strict = not any(part in name for part in _NOT_STRICT_IN_OPTAX)
  with jax.numpy_dtype_promotion('strict' if strict else 'standard'):
    yield
