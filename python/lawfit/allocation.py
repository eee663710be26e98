"""Compute-optimal allocation: how many parameters N and tokens D for a training budget C = 6 N D.

For the Chinchilla law the optimum has a closed form (Hoffmann et al. 2022, Appendix D):

    N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6)^b / G,
    a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)).

Any law of N and D is also optimised numerically: the root of dL/dlog N along C = 6 N D, with the
derivative taken by complex step (exact to rounding), so closed form and numeric route agree to ~1e-12.
Every function takes a :class:`~lawfit.FitResult` (its estimate; with ``.bootstrap``, also percentile
intervals from the draws), a :class:`~lawfit.BootstrapResult`, or a mapping of natural-scale parameters with
``law=``. Results are pandas DataFrames, one row per budget or target.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from . import compiler
from . import laws as _laws

__all__ = ["compute_optimal", "loss_at_budget", "budget_for_loss", "inference_optimal", "chinchilla_exponents"]

TRAIN_FLOPS = 6.0  # per parameter and training token: C = 6 N D
INFERENCE_FLOPS = 2.0  # per parameter and inference token
_CHINCHILLA = ("E", "A", "B", "alpha", "beta")


def _sources(source: Any, law=None):
    """(law, estimate dict, draws dict of arrays or None), natural scale."""
    from .bootstrap import BootstrapResult
    from .fitting import FitResult

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
            try:
                values[k] = float(source[k])
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"parameter {k!r} must be a finite real number, got {source[k]!r}") from None
        return law, values, None
    raise TypeError(f"expected a FitResult, BootstrapResult or mapping of parameters, got {type(source).__name__}")


def _closed_form_ok(law) -> bool:
    return law.name in ("chinchilla", "chinchilla_linear_e") and set(_CHINCHILLA) <= set(law.param_names)


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
        e = [x[0] for x in _closed(est, C)]
        d = _closed(draws, C) if draws is not None else None
    else:
        e = list(_numeric(law, est, C))
        d = None
        if draws is not None:
            rows = [_numeric(law, {k: v[i] for k, v in draws.items()}, C) for i in range(len(next(iter(draws.values()))))]
            d = tuple(np.array([r[j] for r in rows]) for j in range(3))
    return e, d


def _frame(first: dict, est: dict, draws: dict | None, level: float):
    import pandas as pd

    df = pd.DataFrame({**first, **est})
    if draws is not None:
        if not (0 < level < 1):
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        tail = (1 - level) / 2
        for k, v in draws.items():
            df[f"{k}_low"] = np.nanquantile(v, tail, axis=0)
            df[f"{k}_high"] = np.nanquantile(v, 1 - tail, axis=0)
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


def _bisect_log(fn, lo: float, hi: float, shape, iters: int = 200):
    """Smallest x in [e^lo, e^hi] with fn(x) True (fn monotone: False then True), elementwise."""
    lo = np.full(shape, lo)
    hi = np.full(shape, hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        ok = fn(np.exp(mid))
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        if np.all(hi - lo <= 1e-15 * np.abs(hi)):
            break
    return np.exp(hi)


def budget_for_loss(source, loss, *, law=None, level: float = 0.95):
    """The smallest budget C whose compute-optimal loss reaches ``loss`` (loss, C and its interval)."""
    law, est, draws = _sources(source, law)
    _check_nd(law)
    target = _positive("target loss", loss)
    closed = _closed_form_ok(law)

    def solve(params):
        """C for parameter arrays (k,) -> (k, m); bisection on log C (the optimal loss falls with C)."""
        P = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in params.items()}
        if "E" in P and np.any(target[None, :] <= P["E"][:, None]):
            raise ValueError(f"a loss of {target.min():g} is not reachable: the irreducible loss E is "
                             f"{P['E'].min():g}")
        k = len(next(iter(P.values())))
        if closed:
            def reached(C):
                return _closed(P, C)[2] <= target[None, :]
        else:
            def reached(C):
                return np.array([[_numeric(law, {n: v[i] for n, v in P.items()}, np.array([c]))[2][0] <= t
                                  for c, t in zip(C[i], target)] for i in range(k)])
        return _bisect_log(reached, math.log(1e6), math.log(1e40), (k, target.size))

    C = solve(est)[0]
    dC = solve(draws) if draws is not None else None
    return _frame({"loss": target}, {"C": C}, None if dC is None else {"C": dC}, level)


def inference_optimal(source, loss, inference_tokens, *, law=None, level: float = 0.95):
    """Sardana et al. (2024): the N and D minimising training plus inference FLOPs, 6 N D + 2 N D_inf, for
    a target ``loss``, given ``inference_tokens`` D_inf served over the model's life. With D_inf = 0 this is
    the compute-optimal allocation for that loss. Chinchilla-type laws only (D solved in closed form).

    Returns a DataFrame: loss, inference_tokens, N, D, train_flops, inference_flops, total_flops.
    """
    law, est, draws = _sources(source, law)
    _check_nd(law)
    if not _closed_form_ok(law):
        raise ValueError(f"inference_optimal supports Chinchilla-type laws; law {law.name!r} is not one")
    target = _positive("target loss", loss)
    dinf = np.broadcast_to(np.asarray(inference_tokens, dtype=float), target.shape).astype(float)
    if np.any(dinf < 0) or not np.all(np.isfinite(dinf)):
        raise ValueError("inference_tokens must be finite and >= 0")

    def solve(params):
        P = {k: np.atleast_1d(np.asarray(params[k], dtype=float))[:, None] for k in _CHINCHILLA}
        if np.any(target[None, :] <= P["E"]):
            raise ValueError(f"a loss of {target.min():g} is not reachable: the irreducible loss E is "
                             f"{P['E'].min():g}")
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
        return {"N": n, "D": d, "train_flops": train, "inference_flops": total - train, "total_flops": total}

    e = {k: v[0] for k, v in solve(est).items()}
    d = solve(draws) if draws is not None else None
    return _frame({"loss": target, "inference_tokens": dinf}, e, d, level)
