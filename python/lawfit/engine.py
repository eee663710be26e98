"""The batched engine: objective evaluation and minimisation over numpy arrays, for lawfit itself and for
other fitting code that wants a fast backend.

Everything here works on the law's *internal* parameter vector (the fitted quantities, e.g.
``e, a, b, alpha, beta`` for Chinchilla, in the order of ``law.internal_names``).
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from . import laws as _laws
from . import progress as _progress
from .data import Dataset, prepare
from .status import Status, is_success

__all__ = ["Constraints", "constraints", "evaluate", "minimize", "BatchFit", "Evaluation", "LOSSES"]

# loss name -> kernel loss kind. "asymmetric_huber" is Huber with over-predictions (log L_hat > log L)
# weighted ``asymmetry`` times, for fitting the lower envelope of runs.
# "huber_likelihood" is Epoch AI's negative log likelihood with a Huber-type error of fitted scale sigma (an
# extra parameter, see Law.with_scale).
LOSSES = {"huber": 0, "squared": 1, "asymmetric_huber": 0, "huber_likelihood": 2}


def law_for_loss(law, loss: str):
    """The law whose parameters the engine fits under ``loss`` (adds sigma for the Huber likelihood)."""
    law = _laws.get(law)
    return law.with_scale() if loss == "huber_likelihood" else law


def _loss(loss: str, delta: float, asymmetry: float = 2.0) -> tuple[int, float, float]:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}")
    for name, v in (("delta", delta), ("asymmetry", asymmetry)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
        if not (_finite(v) and v > 0):
            raise ValueError(f"{name} must be positive and finite, got {v}")
    return LOSSES[loss], float(delta), float(asymmetry) if loss == "asymmetric_huber" else 1.0


def _finite(v) -> bool:
    """Whether a real number is finite in float64 (an integer too large for a float is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _is_real(v) -> bool:
    """Whether v is a real scalar: not a string (float() takes "0.5"), not complex (float() of a numpy complex
    drops the imaginary part with only a warning), not an array."""
    return not isinstance(v, (str, bytes, complex, np.complexfloating)) and np.ndim(v) == 0


def _threads(threads) -> int:
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None (all cores), got {threads!r}")
    return int(min(threads, os.cpu_count() or 1))  # more threads than cores only cost memory and start-up


@dataclass(frozen=True)
class Constraints:
    """How the full parameter vector is built from the free one: theta[k] = x[free_index[k]] or fixed."""

    free_index: np.ndarray  # (n_params,) int32, -1 for fixed
    fixed_value: np.ndarray  # (n_params,) internal scale
    lower: np.ndarray  # (n_free,) internal scale
    upper: np.ndarray
    free_names: tuple  # internal name of each free parameter (the first of a tied group)
    rep: np.ndarray  # (n_free,) full index representing each free parameter

    @property
    def n_free(self) -> int:
        return len(self.free_names)

    def full(self, x: np.ndarray) -> np.ndarray:
        """Full internal vectors from free ones (any leading shape)."""
        x = np.asarray(x, dtype=float)
        out = np.empty(x.shape[:-1] + (len(self.free_index),))
        for k, j in enumerate(self.free_index):
            out[..., k] = x[..., j] if j >= 0 else self.fixed_value[k]
        return out


def constraints(law, bounds: Mapping[str, Sequence[float]] | None = None,
                fixed: Mapping[str, float] | None = None,
                tie: Sequence[Sequence[str]] | Mapping[str, str] | None = None) -> Constraints:
    """Resolve bounds, fixed and tied parameters (names natural or internal; values on the scale the
    name implies).

    ``tie`` is a list of groups (``[("alpha", "beta")]``) or a mapping ``{"beta": "alpha"}``.
    """
    P = law.n_params
    for what, arg in (("bounds", bounds), ("fixed", fixed)):
        if arg is not None and not isinstance(arg, Mapping):
            raise TypeError(f"{what} must be a mapping from parameter names to "
                            f"{'(lower, upper) pairs' if what == 'bounds' else 'values'}, got {type(arg).__name__}")
    if isinstance(tie, str):
        raise TypeError(f"tie must be a list of groups such as [('alpha', 'beta')], got the string {tie!r}")
    lo = np.array([p.internal_bounds()[0] for p in law.params])
    hi = np.array([p.internal_bounds()[1] for p in law.params])
    for name, b in (bounds or {}).items():
        i = law.index(name)
        try:
            if isinstance(b, (str, bytes)):
                raise TypeError
            pair = tuple(b)
            if any(not _is_real(v) for v in pair if v is not None):
                raise TypeError  # "0.5" is not a number here (float() would take it)
            blo, bhi = (float(v) if v is not None else None for v in pair)
        except OverflowError:
            raise ValueError(f"bounds for {name!r} must be within the float64 range, got {b!r}") from None
        except (TypeError, ValueError):
            raise ValueError(f"bounds for {name!r} must be a pair (lower, upper), got {b!r}") from None
        blo = -math.inf if blo is None else blo
        bhi = math.inf if bhi is None else bhi
        if math.isnan(blo) or math.isnan(bhi):
            raise ValueError(f"bounds for {name!r} contain NaN")
        if blo > bhi:
            raise ValueError(f"lower bound {blo:g} of parameter {name!r} is above its upper bound {bhi:g}")
        p = law.params[i]
        if name == p.internal or p.transform == "identity":
            lo[i], hi[i] = blo, bhi
        else:
            if bhi <= 0:
                raise ValueError(f"parameter {name!r} is positive (log scale); upper bound {bhi:g} is not")
            lo[i] = math.log(blo) if blo > 0 else -math.inf
            hi[i] = math.log(bhi) if math.isfinite(bhi) else math.inf
    fixed_value = np.zeros(P)
    is_fixed = np.zeros(P, dtype=bool)
    for name, v in (fixed or {}).items():
        i = law.index(name)
        if isinstance(v, bool) or not _is_real(v):
            raise TypeError(f"fixed value of parameter {name!r} must be a number, got {v!r}")
        try:
            iv = float(law.value_to_internal(name, v))
        except OverflowError:
            raise ValueError(f"fixed value of parameter {name!r} is too large for float64") from None
        except (TypeError, ValueError):
            raise TypeError(f"fixed value of parameter {name!r} must be a number, got {v!r}") from None
        if not math.isfinite(iv):
            raise ValueError(f"fixed value {v!r} of parameter {name!r} is not valid on its scale")
        if not lo[i] <= iv <= hi[i]:
            raise ValueError(f"fixed value {v!r} of parameter {name!r} is outside its bounds "
                             f"[{lo[i]:g}, {hi[i]:g}] (internal scale)")
        fixed_value[i], is_fixed[i] = iv, True
    # Tied groups: union by representative (lowest index).
    parent = list(range(P))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    groups = [] if tie is None else ([(k, v) for k, v in tie.items()] if isinstance(tie, Mapping) else tie)
    if not isinstance(groups, (list, tuple)):
        raise TypeError(f"tie must be a list of groups such as [('alpha', 'beta')] or a mapping, "
                        f"got {type(tie).__name__}")
    for g in groups:
        if not isinstance(g, (list, tuple, set, frozenset)) or len(g) < 2:
            raise ValueError(f"each tie must name at least two parameters, got {g!r} "
                             f"(tie is a list of groups such as [('alpha', 'beta')])")
        ids = [law.index(n) for n in g]
        kinds = {law.params[i].transform for i in ids}
        if len(kinds) > 1:
            raise ValueError(f"tied parameters {list(g)} must share one transform (log or identity)")
        r = min(find(i) for i in ids)
        for i in ids:
            parent[find(i)] = r
    free_index = np.full(P, -1, dtype=np.int32)
    rep: list[int] = []
    for i in range(P):
        r = find(i)
        grp = [k for k in range(P) if find(k) == r]
        if any(is_fixed[k] for k in grp):
            vals = {fixed_value[k] for k in grp if is_fixed[k]}
            if len(vals) > 1:
                raise ValueError(f"tied parameters {[law.params[k].name for k in grp]} are fixed to different values")
            fixed_value[i] = vals.pop()
            continue
        if r == i:
            rep.append(i)
    for j, r in enumerate(rep):
        for k in range(P):
            if find(k) == r:
                free_index[k] = j
    if not rep:
        raise ValueError("every parameter is fixed: nothing to fit")
    flo = np.array([max(lo[k] for k in range(P) if free_index[k] == j) for j in range(len(rep))])
    fhi = np.array([min(hi[k] for k in range(P) if free_index[k] == j) for j in range(len(rep))])
    for j, r in enumerate(rep):
        if flo[j] > fhi[j]:
            raise ValueError(f"tied parameters around {law.params[r].name!r} have disjoint bounds")
    return Constraints(free_index, fixed_value, flo, fhi, tuple(law.params[r].internal for r in rep),
                       np.array(rep, dtype=np.int64))


def _weights(w, n: int, rows_ok: bool = True) -> np.ndarray | None:
    if w is None:
        return None
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


def evaluate(law, data: Any, params, *, weights=None, loss: str = "huber", delta: float = 1e-3,
             asymmetry: float = 2.0, derivatives: int = 1, threads: int | None = None, columns=None,
             backend: str = "cpu") -> Evaluation:
    """Objective ``sum_i w_i rho(log L_hat_i - log L_i)`` with gradient (and Hessian) for a batch.

    Parameters
    ----------
    law : Law or built-in name.
    data : DataFrame, mapping of arrays or a prepared :class:`~lawfit.data.Dataset`.
    params : (B, P) internal parameter vectors (order ``law.internal_names``); (P,) is one row.
    weights : None, (n,) shared by all rows, or (B, n) one weight row per parameter row.
    loss, delta, asymmetry : "huber" (with ``delta``), "squared" (r^2 / 2) or "asymmetric_huber" (Huber with
        over-predictions weighted ``asymmetry`` times).
    derivatives : 0 (objective only), 1 (and gradient) or 2 (and Hessian).
    backend : "cpu" (the C++ core), "cuda" (numba CUDA, see :mod:`lawfit.backends`) or "auto".
    """
    kind, delta, asym = _loss(loss, delta, asymmetry)
    law = law_for_loss(law, loss)
    ds = prepare(law, data, columns=columns)
    p = np.asarray(params)
    if p.dtype.kind not in "iuf":
        raise TypeError(f"params must be numeric, got dtype {p.dtype}")
    p = np.ascontiguousarray(np.atleast_2d(np.asarray(p, dtype=np.float64)))
    if p.ndim != 2 or p.shape[1] != law.n_params:
        raise ValueError(f"params must have shape (batch, {law.n_params}) ({', '.join(law.internal_names)}), "
                         f"got {np.shape(params)}")
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
    f, g, h = core.evaluate(backends.program_for(core, law), ds.features, ds.target, p, w, kind, delta, asym,
                            derivatives, _threads(threads))
    return Evaluation(f, g, h)


@dataclass(frozen=True)
class BatchFit:
    """Results of a batch of fits: one entry per weight row (keep='best') or per (row, start)."""

    law: Any
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

    @property
    def success(self) -> np.ndarray:
        return is_success(self.status)

    def natural(self) -> dict[str, np.ndarray]:
        """Natural-scale parameter arrays keyed by name."""
        return {p.name: p.to_natural(self.theta[..., i]) for i, p in enumerate(self.law.params)}

    def status_counts(self) -> dict[str, int]:
        codes, counts = np.unique(self.status, return_counts=True)
        return {Status(int(c)).name: int(n) for c, n in zip(codes, counts)}


def minimize(law, data: Any, starts: Any = "grid", *, weights=None, bounds=None, fixed=None, tie=None,
             loss: str = "huber", delta: float = 1e-3, asymmetry: float = 2.0, keep: str = "best",
             max_iter: int = 200,
             xtol: float = 1e-10, ftol: float = 1e-14, radius0: float = 0.05, irls: float = 0.25,
             switch_rtol: float = 1e-4, trust_scale="auto", threads: int | None = None, columns=None,
             progress=None, backend: str = "cpu") -> BatchFit:
    """Fit every (weight row, start) pair; return all fits or the best start of each row.

    Parameters
    ----------
    starts : "grid" (the law's default grid), "hoffmann", a dict of per-parameter values (a grid), an
        array (S, n_params) of full internal vectors, or (R, S, n_params) with starts per weight row.
    weights : None (one row of ones), (n,) or (R, n) non-negative weights (bootstrap counts).
    keep : "best" (one fit per row: success first, then lowest objective, then lowest start index) or
        "all" (arrays of shape (R, S, ...)).
    progress : True for a progress bar on stderr (after ~1 s), or a callable(done, total).
    max_iter, xtol, ftol, radius0, irls, switch_rtol : solver options (see DESIGN.md, "The solver").
        Every stopping rule is relative, so none depends on the number of runs, on sum vs mean or on
        the objective's size.
    trust_scale : "auto" (:func:`trust_scale`: the trust region is measured by how much a step moves the
        law's terms), None (plain Euclidean steps) or an array with a positive scale per free parameter.
    backend : "cpu" (the C++ core on all cores), "cuda" (numba CUDA; raises
        :class:`~lawfit.backends.BackendUnavailable` when it cannot run) or "auto" (the GPU for large batches
        when one is usable). Backends give the same statuses and agree on objectives to 1e-9 relative.
    """
    from . import backends
    from .starts import resolve

    law = law_for_loss(law, loss)
    if keep not in ("best", "all"):
        raise ValueError(f"keep must be 'best' or 'all', got {keep!r}")
    ds = prepare(law, data, columns=columns)
    kind, delta, asym = _loss(loss, delta, asymmetry)
    con = constraints(law, bounds, fixed, tie)
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
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or not 1 <= max_iter < 2**31:
        raise ValueError(f"max_iter must be a positive integer below 2**31, got {max_iter!r}")
    for name, v in (("xtol", xtol), ("ftol", ftol), ("radius0", radius0), ("irls", irls),
                    ("switch_rtol", switch_rtol)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"solver option {name} must be a number, got {v!r}")
        if not _finite(v):
            raise ValueError(f"solver option {name} must be finite, got {v!r}")
    scale = _trust_scale_option(trust_scale, law, ds, con)
    core = backends.get(backend, R * free.shape[-2])
    out = core.minimize(backends.program_for(core, law), ds.features, ds.target, w, free, con.free_index,
                        con.fixed_value, con.lower, con.upper, kind, delta, asym, int(max_iter), float(xtol),
                        float(ftol), float(radius0), float(irls), float(switch_rtol), keep == "all",
                        _threads(threads), _progress.resolve(progress), scale=scale)
    S = free.shape[-2]
    x = out["x"]
    shape = (R, S) if keep == "all" else (R,)
    x = x.reshape(shape + (con.n_free,))
    return BatchFit(
        law=law, constraints=con, x=x, theta=con.full(x), fun=out["fun"].reshape(shape),
        status=out["status"].reshape(shape), nit=out["nit"].reshape(shape), nfev=out["nfev"].reshape(shape),
        at_bound=out["at_bound"].reshape(shape),
        best_start=out.get("best_start"), n_success=out.get("n_success"),
    )


def trust_scale(law, data: Any, con: Constraints | None = None, *, columns=None) -> np.ndarray:
    """The solver's trust-region scaling, one positive number per free parameter.

    When a law's log prediction is a log-sum-exp of terms (log L = lse_k u_k, as Chinchilla's), D_j is the
    largest, over the terms, of the root mean square over the points of d u_k / d x_j, at a reference
    point: each free parameter's default-grid median (0 when it has no grid), clipped into its bounds. The
    trust region then bounds |D s|, roughly how far a step moves the terms (in log space), so an exponent
    multiplying log N ~ 20 takes ~20 times shorter steps than a log-coefficient. D depends on the law, the
    constraints and the data's features only (not on weights or starts), so chunked runs and bootstrap rows
    share it. Entries that come out zero or not finite (a parameter no term depends on, such as a
    likelihood's scale) are 1; the rest are clipped to [1e-3, 1e3]. Laws of another form (Kaplan's
    alpha_D * lse(...), a single power law) get all ones: their sensitivities there depend on where the
    fit is, not on the law's structure, and measured on Kaplan they made paths worse.
    """
    from .compiler import OPS, program_nodes

    law = _laws.get(law)
    ds = data if isinstance(data, Dataset) else prepare(law, data, columns=columns)
    con = con if con is not None else constraints(law)
    prog = law.program
    root = len(prog.op) - 1
    out = np.ones(con.n_free)
    if int(prog.op[root]) != OPS["lse"]:
        return out
    ref = np.empty(con.n_free)
    for a, r in enumerate(con.rep):
        p = law.params[int(r)]
        v = float(statistics.median(p.grid)) if p.grid else 0.0
        ref[a] = min(max(v, con.lower[a]), con.upper[a])
    # Complex step, every free parameter at once (row a perturbs parameter a):
    # d f / d x = Im f(x + i h) / h, exact to rounding.
    h = 1e-20
    theta = np.repeat(con.full(ref)[None, :], con.n_free, axis=0).astype(complex)
    for k, a in enumerate(con.free_index):
        if a >= 0:
            theta[a, k] += 1j * h
    ia, ib = int(prog.a[root]), int(prog.b[root])
    # the points in blocks (each node is (n_free, block) complex): one block up to _SCALE_BLOCK points,
    # which is np.mean exactly; beyond, per-block sums added in order
    ss = np.zeros((ib, con.n_free))
    for lo in range(0, ds.n, _SCALE_BLOCK):
        hi = min(ds.n, lo + _SCALE_BLOCK)
        vals = program_nodes(prog, ds.features[:, lo:hi], theta)
        with np.errstate(all="ignore"):
            for t, (j, f) in enumerate(zip(prog.args[ia:ia + ib], prog.argflags[ia:ia + ib])):
                ss[t] += np.sum(np.broadcast_to(np.imag(vals[int(j)] if int(f) == 0 else np.log(vals[int(j)])) / h,
                                                (con.n_free, hi - lo)) ** 2, axis=1)
        del vals
    with np.errstate(all="ignore"):
        d = np.sqrt(np.max(ss / ds.n, axis=0))
    ok = np.isfinite(d) & (d > 0.0)
    out[ok] = np.clip(d[ok], 1e-3, 1e3)
    return out


_SCALE_BLOCK = 65536  # points per block in trust_scale
_TRUST_SCALE_LAST = None  # (key, scale) of the last "auto" call


def _trust_scale_option(value, law, ds, con) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"trust_scale must be 'auto', None or an array of positive numbers, got {value!r}")
        # The last result is kept (one entry, keyed by everything trust_scale reads): a small fit would
        # otherwise spend longer here (~0.6 ms, NumPy over the program) than in the solver, also when the
        # law is rebuilt by name on every call.
        global _TRUST_SCALE_LAST
        pr = law.program
        key = (tuple(np.asarray(a).tobytes() for a in (pr.op, pr.a, pr.b, pr.imm, pr.args, pr.argflags)),
               tuple(p.grid for p in law.params), ds.features.shape, ds.features.tobytes(),
               con.free_index.tobytes(), con.fixed_value.tobytes(), con.lower.tobytes(), con.upper.tobytes())
        hit = _TRUST_SCALE_LAST
        if hit is None or hit[0] != key:
            hit = (key, trust_scale(law, ds, con))
            _TRUST_SCALE_LAST = hit
        return hit[1].copy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"trust_scale must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=float)
    if arr.shape != (con.n_free,):
        raise ValueError(f"trust_scale must have one entry per free parameter ({con.n_free}: "
                         f"{', '.join(con.free_names)}), got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        raise ValueError(f"trust_scale for free parameter {con.free_names[bad[0]]!r} must be positive and "
                         f"finite, got {arr[bad[0]]!r}")
    return arr


def _check_starts(law, con: Constraints, free: np.ndarray) -> None:
    flat = free.reshape(-1, con.n_free)
    bad = np.argwhere(~np.isfinite(flat))
    if bad.size:
        s, j = bad[0]
        raise ValueError(f"start {s}: parameter {con.free_names[j]} is {flat[s, j]} (starts must be finite)")
    below = np.argwhere(flat < con.lower)
    above = np.argwhere(flat > con.upper)
    for arr, word, b in ((below, "below its lower", con.lower), (above, "above its upper", con.upper)):
        if arr.size:
            s, j = arr[0]
            raise ValueError(
                f"start {s}: parameter {con.free_names[j]} = {flat[s, j]:g} is {word} bound {b[j]:g} "
                f"(internal scale); {len(arr)} start value(s) out of bounds"
            )
