"""optax-hypergrad: learning rates that tune themselves, as Optax transforms."""

from optax_hypergrad._src.alias import adam_hd
from optax_hypergrad._src.alias import adam_op_adam_lop
from optax_hypergrad._src.alias import adam_op_sgdn_lop
from optax_hypergrad._src.alias import base_direction
from optax_hypergrad._src.alias import hypergradient_descent
from optax_hypergrad._src.alias import l4_adam
from optax_hypergrad._src.alias import l4_mom
from optax_hypergrad._src.alias import marthe
from optax_hypergrad._src.alias import rtho
from optax_hypergrad._src.alias import sgd_hd
from optax_hypergrad._src.alias import sgd_op_adam_lop
from optax_hypergrad._src.alias import sgd_op_sgdn_lop
from optax_hypergrad._src.alias import sgdn_hd
from optax_hypergrad._src.alias import sgdn_op_adam_lop
from optax_hypergrad._src.alias import sgdn_op_sgdn_lop
from optax_hypergrad._src.hypergradient import ScaleByHypergradientState
from optax_hypergrad._src.hypergradient import scale_by_hypergradient
from optax_hypergrad._src.l4 import CurvatureProbe
from optax_hypergrad._src.l4 import ScaleByGradientRmsState
from optax_hypergrad._src.l4 import ScaleByL4State
from optax_hypergrad._src.l4 import scale_by_gradient_rms
from optax_hypergrad._src.l4 import scale_by_l4
from optax_hypergrad._src.live_rate import live_learning_rate
from optax_hypergrad._src.lrs_opt import LrsOptResult
from optax_hypergrad._src.lrs_opt import lrs_opt
from optax_hypergrad._src.lrs_opt import unrolled_objective
from optax_hypergrad._src.marthe import ScaleByMartheState
from optax_hypergrad._src.marthe import masked_value_fn
from optax_hypergrad._src.marthe import scale_by_marthe
from optax_hypergrad._src.packing import Packed
from optax_hypergrad._src.packing import pack_small_leaves
from optax_hypergrad._src.selection import Selection
from optax_hypergrad._src.selection import decimated
from optax_hypergrad._src.selection import select_hyperparams

__version__ = '0.1.0'

__all__ = (
    'adam_hd',
    'adam_op_adam_lop',
    'adam_op_sgdn_lop',
    'base_direction',
    'decimated',
    'hypergradient_descent',
    'l4_adam',
    'l4_mom',
    'live_learning_rate',
    'lrs_opt',
    'LrsOptResult',
    'marthe',
    'masked_value_fn',
    'pack_small_leaves',
    'Packed',
    'rtho',
    'scale_by_gradient_rms',
    'scale_by_hypergradient',
    'ScaleByGradientRmsState',
    'ScaleByHypergradientState',
    'scale_by_l4',
    'ScaleByL4State',
    'CurvatureProbe',
    'scale_by_marthe',
    'ScaleByMartheState',
    'select_hyperparams',
    'Selection',
    'sgd_hd',
    'sgd_op_adam_lop',
    'sgd_op_sgdn_lop',
    'sgdn_hd',
    'sgdn_op_adam_lop',
    'sgdn_op_sgdn_lop',
    'unrolled_objective',
)
