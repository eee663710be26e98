"""The minimum of each budget's loss profile, for many resamples at once: least-squares polynomials
(parabola, cubic) as batched weighted normal equations, the modified-Akima interpolant, and the least-squares
power laws in C fitted through the minima."""

from __future__ import annotations

import numpy as np

SHAPES = ("parabola", "cubic", "interpolant")
_NEED = {"parabola": 3, "cubic": 4, "interpolant": 3}  # distinct model sizes each shape needs
_DEGREE = {"parabola": 2, "cubic": 3}


def _poly_minima(x, y, present, w, deg):
    """Minima of weighted least-squares polynomials of degree ``deg`` in x, for R weight rows at once.

    x, y : (G, m) padded sizes (log N, scaled to [-1, 1] per budget) and losses; present : (G, m) real entries.
    w : (R, G, m) weights (counts), zero on padding. Returns x_min, y_min (R, G), status (R, G) with
    0 ok, 1 too few distinct sizes, 2 no minimum, 3 minimum outside the sampled range; and coef (R, G, deg+1).
    """
    p = deg + 1
    G, m = x.shape
    R = w.shape[0]
    # weighted normal equations of every (resample, budget): the Gram matrix is a Hankel matrix of the moments
    # S_k = sum w x^k (k < 2p - 1) and the right-hand side is T_k = sum w y x^k (k < p): one contraction over
    # the runs gives them all (numpy's own loops; BLAS's threads only add overhead at these sizes)
    powers = x[..., None] ** np.arange(2 * p - 1)  # (G, m, 2p-1)
    basis = np.concatenate([powers, powers[..., :p] * np.where(present, y, 0.0)[..., None]], axis=-1)
    mom = np.einsum("rgm,gmk->rgk", w, basis)
    hankel = np.arange(p)[:, None] + np.arange(p)[None, :]
    M = mom[..., hankel]  # (R, G, p, p)
    rhs = mom[..., 2 * p - 1:]  # (R, G, p)
    # distinct sizes drawn: runs of equal size are contiguous (x sorted within each budget) and form a segment
    first = np.ones_like(present)
    first[:, 1:] = x[:, 1:] != x[:, :-1]
    starts = np.flatnonzero(first.ravel())
    seg_drawn = np.logical_or.reduceat((w > 0).reshape(R, G * m), starts, axis=1)  # (R, segments)
    seg_budget = starts // m
    distinct = np.add.reduceat(seg_drawn, np.searchsorted(seg_budget, np.arange(G)), axis=1)  # (R, G)
    enough = distinct >= p
    eye = np.eye(p)
    M = np.where(enough[..., None, None], M, eye)
    rhs = np.where(enough[..., None], rhs, 0.0)
    # rescale to unit diagonal (the Gram matrix of 1, x, x^2, x^3 on [-1, 1] is mildly ill-conditioned)
    dscale = 1.0 / np.sqrt(np.einsum("...ii->...i", M))
    coef = np.linalg.solve(M * dscale[..., :, None] * dscale[..., None, :], (rhs * dscale)[..., None])[..., 0]
    coef = coef * dscale
    with np.errstate(all="ignore"):
        c1, c2 = coef[..., 1], coef[..., 2]
        if deg == 2:
            has_min = c2 > 0
            xm = -c1 / (2 * c2)
        else:
            c3 = coef[..., 3]
            disc = c2 * c2 - 3 * c1 * c3
            sq = np.sqrt(np.maximum(disc, 0.0))
            # the root of the derivative with positive curvature, in the form that is stable for c3 -> 0
            xm = np.where(c2 >= 0, -c1 / (c2 + sq), (sq - c2) / (3 * c3))
            has_min = disc > 0
        has_min &= np.isfinite(xm)
        ym = np.polynomial.polynomial.polyval(np.where(has_min, xm, 0.0), np.moveaxis(coef, -1, 0), tensor=False)
    xs = np.where(w > 0, x[None], np.inf).min(-1)
    xl = np.where(w > 0, x[None], -np.inf).max(-1)
    inside = (xm > xs) & (xm < xl)
    status = np.where(~enough, 1, np.where(~has_min, 2, np.where(~inside, 3, 0)))
    return xm, ym, status, coef


def _makima_slopes(x, y):
    """Modified Akima slopes at the knots (x strictly increasing, at least 3 knots)."""
    m = np.diff(y) / np.diff(x)
    mm = np.concatenate([[3 * m[0] - 2 * m[1], 2 * m[0] - m[1]], m, [2 * m[-1] - m[-2], 3 * m[-1] - 2 * m[-2]]])
    dm = np.abs(np.diff(mm))
    am = np.abs(mm[1:] + mm[:-1]) / 2
    w1 = dm[2:] + am[2:]  # weight of the left slope m_{i-1}
    w2 = dm[:-2] + am[:-2]  # weight of the right slope m_i
    left, right = mm[1:-2], mm[2:-1]
    den = w1 + w2
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(den > 0, (w1 * left + w2 * right) / np.where(den > 0, den, 1.0), 0.5 * (left + right))
    return d


