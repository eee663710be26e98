"""Compute-optimal allocation from IsoFLOP profiles and training curves: Hoffmann et al.'s Approaches 1 and 2,
beside the parametric fit (Approach 3, :func:`lawfit.fit` with :mod:`lawfit.allocation`).

Approach 2 (:func:`approach2`), IsoFLOP profiles
    Runs are grouped by training compute C (the table's C column, or C = 6 N D): runs that share a budget
    exactly, or, with ``tolerance=T``, runs binned in log C, each bin spanning at most a factor 1 + T (the
    densest window first, so bins sit on the clusters of budgets), or snapped to given ``budgets=``. Per
    budget, the loss (not the log loss, see below) is fitted against x = log N by least squares with a
    parabola (Hoffmann et al.), a cubic, or interpolated with a piecewise cubic ("interpolant", modified
    Akima slopes), and its minimum located. A budget is *excluded* from the power law, and listed with the
    reason, when it has fewer distinct model sizes than the shape needs (3, 4, 3; ``min_runs`` raises it),
    when the fitted curve has no minimum (a parabola opening downwards), or when the minimum lies outside the
    sampled range of log N (not bracketed). Then ``log N_opt = log k_N + a log C`` is fitted by least squares
    over the budgets used. D_opt = C / (6 N_opt) at each budget by default (``d_opt="derived"``: consistent
    with C = 6 N D, so b = 1 - a exactly); ``d_opt="fit"`` locates the minimum against log D as well.

    Why the loss and not the log loss: along a budget the Chinchilla law is
    L = E + K (exp(-alpha u)/alpha + exp(beta u)/beta) with u = log(N / N_opt) and K depending on C only,
    so loss - E has the same shape at every budget up to the factor K. A window of sizes placed the same way
    around N_opt at every budget (centred, or any fixed offset and width) then puts the parabola's vertex at
    the same offset from N_opt at every budget: k_N is biased, the exponent a is not. The log loss breaks
    this (E no longer cancels). The documented bias of the parabola (alpha != beta: the profile is skewed)
    reaches a only when the window's placement relative to N_opt drifts with C, as when the sampled sizes
    follow a guessed exponent; the cubic and the interpolant follow the skew and shrink it.

Approach 1 (:func:`approach1`), the lower envelope of training curves
    From a table of training curves (several rows per run: N, tokens so far D, loss; runs are grouped by a
    ``run`` column, or by N), each curve's loss is interpolated linearly in log C (= log D + const) and, at
    ``n_grid`` log-spaced budgets within the covered range, the run with the lowest loss is found; its N and
    D are the envelope's allocation at that C. Envelope points whose winner is the smallest or the largest
    model covering that C are not bracketed and are excluded (and counted). Power laws in C are fitted over
    the rest. With final losses only (one row per run, e.g. the bundled Chinchilla runs), Approach 1
    degenerates to the envelope of final points: the runs with a lower loss than every run of smaller C (the
    Pareto front of loss against compute), with N and D fitted against their own C.

Bootstrap (``bootstrap=n, seed=s``; ``numpy.random.default_rng(seed)`` as in :mod:`lawfit.bootstrap`)
    Approach 2 resamples the runs within each budget (with replacement, as many as the budget has); every
    budget's polynomial is refitted for all resamples at once as weighted normal equations (R x G small
    systems solved as one batch), and the power law as a batch of weighted regressions. A budget that is too
    thin or unbracketed in a resample is left out of that resample's power law (counted in ``n_dropped``).
    Approach 1 resamples the runs (models); the envelope of all resamples is computed as one masked minimum.
    Intervals are percentile intervals on a, b and on N_opt, D_opt at any budget (:meth:`IsoFLOPResult.optimal`).

:func:`compare` puts the three approaches side by side (exponents, intervals, the allocation each implies at a
budget) in a DataFrame; :func:`lawfit.plots.isoflop_approaches` draws them.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .data import column

__all__ = ["approach1", "approach2", "compare", "IsoFLOPResult", "IsoFLOPBootstrap", "SHAPES", "HOFFMANN_BUDGETS"]

SHAPES = ("parabola", "cubic", "interpolant")
#: The nine training budgets (FLOP) of Hoffmann et al.'s IsoFLOP profiles (2022, Figure 3), for ``budgets=``.
HOFFMANN_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)
TRAIN_FLOPS = 6.0  # C = 6 N D
_NEED = {"parabola": 3, "cubic": 4, "interpolant": 3}  # distinct model sizes each shape needs
_DEGREE = {"parabola": 2, "cubic": 3}
_EXACT = 1e-9  # relative difference of budgets treated as equal (rounding in C = 6 N D)
_COLUMN_NAMES = ("N", "D", "C", "loss", "run")
DRIFT_NOTE = 0.5  # a trend of the minimum's offset in the sampled sizes (in half-ranges) worth a note


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class IsoFLOPBootstrap:
    """Bootstrap draws of an Approach 1 or 2 fit.

    Attributes
    ----------
    a, b : exponents of N_opt and D_opt per resample (NaN where the resample had fewer than two usable points).
    log_kN, log_kD : intercepts, N_opt = exp(log_kN) C^a.
    n_used : budgets (Approach 2) or envelope points (Approach 1) in each resample's power law.
    n_dropped : budgets used on the full data but left out of this resample (too thin or unbracketed there).
    """

    n: int
    seed: Any
    unit: str
    a: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    log_kN: np.ndarray = field(repr=False)
    log_kD: np.ndarray = field(repr=False)
    n_used: np.ndarray = field(repr=False)
    n_dropped: np.ndarray = field(repr=False)

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.a) & np.isfinite(self.b)

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(~self.ok))

    @property
    def se(self) -> dict:
        """Standard errors of a and b (successful resamples, ddof = 1)."""
        ok = self.ok
        return {k: float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else float("nan")
                for k, v in (("a", self.a), ("b", self.b))}

    def ci(self, level: float = 0.95) -> dict:
        """Percentile intervals of a and b, name -> (low, high)."""
        _check_level(level)
        tail = (1 - level) / 2
        out = {}
        for k, v in (("a", self.a), ("b", self.b)):
            v = v[np.isfinite(v)]
            out[k] = ((float("nan"), float("nan")) if v.size == 0 else
                      (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))))
        return out

    def draws(self):
        """One row per resample: a, b, log_kN, log_kD, n_used, n_dropped."""
        import pandas as pd

        return pd.DataFrame({"a": self.a, "b": self.b, "log_kN": self.log_kN, "log_kD": self.log_kD,
                             "n_used": self.n_used, "n_dropped": self.n_dropped})


@dataclass(frozen=True)
class IsoFLOPResult:
    """Compute-optimal power laws N_opt = k_N C^a, D_opt = k_D C^b from Approach 1 or 2.

    Attributes
    ----------
    approach : 1 (envelope of training curves or final points) or 2 (IsoFLOP profiles).
    method : "parabola", "cubic" or "interpolant" (Approach 2); "envelope" or "final-point envelope" (1).
    a, b : the exponents; log_kN, log_kD : the intercepts (natural logs, C in FLOP).
    points : DataFrame, one row per budget (Approach 2: C, its span, runs, sizes, N_opt, D_opt, loss_opt,
        status "ok" / "too_few_runs" / "unbracketed", note, used) or per envelope point (Approach 1).
    n_runs : runs in the data; n_used : points in the power-law fit.
    options : the settings that produced it (tolerance, d_opt, min_runs, n_grid, ...).
    notes : remarks worth reading (degenerate envelope, excluded budgets).
    bootstrap : :class:`IsoFLOPBootstrap` when fitted with ``bootstrap=n``.
    """

    approach: int
    method: str
    a: float
    b: float
    log_kN: float
    log_kD: float
    points: Any = field(repr=False)
    n_runs: int = 0
    n_used: int = 0
    options: dict = field(default_factory=dict, repr=False)
    notes: tuple = ()
    bootstrap: IsoFLOPBootstrap | None = field(default=None, repr=False)
    runs: Any = field(default=None, repr=False)  # the runs as read (N, D, C, loss, budget or run label)
    _profiles: tuple = field(default=(), repr=False)  # per budget: what curve() needs

    @property
    def excluded(self):
        """Budgets (or envelope points) left out of the power law, with the reason."""
        return self.points[~self.points["used"]]

    def ci(self, level: float = 0.95) -> dict:
        """Percentile bootstrap intervals of a and b (needs ``bootstrap=``)."""
        if self.bootstrap is None:
            raise ValueError("no bootstrap: fit with bootstrap=n (and seed=) for intervals")
        return self.bootstrap.ci(level)

    def optimal(self, C, level: float = 0.95):
        """N_opt, D_opt and tokens per parameter at budgets ``C`` from the power laws, with percentile
        intervals (``<column>_low`` / ``_high``) when bootstrapped."""
        import pandas as pd

        C = np.atleast_1d(np.asarray(C, dtype=float))
        if C.ndim != 1 or C.size == 0 or not np.all(np.isfinite(C)) or np.any(C <= 0):
            raise ValueError(f"budgets C must be positive and finite, got {C!r}")
        lc = np.log(C)
        N = np.exp(self.log_kN + self.a * lc)
        D = np.exp(self.log_kD + self.b * lc)
        df = pd.DataFrame({"C": C, "N_opt": N, "D_opt": D, "tokens_per_param": D / N})
        if self.bootstrap is not None:
            _check_level(level)
            bs = self.bootstrap
            ok = bs.ok
            dN = np.exp(bs.log_kN[ok, None] + bs.a[ok, None] * lc[None, :])
            dD = np.exp(bs.log_kD[ok, None] + bs.b[ok, None] * lc[None, :])
            tail = (1 - level) / 2
            for name, v in (("N_opt", dN), ("D_opt", dD), ("tokens_per_param", dD / dN)):
                if v.shape[0]:
                    df[f"{name}_low"] = np.quantile(v, tail, axis=0)
                    df[f"{name}_high"] = np.quantile(v, 1 - tail, axis=0)
                else:
                    df[f"{name}_low"] = df[f"{name}_high"] = np.nan
        return df

    def curve(self, budget: int, N) -> np.ndarray:
        """Approach 2: the fitted loss profile of budget number ``budget`` (a row of ``points``) at sizes N."""
        if self.approach != 2:
            raise ValueError("curve() is for Approach 2 (IsoFLOP profiles)")
        if not 0 <= budget < len(self._profiles):
            raise ValueError(f"budget must be a row of points, 0..{len(self._profiles) - 1}; got {budget}")
        prof = self._profiles[budget]
        x = np.log(np.asarray(N, dtype=float))
        if prof is None:
            return np.full(x.shape, np.nan)
        if prof["kind"] == "poly":
            s = (x - prof["mid"]) / prof["half"]
            return np.polynomial.polynomial.polyval(s, prof["coef"])
        return _hermite_eval(prof["x"], prof["y"], prof["d"], x)

    def to_frame(self):
        """The per-budget (Approach 2) or per-envelope-point (Approach 1) table."""
        return self.points.copy()

    def to_dict(self, level: float = 0.95, budgets=None) -> dict:
        """JSON-ready: exponents, intercepts, options, every budget with its status, the bootstrap summary and
        ``ci`` (with ``bootstrap=``), and the allocation at ``budgets``."""
        doc = {
            "approach": self.approach, "method": self.method, "a": _num(self.a), "b": _num(self.b),
            "log_kN": _num(self.log_kN), "log_kD": _num(self.log_kD), "n_runs": int(self.n_runs),
            "n_used": int(self.n_used), "options": {k: _plain(v) for k, v in self.options.items()},
            "notes": list(self.notes),
        }
        rows = [{k: _plain(v) for k, v in r.items()} for r in self.points.to_dict("records")]
        doc["budgets" if self.approach == 2 else "points"] = rows
        doc["excluded"] = [r for r in rows if not r["used"]]
        if self.bootstrap is not None:
            bs = self.bootstrap
            doc["bootstrap"] = {"n": bs.n, "failed": bs.n_failed, "seed": _plain(bs.seed), "unit": bs.unit,
                                "level": level, "se": {k: _num(v) for k, v in bs.se.items()},
                                "dropped": int(np.count_nonzero(bs.n_dropped))}
            doc["ci"] = {k: [_num(lo), _num(hi)] for k, (lo, hi) in bs.ci(level).items()}
        if budgets is not None and len(np.atleast_1d(budgets)):
            doc["allocation"] = [{k: _num(float(v)) for k, v in r.items()}
                                 for r in self.optimal(budgets, level).to_dict("records")]
        return doc

    def summary(self, level: float = 0.95) -> str:
        name = {1: "Approach 1 (lower envelope)", 2: "Approach 2 (IsoFLOP profiles)"}[self.approach]
        unit = "budgets" if self.approach == 2 else "envelope points"
        lines = [f"lawfit isoflop: {name}, {self.method}; {self.n_runs} runs, {self.n_used} {unit} used"]
        ci = self.bootstrap.ci(level) if self.bootstrap is not None else None
        for k, lk, what in (("a", "log_kN", "N_opt"), ("b", "log_kD", "D_opt")):
            v = getattr(self, k)
            line = f"  {what} = {math.exp(getattr(self, lk)):.4g} C^{k},  {k} = {v:.4f}"
            if ci is not None:
                lo, hi = ci[k]
                line += f"   {int(round(level * 100))}% interval [{lo:.4f}, {hi:.4f}], se {self.bootstrap.se[k]:.4f}"
            lines.append(line)
        if self.bootstrap is not None:
            bs = self.bootstrap
            line = f"  bootstrap: {bs.n} resamples of {bs.unit} (seed {bs.seed}), {bs.n_failed} failed"
            if self.approach == 2:
                line += f", {int(np.count_nonzero(bs.n_dropped))} left out a budget (too thin or unbracketed there)"
            lines.append(line)
        if self.approach == 2:
            lines.append("")
            lines.append(f"  {'C':>10} {'span':>6} {'runs':>5} {'sizes':>5} {'N_opt':>10} {'D_opt':>10} "
                         f"{'loss':>7} {'offset':>6}  status")
            for r in self.points.to_dict("records"):
                span = r["C_max"] / r["C_min"]
                opt = (f"{r['N_opt']:>10.4g} {r['D_opt']:>10.4g} {r['loss_opt']:>7.4f} {r['offset']:>+6.2f}"
                       if np.isfinite(r["N_opt"]) else f"{'-':>10} {'-':>10} {'-':>7} {'-':>6}")
                status = r["status"] + (f" ({r['note']})" if r["note"] else "")
                lines.append(f"  {r['C']:>10.3g} {span:>6.3f} {r['n_runs']:>5d} {r['n_sizes']:>5d} {opt}  {status}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _check_level(level) -> None:
    if not (isinstance(level, (float, int)) and not isinstance(level, bool) and 0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def _num(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _plain(v):
    """JSON-ready scalars and lists."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return str(v)


