"""The law catalogue beyond Chinchilla: data-constrained (Muennighoff et al.), tied exponents, pure power law,
Kaplan's learning curve. Synthetic data come from NumPy formulas written here, independent of the compiler."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit

TRUE_DC = dict(E=1.87, A=406.4, B=410.7, alpha=0.34, beta=0.28, RD=15.4, RN=5.3)


def data_constrained_runs(seed=0, n=160, ratio=20.0, noise=0.0):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 9.5, n)
    U_D = 10 ** rng.uniform(8, 11, n)
    epochs = 10 ** rng.uniform(0, 2, n)
    D = U_D * epochs
    U_N = np.minimum(N, U_D / ratio)
    p = TRUE_DC
    Dp = U_D + U_D * p["RD"] * (1 - np.exp(-(D / U_D - 1) / p["RD"]))
    Np = U_N + U_N * p["RN"] * (1 - np.exp(-(N / U_N - 1) / p["RN"]))
    loss = p["E"] + p["A"] / Np ** p["alpha"] + p["B"] / Dp ** p["beta"]
    return {"N": N, "D": D, "U_D": U_D, "loss": loss * np.exp(noise * rng.standard_normal(n))}


def test_data_constrained_law_recovers_RD_and_RN_noise_free():
    law = lawfit.laws.get("data_constrained")
    runs = data_constrained_runs()
    assert np.mean(runs["N"] > runs["U_D"] / 20) > 0.2  # excess parameters present: R_N* is identified
    res = lawfit.fit(law, runs, loss="squared")
    assert res.success, res.status
    truth = law.to_internal(TRUE_DC)
    np.testing.assert_allclose(res.x, truth, rtol=1e-6, atol=1e-8)
    assert res.params["RD"] == pytest.approx(15.4, rel=1e-6)
    assert res.params["RN"] == pytest.approx(5.3, rel=1e-6)


def test_data_constrained_law_noisy_and_huber():
    law = lawfit.laws.get("data_constrained")
    runs = data_constrained_runs(seed=1, n=300, noise=0.005)
    res = lawfit.fit(law, runs)  # Huber, delta 1e-3
    assert res.success
    truth_obj = lawfit.evaluate(law, runs, law.to_internal(TRUE_DC)[None, :], derivatives=0).fun[0]
    assert res.fun <= truth_obj  # at least as good as the truth
    assert res.params["RD"] == pytest.approx(15.4, rel=0.3)
    assert res.params["RN"] == pytest.approx(5.3, rel=0.3)


def test_data_constrained_takes_U_N_from_the_data_when_given():
    law = lawfit.laws.get("data_constrained")
    runs = data_constrained_runs(n=40)
    theta = law.to_internal(TRUE_DC)[None, :]
    derived = lawfit.evaluate(law, runs, theta).fun
    given = lawfit.evaluate(law, dict(runs, U_N=np.minimum(runs["N"], runs["U_D"] / 20)), theta).fun
    assert given[0] == derived[0]
    other = lawfit.evaluate(law, dict(runs, U_N=runs["N"]), theta).fun  # no excess parameters assumed
    assert other[0] != derived[0]


def test_tied_chinchilla_equals_chinchilla_with_tie():
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    grid = {"e": [0.5], "a": [6.0], "b": [7.0], "alpha": [0.3, 0.4]}
    tied = lawfit.fit("chinchilla_tied", runs, starts=grid)
    chin = lawfit.fit("chinchilla", runs, starts=dict(grid, beta=[0.3]), tie=[("alpha", "beta")])
    assert tied.success and chin.success
    assert tied.fun == pytest.approx(chin.fun, rel=1e-10)
    assert tied.params["alpha"] == pytest.approx(chin.params["alpha"], rel=1e-6)


@pytest.mark.parametrize("variable", ["C", "N"])
def test_pure_power_law_is_exact_on_power_law_data(variable):
    x = np.geomspace(1e18, 1e23, 30) if variable == "C" else np.geomspace(1e7, 1e10, 30)
    res = lawfit.fit(f"power_law_{variable}", {variable: x, "loss": 3e3 * x**-0.15}, loss="squared")
    assert res.params["A"] == pytest.approx(3e3, rel=1e-8)
    assert res.params["alpha"] == pytest.approx(0.15, rel=1e-8)


def test_kaplan_learning_curve_recovery():
    rng = np.random.default_rng(3)
    N = 10 ** rng.uniform(6, 9, 120)
    S = 10 ** rng.uniform(3, 5.5, 120)
    loss = (6.4e13 / N) ** 0.076 + (2.1e3 / S) ** 0.76
    res = lawfit.fit("kaplan_learning_curve", {"N": N, "S": S, "loss": loss}, loss="squared")
    assert res.success
    assert res.params["alpha_N"] == pytest.approx(0.076, rel=1e-6)
    assert res.params["alpha_S"] == pytest.approx(0.76, rel=1e-6)
    assert res.params["Nc"] == pytest.approx(6.4e13, rel=1e-5)
    assert res.params["Sc"] == pytest.approx(2.1e3, rel=1e-5)


def test_every_catalogue_law_has_documented_formula_and_grid():
    for name in lawfit.laws.available():
        law = lawfit.laws.get(name)
        assert law.formula and law.description, name
        assert len(law.default_grid()) >= 1, name
        assert law.describe().startswith(law.name)
    for factory in (lawfit.laws.chinchilla, lawfit.laws.chinchilla_linear_e, lawfit.laws.chinchilla_tied,
                    lawfit.laws.saturating, lawfit.laws.power_law, lawfit.laws.kaplan,
                    lawfit.laws.kaplan_learning_curve, lawfit.laws.data_constrained):
        doc = factory.__doc__ or ""
        assert "L" in doc and ("log" in doc) and ("grid" in doc or "Grid" in doc), factory.__name__