def _hermite_eval(x, y, d, t):
    t = np.asarray(t, dtype=float)
    i = np.clip(np.searchsorted(x, t, side="right") - 1, 0, x.size - 2)
    h = x[i + 1] - x[i]
    s = t - x[i]
    m = (y[i + 1] - y[i]) / h
    c2 = (3 * m - 2 * d[i] - d[i + 1]) / h
    c3 = (d[i] + d[i + 1] - 2 * m) / h**2
    out = y[i] + s * (d[i] + s * (c2 + s * c3))
    return np.where((t >= x[0]) & (t <= x[-1]), out, np.nan)


def _interp_minimum(x, y):
    """Minimum of the modified-Akima interpolant through (x, y): (x_min, y_min, status, knots) with status
    as in :func:`_poly_minima`; x may repeat (equal sizes are averaged)."""
    if x.size >= 3 and np.all(x[1:] > x[:-1]):  # sorted and distinct (the usual case)
        ux, uy = x, y
    else:
        ux, inv = np.unique(x, return_inverse=True)
        if ux.size < 3:
            return np.nan, np.nan, 1, None
        uy = np.bincount(inv, weights=y) / np.bincount(inv)
    d = _makima_slopes(ux, uy)
    h = np.diff(ux)
    m = np.diff(uy) / h
    c2 = (3 * m - 2 * d[:-1] - d[1:]) / h
    c3 = (d[:-1] + d[1:] - 2 * m) / h**2
    with np.errstate(all="ignore"):
        disc = c2 * c2 - 3 * d[:-1] * c3
        sq = np.sqrt(np.maximum(disc, 0.0))
        s = np.where(c2 >= 0, -d[:-1] / (c2 + sq), (sq - c2) / (3 * c3))
        ok = (disc >= 0) & np.isfinite(s) & (s > 0) & (s < h)
        s = np.where(ok, s, 0.0)
    cand_x = np.concatenate([ux, (ux[:-1] + s)[ok]])
    seg_y = uy[:-1] + s * (d[:-1] + s * (c2 + s * c3))
    cand_y = np.concatenate([uy, seg_y[ok]])
    j = int(np.argmin(cand_y))
    xm, ym = float(cand_x[j]), float(cand_y[j])
    status = 3 if (xm <= ux[0] or xm >= ux[-1]) else 0
    return xm, ym, status, (ux, uy, d)


_STATUS = {0: "ok", 1: "too_few_runs", 2: "unbracketed", 3: "unbracketed"}


def _budget_minima(shape, xg, yg, wrows):
    """Minima per resample and budget. xg, yg: lists of per-budget arrays (x = log N sorted); wrows: list of
    (R, n_g) weights. Returns x_min, y_min, status (R, G) and the full-data profiles when R == 1."""
    G = len(xg)
    R = wrows[0].shape[0] if G else 0
    if shape == "interpolant":
        xm = np.full((R, G), np.nan)
        ym = np.full((R, G), np.nan)
        st = np.ones((R, G), dtype=int)
        profs = [None] * G
        for g in range(G):
            for r in range(R):
                sel = wrows[g][r] > 0
                a, b, s, knots = _interp_minimum(xg[g][sel], yg[g][sel])
                xm[r, g], ym[r, g], st[r, g] = a, b, s
                if R == 1 and knots is not None:
                    profs[g] = {"kind": "interp", "x": knots[0], "y": knots[1], "d": knots[2]}
        return xm, ym, st, profs
    deg = _DEGREE[shape]
    m = max(v.size for v in xg)
    mid = np.array([0.5 * (v.min() + v.max()) for v in xg])
    half = np.array([0.5 * (v.max() - v.min()) for v in xg])
    half = np.where(half > 0, half, 1.0)
    X = np.zeros((G, m))
    Y = np.zeros((G, m))
    P = np.zeros((G, m), dtype=bool)
    W = np.zeros((R, G, m))
    for g in range(G):
        k = xg[g].size
        X[g, :k] = (xg[g] - mid[g]) / half[g]
        X[g, k:] = X[g, k - 1]  # padding repeats the last size (weight 0), keeping x sorted
        Y[g, :k] = yg[g]
        P[g, :k] = True
        W[:, g, :k] = wrows[g]
    xs, ym, st, coef = _poly_minima(X, Y, P, W, deg)
    xm = mid[None, :] + half[None, :] * xs
    profs = [{"kind": "poly", "mid": mid[g], "half": half[g], "coef": coef[0, g]} for g in range(G)] if R == 1 else []
    return xm, ym, st, profs


def _power_law(logC, logY, mask):
    """Least-squares lines logY = c + s logC for each row of mask (R, K): (slope, intercept) arrays (R,)."""
    w = mask.astype(float)
    n = w.sum(-1)
    with np.errstate(all="ignore"):
        mx = (w * logC).sum(-1) / n
        my = (w * np.where(mask, logY, 0.0)).sum(-1) / n
        dx = np.where(mask, logC - mx[:, None], 0.0)
        dy = np.where(mask, logY - my[:, None], 0.0)
        sxx = (dx * dx).sum(-1)
        slope = (dx * dy).sum(-1) / sxx
        icpt = my - slope * mx
    bad = (n < 2) | ~(sxx > 0)
    return np.where(bad, np.nan, slope), np.where(bad, np.nan, icpt)
