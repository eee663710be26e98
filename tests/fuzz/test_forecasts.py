"""Malformed input to the forecasting entry points: lawfit.backtest (cuts, intervals, protocols) and the two-stage
lawfit.downstream (fit, forecast, backtest). Each call returns a valid result or raises ValueError/TypeError."""

from __future__ import annotations

import numpy as np
from hypothesis import given

import lawfit
from lawfit import downstream

from fuzz.helpers import RAW, Src, fuzz, rejected, synthetic
from fuzz.test_data import column

# Each option: a valid value most of the time (the first entries), sometimes one of the invalid ones after them.
BUDGETS = ([None, None, 1e19, 1e20, [1e19, 1e20]], [0.0, -1.0, float("nan"), float("inf"), "1e20", [], [1e40], True])
HOLDOUTS = ([0.2, 0.5, 0.05], [0.0, 1.0, -0.2, float("nan"), None, "0.2", 2])
BOOTSTRAPS = ([None, 0, 3], [-1, 2.5, True, "3"])
LEVELS = ([0.95, 0.5], [0.0, 1.0, 95, float("nan"), "0.9"])
RESAMPLES = (["test", "both"], ["train", 1])


def option(src: Src, choices):
    good, bad = choices
    return src.choose(bad) if src.rare(5) else src.choose(good)


def _backtest_runs(src: Src):
    n = src.int(2, 14)
    good = synthetic(n, src.int(0, 65535))
    good["C"] = 6.0 * good["N"] * good["D"]
    return {k: (column(src, good[k]) if src.rare(4) else good[k]) for k in ("C", "loss")}


def _task_runs(src: Src):
    n = src.int(2, 14)
    rng = np.random.default_rng(src.int(0, 65535))
    C = 10 ** rng.uniform(18, 22, n)
    nll = (0.5 + 3e3 / C**0.2) * np.exp(0.01 * rng.standard_normal(n))
    acc = np.clip(0.25 + 0.7 / (1 + np.exp(6 * (nll - 1.2))) + 0.005 * rng.standard_normal(n), 1e-3, 1.0)
    return {k: (column(src, v) if src.rare(4) else v) for k, v in (("C", C), ("nll", nll), ("accuracy", acc))}


@fuzz("backtest", 300)
@given(raw=RAW)
def test_backtest_with_malformed_input(raw):
    src = Src(raw)
    runs = _backtest_runs(src)
    kw = {"holdout": option(src, HOLDOUTS), "budget": option(src, BUDGETS), "bootstrap": option(src, BOOTSTRAPS),
          "level": option(src, LEVELS), "resample": option(src, RESAMPLES)}
    if src.rare(4):
        kw["protocols"] = src.choose([[{"loss": "squared"}], [{"drop_highest": 1}], [{"drop_highest": 50}],
                                      [{"los": 1}], [], "x"])
    res = rejected(lambda: lawfit.backtest("saturating_C", runs, starts=np.array([[0.5, 5.0, 0.2]]), max_iter=8,
                                           threads=1, **kw))
    if res is not None:
        t = res.table
        assert len(t) >= 1 and np.all(t["n_test"] >= 1) and np.all(t["n_train"] >= 3)
        for _, row in t.iterrows():
            if row["success"]:  # an error beyond the float range (a loss of 1e-300) is inf, never NaN
                assert not any(np.isnan(row[m]) for m in ("mape", "log_error", "bias", "worst")), row


@fuzz("downstream", 200)
@given(raw=RAW)
def test_downstream_with_malformed_input(raw):
    src = Src(raw)
    runs = _task_runs(src)
    bootstrap = option(src, BOOTSTRAPS)
    if src.flip():
        res = rejected(lambda: downstream.fit(runs, bootstrap=bootstrap, seed=src.int(0, 9)))
        if res is not None:
            f = rejected(lambda: res.forecast(src.choose([[1e23], [1e20, 1e24], [0.0], [np.nan], "x", []]),
                                              level=option(src, LEVELS),
                                              interval=option(src, (["adjusted", "percentile"], ["x"]))))
            if f is not None and res.stage1.success and res.stage2.success:
                assert np.all(np.isfinite(f["nll"])) and np.all(np.isfinite(f["accuracy"]))
    else:
        bt = rejected(lambda: downstream.backtest(runs, holdout=option(src, HOLDOUTS), budget=option(src, BUDGETS),
                                                  bootstrap=bootstrap, level=option(src, LEVELS)))
        if bt is not None:
            assert np.all(bt.table["n_train"] >= 5) and np.all(bt.table["n_test"] >= 1)
