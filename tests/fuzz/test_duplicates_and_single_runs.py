"""Duplicate rows and single-run edge cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import lawfit

from fuzz.helpers import CHIN, GOOD_START, LAW, check_fit, synthetic


START2 = np.array([[0.55, 6.0, 7.5, 0.32, 0.35], [0.7, 5.0, 7.0, 0.3, 0.3]])


def test_every_run_twice_is_the_fit_with_weights_two():
    runs = synthetic(30, 3)
    once = lawfit.fit(CHIN, runs, starts=START2)
    w2 = lawfit.fit(CHIN, runs, starts=START2, weights=np.full(30, 2.0))
    assert once.success and w2.success
    # weights 2 double the objective; the Newton steps are the same up to rounding (a Cholesky takes sqrt 2)
    assert w2.fun == pytest.approx(2 * once.fun, rel=1e-12)
    np.testing.assert_allclose(w2.x, once.x, rtol=1e-7, atol=1e-9)
    for doubled in ({k: np.concatenate([v, v]) for k, v in runs.items()},  # appended
                    {k: np.repeat(v, 2) for k, v in runs.items()},  # each row twice in place
                    pd.concat([pd.DataFrame(runs)] * 2, ignore_index=True)):  # a DataFrame
        r = lawfit.fit(CHIN, doubled, starts=START2)
        assert r.success and r.n_runs == 60
        assert r.fun == pytest.approx(w2.fun, rel=1e-12)
        np.testing.assert_allclose(r.x, w2.x, rtol=1e-7, atol=1e-9)
        ev = lawfit.evaluate(CHIN, doubled, START2, derivatives=2)
        ev2 = lawfit.evaluate(CHIN, runs, START2, weights=np.full(30, 2.0), derivatives=2)
        np.testing.assert_allclose(ev.fun, ev2.fun, rtol=1e-13)
        np.testing.assert_allclose(ev.grad, ev2.grad, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(ev.hess, ev2.hess, rtol=1e-11, atol=1e-13)


def test_bootstrap_counts_equal_duplicated_rows():
    """A bootstrap weight row (counts) is the same fit as the dataset with those rows repeated."""
    runs = synthetic(20, 4)
    counts = np.random.default_rng(0).multinomial(20, np.full(20, 1 / 20)).astype(float)
    by_weight = lawfit.fit(CHIN, runs, starts=START2, weights=counts)
    repeated = {k: np.repeat(v, counts.astype(int)) for k, v in runs.items()}
    by_rows = lawfit.fit(CHIN, repeated, starts=START2)
    assert by_rows.n_runs == 20 and by_weight.n_runs == np.count_nonzero(counts)
    assert by_rows.fun == pytest.approx(by_weight.fun, rel=1e-12)
    np.testing.assert_allclose(by_rows.x, by_weight.x, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("law", ["chinchilla", "chinchilla_linear_e", "saturating_N", "power_law_N", "kaplan"])
@pytest.mark.parametrize("loss", ["huber", "squared"])
def test_single_run(law, loss):
    """One run, several parameters: the law is not identified, a ValueError giving both numbers (it used to
    "converge" to one of the infinitely many interpolating points)."""
    runs = {k: v[:1] for k, v in synthetic(5, 5).items()}
    starts = np.array([GOOD_START[law]]) if LAW[law].default_grid().shape[0] > 200 else "grid"
    with pytest.raises(ValueError, match=rf"the data has 1 run\(s\) but the fit has {LAW[law].n_params} free "):
        lawfit.fit(law, runs, starts=starts, loss=loss, max_iter=60)


def test_single_run_with_all_but_one_parameter_fixed_is_solved_exactly():
    runs = {k: v[:1] for k, v in synthetic(5, 6).items()}
    fixed = {"E": 1.8, "A": 480.0, "B": 2100.0, "beta": 0.37}
    r = lawfit.fit(CHIN, runs, starts=np.array([GOOD_START["chinchilla"]]), fixed=fixed)
    assert r.success and r.fun < 1e-25
    assert {k: r.params[k] for k in fixed} == pytest.approx(fixed, rel=1e-15)
    N, D, L = runs["N"][0], runs["D"][0], runs["loss"][0]
    alpha = -math.log((L - 1.8 - 2100.0 / D**0.37) / 480.0) / math.log(N)
    assert r.params["alpha"] == pytest.approx(alpha, rel=1e-9)


def test_everything_fixed_but_one_parameter_matches_a_one_dimensional_scan():
    runs = synthetic(40, 7)
    fixed = {"e": 0.6, "a": 6.2, "b": 7.7, "beta": 0.37}
    r = lawfit.fit(CHIN, runs, starts=np.array([GOOD_START["chinchilla"]]), fixed=fixed, loss="huber")
    assert r.success and r.nit >= 1
    grid = np.linspace(r.params["alpha"] - 0.01, r.params["alpha"] + 0.01, 401)
    P = np.tile([0.6, 6.2, 7.7, 0.0, 0.37], (grid.size, 1))
    P[:, 3] = grid
    scan = lawfit.evaluate(CHIN, runs, P, derivatives=0).fun
    assert r.fun <= scan.min() * (1 + 1e-12)
    assert abs(grid[np.argmin(scan)] - r.params["alpha"]) <= grid[1] - grid[0]
    # the same through tie + fix: alpha tied to beta, beta fixed -> nothing free
    with pytest.raises(ValueError, match="every parameter is fixed"):
        lawfit.fit(CHIN, runs, starts=np.array([GOOD_START["chinchilla"]]), fixed={**fixed, "alpha": 0.3})


def test_two_runs_are_interpolated_by_a_two_parameter_law():
    runs = {k: v[:2] for k, v in synthetic(5, 8).items()}
    r = lawfit.fit("power_law_N", runs, starts=np.array([[5.0, 0.2]]), loss="squared")
    assert r.success and r.fun < 1e-25
    logN, logL = np.log(runs["N"]), np.log(runs["loss"])
    alpha = -(logL[1] - logL[0]) / (logN[1] - logN[0])
    assert r.params["alpha"] == pytest.approx(alpha, rel=1e-9)
    with pytest.raises(ValueError, match=r"the data has 2 run\(s\) but the fit has 5 free parameters"):
        lawfit.minimize("chinchilla", runs, START2, keep="all", max_iter=50)


def test_all_runs_identical():
    """Seven copies of one run are one point: no law with two or more parameters is identified by it."""
    one = {k: v[:1] for k, v in synthetic(5, 9).items()}
    same = {k: np.repeat(v, 7) for k, v in one.items()}
    for law in ("chinchilla", "saturating_N"):
        starts = START2 if law == "chinchilla" else "grid"
        with pytest.raises(ValueError, match=r"the data has 1 distinct point\(s\) .* but the fit has "):
            lawfit.fit(law, same, starts=starts)
        with pytest.raises(ValueError, match=r"the data has 1 run\(s\) but the fit has "):
            lawfit.fit(law, one, starts=starts, weights=[7.0])


@pytest.mark.parametrize("loss", ["huber", "squared"])
def test_constant_loss(loss):
    """Loss 2.5 for every run: the fit makes the prediction 2.5 everywhere (objective at rounding level).
    The optimum is not a point (A, B -> 0 with alpha, beta free, or E + A = 2.5 with alpha = 0), and at an
    objective of ~1e-30 no relative stopping test can certify it, so the status may be STEP_FAILED or
    MAX_ITERATIONS: only the objective and the predictions are checked."""
    runs = synthetic(30, 10)
    runs["loss"] = np.full(30, 2.5)
    for law, starts in (("saturating_N", "grid"), ("chinchilla", START2),
                        ("chinchilla_linear_e", np.array([GOOD_START["chinchilla_linear_e"]]))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", lawfit.LawfitWarning)
            r = lawfit.fit(law, runs, starts=starts, max_iter=300, loss=loss)
        check_fit(r)
        if r.success:  # a converged fit says that the data do not identify it
            assert any(issubclass(w.category, lawfit.IdentifiabilityWarning) for w in caught), (law, caught)
        assert r.fun < 1e-20
        np.testing.assert_allclose(LAW[law].predict(runs, r.params), 2.5, rtol=1e-9)
