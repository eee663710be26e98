"""Concurrent calls from several Python threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import lawfit
from lawfit import _core

from fuzz.helpers import CHIN, GOOD_START, _chin_minimize_args, rejected, synthetic


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_concurrent_calls_from_python_threads_match_sequential_bit_for_bit():
    """Four Python threads call fit, minimize and evaluate at once on different data (the core releases the
    GIL and runs its own pool in each call; a user law is shared, its compiled program built lazily by
    whichever thread comes first). Every result equals the sequential one bit for bit."""
    user = lawfit.law("E + A / N**alpha + B / D**beta", ["N", "D"], log_params=["E", "A", "B"])
    grid = {"E": [1.0, 1.6], "A": [150.0, 1100.0], "B": [400.0], "alpha": [0.3, 0.5], "beta": [0.3]}
    ticks = []

    def task(k: int):
        runs = synthetic(60 + 10 * k, 100 + k)
        law = (CHIN, user)[k % 2]
        w = np.random.default_rng(k).integers(0, 3, (6, len(runs["N"]))).astype(float)
        fit = lawfit.fit(law, runs, starts=grid, threads=1 + k % 2)
        batch = lawfit.minimize(law, runs, fit.x[None, :], weights=w, keep="all", threads=2,
                                progress=lambda done, total: ticks.append(done))
        ev = lawfit.evaluate(law, runs, batch.theta[:, 0], weights=w, derivatives=2, threads=2)
        return [fit.start_fun, fit.start_theta, fit.start_status, batch.x, batch.fun, batch.status, batch.nfev,
                ev.fun, ev.grad, ev.hess]

    keys = list(range(8))
    sequential = [task(k) for k in keys]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=4) as pool:
            concurrent = list(pool.map(task, keys))
        for k in keys:
            for a, b in zip(sequential[k], concurrent[k]):
                assert _same(a, b), k
    assert ticks  # the progress callables ran (with the GIL) while other threads computed


def test_concurrent_calls_with_bad_input_fail_only_their_own_thread():
    runs = synthetic(30, 1)
    start = np.array([GOOD_START["chinchilla"]])

    def task(k: int):
        if k % 3 == 0:
            bad = {**runs, "loss": np.r_[runs["loss"][:-1], -1.0]}
            return rejected(lambda: lawfit.fit(CHIN, bad, starts=start))
        if k % 3 == 1:
            return rejected(lambda: _core.minimize(**_chin_minimize_args(weights=np.full((1, 6), -1.0))))
        return lawfit.fit(CHIN, runs, starts=start).fun

    with ThreadPoolExecutor(max_workers=4) as pool:
        out = list(pool.map(task, range(12)))
    ref = lawfit.fit(CHIN, runs, starts=start).fun
    assert out[0::3] == [None] * 4 and out[1::3] == [None] * 4 and out[2::3] == [ref] * 4
