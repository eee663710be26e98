"""Exact minimisation of the kinked losses (``absolute``, ``quantile``).

``F(x) = sum_i w_i rho(r_i(x))`` with rho piecewise linear (slope ``a`` for r > 0, ``-b`` for r < 0) is not
differentiable where a residual is zero, and its minimum sits at such a point: generically a *vertex* where as
many residuals are zero as there are free parameters not held on a bound. The route:

1. **Smooth stage.** The batch engine fits the Huber loss with a small threshold and the same asymmetry
   (Huber / delta tends to the absolute loss as delta -> 0). This is the fast, robust multi-start part.
   Then a continuation: the same fits with thresholds 10x smaller each time (1e-4, 1e-5, 1e-6), each from
   the previous end points, so the end points lie within O(delta) of the vertex.
2. **Vertex step** (:func:`polish`). The m residuals closest to zero form the active set Z; Newton's method on
   ``r_Z(x) = 0`` lands on the vertex. (When fewer than m residuals are zero at the smooth end point, the
   optimum lies on a piece where F is smooth along the other directions: Newton's method on the Lagrange
   conditions of "minimise the smooth terms subject to r_Z = 0" finds it, with the same multiplier check
   and a second-order check on the tangent space.) There, the first-order conditions of the non-smooth
   problem are checked exactly: with ``v = J_Z^-T g`` (g the gradient of the terms outside Z), optimality is
   ``-a w_j <= v_j <= b w_j`` for every j in Z, and for a parameter held on a bound, the directional
   derivative into the box is non-negative. When some j violates it, leaving its kink in the violating
   direction lowers F: a simplex-like exchange (the line along which the other active residuals stay zero,
   to the first breakpoint where the objective's slope turns non-negative) brings in a new residual.
3. The reported objective is the exact one, evaluated at the final point.

Derivatives of the residuals come from complex steps through the program (exact to rounding).
"""

from __future__ import annotations

import itertools

import numpy as np

from .compiler import program_predict
from .losses import rounding_residual

__all__ = ["polish", "slopes", "SMOOTH_DELTA"]

# Huber threshold of the smooth stage, in residual units (log residuals; linear ones are scaled by the
# median observed loss).
SMOOTH_DELTA = 1e-3
# The thresholds of the continuation that follows, each fit starting where the previous one ended.
CONTINUATION = (1e-4, 1e-5, 1e-6)


def slopes(spec) -> tuple[float, float]:
    """(a, b): rho(r) = a r for r > 0 and -b r for r < 0."""
    if spec.name == "quantile":
        return 1.0 - float(spec.param), float(spec.param)
    return 1.0, 1.0


def _full_complex(con, X: np.ndarray) -> np.ndarray:
    out = np.empty(X.shape[:-1] + (len(con.free_index),), dtype=X.dtype)
    for k, j in enumerate(con.free_index):
        out[..., k] = X[..., j] if j >= 0 else con.fixed_value[k]
    return out


def residuals(law, con, ds, spec, x: np.ndarray) -> np.ndarray:
    logp = np.real(program_predict(law.program, ds.features, con.full(x)[None, :]))[0]
    with np.errstate(all="ignore"):
        return spec.residuals(logp, ds)


