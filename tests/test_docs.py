"""Every ```python block of the docs and the README runs, page by page.

A page's blocks run in order in one namespace, as a reader would paste them.
"""

import contextlib
import io
import pathlib
import re

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / 'docs').rglob('*.md'))

# Optax's Adam and ema are not strict-promotion clean; docs use them freely.
pytestmark = pytest.mark.standard_promotion


def python_blocks(path):
  return re.findall(r'```python\n(.*?)```', path.read_text(), re.S)


def test_every_page_is_covered():
  names = {p.relative_to(ROOT / 'docs').as_posix() for p in PAGES}
  assert {'index.md', 'guides/flax_nnx.md', 'guides/composing.md'} <= names
  assert sum(len(python_blocks(p)) for p in PAGES) >= 20


@pytest.mark.parametrize('page', PAGES,
                         ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_code_runs(page):
  blocks = python_blocks(page)
  if not blocks:
    pytest.skip('no code on this page')
  if 'device_count' in page.read_text() and jax.device_count() < 8:
    pytest.skip('needs 8 devices')
  scope = {'__name__': f'docs_{page.stem}'}
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    for i, block in enumerate(blocks):
      try:
        exec(compile(block, f'{page.name}[block {i}]', 'exec'), scope)  # pylint: disable=exec-used
      except Exception as e:
        raise AssertionError(f'{page.name}, block {i} failed: {e!r}') from e
  assert out.getvalue(), 'the examples print what they show'
