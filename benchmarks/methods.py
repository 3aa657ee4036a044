"""The methods compared: the package's at their papers' defaults, and what a
user would pick instead.

- The HD family starts from the papers' ``α_0 = 0.001``, as do the plain
  constant-step bases it is compared with (``sgd``, ``sgdn``, ``adam``); L4
  has no initial rate; MARTHE and RTHO start from ``η_0 = 1e-3`` too
  (``marthe_paper`` from the reference code's 0.01).
- ``*`` marks a method tuned over the ICLR 2019 HD study's Appendix A grid
  (the best final loss, mean over seeds, wins; the runner extends a 1-D grid
  past its edge when the best point sits there): constant steps, ``lr-decay``
  (halved every 25 of 200 epochs in the ICLR 2019 HD study, so 8 halvings
  over the run here), and HD tuned over ``α_0 × β`` as the ICLR 2019 HD
  study tunes it.
- Optax's own tuning-free optimizers run at their defaults.
"""

from collections.abc import Callable
import dataclasses
from typing import Any

import optax
from optax import contrib

import optax_hypergrad as ohg

ALPHA0 = 1e-3
# The ICLR 2019 HD study, Appendix A.
SGD_GRID = (1e-5, 1e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0)
ADAM_GRID = (1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1, 1.0)
HD_BETAS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
ADAM_HD_ALPHAS = (1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2)
ADAM_HD_BETAS = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4)


SELECT_ALPHAS = ohg.decimated(1.0, 5)


def _pairs(alphas, betas):
  return tuple((a, b) for a in alphas for b in betas)


@dataclasses.dataclass(frozen=True)
class Method:
  """How to build a method: ``make(h, total_steps)``, ``h`` from ``grid``.

  Attributes:
    make: builds the transformation from a hyperparameter (traced; ignored
      when ``grid`` is None) and the run's total number of steps.
    grid: the values ``h`` is tuned over (numbers, or ``(α_0, β)`` pairs),
      or None for a single setting.
    base: the constant-step method this one is compared with, if any.
    schedule_free: evaluate at ``optax.contrib.schedule_free_eval_params``.
    select: ``(name, candidates)``: before the run, ``h`` is chosen among
      ``candidates`` by ``ohg.select_hyperparams`` on the first twentieth
      of the run's batches (seed 0), as a user without a grid search would.
  """

  make: Callable[[Any, int], Any]
  grid: tuple[Any, ...] | None = None
  base: str | None = None
  schedule_free: bool = False
  select: tuple[str, tuple[float, ...]] | None = None


