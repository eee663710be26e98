"""Epoch AI's Huber likelihood (fitted through its least-absolute-deviations core) and the warnings that keep a
bootstrap or a best-start choice from passing off a wrong answer."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest

import lawfit
from lawfit.status import Status
from lawfit.warnings import BasinWarning, BetterUnconvergedWarning

RUNS = lawfit.datasets.chinchilla(drop_highest=5)
boot_mod = importlib.import_module("lawfit.bootstrap")  # the module (lawfit.bootstrap is the function)


def test_huber_likelihood_every_start_reaches_the_lad_point():
    fit = lawfit.fit("chinchilla", RUNS, starts="hoffmann", loss="huber_likelihood")
    lad = lawfit.fit("chinchilla", RUNS, starts="hoffmann", loss="absolute", screen=16)
    assert fit.success and fit.n_success == fit.n_starts == 4500
    assert fit.n_reached(1e-9) == 4500
    for k in ("E", "A", "B", "alpha", "beta"):  # within ~delta * sigma of the LAD vertex
        assert fit.params[k] == pytest.approx(lad.params[k], rel=1e-5), k
    # sigma at its profile value: delta * mean |r|
    assert fit.params["sigma"] == pytest.approx(1e-3 * lad.fun / len(RUNS), rel=1e-3)


@pytest.mark.slow
def test_huber_likelihood_bootstrap_gives_sensible_errors():
    b = lawfit.bootstrap("chinchilla", RUNS, n=200, seed=0, loss="huber_likelihood", starts="hoffmann")
    assert b.n_failed <= 2  # at most 1 %
    se = b.se
    assert se["E"] < 0.1 and se["B"] < 5000 and se["alpha"] < 0.05 and se["beta"] < 0.05
    h = lawfit.bootstrap("chinchilla", RUNS, n=200, seed=0, starts="hoffmann")
    for k in ("E", "alpha", "beta"):  # the same order as Huber's
        assert 0.3 < se[k] / h.se[k] < 3, k


def test_draws_in_another_basin_warn():
    fit = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=4)
    rng = np.random.default_rng(0)
    draws = fit.x + 0.01 * rng.standard_normal((100, 5))
    status = np.zeros(100, dtype=np.int32)
    boot_mod._warn_other_basin(fit.law, fit, draws, status)  # around the estimate: silent
    far = draws.copy()
    far[:, 4] += 1.4  # beta in another basin
    with pytest.warns(BasinWarning, match="beta"):
        boot_mod._warn_other_basin(fit.law, fit, far, status)


def test_a_lower_unconverged_start_is_reported(monkeypatch):
    """The best-start rule prefers converged fits; when a start that did not converge got clearly lower, the
    fit says so instead of passing the worse converged point off as the optimum."""
    real = lawfit.engine.minimize

    def fake(*args, **kw):
        bf = real(*args, **kw)
        status = bf.status.copy()
        status[0, np.argmin(bf.fun[0])] = Status.MAX_ITERATIONS
        fun = bf.fun.copy()
        fun[0, np.argmax(bf.fun[0])] *= 1.5
        return dataclasses.replace(bf, status=status, fun=fun)

    monkeypatch.setattr(lawfit.multistart.engine, "minimize", fake)
    best = np.array([[0.597, 6.17, 7.67, 0.347, 0.367]])
    st = np.vstack([best, best + 0.2])
    with pytest.warns(BetterUnconvergedWarning, match="stopped without converging"):
        lawfit.fit("chinchilla", RUNS, starts=st)
