"""The methods compared, each at its papers' default settings.

Every method starts from the same rate ``α_0 = 0.001`` (seeds 000/001): the
constant-step baselines keep it, the HD family adapts it.
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
}

# Which constant-step base each adaptive method is compared against.
BASE_OF = {
    name: name.split('_')[0] for name in METHODS if '_' in name
}
