"""The trust-region Newton solver of cpp/src/solver.cpp (and the small dense linear algebra of
cpp/include/lawfit/smallmat.hpp) as numba CUDA device functions: one GPU thread runs one fit.

This is a line-by-line port; comments name what differs. Every ``std::min``/``std::max`` is written out as the
comparison the C++ standard library makes (``std::max(a, b)`` is ``b if a < b else a``), so NaN propagates
the same way. Local arrays are sized by the law's parameter count (a compile-time constant of each kernel),
not by kMaxParams.

Under numba's CUDA simulator these functions run as plain Python on numpy scalars; the math functions are
then numpy's (IEEE results with inf/nan where Python's ``math`` would raise), see ``_cuda_kernels``.
"""

from __future__ import annotations

import math

from numba import cuda, float64, int32

from .. import _core
from ._cuda_math import SQRT, device

# lawfit::Status and the solver's constants, from the core's tables
CONVERGED, AT_BOUND, MAX_ITER, STEP_FAILED, NON_FINITE, NOT_RUN = (
    _core.STATUS[k] for k in ("CONVERGED", "CONVERGED_AT_BOUND", "MAX_ITERATIONS", "STEP_FAILED", "NON_FINITE",
                              "NOT_RUN"))
EPS = 2.220446049250313e-16  # std::numeric_limits<double>::epsilon()
BIG = 1.7976931348623157e308  # std::numeric_limits<double>::max(): the trust radius stays finite
IRLS_RHO, IRLS_SHRINK, IRLS_MIN = (_core.SOLVER[k] for k in ("irls_rho", "irls_shrink", "irls_min"))


@device
def clip(v, lo, hi):
    """std::min(std::max(v, lo), hi)."""
    t = lo if v < lo else v
    return hi if hi < t else t


@device
def all_finite(n, a):
    for i in range(n):
        if not math.isfinite(a[i]):
            return False
    return True


@device
def norm2(n, a):
    """Euclidean norm; rescaled when the plain sum of squares overflows."""
    s = 0.0
    for i in range(n):
        s += a[i] * a[i]
    if math.isfinite(s):
        return SQRT(s)
    m = 0.0
    for i in range(n):
        if m < abs(a[i]):
            m = abs(a[i])
    if not math.isfinite(m):
        return m
    s = 0.0
    for i in range(n):
        s += (a[i] / m) * (a[i] / m)
    return m * SQRT(s)


@device
def predicted(n, g, H, s):
    """Model decrease -(g.s + s.H.s / 2)."""
    lin = 0.0
    quad = 0.0
    for i in range(n):
        lin += g[i] * s[i]
        hs = 0.0
        for j in range(n):
            hs += H[i * n + j] * s[j]
        quad += s[i] * hs
    return -(lin + 0.5 * quad)


@device
def jacobi_eigen(n, A, lam, V):
    """Cyclic Jacobi: A (n x n symmetric, row-major) is overwritten; lam[k] eigenvalues, column k of V
    (V[i * n + k]) the unit eigenvector."""
    for i in range(n):
        for j in range(n):
            V[i * n + j] = 1.0 if i == j else 0.0
    for _sweep in range(60):
        off = 0.0
        diag = 0.0
        for i in range(n):
            diag += A[i * n + i] * A[i * n + i]
            for j in range(i + 1, n):
                off += A[i * n + j] * A[i * n + j]
        if not (off > 1e-28 * diag) or not math.isfinite(off):
            break
        for p in range(n):
            for q in range(p + 1, n):
                apq = A[p * n + q]
                if apq == 0.0:
                    continue
                app = A[p * n + p]
                aqq = A[q * n + q]
                d = aqq - app
                e = 2.0 * apq
                r = SQRT(d * d + e * e)
                h = abs(d) + r
                if r <= 1e150 and h * r > 1e-290:
                    inv = 1.0 / SQRT(2.0 * r * h)
                    c = h * inv
                    s = (e if d >= 0 else -e) * inv
                else:
                    theta = d / e
                    sgn = 1.0 if theta >= 0 else -1.0
                    t = sgn / (abs(theta) + SQRT(theta * theta + 1.0))
                    c = 1.0 / SQRT(t * t + 1.0)
                    s = t * c
                for k in range(n):  # A <- J^T A J
                    akp = A[k * n + p]
                    akq = A[k * n + q]
                    A[k * n + p] = c * akp - s * akq
                    A[k * n + q] = s * akp + c * akq
                for k in range(n):
                    apk = A[p * n + k]
                    aqk = A[q * n + k]
                    A[p * n + k] = c * apk - s * aqk
                    A[q * n + k] = s * apk + c * aqk
                A[p * n + q] = 0.0
                A[q * n + p] = 0.0
                for k in range(n):
                    vkp = V[k * n + p]
                    vkq = V[k * n + q]
                    V[k * n + p] = c * vkp - s * vkq
                    V[k * n + q] = s * vkp + c * vkq
    for k in range(n):
        lam[k] = A[k * n + k]