# ------------------------------------------------------------------------------------------------ input


def _read(data, columns: Mapping[str, str] | None, *, need_run: bool = False) -> dict:
    """N, D, C, loss (float arrays; C = 6 N D or D = C / (6 N) when one of them is missing) and run labels."""
    if data is None or not hasattr(data, "__getitem__"):
        raise TypeError(f"data must be a pandas DataFrame or a mapping of arrays, got {type(data).__name__}")
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(_COLUMN_NAMES))
    if unknown:
        raise ValueError(f"columns= maps unknown names {unknown}; IsoFLOP methods read {list(_COLUMN_NAMES)}")

    def has(name):
        try:
            data[columns.get(name, name)]
            return True
        except (KeyError, IndexError, TypeError, ValueError):
            return False

    out = {"N": column(data, columns.get("N", "N"), "parameters N"),
           "loss": column(data, columns.get("loss", "loss"), "observed loss")}
    if has("C"):
        out["C"] = column(data, columns.get("C", "C"), "training FLOP C")
    if has("D"):
        out["D"] = column(data, columns.get("D", "D"), "training tokens D")
    if "D" not in out and "C" not in out:
        raise ValueError(f"data has no column {columns.get('D', 'D')!r} (training tokens D) or "
                         f"{columns.get('C', 'C')!r} (training FLOP C); IsoFLOP methods need one of them "
                         f"(C = 6 N D)")
    lengths = {k: v.size for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns have different lengths ({', '.join(f'{k} {m}' for k, m in lengths.items())}); "
                         f"every column needs one value per row")
    if "C" not in out:
        out["C"] = TRAIN_FLOPS * out["N"] * out["D"]
    if "D" not in out:
        out["D"] = out["C"] / (TRAIN_FLOPS * out["N"])
    n = out["N"].size
    if n == 0:
        raise ValueError("data is empty: no runs")
    if has("run") or need_run:
        name = columns.get("run", "run")
        if not has("run"):
            raise ValueError(f"data has no column {name!r} (run label)")
        raw = np.asarray(data[name])
        if raw.ndim != 1 or raw.size != n:
            raise ValueError(f"column {name!r} (run label) must have one value per row ({n}), got shape {raw.shape}")
        bad = [i for i, v in enumerate(raw.tolist()) if v is None or (isinstance(v, float) and math.isnan(v))]
        if bad:
            raise ValueError(f"column {name!r} (run label) has a missing value at row {bad[0]}")
        out["run"] = raw
    return out


