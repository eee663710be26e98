"""The affine log-sum-exp kernel against the program interpreter.

Laws whose log-prediction is a log-sum-exp of terms affine in the log-features (Chinchilla, the saturating power
laws, OLMo's linear E, many user laws) run on a specialised CPU kernel (cpp/src/evaluator_affine_impl.hpp); every
other law runs on the interpreter. Both are checked against the long-double reference in test_objective.py;
here they are checked against each other, tightly (1e-10, norm-wise): the two differ in the order of the sums and
in how the gradient of log L_hat is grouped. The affine kernel sums it as coefficients times moments, so a law
that folds a constant into a coefficient ((N / 1e9)**-alpha: the constant part carries alpha log 1e9) loses
a few more digits to cancellation in its Hessian (~2e-11 here) than the interpreter does.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import lawfit
from lawfit import _core

AFFINE = ["chinchilla", "chinchilla_linear_e", "chinchilla_tied", "saturating_C", "saturating_N", "saturating_D",
          "kaplan_learning_curve"]
INTERPRETED = {"kaplan": "not a log-sum-exp", "data_constrained": "not affine in the features"}

# User laws of the affine form with coefficients that are not plain parameters: products and powers of
# parameters (non-zero coefficient Hessians), a tied exponent over two features, constants, exp of a parameter.
USER = {
    "joint": dict(expr="E + A/N**alpha + B/D**beta + G/(N**gamma * D**gamma)", log_params=["E", "A", "B", "G"]),
    "squared_exponent": dict(expr="E + A/N**(alpha**2) + B/D**(alpha*beta)", log_params=["E", "A", "B"]),
    "scaled_feature": dict(expr="E + A*(N/1e9)**(-alpha) + exp(k)/D**(beta/2 + alpha)", log_params=["E", "A"]),
    "constant_offset": dict(expr="E + 2.5 + A/N**alpha", log_params=["E", "A"]),
}
# Parameter centres (internal scale) around which the random points are drawn.
CENTRE = {"e": 0.5, "a": 6.0, "b": 6.0, "alpha": 0.35, "beta": 0.3, "E": 1.7, "log_E": 0.5, "log_A": 6.0,
          "log_B": 6.0, "log_G": 3.0, "gamma": 0.2, "k": 2.0, "log_sigma": -3.0}


@contextlib.contextmanager
def interpreter():
    _core.set_kernel("interpreter")
    try:
        yield
    finally:
        _core.set_kernel("auto")


def user_law(name):
    spec = USER[name]
    return lawfit.law(spec["expr"], variables=["N", "D"], log_params=spec["log_params"])


def runs(n=240, seed=3):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 11, n)
    D = 10 ** rng.uniform(9, 12, n)
    return {"N": N, "D": D, "C": 6 * N * D, "S": 10 ** rng.uniform(3, 5, n),
            "loss": 1.7 + 400 / N ** 0.34 + 400 / D ** 0.28}


def points(law, rng, k=24, spread=0.3):
    c = np.array([CENTRE.get(name, 0.5) for name in law.internal_names])
    return c + spread * rng.standard_normal((k, c.size)) * np.maximum(1.0, np.abs(c)) * 0.2


def assert_kernels_agree(law, data, theta, weights=None, **kw):
    """Objective, gradient and Hessian within 1e-10 norm-wise relative, or within an absolute floor of rounding
    size where the exact value is (near) zero: a dominating term makes the Hessian a difference of sums of size
    sum_i w_i |rho'_i| (log x_i)^2, which each kernel cancels in its own order."""
    assert law.core_program().kernel == "affine_lse"
    fast = lawfit.evaluate(law, data, theta, weights=weights, derivatives=2, **kw)
    with interpreter():
        assert law.core_program().kernel == "interpreter"
        slow = lawfit.evaluate(law, data, theta, weights=weights, derivatives=2, **kw)
    np.testing.assert_array_equal(np.isfinite(fast.fun), np.isfinite(slow.fun))
    ok = np.isfinite(slow.fun)
    assert ok.any()
    logx = max(np.max(np.abs(np.log(data[v]))) for v in law.variables)
    wsum = np.sum(weights, axis=-1) if weights is not None else len(data["loss"])
    floor = 1e-13 * (1 + logx) ** 2 * (wsum + np.abs(slow.fun))
    floor = np.broadcast_to(floor, slow.fun.shape)[ok][:, None]
    for a, b, what in ((fast.fun, slow.fun, "objective"), (fast.grad, slow.grad, "gradient"),
                       (fast.hess, slow.hess, "Hessian")):
        a, b = a[ok].reshape(ok.sum(), -1), b[ok].reshape(ok.sum(), -1)
        tol = np.maximum(1e-10 * np.max(np.abs(b), axis=1, keepdims=True), floor)
        worst = np.max(np.abs(a - b) / tol)
        assert worst <= 1.0, f"{law.name}: {what} differs by {worst:.2f} x the tolerance"