@device
def cholesky(n, A):
    """A = L L^T in place (lower triangle, row-major). False if not numerically positive definite."""
    dmax = 0.0
    for i in range(n):
        d = A[i * n + i]
        if d > dmax:  # std::fmax(dmax, d): a NaN diagonal is ignored
            dmax = d
    tol = 1e-13 * dmax
    if not (dmax > 0.0):
        return False
    for j in range(n):
        d = A[j * n + j]
        for k in range(j):
            d -= A[j * n + k] * A[j * n + k]
        if not (d > tol):
            return False
        d = SQRT(d)
        A[j * n + j] = d
        for i in range(j + 1, n):
            v = A[i * n + j]
            for k in range(j):
                v -= A[i * n + k] * A[j * n + k]
            A[i * n + j] = v / d
    return True


@device
def cholesky_solve(n, L, b):
    for i in range(n):
        v = b[i]
        for k in range(i):
            v -= L[i * n + k] * b[k]
        b[i] = v / L[i * n + i]
    for i in range(n - 1, -1, -1):
        v = b[i]
        for k in range(i + 1, n):
            v -= L[k * n + i] * b[k]
        b[i] = v / L[i * n + i]


@device
def _znorm(n, lam, ghat, mu):
    s2 = 0.0
    for k in range(n):
        d = lam[k] + mu
        if d > 0.0:
            s2 += (ghat[k] / d) * (ghat[k] / d)
        elif ghat[k] != 0.0:
            return math.inf
    return SQRT(s2)


@device
def tr_subproblem(n, lam, ghat, delta, z):
    """min ghat.z + z.diag(lam).z / 2 subject to |z| <= delta, in the eigenbasis. Returns True when the
    unconstrained minimiser is inside (a Newton step)."""
    lmin = lam[0]
    lmax = abs(lam[0])
    for k in range(1, n):
        if lam[k] < lmin:
            lmin = lam[k]
        if lmax < abs(lam[k]):
            lmax = abs(lam[k])
    tol = 64.0 * EPS * lmax  # eigenvalues below this are treated as zero curvature
    gn = 0.0
    for k in range(n):
        gn += ghat[k] * ghat[k]
    gn = SQRT(gn)
    if lmin > tol:
        s2 = 0.0
        for k in range(n):
            z[k] = -ghat[k] / lam[k]
            s2 += z[k] * z[k]
        if SQRT(s2) <= delta:
            return True
    # Boundary solution: mu > max(0, -lmin) with |z(mu)| = delta, z_k(mu) = -ghat_k / (lam_k + mu).
    mu_lo0 = -lmin + tol
    mu_lo0 = mu_lo0 if 0.0 < mu_lo0 else 0.0  # std::max(0.0, -lmin + tol)
    lo = mu_lo0
    hi = mu_lo0 + gn / delta + tol
    if _znorm(n, lam, ghat, lo) <= delta:
        # Hard case (or zero gradient along the most negative curvature): step to the boundary along it.
        kmin = 0
        for k in range(1, n):
            if lam[k] < lam[kmin]:
                kmin = k
        s2 = 0.0
        for k in range(n):
            d = lam[k] + lo
            z[k] = -ghat[k] / d if (d > 0.0 and k != kmin) else 0.0
            s2 += z[k] * z[k]
        rem = delta * delta - s2
        tau = SQRT(rem if 0.0 < rem else 0.0)
        z[kmin] += -tau if ghat[kmin] > 0 else tau
        return False
    # Safeguarded Newton on phi(mu) = 1/|z(mu)| - 1/delta (increasing, nearly linear in mu).
    mu = hi
    for _it in range(60):
        s2 = 0.0
        ds2 = 0.0  # |z|^2 and d|z|^2/dmu
        for k in range(n):
            d = lam[k] + mu
            if d <= 0.0:
                continue
            zk = ghat[k] / d
            s2 += zk * zk
            ds2 += -2.0 * zk * zk / d
        zn = SQRT(s2)
        phi = 1.0 / zn - 1.0 / delta
        if phi > 0:  # step too short: mu too large
            hi = mu
        else:
            lo = mu
        if abs(zn - delta) <= 1e-3 * delta:
            break
        dphi = -0.5 * ds2 / (s2 * zn)
        nxt = mu - phi / dphi
        if not (nxt > lo and nxt < hi):
            nxt = 0.5 * (lo + hi)
        mu = nxt
    for k in range(n):
        d = lam[k] + mu
        z[k] = -ghat[k] / d if d > 0.0 else 0.0
    return False


