""":func:`compare`: Approaches 1, 2 and 3 (the parametric Chinchilla fit) on the same runs, side by side."""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

import numpy as np

from .budgets import _read
from .envelope import approach1
from .profiles import approach2
from ..data import check_level
from .results import IsoFLOPResult

_approach1, _approach2 = approach1, approach2  # compare() takes results under these names


def compare(data=None, budget: float = 1e23, *, bootstrap: int | None = 1000, seed=0, level: float = 0.95,
            shape: str = "parabola", tolerance: float | None = None, budgets=None, min_runs: int | None = None,
            mode: str = "auto", starts: Any = "hoffmann", columns: Mapping[str, str] | None = None,
            approach1: IsoFLOPResult | None = None,
            approach2: IsoFLOPResult | None = None, approach3=None):
    """The three approaches on the same runs, side by side, as a DataFrame (index: approach 1, 2, 3).

    Columns: method, a, b (exponents of N_opt and D_opt in C) with ``_low`` / ``_high`` percentile intervals,
    N_opt, D_opt and tokens_per_param at ``budget`` with intervals, n_bootstrap, failed, seconds (the time
    to fit and bootstrap; NaN for results passed in).

    Results already computed may be passed as ``approach1`` / ``approach2`` (:class:`IsoFLOPResult`) and
    ``approach3`` (a Chinchilla :class:`~lawfit.FitResult`, with ``.bootstrap`` for intervals); the others are
    computed from ``data`` with ``bootstrap`` resamples and ``seed``: Approach 1 by :func:`approach1` (``mode``:
    "final" for a table of final losses whose model sizes recur across budgets, which "auto" reads as curves),
    Approach 2 by :func:`approach2` (``shape``, ``tolerance``, ``budgets``, ``min_runs``), Approach 3 by
    ``lawfit.fit("chinchilla", data, starts=starts, bootstrap=..., seed=...)`` with a = beta / (alpha + beta)
    from :func:`lawfit.allocation.chinchilla_exponents` and the allocation from
    :func:`lawfit.allocation.compute_optimal`.
    """
    import pandas as pd

    from .. import allocation
    from ..fitting import fit

    check_level(level)
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive FLOP count, got {budget!r}")
    if data is None and (approach1 is None or approach2 is None or approach3 is None):
        raise ValueError("compare() needs data= unless all three results are passed in")
    seconds = {}

    def timed(key, fn):
        t = time.perf_counter()
        out = fn()
        seconds[key] = time.perf_counter() - t
        return out

    if approach1 is None:
        approach1 = timed(1, lambda: _approach1(data, mode=mode, bootstrap=bootstrap, seed=seed, columns=columns))
    if approach2 is None:
        approach2 = timed(2, lambda: _approach2(data, shape=shape, tolerance=tolerance, budgets=budgets,
                                                min_runs=min_runs, bootstrap=bootstrap, seed=seed, columns=columns))
    if approach3 is None:
        c = _read(data, columns)  # N, D (from C when needed) and loss under lawfit's names
        table = {"N": c["N"], "D": c["D"], "loss": c["loss"]}
        approach3 = timed(3, lambda: fit("chinchilla", table, starts=starts, bootstrap=bootstrap, seed=seed))
    rows = []
    for k, res in ((1, approach1), (2, approach2)):
        row = {"approach": k, "method": res.method, "a": res.a, "b": res.b}
        ci = res.bootstrap.ci(level) if res.bootstrap is not None else None
        for name in ("a", "b"):
            row[f"{name}_low"], row[f"{name}_high"] = ci[name] if ci else (np.nan, np.nan)
        opt = res.optimal([budget], level).iloc[0]
        for name in ("N_opt", "D_opt", "tokens_per_param"):
            row[name] = opt[name]
            row[f"{name}_low"] = opt.get(f"{name}_low", np.nan)
            row[f"{name}_high"] = opt.get(f"{name}_high", np.nan)
        row["n_bootstrap"] = res.bootstrap.n if res.bootstrap is not None else 0
        row["failed"] = res.bootstrap.n_failed if res.bootstrap is not None else 0
        rows.append(row)
    a3, b3, _ = allocation.chinchilla_exponents(approach3.params)
    row = {"approach": 3, "method": f"parametric ({approach3.law.name}, {approach3.loss})", "a": float(a3),
           "b": float(b3)}
    boot = approach3.bootstrap
    if boot is not None:
        da, db, _ = allocation.chinchilla_exponents({k: v[boot.ok] for k, v in boot.params.items()})
        tail = (1 - level) / 2
        row["a_low"], row["a_high"] = float(np.quantile(da, tail)), float(np.quantile(da, 1 - tail))
        row["b_low"], row["b_high"] = float(np.quantile(db, tail)), float(np.quantile(db, 1 - tail))
    else:
        row["a_low"] = row["a_high"] = row["b_low"] = row["b_high"] = np.nan
    opt = allocation.compute_optimal(approach3, [budget], level=level).iloc[0]
    for name in ("N_opt", "D_opt", "tokens_per_param"):
        row[name] = opt[name]
        row[f"{name}_low"] = opt.get(f"{name}_low", np.nan)
        row[f"{name}_high"] = opt.get(f"{name}_high", np.nan)
    row["n_bootstrap"] = boot.n if boot is not None else 0
    row["failed"] = boot.n_failed if boot is not None else 0
    rows.append(row)
    df = pd.DataFrame(rows).set_index("approach")
    df["seconds"] = [seconds.get(k, np.nan) for k in (1, 2, 3)]
    df.attrs["budget"] = float(budget)
    df.attrs["level"] = float(level)
    return df
