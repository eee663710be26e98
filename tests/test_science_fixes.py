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


# ---------------------------------------------------------------------------------------------------
# The closed-form allocation is chosen from the compiled program, not the law's name
# ---------------------------------------------------------------------------------------------------
HOFFMANN = dict(E=np.exp(0.5267228), A=np.exp(6.0073404), B=np.exp(6.0179186), alpha=0.33917084, beta=0.2849083)


def test_law_named_chinchilla_with_an_extra_term_takes_the_numeric_route():
    law = lawfit.law("E + A/N**alpha + B/D**beta + G/N**gamma", variables=["N", "D"],
                     log_params=["E", "A", "B", "G"], name="chinchilla")
    p = dict(HOFFMANN, G=20.0, gamma=0.1)
    auto = al.compute_optimal(p, [1e24], law=law)
    numeric = al.compute_optimal(p, [1e24], law=law, method="numeric")
    np.testing.assert_allclose(auto.N_opt, numeric.N_opt, rtol=1e-10)
    assert auto.N_opt[0] == pytest.approx(4.654e12, rel=1e-3)  # the Chinchilla part alone: 5.19e10
    assert al.compute_optimal(HOFFMANN, [1e24], law="chinchilla").N_opt[0] == pytest.approx(5.192e10, rel=1e-3)
    # the true optimum: no other split of the budget gives a lower loss
    N = auto.N_opt[0] * np.array([0.9, 1.0, 1.1])
    L = law.predict({"N": N, "D": 1e24 / (6 * N)}, p)
    assert L[1] < L[0] and L[1] < L[2]
    with pytest.raises(ValueError, match="no closed-form"):
        al.compute_optimal(p, [1e24], law=law, method="closed")
    with pytest.raises(ValueError, match="Chinchilla-type"):
        al.inference_optimal(p, [2.0], [0.0], law=law)


@pytest.mark.parametrize("expr, log_params, roles", [
    ("E + A/N**alpha + B/D**beta", ["E", "A", "B"], dict(E="E", A="A", B="B", alpha="alpha", beta="beta")),
    ("B * D**(-b) + E0 + A / N**a", ["E0", "A", "B"], dict(E="E0", A="A", B="B", alpha="a", beta="b")),
    ("E + A/N**alpha + B/D**alpha", ["E", "A", "B"], dict(E="E", A="A", B="B", alpha="alpha", beta="alpha")),
    ("E + A/N**alpha + B/D**beta + G/N**gamma", ["E", "A", "B", "G"], None),  # an extra term
    ("E + 2*A/N**alpha + B/D**beta", ["E", "A", "B"], None),  # a constant factor
    ("E + A/N**alpha + B/D**beta", ["E", "B"], None),  # A linear: the program differs
    ("E + A/D**alpha + B/N**beta", ["E", "A", "B"], dict(E="E", A="B", B="A", alpha="beta", beta="alpha")),
])
def test_closed_form_roles_are_read_from_the_program(expr, log_params, roles):
    law = lawfit.law(expr, variables=["N", "D"], log_params=log_params, name="chinchilla")
    assert al._chinchilla_roles(law) == roles
    if roles is not None:  # closed form and numeric route agree under the mapping
        p = {law.param_names[law.index(n)]: HOFFMANN[r] for r, n in roles.items()}
        if roles["alpha"] == roles["beta"]:
            p[roles["alpha"]] = 0.31
        closed = al.compute_optimal(p, [1e21, 1e24], law=law, method="closed")
        numeric = al.compute_optimal(p, [1e21, 1e24], law=law, method="numeric")
        np.testing.assert_allclose(closed.N_opt, numeric.N_opt, rtol=1e-8)
        np.testing.assert_allclose(closed.loss, numeric.loss, rtol=1e-12)


def test_catalogue_closed_forms():
    for name in ("chinchilla", "chinchilla_linear_e", "chinchilla_tied"):
        assert al._chinchilla_roles(lawfit.laws.get(name)) is not None, name
        assert al._chinchilla_roles(lawfit.laws.get(name).with_sigma()) is not None, name
    for name in ("kaplan", "data_constrained"):
        assert al._chinchilla_roles(lawfit.laws.get(name)) is None, name


