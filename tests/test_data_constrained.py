"""Muennighoff et al. (2023), data-constrained scaling, by the paper's procedure: a Chinchilla fit on
single-epoch runs, frozen, then R_D* and R_N* with U_N = min(N, compute-optimal N for U_D tokens under the base
law). Synthetic data and the reference values come from NumPy formulas written here, independent of the compiler."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import lawfit
from lawfit import allocation as al

# The paper's published fit (alpha = beta), natural scale.
PAPER = dict(E=math.exp(0.6254804), A=math.exp(6.255414), B=math.exp(7.3049974), alpha=0.3526596, beta=0.3526596)
PAPER_R = dict(RD=15.387756, RN=5.309743)
# A base with alpha != beta: the compute-optimal tokens per parameter then drift with the scale.
BASE = dict(E=1.87, A=406.4, B=410.7, alpha=0.34, beta=0.28)
TRUE_R = dict(RD=15.4, RN=5.3)


def n_opt_for_tokens(p, U_D):
    """The N whose compute-optimal D is U_D (Hoffmann et al.'s closed form, solved for N)."""
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    a, b = p["beta"] / (p["alpha"] + p["beta"]), p["alpha"] / (p["alpha"] + p["beta"])
    c6 = (np.asarray(U_D) * G) ** (1 / b)  # D_opt = (C/6)^b / G = U_D
    return G * c6 ** a


def paper_loss(p, r, N, D, U_D):
    """The paper's formula: repetitions clamped at 0, U_N = min(N, N_opt(U_D))."""
    U_N = np.minimum(N, n_opt_for_tokens(p, U_D))
    R_D = np.maximum(D / U_D - 1, 0)
    R_N = np.maximum(N / U_N - 1, 0)
    Dp = U_D + U_D * r["RD"] * (1 - np.exp(-R_D / r["RD"]))
    Np = U_N + U_N * r["RN"] * (1 - np.exp(-R_N / r["RN"]))
    return p["E"] + p["A"] / Np ** p["alpha"] + p["B"] / Dp ** p["beta"]


def test_paper_prediction():
    law = lawfit.laws.data_constrained(base=PAPER)
    assert law.param_names == ["RD", "RN"]
    run = {"N": [6.34e9], "D": [242e9], "U_D": [25e9]}
    got = law.predict(run, PAPER_R)[0]
    assert got == pytest.approx(2.2256441, abs=5e-8)
    assert got == pytest.approx(paper_loss(PAPER, PAPER_R, 6.34e9, 242e9, 25e9), rel=1e-13)
    # this run has excess parameters: U_N = N_opt(25e9) = 1.27e9 < N (the old U_D / 20 = 1.25e9 differs)
    assert n_opt_for_tokens(PAPER, 25e9) == pytest.approx(1.2747e9, rel=1e-4)


def test_prediction_matches_formula_with_alpha_not_beta():
    law = lawfit.laws.data_constrained(base=BASE)
    rng = np.random.default_rng(0)
    U_D = 10 ** rng.uniform(8, 11, 50)
    D = U_D * 10 ** rng.uniform(0, 2, 50)
    N = 10 ** rng.uniform(7, 11, 50)
    got = law.predict({"N": N, "D": D, "U_D": U_D}, TRUE_R)
    np.testing.assert_allclose(got, paper_loss(BASE, TRUE_R, N, D, U_D), rtol=1e-13)
    # the tokens per parameter at the cap are not a constant 20: they drift with U_D when alpha != beta
    ratio = U_D / n_opt_for_tokens(BASE, U_D)
    assert ratio.max() / ratio.min() > 2


def test_compute_optimal_N_agrees_with_allocation():
    """N_opt(U_D) of the law is the compute-optimal N of lawfit.allocation at the budget whose D_opt is U_D."""
    for p in (PAPER, BASE):
        law = lawfit.laws.data_constrained(base=p)
        fn = law.derived["U_N"][1]
        opt = al.compute_optimal(p, [1e18, 1e21, 1e24, 1e27], law="chinchilla")
        np.testing.assert_allclose(fn.n_opt(opt.D_opt.to_numpy()), opt.N_opt.to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(fn(opt.N_opt.to_numpy() * 2, opt.D_opt.to_numpy()), opt.N_opt, rtol=1e-12)


def synthetic_runs(seed=0, noise=0.0):
    """Single-epoch runs with no excess parameters (pure Chinchilla: D = U_D and N <= N_opt(D)), and repeated
    runs (up to 100 epochs, many with excess parameters), from the paper's formula."""
    rng = np.random.default_rng(seed)
    N1 = 10 ** rng.uniform(7, 10, 60)
    G = (BASE["alpha"] * BASE["A"] / (BASE["beta"] * BASE["B"])) ** (1 / (BASE["alpha"] + BASE["beta"]))
    D_min = (N1 / G) ** (BASE["alpha"] / BASE["beta"]) / G  # N_opt(D_min) = N1
    D1 = D_min * 10 ** rng.uniform(0, 1.5, 60)
    single = {"N": N1, "D": D1, "U_D": D1}
    U_D = 10 ** rng.uniform(8, 10.5, 200)
    N = 10 ** rng.uniform(7, 10, 200)
    multi = {"N": N, "D": U_D * 10 ** rng.uniform(0, 2, 200), "U_D": U_D}
    for runs in (single, multi):
        loss = paper_loss(BASE, TRUE_R, runs["N"], runs["D"], runs["U_D"])
        runs["loss"] = loss * np.exp(noise * rng.standard_normal(loss.size))
    return single, multi


def test_base_then_R_fit_recovers_RD_and_RN():
    single, multi = synthetic_runs()
    assert np.all(single["N"] <= n_opt_for_tokens(BASE, single["U_D"]) * (1 + 1e-12))
    assert np.mean(multi["N"] > n_opt_for_tokens(BASE, multi["U_D"])) > 0.3  # R_N* is identified
    base = lawfit.fit("chinchilla", {k: single[k] for k in ("N", "D", "loss")}, loss="squared")
    assert base.success
    for k, v in BASE.items():
        assert base.params[k] == pytest.approx(v, rel=1e-6), k
    law = lawfit.laws.data_constrained(base=base)
    res = lawfit.fit(law, multi, loss="squared")
    assert res.success and res.n_starts == 25
    assert res.params["RD"] == pytest.approx(TRUE_R["RD"], rel=1e-5)
    assert res.params["RN"] == pytest.approx(TRUE_R["RN"], rel=1e-5)
    # The former default (U_N = U_D / 20, all seven parameters free) does not describe these runs exactly.
    old = lawfit.fit(lawfit.laws.data_constrained(), multi, loss="squared")
    assert old.fun > 1e3 * max(res.fun, 1e-30)


def test_base_then_R_fit_with_noise():
    single, multi = synthetic_runs(seed=1, noise=0.005)
    base = lawfit.fit("chinchilla", {k: single[k] for k in ("N", "D", "loss")})
    res = lawfit.fit(lawfit.laws.data_constrained(base=base), multi)
    assert res.success
    assert res.params["RD"] == pytest.approx(TRUE_R["RD"], rel=0.1)
    assert res.params["RN"] == pytest.approx(TRUE_R["RN"], rel=0.1)


def test_unique_tokens_above_tokens_seen_is_an_error_naming_the_row():
    runs = {"N": [1e9, 2e9, 3e9], "D": [1e10, 2e10, 3e10], "U_D": [1e10, 2.5e10, 1e10], "loss": [3.0, 2.9, 2.8]}
    for law in (lawfit.laws.data_constrained(base=BASE), lawfit.laws.get("data_constrained")):
        with pytest.raises(ValueError, match=r"row 1: U_D = 2\.5e\+10 exceeds D = 2e\+10"):
            lawfit.fit(law, runs)
        with pytest.raises(ValueError, match="row 1"):
            law.predict(runs, {"RD": 15.0, "RN": 5.0} if law.n_params == 2 else dict(BASE, **TRUE_R))
    ok = dict(runs, U_D=[1e10, 2e10, 1e10])  # U_D == D (a single epoch) is fine
    assert np.all(np.isfinite(lawfit.laws.data_constrained(base=BASE).predict(ok, TRUE_R)))
    with pytest.raises(ValueError, match=r"row 2: U_N = 4e\+09 exceeds N = 3e\+09"):
        lawfit.laws.data_constrained(base=BASE).predict(dict(ok, U_N=[1e9, 1e9, 4e9]), TRUE_R)


def test_U_N_column_overrides_the_base_optimum():
    law = lawfit.laws.data_constrained(base=BASE)
    _, multi = synthetic_runs()
    runs = {k: v[:20] for k, v in multi.items()}
    derived = law.predict(runs, TRUE_R)
    given = law.predict(dict(runs, U_N=np.minimum(runs["N"], n_opt_for_tokens(BASE, runs["U_D"]))), TRUE_R)
    np.testing.assert_allclose(given, derived, rtol=1e-14)
    assert not np.allclose(law.predict(dict(runs, U_N=runs["N"]), TRUE_R), derived)


def test_base_from_a_fit_result_and_bad_bases():
    single, _ = synthetic_runs()
    data = {k: single[k] for k in ("N", "D", "loss")}
    for name in ("chinchilla", "chinchilla_linear_e"):
        fit = lawfit.fit(name, data, loss="squared")
        law = lawfit.laws.data_constrained(base=fit)
        assert law.predict({"N": [1e9], "D": [1e11], "U_D": [1e10]}, TRUE_R)[0] == pytest.approx(
            paper_loss(fit.params, TRUE_R, 1e9, 1e11, 1e10), rel=1e-12)
    kaplan = lawfit.fit("kaplan", data, starts=np.array([[30.0, 30.0, 0.1, 0.1]]))
    with pytest.raises(ValueError, match="not of the Chinchilla form"):
        lawfit.laws.data_constrained(base=kaplan)
    stopped = lawfit.fit("chinchilla", data, starts=np.array([[0.0, 5.0, 5.0, 0.3, 0.3]]), max_iter=1)
    assert not stopped.success
    with pytest.raises(ValueError, match="did not converge"):
        lawfit.laws.data_constrained(base=stopped)
    for bad, words in [
        ({k: v for k, v in BASE.items() if k != "B"}, "missing"),
        (dict(BASE, RD=15.0), "unknown"),
        (dict(BASE, alpha=-0.3), "alpha"),
        (dict(BASE, A=float("inf")), "finite"),
        (dict(BASE, E=float("nan")), "finite"),
        (dict(BASE, beta=True), "real number"),
        (dict(BASE, B="410"), "real number"),
        ([1, 2, 3], "FitResult"),
    ]:
        with pytest.raises((ValueError, TypeError), match=words):
            lawfit.laws.data_constrained(base=bad)
    with pytest.raises(ValueError, match="not both"):
        lawfit.laws.data_constrained(20.0, base=BASE)
    with pytest.raises(ValueError, match="tokens_per_param"):
        lawfit.laws.data_constrained(-1.0)


def test_law_pickles_for_worker_processes():
    for law in (lawfit.laws.data_constrained(base=BASE), lawfit.laws.get("data_constrained")):
        again = pickle.loads(pickle.dumps(law))
        runs = {"N": [1e9, 5e9], "D": [1e11, 1e11], "U_D": [1e10, 1e10]}
        params = TRUE_R if law.n_params == 2 else dict(BASE, **TRUE_R)
        np.testing.assert_array_equal(again.predict(runs, params), law.predict(runs, params))
