"""A whole training run as one ``lax.scan`` in ``jit``, vmapped over seeds."""


import jax
import jax.numpy as jnp
import optax

from benchmarks import models


def _live_rate(state):
  """The state's ``learning_rate`` (mean over leaves), NaN when it has none
  or several (e.g. an injected hyperparameter besides ours)."""
  try:
    lr = optax.tree.get(state, 'learning_rate', jnp.nan)
  except KeyError:
    lr = jnp.nan
  return lr


def make_train(make_tx, model, data, *, epochs, batch_size,
               schedule_free=False, validation=None):
  """``train(hparam, seed) -> metrics``: one whole run, pure and traceable.

  Args:
    make_tx: builds the Optax transformation from a (possibly traced)
      hyperparameter and the run's total number of steps, e.g.
      ``lambda lr, total_steps: ohg.sgd_hd(lr)``.
    model: a ``models.Model`` (``init``, ``apply``).
    data: ``(x_train, y_train, x_test, y_test)``.
    epochs: passes over the training set.
    batch_size: minibatch size; each epoch is a fresh permutation.
    schedule_free: evaluate at the schedule-free averaged point.
    validation: optional held-out ``(x_val, y_val)``; adds the final
      ``val_loss`` to the metrics.

  Returns:
    ``(train, steps_per_epoch)``; ``train`` returns the minibatch loss and
    live learning rate at every step, and the final full-train loss, test
    accuracy (and validation loss). ``jit`` it, ``vmap`` it over
    hyperparameters and seeds.
  """
  x_tr, y_tr, x_te, y_te = (jnp.asarray(a) for a in data)
  n = x_tr.shape[0]
  steps_per_epoch = n // batch_size

  total_steps = epochs * steps_per_epoch
  if validation is not None:
    validation = tuple(jnp.asarray(a) for a in validation)
  loss_on = lambda p, x, y: models.cross_entropy(p, x, y, model.apply)

  def train(hparam, seed):
    # baselines take no value=: with_extra_args_support drops it for them
    tx = optax.with_extra_args_support(make_tx(hparam, total_steps))
    key = jax.random.key(seed)
    k_init, k_data = jax.random.split(key)
    params = model.init(k_init)
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(
        jax.random.split(k_data, epochs))
    batches = perms[:, : steps_per_epoch * batch_size].reshape(
        epochs * steps_per_epoch, batch_size)

    def step(carry, idx):
      params, state = carry
      loss_of = lambda p: loss_on(p, x_tr[idx], y_tr[idx])
      loss, grads = jax.value_and_grad(loss_of)(params)
      updates, state = tx.update(grads, state, params, value=loss,
                                 value_fn=loss_of)
      lr = _live_rate(state)
      lr = jnp.mean(jnp.stack([jnp.asarray(v, jnp.float32)
                               for v in jax.tree.leaves(lr)]))
      return (optax.apply_updates(params, updates), state), (loss, lr)

    (params, state), (losses, lrs) = jax.lax.scan(
        step, (params, tx.init(params)), batches)
    if schedule_free:
      params = optax.contrib.schedule_free_eval_params(state, params)
    metrics = {
        'loss': losses,
        'learning_rate': lrs,
        'final_train_loss': loss_on(params, x_tr, y_tr),
        'test_accuracy': models.accuracy(params, x_te, y_te, model.apply),
    }
    if validation is not None:
      metrics['val_loss'] = loss_on(params, *validation)
    return metrics

  return train, steps_per_epoch

