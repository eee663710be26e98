"""The solver's trust-region scaling (lawfit.engine.trust_scale, minimize(trust_scale=...))."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit.engine import constraints, trust_scale
from lawfit.starts import hoffmann_grid

HOFFMANN = np.array([0.5267228, 6.0073404, 6.0179186, 0.33917084, 0.2849083])  # e, a, b, alpha, beta


@pytest.fixture(scope="module")
def runs():
    return lawfit.datasets.chinchilla(drop_highest=5)


def rms(v) -> float:
    return float(np.sqrt(np.mean(np.square(v))))


def test_chinchilla_scale_is_the_spread_of_each_terms_feature(runs):
    # log L = lse(e, a - alpha log N, b - beta log D): d/d(e, a, b) = 1, d/d alpha = -log N, d/d beta = -log D
    d = trust_scale("chinchilla", runs)
    expected = [1.0, 1.0, 1.0, rms(np.log(runs["N"])), rms(np.log(runs["D"]))]
    np.testing.assert_allclose(d, expected, rtol=1e-12)


def test_tied_fixed_and_linear_parameters(runs):
    law = lawfit.laws.get("chinchilla")
    logN, logD = rms(np.log(runs["N"])), rms(np.log(runs["D"]))
    # alpha = beta: one free parameter moving both terms; the larger of the two spreads
    con = constraints(law, tie=[("alpha", "beta")])
    np.testing.assert_allclose(trust_scale(law, runs, con), [1.0, 1.0, 1.0, max(logN, logD)], rtol=1e-12)
    # a fixed parameter has no entry
    con = constraints(law, fixed={"alpha": 0.34})
    np.testing.assert_allclose(trust_scale(law, runs, con), [1.0, 1.0, 1.0, logD], rtol=1e-12)
    # E on the linear scale enters as log E: d/dE = 1 / E at the reference point (its grid's median)
    lin = lawfit.laws.get("chinchilla_linear_e")
    E_ref = float(np.median(lin.params[lin.index("E")].grid))
    assert trust_scale(lin, runs)[0] == pytest.approx(1.0 / E_ref, rel=1e-12)


@pytest.mark.parametrize("name", ["kaplan", "power_law_N"])
def test_laws_not_a_log_sum_exp_are_unscaled(runs, name):
    law = lawfit.laws.get(name)
    np.testing.assert_array_equal(trust_scale(law, runs), np.ones(law.n_params))


def test_scale_depends_on_the_points_not_their_order(runs):
    perm = runs.sample(frac=1.0, random_state=3)
    np.testing.assert_allclose(trust_scale("chinchilla", perm), trust_scale("chinchilla", runs), rtol=1e-13)


def test_no_scaling_is_the_unit_scaling_bit_for_bit(runs):
    law = lawfit.laws.get("chinchilla")
    st = hoffmann_grid(law)[::97]
    a = lawfit.minimize(law, runs, st, keep="all", trust_scale=None)
    b = lawfit.minimize(law, runs, st, keep="all", trust_scale=np.ones(5))
    for field in ("x", "fun", "status", "nit", "nfev"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_scaled_and_unscaled_fits_reach_the_same_optimum(runs):
    law = lawfit.laws.get("chinchilla")
    a = lawfit.minimize(law, runs, HOFFMANN[None, :], trust_scale="auto")
    b = lawfit.minimize(law, runs, HOFFMANN[None, :], trust_scale=None)
    assert a.success[0] and b.success[0]
    assert a.fun[0] == pytest.approx(b.fun[0], rel=1e-12)
    np.testing.assert_allclose(a.theta[0], b.theta[0], rtol=1e-6)


def test_scaling_saves_evaluations_on_hoffmanns_grid(runs):
    """What the scaling is for (DESIGN.md, "The solver"): on a tenth of Hoffmann's grid, every start still
    reaches the optimum, with fewer evaluations on average than unscaled steps (42.3 against 47.8 on the
    whole grid when measured)."""
    law = lawfit.laws.get("chinchilla")
    st = hoffmann_grid(law)[::10]
    a = lawfit.minimize(law, runs, st, keep="all", trust_scale="auto")
    b = lawfit.minimize(law, runs, st, keep="all", trust_scale=None)
    assert np.all(a.fun <= 1.0182741e-3) and np.all(a.success)
    assert a.nfev.mean() < 0.95 * b.nfev.mean()


def test_auto_scale_follows_the_data_from_call_to_call(runs):
    """minimize keeps the last "auto" scale; a call on other features must not reuse it."""
    law = lawfit.laws.get("chinchilla")
    other = runs.assign(N=runs["N"] * 1e3)  # rms log N changes, so does the scale
    assert trust_scale(law, other)[3] != trust_scale(law, runs)[3]
    st = hoffmann_grid(law)[::450]
    for data in (runs, other, runs):
        auto = lawfit.minimize(law, data, st, keep="all")
        explicit = lawfit.minimize(law, data, st, keep="all", trust_scale=trust_scale(law, data))
        for field in ("x", "fun", "nit", "nfev"):
            np.testing.assert_array_equal(getattr(auto, field), getattr(explicit, field))