@pytest.mark.parametrize("name", AFFINE)
def test_catalogue_laws_of_the_affine_form_use_the_affine_kernel(name):
    core = lawfit.laws.get(name).core_program()
    assert core.kernel == "affine_lse" and core.affine_why_not == ""


@pytest.mark.parametrize("name", sorted(INTERPRETED))
def test_other_laws_run_on_the_interpreter_and_say_why(name):
    core = lawfit.laws.get(name).core_program()
    assert core.kernel == "interpreter"
    assert INTERPRETED[name] in core.affine_why_not
    assert "CPU kernel: interpreter" in lawfit.laws.get(name).describe()


@pytest.mark.parametrize("name", sorted(USER))
def test_user_laws_of_the_affine_form_use_the_affine_kernel(name):
    law = user_law(name)
    assert law.core_program().kernel == "affine_lse"
    assert "CPU kernel: affine_lse" in law.describe()


def test_set_kernel_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown kernel"):
        _core.set_kernel("fast")


@pytest.mark.parametrize("loss", ["huber", "squared", "asymmetric_huber", "huber_likelihood"])
@pytest.mark.parametrize("name", AFFINE + sorted(USER))
def test_affine_kernel_matches_interpreter(name, loss):
    base = user_law(name) if name in USER else lawfit.laws.get(name)
    law = base.with_sigma() if loss == "huber_likelihood" else base
    data = {v: x for v, x in runs().items() if v in law.variables or v == "loss"}
    rng = np.random.default_rng(sum(map(ord, name + loss)))
    theta = points(law, rng)
    weights = rng.poisson(1.0, (theta.shape[0], 240)).astype(float)
    assert_kernels_agree(law, data, theta, weights=weights, loss=loss)
    # Phase 1 of the solver adds curvature to the Huber Hessian; evaluate() does not, so check it separately
    # through minimize below (test_grid_fit_is_the_same_on_both_kernels).


def test_far_out_terms_take_the_shifted_path_in_both_kernels():
    """Terms that overflow or underflow float64 (A = e^800, A / N^40): the max-shifted log-sum-exp."""
    law = lawfit.laws.get("chinchilla")
    data = {v: x for v, x in runs().items() if v in ("N", "D", "loss")}
    theta = np.array([[0.5, 800.0, 6.0, 1.0, 0.3], [0.5, 6.0, 7.0, 40.0, 0.3], [-700.0, -700.0, -700.0, 0.0, 0.0],
                      [0.5, 1200.0, 7.0, 40.0, 0.3]])
    assert_kernels_agree(law, data, theta)
    linear = lawfit.laws.get("chinchilla_linear_e")
    assert_kernels_agree(linear, data, np.array([[0.0, 800.0, 7.0, 1.0, 0.3], [1.5, 6.0, 7.0, 40.0, 40.0]]))


def test_non_finite_parameters_give_non_finite_objectives_in_both_kernels():
    law = lawfit.laws.get("chinchilla")
    data = {v: x for v, x in runs().items() if v in ("N", "D", "loss")}
    theta = np.array([[0.5, 6.0, 6.0, 0.35, 0.3], [np.nan, 6.0, 6.0, 0.35, 0.3], [0.5, 6.0, 6.0, np.nan, 0.3]])
    fast = lawfit.evaluate(law, data, theta, derivatives=2)
    with interpreter():
        slow = lawfit.evaluate(law, data, theta, derivatives=2)
    np.testing.assert_array_equal(np.isfinite(fast.fun), np.isfinite(slow.fun))
    assert np.isfinite(fast.fun[0]) and not np.isfinite(fast.fun[1:]).any()


def test_linear_e_at_zero():
    """OLMo's E >= 0 enters the log-sum-exp linearly: at E = 0 the objective and derivatives stay finite."""
    law = lawfit.laws.get("chinchilla_linear_e")
    data = {v: x for v, x in runs().items() if v in ("N", "D", "loss")}
    theta = np.array([[0.0, 6.0, 6.0, 0.35, 0.3], [1e-300, 6.0, 6.0, 0.35, 0.3]])
    assert_kernels_agree(law, data, theta)
    out = lawfit.evaluate(law, data, theta, derivatives=2)
    assert np.isfinite(out.fun).all() and np.isfinite(out.grad).all() and np.isfinite(out.hess).all()


def test_grid_fit_is_the_same_on_both_kernels():
    """Hoffmann's grid on the bundled runs (a subsample of starts): the same optimum and statuses."""
    df = lawfit.datasets.chinchilla(drop_highest=5)
    law = lawfit.laws.get("chinchilla")
    starts = np.asarray(lawfit.starts.resolve(law, "hoffmann"))[::15]
    fast = lawfit.minimize(law, df, starts, keep="all")
    with interpreter():
        slow = lawfit.minimize(law, df, starts, keep="all")
    np.testing.assert_array_equal(fast.status, slow.status)
    np.testing.assert_allclose(fast.fun, slow.fun, rtol=1e-9)
    assert abs(fast.fun.min() - slow.fun.min()) <= 1e-13 * slow.fun.min()
    assert fast.fun.min() <= 1.0182741e-3