# ---------------------------------------------------------------------------------------------------
# Budgets: unreachable draws are C = inf; never the search limit as an answer
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def boot_fit():
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    start = np.array([[0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243]])
    return lawfit.fit("chinchilla", runs, starts=start, bootstrap=200, seed=0)


def test_budget_for_loss_draws_with_E_above_the_target_count_as_inf(boot_fit):
    E_draws = boot_fit.bootstrap.params["E"]
    E_draws = E_draws[np.isfinite(E_draws)]
    E_hat = boot_fit.params["E"]
    # a target that 5 % of the draws cannot reach (their E is above it) but the estimate can
    target = float(np.quantile(E_draws, 0.95))
    assert target > E_hat and 0 < np.sum(E_draws >= target) < E_draws.size
    b = al.budget_for_loss(boot_fit, [target, 2.0])
    assert np.isfinite(b.C[0]) and np.isfinite(b.C[1])
    assert np.isinf(b.C_high[0]) and np.isfinite(b.C_low[0]) and b.C_low[0] < b.C[0]
    assert b.C_low[1] < b.C[1] < b.C_high[1] < np.inf
    # each draw that can reach the target gets its own budget; the others inf
    per_draw = [al.budget_for_loss({k: v[i] for k, v in boot_fit.bootstrap.params.items()}, [target],
                                   law="chinchilla").C[0] if E_draws[i] < target else np.inf
                for i in range(E_draws.size)]
    assert np.quantile(per_draw, 0.025) == pytest.approx(b.C_low[0], rel=1e-9)
    # the same draws in inference_optimal: inf as well, no error
    io = al.inference_optimal(boot_fit, [target], [1e12])
    assert np.isinf(io.total_flops_high[0]) and np.isfinite(io.total_flops[0])
    # the estimate itself below its E: an error naming that
    with pytest.raises(ValueError, match=r"estimated irreducible loss E is 1\.8"):
        al.budget_for_loss(boot_fit, [2.0, 0.99 * E_hat])


def test_budget_for_loss_beyond_the_search_limit_is_inf():
    # within 1e-7 of E: the budget is far beyond 1e40 FLOP (it was reported as 1e40)
    b = al.budget_for_loss(HOFFMANN, [HOFFMANN["E"] + 1e-7, 2.0], law="chinchilla")
    assert np.isinf(b.C[0]) and 1e20 < b.C[1] < 1e40
    assert al.C_SEARCH[1] == 1e40
    # just inside the limit the budget is found exactly
    L40 = al.loss_at_budget(HOFFMANN, [1e39], law="chinchilla").loss[0]
    assert al.budget_for_loss(HOFFMANN, [L40], law="chinchilla").C[0] == pytest.approx(1e39, rel=1e-10)


def test_budget_for_loss_numeric_law_below_its_floor_is_inf():
    law = lawfit.law("E + A/N**alpha + B/D**beta + G/N**gamma", variables=["N", "D"],
                     log_params=["E", "A", "B", "G"])
    p = dict(HOFFMANN, G=20.0, gamma=0.1)
    b = al.budget_for_loss(p, [0.9 * HOFFMANN["E"], 3.0], law=law)
    assert np.isinf(b.C[0])
    assert al.loss_at_budget(p, b.C[1:], law=law).loss[0] == pytest.approx(3.0, rel=1e-9)


# ---------------------------------------------------------------------------------------------------
# Command line: lawfit optimal refuses non-finite and boolean parameters; --drop-highest drops exactly K
# ---------------------------------------------------------------------------------------------------
def _cli(*args, **kw):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "lawfit", *args], capture_output=True, text=True, timeout=300,
                          **kw)


@pytest.mark.parametrize("value, shown", [("1e400", "Infinity"), ("true", "true"), ('"2"', '"2"'),
                                          ("NaN", "NaN"), ("null", "null")])
