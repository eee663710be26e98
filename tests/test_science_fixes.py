"""Regression tests: integer powers of negative bases, the closed-form allocation decided by the program's
structure, and allocation with bootstrap draws that cannot reach a target."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit
import reference as ref  # tests/reference.py
from lawfit import allocation as al

# ---------------------------------------------------------------------------------------------------
# x**k for an integer k: products (and 1/x), not exp(k log x), when the base may be negative
# ---------------------------------------------------------------------------------------------------
# Every term is finite and positive for any real c, but c, c - 1 and c**2 - 3 are negative for some c.
INT_POW = "E + A/N**alpha + c**4 / D**beta + exp((c - 1)**3) * (c**2 + 1)**(-3) + (c**2 - 3)**2 * c**-2"


def _int_pow_law():
    return lawfit.law(INT_POW, variables=["N", "D"], log_params=["E", "A"])


def _data(n=12, seed=3):
    rng = np.random.default_rng(seed)
    return {"N": 10 ** rng.uniform(6, 10, n), "D": 10 ** rng.uniform(8, 12, n), "loss": rng.uniform(2, 5, n)}


def _direct(p, data):
    N, D, c = data["N"], data["D"], p["c"]
    return (p["E"] + p["A"] / N ** p["alpha"] + c ** 4 / D ** p["beta"] + np.exp((c - 1) ** 3) * (c * c + 1) ** -3
            + (c * c - 3) ** 2 / c ** 2)


@pytest.mark.parametrize("c", [-2.5, -1.0, -0.3, 0.4, 1.7])
def test_integer_powers_of_negative_bases_are_finite(c):
    law = _int_pow_law()
    data = _data()
    p = dict(E=1.7, A=400.0, alpha=0.34, beta=0.28, c=c)
    got = law.predict(data, p)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, _direct(p, data), rtol=1e-13)


def test_integer_powers_derivatives_match_long_double_reference():
    law = _int_pow_law()
    data = _data()
    rng = np.random.default_rng(0)
    theta = np.column_stack([rng.uniform(-1, 1, 6), rng.uniform(4, 8, 6), rng.uniform(0.2, 0.5, 6),
                             np.array([-2.5, -1.2, -0.4, 0.3, 0.9, 2.2]), rng.uniform(0.2, 0.5, 6)])
    assert law.internal_names == ["log_E", "log_A", "alpha", "c", "beta"]
    out = lawfit.evaluate(law, data, theta, derivatives=2)
    for i, th in enumerate(theta):
        f, g, h, _ = ref.objective(law, data, th)
        assert np.isfinite(out.fun[i])
        np.testing.assert_allclose(out.fun[i], float(f), rtol=1e-10)
        np.testing.assert_allclose(out.grad[i], np.asarray(g, dtype=float), rtol=1e-8, atol=1e-10 * np.abs(g).max())
        np.testing.assert_allclose(out.hess[i], np.asarray(h, dtype=float), rtol=1e-8, atol=1e-10 * np.abs(h).max())


def test_negative_base_law_fits():
    """A fit whose parameter c goes negative: the kernels see a finite objective along the way."""
    law = lawfit.law("E + A/N**alpha + (c - 1)**2 * (c + 1)**-2 / D**beta", variables=["N", "D"],
                     log_params=["E", "A"])
    rng = np.random.default_rng(1)
    N, D = 10 ** rng.uniform(7, 10, 80), 10 ** rng.uniform(9, 12, 80)
    true = dict(E=1.8, A=400.0, alpha=0.34, beta=0.3, c=-3.0)
    loss = law.predict({"N": N, "D": D}, true)
    res = lawfit.fit(law, {"N": N, "D": D, "loss": loss},
                     starts={"E": [1.0], "A": [100.0], "alpha": [0.3], "beta": [0.25], "c": [-2.0, -5.0]})
    assert res.success
    for k, v in true.items():
        assert res.params[k] == pytest.approx(v, rel=1e-5), k


def test_large_integer_powers():
    law = lawfit.law("E + (c - 1)**70 + (c - 1)**71 * (c - 2) + ((c - 1)**2 + 1)**-101", variables=["N"],
                     log_params=["E"])  # N unused by the expression: one point is enough
    for c in (-0.02, 0.5, 1.0, 1.3):
        got = law.predict({"N": [1.0]}, {"E": 1.0, "c": c})[0]
        want = 1.0 + (c - 1) ** 70 + (c - 1) ** 71 * (c - 2) + ((c - 1) ** 2 + 1) ** -101
        assert got == pytest.approx(want, rel=1e-12)
