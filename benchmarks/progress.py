"""A dependency-free progress bar over a benchmark's compiled programs."""

import sys
import time


class Progress:
  """``with Progress(total) as bar: ... bar.advance(label)``.

  Draws ``[#####.....] 12/40  label  elapsed 3:12  left ~5:00`` on one
  line of stderr when it is a terminal, one line per program otherwise (CI
  logs, files), so long jobs always show where they are.
  """

  def __init__(self, total: int, width: int = 24, stream=None):
    self.total, self.width, self.done = max(total, 1), width, 0
    self.stream = stream or sys.stderr
    self.start = time.perf_counter()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if self.stream.isatty():
      self.stream.write('\n')
    self.stream.flush()

  def advance(self, label: str = '', message: str | None = None) -> str:
    """Counts one program done; returns (and draws) the bar's line.

    ``message`` (a result) is printed on a line of its own, above the bar.
    """
    self.done += 1
    elapsed = time.perf_counter() - self.start
    left = elapsed / self.done * (self.total - self.done)
    filled = self.width * self.done // self.total
    line = (f'[{"#" * filled}{"." * (self.width - filled)}] '
            f'{self.done}/{self.total}  {label}  elapsed {_clock(elapsed)}'
            f'  left ~{_clock(left)}')
    if self.stream.isatty():
      above = '' if message is None else message + '\n'
      self.stream.write('\r\x1b[K' + above + line)
    elif message is not None or self._tick():
      # logs get a line per result, else one per 5% (per-step bars)
      self.stream.write(('' if message is None else message + '\n')
                        + line + '\n')
    self.stream.flush()
    return line


  def _tick(self) -> bool:
    return (self.done == self.total
            or self.done * 20 // self.total
            != (self.done - 1) * 20 // self.total)


def _clock(seconds: float) -> str:
  m, s = divmod(int(round(seconds)), 60)
  h, m = divmod(m, 60)
  return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'