# --------------------------------------------------------------------------------------------- budgets


def _bin_budgets(C: np.ndarray, tolerance, budgets) -> tuple[np.ndarray, np.ndarray]:
    """Budget label per run (-1: not assigned) and the budget values (sorted).

    Exact (tolerance None): runs whose C agree to 1e-9 relative. With a tolerance T: the densest window
    spanning a factor 1 + T becomes a bin, its runs are removed, and so on (every bin spans at most a factor
    1 + T; ties go to the lower C); the budget is the geometric mean of its runs' C. With ``budgets``: each run
    joins the nearest listed budget when within a factor 1 + T of it, else stays unassigned.
    """
    if tolerance is None:
        width = math.log1p(_EXACT)
    else:
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
                math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be a non-negative number (relative spread of C in a budget), "
                             f"got {tolerance!r}")
        width = math.log1p(max(float(tolerance), _EXACT))
    lc = np.log(C)
    if budgets is not None:
        b = np.atleast_1d(np.asarray(budgets, dtype=float))
        if b.ndim != 1 or b.size == 0 or not np.all(np.isfinite(b)) or np.any(b <= 0):
            raise ValueError(f"budgets must be positive FLOP counts, got {budgets!r}")
        b = np.unique(b)
        lb = np.log(b)
        # the nearest budget (the lower one on a tie): one of the two around each run's log C
        right = np.clip(np.searchsorted(lb, lc), 1, max(1, lb.size - 1)) if lb.size > 1 else np.zeros(lc.size, int)
        left = np.maximum(right - 1, 0)
        first = np.searchsorted(lb, lb, side="left")  # budgets whose logs coincide: the first of them
        left, right = first[left], first[right]
        dl, dr = np.abs(lc - lb[left]), np.abs(lc - lb[right])
        near = np.where(dl <= dr, left, right)
        label = np.where(np.minimum(dl, dr) <= width * (1 + 1e-12), near, -1)
        keep = np.flatnonzero(np.bincount(label[label >= 0], minlength=b.size) > 0)  # budgets with runs
        remap = np.full(b.size, -1)
        remap[keep] = np.arange(keep.size)
        return np.where(label >= 0, remap[np.maximum(label, 0)], -1), b[keep]
    order = np.argsort(lc, kind="stable")
    s = lc[order]
    if tolerance is None:  # exact budgets: split the sorted values where they differ by more than rounding
        label_sorted = np.concatenate([[0], np.cumsum(np.diff(s) > width)])
        values = np.exp(np.bincount(label_sorted, weights=s) / np.bincount(label_sorted))
        label = np.empty(s.size, dtype=int)
        label[order] = label_sorted
        return label, values
    label_sorted, bins = _densest_windows(s, width * (1 + 1e-12))
    values = np.array(bins)
    rank = np.argsort(values, kind="stable")
    relabel = np.empty_like(rank)
    relabel[rank] = np.arange(rank.size)
    label = np.empty(s.size, dtype=int)
    label[order] = relabel[label_sorted]
    return label, values[rank]


