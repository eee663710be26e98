"""Malformed data to fit and evaluate: cells (NaN, infinities, values <= 0, None, strings, huge integers),
dtypes, shapes, containers, missing and extra columns, or not a table at all."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import lawfit

from fuzz.helpers import GOOD_START, HUGE_INT, LAW, RAW, check_fit, fuzz, rejected, Src, synthetic


SPECIAL_CELLS = [np.nan, np.inf, -np.inf, 0.0, -1.0, -1e-300, 5e-324, 1e308, 1e15, 1e-15, None, "x", "1e9",
                 True, HUGE_INT, 1 + 0j, [1.0], b"1", pd.NA, np.datetime64("2020-01-01"), 2, np.float32(3.0),
                 np.array(2.0), np.array([2.0]), "", np.int64(-5)]
DTYPES = [bool, complex, str, object, np.int64, np.float32, ">f8", "datetime64[s]", "timedelta64[s]", np.uint8,
          np.float16, "Float64", "category"]


def column(src: Src, good: np.ndarray):
    """A column: the good values, or a corrupted version (cells, dtype, shape, container, garbage)."""
    kind = src.int(0, 7)
    arr = good.copy()
    if kind <= 2:
        return arr
    if kind == 3:  # special cells: NaN, inf, <= 0, None, strings, huge integers, ... in an object column
        obj = arr.astype(object)
        for _ in range(src.int(1, 2)):
            obj[src.int(0, len(arr) - 1)] = src.choose(SPECIAL_CELLS)
        return list(obj) if src.flip() else obj
    if kind == 4:
        dt = src.choose(DTYPES)
        if dt in ("Float64", "category"):
            return pd.Series(arr).astype(dt)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # uint8 / float16 overflow: the column is garbage anyway
                return arr.astype(dt)
        except (ValueError, TypeError, OverflowError):
            return arr
    if kind == 5:
        which = src.int(0, 6)
        return [arr[:0], arr[: max(0, len(arr) - src.int(1, 3))], np.concatenate([arr, arr[: src.int(1, 3)]]),
                arr[:, None], arr[0], np.repeat(arr, 2)[::2], arr[::-1]][which]
    if kind == 6:
        which = src.int(0, 4)
        if which == 4:
            return iter(arr.tolist())
        return [arr.tolist(), tuple(arr.tolist()), pd.Series(arr),
                pd.Series(arr, index=[f"r{i}" for i in range(len(arr))])][which]
    return src.garbage()


def dataset(src: Src, names=("N", "D", "loss")):
    """Runs as a dict or a DataFrame, with corrupted, missing or extra columns (or not a table at all)."""
    n = src.int(1, 6)
    good = synthetic(n, src.int(0, 65535))
    cols = {k: column(src, good[k]) for k in names}
    for k in list(cols):
        if src.rare(16):
            del cols[k]
    if src.rare(10):
        cols["extra"] = column(src, good["N"])
    container = src.int(0, 3)
    if container == 2:
        try:
            return pd.DataFrame(cols)
        except (ValueError, TypeError):
            return cols
    if container == 3 and src.rare(3):
        return src.garbage()
    return cols


@fuzz("fit_data", 1500)
@given(raw=RAW, law=st.sampled_from(["chinchilla", "saturating_N"]))
def test_fit_with_malformed_data(raw, law):
    data = dataset(Src(raw))
    start = np.array([GOOD_START[law]])
    res = rejected(lambda: lawfit.fit(LAW[law], data, starts=start, max_iter=6, threads=1))
    if res is not None:
        check_fit(res)
        assert res.n_runs >= 1


@fuzz("evaluate_data", 600)
@given(raw=RAW, derivatives=st.sampled_from([0, 1, 2]))
def test_evaluate_with_malformed_data(raw, derivatives):
    data = dataset(Src(raw))
    ev = rejected(lambda: lawfit.evaluate(LAW["chinchilla"], data, GOOD_START["chinchilla"],
                                          derivatives=derivatives, threads=1))
    if ev is not None:
        assert ev.fun.shape == (1,) and np.isfinite(ev.fun[0]) and ev.fun[0] >= 0
        assert (ev.grad is None) == (derivatives < 1) and (ev.hess is None) == (derivatives < 2)
