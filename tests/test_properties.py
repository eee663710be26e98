"""Property tests of the estimates (hypothesis): invariance to run order, to duplicating the data with
halved weights, and to rescaling N or D with the matching change of A or B."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import lawfit

TRUTH = np.array([0.6, 6.2, 7.7, 0.34, 0.37])  # e, a, b, alpha, beta
START = np.array([0.55, 6.0, 7.5, 0.32, 0.35])


def synthetic(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 10, n)
    D = 10 ** rng.uniform(8, 11, n)
    e, a, b, alpha, beta = TRUTH
    loss = np.exp(e) + np.exp(a) * N**-alpha + np.exp(b) * D**-beta
    return {"N": N, "D": D, "loss": loss * np.exp(rng.normal(0, 0.01, n))}


def fitted(data, **kw):
    res = lawfit.fit("chinchilla", data, starts=START[None, :], **kw)
    assert res.success, res.status
    return res


SETTINGS = settings(deadline=None, max_examples=15)


@SETTINGS
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_estimates_do_not_depend_on_run_order(seed, perm_seed):
    data = synthetic(seed)
    perm = np.random.default_rng(perm_seed).permutation(len(data["N"]))
    a = fitted(data)
    b = fitted({k: v[perm] for k, v in data.items()})
    assert abs(b.fun - a.fun) <= 1e-12 * a.fun
    np.testing.assert_allclose(b.x, a.x, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_duplicating_runs_with_halved_weights_changes_nothing(seed):
    data = synthetic(seed)
    doubled = {k: np.concatenate([v, v]) for k, v in data.items()}
    a = fitted(data)
    b = fitted(doubled, weights=np.full(2 * len(data["N"]), 0.5))
    assert abs(b.fun - a.fun) <= 1e-12 * a.fun
    np.testing.assert_allclose(b.x, a.x, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), kN=st.floats(1e-3, 1e3), kD=st.floats(1e-3, 1e3))
def test_rescaling_N_and_D_rescales_A_and_B(seed, kN, kD):
    """L = E + A/N^alpha + B/D^beta is unchanged by N -> kN, A -> A kN^alpha (likewise D, B)."""
    data = synthetic(seed)
    a = fitted(data)
    scaled = dict(data, N=data["N"] * kN, D=data["D"] * kD)
    e, la, lb, alpha, beta = a.x
    start = np.array([e, la + alpha * np.log(kN), lb + beta * np.log(kD), alpha, beta]) + (START - a.x)
    b = lawfit.fit("chinchilla", scaled, starts=start[None, :])
    assert b.success
    assert abs(b.fun - a.fun) <= 1e-9 * a.fun
    np.testing.assert_allclose(b.x[[0, 3, 4]], a.x[[0, 3, 4]], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(b.params["A"], a.params["A"] * kN ** a.params["alpha"], rtol=1e-4)
    np.testing.assert_allclose(b.params["B"], a.params["B"] * kD ** a.params["beta"], rtol=1e-4)
