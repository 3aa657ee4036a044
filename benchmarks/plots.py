"""Plots of training-loss and learning-rate curves."""

import numpy as np

from benchmarks import methods as methods_lib


def _smooth(y, k):
  k = max(1, min(k, len(y)))
  return np.convolve(y, np.ones(k) / k, mode='valid')


_FAMILY_COLORS = {'sgd': 'tab:blue', 'sgdn': 'tab:red', 'adam': 'tab:green',
                  'l4': 'tab:purple', 'marthe': 'tab:orange'}


def _style(name):
  """One colour per base optimizer, one line style per variant."""
  family = name.split('_')[0]
  color = _FAMILY_COLORS.get(family)
  if name in ('sgd', 'sgdn', 'adam'):
    return dict(color=color, linestyle=':', linewidth=2.0)  # constant rate
  if name.endswith('*'):  # HD tuned over α_0 × β
    return dict(color=color, linestyle='-.', linewidth=2.2, alpha=0.6)
  if name.endswith('_lop') or name == 'l4_adam':
    return dict(color=color, linestyle='--', linewidth=1.3)
  return dict(color=color, linestyle='-', linewidth=1.3)


def _plot_loss(ax, name, r, **style):
  spe = r['steps_per_epoch']
  loss = _smooth(np.array(r['loss_curve']), spe)
  ax.plot((np.arange(len(loss)) + spe) / spe, loss, label=name, **style)


def _clip_loss_axis(ax, by_method, names):
  """A loss spike of a diverging run would flatten every other curve: cap
  the axis at 3× the largest first-epoch loss."""
  first = [np.array(by_method[n]['loss_curve'][:by_method[n][
      'steps_per_epoch']]).mean() for n in names]
  first = [f for f in first if np.isfinite(f)]
  if first and ax.get_ylim()[1] > 3 * max(first):
    ax.set_ylim(top=3 * max(first))


def curves(by_method, title, path, names=None):
  """The package's methods and their bases: minibatch loss (smoothed over
  an epoch) and the live learning rate, two panels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  names = [n for n in (names or by_method) if n in by_method]
  fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 8.5), sharex=True)
  rates = []
  for name in names:
    r = by_method[name]
    _plot_loss(ax_loss, name, r, **_style(name))
    lr = np.array(r['learning_rate_curve'])
    if name in methods_lib.BASES:  # a constant rate: a reference line
      ax_lr.axhline(methods_lib.ALPHA0, label=f'{name} (constant)',
                    **_style(name))
    elif np.all(np.isfinite(lr)) and np.all(lr > 0):
      spe = r['steps_per_epoch']
      ax_lr.plot(np.arange(1, len(lr) + 1) / spe, lr, label=name,
                 **_style(name))
      rates.append(lr)
  ax_loss.set_yscale('log')
  _clip_loss_axis(ax_loss, by_method, names)
  ax_loss.set_ylabel('training loss (minibatch, epoch average)')
  ax_loss.set_title(title)
  ax_loss.legend(fontsize=8, ncol=3)
  ax_lr.set_yscale('log')
  if rates:  # the bulk of every curve, so one noisy rate cannot flatten all
    every = np.concatenate(rates + [np.array([methods_lib.ALPHA0])])
    lo, hi = np.percentile(every, [1, 99])
    ax_lr.set_ylim(lo / 2, hi * 2)
  ax_lr.set_ylabel('learning rate (mean over seeds)')
  ax_lr.set_xlabel('epoch')
  ax_lr.legend(fontsize=8, ncol=3)
  fig.text(0.01, 0.005, 'colour: base optimizer. dotted: constant rate (the '
           'base, from 1e-3); solid: HD, L4Mom, MARTHE; dashed: _lop variants,'
           '\nL4Adam; dash-dot: tuned. The rate axis spans the 1st-99th '
           'percentile of all curves.', fontsize=7)
  fig.tight_layout(rect=(0, 0.03, 1, 1))
  fig.savefig(path, dpi=110)
  plt.close(fig)


def alternatives(by_method, names, reference, title, path):
  """What a user would pick instead (tuned baselines, Optax's tuning-free
  optimizers) against ``reference``, the package's best on the task."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(8, 5))
  colors = plt.get_cmap('tab20').colors
  for i, name in enumerate(n for n in names if n in by_method):
    style = dict(color=colors[i % len(colors)], linewidth=1.2,
                 linestyle='--' if name.endswith('*') else '-')
    _plot_loss(ax, name, by_method[name], **style)
  if reference in by_method:
    _plot_loss(ax, f'{reference} (this package\'s best here)',
               by_method[reference], color='black', linewidth=2.2)
  ax.set_yscale('log')
  _clip_loss_axis(ax, by_method, [n for n in names if n in by_method])
  ax.set_xlabel('epoch')
  ax.set_ylabel('training loss (minibatch, epoch average)')
  ax.set_title(title)
  ax.legend(fontsize=7, ncol=3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
