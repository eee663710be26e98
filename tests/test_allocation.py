"""Compute-optimal allocation: closed form, numeric route, budgets, inference-aware, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lawfit
from lawfit import allocation as al

# Hoffmann et al.'s published fit (Approach 3), unrounded.
HOFFMANN = dict(E=np.exp(0.5267228), A=np.exp(6.0073404), B=np.exp(6.0179186), alpha=0.33917084, beta=0.2849083)
BUDGETS = np.array([1e18, 1e21, 5.76e23, 1e25])


def test_hoffmann_exponents():
    a, b, G = al.chinchilla_exponents(HOFFMANN)
    assert a == pytest.approx(0.4566, abs=2e-4)  # published a = 0.46; unrounded beta/(alpha+beta) = 0.45653
    assert a + b == pytest.approx(1.0, abs=1e-15)
    df = al.compute_optimal(HOFFMANN, BUDGETS, law="chinchilla")
    # N_opt ~ C^a: the log-log slope between budgets is a exactly
    slope = np.diff(np.log(df.N_opt)) / np.diff(np.log(df.C))
    np.testing.assert_allclose(slope, a, rtol=1e-12)
    np.testing.assert_allclose(6 * df.N_opt * df.D_opt, df.C, rtol=1e-12)


@settings(deadline=None, max_examples=40)
@given(alpha=st.floats(0.05, 1.5), beta=st.floats(0.05, 1.5), a=st.floats(0.0, 15.0), b=st.floats(0.0, 15.0),
       e=st.floats(-1.0, 1.5), logc=st.floats(40.0, 60.0))
def test_closed_form_and_numeric_agree(alpha, beta, a, b, e, logc):
    p = dict(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)
    C = np.array([np.exp(logc)])
    closed = al.compute_optimal(p, C, law="chinchilla", method="closed")
    numeric = al.compute_optimal(p, C, law="chinchilla", method="numeric")
    for col in ("N_opt", "D_opt", "loss"):
        np.testing.assert_allclose(numeric[col], closed[col], rtol=1e-8)


def test_numeric_route_for_a_user_law_without_closed_form():
    law = lawfit.law("E + A/N**alpha + B/D**beta + G/(N*D)**gamma", variables=["N", "D"],
                     log_params=["E", "A", "B", "G"])
    p = dict(HOFFMANN, G=0.0 + 1e-300, gamma=0.5)  # the extra term is negligible: the Chinchilla answer
    num = al.compute_optimal(p, BUDGETS, law=law)
    closed = al.compute_optimal(HOFFMANN, BUDGETS, law="chinchilla")
    np.testing.assert_allclose(num.N_opt, closed.N_opt, rtol=1e-8)
    with pytest.raises(ValueError, match="no closed-form"):
        al.compute_optimal(p, BUDGETS, law=law, method="closed")


def test_budget_for_loss_inverts_loss_at_budget():
    targets = np.array([2.5, 2.2, 2.0])
    C = al.budget_for_loss(HOFFMANN, targets, law="chinchilla")["C"].to_numpy()
    reached = al.loss_at_budget(HOFFMANN, C, law="chinchilla")["loss"].to_numpy()
    np.testing.assert_allclose(reached, targets, rtol=1e-12)
    with pytest.raises(ValueError, match="irreducible loss"):
        al.budget_for_loss(HOFFMANN, [1.5], law="chinchilla")


def test_inference_aware_reduces_to_chinchilla_without_inference():
    targets = np.array([2.3, 2.0])
    io = al.inference_optimal(HOFFMANN, targets, 0.0, law="chinchilla")
    C = al.budget_for_loss(HOFFMANN, targets, law="chinchilla")["C"].to_numpy()
    co = al.compute_optimal(HOFFMANN, C, law="chinchilla")
    np.testing.assert_allclose(io.N, co.N_opt, rtol=1e-8)
    np.testing.assert_allclose(io.D, co.D_opt, rtol=1e-8)
    # With inference demand the optimum shifts to a smaller model trained on more tokens, and the total
    # is below what the Chinchilla-optimal model would cost including its inference.
    heavy = al.inference_optimal(HOFFMANN, targets, 1e13, law="chinchilla")
    assert np.all(heavy.N < io.N) and np.all(heavy.D > io.D)
    chinchilla_total = 6 * co.N_opt * co.D_opt + 2 * co.N_opt * 1e13
    assert np.all(heavy.total_flops < chinchilla_total)


def test_bootstrap_intervals_for_allocation():
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    start = np.array([[0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243]])
    res = lawfit.fit("chinchilla", runs, starts=start, bootstrap=200, seed=0)
    df = al.compute_optimal(res, [1e21, 1e24])
    for col in ("N_opt", "D_opt", "tokens_per_param", "loss"):
        assert np.all(df[f"{col}_low"] <= df[col]) and np.all(df[col] <= df[f"{col}_high"]), col
    b = al.budget_for_loss(res, [2.0])
    assert b.C_low[0] < b.C[0] < b.C_high[0]
    inf = al.inference_optimal(res.bootstrap, [2.0], [1e12])
    assert inf.N_low[0] < inf.N[0] < inf.N_high[0]


@pytest.mark.parametrize("call, words", [
    (lambda: al.compute_optimal(HOFFMANN, [-1.0], law="chinchilla"), "budgets C"),
    (lambda: al.compute_optimal(HOFFMANN, [1e21]), "law="),
    (lambda: al.compute_optimal({"E": 1.0}, [1e21], law="chinchilla"), "missing"),
    (lambda: al.compute_optimal(HOFFMANN, [1e21], law="saturating_C"), "law of N and D"),
    (lambda: al.compute_optimal(HOFFMANN, [1e21], law="chinchilla", method="magic"), "method"),
    (lambda: al.inference_optimal(HOFFMANN, [2.0], [-1.0], law="chinchilla"), "inference_tokens"),
    (lambda: al.compute_optimal([1, 2], [1e21]), "FitResult"),
])
def test_allocation_errors(call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call()
