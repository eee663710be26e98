"""Compute-optimal allocation: how many parameters N and tokens D for a training budget C = 6 N D.

For the Chinchilla law the optimum has a closed form (Hoffmann et al. 2022, Appendix D):

    N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6)^b / G,
    a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)).

The closed form is used for any law whose compiled program has exactly the Chinchilla form
``lse(log E, log A - alpha log N, log B - beta log D)`` (whatever the law's name and parameter names; E may be
linear). Any other law of N and D, a law with an extra term included, is optimised numerically: the root of
dL/dlog N along C = 6 N D, with the derivative taken by complex step (exact to rounding), so closed form and
numeric route agree to ~1e-12.
Every function takes a :class:`~lawfit.FitResult` (its estimate; with ``.bootstrap``, also percentile
intervals from the draws), a :class:`~lawfit.BootstrapResult`, or a mapping of natural-scale parameters with
``law=``. Results are pandas DataFrames, one row per budget or target.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from . import compiler
from .data import check_level
from . import laws as _laws

__all__ = ["compute_optimal", "loss_at_budget", "budget_for_loss", "inference_optimal", "chinchilla_exponents"]

TRAIN_FLOPS = 6.0  # per parameter and training token: C = 6 N D
INFERENCE_FLOPS = 2.0  # per parameter and inference token
_CHINCHILLA = ("E", "A", "B", "alpha", "beta")


def _sources(source: Any, law=None):
    """(law, estimate dict, draws dict of arrays or None), natural scale."""
    from .bootstrap import BootstrapResult
    from .multistart import FitResult

    if isinstance(source, BootstrapResult):
        ok = np.all([np.isfinite(v) for v in source.params.values()], axis=0)
        return source.law, dict(source.fit.params), {k: v[ok] for k, v in source.params.items()}
    if isinstance(source, FitResult):
        if source.bootstrap is not None:
            return _sources(source.bootstrap)
        return source.law, dict(source.params), None
    if isinstance(source, Mapping):
        if law is None:
            raise ValueError("pass law= together with a mapping of parameters")
        law = _laws.get(law)
        missing = [p for p in law.param_names if p not in source]
        if missing:
            raise ValueError(f"parameters {missing} of law {law.name!r} are missing")
        values = {}
        for k in law.param_names:
            v = source[k]
            try:
                if isinstance(v, (bool, np.bool_, str, bytes)):
                    raise TypeError
                values[k] = float(v)
            except (TypeError, ValueError, OverflowError):
                values[k] = math.nan
            if not math.isfinite(values[k]):
                raise ValueError(f"parameter {k!r} must be a finite real number, got {v!r}")
        return law, values, None
    raise TypeError(f"expected a FitResult, BootstrapResult or mapping of parameters, got {type(source).__name__}")


def _affine(prog, i: int, memo: dict):
    """Node ``i`` of a program as an affine form {key: coefficient}, keys () for the constant, ("p", k) for
    internal parameter k, ("f", var) for log(var), ("pf", k, var) for parameter k times log(var); None when
    the node is not of that form."""
    if i in memo:
        return memo[i]
    o, ia, ib = int(prog.op[i]), int(prog.a[i]), int(prog.b[i])
    out: dict[tuple[Any, ...], float] | None = None
    if o == 0:
        out = {(): float(prog.imm[i])}
    elif o == 1:
        var, kind = prog.features[ia]
        out = {("f", var): 1.0} if kind == "log" else None
    elif o == 2:
        out = {("p", ia): 1.0}
    elif o in (3, 4, 6):
        x = _affine(prog, ia, memo)
        y = {} if o == 6 else _affine(prog, ib, memo)
        if x is not None and y is not None:
            sign = -1.0 if o == 4 else 1.0
            out = dict(x) if o != 6 else {k: -v for k, v in x.items()}
            for k, v in y.items():
                out[k] = out.get(k, 0.0) + sign * v
    elif o == 5:
        x, y = _affine(prog, ia, memo), _affine(prog, ib, memo)
        if x is not None and y is not None:
            if set(y) == {()}:
                x, y = y, x
            if set(x) == {()}:
                out = {k: x[()] * v for k, v in y.items()}
            elif len(x) == 1 and len(y) == 1:
                (kx, vx), (ky, vy) = next(iter(x.items())), next(iter(y.items()))
                if kx[:1] == ("f",) and ky[:1] == ("p",):
                    kx, ky = ky, kx
                if kx[:1] == ("p",) and ky[:1] == ("f",):
                    out = {("pf", kx[1], ky[1]): vx * vy}
    memo[i] = out
    return out


def _chinchilla_roles(law) -> dict | None:
    """Which parameters of ``law`` play E, A, B, alpha, beta of the Chinchilla law, read from the compiled
    program (not the law's name): ``log L = lse(log E, log A - alpha log N, log B - beta log D)`` with E, A, B
    log-transformed (or E linear, as chinchilla_linear_e) and alpha, beta linear, terms in any order. None when
    the program has any other form (an extra term, a constant factor, other transforms): then only the numeric
    route is exact."""
    if set(law.variables) != {"N", "D"}:
        return None
    prog = law.program
    root = len(prog.op) - 1
    if root < 0 or int(prog.op[root]) != 10 or int(prog.b[root]) != 3:
        return None
    params = law.params
    roles: dict = {}
    memo: dict = {}
    for j, flag in zip(prog.args[prog.a[root]:prog.a[root] + 3], prog.argflags[prog.a[root]:prog.a[root] + 3]):
        j = int(j)
        if flag == 1:  # a linear E >= 0
            if int(prog.op[j]) != 2 or params[int(prog.a[j])].transform != "identity" or "E" in roles:
                return None
            roles["E"] = int(prog.a[j])
            continue
        form = _affine(prog, j, memo)
        if form is None:
            return None
        consts = [k for k in form if k[:1] == ("p",)]
        slopes = [k for k in form if k[:1] == ("pf",)]
        if len(consts) != 1 or form[consts[0]] != 1.0 or len(form) != 1 + len(slopes) or len(slopes) > 1:
            return None
        k = consts[0][1]
        if params[k].transform != "log":
            return None
        if not slopes:
            role = "E"
        else:
            _, m, var = slopes[0]
            if form[slopes[0]] != -1.0 or params[m].transform != "identity":
                return None
            role = "A" if var == "N" else "B"
            roles["alpha" if var == "N" else "beta"] = m
        if role in roles:
            return None
        roles[role] = k
    if set(roles) != set(_CHINCHILLA) or len({roles["E"], roles["A"], roles["B"]}) != 3 \
            or {roles["alpha"], roles["beta"]} & {roles["E"], roles["A"], roles["B"]}:
        return None
    return {r: params[k].name for r, k in roles.items()}


def _closed_form_ok(law) -> bool:
    return _chinchilla_roles(law) is not None


def _as_chinchilla(law, values: Mapping[str, Any] | None):
    """Parameter values (estimate or draws) under the Chinchilla names E, A, B, alpha, beta."""
    if values is None:
        return None
    roles = _chinchilla_roles(law)
    return {r: values[name] for r, name in roles.items()}  # type: ignore[union-attr]  # callers check the roles


def _check_nd(law) -> None:
    if set(law.variables) != {"N", "D"}:
        raise ValueError(f"allocation needs a law of N and D; law {law.name!r} has variables {list(law.variables)}")


def _positive(name: str, x) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(x, dtype=float))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be positive and finite, got {x!r}") from None
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be positive and finite, got {x!r}")
    return arr


def _predict(law, params: Mapping[str, float], logN, logD) -> np.ndarray:
    """L(N, D) from log N and log D (real or complex), for one parameter set."""
    cols = {"N": logN, "D": logD}
    feats = np.array([np.exp(cols[v]) if kind == "raw" else cols[v] for v, kind in law.program.features])
    theta = law.to_internal(params)
    with np.errstate(all="ignore"):
        return np.exp(compiler.program_predict(law.program, feats.reshape(len(feats), -1), theta))


def chinchilla_exponents(params: Mapping[str, Any]):
    """(a, b, G) of the closed-form Chinchilla allocation (arrays broadcast)."""
    A, B, alpha, beta = (np.asarray(params[k], dtype=float) for k in ("A", "B", "alpha", "beta"))
    if not (np.all(alpha > 0) and np.all(beta > 0) and np.all(A > 0) and np.all(B > 0)):
        raise ValueError("the closed form needs A, B, alpha, beta > 0")
    s = alpha + beta
    with np.errstate(over="ignore"):  # G is inf when it overflows; _closed works in logarithms
        g = (alpha * A / (beta * B)) ** (1.0 / s)
    return beta / s, alpha / s, g


def _closed(p: Mapping[str, Any], C: np.ndarray):
    """(N_opt, D_opt, loss) for parameters (k,) and budgets (m,) or (k, m), each -> (k, m)."""
    P = {k: np.atleast_1d(np.asarray(p[k], dtype=float))[:, None] for k in _CHINCHILLA}
    a, b, _ = chinchilla_exponents(P)
    # in logarithms: G = (alpha A / (beta B))**(1/(alpha+beta)) alone overflows for small exponents
    s = P["alpha"] + P["beta"]
    log_g = (np.log(P["alpha"] * P["A"]) - np.log(P["beta"] * P["B"])) / s
    log_c6 = np.log(C / TRAIN_FLOPS)
    log_n, log_d = log_g + a * log_c6, b * log_c6 - log_g
    too_big = np.abs(np.stack(np.broadcast_arrays(log_n, log_d))) > 709.0
    if np.any(too_big & np.isfinite(log_n) & np.isfinite(log_d)):
        raise ValueError(f"the compute-optimal N or D overflows float64 (|log N_opt| or |log D_opt| up to "
                         f"{float(np.nanmax(np.abs([log_n, log_d]))):.0f}): alpha + beta = "
                         f"{float(np.min(s)):.3g} is too small for these A, B and budgets")
    N, D = np.exp(log_n), np.exp(log_d)
    return N, D, P["E"] + P["A"] * N ** -P["alpha"] + P["B"] * D ** -P["beta"]


def _numeric(law, p: Mapping[str, float], C: np.ndarray):
    """Root of dL/dlog N along C = 6 N D (bisection; the derivative by complex step)."""
    logc = np.log(C / TRAIN_FLOPS)
    h = 1e-20

    def slope(u):
        return np.imag(_predict(law, p, u + 1j * h, logc - u - 1j * h)) / h

    lo, hi = 0.5 * logc - 300.0, 0.5 * logc + 300.0  # far beyond any sensible N; still finite in float64
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        up = slope(mid) > 0  # past the minimum
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
        if np.all(hi - lo <= 1e-15 * np.maximum(1.0, np.abs(mid))):
            break
    u = 0.5 * (lo + hi)
    return np.exp(u), np.exp(logc - u), _predict(law, p, u, logc - u)


def _optimal(law, est, draws, C, method):
    """Estimate rows (m,) and draw rows (k, m) of N_opt, D_opt, loss."""
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', got {method!r}")
    if method == "closed" and not _closed_form_ok(law):
        raise ValueError(f"law {law.name!r} has no closed-form allocation; use method='numeric'")
    closed = method == "closed" or (method == "auto" and _closed_form_ok(law))
    if closed:
        e = [x[0] for x in _closed(_as_chinchilla(law, est), C)]
        d = _closed(_as_chinchilla(law, draws), C) if draws is not None else None
    else:
        e = list(_numeric(law, est, C))
        d = None
        if draws is not None:
            n_draws = len(next(iter(draws.values())))
            rows = [_numeric(law, {k: v[i] for k, v in draws.items()}, C) for i in range(n_draws)]
            d = tuple(np.array([r[j] for r in rows]) for j in range(3))
    return e, d


def _quantile(v: np.ndarray, q: float) -> np.ndarray:
    """Percentile ``q`` of the draws along axis 0 (NaN ignored), as np.nanquantile's linear interpolation, but
    +inf draws (a budget that no finite C reaches) count as the largest values: a percentile that falls on or
    interpolates towards one is inf (np.nanquantile would give NaN)."""
    v = np.asarray(v, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.nanquantile(v, q, axis=0)
    if np.any(np.isposinf(v)):
        lo = np.nanquantile(v, q, axis=0, method="lower")
        hi = np.nanquantile(v, q, axis=0, method="higher")
        out = np.where(np.isposinf(hi) & (lo != hi) | np.isposinf(lo), np.inf, out)
    return out


def _frame(first: dict, est: dict, draws: dict | None, level: float):
    import pandas as pd

    df = pd.DataFrame({**first, **est})
    if draws is not None:
        check_level(level)
        tail = (1 - level) / 2
        for k, v in draws.items():
            df[f"{k}_low"] = _quantile(v, tail)
            df[f"{k}_high"] = _quantile(v, 1 - tail)
    return df


def compute_optimal(source, C, *, law=None, method: str = "auto", level: float = 0.95):
    """Compute-optimal allocation at budgets ``C`` (FLOPs, C = 6 N D).

    Returns a DataFrame with C, N_opt, D_opt, tokens_per_param (D/N) and loss; with bootstrap draws also
    ``<column>_low`` / ``<column>_high`` (percentile intervals at ``level``). ``method``: "closed"
    (Chinchilla), "numeric" (any law of N and D) or "auto" (closed form when available).
    """
    law, est, draws = _sources(source, law)
    _check_nd(law)
    C = _positive("budgets C", C)
    (N, D, L), d = _optimal(law, est, draws, C, method)
    cols = {"N_opt": N, "D_opt": D, "tokens_per_param": D / N, "loss": L}
    dcols = None if d is None else {"N_opt": d[0], "D_opt": d[1], "tokens_per_param": d[1] / d[0], "loss": d[2]}
    return _frame({"C": C}, cols, dcols, level)


def loss_at_budget(source, C, *, law=None, level: float = 0.95):
    """The loss reached at budgets ``C`` with the compute-optimal allocation (C, loss and its interval)."""
    df = compute_optimal(source, C, law=law, level=level)
    return df[[c for c in df.columns if c == "C" or c.startswith("loss")]]


# The range of budgets budget_for_loss searches, in FLOP.
C_SEARCH = (1.0, 1e40)


def _bisect_log(fn, lo: float, hi: float, shape, iters: int = 200):
    """Smallest x in [e^lo, e^hi] with fn(x) True (fn monotone: False then True), elementwise; inf where
    fn(e^hi) is False (the answer lies beyond the range, or there is none). Also returns where fn(e^lo) is
    already True (the answer is e^lo or below)."""
    top = fn(np.full(shape, math.exp(hi)))
    below = fn(np.full(shape, math.exp(lo)))
    lo = np.full(shape, lo)  # type: ignore[assignment]  # the bounds become arrays of the shape
    hi = np.full(shape, hi)  # type: ignore[assignment]
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        ok = fn(np.exp(mid))
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)  # type: ignore[assignment]
        if np.all(hi - lo <= 1e-15 * np.abs(hi)):
            break
    return np.where(top, np.exp(hi), np.inf), below & top


def budget_for_loss(source, loss, *, law=None, level: float = 0.95):
    """The smallest budget C whose compute-optimal loss reaches ``loss`` (loss, C and its interval).

    C is searched in [1, 1e40] FLOP. C is ``inf`` where the compute-optimal loss stays above the target up to
    1e40 FLOP: for a bootstrap draw, or for the estimate of a law without a closed form, that is either a
    budget beyond 1e40 FLOP or a target below what the law can reach at all; such draws count as C = inf in the
    percentiles (so an upper limit can be inf). A target at or below the estimate's irreducible loss E (a
    Chinchilla-type law) is an error.
    """
    law, est, draws = _sources(source, law)
    _check_nd(law)
    target = _positive("target loss", loss)
    closed = _closed_form_ok(law)
    if closed:
        e_hat = _as_chinchilla(law, est)["E"]
        bad = target <= e_hat
        if np.any(bad):
            raise ValueError(f"a loss of {target[bad][0]:g} is not reachable: the estimated irreducible loss E is "
                             f"{e_hat:g}, which the compute-optimal loss approaches only as C grows without bound")

    def solve(params, what):
        """C for parameter arrays (k,) -> (k, m); bisection on log C (the optimal loss falls with C)."""
        P = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in params.items()}
        k = len(next(iter(P.values())))
        if closed:
            Q = _as_chinchilla(law, P)

            def reached(C):
                return _closed(Q, C)[2] <= target[None, :]
        else:
            def reached(C):
                return np.array([[_numeric(law, {n: v[i] for n, v in P.items()}, np.array([c]))[2][0] <= t
                                  for c, t in zip(C[i], target)] for i in range(k)])
        C, below = _bisect_log(reached, math.log(C_SEARCH[0]), math.log(C_SEARCH[1]), (k, target.size))
        if np.any(below):
            i, j = np.argwhere(below)[0]
            raise ValueError(f"{what}{'' if k == 1 else f' (draw {i})'} reaches a loss of {target[j]:g} already at "
                             f"C = {C_SEARCH[0]:g} FLOP, the lower end of the search: the law is not meaningful "
                             f"there")
        return C

    C = solve(est, "the estimate")[0]
    dC = solve(draws, "a bootstrap draw") if draws is not None else None
    return _frame({"loss": target}, {"C": C}, None if dC is None else {"C": dC}, level)


def inference_optimal(source, loss, inference_tokens, *, law=None, level: float = 0.95):
    """Sardana et al. (2024): the N and D minimising training plus inference FLOPs, 6 N D + 2 N D_inf, for
    a target ``loss``, given ``inference_tokens`` D_inf served over the model's life. With D_inf = 0 this is
    the compute-optimal allocation for that loss. Chinchilla-type laws only (D solved in closed form).
    Bootstrap draws whose irreducible loss E is at or above the target count as inf (N, D and FLOPs) in the
    percentiles; a target at or below the estimate's E is an error.

    Returns a DataFrame: loss, inference_tokens, N, D, train_flops, inference_flops, total_flops.
    """
    law, est, draws = _sources(source, law)
    _check_nd(law)
    if not _closed_form_ok(law):
        raise ValueError(f"inference_optimal supports Chinchilla-type laws; law {law.name!r} is not one")
    est, draws = _as_chinchilla(law, est), _as_chinchilla(law, draws)
    target = _positive("target loss", loss)
    dinf = np.broadcast_to(np.asarray(inference_tokens, dtype=float), target.shape).astype(float)
    if np.any(dinf < 0) or not np.all(np.isfinite(dinf)):
        raise ValueError("inference_tokens must be finite and >= 0")

    def solve(params, draws=False):
        P = {k: np.atleast_1d(np.asarray(params[k], dtype=float))[:, None] for k in _CHINCHILLA}
        unreachable = target[None, :] <= P["E"]
        if np.any(unreachable) and not draws:
            bad = target[unreachable[0]][0]
            raise ValueError(f"a loss of {bad:g} is not reachable: the estimated irreducible loss E is "
                             f"{P['E'][0, 0]:g}")
        # A draw whose E is at or above the target needs infinite compute: solved with a stand-in E, then inf.
        P["E"] = np.where(unreachable, 0.5 * target[None, :], P["E"])
        # D(N) on the target loss: B / D^beta = L - E - A / N^alpha > 0 needs N > (A / (L - E))^(1/alpha).
        n_min = (P["A"] / (target[None, :] - P["E"])) ** (1.0 / P["alpha"])

        def flops(u):  # u = log(N / n_min) > 0
            n = n_min * np.exp(u)
            room = target[None, :] - P["E"] - P["A"] * n ** -P["alpha"]
            d = (P["B"] / room) ** (1.0 / P["beta"])
            return n, d, TRAIN_FLOPS * n * d + INFERENCE_FLOPS * n * dinf[None, :]

        # total FLOPs is unimodal in u; minimise its log by the root of a complex-step derivative.
        def slope(u):
            h = 1e-20
            n = n_min * np.exp(u + 1j * h)
            room = target[None, :] - P["E"] - P["A"] * n ** -P["alpha"]
            d = (P["B"] / room) ** (1.0 / P["beta"])
            return np.imag(np.log(TRAIN_FLOPS * n * d + INFERENCE_FLOPS * n * dinf[None, :])) / h

        lo = np.full(n_min.shape, 1e-12)
        hi = np.full(n_min.shape, 60.0)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            up = slope(mid) > 0
            hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
            if np.all(hi - lo <= 1e-15 * np.maximum(1.0, mid)):
                break
        n, d, total = flops(0.5 * (lo + hi))
        train = TRAIN_FLOPS * n * d
        out = {"N": n, "D": d, "train_flops": train, "inference_flops": total - train, "total_flops": total}
        return {k: np.where(unreachable, np.inf, v) for k, v in out.items()}

    e = {k: v[0] for k, v in solve(est).items()}
    d = solve(draws, draws=True) if draws is not None else None
    return _frame({"loss": target, "inference_tokens": dinf}, e, d, level)
