"""Backtest of Chinchilla and Kaplan on the bundled runs (the 20 % of largest compute held out), without
intervals: one fit per law on the training runs plus the errors. Run:
pytest benchmarks/bench_backtest.py --benchmark-only -s"""

from __future__ import annotations

import lawfit


def test_backtest_two_laws(benchmark):
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    res = benchmark.pedantic(lambda: lawfit.backtest(["chinchilla", "kaplan"], runs, holdout=0.2), rounds=5,
                             iterations=1)
    assert len(res.table) == 2 and res.table["success"].all()
    med = benchmark.stats.stats.median
    print(f"\nbacktest, 2 laws: {med:.3f} s (median of 5), {med / 2:.3f} s per law")
    print(res.table[["law", "n_train", "n_test", "mape", "log_error", "bias", "worst"]].to_string(index=False))
