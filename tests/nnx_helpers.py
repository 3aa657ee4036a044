"""One check for every method: an NNX training step equals plain Optax."""

from flax import nnx
import jax
import numpy as np
import optax


def run_nnx_and_optax(make_model, make_tx, loss_of_model, steps,
                      extra_args=lambda loss, pure_loss: {}):
  """Trains with ``nnx.Optimizer`` and with a plain Optax loop; compares.

  Args:
    make_model: builds the model, deterministically (same weights each call).
    make_tx: builds the transformation.
    loss_of_model: ``model -> loss``.
    steps: training steps.
    extra_args: ``(loss, pure_loss) -> kwargs`` for ``update``: e.g.
      ``{'value': loss}`` or ``{'value_fn': pure_loss}``, where ``pure_loss``
      is the loss as a function of the pure parameter state.

  Returns:
    (losses, the NNX optimizer, the plain Optax state), after asserting that
    both runs give the same losses.
  """
  model = make_model()
  graphdef, _ = nnx.split(model, nnx.Param)
  pure_loss = lambda p: loss_of_model(nnx.merge(graphdef, p))
  optimizer = nnx.Optimizer(model, make_tx(), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_of_model)(model)
    optimizer.update(model, grads, **extra_args(loss, pure_loss))
    return loss

  nnx_losses = [float(train_step(model, optimizer)) for _ in range(steps)]

  tx = make_tx()
  _, params = nnx.split(make_model(), nnx.Param)
  state = tx.init(params)
  losses = []
  for _ in range(steps):
    loss, grads = jax.value_and_grad(pure_loss)(params)
    updates, state = tx.update(grads, state, params,
                               **extra_args(loss, pure_loss))
    params = optax.apply_updates(params, updates)
    losses.append(float(loss))
  np.testing.assert_allclose(nnx_losses, losses, rtol=1e-5)
  return np.array(nnx_losses), optimizer, state
