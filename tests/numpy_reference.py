"""Plain-NumPy transcriptions of the papers' update rules, for the tests.

Written from the equations, on flat float64 vectors, sharing no code with the
package: a test that compares the two compares the package to the math.
"""

import numpy as np


def hd(grad_fn, w0, steps, *, base, lop, alpha0, beta, groups=None,
       mu=0.9, b1=0.9, b2=0.999, eps=1e-8, dynamics='additive', target=0.0):
  """HD over a base optimizer (Baydin et al.), the rate moved by a `lop`.

  ``dynamics='multiplicative'`` is the package's scale-free rule instead:
  the `lop` moves ``log α`` along ``target - cos(g_t, d_{t-1})``, each step
  clipped to a factor of 2; a gradient norm above twice its running level
  (0.9-decay average of the norm clipped to that limit) is clipped to the
  limit before the base direction sees it.

  Args:
    grad_fn: w -> g (the gradient as the optimizer sees it).
    w0: initial flat parameters.
    steps: number of steps.
    base: 'sgd', 'nesterov' or 'adam'.
    lop: the rate's optimizer, 'sgd', 'nesterov' (Algorithm 1, μ=0.9) or
      'adam' (Algorithm 2, 0.9/0.999/1e-8).
    alpha0: initial rate.
    beta: hyper-learning rate.
    groups: list of index arrays, one rate per group; None for one global.

  Returns:
    (ws, alphas): parameters after each step, rates used at each step.
  """
  w = np.array(w0, np.float64)
  groups = [np.arange(w.size)] if groups is None else groups
  k = len(groups)
  alpha = np.full(k, alpha0, np.float64)
  d_prev = np.zeros_like(w)
  v = np.zeros_like(w)  # Nesterov buffer
  m, s = np.zeros_like(w), np.zeros_like(w)  # Adam moments
  lv = np.zeros(k)  # SGDN_lop velocity
  lm, ls = np.zeros(k), np.zeros(k)  # Adam_lop moments
  level = np.zeros(k)  # running gradient norm (multiplicative rule)
  ws, alphas = [], []
  for t in range(1, steps + 1):
    g = np.array(grad_fn(w), np.float64)
    # h_t = -g_t · d_{t-1}, per group
    h = np.array([-g[ix] @ d_prev[ix] for ix in groups])
    norm = np.array([np.linalg.norm(g[ix]) for ix in groups])
    if dynamics == 'multiplicative':
      dnorm = np.array([np.linalg.norm(d_prev[ix]) for ix in groups])
      with np.errstate(invalid='ignore', divide='ignore'):
        cos = np.where(norm * dnorm > 0, -h / (norm * dnorm), 0.0)
      h = target - cos
    if lop == 'sgd':
      delta = -beta * h
    elif lop == 'nesterov':
      lv = 0.9 * lv + h
      delta = -beta * (h + 0.9 * lv)
    elif lop == 'adam':
      lm = 0.9 * lm + 0.1 * h
      ls = 0.999 * ls + 0.001 * h**2
      mhat, shat = lm / (1 - 0.9**t), ls / (1 - 0.999**t)
      delta = -beta * mhat / (np.sqrt(shat) + 1e-8)
    scale = np.ones(k)
    if dynamics == 'multiplicative':
      alpha = alpha * np.exp(np.clip(delta, -np.log(2), np.log(2)))
      for i in range(k):
        if level[i] > 0:
          jump = norm[i] / level[i]
          scale[i] = 2 / jump if jump > 2 else 1.0
          level[i] = 0.9 * level[i] + 0.1 * min(norm[i], 2 * level[i])
        else:
          level[i] = norm[i]
    else:
      alpha = alpha + delta
    for c, ix in zip(scale, groups, strict=True):
      g[ix] = c * g[ix]
    if base == 'sgd':
      d = g
    elif base == 'nesterov':
      v = mu * v + g
      d = g + mu * v
    elif base == 'adam':
      m = b1 * m + (1 - b1) * g
      s = b2 * s + (1 - b2) * g**2
      d = (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
    step = np.zeros_like(w)
    for a, ix in zip(alpha, groups, strict=True):
      step[ix] = a * d[ix]
    w = w - step
    d_prev = d
    ws.append(w.copy())
    alphas.append(alpha.copy())
  return np.array(ws), np.array(alphas)


class ReferenceSGDHD:
  """The update order of Baydin et al.'s PyTorch `SGDHD.step`.

  In place, as the reference does it: the rate is raised by `β g·d_prev`
  before the step; weight decay is folded into `g` first; the momentum buffer
  starts as a copy of the first gradient; Nesterov stores `g + μ buf` as the
  previous direction, *after* the step.
  """

  def __init__(self, w0, lr, hypergrad_lr, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    self.w = np.array(w0, np.float64)
    self.lr, self.hypergrad_lr = lr, hypergrad_lr
    self.momentum, self.nesterov = momentum, nesterov
    self.weight_decay = weight_decay
    self.grad_prev = np.zeros_like(self.w)
    self.buf = None

  def step(self, grad):
    grad = grad + self.weight_decay * self.w
    h = grad @ self.grad_prev
    self.lr += self.hypergrad_lr * h
    if self.momentum != 0:
      if self.buf is None:
        self.buf = grad.copy()
      else:
        self.buf = self.momentum * self.buf + grad
      if self.nesterov:
        grad = grad + self.momentum * self.buf
      else:
        grad = self.buf
    self.grad_prev = grad
    self.w = self.w - self.lr * grad


def l4(loss_grad_fn, w0, steps, *, variant, alpha=0.15, gamma=0.9, tau=1000.0,
       gamma0=0.75, eps=1e-12, b1=0.9, b2=0.999, adam_eps=1e-4):
  """Rolinek & Martius: L4Mom (`variant='mom'`) or L4Adam (`'adam'`).

  Returns:
    (ws, etas): parameters after each step, effective rate of each step.
  """
  w = np.array(w0, np.float64)
  m, s = np.zeros_like(w), np.zeros_like(w)
  lmin = None
  ws, etas = [], []
  for t in range(1, steps + 1):
    loss, grad = loss_grad_fn(w)
    m = b1 * m + (1 - b1) * grad
    g = m / (1 - b1**t)  # bias-corrected momentum: the gradient estimate
    if variant == 'mom':
      v = g
    else:
      s = b2 * s + (1 - b2) * grad**2
      v = g / (np.sqrt(s / (1 - b2**t)) + adam_eps)
    lmin = gamma0 * loss if t == 1 else min(lmin, loss)
    eta = alpha * (loss - gamma * lmin) / (g @ v + eps)
    w = w - eta * v
    lmin = (1 + 1 / tau) * lmin
    ws.append(w.copy())
    etas.append(eta)
  return np.array(ws), np.array(etas)


def l4_robust(loss_grad_fn, w0, steps, *, variant, alpha=0.15, gamma=0.9,
              gamma0=0.75, eps=1e-12, b1=0.9, b2=0.999, adam_eps=1e-4,
              cap=1.9, power=0.0, growth=0.05, decay=0.02, probe_decay=0.5,
              noise_decay=0.9, shrink=0.95, fast_decay=0.9, slow_decay=0.99,
              trend_cap=3.0):
  """L4 with the robust rule: target best − Δ, curvature cap, noise power;
  Δ kept at least the loss's recent fall, from two averages of the loss
  (here plain averages of the loss itself, not the package's heights above
  the best loss: the same numbers up to rounding).

  Returns:
    (ws, etas): parameters after each step, effective rate of each step.
  """
  w = np.array(w0, np.float64)
  m, s = np.zeros_like(w), np.zeros_like(w)
  p = np.zeros_like(w)
  best = gap = first_dot = step_dot = num = den = grad_sq = 0.0
  fast = slow = 0.0
  ws, etas = [], []
  for t in range(1, steps + 1):
    loss, grad = loss_grad_fn(w)
    m = b1 * m + (1 - b1) * grad
    g = m / (1 - b1**t)
    if variant == 'mom':
      v = g
    else:
      s = b2 * s + (1 - b2) * grad**2
      v = g / (np.sqrt(s / (1 - b2**t)) + adam_eps)
    record = t > 1 and loss < best
    if t == 1:
      best, gap = loss, (1 - gamma * gamma0) * abs(loss)
      fast = slow = loss
    else:
      gap *= np.exp(growth if record else -decay)
      best = min(best, loss)
      fast = fast_decay * fast + (1 - fast_decay) * loss
      slow = slow_decay * slow + (1 - slow_decay) * loss
      gap = max(gap, min(slow - fast, trend_cap * (fast - best)))
    grad_sq = noise_decay * grad_sq + (1 - noise_decay) * grad @ grad
    rho = max(grad_sq / (1 - noise_decay**t) / (g @ g), 1.0)
    denom = (g @ v) * rho**power + eps
    eta = alpha * (loss - (best - gap)) / denom
    if den > 0 and num > 0:
      limit = cap * (g @ v) / (num / den * (v @ v))
      if eta > limit:  # the cap binds: the gap moves toward the fitted one
        eta = limit
        fitted = limit * denom / alpha - (loss - best)
        gap = min(max(fitted, shrink * gap), gap)
    eta = max(eta, 0.0)
    # the probe: steps 1, 3, 5, ... store v; the next gradient measures
    # g·p; the one after that measures again and averages.
    if (t - 1) % 2 == 0:
      if t >= 3:
        num = probe_decay * num + (1 - probe_decay) * (first_dot - grad @ p)
        den = probe_decay * den + (1 - probe_decay) * step_dot
      p = v.copy()
    else:
      first_dot, step_dot = grad @ p, eta * (v @ p)
    w = w - eta * v
    ws.append(w.copy())
    etas.append(eta)
  return np.array(ws), np.array(etas)


def marthe(grad_hess_fn, w0, steps, *, eta0, beta0, mu0, kappa=0.0,
           adapt_mu=False, momentum=0.0, dynamics='additive',
           mu_rule='reference'):
  """Donini et al. with the reference's μ and β rules, hand-derived tangent.

  Base: SGD (`momentum=0`, `J = I - ηH`, `∂Φ/∂η = -g`) or heavy-ball
  momentum (`v ← m v + g`, `w ← w - η v`), whose tangent is the reference's
  hand derivation `Z_w ← μ[Z_w − η(H Z_w + m Z_v)] − (m v + g)`,
  `Z_v ← μ(H Z_w + m Z_v)` — with the *current* η, not the initial one.
  `dynamics='multiplicative'`: `log η ← log η − clip(β ĥ, ±log 2)` with
  `ĥ = cos(g, Z_w)`, the gradient (and its HVP) clipped to twice its running
  norm level, `log β ← log β + κ ĥ_t ĥ_{t-1}`. `mu_rule='descent'`: `z` is
  the running mean (decay 0.9) of `ĥ_t ĥ_{t-1}` over that of its absolute
  value, `ĥ` the cosine (multiplicative) or `h` (additive).

  Returns:
    (ws, etas, mus, betas, zs) after each step.
  """
  def cos(x, y):
    n = np.linalg.norm(x) * np.linalg.norm(y)
    return float(np.clip(x @ y / n, -1, 1)) if n > 0 else 0.0

  w = np.array(w0, np.float64)
  z_w, z_v, v = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
  eta, beta, mu, c, b = eta0, beta0, mu0, 0.0, None
  rho, rho_abs, h_prev, level = 0.0, 0.0, 0.0, 0.0
  out = {'w': [], 'eta': [], 'mu': [], 'beta': [], 'z': []}
  for t in range(steps):
    g, hess = grad_hess_fn(w)
    scale = 1.0
    mu = mu if adapt_mu else mu0  # a reset lasts one step
    if dynamics == 'multiplicative':
      h = cos(g, z_w)
      eta = eta * np.exp(np.clip(-beta * h, -np.log(2), np.log(2)))
      norm = np.linalg.norm(g)
      if level > 0:
        scale = 2 * level / norm if norm > 2 * level else 1.0
        level = 0.9 * level + 0.1 * min(norm, 2 * level)
      else:
        level = norm
    else:
      h = g @ z_w
      eta = max(eta - beta * h, 0.0)
    if adapt_mu and t > 0:
      if mu_rule == 'reference':
        agree = g @ b
        zq = eta / agree if agree > 0 else 0.0
      else:
        rho = 0.9 * rho + 0.1 * h * h_prev
        rho_abs = 0.9 * rho_abs + 0.1 * abs(h * h_prev)
        zq = rho / rho_abs if rho_abs > 0 else 0.0
      zq = min(max(zq, 0.0), 1.0)
      c = c * np.sign(mu) + mu
      mu = zq ** (1.0 / (c + 1.0))
    if dynamics == 'multiplicative':
      beta = beta * np.exp(kappa * h * h_prev)
      if scale < 2 / 6:  # a jump of ‖g‖ above 6× its level: restart Z
        mu = 0.0
    else:
      beta = max(beta + kappa * h * eta, 0.0)
    h_prev = h
    b = g
    g = scale * g
    hz = scale * hess @ z_w
    new_z_w = mu * (z_w - eta * (hz + momentum * z_v)) - (momentum * v + g)
    z_v = mu * (hz + momentum * z_v)
    z_w = new_z_w
    v = momentum * v + g
    w = w - eta * v
    for k, x in zip(out, (w.copy(), eta, mu, beta, z_w.copy()), strict=True):
      out[k].append(x)
  return {k: np.array(x) for k, x in out.items()}
