"""The paper-scale experiments: VGG-11/16 and ResNet-18 on CIFAR-10/100.

The ICLR 2019 HD study trains VGG-16 and ResNet-18 on CIFAR-10, Donini et
al. VGG-11 (with BatchNorm, SGD with momentum) on CIFAR-10 and ResNet-18
(Adam) on CIFAR-100.
Nothing is downloaded: give the dataset you have with ``--data``::

  python -m benchmarks.cifar --data ~/data/cifar-10-batches-py \\
      --model vgg11 --method marthe --epochs 200

``--data`` takes the python version of CIFAR-10 (``data_batch_1..5``,
``test_batch``), of CIFAR-100 (``train``, ``test``), or an ``.npz`` with
``x_train, y_train, x_test, y_test`` (uint8 NHWC images, integer labels).
``--smoke`` trains on random images instead, to check that a model and a
method compile and run here. Results go to ``results/cifar_<model>_<method>
.json``: the loss and live learning rate per step, test loss and accuracy
per epoch, and the time per step.

The models are Flax Linen modules with BatchNorm, as in the papers; the
VGGs end in one ``Dense`` layer (the common CIFAR variant, no dropout),
ResNet-18 is the CIFAR variant (3×3 stem, no max-pool). L2 regularization
``1e-4`` (the ICLR 2019 HD study) is added to the gradient before the optimizer.
"""

import argparse
from collections.abc import Sequence
import functools
import json
import os
import pickle
import sys
import time

from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from benchmarks import methods as methods_lib

VGG_LAYERS = {
    'vgg11': (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512,
              'M'),
    'vgg16': (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
              'M', 512, 512, 512, 'M'),
}
_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 1, 1, 3)
_STD = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 1, 1, 3)


class VGG(nn.Module):
  """VGG with BatchNorm for 32×32 images; channels scaled by ``width``."""

  layers: Sequence[int | str]
  num_classes: int = 10
  width: float = 1.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    for layer in self.layers:
      if layer == 'M':
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      else:
        x = nn.Conv(max(1, int(layer * self.width)), (3, 3),
                    use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.relu(x)
    return nn.Dense(self.num_classes)(x.reshape(x.shape[0], -1))


class BasicBlock(nn.Module):
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = functools.partial(nn.BatchNorm, use_running_average=not train)
    y = nn.Conv(self.features, (3, 3), self.strides, use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
    y = norm()(y)
    if self.strides != 1 or x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), self.strides, use_bias=False)(x)
      x = norm()(x)
    return nn.relu(x + y)


class ResNet18(nn.Module):
  """ResNet-18, CIFAR variant (3×3 stem, no max-pool)."""

  num_classes: int = 10
  width: float = 1.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    c = lambda n: max(1, int(n * self.width))
    x = nn.Conv(c(64), (3, 3), use_bias=False)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    for i, features in enumerate((64, 128, 256, 512)):
      for j in range(2):
        strides = 2 if i > 0 and j == 0 else 1
        x = BasicBlock(c(features), strides)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes)(x)


def make_model(name: str, num_classes: int = 10,
               width: float = 1.0) -> nn.Module:
  if name in VGG_LAYERS:
    return VGG(VGG_LAYERS[name], num_classes, width)
  if name == 'resnet18':
    return ResNet18(num_classes, width)
  raise ValueError(f'model must be one of {[*VGG_LAYERS, "resnet18"]}, '
                   f'got {name!r}')


