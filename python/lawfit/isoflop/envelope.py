"""Approach 1, the lower envelope: :func:`approach1` on training curves (interpolated on a grid of budgets) or
on final losses (the Pareto front of loss against C), with its bootstrap of the runs."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .budgets import _read
from .minima import _power_law
from .resampling import _check_bootstrap, _resample_blocks
from .results import IsoFLOPBootstrap, IsoFLOPResult

_MAX_CELLS = 1 << 26  # curves x envelope budgets in Approach 1 (two float arrays of this many cells)


def approach1(data, *, n_grid: int = 1500, mode: str = "auto", bootstrap: int | None = None, seed=None,
              columns: Mapping[str, str] | None = None) -> IsoFLOPResult:
    """Hoffmann et al.'s Approach 1: the lower envelope of loss against compute, and power laws along it.

    Parameters
    ----------
    data : training curves, several rows per run: N, tokens so far D (or C), loss, and optionally a ``run``
        column (runs of one size with different schedules); without it, rows are grouped by N.
    n_grid : log-spaced budgets within the range the curves cover (Hoffmann et al. used 1500).
    mode : "curves", "final" (one row per run: the envelope of final points, the Pareto front of loss against
        C) or "auto" ("final" when every run has one row, else "curves"; runs with one row are then dropped).
    bootstrap, seed : resample the runs (models) ``bootstrap`` times with ``numpy.random.default_rng(seed)``.
    """
    if mode not in ("auto", "curves", "final"):
        raise ValueError(f"mode must be 'auto', 'curves' or 'final', got {mode!r}")
    if isinstance(n_grid, bool) or not isinstance(n_grid, (int, np.integer)) or n_grid < 2:
        raise ValueError(f"n_grid must be an integer >= 2, got {n_grid!r}")
    nboot = _check_bootstrap(bootstrap)
    cols = _read(data, columns)
    N, D, C, loss = cols["N"], cols["D"], cols["C"], cols["loss"]
    keys = cols["run"] if "run" in cols else N
    uniq, inv = np.unique(keys, return_inverse=True)
    inv = inv.ravel()
    sizes = np.bincount(inv, minlength=uniq.size)
    if mode == "auto":
        mode = "final" if sizes.max() == 1 else "curves"
    if mode == "final":
        return _final_envelope(N, D, C, loss, nboot, seed)
    runname = columns.get("run", "run") if columns else "run"
    notes = []
    groups = []
    for g in range(uniq.size):
        idx = np.flatnonzero(inv == g)
        if idx.size < 2:
            continue
        if "run" in cols and np.ptp(N[idx]) > 0:
            raise ValueError(f"run {uniq[g]!r} has rows with different N (rows {idx[0]} and "
                             f"{idx[np.argmax(N[idx] != N[idx[0]])]}): column {runname!r} must label one model")
        idx = idx[np.argsort(C[idx], kind="stable")]
        dup = np.flatnonzero(np.diff(C[idx]) <= 0)
        if dup.size:
            i, j = idx[dup[0]], idx[dup[0] + 1]
            who = f"run {uniq[g]!r}" if "run" in cols else f"the model with N = {N[idx[0]]:.4g}"
            raise ValueError(f"{who} has two rows at the same compute (rows {i} and {j}, C = {C[i]:.4g}); "
                             f"a training curve needs one loss per token count (label runs with a 'run' column)")
        groups.append(idx)
    if "run" not in cols:
        notes.append(f"rows grouped into curves by N ({len(groups)} sizes with 2+ rows; label runs with a 'run' "
                     f"column, or pass mode='final' for final losses)")
    dropped = int(np.count_nonzero(sizes < 2))
    if dropped:
        notes.append(f"{dropped} {'runs' if 'run' in cols else 'sizes'} with a single row dropped (not a curve)")
    if len(groups) < 3:
        raise ValueError(f"Approach 1 needs training curves of at least 3 runs (models) with 2+ rows each; "
                         f"got {len(groups)}")
    Ng = np.array([N[idx[0]] for idx in groups])
    lo = min(np.log(C[idx[0]]) for idx in groups)
    hi = max(np.log(C[idx[-1]]) for idx in groups)
    if len(groups) * int(n_grid) > _MAX_CELLS:
        raise ValueError(f"n_grid={n_grid} budgets x {len(groups)} curves is {len(groups) * int(n_grid):,} "
                         f"interpolated losses, more than {_MAX_CELLS:,}; use a smaller n_grid (--grid)")
    grid = np.linspace(lo, hi, int(n_grid))
    Lg = np.full((len(groups), grid.size), np.inf)
    lDg = np.zeros((len(groups), grid.size))
    for g, idx in enumerate(groups):
        lc = np.log(C[idx])
        cov = (grid >= lc[0]) & (grid <= lc[-1])
        Lg[g, cov] = np.interp(grid[cov], lc, loss[idx])
        lDg[g, cov] = np.interp(grid[cov], lc, np.log(D[idx]))
    lNg = np.log(Ng)
    win, lmin, used = _envelope(Lg, lNg, np.ones((1, len(groups)), bool))
    win, lmin, used = win[0], lmin[0], used[0]
    covered = np.isfinite(lmin)
    import pandas as pd

    labels = uniq[sizes >= 2]  # the label of each curve, in the order of groups
    lNopt = lNg[win]
    lDopt = lDg[win, np.arange(grid.size)]
    points = pd.DataFrame({"C": np.exp(grid), "N_opt": np.where(covered, np.exp(lNopt), np.nan),
                           "D_opt": np.where(covered, np.exp(lDopt), np.nan), "loss": np.where(covered, lmin, np.nan),
                           "run": [labels[w] if c else None for w, c in zip(win, covered)],
                           "used": used})
    points = points[covered].reset_index(drop=True)
    if used.sum() < 2:
        raise ValueError(f"Approach 1: fewer than two envelope points are bracketed (a smaller and a larger model "
                         f"covering the same C); {int(covered.sum())} covered budgets")
    a, kN = _power_law(grid[None], lNopt[None], used[None])
    b, kD = _power_law(grid[None], lDopt[None], used[None])
    excl = int(np.count_nonzero(covered & ~used))
    if excl:
        notes.append(f"{excl} of {int(covered.sum())} envelope points not bracketed (the winner is the smallest or "
                     f"largest model covering that C): excluded")
    boot = None
    if nboot:
        parts = []
        for _, _, present in _resample_blocks(len(groups), nboot, seed, len(groups) + 8 * grid.size):
            win, lmin, ok = _envelope(Lg, lNg, present)
            lN = lNg[win]
            lD = lDg[win, np.arange(grid.size)[None, :]]
            ba, bkN = _power_law(grid[None], lN, ok)
            bb, bkD = _power_law(grid[None], lD, ok)
            parts.append((ba, bb, bkN, bkD, ok.sum(-1)))
        ba, bb, bkN, bkD, n_used = (np.concatenate(v) for v in zip(*parts))
        boot = IsoFLOPBootstrap(n=nboot, seed=seed if not isinstance(seed, np.random.Generator) else None,
                                unit="runs (models)", a=ba, b=bb, log_kN=bkN, log_kD=bkD, n_used=n_used,
                                n_dropped=np.zeros(nboot, dtype=int))
    runs = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss, "run": keys})
    return IsoFLOPResult(approach=1, method="envelope", a=float(a[0]), b=float(b[0]), log_kN=float(kN[0]),
                         log_kD=float(kD[0]), points=points, n_runs=int(len(groups)), n_used=int(used.sum()),
                         options={"n_grid": int(n_grid), "mode": "curves"}, notes=tuple(notes), bootstrap=boot,
                         runs=runs)


def _envelope(Lg, lNg, present, chunk_elems: int = 2_000_000):
    """For resample masks present (R, G): envelope winner (R, K), its loss, and whether it is bracketed."""
    G, K = Lg.shape
    R = present.shape[0]
    win = np.zeros((R, K), dtype=int)
    lmin = np.full((R, K), np.inf)
    ok = np.zeros((R, K), dtype=bool)
    step = max(1, chunk_elems // max(1, G * K))
    for lo in range(0, R, step):
        hi = min(R, lo + step)
        pc = present[lo:hi, :, None] & np.isfinite(Lg)[None]  # (r, G, K) present and covering
        L = np.where(pc, Lg[None], np.inf)
        w = np.argmin(L, axis=1)
        lm = np.take_along_axis(L, w[:, None, :], 1)[:, 0, :]
        nw = lNg[w]
        nmin = np.where(pc, lNg[None, :, None], np.inf).min(1)
        nmax = np.where(pc, lNg[None, :, None], -np.inf).max(1)
        win[lo:hi], lmin[lo:hi] = w, lm
        ok[lo:hi] = np.isfinite(lm) & (nmin < nw) & (nw < nmax)
    lmin = np.where(np.isfinite(lmin), lmin, np.nan)
    return win, lmin, ok


def _final_envelope(N, D, C, loss, nboot, seed) -> IsoFLOPResult:
    import pandas as pd

    order = np.lexsort((loss, C))
    lc = np.log(C[order])

    def front(present):
        L = np.where(present, loss[order][None, :], np.inf)
        prev = np.concatenate([np.full((L.shape[0], 1), np.inf), np.minimum.accumulate(L, axis=1)[:, :-1]], axis=1)
        return present & (L < prev)

    f = front(np.ones((1, N.size), bool))
    if f.sum() < 2:
        raise ValueError("Approach 1 (final points): fewer than two runs on the envelope")
    lN, lD = np.log(N[order]), np.log(D[order])
    a, kN = _power_law(lc[None], lN[None], f)
    b, kD = _power_law(lc[None], lD[None], f)
    boot = None
    if nboot:
        parts = []
        for _, _, present in _resample_blocks(N.size, nboot, seed, 8 * N.size):
            fb = front(present[:, order])
            ba, bkN = _power_law(lc[None], lN[None], fb)
            bb, bkD = _power_law(lc[None], lD[None], fb)
            parts.append((ba, bb, bkN, bkD, fb.sum(-1)))
        ba, bb, bkN, bkD, n_used = (np.concatenate(v) for v in zip(*parts))
        boot = IsoFLOPBootstrap(n=nboot, seed=seed if not isinstance(seed, np.random.Generator) else None,
                                unit="runs", a=ba, b=bb, log_kN=bkN, log_kD=bkD, n_used=n_used,
                                n_dropped=np.zeros(nboot, dtype=int))
    sel = order[f[0]]
    points = pd.DataFrame({"C": C[sel], "N_opt": N[sel], "D_opt": D[sel], "loss": loss[sel], "row": sel,
                           "used": np.ones(sel.size, bool)})
    note = ("final losses only (one row per run): the envelope of final points, i.e. the runs with a lower loss "
            "than every run of smaller C; N and D are fitted against their own C (no interpolation along curves)")
    runs = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss})
    return IsoFLOPResult(approach=1, method="final-point envelope", a=float(a[0]), b=float(b[0]),
                         log_kN=float(kN[0]), log_kD=float(kD[0]), points=points, n_runs=int(N.size),
                         n_used=int(sel.size), options={"mode": "final"}, notes=(note,), bootstrap=boot, runs=runs)
