"""The batched engine: objective evaluation and minimisation over numpy arrays, for lawfit itself and for
other fitting code that wants a fast backend.

Everything here works on the law's *internal* parameter vector (the fitted quantities, e.g.
``e, a, b, alpha, beta`` for Chinchilla, in the order of ``law.internal_names``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import numpy as np

from . import _core
from . import laws as _laws
from . import losses as _losses
from . import progress as _progress
from .constraints import Constraints, check_starts as _check_starts, constraints
from .data import Dataset, prepare
from .status import Status, is_success
from .trust import trust_scale

__all__ = ["evaluate", "minimize", "BatchFit", "Evaluation", "LOSSES",
           "Constraints", "constraints", "trust_scale"]  # the last three live in constraints.py and trust.py

LOSSES = tuple(_losses.REGISTRY)  # the loss names (lawfit.losses has one row per loss)


def law_for_loss(law, loss):
    """The law whose parameters the engine fits under ``loss`` (adds sigma for the Huber likelihood)."""
    law = _laws.get(law)
    fits_sigma = loss.fits_sigma if isinstance(loss, _losses.Loss) else loss == "huber_likelihood"
    return law.with_sigma() if fits_sigma else law


def _threads(threads) -> int:
    if threads is None:
        env = os.environ.get("LAWFIT_NUM_THREADS", "").strip()
        if not env:
            return 0
        try:
            threads = int(env)
        except ValueError:
            raise ValueError(f"the environment variable LAWFIT_NUM_THREADS must be a positive integer, "
                             f"got {env!r}") from None
        if threads < 1:
            raise ValueError(f"the environment variable LAWFIT_NUM_THREADS must be a positive integer, "
                             f"got {env!r}")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None (all cores), got {threads!r}")
    return int(min(threads, os.cpu_count() or 1))  # more threads than cores only cost memory and start-up


def _weights(w, n: int, rows_ok: bool = True) -> np.ndarray | None:
    if w is None:
        return None
    if isinstance(w, np.ma.MaskedArray) and np.ma.getmaskarray(w).any():
        r = np.argwhere(np.ma.getmaskarray(w))[0]
        raise ValueError(f"weights are a masked array with masked entries (the first at index "
                         f"{tuple(int(v) for v in r) if r.size > 1 else int(r[0])}); masks are not applied: give "
                         f"masked runs weight 0 (w.filled(0)) or drop them")
    arr = np.asarray(w)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"weights must be numeric, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):  # (np.ascontiguousarray would turn a scalar into shape (1,))
        raise ValueError(f"weights must have shape ({n},) or (n_rows, {n}), got {np.shape(w)}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or (arr.shape[0] != 1 and not rows_ok):
        raise ValueError(f"weights must have shape ({n},) or (n_rows, {n}), got {np.shape(w)}")
    if arr.shape[1] != n:
        raise ValueError(f"weights have {arr.shape[1]} columns but the data has {n} runs")
    bad = np.argwhere(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        r, c = bad[0]
        raise ValueError(f"weights must be finite and >= 0; row {r}, run {c} is {arr[r, c]}")
    return arr


class Evaluation(NamedTuple):
    fun: np.ndarray  # (B,)
    grad: np.ndarray | None  # (B, P)
    hess: np.ndarray | None  # (B, P, P)


def _param_rows(law, params) -> np.ndarray:
    """(B, P) internal parameter rows from an array or a mapping by name (natural or internal names; values
    scalars or equal-length 1-d arrays)."""
    if isinstance(params, Mapping):
        missing = [p.name for p in law.params
                   if p.name not in params and p.internal not in params]
        if missing:
            raise ValueError(f"params lacks {missing} (law {law.name!r} has {law.param_names}; internal names "
                             f"{law.internal_names} are accepted too)")
        arrays = {k: np.asarray(v) for k, v in params.items()}
        for k, v in arrays.items():
            if v.dtype.kind not in "iuf" or v.ndim > 1:
                raise TypeError(f"params[{k!r}] must be a number or a 1-d numeric array, got {params[k]!r}")
        B = max((v.size for v in arrays.values() if v.ndim == 1), default=1)
        rows = np.empty((B, law.n_params))
        for b in range(B):
            rows[b] = law.to_internal({k: float(v if v.ndim == 0 else v[b if v.size == B else 0])
                                       for k, v in arrays.items()})
        return rows
    p = np.asarray(params)
    if p.dtype.kind not in "iuf":
        raise TypeError(f"params must be numeric (or a mapping by name), got dtype {p.dtype}")
    p = np.ascontiguousarray(np.atleast_2d(np.asarray(p, dtype=np.float64)))
    if p.ndim != 2 or p.shape[1] != law.n_params:
        raise ValueError(f"params must have shape (batch, {law.n_params}) ({', '.join(law.internal_names)}), "
                         f"got {np.shape(params)}")
    return p


def _row_sums(w: np.ndarray | None, n: int, B: int) -> np.ndarray:
    """Sum of weights per row (the ``mean`` reduction's divisor)."""
    if w is None:
        return np.full(B, float(n))
    return np.broadcast_to(np.atleast_2d(w).sum(axis=1), (B,)).astype(float)


def evaluate(law, data: Any = None, params=None, *, weights=None, loss=None, delta: float | None = None,
             asymmetry: float | None = None, q: float | None = None, c: float | None = None,
             residual: str | None = None, reduction: str | None = None, derivatives: int = 1,
             threads: int | None = None, columns=None, backend: str = "cpu") -> Evaluation:
    """The objective ``sum_i w_i rho(r_i)`` (or its weighted mean) with gradient and Hessian, for a batch of
    parameter vectors.

    Parameters
    ----------
    law : Law or built-in name, or a :class:`lawfit.Problem` (then ``evaluate(problem, params)``, without data
        or objective keywords).
    data : DataFrame, mapping of arrays or a prepared :class:`~lawfit.data.Dataset` (``lawfit.data.prepare``
        once, then many calls: about 5x cheaper for small batches).
    params : (B, P) or (P,) *internal* parameter vectors, in the order of ``law.internal_names`` (for
        Chinchilla ``e, a, b, alpha, beta``: log-transformed parameters enter as logs), or a
        mapping by name, natural (``{"E": 1.8, "A": 400, ...}``) or internal (``{"e": ...}``), of
        numbers or equal-length arrays. Gradients and Hessians are with respect to the internal vector.
    weights : None, (n,) shared by all rows, or (B, n) one weight row per parameter row.
    loss, delta, asymmetry, q, c, residual, reduction : the objective (:mod:`lawfit.losses`): a loss name
        and its parameter, or a :class:`lawfit.Loss`; ``residual`` "log" (default) or "linear";
        ``reduction`` "sum" (default) or "mean" (divided by the sum of the weights).
    derivatives : 0 (objective only), 1 (and gradient) or 2 (and Hessian).
    backend : "cpu" (the C++ core), "cuda" (numba CUDA, see :mod:`lawfit.backends`) or "auto".

    Bounds, fixed and tied parameters belong to :func:`minimize`; here every parameter is an input.
    """
    from .problem import Problem, resolve as _resolve

    if isinstance(law, Problem) and params is None:
        data, params = None, data  # evaluate(problem, params)
    if params is None:
        raise TypeError("evaluate() needs params")
    if isinstance(law, Problem):
        _resolve(law, data, dict(loss=loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual,
                                         reduction=reduction, columns=columns))
        spec, law, ds = law.loss, law.law, law.data
    else:
        spec = _losses.spec("huber" if loss is None else loss, delta=delta, asymmetry=asymmetry, q=q, c=c,
                            residual=residual, reduction=reduction)
        law = law_for_loss(law, spec)
        ds = prepare(law, data, columns=columns)
    p = _param_rows(law, params)
    if (isinstance(derivatives, bool) or not isinstance(derivatives, (int, np.integer))
            or derivatives not in (0, 1, 2)):
        raise ValueError(f"derivatives must be 0, 1 or 2, got {derivatives!r}")
    w = _weights(weights, ds.n)
    if w is not None:
        if w.shape[0] == 1 and np.ndim(weights) == 1:
            w = w[0]
        elif w.shape[0] != p.shape[0]:
            raise ValueError(f"weights have {w.shape[0]} rows but params have {p.shape[0]}")
    from . import backends

    core = backends.get(backend, p.shape[0])
    f, g, h = core.evaluate(backends.program_for(core, law), ds.features, spec.target(ds), p, w, spec.core(),
                            derivatives, _threads(threads))
    if spec.reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            s = _row_sums(w, ds.n, p.shape[0])
            f = f / s
            g = None if g is None else g / s[:, None]
            h = None if h is None else h / s[:, None, None]
    return Evaluation(f, g, h)


@dataclass(frozen=True)
class BatchFit:
    """Results of a batch of fits: one entry per weight row (keep='best') or per (row, start).

    ``fun`` is the objective of ``loss`` (a :class:`lawfit.Loss`: which loss, residual and reduction).
    With ``screen=k``, ``start_index`` (R, k) says which of the ``n_scored`` starts each row fitted, and
    ``best_start`` indexes the given starts.
    """

    law: _laws.Law
    constraints: Constraints
    x: np.ndarray  # free internal parameters, (..., n_free)
    theta: np.ndarray  # full internal parameters, (..., n_params)
    fun: np.ndarray
    status: np.ndarray
    nit: np.ndarray
    nfev: np.ndarray
    at_bound: np.ndarray
    best_start: np.ndarray | None = None
    n_success: np.ndarray | None = None
    loss: _losses.Loss | None = None
    n_scored: int | None = None
    start_index: np.ndarray | None = None

    @property
    def success(self) -> np.ndarray:
        return is_success(self.status)

    def natural(self) -> dict[str, np.ndarray]:
        """Natural-scale parameter arrays keyed by name."""
        return {p.name: p.to_natural(self.theta[..., i]) for i, p in enumerate(self.law.params)}

    def status_counts(self) -> dict[str, int]:
        codes, counts = np.unique(self.status, return_counts=True)
        return {Status(int(c)).name: int(n) for c, n in zip(codes, counts)}


def minimize(law, data: Any = None, starts: Any = "grid", *, weights=None, bounds=None, fixed=None, tie=None,
             loss=None, delta: float | None = None, asymmetry: float | None = None, q: float | None = None,
             c: float | None = None, residual: str | None = None, reduction: str | None = None,
             keep: str = "best", screen: int | None = None, max_iter: int | None = None,
             xtol: float | None = None, ftol: float | None = None, radius0: float | None = None,
             irls: float | None = None, switch_rtol: float | None = None, trust_scale="auto",
             threads: int | None = None, columns=None, progress=None, backend: str = "cpu") -> BatchFit:
    """Fit every (weight row, start) pair; return all fits or the best start of each row.

    Parameters
    ----------
    starts : "grid" (the law's default grid), "hoffmann", a dict of per-parameter values (a grid), an
        array (S, n_params) of full *internal* vectors (order ``law.internal_names``: log-transformed
        parameters as logs), or (R, S, n_params) with starts per weight row.
    weights : None (one row of ones), (n,) or (R, n) non-negative weights (bootstrap counts). A row with fewer
        positive-weight runs (or distinct points) than free parameters is not fitted (status NOT_RUN); data with
        too few runs is a ValueError. Rows whose largest weight is outside [2^-30, 2^30] are rescaled by a power
        of 4 inside (``fun`` is the objective of the weights given).
    bounds, fixed, tie : {name: (lower, upper)} on the scale the name implies (natural names: natural
        scale; internal names such as ``log_A``: internal scale); {name: value}; [("alpha", "beta")].
        Fixed parameters keep their value; tied ones share one free value. ``x`` holds the free parameters
        (``constraints.free_names``), ``theta`` the full internal vectors.
    loss, delta, asymmetry, q, c, residual, reduction : the objective (see :mod:`lawfit.losses`): a loss
        name and its parameter, or a :class:`lawfit.Loss`. ``absolute`` and ``quantile`` are minimised
        exactly (:mod:`lawfit.nonsmooth`).
    keep : "best" (one fit per row: success first, then lowest objective, then lowest start index) or
        "all" (arrays of shape (R, S, ...)).
    screen : None (fit every start) or k: score every start by its objective on each row (one batched
        evaluation) and fit only the k best of each row (``n_scored`` says how many were scored).
    progress : True for a progress bar on stderr (after ~1 s), or a callable(done, total).
    law : a Law, a built-in name, or a :class:`lawfit.Problem` (law, data, objective, constraints and solver
        options validated once; then leave out data and those keywords).
    max_iter, xtol, ftol, radius0, irls, switch_rtol : solver options (see DESIGN.md, "The solver"; None: the
        core's defaults, ``lawfit._core.SOLVER``).
        Every stopping rule is relative, so none depends on the number of runs, on sum vs mean or on
        the objective's size.
    trust_scale : "auto" (:func:`trust_scale`: the trust region is measured by how much a step moves the
        law's terms), None (plain Euclidean steps) or an array with a positive scale per free parameter.
    threads : worker threads (default: all cores, or the environment variable ``LAWFIT_NUM_THREADS``).
    backend : "cpu" (the C++ core on all cores), "cuda" (numba CUDA; raises
        :class:`~lawfit.backends.BackendUnavailable` when it cannot run) or "auto" (the GPU for large batches
        when one is usable). Backends give the same statuses and agree on objectives to 1e-9 relative.
    """
    from . import backends
    from .starts import resolve

    from .problem import resolve as _resolve

    prob = _resolve(law, data, dict(
        loss=loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual, reduction=reduction, bounds=bounds,
        fixed=fixed, tie=tie, columns=columns, max_iter=max_iter, xtol=xtol, ftol=ftol, radius0=radius0, irls=irls,
        switch_rtol=switch_rtol, trust_scale=trust_scale))
    law, ds, spec, con, scale = prob.law, prob.data, prob.loss, prob.constraints, prob.trust_scale
    if keep not in ("best", "all"):
        raise ValueError(f"keep must be 'best' or 'all', got {keep!r}")
    w = _weights(weights, ds.n)
    R = 1 if w is None else w.shape[0]
    st = np.asarray(starts) if isinstance(starts, np.ndarray) and np.ndim(starts) == 3 else None
    if st is not None:
        if st.dtype.kind not in "iuf":
            raise TypeError(f"starts must be numeric, got dtype {st.dtype}")
        st = np.asarray(st, dtype=float)
        if st.shape[0] != R or st.shape[2] != law.n_params:
            raise ValueError(f"per-row starts must have shape ({R}, n_starts, {law.n_params}), got {st.shape}")
        full = st
    else:
        full = resolve(law, starts)
    free = np.ascontiguousarray(full[..., con.rep])
    _check_starts(law, con, free)
    if screen is not None and (isinstance(screen, bool) or not isinstance(screen, (int, np.integer))
                               or screen < 1):
        raise ValueError(f"screen must be None or a positive number of starts to fit per row, got {screen!r}")
    nthreads = _threads(threads)
    user_w = w
    w, fun_exp = _normalise_weights(w)
    w = _identifiable_rows(law, ds, con, w)
    n_scored = None
    start_index = None
    if screen is not None:
        n_scored = free.shape[-2]
        free, start_index = _screen(law, ds, spec, con, free, w, int(screen), nthreads, backend)
    S = free.shape[-2]
    core = backends.get(backend, R * S)
    program = backends.program_for(core, law)
    target = spec.target(ds)
    options = prob.solver.core()

    def run(core_loss, starts_free, keep_all: bool, prog=True, c=None, tgt=None, rows=None):
        c = con if c is None else c
        sc = None if scale is None else scale[:c.n_free]
        wr = w if rows is None or w is None else np.ascontiguousarray(w[rows])
        return core.minimize(program, ds.features, target if tgt is None else tgt, wr, starts_free, c.free_index,
                             c.fixed_value,
                             c.lower, c.upper, core_loss, options, keep_all, nthreads,
                             _progress.resolve(progress) if prog else None, scale=sc)

    if spec.kinked:
        out = _minimize_kinked(run, law, ds, spec, con, w, free, keep == "all", core, program, nthreads)
    elif spec.fits_sigma and _likelihood_via_lad(law, con):
        out = _minimize_likelihood(run, law, ds, spec, con, w, free, keep == "all", core, program, nthreads)
    else:
        out = run(spec.core(), free, keep == "all")
        if not _is_hoffmann_problem(spec):
            out = _rescue(run, spec, ds, con, w, free, out, keep == "all")
    x = out["x"]
    shape = (R, S) if keep == "all" else (R,)
    x = x.reshape(shape + (con.n_free,))
    fun = out["fun"].reshape(shape)
    if fun_exp is not None:  # back to the user's weights: an exact power-of-two rescaling
        fun = np.ldexp(fun, fun_exp.reshape((R,) + (1,) * (fun.ndim - 1)))
    if spec.reduction == "mean":
        sums = _row_sums(user_w, ds.n, R)
        fun = fun / (sums[:, None] if keep == "all" else sums)
    best = out.get("best_start")
    if best is not None and start_index is not None:
        best = np.asarray(start_index)[np.arange(R), np.asarray(best)]
    res = BatchFit(
        law=law, constraints=con, x=x, theta=con.full(x), fun=fun,
        status=out["status"].reshape(shape), nit=out["nit"].reshape(shape), nfev=out["nfev"].reshape(shape),
        at_bound=out["at_bound"].reshape(shape),
        best_start=best, n_success=out.get("n_success"), loss=spec, n_scored=n_scored,
        start_index=start_index,
    )
    return _natural_finite(res, lambda rows: minimize(
        prob, None, starts if st is None else st[rows], weights=None if user_w is None else user_w[rows],
        keep="all", screen=screen, threads=threads, backend=backend))


def _natural_failed(law, theta: np.ndarray) -> np.ndarray:
    """Where a fit's natural parameters are not all finite (a log parameter beyond ~709 is exp(...) = inf)."""
    logp = np.array([p.transform == "log" for p in law.params])
    bad = ~np.isfinite(theta)
    big = logp & (theta > 709.0)  # exp overflows above log(max float) = 709.78...
    if big.any():
        with np.errstate(over="ignore"):
            bad |= big & ~np.isfinite(np.exp(np.where(big, theta, 0.0)))
    return bad.any(axis=-1)


def _natural_finite(res: BatchFit, refit_all) -> BatchFit:
    """Converged fits whose natural parameters are not finite (A = exp(800) = inf: the fit ran off along a flat
    direction) become NON_FINITE, never a success. With keep="best" a row whose chosen fit is demoted is refitted
    with every start kept (``refit_all(rows)``; fits do not depend on their batch) and its best is chosen again by
    the same rule: success first, then the lowest objective, then the lowest start index. (A row whose chosen
    fit is finite is not refitted, so its ``n_success`` may still count another start that ran off.)"""
    bad = res.success & _natural_failed(res.law, res.theta)
    if not bad.any():
        return res
    status = res.status.copy()
    status[bad] = int(Status.NON_FINITE)
    if res.best_start is None:  # keep="all"
        return dataclasses.replace(res, status=status)
    n_success = res.n_success.copy()  # type: ignore[union-attr]  # set with keep="best"
    n_success[bad] -= 1
    fields = {k: getattr(res, k).copy() for k in ("x", "fun", "nit", "nfev", "at_bound", "best_start")}
    rows = np.flatnonzero(bad & (res.n_success > 1))  # type: ignore[operator]  # another start converged: it may be the row's answer
    if rows.size:
        alls = refit_all(rows)
        for j, r in enumerate(rows):
            ok = alls.success[j]
            fun = np.where(np.isfinite(alls.fun[j]), alls.fun[j], np.inf)
            b = int(np.lexsort((np.arange(fun.size), fun, ~ok))[0])
            for k in ("x", "fun", "nit", "nfev", "at_bound"):
                fields[k][r] = getattr(alls, k)[j, b]
            fields["best_start"][r] = b
            status[r] = alls.status[j, b]
            n_success[r] = int(ok.sum())
    return dataclasses.replace(res, status=status, n_success=n_success, theta=res.constraints.full(fields["x"]),
                               **fields)


_DISTINCT_LAST = None  # (features array, group of each run) of the last call


def _point_groups(ds: Dataset) -> tuple[int, np.ndarray | None]:
    """Number of distinct points (feature vectors) and the group of each run (None when all are distinct)."""
    global _DISTINCT_LAST
    hit = _DISTINCT_LAST
    if hit is None or hit[0] is not ds.features:
        F = ds.features
        n = F.shape[1]
        order = np.lexsort(F[::-1]) if F.shape[0] else np.arange(n)  # runs sorted by their feature vectors
        new = np.ones(n, dtype=bool)
        if n > 1:
            new[1:] = np.any(F[:, order[1:]] != F[:, order[:-1]], axis=0) if F.shape[0] else False
        G = int(np.count_nonzero(new))
        inv = None
        if G != n:
            inv = np.empty(n, dtype=np.int64)
            inv[order] = np.cumsum(new) - 1
        hit = (F, G, inv)
        _DISTINCT_LAST = hit
    return hit[1], hit[2]


def _identifiable_rows(law, ds: Dataset, con: Constraints, w):
    """Refuse data with fewer runs than free parameters; skip weight rows with too few (status NOT_RUN).

    A fit needs at least as many runs as free parameters, and at least as many distinct points (feature vectors,
    such as (N, D)) as free parameters the law's formula uses: repeated runs at one point determine one prediction.
    (A likelihood's scale is fitted from the spread of the residuals, so it needs a run, not a point.) Data that
    cannot satisfy this is a ValueError; a weight row that does not (a bootstrap resample with too few distinct
    runs, an empty row) gets weight 0, so the core skips it: NOT_RUN, one failed fit, not an aborted batch.
    Returns the weights to use (a copy when changed)."""
    n_prog = law.n_params - len(getattr(law, "loss_params", ()))
    need_points = len({int(j) for j in con.free_index[:n_prog] if j >= 0})
    need_runs = con.n_free
    G, inv = _point_groups(ds)
    names = ", ".join(con.free_names)
    if ds.n < need_runs:
        raise ValueError(f"the data has {ds.n} run(s) but the fit has {need_runs} free parameters ({names}): the "
                         f"law is not identified; fix or tie parameters, or add runs")
    if G < need_points:
        variables = ", ".join(dict.fromkeys(v for v, _ in law.program.features)) or "no variables"
        raise ValueError(f"the data has {G} distinct point(s) ({variables}) but the fit has {need_points} free "
                         f"parameters in the law's formula ({names}): the law is not identified; fix or tie "
                         f"parameters, or add runs at other points")
    if w is None:
        return None
    pos = w > 0
    few = np.count_nonzero(pos, axis=1) < need_runs
    if inv is not None:
        for r in np.flatnonzero(~few):
            few[r] = np.count_nonzero(np.bincount(inv[pos[r]], minlength=G)) < need_points
    if few.any():
        w = w.copy()
        w[few] = 0.0
    return w


_WEIGHT_RANGE = (2.0**-30, 2.0**30)


def _normalise_weights(w):
    """Weight rows whose largest weight lies outside [2^-30, 2^30] are scaled by a power of 4 that brings it near 1.

    Uniform weights of 1e200 or 1e-200 otherwise overflow or underflow inside the solver (squares of gradients),
    which then stops at a wrong point and calls it converged. A power of 4 changes no rounding (the Newton step,
    the Cholesky factor's square roots and every relative test are unchanged), and rows within the range are not
    touched at all. Returns the weights and, per row, the power of two to multiply the objective by (or None)."""
    if w is None:
        return w, None
    m = w.max(axis=1)
    out = (m > 0) & ((m < _WEIGHT_RANGE[0]) | (m > _WEIGHT_RANGE[1]))
    if not out.any():
        return w, None
    k = np.zeros(w.shape[0], dtype=np.int64)
    k[out] = 2 * np.floor(np.log2(m[out]) / 2).astype(np.int64)
    w = np.ldexp(w, -k[:, None])
    return w, k


def _screen(law, ds, spec, con, free, w, k: int, threads: int, backend: str):
    """The k best starts of each row by objective value (ties: lowest index): ((R, k, n_free), (R, k))."""
    from . import backends

    R = 1 if w is None else w.shape[0]
    S = free.shape[-2]
    k = min(k, S)
    core = backends.get(backend, R * S)  # "auto": the backend the whole batch of evaluations calls for
    program = backends.program_for(core, law)
    target = spec.target(ds)
    idx = np.empty((R, k), dtype=np.int64)
    for r in range(R):
        rows = free[r] if free.ndim == 3 else free
        theta = np.ascontiguousarray(con.full(rows))
        f, _, _ = core.evaluate(program, ds.features, target, theta, None if w is None else w[r],
                                spec.core(), 0, threads)
        f = np.where(np.isfinite(f), f, np.inf)
        idx[r] = np.argsort(f, kind="stable")[:k]
    sel = (free[np.arange(R)[:, None], idx] if free.ndim == 3 else free[idx])
    return np.ascontiguousarray(sel), idx


def _hoffmann_loss():
    """Hoffmann's problem as the backends take it: Huber, delta 1e-3, symmetric, log residuals."""
    return _core.Loss(int(_core.LOSS_KINDS["huber"]), 1e-3, 1.0, 0)


def _is_hoffmann_problem(spec) -> bool:
    return spec.name == "huber" and spec.residual == "log" and spec.asymmetry == 1.0 and spec.kernel_param == 1e-3


def _rescue(run, spec, ds, con, w, free, out: dict, keep_all: bool) -> dict:
    """Refit the starts that did not converge through a homotopy from Hoffmann's problem (fitted first, then
    the loss itself from that end point). Linear residuals and asymmetric losses have far-start failures that
    this turns into convergence (Huber on linear residuals: 1861 of Hoffmann's 4500 starts); converged fits
    are left as they are. keep="all": each failed start is refitted; keep="best": the rows whose best fit
    failed, from all their starts. A rescued fit replaces a failed one only when it converged."""
    R = 1 if w is None else w.shape[0]
    nf = con.n_free
    S = free.shape[-2]
    status = out["status"].reshape((R, S) if keep_all else (R,))
    bad = ~is_success(status)
    if not bad.any():
        return out
    per_row = free.ndim == 3
    if keep_all:
        rows = np.flatnonzero(bad.any(axis=1))
        k = int(bad[rows].sum(axis=1).max())
        idx = np.empty((rows.size, k), dtype=np.int64)  # per row, its failed starts (padded with the first)
        for i, r in enumerate(rows):
            js = np.flatnonzero(bad[r])
            idx[i] = np.concatenate([js, np.full(k - js.size, js[0])])
        starts = (free[rows[:, None], idx] if per_row else free[idx])
    else:
        rows = np.flatnonzero(bad)
        starts = free[rows] if per_row else np.broadcast_to(free, (rows.size,) + free.shape)
        k = S
    starts = np.ascontiguousarray(starts.reshape(rows.size, k, nf))
    sub = None if w is None else rows
    pre = run(_hoffmann_loss(), starts, True, prog=False, tgt=ds.target, rows=sub)
    res = run(spec.core(), pre["x"].reshape(rows.size, k, nf), keep_all, prog=False, rows=sub)
    out = {key: np.array(v, copy=True) for key, v in out.items()}  # contiguous: the reshapes below are views
    flat_out = {key: (v.reshape(-1, nf) if key == "x" else v.reshape(-1)) for key, v in out.items()}
    flat_res = {key: (v.reshape(-1, nf) if key == "x" else v.reshape(-1)) for key, v in res.items()}
    pre_nit, pre_nfev = pre["nit"].reshape(rows.size, k), pre["nfev"].reshape(rows.size, k)
    if keep_all:
        for i, r in enumerate(rows):
            for col, j in enumerate(np.flatnonzero(bad[r])):  # idx[i][:count]; the rest is padding
                p, q = r * S + j, i * k + col
                flat_out["nit"][p] += pre_nit[i, col] + flat_res["nit"][q]
                flat_out["nfev"][p] += pre_nfev[i, col] + flat_res["nfev"][q]
                if is_success(flat_res["status"][q]):
                    for key in ("x", "fun", "status", "at_bound"):
                        flat_out[key][p] = flat_res[key][q]
    else:
        for i, r in enumerate(rows):
            flat_out["nit"][r] += int(pre_nit[i].sum()) + int(flat_res["nit"][i])
            flat_out["nfev"][r] += int(pre_nfev[i].sum()) + int(flat_res["nfev"][i])
            if is_success(flat_res["status"][i]):
                for key in ("x", "fun", "status", "at_bound", "best_start", "n_success"):
                    flat_out[key][r] = flat_res[key][i]
    return out


def _best_per_row(out: dict, R: int, S: int) -> dict:
    """keep="best" from keep="all" arrays, by the batch's rule: success first, then the lower finite objective,
    then the lower start index. Adds best_start and n_success."""
    st_, f_ = out["status"].reshape(R, S), out["fun"].reshape(R, S)
    best = np.array([np.lexsort((np.arange(S), np.where(np.isfinite(f_[r]), f_[r], np.inf),
                                 ~is_success(st_[r])))[0] for r in range(R)], dtype=np.int32)
    pick = np.arange(R) * S + best
    res = {k: v[pick] for k, v in out.items() if k not in ("best_start", "n_success")}
    res["best_start"] = best
    res["n_success"] = np.asarray(is_success(st_).sum(axis=1), dtype=np.int32)
    return res


def _likelihood_via_lad(law, con) -> bool:
    """Whether the Huber likelihood's scale is a free parameter of its own, the last one (not fixed or tied)."""
    js = int(con.free_index[law.n_params - 1])
    return js == con.n_free - 1 and js > 0 and int(np.sum(con.free_index == js)) == 1


def _minimize_likelihood(run, law, ds, spec, con, w, free, keep_all: bool, core, program, threads: int) -> dict:
    """Epoch AI's Huber likelihood, whose delta is in standardised units (r / sigma): at its optimum sigma is
    tiny and almost every run lies outside the Huber band, so profiling sigma out leaves n log sum |r|, least
    absolute deviations; the optimum lies within ~delta sigma of the LAD vertex. So the law's parameters are
    first fitted exactly under the absolute loss from every start (the likelihood's own landscape has spurious
    basins, e.g. beta ~ 1.8 with B ~ 1e7, where smooth fits from far starts converge), sigma starts at its
    profile value delta sum w |r| / sum w, and a few Newton steps on the likelihood itself finish."""
    P = law.n_params
    js = con.n_free - 1
    fi = con.free_index.copy()
    fi[P - 1] = -1
    fv = con.fixed_value.copy()
    fv[P - 1] = 0.0
    base = Constraints(fi, fv, con.lower[:js], con.upper[:js], con.free_names[:js], con.rep[:js])
    lad = _losses.Loss("absolute", residual=spec.residual)
    out = _minimize_kinked(lambda *a, **k: run(*a, c=base, **k), law, ds, lad, base, w, free[..., :js], True,
                           core, program, threads)
    R = 1 if w is None else w.shape[0]
    xl = out["x"].reshape(R, -1, js)
    sums = _row_sums(w, ds.n, R)
    with np.errstate(all="ignore"):
        sigma = float(spec.param) * out["fun"].reshape(R, -1) / sums[:, None]
        log_sigma = np.log(np.where(sigma > 0, sigma, 1e-300))
    log_sigma = np.clip(log_sigma, con.lower[js], con.upper[js])
    not_run = out["status"].reshape(R, -1) == int(Status.NOT_RUN)  # keep the given start where nothing ran
    log_sigma = np.where(not_run, np.broadcast_to(free[..., js], log_sigma.shape), log_sigma)
    st = np.ascontiguousarray(np.concatenate([xl, log_sigma[..., None]], axis=-1))
    fin = run(spec.core(), st, True, prog=False)
    lad_ok = is_success(out["status"]).reshape(R, -1)
    status = np.where(lad_ok, fin["status"].reshape(R, -1), out["status"].reshape(R, -1))
    res = {"x": fin["x"], "fun": fin["fun"], "status": status.reshape(-1).astype(np.int32),
           "nit": out["nit"] + fin["nit"], "nfev": out["nfev"] + fin["nfev"], "at_bound": fin["at_bound"]}
    return res if keep_all else _best_per_row(res, R, status.shape[1])


def _minimize_kinked(run, law, ds, spec, con, w, free, keep_all: bool, core, program, threads: int) -> dict:
    """Absolute and quantile losses: Huber fits with a small threshold, then the exact vertex step on each
    row's best (keep='best') or on every start whose smooth fit is near its row's best (keep='all'); the
    objective reported is the exact one (see :mod:`lawfit.nonsmooth`)."""
    from . import nonsmooth

    a, b = nonsmooth.slopes(spec)
    unit = 1.0 if spec.residual == "log" else float(np.median(np.abs(ds.raw_loss)))
    res_kind = _losses.RESIDUALS.index(spec.residual)

    def smooth(delta: float):
        return _core.Loss(int(_core.LOSS_KINDS["huber"]), delta * unit, a / b, res_kind)

    R = 1 if w is None else w.shape[0]
    S = free.shape[-2]
    if spec.residual != "log" or a != b:
        # A homotopy from Hoffmann's problem (symmetric Huber on log residuals, which the solver is tuned
        # for): every start is fitted there first, then with the loss's asymmetry and residual scale. Direct
        # fits of a 10:1 asymmetric or a linear-residual Huber from far grid starts stop at the iteration
        # limit for 3 to 25 % of Hoffmann's grid; through the homotopy all converge.
        pre = run(_hoffmann_loss(), free, True, tgt=ds.target)
        first = run(smooth(nonsmooth.SMOOTH_DELTA), pre["x"].reshape(R, S, con.n_free), True, prog=False)
        out = dict(first, nit=first["nit"] + pre["nit"], nfev=first["nfev"] + pre["nfev"])
        if not keep_all:
            out = _best_per_row(out, R, S)
    else:
        out = run(smooth(nonsmooth.SMOOTH_DELTA), free, keep_all)
    x = out["x"].reshape((R, S, con.n_free) if keep_all else (R, 1, con.n_free)).copy()
    status = out["status"].reshape(x.shape[:2]).copy()
    at_bound = out["at_bound"].reshape(x.shape[:2]).copy()
    fun_s = out["fun"].reshape(x.shape[:2]).copy()
    nit = out["nit"].reshape(x.shape[:2]).copy()
    nfev = out["nfev"].reshape(x.shape[:2]).copy()
    # Continuation: the same fits with a threshold 10x smaller each time, from the previous end points
    # (only those that converged), so that the residuals closest to zero are the vertex's.
    for delta in nonsmooth.CONTINUATION:
        ok = is_success(status)
        if not ok.any():
            break
        nxt = run(smooth(delta), np.ascontiguousarray(x), True, prog=False)
        st2 = nxt["status"].reshape(x.shape[:2])
        take = ok & is_success(st2)
        x[take] = nxt["x"].reshape(x.shape)[take]
        fun_s[take] = nxt["fun"].reshape(x.shape[:2])[take]
        nit += np.where(ok, nxt["nit"].reshape(x.shape[:2]), 0)
        nfev += np.where(ok, nxt["nfev"].reshape(x.shape[:2]), 0)
    target = spec.target(ds)
    for r in range(R):
        wr = np.ones(ds.n) if w is None else w[r]
        reps: list = []  # (smooth end point, polished point, verified): starts that ended at the same point share
        for s_ in range(x.shape[1]):
            if not (is_success(status[r, s_]) and np.isfinite(fun_s[r, s_])):
                continue
            x0 = x[r, s_]
            hit = next((rp for rp in reps if np.all(np.abs(rp[0] - x0) <= 1e-7 * (1.0 + np.abs(x0)))), None)
            if hit is None:
                xs, _, verified = nonsmooth.polish(law, con, ds, spec, wr, x0)
                hit = (x0.copy(), xs, verified)
                reps.append(hit)
            xs, verified = hit[1], hit[2]
            x[r, s_] = xs
            if not verified:
                status[r, s_] = int(Status.STEP_FAILED)
            else:
                at = (xs <= con.lower) | (xs >= con.upper)
                at_bound[r, s_] = int(np.sum(np.where(at, 1 << np.arange(con.n_free), 0)))
                status[r, s_] = int(Status.CONVERGED_AT_BOUND if at.any() else Status.CONVERGED)
    # Exact objective of every fit.
    theta = np.ascontiguousarray(con.full(x.reshape(-1, con.n_free)))
    wrows = None if w is None else np.ascontiguousarray(np.repeat(w, x.shape[1], axis=0))
    f, _, _ = core.evaluate(program, ds.features, target, theta, wrows, spec.core(), 0, threads)
    fun = f.reshape(x.shape[:2])
    res = {"x": x.reshape(-1, con.n_free), "fun": fun.reshape(-1), "status": status.reshape(-1),
           "nit": nit.reshape(-1), "nfev": nfev.reshape(-1), "at_bound": at_bound.reshape(-1)}
    if not keep_all:
        res["best_start"] = out["best_start"]
        res["n_success"] = np.asarray(is_success(status).sum(axis=1), dtype=np.int32)
    return res
