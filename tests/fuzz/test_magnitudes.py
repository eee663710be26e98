"""Magnitudes: N and D up to 1e15, losses from 1e-300 to 1e300."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lawfit
from lawfit import Status

from fuzz.helpers import CHIN, GOOD_START, LAW, check_fit


TRUTH = np.array([np.log(1.69), np.log(406.4), np.log(410.7), 0.34, 0.28])  # e, a, b, alpha, beta
OFFSET = np.array([0.05, -0.3, 0.3, 0.02, -0.02])


def chinchilla_runs(n: int, lo: float, hi: float, scale: float = 1.0, seed: int = 1) -> dict:
    """Noise-free Chinchilla losses (times scale) at N, D log-uniform in [10**lo, 10**hi]."""
    rng = np.random.default_rng(seed)
    N, D = 10 ** rng.uniform(lo, hi, n), 10 ** rng.uniform(lo, hi, n)
    N[0], D[1], N[2], D[3] = 10.0**hi, 10.0**hi, 10.0**lo, 10.0**lo  # the extremes themselves
    E, A, B, alpha, beta = np.exp(TRUTH[0]), np.exp(TRUTH[1]), np.exp(TRUTH[2]), TRUTH[3], TRUTH[4]
    return {"N": N, "D": D, "loss": scale * (E + A / N**alpha + B / D**beta)}


@pytest.mark.parametrize("loss", ["squared", "huber"])
@pytest.mark.parametrize("lo, hi", [(12, 15), (3, 15), (14, 15)])
def test_exact_recovery_with_N_and_D_up_to_1e15(loss, lo, hi):
    """Noise-free data with N and D up to 1e15 (down to 1e3): the truth is recovered to ~1e-10. (Over a
    band as narrow as 10**14.9 .. 10**15 the power terms and E are nearly collinear; the Huber fit then
    ends at the iteration limit, honestly reported, with the objective at 1e-13.)"""
    runs = chinchilla_runs(40, lo, hi)
    assert runs["N"].max() == runs["D"].max() == 10.0**hi
    r = lawfit.fit(CHIN, runs, starts=(TRUTH + OFFSET)[None, :], loss=loss)
    assert r.status is Status.CONVERGED and r.fun < 1e-25
    np.testing.assert_allclose(r.x, TRUTH, rtol=0, atol=1e-9)


@pytest.mark.parametrize("scale", [1e-300, 1e-12, 1e12, 1e300])
def test_exact_recovery_with_losses_near_zero_and_huge(scale):
    """The fit works on log L, so scaling every loss by s only shifts e, a, b by log s."""
    runs = chinchilla_runs(40, 7, 15, scale)
    assert np.all(np.isfinite(runs["loss"])) and np.all(runs["loss"] > 0)
    shift = np.array([1, 1, 1, 0, 0]) * math.log(scale)
    for loss in ("squared", "huber"):
        r = lawfit.fit(CHIN, runs, starts=(TRUTH + shift + OFFSET)[None, :], loss=loss)
        assert r.success and r.fun < 1e-22
        np.testing.assert_allclose(r.x - shift, TRUTH, rtol=0, atol=1e-8)


def test_power_law_with_losses_of_1e_minus_12_and_N_to_1e15():
    rng = np.random.default_rng(2)
    N = 10 ** rng.uniform(1, 15, 20)
    runs = {"N": N, "loss": 1e-12 * N**-0.1}
    for loss in ("squared", "huber"):
        r = lawfit.fit("power_law_N", runs, starts=np.array([[-20.0, 0.3]]), loss=loss)
        assert r.success and r.fun < 1e-25
        np.testing.assert_allclose(r.x, [math.log(1e-12), 0.1], rtol=1e-12)


def test_extreme_but_valid_inputs_give_statuses_not_errors():
    """Runs at 5e-324 .. 1e308, losses at 1e-300 and 1e300 at once: every start ends with a status."""
    runs = {"N": np.array([5e-324, 1e-300, 1.0, 1e15, 1e300, 1e308]),
            "D": np.array([1e308, 1e15, 1.0, 1e-300, 5e-324, 1e9]),
            "loss": np.array([1e-300, 1e300, 1.0, 1e-12, 1e12, 2.5])}
    for law in ("chinchilla", "chinchilla_linear_e", "kaplan", "saturating_N", "power_law_N"):
        starts = "grid" if LAW[law].default_grid().shape[0] <= 200 else np.array([GOOD_START[law]])
        r = lawfit.fit(law, runs, starts=starts, max_iter=30)
        check_fit(r)
        ev = lawfit.evaluate(law, runs, r.x, derivatives=2)
        assert ev.fun.shape == (1,)