def load(path: str):
  """CIFAR-10/100 from a local path: ``(x_train, y_train, x_test, y_test)``.

  Images as uint8 (N, 32, 32, 3), labels int32. See the module docstring
  for the layouts accepted.
  """
  if path.endswith('.npz'):
    with np.load(path) as d:
      return tuple(np.asarray(d[k]) for k in ('x_train', 'y_train', 'x_test',
                                              'y_test'))

  def read(name):
    with open(os.path.join(path, name), 'rb') as f:
      d = pickle.load(f, encoding='bytes')
    key = b'labels' if b'labels' in d else b'fine_labels'
    x = np.asarray(d[b'data'], np.uint8).reshape(-1, 3, 32, 32)
    return x.transpose(0, 2, 3, 1), np.asarray(d[key], np.int32)

  if os.path.exists(os.path.join(path, 'data_batch_1')):  # CIFAR-10
    parts = [read(f'data_batch_{i}') for i in range(1, 6)]
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return (x_tr, y_tr, *read('test_batch'))
  if os.path.exists(os.path.join(path, 'train')):  # CIFAR-100
    return (*read('train'), *read('test'))
  raise FileNotFoundError(
      f'no CIFAR data at {path!r}: expected data_batch_1..5 and test_batch '
      '(CIFAR-10, python version), train and test (CIFAR-100), or an .npz')


