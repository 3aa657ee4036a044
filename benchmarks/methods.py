"""The methods compared, each at its papers' default settings.

The HD family starts from the seeds' ``α_0 = 0.001``, as do the constant-step
baselines; L4 has no initial rate (α = 0.15 is a fraction of the linearized
step); MARTHE starts from the reference code's ``η_0 = 0.01``.
"""

import optax

import optax_hypergrad as ohg

ALPHA0 = 1e-3

METHODS = {
    'sgd': lambda: optax.sgd(ALPHA0),
    'sgd_hd': lambda: ohg.sgd_hd(ALPHA0),
    'sgd_op_sgdn_lop': lambda: ohg.sgd_op_sgdn_lop(ALPHA0),
    'sgdn': lambda: optax.sgd(ALPHA0, momentum=0.9, nesterov=True),
    'sgdn_hd': lambda: ohg.sgdn_hd(ALPHA0),
    'sgdn_op_sgdn_lop': lambda: ohg.sgdn_op_sgdn_lop(ALPHA0),
    'adam': lambda: optax.adam(ALPHA0),
    'adam_hd': lambda: ohg.adam_hd(ALPHA0),
    'adam_op_adam_lop': lambda: ohg.adam_op_adam_lop(ALPHA0),
    'l4_mom': lambda: ohg.l4_mom(),
    'l4_adam': lambda: ohg.l4_adam(),
    'marthe': lambda: ohg.marthe(),
}

# Which constant-step base each adaptive method is compared against.
BASE_OF = {
    name: name.split('_')[0] for name in METHODS
    if '_' in name and name.split('_')[0] in METHODS
}
BASE_OF.update({'l4_mom': 'sgdn', 'l4_adam': 'adam', 'marthe': 'sgd'})
