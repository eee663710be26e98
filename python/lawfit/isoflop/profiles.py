"""Approach 2, IsoFLOP profiles: :func:`approach2` (the minimum of each budget's profile, then power laws in C)
and its bootstrap of the runs within each budget."""

from __future__ import annotations

import copy
import math
from typing import Mapping

import numpy as np

from . import resampling  # resampling._BOOT_BLOCK is read at call time, so a test can vary it
from .budgets import TRAIN_FLOPS, _bin_budgets, _read
from .minima import _NEED, _STATUS, SHAPES, _budget_minima, _power_law
from .resampling import _check_bootstrap, _rng
from .results import IsoFLOPBootstrap, IsoFLOPResult

DRIFT_NOTE = 0.5  # a trend of the minimum's offset in the sampled sizes (in half-ranges) worth a note


def approach2(data, *, shape: str = "parabola", tolerance: float | None = None, budgets=None,
              min_runs: int | None = None, d_opt: str = "derived", bootstrap: int | None = None, seed=None,
              columns: Mapping[str, str] | None = None) -> IsoFLOPResult:
    """Hoffmann et al.'s Approach 2: the minimum of each IsoFLOP profile, then power laws in C.

    Parameters
    ----------
    data : DataFrame or mapping with N, loss and C or D (C = 6 N D derived when missing; D = C / (6 N)).
        ``columns`` maps these names to other column names, e.g. ``{"N": "params", "C": "flops"}``.
    shape : "parabola" (least squares in log N, Hoffmann et al.), "cubic" (least squares; follows the skew
        of the profile when alpha != beta), or "interpolant" (piecewise cubic through the runs, modified Akima
        slopes, minimum between runs; for dense noise-free profiles, it follows noise too).
    tolerance : None groups runs of exactly equal C; T > 0 bins C, each bin spanning at most a factor 1 + T.
    budgets : the nominal budgets (FLOP) to snap runs to (within a factor 1 + tolerance); unassigned runs are
        counted in the notes.
    min_runs : distinct model sizes a budget needs (default: what the shape needs, 3 / 4 / 3).
    d_opt : "derived" (D_opt = C / (6 N_opt) at each budget; b = 1 - a exactly with exact budgets) or "fit"
        (locate the minimum against log D as well; a budget is used when both minima are bracketed).
    bootstrap, seed : resample the runs within each budget ``bootstrap`` times, drawn with
        ``numpy.random.default_rng(seed)``; intervals from :meth:`IsoFLOPResult.ci` / ``optimal``.

    Budgets with too few sizes or an unbracketed minimum are listed in ``result.points`` (``status``,
    ``note``, ``used``) and never enter the power law; fewer than two usable budgets is an error.
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    if d_opt not in ("derived", "fit"):
        raise ValueError(f"d_opt must be 'derived' or 'fit', got {d_opt!r}")
    need = _NEED[shape]
    if min_runs is not None:
        if isinstance(min_runs, bool) or not isinstance(min_runs, (int, np.integer)) or min_runs < need:
            raise ValueError(f"min_runs must be an integer >= {need} (what a {shape} needs), got {min_runs!r}")
        need = int(min_runs)
    nboot = _check_bootstrap(bootstrap)
    cols = _read(data, columns)
    N, D, C, loss = cols["N"], cols["D"], cols["C"], cols["loss"]
    label, values = _bin_budgets(C, tolerance, budgets)
    G = values.size
    # runs of each budget, by N (ties in row order): one sort, not one pass over the runs per budget
    by = np.lexsort((N, label))
    by = by[label[by] >= 0]
    bounds = np.searchsorted(label[by], np.arange(G + 1))
    groups = [by[bounds[g]:bounds[g + 1]] for g in range(G)]
    newsize = np.ones(by.size, dtype=bool)  # a new model size within its budget
    newsize[1:] = (label[by][1:] != label[by][:-1]) | (N[by][1:] != N[by][:-1])
    n_sizes = np.add.reduceat(newsize, bounds[:-1]) if G else np.zeros(0, dtype=int)
    thick = n_sizes >= need
    use_idx = np.flatnonzero(thick)

    def minima(xname, wrows):
        xv = {"N": np.log(N), "D": np.log(D)}[xname]
        xg = [xv[groups[g]] for g in use_idx]
        yg = [loss[groups[g]] for g in use_idx]
        if xname == "D":  # sort by D within each budget
            order = [np.argsort(v, kind="stable") for v in xg]
            xg = [v[o] for v, o in zip(xg, order)]
            yg = [v[o] for v, o in zip(yg, order)]
            wrows = [w[:, o] for w, o in zip(wrows, order)]
        return _budget_minima(shape, xg, yg, wrows)

    ones = [np.ones((1, groups[g].size)) for g in use_idx]
    xN, yN, stN, profs = minima("N", ones) if use_idx.size else (np.zeros((1, 0)),) * 3 + ([],)
    status = np.full(G, 1)
    status[use_idx] = stN[0]
    logNopt = np.full(G, np.nan)
    loss_opt = np.full(G, np.nan)
    logNopt[use_idx] = xN[0]
    loss_opt[use_idx] = yN[0]
    logC = np.log(values)
    if d_opt == "fit" and use_idx.size:
        xD, _, stD, _ = minima("D", ones)
        stD_full = np.full(G, 1)
        stD_full[use_idx] = stD[0]
        logDopt = np.full(G, np.nan)
        logDopt[use_idx] = xD[0]
    else:
        stD_full = np.zeros(G, dtype=int)
        logDopt = logC - math.log(TRAIN_FLOPS) - logNopt
    ok_full = (status == 0) & (stD_full == 0)
    notes_per = []
    for g in range(G):
        idx = groups[g]
        lo, hi = N[idx].min(), N[idx].max()
        if status[g] == 1:
            notes_per.append(f"{n_sizes[g]} model size{'s' if n_sizes[g] != 1 else ''}, a {shape} needs {need}")
        elif status[g] == 2:
            notes_per.append("the parabola opens downwards (no minimum)" if shape == "parabola"
                             else "the fitted curve has no minimum")
        elif status[g] == 3:
            side = "at or below the smallest" if logNopt[g] <= math.log(lo) else "at or above the largest"
            at = math.exp(logNopt[g]) if logNopt[g] < 709 else math.inf
            notes_per.append(f"minimum at N = {at:.3g}, {side} sampled size "
                             f"(N = {lo:.3g} to {hi:.3g})")
        elif stD_full[g] != 0:
            notes_per.append("the minimum against log D is not bracketed" if stD_full[g] != 1 else "too few D")
        else:
            notes_per.append("")
    import pandas as pd

    # where the minimum sits in the sampled sizes: -1 at the smallest, 0 in the middle (of log N), +1 at the largest
    lo_n = np.array([math.log(N[i].min()) for i in groups])
    hi_n = np.array([math.log(N[i].max()) for i in groups])
    with np.errstate(all="ignore"):
        offset = np.where(hi_n > lo_n, (logNopt - 0.5 * (lo_n + hi_n)) / (0.5 * (hi_n - lo_n)), np.nan)
    with np.errstate(over="ignore"):  # a minimum far outside the sampled sizes: inf
        N_at, D_at = np.exp(logNopt), np.exp(logDopt)
    st_name = [_STATUS[int(s)] if s != 0 else ("ok" if stD_full[g] == 0 else "unbracketed")
               for g, s in enumerate(status)]
    points = pd.DataFrame({
        "C": values, "C_min": [C[i].min() for i in groups], "C_max": [C[i].max() for i in groups],
        "n_runs": [i.size for i in groups], "n_sizes": n_sizes,
        "N_min": [N[i].min() for i in groups], "N_max": [N[i].max() for i in groups],
        "N_opt": np.where(ok_full | (status == 3), N_at, np.nan),
        "D_opt": np.where(ok_full | (status == 3), D_at, np.nan),
        "loss_opt": np.where(ok_full | (status == 3), loss_opt, np.nan),
        "offset": offset, "status": st_name, "note": notes_per, "used": ok_full,
    })
    used = np.flatnonzero(ok_full)
    notes = []
    unassigned = int(np.count_nonzero(label < 0))
    if unassigned:
        notes.append(f"{unassigned} runs lie farther than a factor 1 + tolerance from every given budget: unused")
    excl = G - used.size
    if excl:
        notes.append(f"{excl} of {G} budgets excluded (too few runs or minimum not bracketed): see points")
    if budgets is not None and values.size < np.unique(np.asarray(budgets, dtype=float)).size:
        notes.append(f"{np.unique(np.asarray(budgets, dtype=float)).size - values.size} given budgets have no runs "
                     f"within a factor 1 + tolerance")
    if used.size < 2:
        counts = {k: st_name.count(k) for k in ("too_few_runs", "unbracketed")}
        first = next((g for g in range(G) if not ok_full[g]), None)
        example = f"; e.g. C = {values[first]:.3g}: {notes_per[first]}" if first is not None else ""
        hint = ("" if tolerance is not None or budgets is not None or counts["too_few_runs"] < G / 2 else
                "; do the runs share budgets? bin them with tolerance=0.1 (--tolerance 0.1)")
        raise ValueError(f"Approach 2 needs at least two budgets with a bracketed minimum; {used.size} of {G} "
                         f"usable ({counts['too_few_runs']} with too few runs, {counts['unbracketed']} "
                         f"unbracketed{example}){hint}")
    if used.size >= 3:
        drift, icpt = _power_law(logC[used][None], offset[used][None], np.ones((1, used.size), bool))
        ends = float(icpt[0]) + float(drift[0]) * logC[used][[0, -1]]
        if abs(ends[1] - ends[0]) > DRIFT_NOTE:
            notes.append(
                f"the minima drift across the sampled sizes (offset {ends[0]:+.2f} at the smallest budget, "
                f"{ends[1]:+.2f} at the largest, by a line through them; -1/+1 = the smallest/largest sampled size): "
                f"off-centre sampling biases the exponent where alpha != beta (the profile is skewed)"
                + ("; compare shape='cubic' or 'interpolant'" if shape == "parabola" else ""))
    a, kN = _power_law(logC[used][None], logNopt[used][None], np.ones((1, used.size), bool))
    b, kD = _power_law(logC[used][None], logDopt[used][None], np.ones((1, used.size), bool))
    boot = None
    if nboot:
        boot = _approach2_bootstrap(nboot, seed, d_opt, groups, used, logC, minima_fn=minima, use_idx=use_idx)
    profiles = [None] * G
    for j, gi in enumerate(use_idx):
        profiles[int(gi)] = profs[j] if j < len(profs) else None
    runs = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss, "budget": label})
    return IsoFLOPResult(
        approach=2, method=shape, a=float(a[0]), b=float(b[0]), log_kN=float(kN[0]), log_kD=float(kD[0]),
        points=points, n_runs=int(N.size), n_used=int(used.size),
        options={"shape": shape, "tolerance": tolerance, "budgets": None if budgets is None else list(values),
                 "min_runs": need, "d_opt": d_opt},
        notes=tuple(notes), bootstrap=boot, runs=runs, _profiles=tuple(profiles))


def _approach2_bootstrap(n, seed, d_opt, groups, used, logC, *, minima_fn, use_idx):
    from ..bootstrap import _advance, _counts

    rng = _rng(seed)
    # Every budget's resamples are drawn in order of C, all n of a budget before the next one (as one call per
    # budget would draw them): keep the generator where each budget's draws begin, then draw a block of
    # resamples at a time from each, so memory is one block whatever n is.
    sizes = [idx.size for idx in groups]
    at = []
    for k in sizes:
        at.append(copy.deepcopy(rng))
        _advance(rng, k, n)
    gens = [at[g] for g in use_idx]
    del at
    pos = {g: j for j, g in enumerate(use_idx)}
    cols = np.array([pos[g] for g in used])
    lC = logC[used][None, :]
    width = max(1, sum(sizes[g] for g in use_idx)) + max(sizes) * max(1, len(use_idx))
    step = max(1, min(n, resampling._BOOT_BLOCK // width))
    parts = []
    for lo in range(0, n, step):
        r = min(step, n - lo)
        wrows = [_counts(gen.integers(0, sizes[g], size=(r, sizes[g])), sizes[g]) for gen, g in zip(gens, use_idx)]
        xN, _, stN, _ = minima_fn("N", wrows)
        okN = stN[:, cols] == 0
        lNopt = xN[:, cols]
        if d_opt == "fit":
            xD, _, stD, _ = minima_fn("D", wrows)
            ok = okN & (stD[:, cols] == 0)
            lDopt = xD[:, cols]
        else:
            ok = okN
            lDopt = lC - math.log(TRAIN_FLOPS) - lNopt
        a, kN = _power_law(lC, lNopt, ok)
        b, kD = _power_law(lC, lDopt, ok)
        parts.append((a, b, kN, kD, ok.sum(-1), (~ok).sum(-1)))
    a, b, kN, kD, n_used, n_dropped = (np.concatenate(v) for v in zip(*parts))
    return IsoFLOPBootstrap(n=n, seed=seed if not isinstance(seed, np.random.Generator) else None,
                            unit="runs within budgets", a=a, b=b, log_kN=kN, log_kD=kD,
                            n_used=n_used, n_dropped=n_dropped)