def test_optimal_refuses_non_finite_and_boolean_parameters(tmp_path, value, shown):
    import json

    params = {k: repr(float(v)) for k, v in HOFFMANN.items()}
    params["A"] = value
    path = tmp_path / "fit.json"
    path.write_text('{"schema": "lawfit.fit/1", "law": "chinchilla", "params": {'
                    + ", ".join(f'"{k}": {v}' for k, v in params.items()) + "}}")
    out = _cli("optimal", str(path), "--budget", "1e23", "--json", "-")
    assert out.returncode == 2, out.stdout
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "parameter 'A' must be a finite number" in out.stderr and shown in out.stderr
    good = path.read_text().replace(f'"A": {value}', f'"A": {float(HOFFMANN["A"])!r}')
    path.write_text(good)
    ok = _cli("optimal", str(path), "--budget", "1e23", "--json", "-")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["allocation"][0]["N_opt"] == pytest.approx(
        al.compute_optimal(HOFFMANN, [1e23], law="chinchilla").N_opt[0], rel=1e-12)


@pytest.mark.parametrize("doc", ['{"schema": "lawfit.fit/1", "params": {}}',
                                 '{"schema": "lawfit.fit/1", "law": "chinchilla", "params": [1, 2]}'])
def test_optimal_with_a_malformed_document(tmp_path, doc):
    path = tmp_path / "fit.json"
    path.write_text(doc)
    out = _cli("optimal", str(path), "--budget", "1e23")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "law name and params" in out.stderr


@pytest.mark.parametrize("budget", ["1e400", "nan", "-1", "true"])
def test_optimal_refuses_bad_budgets(tmp_path, budget):
    path = tmp_path / "fit.json"
    path.write_text('{"schema": "lawfit.fit/1", "law": "chinchilla", "params": {'
                    + ", ".join(f'"{k}": {float(v)!r}' for k, v in HOFFMANN.items()) + "}}")
    out = _cli("optimal", str(path), "--budget", budget)
    assert out.returncode == 2 and "--budget" in out.stderr and "Traceback" not in out.stderr


def test_drop_highest_drops_exactly_K_rows_with_ties_in_row_order(tmp_path):
    import json

    raw = lawfit.datasets.chinchilla()[["N", "D", "loss"]].copy()
    top = raw.loss.max()
    tied = [3, 10, 200]  # three more runs at the highest loss: five rows share it
    raw.loc[tied, "loss"] = top
    first = int(raw.index[raw.loss == top][0])
    path = tmp_path / "runs.csv"
    raw.to_csv(path, index=False)
    out = _cli("fit", str(path), "--drop-highest", "2", "--starts", "hoffmann", "--json", "-")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n_runs"] == raw.shape[0] - 2  # not every row tied at the 2nd highest loss
    at_top = list(raw.index[raw.loss == top])
    assert len(at_top) == 4 and at_top[0] == first  # (the original maximum is one of them)
    kept = raw.drop(index=at_top[:2])  # the two earliest rows at the top loss
    want = lawfit.fit("chinchilla", kept, starts="hoffmann")
    assert doc["objective"] == pytest.approx(want.fun, rel=1e-12)


def test_drop_highest_refuses_a_non_numeric_loss_cell(tmp_path):
    raw = lawfit.datasets.chinchilla()[["N", "D", "loss"]].astype(object)
    raw.loc[7, "loss"] = "oops"
    path = tmp_path / "runs.csv"
    raw.to_csv(path, index=False)
    out = _cli("fit", str(path), "--drop-highest", "5")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "non-numeric value 'oops' at row 7" in out.stderr


@pytest.mark.parametrize("bad", [np.inf, np.nan, True, "406"])
def test_allocation_refuses_non_finite_and_boolean_parameter_values(bad):
    with pytest.raises(ValueError, match="parameter 'A' must be a finite real number"):
        al.compute_optimal(dict(HOFFMANN, A=bad), [1e23], law="chinchilla")
