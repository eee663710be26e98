"""A slow, obviously-correct NumPy reference for lawfit's objective, gradient and Hessian.

Independent of lawfit's compiler and kernels: it walks the law's natural-scale expression tree
(``law.expression``) directly, puts ``natural = exp(internal)`` in for log-transformed parameters, and
differentiates with respect to the *internal* parameters by forward-mode second-order dual numbers.

All arithmetic is done in ``np.longdouble`` (80-bit extended precision on x86: 64-bit mantissa,
exponent range to ~1e4932), and logarithms of sums are taken naively, without any max-shift: a term
like ``A / N**alpha`` with ``alpha = 40, N = 1e12`` (1e-480) or ``A = exp(800)`` is simply representable
here, whereas lawfit must get the same numbers in float64 through its max-shifted log-sum-exp.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble


class Dual:
    """Value ``v`` (n,), gradient ``g`` (n, P) and Hessian ``h`` (n, P, P) of a quantity at n points."""

    def __init__(self, v, g, h):
        self.v, self.g, self.h = v, g, h

    @staticmethod
    def const(value, n, P):
        v = np.broadcast_to(np.asarray(value, dtype=LD), (n,)).copy()
        return Dual(v, np.zeros((n, P), dtype=LD), np.zeros((n, P, P), dtype=LD))

    # Chain rule for y = f(x): y' = f'(x) x', y'' = f'(x) x'' + f''(x) x' x'^T.
    def apply(self, f, d1, d2):
        return Dual(f, d1[:, None] * self.g,
                    d1[:, None, None] * self.h + d2[:, None, None] * _outer(self.g, self.g))

    def __add__(self, o):
        return Dual(self.v + o.v, self.g + o.g, self.h + o.h)

    def __sub__(self, o):
        return Dual(self.v - o.v, self.g - o.g, self.h - o.h)

    def __neg__(self):
        return Dual(-self.v, -self.g, -self.h)

    def __mul__(self, o):
        return Dual(self.v * o.v, self.g * o.v[:, None] + o.g * self.v[:, None],
                    self.h * o.v[:, None, None] + o.h * self.v[:, None, None]
                    + _outer(self.g, o.g) + _outer(o.g, self.g))

    def recip(self):
        r = 1 / self.v
        return self.apply(r, -r * r, 2 * r * r * r)

    def __truediv__(self, o):
        return self * o.recip()

    def powc(self, c):  # x ** c for a constant c
        c = LD(c)
        return self.apply(self.v ** c, c * self.v ** (c - 1), c * (c - 1) * self.v ** (c - 2))

    def exp(self):
        e = np.exp(self.v)
        return self.apply(e, e, e)

    def log(self):
        return self.apply(np.log(self.v), 1 / self.v, -1 / self.v ** 2)

    def expm1(self):
        e = np.exp(self.v)
        return self.apply(np.expm1(self.v), e, e)

    def log1p(self):
        return self.apply(np.log1p(self.v), 1 / (1 + self.v), -1 / (1 + self.v) ** 2)


def _outer(a, b):
    return a[:, :, None] * b[:, None, :]


def _lse(terms):
    """log(sum(exp(t))) computed naively: log of a plain sum of exponentials (no max-shift)."""
    s = terms[0].exp()
    for t in terms[1:]:
        s = s + t.exp()
    return s.log()


def log_prediction(law, data, theta):
    """log L_hat at every point of ``data`` with gradient and Hessian w.r.t. the internal ``theta``."""
    theta = np.asarray(theta, dtype=LD)
    P = law.n_params
    cols = {v: np.asarray(data[v], dtype=np.float64).astype(LD) for v in law.variables}
    n = len(next(iter(cols.values())))
    leaves = {}
    for k, p in enumerate(law.params):
        g = np.zeros((n, P), dtype=LD)
        g[:, k] = 1
        x = Dual(np.full(n, theta[k], dtype=LD), g, np.zeros((n, P, P), dtype=LD))
        leaves[p.name] = x.exp() if p.transform == "log" else x

    def walk(e):
        if e.op == "const":
            return Dual.const(e.value, n, P)
        if e.op == "sym":
            return Dual.const(cols[e.name], n, P) if e.name in cols else leaves[e.name]
        if e.op == "pow" and e.args[1].op == "const":
            return walk(e.args[0]).powc(e.args[1].value)
        if e.op == "pow" and e.args[1].op == "neg" and e.args[1].args[0].op == "const":  # x**-2 parses so
            return walk(e.args[0]).powc(-e.args[1].args[0].value)
        a = [walk(x) for x in e.args]
        if e.op == "add":
            return a[0] + a[1]
        if e.op == "sub":
            return a[0] - a[1]
        if e.op == "mul":
            return a[0] * a[1]
        if e.op == "div":
            return a[0] / a[1]
        if e.op == "pow":  # x ** y = exp(y log x)
            return (a[1] * a[0].log()).exp()
        if e.op == "neg":
            return -a[0]
        if e.op in ("exp", "log", "expm1", "log1p"):
            return getattr(a[0], e.op)()
        if e.op == "lse":
            return _lse(a)
        raise ValueError(f"unknown op {e.op!r}")

    with np.errstate(all="ignore"):
        root = walk(law.expression)
        return root if law.log_space else root.log()


def huber(r, delta):
    """rho, rho', rho'' of the Huber loss (scipy.special.huber) at residuals r."""
    a = np.abs(r)
    quad = a <= delta
    rho = np.where(quad, r * r / 2, delta * (a - delta / 2))
    return rho, np.where(quad, r, delta * np.sign(r)), np.where(quad, 1, 0).astype(r.dtype)


