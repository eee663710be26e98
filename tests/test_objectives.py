"""Objectives other libraries fit: residual scale, losses (incl. the exact non-smooth ones), reduction,
natural-scale parameters, screening, and the conventions each result reports."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares, minimize as sp_minimize

import lawfit
from lawfit import _core, engine, losses
from lawfit.starts import hoffmann_grid

import reference as ref  # tests/reference.py

RUNS = lawfit.datasets.chinchilla(drop_highest=5)
CHIN = lawfit.laws.get("chinchilla")


@pytest.fixture(scope="module")
def lad():
    return lawfit.fit("chinchilla", RUNS, starts="hoffmann", loss="absolute")


def _exact(law, x, loss, residual="log", **kw):
    return float(lawfit.evaluate(law, RUNS, x, loss=loss, residual=residual, derivatives=0, **kw).fun[0])


def test_absolute_loss_reaches_the_least_absolute_deviations_optimum(lad):
    """Epoch AI's maximum-likelihood point is the LAD optimum of the log residuals."""
    assert lad.success and lad.objective.name == "absolute"
    assert lad.fun == pytest.approx(1.12949465, rel=1e-8)
    p = lad.params
    assert p["A"] == pytest.approx(482.006, rel=3e-6) and p["B"] == pytest.approx(2085.44, rel=3e-6)
    assert p["E"] == pytest.approx(1.81686, rel=3e-6)
    assert p["alpha"] == pytest.approx(0.347813, rel=3e-6) and p["beta"] == pytest.approx(0.365854, rel=3e-6)
    # The reported objective is the exact one, and the optimum is a vertex: 5 residuals exactly zero.
    assert lad.fun == _exact(CHIN, lad.x, "absolute")
    r = np.log(CHIN.predict(RUNS, lad.params)) - np.log(RUNS["loss"].to_numpy())
    assert np.sum(np.abs(r) < 1e-12) == 5
    # Every start converges (as for Huber), and all of them reach the optimum.
    assert lad.n_success == lad.n_starts == 4500
    assert lad.n_reached(1e-9) >= 0.99 * lad.n_starts


@pytest.mark.parametrize("method", ["Nelder-Mead", "Powell"])
def test_derivative_free_methods_cannot_improve_the_absolute_optimum(lad, method):
    f = lambda x: _exact(CHIN, x, "absolute")  # noqa: E731
    opts = ({"xatol": 1e-12, "fatol": 1e-15, "maxfev": 4000} if method == "Nelder-Mead"
            else {"xtol": 1e-12, "ftol": 1e-15, "maxfev": 4000})
    res = sp_minimize(f, lad.x, method=method, options=opts)
    assert res.fun >= lad.fun * (1 - 1e-10)


def test_quantile_loss_is_exact_and_matches_its_definition():
    q = 1 / 11  # over-predictions weighted 10x, up to the factor 1/11
    fit = lawfit.fit("chinchilla", RUNS, starts="hoffmann", loss="quantile", q=q)
    assert fit.success and fit.objective.param == q
    assert fit.n_success >= 0.9 * fit.n_starts
    r = np.log(CHIN.predict(RUNS, fit.params)) - np.log(RUNS["loss"].to_numpy())
    assert fit.fun == pytest.approx(np.sum(np.where(r > 0, (1 - q) * r, -q * r)), rel=1e-12)
    asym = np.sum(np.where(r > 0, 10 * r, -r))  # the x10 absolute error is 11 times the pinball loss
    assert asym == pytest.approx(11 * fit.fun, rel=1e-12)
    # L_hat is the q-quantile: the observed loss lies below it (r > 0) for a share q of the runs
    assert np.mean(r > 0) == pytest.approx(q, abs=5 / len(r))
    res = sp_minimize(lambda x: _exact(CHIN, x, "quantile", q=q), fit.x, method="Nelder-Mead",
                      options={"xatol": 1e-12, "fatol": 1e-15, "maxfev": 3000})
    assert res.fun >= fit.fun * (1 - 1e-10)


def test_quantile_recovery_on_synthetic_data():
    rng = np.random.default_rng(3)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 120))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 120))
    truth = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3}
    L = CHIN.predict({"N": N, "D": D}, truth) * np.exp(0.002 * rng.standard_normal(120))
    fit = lawfit.fit("chinchilla", {"N": N, "D": D, "loss": L}, loss="quantile", q=0.5)
    assert fit.success
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=0.05), k


@pytest.mark.parametrize("loss,kw", [("absolute", {}), ("quantile", {"q": 0.3}),
                                     ("absolute", {"residual": "linear"})])
def test_kinked_losses_on_noise_free_data_report_the_perfect_fit_as_converged(loss, kw):
    # every residual is zero at the optimum: a degenerate vertex (60 zeros for 5 parameters) whose
    # multipliers are not unique; the fit is perfect and must be reported as such, not as a failed step
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 60))
    truth = {"E": 1.7, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.28}
    fit = lawfit.fit("chinchilla", {"N": N, "D": D, "loss": CHIN.predict({"N": N, "D": D}, truth)}, loss=loss, **kw)
    assert fit.success and fit.n_success >= 0.9 * fit.n_starts
    assert fit.fun < 1e-12
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-8), k


