"""The README's usage example runs as written."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'


def test_readme_example_trains_with_adam_hd():
  blocks = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)
  assert blocks, 'README has no python example'
  scope = {}
  exec(blocks[0], scope)  # pylint: disable=exec-used
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(32, 784)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, size=32), jnp.int32)
  losses = [float(scope['train_step'](scope['model'], scope['optimizer'], x, y))
            for _ in range(20)]
  assert losses[-1] < losses[0]
  assert float(scope['lr']) > 0
