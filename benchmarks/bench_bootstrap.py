"""Benchmarks of lawfit.bootstrap on the bundled Chinchilla runs (240 after dropping the 5 highest losses).

(c) 4000 resamples with the smart start strategy, given the full-data fit (the resampling stage), and the
    whole job including the full-data fit from Hoffmann's 4500 starts;
(d) Epoch AI's exact resamples replayed (np.random.seed(42)), one fit each from Hoffmann's point; asserts
    their standard errors within 1 %.

Run:  pytest benchmarks/ --benchmark-only -s
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import lawfit

HOFFMANN = {"e": 0.5267228, "a": 6.0073404, "b": 6.0179186, "alpha": 0.33917084, "beta": 0.2849083}
EPOCH_SE = {"A": 124.52, "B": 1293.28, "E": 0.02566, "alpha": 0.01540, "beta": 0.02060}


@pytest.fixture(scope="module")
def runs():
    return lawfit.datasets.chinchilla(drop_highest=5)


@pytest.fixture(scope="module")
def full_fit(runs):
    return lawfit.fit("chinchilla", runs, starts="hoffmann")


def test_bootstrap_smart_4000(benchmark, runs, full_fit):
    start = full_fit.x[None, :]  # the smart strategy's starts: the distinct optima of the full-data grid fit
    res = benchmark.pedantic(lambda: lawfit.bootstrap("chinchilla", runs, n=4000, seed=0, starts=start),
                             rounds=5, iterations=1)
    assert res.n_failed == 0 and res.n_starts == 1
    t0 = time.perf_counter()
    whole = lawfit.fit("chinchilla", runs, starts="hoffmann", bootstrap=4000, seed=0)
    t_whole = time.perf_counter() - t0
    assert np.array_equal(whole.bootstrap.theta, res.theta)
    with_ = benchmark.stats.stats
    print(f"\n(c) smart bootstrap, 4000 resamples: median {with_.median:.3f} s given the full-data fit; "
          f"{t_whole:.2f} s including the 4500-start full-data fit; SE {res.se}")


def test_epoch_replay(benchmark, runs):
    state = np.random.get_state()
    np.random.seed(42)
    idx = np.stack([np.random.choice(np.arange(240), 240, replace=True) for _ in range(4000)])
    np.random.set_state(state)
    res = benchmark.pedantic(
        lambda: lawfit.bootstrap("chinchilla", runs, resamples=idx, strategy="fixed", start=HOFFMANN,
                                 starts=np.array([list(HOFFMANN.values())])),
        rounds=5, iterations=1)
    for k, v in EPOCH_SE.items():
        assert res.se[k] == pytest.approx(v, rel=0.01)
    print(f"\n(d) Epoch replay: median {benchmark.stats.stats.median:.3f} s; SE "
          + ", ".join(f"{k} {res.se[k]:.5g} (Epoch {v})" for k, v in EPOCH_SE.items()))


def test_bootstrap_pruned_4000(benchmark, runs, full_fit):
    """(e) The exhaustive protocol's answers, pruned: each of Hoffmann's 4500 grid points is scored on each of
    4000 resamples (one matrix product) and the 16 best per resample are refitted, plus the full-data optimum.
    Agreement with the unpruned 18-million-fit run: benchmarks/exhaustive.py."""
    res = benchmark.pedantic(
        lambda: lawfit.bootstrap("chinchilla", runs, n=4000, seed=0, starts="hoffmann", strategy="pruned",
                                 screen=16, _full=full_fit),
        rounds=3, iterations=1)
    assert res.n_failed == 0 and res.n_starts == 17
    print(f"\n(e) pruned exhaustive bootstrap, 4000 resamples x (16 screened + 1 basin) starts: median "
          f"{benchmark.stats.stats.median:.2f} s given the full-data fit; mean evaluations per refit "
          f"{res.nfev.mean():.1f} (of the best start)")