@pytest.mark.parametrize("kw", [{"loss": "huber", "residual": "linear"}, {"loss": "squared", "residual": "linear"},
                                {"loss": "asymmetric_huber", "asymmetry": 10.0}])
def test_failed_far_starts_are_rescued_through_hoffmanns_problem(kw):
    # direct fits from far grid starts stop at the iteration limit (Huber on linear residuals: 1861 of 4500);
    # refitted from Hoffmann's problem's end point, every start converges
    grid = hoffmann_grid(CHIN)
    allf = lawfit.minimize(CHIN, RUNS, grid, keep="all", **kw)
    assert np.all(allf.success)
    rescued = np.flatnonzero(allf.nit[0] > _core.SOLVER["max_iter"])  # ran out once, then the homotopy
    assert rescued.size > 0
    best = lawfit.minimize(CHIN, RUNS, grid, keep="best", **kw)
    assert best.fun[0] == allf.fun.min()
    one = lawfit.minimize(CHIN, RUNS, grid[rescued[:1]], keep="best", **kw)  # a row whose only start failed
    assert one.success[0] and one.fun[0] == pytest.approx(allf.fun[0, rescued[0]], rel=1e-12)


def test_linear_squared_beats_least_squares_and_natural_scale_agrees():
    fit = lawfit.fit("chinchilla", RUNS, starts="hoffmann", residual="linear", loss="squared")
    assert fit.success and fit.objective.residual == "linear"
    L = RUNS["loss"].to_numpy()
    N, D = RUNS["N"].to_numpy(), RUNS["D"].to_numpy()

    def resid(p):  # natural E, A, B, alpha, beta
        return p[0] + p[1] / N ** p[3] + p[2] / D ** p[4] - L

    rng = np.random.default_rng(0)
    for _ in range(12):
        p0 = [rng.uniform(1, 2.5), 10 ** rng.uniform(1, 4), 10 ** rng.uniform(1, 4), rng.uniform(0.1, 0.7),
              rng.uniform(0.1, 0.7)]
        with np.errstate(all="ignore"):
            try:
                res = least_squares(resid, p0, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=20000)
            except (ValueError, FloatingPointError):
                continue
        if np.all(np.isfinite(res.fun)):
            assert 0.5 * np.sum(res.fun ** 2) >= fit.fun * (1 - 1e-10)
    nat = lawfit.fit(lawfit.laws.get("chinchilla", scale="natural"), RUNS, residual="linear", loss="squared")
    assert nat.fun == pytest.approx(fit.fun, rel=1e-9)
    for k in fit.params:
        assert nat.params[k] == pytest.approx(fit.params[k], rel=1e-6)
    assert nat.law.params[1].transform == "identity" and nat.law.params[1].lower == 0.0


def test_reduction_mean_divides_by_the_weights():
    x = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=4).x
    w = np.random.default_rng(1).integers(0, 4, len(RUNS)).astype(float)
    s = lawfit.evaluate("chinchilla", RUNS, x, weights=w, derivatives=2)
    m = lawfit.evaluate("chinchilla", RUNS, x, weights=w, derivatives=2, reduction="mean")
    assert m.fun[0] == pytest.approx(s.fun[0] / w.sum(), rel=1e-15)
    np.testing.assert_allclose(m.grad, s.grad / w.sum(), rtol=1e-15)
    fs = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=4)
    fm = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=4, reduction="mean")
    assert fm.fun == pytest.approx(fs.fun / len(RUNS), rel=1e-12)
    assert fm.params == pytest.approx(fs.params, rel=1e-9)
    assert "mean" in fm.summary() and fm.to_dict()["loss_spec"]["reduction"] == "mean"


@pytest.mark.parametrize("loss,param", [("huber", 1e-3), ("squared", None), ("quantile", 0.3),
                                        ("absolute", None), ("cauchy", 0.02)])
@pytest.mark.parametrize("residual", ["log", "linear"])
def test_objective_derivatives_against_the_long_double_reference(loss, param, residual):
    theta = np.array([0.6, 6.0, 7.5, 0.34, 0.37])
    kw = {} if param is None else {{"huber": "delta", "quantile": "q", "cauchy": "c"}[loss]: param}
    ev = lawfit.evaluate(CHIN, RUNS, theta, loss=loss, residual=residual, derivatives=2, **kw)
    f, g, h, _ = ref.objective(CHIN, {c: RUNS[c].to_numpy() for c in ("N", "D", "loss")}, theta, loss=loss,
                               delta=1e-3 if param is None else param, residual=residual)
    assert ev.fun[0] == pytest.approx(float(f), rel=1e-10)
    np.testing.assert_allclose(ev.grad[0], np.asarray(g, dtype=float), rtol=1e-8, atol=1e-10 * abs(float(f)))
    np.testing.assert_allclose(ev.hess[0], np.asarray(h, dtype=float), rtol=1e-8,
                               atol=1e-8 * np.abs(np.asarray(h, dtype=float)).max())