def random_images(n_train: int, n_test: int, num_classes: int, seed=0):
  """Random uint8 images and labels with CIFAR's shapes (``--smoke``)."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n_train + n_test, 32, 32, 3), dtype=np.uint8)
  y = rng.integers(0, num_classes, n_train + n_test).astype(np.int32)
  return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _normalize(x):
  return (jnp.asarray(x, jnp.float32) / 255.0 - _MEAN) / _STD


def _augment(key, x):
  """Random crop (4-pixel padding) and horizontal flip, per image."""
  k_crop, k_flip = jax.random.split(key)
  n = x.shape[0]
  padded = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode='reflect')
  offsets = jax.random.randint(k_crop, (n, 2), 0, 9)
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0),
                                              (32, 32, 3))
  x = jax.vmap(crop)(padded, offsets)
  flip = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1], x)


def cross_entropy(logits, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def make_step(model, tx):
  """A jitted training step passing ``value=`` and ``value_fn=``, so any
  method of the package (L4 needs the loss, MARTHE the loss function) runs
  in the same step; BatchNorm statistics are updated outside ``value_fn``.
  """

  def loss_fn(params, batch_stats, x, y):
    logits, new = model.apply({'params': params, 'batch_stats': batch_stats},
                              x, train=True, mutable=['batch_stats'])
    return cross_entropy(logits, y), new['batch_stats']

  @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
  def step(params, batch_stats, opt_state, key, x, y):
    x = _augment(key, _normalize(x))
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params, batch_stats, x, y)
    updates, opt_state = tx.update(
        grads, opt_state, params, value=loss,
        value_fn=lambda p: loss_fn(p, batch_stats, x, y)[0])
    lr = optax.tree.get(opt_state, 'learning_rate', jnp.nan)
    lr = jnp.mean(jnp.stack([jnp.asarray(v, jnp.float32).mean()
                             for v in jax.tree.leaves(lr)]))
    return optax.apply_updates(params, updates), batch_stats, opt_state, (
        loss, lr)

  return step


def evaluate(model, variables, x, y, batch_size=500):
  apply = jax.jit(lambda v, xb: model.apply(v, _normalize(xb)))
  losses, correct = [], 0
  for i in range(0, len(y), batch_size):
    logits = apply(variables, x[i:i + batch_size])
    losses.append(float(cross_entropy(logits, y[i:i + batch_size]))
                  * len(logits))
    correct += int(jnp.sum(jnp.argmax(logits, -1) == y[i:i + batch_size]))
  return sum(losses) / len(y), correct / len(y)


def train(model, tx, data, *, epochs, batch_size, seed=0, log=None):
  """Trains ``model`` with ``tx``; returns per-step and per-epoch metrics."""
  x_tr, y_tr, x_te, y_te = data
  key = jax.random.key(seed)
  key, k_init = jax.random.split(key)
  variables = model.init(k_init, jnp.zeros((1, 32, 32, 3)), train=False)
  params, batch_stats = variables['params'], variables['batch_stats']
  opt_state = tx.init(params)
  n_params = sum(a.size for a in jax.tree.leaves(params))
  step = make_step(model, tx)
  steps_per_epoch = len(y_tr) // batch_size
  rng = np.random.default_rng(seed)
  out = {'loss': [], 'learning_rate': [], 'test_loss': [],
         'test_accuracy': [], 'step_seconds': [], 'params': int(n_params)}
  for _ in range(epochs):
    perm = rng.permutation(len(y_tr))
    for i in range(steps_per_epoch):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      key, k = jax.random.split(key)
      t0 = time.perf_counter()
      params, batch_stats, opt_state, (loss, lr) = step(
          params, batch_stats, opt_state, k, x_tr[idx], y_tr[idx])
      loss, lr = float(loss), float(lr)  # waits for the step
      out['step_seconds'].append(time.perf_counter() - t0)
      out['loss'].append(loss)
      out['learning_rate'].append(lr)
      if log:
        log(loss, lr)
    test_loss, test_acc = evaluate(
        model, {'params': params, 'batch_stats': batch_stats}, x_te, y_te)
    out['test_loss'].append(test_loss)
    out['test_accuracy'].append(test_acc)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', default='vgg11',
                      choices=[*VGG_LAYERS, 'resnet18'])
  parser.add_argument('--method', default='marthe',
                      choices=sorted(methods_lib.METHODS))
  parser.add_argument('--lr', type=float, default=0.1,
                      help='the learning rate of a tuned baseline (*)')
  parser.add_argument('--data', help='local CIFAR-10/100 (see above)')
  parser.add_argument('--smoke', action='store_true',
                      help='random images instead of --data')
  parser.add_argument('--classes', type=int, default=10)
  parser.add_argument('--epochs', type=int, default=1)
  parser.add_argument('--batch-size', type=int, default=128)
  parser.add_argument('--weight-decay', type=float, default=1e-4)
  parser.add_argument('--width', type=float, default=1.0,
                      help='scale every layer\'s channels')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--out', default='results')
  args = parser.parse_args(argv)
  if args.smoke == bool(args.data):
    parser.error('give exactly one of --data PATH or --smoke')

  if args.smoke:
    data = random_images(4 * args.batch_size, args.batch_size, args.classes)
  else:
    data = load(args.data)
  num_classes = int(max(data[1].max(), data[3].max())) + 1
  model = make_model(args.model, num_classes, args.width)
  total_steps = args.epochs * (len(data[1]) // args.batch_size)
  tx = optax.chain(
      optax.add_decayed_weights(args.weight_decay),
      methods_lib.METHODS[args.method].make(args.lr, total_steps))
  with tqdm.tqdm(total=total_steps, desc='steps') as bar:

    def log(loss, lr):
      bar.set_postfix_str(f'loss {loss:.3f} lr {lr:.2e}')
      bar.update()

    result = train(model, tx, data, epochs=args.epochs,
                   batch_size=args.batch_size, seed=args.seed, log=log)
  result.update(model=args.model, method=args.method, smoke=args.smoke,
                device=jax.devices()[0].device_kind,
                # other jobs on the machine inflate the step time: say so
                load_average=os.getloadavg()[0], cpu_count=os.cpu_count())
  # the first step includes compilation
  step_time = float(np.median(result['step_seconds'][1:] or [np.nan]))
  result['median_step_seconds'] = step_time
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, f'cifar_{args.model}_{args.method}.json')
  with open(path, 'w') as f:
    json.dump(result, f)
  print(f'\n{args.model} ({result["params"]:,} parameters) with '
        f'{args.method}: final loss {result["loss"][-1]:.4f}, test accuracy '
        f'{100 * result["test_accuracy"][-1]:.1f}%, {1e3 * step_time:.0f} ms '
        f'per step (batch {args.batch_size}, {result["device"]}); '
        f'wrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