def lr_decay(lr, total_steps):
  """The ICLR 2019 HD study's lr-decay: halve the rate 8 times over the run."""
  return optax.exponential_decay(lr, max(1, total_steps // 8), 0.5,
                                 staircase=True)


def _nesterov(lr):
  return optax.sgd(lr, momentum=0.9, nesterov=True)


METHODS = {
    # constant step at the papers' α_0: what the HD family starts from
    'sgd': Method(lambda h, t: optax.sgd(ALPHA0)),
    'sgdn': Method(lambda h, t: _nesterov(ALPHA0)),
    'adam': Method(lambda h, t: optax.adam(ALPHA0)),
    # this package, every alias at its defaults (α_0 = 0.001 for HD)
    'sgd_hd': Method(lambda h, t: ohg.sgd_hd(), base='sgd'),
    'sgd_op_sgdn_lop': Method(lambda h, t: ohg.sgd_op_sgdn_lop(), base='sgd'),
    'sgd_op_adam_lop': Method(lambda h, t: ohg.sgd_op_adam_lop(), base='sgd'),
    'sgdn_hd': Method(lambda h, t: ohg.sgdn_hd(), base='sgdn'),
    'sgdn_op_sgdn_lop': Method(lambda h, t: ohg.sgdn_op_sgdn_lop(),
                               base='sgdn'),
    'sgdn_op_adam_lop': Method(lambda h, t: ohg.sgdn_op_adam_lop(),
                               base='sgdn'),
    'adam_hd': Method(lambda h, t: ohg.adam_hd(), base='adam'),
    'adam_op_sgdn_lop': Method(lambda h, t: ohg.adam_op_sgdn_lop(),
                               base='adam'),
    'adam_op_adam_lop': Method(lambda h, t: ohg.adam_op_adam_lop(),
                               base='adam'),
    # the papers' additive rule and settings, for comparison
    'sgdn_hd_paper': Method(
        lambda h, t: ohg.sgdn_hd(rate_dynamics='additive'), base='sgdn'),
    'adam_hd_paper': Method(
        lambda h, t: ohg.adam_hd(rate_dynamics='additive'), base='adam'),
    # the initial rate chosen by the selection procedure
    'sgdn_hd+select': Method(lambda h, t: ohg.sgdn_hd(h), base='sgdn',
                             select=('learning_rate', SELECT_ALPHAS)),
    'adam_hd+select': Method(lambda h, t: ohg.adam_hd(h), base='adam',
                             select=('learning_rate', SELECT_ALPHAS)),
    'l4_mom': Method(lambda h, t: ohg.l4_mom(), base='sgdn*'),
    'l4_adam': Method(lambda h, t: ohg.l4_adam(), base='adam*'),
    # L4 as Rolinek & Martius wrote it: the default before the robust rule
    'l4_mom_paper': Method(lambda h, t: ohg.l4_mom(rule='paper'),
                           base='sgdn*'),
    'l4_adam_paper': Method(lambda h, t: ohg.l4_adam(rule='paper'),
                            base='adam*'),
    'marthe': Method(lambda h, t: ohg.marthe(), base='sgd'),
    'rtho': Method(lambda h, t: ohg.rtho(), base='sgd'),
    'marthe_nesterov': Method(lambda h, t: ohg.marthe(base='nesterov'),
                              base='sgdn'),
    'marthe_adam': Method(lambda h, t: ohg.marthe(base='adam'), base='adam'),
    # MARTHE as the reference code runs it: the default before the
    # scale-free rule and the 'descent' μ rule
    'marthe_paper': Method(
        lambda h, t: ohg.marthe(0.01, 1e-8, 1e-6, rate_dynamics='additive',
                                mu_rule='reference'), base='sgd'),
    # tuned baselines: what a user who grid-searches would pick
    'sgd*': Method(lambda h, t: optax.sgd(h), SGD_GRID),
    'sgdn*': Method(lambda h, t: _nesterov(h), SGD_GRID),
    'adam*': Method(lambda h, t: optax.adam(h), ADAM_GRID),
    'sgdn_lr_decay*': Method(lambda h, t: _nesterov(lr_decay(h, t)),
                             SGD_GRID),
    'adam_lr_decay*': Method(lambda h, t: optax.adam(lr_decay(h, t)),
                             ADAM_GRID),
    # HD tuned as the ICLR 2019 HD study tunes it: α_0 × β
    'sgd_hd*': Method(
        lambda h, t: ohg.sgd_hd(h[0], h[1], rate_dynamics='additive'),
        _pairs(SGD_GRID, HD_BETAS), base='sgd*'),
    'sgdn_hd*': Method(
        lambda h, t: ohg.sgdn_hd(h[0], h[1], rate_dynamics='additive'),
        _pairs(SGD_GRID, HD_BETAS), base='sgdn*'),
    'adam_hd*': Method(
        lambda h, t: ohg.adam_hd(h[0], h[1], rate_dynamics='additive'),
        _pairs(ADAM_HD_ALPHAS, ADAM_HD_BETAS), base='adam*'),
    # Optax's tuning-free optimizers, at their defaults
    'polyak_sgd': Method(lambda h, t: optax.polyak_sgd()),
    'momo': Method(lambda h, t: contrib.momo()),
    'momo_adam': Method(lambda h, t: contrib.momo_adam()),
    'prodigy': Method(lambda h, t: contrib.prodigy()),
    'dog': Method(lambda h, t: contrib.dog()),
    'dowg': Method(lambda h, t: contrib.dowg()),
    'cocob': Method(lambda h, t: contrib.cocob()),
    # mechanize's base at learning rate 1, as in Optax's own tests of it
    'mechanize_adam': Method(lambda h, t: contrib.mechanize(optax.adam(1.0))),
    'schedule_free_adamw': Method(lambda h, t: contrib.schedule_free_adamw(),
                                  schedule_free=True),
}

BASES = ('sgd', 'sgdn', 'adam')
HD_ALIASES = ('sgd_hd', 'sgd_op_sgdn_lop', 'sgd_op_adam_lop', 'sgdn_hd',
              'sgdn_op_sgdn_lop', 'sgdn_op_adam_lop', 'adam_hd',
              'adam_op_sgdn_lop', 'adam_op_adam_lop')
TUNED = ('sgd*', 'sgdn*', 'adam*', 'sgdn_lr_decay*', 'adam_lr_decay*')
TUNING_FREE = ('polyak_sgd', 'momo', 'momo_adam', 'prodigy', 'dog', 'dowg',
               'cocob', 'mechanize_adam', 'schedule_free_adamw')
# What a user would pick instead of this package: grid-tuned Optax
# optimizers and Optax's tuning-free ones; the package's methods are the rest.
ALTERNATIVES = TUNED + TUNING_FREE
OURS = tuple(n for n in METHODS if n not in BASES + ALTERNATIVES)
QUICK = ('sgd', 'sgd_hd', 'sgd_op_sgdn_lop', 'sgdn', 'sgdn_hd',
         'sgdn_op_sgdn_lop', 'adam', 'adam_hd', 'adam_op_adam_lop', 'l4_mom',
         'l4_adam', 'marthe')
# The "no tuning" table: every alias at its defaults, selection + HD, the
# constant bases from the same start, Optax's tuning-free optimizers at
# their defaults, and the best grid-tuned constant step.
NOTUNE = BASES + HD_ALIASES + ('sgdn_hd_paper', 'adam_hd_paper',
                               'sgdn_hd+select', 'adam_hd+select', 'l4_mom',
                               'l4_adam', 'l4_mom_paper', 'l4_adam_paper',
                               'marthe', 'rtho', 'marthe_nesterov',
                               'marthe_adam', 'marthe_paper'
                               ) + TUNING_FREE + (
                                   'sgd*', 'sgdn*', 'adam*')
