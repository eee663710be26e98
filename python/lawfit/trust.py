"""The solver's trust-region scaling: one positive number per free parameter, from the law's structure and
the data's features (see DESIGN.md, "The solver")."""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from . import laws as _laws
from .constraints import Constraints, constraints
from .data import Dataset, prepare

__all__ = ["trust_scale"]


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


def _trust_scale_option(value, law, ds, con) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"trust_scale must be 'auto', None or an array of positive numbers, got {value!r}")
        # The last result is kept (one entry, keyed by everything trust_scale reads): a small fit would
        # otherwise spend longer here (~0.6 ms, NumPy over the program) than in the solver, also when the
        # law is rebuilt by name on every call.
        from .backends.compiled import compiled

        memo = compiled(law.program).memo  # one entry per program, in the backends' cache of compiled laws
        key = (tuple(p.grid for p in law.params), ds.features.shape, ds.features.tobytes(),
               con.free_index.tobytes(), con.fixed_value.tobytes(), con.lower.tobytes(), con.upper.tobytes())
        hit = memo.get("trust_scale")
        if hit is None or hit[0] != key:
            hit = (key, trust_scale(law, ds, con))
            memo["trust_scale"] = hit
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