def squared(r, delta=None):
    return r * r / 2, r, np.ones_like(r)


def quantile(r, q):
    """Pinball loss: (1 - q) r for r > 0, -q r for r < 0 (derivatives away from r = 0)."""
    return np.where(r > 0, (1 - q) * r, -q * r), np.where(r > 0, 1 - q, -q).astype(r.dtype), np.zeros_like(r)


def absolute(r, delta=None):
    return np.abs(r), np.sign(r), np.zeros_like(r)


def cauchy(r, c):
    u2 = (r / c) ** 2
    return c * c / 2 * np.log1p(u2), r / (1 + u2), (1 - u2) / (1 + u2) ** 2


LOSSES = {"huber": huber, "squared": squared, "quantile": quantile, "absolute": absolute, "cauchy": cauchy}


def objective(law, data, theta, weights=None, loss="huber", delta=1e-3, residual="log"):
    """Objective, gradient and Hessian (long double) of sum_i w_i rho(r_i) at ``theta``, with
    r = log L_hat - log L (residual="log") or L_hat - L ("linear"); ``delta`` is the loss's parameter.

    Also returns the per-point quantities, as a dict, for error bounds in tests.
    """
    lp = log_prediction(law, data, theta)
    y = np.log(np.asarray(data["loss"], dtype=np.float64).astype(LD))
    if residual == "linear":
        with np.errstate(all="ignore"):
            e = np.exp(lp.v)
            lp = lp.apply(e, e, e)
        y = np.asarray(data["loss"], dtype=np.float64).astype(LD)
    w = np.ones(len(y), dtype=LD) if weights is None else np.asarray(weights, dtype=np.float64).astype(LD)
    keep = w != 0  # a zero-weight point does not enter the sum at all (even if its prediction is not finite)
    r = lp.v[keep] - y[keep]
    rho, d1, d2 = LOSSES[loss](r, LD(delta))
    w, g, h = w[keep], lp.g[keep], lp.h[keep]
    f = np.sum(w * rho)
    grad = np.sum((w * d1)[:, None] * g, axis=0)
    hess = np.sum((w * d1)[:, None, None] * h + (w * d2)[:, None, None] * _outer(g, g), axis=0)
    point = dict(r=r, w=w, d1=d1, d2=d2, g=g, h=h, logpred=lp.v[keep], y=y[keep])
    return f, grad, hess, point