def jacobian(law, con, ds, spec, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (n,) and their Jacobian (n, n_free) with respect to the free parameters."""
    nf = con.n_free
    h = 1e-20
    X = np.repeat(x[None, :].astype(complex), nf, axis=0)
    X[np.arange(nf), np.arange(nf)] += 1j * h
    with np.errstate(all="ignore"):
        pred = program_predict(law.program, ds.features, _full_complex(con, X))  # (nf, n)
        dlog = np.imag(pred) / h
        r = spec.residuals(np.real(pred[0]), ds)  # the real part is the prediction at x (to rounding)
        if spec.residual == "linear":
            dlog = dlog * (r + ds.raw_loss)[None, :]  # d L_hat = L_hat d log L_hat
    return r, np.ascontiguousarray(dlog.T)


def _perfect(r, act, floor) -> bool:
    """Whether every residual is rounding (``floor``: losses.rounding_residual of the target): then the fit is
    perfect, and F (>= 0) is at its global minimum."""
    return bool(np.all(np.abs(r[act]) <= floor[act]))


def _objective(r, w, a, b) -> float:
    with np.errstate(all="ignore"):
        return float(np.sum(w * np.where(r > 0, a * r, -b * r)))


def _newton(law, con, ds, spec, x, Z, mv, iters: int = 40):
    """Solve r_Z(x) = 0 over the movable parameters. Returns (x, r, J) or None.

    Stops when the step is negligible, or when it no longer shrinks once below 1e-8 (relative): Newton's
    quadratic convergence has reached rounding level, and further steps only wander within it."""
    xs = x.copy()
    prev = np.inf
    for _ in range(iters):
        r, J = jacobian(law, con, ds, spec, xs)
        if not (np.all(np.isfinite(r[Z])) and np.all(np.isfinite(J[Z]))):
            return None
        JZ = J[np.ix_(Z, mv)]
        try:
            dx = np.linalg.solve(JZ, -r[Z])
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(dx)):
            return None
        step = float(np.max(np.abs(dx) / (1.0 + np.abs(xs[mv]))))
        if step < 1e-8 and step > 0.25 * prev:  # stalled at rounding level: xs is the solution
            return xs, r, J
        prev = step
        xs[mv] += dx
        if np.any(xs < con.lower) or np.any(xs > con.upper):
            return None
        if np.all(np.abs(dx) <= 4e-16 * (1.0 + np.abs(xs[mv]))):
            break
    r, J = jacobian(law, con, ds, spec, xs)
    return xs, r, J


def _lagrangian_grad(law, con, ds, spec, w, x, Z, lam, sgn):
    r, J = jacobian(law, con, ds, spec, x)
    c = w * sgn
    c[Z] = lam
    with np.errstate(all="ignore"):
        return J.T @ c, r, J


def _manifold(law, con, ds, spec, w, x0, Z, mv, held, tiny, f0, tol, iters: int = 30):
    """The optimum where the k < m residuals Z are zero and F is smooth along the rest: Newton on the
    Lagrange conditions (Hessian of the Lagrangian by central differences of the exact Jacobian), then the
    multiplier and second-order checks. Returns (x, fun, ok)."""
    a, b = slopes(spec)
    act = w > 0
    x = x0.copy()
    r, J = jacobian(law, con, ds, spec, x)
    sgn = np.where(r > 0, a, -b) * act
    out = act.copy()
    out[Z] = False
    g = J.T @ np.where(out, w * sgn, 0.0)
    JZ = J[np.ix_(Z, mv)]
    lam = np.linalg.lstsq(JZ.T, -g[mv], rcond=None)[0]
    m, k = int(mv.sum()), len(Z)
    for _ in range(iters):
        G, r, J = _lagrangian_grad(law, con, ds, spec, np.where(out, w, 0.0), x, Z, lam, sgn)
        H = np.empty((m, m))
        idx = np.flatnonzero(mv)
        for col, j in enumerate(idx):
            hj = 1e-6 * (1.0 + abs(x[j]))
            xp, xm = x.copy(), x.copy()
            xp[j] += hj
            xm[j] -= hj
            gp = _lagrangian_grad(law, con, ds, spec, np.where(out, w, 0.0), xp, Z, lam, sgn)[0]
            gm = _lagrangian_grad(law, con, ds, spec, np.where(out, w, 0.0), xm, Z, lam, sgn)[0]
            with np.errstate(all="ignore"):
                H[:, col] = (gp[mv] - gm[mv]) / (2 * hj)
        if not np.all(np.isfinite(H)):
            return x0, f0, False
        H = 0.5 * (H + H.T)
        JZ = J[np.ix_(Z, mv)]
        K = np.block([[H, JZ.T], [JZ, np.zeros((k, k))]])
        rhs = -np.concatenate([G[mv], r[Z]])
        try:
            step = np.linalg.solve(K, rhs)
        except np.linalg.LinAlgError:
            return x0, f0, False
        if not np.all(np.isfinite(step)):
            return x0, f0, False
        x = x.copy()
        x[mv] += step[:m]
        lam = lam + step[m:]
        if np.any(x < con.lower) or np.any(x > con.upper):
            return x0, f0, False
        if np.all(np.abs(step[:m]) <= 1e-14 * (1.0 + np.abs(x[mv]))):
            break
    r, J = jacobian(law, con, ds, spec, x)
    if np.any((r[out] > 0) != (sgn[out] > 0)):  # a residual off its kink changed sign: not this piece
        return x0, f0, False
    f = _objective(r[act], w[act], a, b)
    if not np.isfinite(f) or f > f0 * (1 + 1e-12) + 1e-300:
        return x0, f0, False
    ratio = lam / w[Z]
    ok = bool(np.all(ratio >= -b - tol) and np.all(ratio <= a + tol))
    # second order: the Lagrangian's Hessian on the tangent space of {r_Z = 0} is positive semidefinite
    JZ = J[np.ix_(Z, mv)]
    _, sv, vt = np.linalg.svd(JZ)
    null = vt[k:].T
    if null.size:
        ev = np.linalg.eigvalsh(null.T @ H @ null)
        ok = ok and bool(ev.min() >= -1e-8 * max(1.0, abs(ev).max()))
    if held.any():
        G = _lagrangian_grad(law, con, ds, spec, np.where(out, w, 0.0), x, Z, lam, sgn)[0]
        inward = np.where(x[held] <= con.lower[held] + tiny[held], 1.0, -1.0)
        ok = ok and bool(np.all(G[held] * inward >= -tol * (1.0 + np.abs(G).max())))
    return x, f, ok


def polish(law, con, ds, spec, w: np.ndarray, x0: np.ndarray, max_exchanges: int = 60, tol: float = 1e-9):
    """The vertex nearest ``x0`` that satisfies the non-smooth optimality conditions, by Newton's method and
    simplex-like exchanges. Returns ``(x, fun, ok)``: ``ok`` is False when no verified vertex was found
    (then x is ``x0`` or the best point met, and fun its exact objective)."""
    a, b = slopes(spec)
    act = w > 0
    x0 = np.asarray(x0, dtype=float)
    r0 = residuals(law, con, ds, spec, x0)
    floor = rounding_residual(spec.target(ds))
    best_x, best_f = x0, _objective(r0[act], w[act], a, b)
    if not np.isfinite(best_f):
        return best_x, best_f, False
    span = np.maximum(np.abs(con.lower), np.abs(con.upper))
    tiny = 1e-12 * np.where(np.isfinite(span), np.maximum(span, 1.0), 1.0)
    held = (x0 <= con.lower + tiny) | (x0 >= con.upper - tiny)
    mv = ~held
    m = int(mv.sum())
    cand = np.flatnonzero(act)
    if m == 0 or cand.size < m:
        return best_x, best_f, _perfect(r0, act, floor)
    order = cand[np.argsort(np.abs(r0[cand]), kind="stable")]
    unit = 1.0 if spec.residual == "log" else float(np.median(np.abs(ds.raw_loss)))
    k = int(np.sum(np.abs(r0[order[:m]]) <= 10 * CONTINUATION[-1] * unit))
    # Which residuals are zero at the optimum is read off the smooth end point; where that is ambiguous (a
    # residual near the threshold, more near-zero residuals than parameters), the next candidates are tried:
    # the first point that passes the exact optimality check is the answer.
    attempts: list = []
    if 0 < k < m:  # fewer zero residuals than free parameters: smooth in the other directions
        attempts.append(("manifold", order[:k]))
    attempts.append(("vertex", order[:m]))
    if k == m and m > 1:
        attempts.append(("manifold", order[:m - 1]))
    pool = order[:min(cand.size, m + 2)]
    for combo in itertools.combinations(range(len(pool)), m):
        z = pool[list(combo)]
        if not np.array_equal(z, order[:m]):
            attempts.append(("vertex", z))
    for kind, z in attempts:
        if kind == "manifold":
            x, f, ok = _manifold(law, con, ds, spec, w, x0, z, mv, held, tiny, best_f, tol)
        else:
            x, f, ok = _vertex(law, con, ds, spec, w, x0, z, mv, held, tiny, best_f, tol, max_exchanges, floor)
        if ok:
            return x, f, True
    # every residual at rounding level (a perfect fit, e.g. noise-free data): F (>= 0) is at its minimum even
    # where no vertex step got further
    return x0, best_f, _perfect(r0, act, floor)


def _vertex(law, con, ds, spec, w, x0, Z, mv, held, tiny, best_f, tol, max_exchanges, floor):
    """Newton's method on r_Z = 0 and simplex-like exchanges until the multipliers pass. (x, fun, ok)."""
    a, b = slopes(spec)
    act = w > 0
    m = int(mv.sum())
    best_x = x0
    x = x0
    for _ in range(max_exchanges):
        res = _newton(law, con, ds, spec, x, Z, mv)
        if res is None:
            return best_x, best_f, False
        xs, r, J = res
        f = _objective(r[act], w[act], a, b)
        if _perfect(r, act, floor):  # a perfect fit: a degenerate vertex, F at its minimum
            return (xs, f, True) if f <= best_f else (best_x, best_f, True)
        if not np.isfinite(f) or f > best_f * (1 + 1e-12) + 1e-300:
            return best_x, best_f, False
        best_x, best_f = xs, f
        out = act.copy()
        out[Z] = False
        s = np.where(r[out] > 0, a, -b) * w[out]
        g = J[out].T @ s  # gradient of the terms off their kinks, over all free parameters
        JZ = J[np.ix_(Z, mv)]
        try:
            v = np.linalg.solve(JZ.T, g[mv])
        except np.linalg.LinAlgError:
            return best_x, best_f, False
        lam = v / w[Z]
        scale = 1.0 + np.abs(lam)
        viol_hi = lam - b  # > 0: moving r_j negative lowers F
        viol_lo = -a - lam  # > 0: moving r_j positive lowers F
        # Parameters on a bound: the derivative into the box, with the active residuals kept at zero.
        bound_ok = True
        if held.any():
            # d F along e_k (held k), adjusting the movable ones so r_Z stays 0: g_k - v . J_Zk
            gk = g[held] - J[np.ix_(Z, held)].T @ v
            inward = np.where(xs[held] <= con.lower[held] + tiny[held], 1.0, -1.0)
            bound_ok = bool(np.all(gk * inward >= -tol * (1.0 + np.abs(g).max())))
        worst = np.maximum(viol_hi, viol_lo) / scale
        j = int(np.argmax(worst))
        if worst[j] <= tol:
            return xs, f, bound_ok
        # Exchange: leave the kink of Z[j] in the descending direction (t = +-1 on r_j, 0 on the others).
        t = np.zeros(m)
        t[j] = 1.0 if viol_lo[j] > 0 else -1.0
        d = np.zeros(con.n_free)
        try:
            d[mv] = np.linalg.solve(JZ, t)
        except np.linalg.LinAlgError:
            return best_x, best_f, False
        slope = float(g @ d) + w[Z[j]] * (a if t[j] > 0 else b)  # < 0
        idx = np.flatnonzero(out)
        rd = J[idx] @ d
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = -r[idx] / rd
        hit = np.isfinite(alpha) & (alpha > 0)
        if not hit.any():
            return best_x, best_f, False
        order = np.argsort(alpha[hit], kind="stable")
        ids, rds = idx[hit][order], rd[hit][order]
        enter = None
        for i, rdi in zip(ids, rds):
            slope += w[i] * (a + b) * abs(rdi)
            if slope >= 0:
                enter = int(i)
                break
        if enter is None:
            enter = int(ids[-1])
        Z = Z.copy()
        Z[j] = enter
        x = xs
    return best_x, best_f, False