def _densest_windows(s: np.ndarray, span: float) -> tuple[np.ndarray, list]:
    """Greedy binning of sorted log budgets ``s``: the window [s_i, s_i + span] holding the most unassigned
    values (the lowest i on a tie) becomes a bin, its values leave, and so on. Returns the bin of each value
    and the bins' geometric-mean budgets, in the order the bins were made.

    O(n log n): a window's count only falls as values leave, so counts sit in a max-heap as upper bounds and
    are recomputed when they reach the top; a bin removes every value in a range of sorted positions, so the
    removed positions form a few disjoint ranges, and a window's count is its length less their overlap."""
    import bisect
    import heapq

    n = s.size
    hi = np.searchsorted(s, s + span, side="right")  # window of position i: sorted positions i .. hi[i] - 1
    # equal values leave together, so only the first of each run of equal values starts a window
    first = np.ones(n, dtype=bool)
    first[1:] = s[1:] != s[:-1]
    cand = np.flatnonzero(first)
    key = (-(hi[cand] - cand)).astype(np.int64) * (n + 1) + cand  # (count desc, position asc) as one integer
    heap = key.tolist()
    heapq.heapify(heap)
    label = np.full(n, -1)
    starts: list = []  # removed ranges [starts[k], ends[k]), sorted and disjoint
    ends: list = []
    bins: list = []

    def removed(a: int, b: int) -> int:
        """Positions in [a, b) that are already in a bin."""
        k = bisect.bisect_right(ends, a)  # first removed range ending after a
        tot = 0
        while k < len(starts) and starts[k] < b:
            tot += min(ends[k], b) - max(starts[k], a)
            k += 1
        return tot

    while heap:
        item = heapq.heappop(heap)
        cnt, i = -(item // (n + 1)), item % (n + 1)
        if label[i] >= 0:
            continue
        j = int(hi[i])
        actual = (j - i) - removed(i, j)
        if actual < cnt:  # stale: push the true count back
            heapq.heappush(heap, -actual * (n + 1) + i)
            continue
        free = label[i:j] < 0
        label[i:j][free] = len(bins)
        bins.append(float(np.exp(np.mean(s[i:j][free]))))
        # record [i, j) as removed, merging with neighbouring removed ranges
        k = bisect.bisect_left(ends, i)
        m = k
        a, b = i, j
        while m < len(starts) and starts[m] <= b:
            a, b = min(a, starts[m]), max(b, ends[m])
            m += 1
        starts[k:m] = [a]
        ends[k:m] = [b]
    return label, bins


# ------------------------------------------------------------------------- per-budget minima (batched)


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


def _check_bootstrap(bootstrap) -> int | None:
    if bootstrap is None:
        return None
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 1:
        raise ValueError(f"bootstrap must be a positive number of resamples, got {bootstrap!r}")
    return int(bootstrap)


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------- Approach 2


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
    for j, g in enumerate(use_idx):
        profiles[g] = profs[j] if j < len(profs) else None
    runs = pd.DataFrame({"N": N, "D": D, "C": C, "loss": loss, "budget": label})
    return IsoFLOPResult(
        approach=2, method=shape, a=float(a[0]), b=float(b[0]), log_kN=float(kN[0]), log_kD=float(kD[0]),
        points=points, n_runs=int(N.size), n_used=int(used.size),
        options={"shape": shape, "tolerance": tolerance, "budgets": None if budgets is None else list(values),
                 "min_runs": need, "d_opt": d_opt},
        notes=tuple(notes), bootstrap=boot, runs=runs, _profiles=tuple(profiles))


def _approach2_bootstrap(n, seed, d_opt, groups, used, logC, *, minima_fn, use_idx):
    from .bootstrap import _advance, _counts

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
    step = max(1, min(n, _BOOT_BLOCK // width))
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


_MAX_CELLS = 1 << 26  # curves x envelope budgets in Approach 1 (two float arrays of this many cells)
_BOOT_BLOCK = 1 << 20  # bootstrap resamples are processed in blocks of about this many (resample, run) cells


def _resample_blocks(n_items: int, nboot: int, seed, width: int):
    """Blocks (lo, hi, present) of ``resample_weights(n_items, nboot, seed) > 0``, a block of rows at a time."""
    from .bootstrap import Resamples

    rows = Resamples(n_items, nboot, seed=_rng(seed))
    for lo, hi, w in rows.blocks(max(1, min(nboot, _BOOT_BLOCK // max(1, width)))):
        yield lo, hi, w > 0


# ------------------------------------------------------------------------------------------- Approach 1


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


# -------------------------------------------------------------------------------------------- compare

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

    from . import allocation
    from .fitting import fit

    _check_level(level)
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