@device
def better(st_a, f_a, s_a, st_b, f_b, s_b):
    """The best-start order of batch.cpp: success first, then finite and lower objective, then index."""
    ok_a = st_a <= AT_BOUND
    ok_b = st_b <= AT_BOUND
    if ok_a != ok_b:
        return ok_a
    fin_a = math.isfinite(f_a)
    fin_b = math.isfinite(f_b)
    if fin_a != fin_b:
        return fin_a
    if fin_a and f_a != f_b:
        return f_a < f_b
    return s_a < s_b


def make_solve(objective, NP):
    """The solver for one law: ``objective`` is its generated device function, NP its parameter count
    (which bounds the number of free parameters and sizes the local arrays)."""
    NPP = NP * NP

    # A real (simulated) device function even under the simulator, where it swaps in the fake `cuda` module
    # that provides cuda.local.array; the helpers above are plain functions there.
    @cuda.jit(device=True)
    def solve(x, fi, fv, n, lo, hi, D, feat, target, pidx, pw, q0, q1, hdelta, asym, log_z, max_iter, xtol,
              ftol, radius0, irls, switch_rtol, floor):
        """One fit from x (clipped into the bounds; the solution on return). ``floor``: the objective of a
        perfect fit as rounding leaves it (Evaluator::objective_floor).
        Returns (status, nit, nfev, fun, at_bound mask)."""
        g = cuda.local.array(NP, float64)
        H = cuda.local.array(NPP, float64)
        xt = cuda.local.array(NP, float64)
        gt = cuda.local.array(NP, float64)
        Ht = cuda.local.array(NPP, float64)
        s = cuda.local.array(NP, float64)
        sp = cuda.local.array(NP, float64)
        st = cuda.local.array(NP, float64)
        idx = cuda.local.array(NP, int32)
        M = cuda.local.array(NPP, float64)  # the Cholesky factor or the matrix Jacobi diagonalises
        V = cuda.local.array(NPP, float64)
        lam = cuda.local.array(NP, float64)
        v1 = cuda.local.array(NP, float64)  # the Newton step, then the gradient in the eigenbasis
        z = cuda.local.array(NP, float64)
        for j in range(n):
            x[j] = clip(x[j], lo[j], hi[j])

        curv = irls  # extra Huber curvature of the next evaluations (phase 1 while > 0)
        hcurv = curv  # ... and the one the current H was computed with
        f, fs = objective(x, fi, fv, n, feat, target, pidx, pw, q0, q1, curv * hdelta, hdelta, asym, log_z, g, H)
        nfev = 1
        nit = 0
        if not math.isfinite(f) or not all_finite(n, g) or not all_finite(n * n, H):
            return NON_FINITE, nit, nfev, f, 0
        xmax = 0.0
        for j in range(n):
            if xmax < abs(x[j]):
                xmax = abs(x[j])
        delta = radius0 * (xmax if 1.0 < xmax else 1.0)
        status = MAX_ITER
        # In solver.cpp two lambdas, to_exact() and stationary(), leave phase 1 (re-evaluate the exact Hessian
        # at x and go on) or, in phase 2, declare convergence. Here every call site sets `stat` and jumps:
        # stat 0 = go on with the next iteration, 1 = stop with `status`.
        for it in range(max_iter):
            nit = it + 1
            # Free set: variables not held on a bound by the gradient.
            m = 0
            for j in range(n):
                held = (x[j] <= lo[j] and g[j] > 0.0) or (x[j] >= hi[j] and g[j] < 0.0)
                if not held:
                    idx[m] = j
                    m += 1
            gzero = True
            for a in range(m):
                gzero = gzero and g[idx[a]] == 0.0
            if m == 0 or gzero:
                status = CONVERGED
                break
            # Fast path: a positive definite free Hessian whose Newton step lies inside the trust region.
            interior = False
            for a in range(m):
                for b in range(m):
                    M[a * m + b] = H[idx[a] * n + idx[b]]
            if cholesky(m, M):
                for a in range(m):
                    v1[a] = -g[idx[a]]
                cholesky_solve(m, M, v1)
                s2 = 0.0
                for a in range(m):
                    ds = D[idx[a]] * v1[a]
                    s2 += ds * ds
                if SQRT(s2) <= delta:
                    interior = True
                    for j in range(n):
                        s[j] = 0.0
                    for a in range(m):
                        s[idx[a]] = v1[a]
            if not interior:
                # In the scaled variables y = D s (solver.cpp; the decomposition is not reused after a
                # rejected step here: the result is the same).
                for a in range(m):
                    for b in range(m):
                        M[a * m + b] = H[idx[a] * n + idx[b]] / (D[idx[a]] * D[idx[b]])
                jacobi_eigen(m, M, lam, V)
                for k in range(m):
                    t = 0.0
                    for a in range(m):
                        t += V[a * m + k] * (g[idx[a]] / D[idx[a]])
                    v1[k] = t
                interior = tr_subproblem(m, lam, v1, delta, z)
                for j in range(n):
                    s[j] = 0.0
                for a in range(m):
                    t = 0.0
                    for k in range(m):
                        t += V[a * m + k] * z[k]
                    s[idx[a]] = t / D[idx[a]]
            fscale = fs
            go_on = False  # a `continue` of the C++ loop taken from inside a block below
            stop = False  # a `break`
            if interior:
                pred_newton = predicted(n, g, H, s)
                if hcurv > 0.0:
                    if pred_newton <= switch_rtol * fscale:
                        # stationary() in phase 1: to the exact Hessian.
                        curv = 0.0
                        hcurv = 0.0
                        f, fs = objective(x, fi, fv, n, feat, target, pidx, pw, q0, q1, 0.0, hdelta, asym,
                                          log_z, g, H)
                        nfev += 1
                        if math.isfinite(f) and all_finite(n, g) and all_finite(n * n, H):
                            go_on = True
                        else:
                            status = NON_FINITE
                            stop = True
                else:
                    # Converged: the Newton step is negligible, or predicts only a rounding-level decrease.
                    small = True
                    for j in range(n):
                        small = small and abs(s[j]) <= xtol * (1.0 + abs(x[j]))
                    if small or pred_newton <= ftol * fscale:
                        status = CONVERGED
                        stop = True
            if stop:
                break
            if go_on:
                continue
            # Keep the trial point in the box: the step truncated at the first bound it meets or projected
            # into the box, whichever predicts more decrease.
            truncated = False
            alpha = 1.0
            block = -1
            block_at = 0.0
            for j in range(n):
                xs = x[j] + s[j]
                bound = lo[j] if xs < lo[j] else (hi[j] if xs > hi[j] else x[j])
                if bound != x[j] and (bound - x[j]) / s[j] < alpha:
                    alpha = (bound - x[j]) / s[j]
                    block = j
                    block_at = bound
            if alpha < 0.0:
                alpha = 0.0
            for j in range(n):
                sp[j] = clip(x[j] + s[j], lo[j], hi[j]) - x[j]
                st[j] = alpha * s[j]
            pred_p = predicted(n, g, H, sp)
            pred_t = predicted(n, g, H, st) if alpha < 1.0 else pred_p
            use_t = alpha < 1.0 and not (pred_p >= pred_t)
            for j in range(n):
                s[j] = st[j] if use_t else sp[j]
                xt[j] = clip(x[j] + s[j], lo[j], hi[j])
            if use_t:
                xt[block] = block_at  # exactly on the bound (x + alpha s may round to a hair inside it)
                truncated = True
            for j in range(n):
                s[j] = xt[j] - x[j]
            if alpha < 1.0:
                interior = False
            pred = predicted(n, g, H, s)
            if not (pred > 0.0):
                # Projection spoiled the model step: fall back to the projected Cauchy point (d in sp).
                for j in range(n):
                    sp[j] = 0.0
                for a in range(m):
                    sp[idx[a]] = -g[idx[a]] / (D[idx[a]] * D[idx[a]])
                dd = 0.0
                dHd = 0.0
                for j in range(n):
                    dd -= g[j] * sp[j]
                    hd = 0.0
                    for k in range(n):
                        hd += H[j * n + k] * sp[k]
                    dHd += sp[j] * hd
                tc = delta / SQRT(dd)
                if dHd > 0.0:
                    q = dd / dHd
                    if q < tc:
                        tc = q
                if not (math.isfinite(dd) and math.isfinite(dHd)):
                    # Huge gradient: the same step along the unit direction u = d / |d|, where
                    # t |d| = min(delta, |d| / u.H.u), without overflowing |d|^2.
                    dn = norm2(n, sp)
                    for j in range(n):
                        st[j] = sp[j] / dn  # u
                    uHu = 0.0
                    gu = 0.0
                    for j in range(n):
                        hu = 0.0
                        for k in range(n):
                            hu += H[j * n + k] * st[k]
                        uHu += st[j] * hu
                        gu -= g[j] * st[j]
                    for j in range(n):
                        st[j] = D[j] * st[j]
                    ln = delta / norm2(n, st)
                    if uHu > 0.0:
                        q = gu / uHu
                        if q < ln:
                            ln = q
                    tc = ln / dn
                for j in range(n):
                    xt[j] = clip(x[j] + tc * sp[j], lo[j], hi[j])
                    s[j] = xt[j] - x[j]
                interior = False
                pred = predicted(n, g, H, s)
                if not (pred > 0.0):  # no decrease is predicted anywhere: stationary to rounding
                    if hcurv > 0.0:
                        curv = 0.0
                        hcurv = 0.0
                        f, fs = objective(x, fi, fv, n, feat, target, pidx, pw, q0, q1, 0.0, hdelta, asym,
                                          log_z, g, H)
                        nfev += 1
                        if math.isfinite(f) and all_finite(n, g) and all_finite(n * n, H):
                            continue
                        status = NON_FINITE
                        break
                    status = CONVERGED
                    break
            ft, fst = objective(xt, fi, fv, n, feat, target, pidx, pw, q0, q1, curv * hdelta, hdelta, asym,
                                log_z, gt, Ht)
            nfev += 1
            actual = f - ft
            rho = actual / pred if math.isfinite(ft) else -1.0
            if (not truncated and math.isfinite(ft) and pred <= ftol * fscale
                    and abs(actual) <= ftol * fscale):
                # Both decreases are at rounding level: nothing left to gain here.
                if hcurv > 0.0:
                    curv = 0.0
                    hcurv = 0.0
                    f, fs = objective(x, fi, fv, n, feat, target, pidx, pw, q0, q1, 0.0, hdelta, asym, log_z,
                                      g, H)
                    nfev += 1
                    if math.isfinite(f) and all_finite(n, g) and all_finite(n * n, H):
                        continue
                    status = NON_FINITE
                    break
                status = CONVERGED
                break
            for j in range(n):
                sp[j] = D[j] * s[j]
            snorm = norm2(n, sp)
            if rho < 0.25:
                delta = 0.25 * snorm
            elif rho > 0.75 and not interior:
                if delta < 2.0 * snorm:
                    delta = 2.0 * snorm
                if BIG < delta:
                    delta = BIG
            if rho > 1e-4:
                if not all_finite(n, gt) or not all_finite(n * n, Ht):
                    for j in range(n):
                        x[j] = xt[j]
                    f = ft
                    status = NON_FINITE
                    break
                for j in range(n):
                    x[j] = xt[j]
                    g[j] = gt[j]
                for j in range(n * n):
                    H[j] = Ht[j]
                f = ft
                fs = fst
                hcurv = curv
                if curv > 0.0 and interior and rho > IRLS_RHO:
                    # The damped model was too cautious: less extra curvature from the next evaluation on.
                    curv *= IRLS_SHRINK
                    if curv < IRLS_MIN * irls:
                        curv = 0.0
            else:
                xm = 0.0
                dmin = D[0]
                for j in range(n):
                    if xm < abs(x[j]):
                        xm = abs(x[j])
                    if D[j] < dmin:
                        dmin = D[j]
                if delta / dmin <= xtol * (1.0 + xm):
                    if hcurv > 0.0:
                        curv = 0.0
                        hcurv = 0.0
                        f, fs = objective(x, fi, fv, n, feat, target, pidx, pw, q0, q1, 0.0, hdelta, asym,
                                          log_z, g, H)
                        nfev += 1
                        if not (math.isfinite(f) and all_finite(n, g) and all_finite(n * n, H)):
                            status = NON_FINITE
                            break
                        delta = radius0 * (xm if 1.0 < xm else 1.0)
                        continue
                    # Nothing left to gain at this scale: converged when the model predicts only
                    # rounding-level decrease, else the trust region collapsed.
                    # A perfect fit (f at the floor of rounding) is converged too.
                    status = CONVERGED if pred <= 1e3 * EPS * fs or f <= floor else STEP_FAILED
                    break
        if status == MAX_ITER and f <= floor:  # perfect, within rounding
            status = CONVERGED
        mask = 0
        for j in range(n):
            if x[j] <= lo[j] or x[j] >= hi[j]:
                mask |= 1 << j
        if status == CONVERGED and mask != 0:
            status = AT_BOUND
        return status, nit, nfev, f, mask

    return solve
