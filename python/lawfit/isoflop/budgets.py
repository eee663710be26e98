"""Reading runs (N, D, C, loss, run labels under any column names) and grouping them into compute budgets:
exact budgets, bins of a relative width (the densest window first), or snapping to given budgets."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from ..data import column

#: The nine training budgets (FLOP) of Hoffmann et al.'s IsoFLOP profiles (2022, Figure 3), for ``budgets=``.
HOFFMANN_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)
TRAIN_FLOPS = 6.0  # C = 6 N D
_EXACT = 1e-9  # relative difference of budgets treated as equal (rounding in C = 6 N D)
_COLUMN_NAMES = ("N", "D", "C", "loss", "run")


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