def test_screen_reaches_the_exhaustive_optimum():
    full = lawfit.fit("chinchilla", RUNS, starts="hoffmann")
    scr = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=16)
    assert scr.n_scored == 4500 and scr.n_starts == 16
    assert scr.fun == pytest.approx(full.fun, rel=1e-12)
    assert 0 <= scr.best_start < 4500
    bf = lawfit.minimize("chinchilla", RUNS, "hoffmann", screen=4, weights=np.ones((2, len(RUNS))))
    assert bf.start_index.shape == (2, 4) and bf.n_scored == 4500
    assert np.all(bf.fun == pytest.approx(full.fun, rel=1e-12))


def test_num_threads_environment_variable(monkeypatch):
    x = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=2).x
    a = lawfit.evaluate("chinchilla", RUNS, np.tile(x, (64, 1)), derivatives=2)
    monkeypatch.setenv("LAWFIT_NUM_THREADS", "1")
    b = lawfit.evaluate("chinchilla", RUNS, np.tile(x, (64, 1)), derivatives=2)
    np.testing.assert_array_equal(a.hess, b.hess)
    monkeypatch.setenv("LAWFIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="LAWFIT_NUM_THREADS"):
        lawfit.evaluate("chinchilla", RUNS, x)


def test_parameters_by_name_and_status_names():
    fit = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=2)
    by_array = lawfit.evaluate("chinchilla", RUNS, fit.x).fun
    assert lawfit.evaluate("chinchilla", RUNS, fit.params).fun == pytest.approx(by_array, rel=1e-13)
    assert lawfit.evaluate("chinchilla", RUNS, fit.internal).fun == pytest.approx(by_array, rel=1e-13)
    with pytest.raises(ValueError, match="lacks"):
        lawfit.evaluate("chinchilla", RUNS, {"E": 1.8})
    assert str(lawfit.Status.CONVERGED) == "CONVERGED"
    assert lawfit.BatchFit is engine.BatchFit


def test_loss_specs_validate_and_name_the_option():
    with pytest.raises(ValueError, match="residual"):
        lawfit.Loss("huber", residual="raw")
    with pytest.raises(ValueError, match="q must lie strictly between 0 and 1"):
        lawfit.Loss("quantile", q=1.0)
    with pytest.raises(ValueError, match="takes no parameter 'c'"):
        lawfit.Loss("huber", c=1.0)
    with pytest.raises(ValueError, match="give .* to it, not separately"):
        losses.spec(lawfit.Loss("squared"), residual="linear")
    spec = lawfit.Loss("quantile", q=0.25, residual="linear", reduction="mean")
    assert spec.core().kind == _core.LOSS_KINDS["quantile"] and spec.core().residual == 1
    assert lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=2, loss=spec).objective == spec
    # the registry is the one list: every kernel kind is the C++ core's
    assert {d.kernel for d in losses.REGISTRY.values()} <= set(_core.LOSS_KINDS)


def test_bootstrap_with_linear_residual_and_absolute_loss():
    boot = lawfit.bootstrap("chinchilla", RUNS, n=8, seed=0, loss="absolute", residual="linear",
                            starts="hoffmann")
    assert boot.fit.objective.residual == "linear"
    assert np.sum(lawfit.status.is_success(boot.status)) >= 7


def test_cauchy_recovers_the_law_despite_outliers():
    """A redescending loss: a tenth of the runs 30 % off barely move the fit (Huber's linear tails do)."""
    rng = np.random.default_rng(5)
    n = 150
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    truth = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.3}
    L = CHIN.predict({"N": N, "D": D}, truth) * np.exp(0.003 * rng.standard_normal(n))
    bad = rng.choice(n, n // 10, replace=False)
    L[bad] *= 1.3
    data = {"N": N, "D": D, "loss": L}
    fit = lawfit.fit("chinchilla", data, loss="cauchy", c=0.01)
    assert fit.success and fit.objective.param == 0.01
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=0.05), k
    sq = lawfit.fit("chinchilla", data, loss="squared")
    err = lambda f: max(abs(f.params[k] / v - 1) for k, v in truth.items())  # noqa: E731
    assert err(fit) < err(sq)
    with pytest.raises(ValueError, match="c must be positive"):
        lawfit.fit("chinchilla", data, loss="cauchy", c=-1.0)


def test_natural_scale_bounds_must_keep_coefficients_non_negative():
    nat = lawfit.laws.get("chinchilla", scale="natural")
    assert nat.natural_params == {"E", "A", "B"}
    with pytest.raises(ValueError, match="bounds for 'A'.*natural scale.*>= 0"):
        lawfit.fit(nat, RUNS, bounds={"A": (-1.0, 1e4)})
    with pytest.raises(ValueError, match="scale must be one of"):
        lawfit.laws.get("chinchilla", scale="linear")
    fit = lawfit.fit(nat, RUNS, bounds={"A": (100.0, 1e4)}, loss="huber_likelihood",
                     starts={"E": [1.8], "A": [480.0], "B": [2000.0], "alpha": [0.35], "beta": [0.37],
                             "sigma": [1e-3]})
    assert fit.law.natural_params == {"E", "A", "B"} and fit.success
