"""Published laws of the catalogue beyond Chinchilla and Kaplan: Kaplan's coupled law with an irreducible loss,
the broken neural scaling law (Caballero et al.) and the fine-grained mixture-of-experts law (Krajewski et al.).

For each: noise-free synthetic data (from NumPy formulas written here, independent of lawfit's compiler) are
recovered from the law's default grid to 1e-8 relative in the natural parameters; with log-normal noise the
estimates lie within 3 standard errors of the truth (Gauss-Newton covariance of the log-residual regression);
the objective, gradient and Hessian equal the long-double reference (tests/reference.py) to 1e-9 relative.
(CPU against CUDA-simulator agreement: tests/test_cuda.py covers every catalogue law.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import lawfit

import reference as ref  # tests/reference.py (pytest puts tests/ on sys.path: no __init__.py there)

SIGMA = 0.01


def _kaplan_irreducible(p, X):
    return p["E"] + ((p["Nc"] / X["N"]) ** (p["alpha_N"] / p["alpha_D"]) + p["Dc"] / X["D"]) ** p["alpha_D"]


def _broken(variable):
    def model(p, X):
        x = X[variable]
        return p["E"] + p["A"] * x ** -p["c0"] * (1 + (x / p["d1"]) ** (1 / p["f1"])) ** (-p["c1"] * p["f1"])
    return model


def _moe(p, X):
    return (p["E"] + (p["A_G"] / X["G"] ** p["gamma"] + p["A"]) / X["N"] ** p["alpha"]
            + p["B"] / X["D"] ** p["beta"])


def _nd_runs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    return {"N": 10 ** rng.uniform(7, 10, n), "D": 10 ** rng.uniform(8, 11, n)}


def _x_runs(variable, lo, hi, n=80, seed=0):
    rng = np.random.default_rng(seed)
    return {variable: np.sort(10 ** rng.uniform(lo, hi, n))}


def _moe_runs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {"N": 10 ** rng.uniform(7, 10, n), "D": 10 ** rng.uniform(9, 12, n),
            "G": 2.0 ** rng.integers(0, 6, n)}


@dataclass(frozen=True)
class Case:
    name: str
    model: Callable
    truth: dict
    runs: Callable


CASES = [
    Case("kaplan_irreducible", _kaplan_irreducible,
         dict(E=1.7, Nc=2e9, Dc=1e10, alpha_N=0.34, alpha_D=0.28), _nd_runs),
    Case("broken_power_law_C", _broken("C"),
         dict(E=1.8, A=50.0, c0=0.08, c1=0.15, d1=1e20, f1=0.5), lambda: _x_runs("C", 17, 23)),
    Case("broken_power_law_N", _broken("N"),
         dict(E=2.0, A=30.0, c0=0.1, c1=0.25, d1=3e8, f1=0.3), lambda: _x_runs("N", 6, 11)),
    # small exponents, of the magnitude Krajewski et al. report
    Case("fine_grained_moe", _moe,
         dict(E=0.47, A=18.1, B=30.8, alpha=0.115, beta=0.147, A_G=2.1, gamma=0.58), _moe_runs),
]
IDS = [c.name for c in CASES]


def _data(case, noise_seed=None):
    X = case.runs()
    loss = case.model(case.truth, X)
    if noise_seed is not None:
        loss = loss * np.exp(SIGMA * np.random.default_rng(noise_seed).standard_normal(loss.size))
    return dict(X, loss=loss)


def _log_model(case, law, theta, X):
    return np.log(case.model(law.to_natural(theta), X))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_catalogue_entry(case):
    law = lawfit.laws.get(case.name)
    assert law.name == case.name
    assert sorted(law.param_names) == sorted(case.truth)
    factory = getattr(lawfit.laws, case.name.removesuffix("_C").removesuffix("_N"))
    assert "arXiv:" in law.description and "arXiv:" in (factory.__doc__ or "")
    assert 1 <= len(law.default_grid()) <= 500
    X = case.runs()
    # lawfit's prediction equals the independent NumPy formula
    np.testing.assert_allclose(law.predict(X, case.truth), case.model(case.truth, X), rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_noise_free_recovery_from_the_default_grid(case):
    law = lawfit.laws.get(case.name)
    data = _data(case)
    res = lawfit.fit(law, data, loss="squared")
    assert res.success, res.status
    for name, value in case.truth.items():
        assert res.params[name] == pytest.approx(value, rel=1e-8), name
    assert res.fun <= 1e-20


def _jacobian(case, law, theta, X, h=1e-6):
    J = np.empty((next(iter(X.values())).size, theta.size))
    for k in range(theta.size):
        step = h * max(1.0, abs(theta[k]))
        up, dn = theta.copy(), theta.copy()
        up[k] += step
        dn[k] -= step
        J[:, k] = (_log_model(case, law, up, X) - _log_model(case, law, dn, X)) / (2 * step)
    return J


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_noisy_recovery_within_three_standard_errors(case, seed):
    law = lawfit.laws.get(case.name)
    data = _data(case, noise_seed=100 + seed)
    X = {v: data[v] for v in law.variables}
    truth = law.to_internal(case.truth)
    res = lawfit.fit(law, data, loss="squared")
    assert res.success, res.status
    theta = res.x
    # at least as good as the truth, by lawfit's objective and by ours
    r_fit = _log_model(case, law, theta, X) - np.log(data["loss"])
    r_true = _log_model(case, law, truth, X) - np.log(data["loss"])
    assert res.fun == pytest.approx(0.5 * r_fit @ r_fit, rel=1e-9)
    assert r_fit @ r_fit <= r_true @ r_true
    J = _jacobian(case, law, theta, X)
    s2 = float(r_fit @ r_fit) / (r_fit.size - theta.size)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(J.T @ J)))
    z = (theta - truth) / se
    print(f"\n{case.name} seed {seed}: z = {dict(zip(law.internal_names, np.round(z, 2)))}")
    assert np.all(np.abs(z) <= 3.0), dict(zip(law.internal_names, np.round(z, 2)))
    assert np.sqrt(s2) == pytest.approx(SIGMA, rel=0.25)


def _thetas(case, law, n=4, spread=0.3, seed=3):
    """Internal parameters around the truth (log-scale coefficients moved by up to +-spread*3, exponents by
    up to +-spread relative)."""
    rng = np.random.default_rng(seed)
    truth = law.to_internal(case.truth)
    out = [truth]
    for _ in range(n - 1):
        step = np.array([rng.uniform(-3, 3) * spread if p.transform == "log" else
                         rng.uniform(-1, 1) * spread * abs(t) for p, t in zip(law.params, truth)])
        out.append(truth + step)
    return np.array(out)


@pytest.mark.parametrize("loss, delta", [("squared", 1e-3), ("huber", 1e-3), ("huber", 0.05)])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_objective_gradient_hessian_match_the_long_double_reference(case, loss, delta):
    law = lawfit.laws.get(case.name)
    data = _data(case, noise_seed=7)
    w = np.random.default_rng(5).poisson(1.0, data["loss"].size).astype(float)
    thetas = _thetas(case, law)
    got = lawfit.evaluate(law, data, thetas, weights=w, loss=loss, delta=delta, derivatives=2)
    for i, th in enumerate(thetas):
        f, g, h, _ = ref.objective(law, data, th, weights=w, loss=loss, delta=delta)
        f, g, h = (np.asarray(x, dtype=float) for x in (f, g, h))
        assert got.fun[i] == pytest.approx(f, rel=1e-9)
        assert np.max(np.abs(got.grad[i] - g)) <= 1e-9 * np.max(np.abs(g)), (i, got.grad[i], g)
        assert np.max(np.abs(got.hess[i] - h)) <= 1e-9 * np.max(np.abs(h)), i


def test_broken_power_law_slopes_before_and_after_the_break():
    """Far below the break the reducible loss falls with slope c0 (log-log), far above with c0 + c1."""
    truth = dict(E=1.0, A=50.0, c0=0.08, c1=0.15, d1=1e20, f1=0.5)
    law = lawfit.laws.get("broken_power_law")
    assert law.name == "broken_power_law_C"
    C = np.array([1e12, 1e13, 1e27, 1e28])
    red = law.predict({"C": C}, truth) - truth["E"]
    slopes = -np.diff(np.log(red))[[0, 2]] / np.log(10.0)
    np.testing.assert_allclose(slopes, [0.08, 0.23], rtol=1e-6)


def test_fine_grained_moe_granularity_helps_less_for_larger_models():
    law = lawfit.laws.get("fine_grained_moe")
    truth = CASES[3].truth
    gain = []
    for N in (1e8, 1e10):
        L1, L8 = law.predict({"N": [N, N], "D": [1e11, 1e11], "G": [1.0, 8.0]}, truth)
        gain.append(L1 - L8)
    assert gain[0] > gain[1] > 0
    with pytest.raises(ValueError, match="G"):
        law.predict({"N": [1e8], "D": [1e11]}, truth)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reference_agreement_with_terms_far_outside_float64(case):
    """Coefficients up to e^+-800 put terms beyond the float64 range (lawfit's max-shifted log-sum-exp path); the
    long-double reference holds them directly. Norm-wise agreement to 1e-9 of the largest entry."""
    law = lawfit.laws.get(case.name)
    data = _data(case, noise_seed=7)
    truth = law.to_internal(case.truth)
    rng = np.random.default_rng(1)
    thetas = []
    for _ in range(6):
        th = truth.copy()
        for i, p in enumerate(law.params):
            if p.name == "f1":
                th[i] += rng.uniform(-1, 1)
            elif p.transform == "log":
                th[i] += rng.uniform(-800, 800)
            else:
                th[i] *= rng.uniform(0.5, 2.0)
        thetas.append(th)
    thetas = np.array(thetas)
    assert np.max(np.abs(thetas - truth)) > 709  # some coefficient beyond exp's float64 range
    got = lawfit.evaluate(law, data, thetas, loss="squared", derivatives=2)
    for i, th in enumerate(thetas):
        f, g, h, _ = ref.objective(law, data, th, loss="squared")
        f, g, h = (np.asarray(x, dtype=float) for x in (f, g, h))
        assert np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(h)), i  # a meaningful check
        assert got.fun[i] == pytest.approx(f, rel=1e-12)
        assert np.max(np.abs(got.grad[i] - g)) <= 1e-9 * np.max(np.abs(g)), i
        assert np.max(np.abs(got.hess[i] - h)) <= 1e-9 * np.max(np.abs(h)), i
