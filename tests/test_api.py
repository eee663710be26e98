"""The public API contract: ``lawfit.fit``, ``lawfit.minimize``, ``lawfit.evaluate``,
results, laws and the bundled data.

Everything runs on the bundled Chinchilla runs with one or a few starts, so the file takes a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import lawfit
import lawfit.starts
from lawfit import Status

# Hoffmann et al.'s published point on the internal scale [e, a, b, alpha, beta], as Epoch started from.
HOFFMANN = {"e": 0.5267228, "a": 6.0073404, "b": 6.0179186, "alpha": 0.33917084, "beta": 0.2849083}
# The reference optimum on the 240 runs (Hoffmann's grid, Huber delta 1e-3).
OPT_FUN = 1.01827402e-3
OPT = {"E": 1.81722, "alpha": 0.347311, "beta": 0.367172}
# A small grid of starts (internal names, internal scale): 3 * 3 * 2 * 2 = 36 starts.
SMALL_GRID = {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 0.5, 1.0], "a": [5.0, 10.0], "b": [5.0, 10.0]}


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return lawfit.datasets.chinchilla(drop_highest=5)


@pytest.fixture(scope="module")
def arrays(runs) -> dict:
    return {c: runs[c].to_numpy(copy=True) for c in ("N", "D", "loss")}


@pytest.fixture(scope="module")
def best(runs) -> lawfit.FitResult:
    return lawfit.fit("chinchilla", runs, starts=HOFFMANN)


def bits(a) -> np.ndarray:
    """Bit patterns of a float array, so that == is bitwise (NaN == NaN with the same payload)."""
    a = np.ascontiguousarray(a)
    return a.view(np.int64) if a.dtype == np.float64 else a


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.all(bits(a) == bits(b)))


def assert_same_batch(b1: lawfit.engine.BatchFit, b2: lawfit.engine.BatchFit) -> None:
    for field in ("x", "theta", "fun", "status", "nit", "nfev", "at_bound", "best_start", "n_success"):
        v1, v2 = getattr(b1, field), getattr(b2, field)
        if v1 is None or v2 is None:
            assert v1 is None and v2 is None, field
            continue
        assert same_bits(v1, v2), field


# -- bundled data ------------------------------------------------------------------------------------
def test_bundled_chinchilla_data():
    df = lawfit.datasets.chinchilla()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 245
    assert list(df.columns) == ["N", "D", "C", "loss"]
    for c in df.columns:
        assert df[c].dtype == np.float64
        assert np.all(np.isfinite(df[c])) and np.all(df[c] > 0)
    np.testing.assert_allclose(df["C"], 6.0 * df["N"] * df["D"], rtol=1e-12, atol=0)
    d240 = lawfit.datasets.chinchilla(drop_highest=5)
    assert len(d240) == 240
    # exactly the five highest losses are gone
    assert d240["loss"].max() < df["loss"].nlargest(5).min()
    assert lawfit.datasets.chinchilla(drop_highest=0).equals(df)


# -- lawfit.fit: the result contract ---------------------------------------------------------------------
def test_fit_result_contract(best):
    assert isinstance(best, lawfit.FitResult)
    assert list(best.params) == ["E", "A", "B", "alpha", "beta"]
    assert all(type(v) is float for v in best.params.values())
    assert list(best.internal) == ["e", "a", "b", "alpha", "beta"]
    assert type(best.fun) is float
    assert type(best.success) is bool and best.success
    assert best.status in (Status.CONVERGED, Status.CONVERGED_AT_BOUND)
    assert best.n_runs == 240 and best.n_starts == 1
    # natural scale: E = exp(e), A = exp(a), B = exp(b); exponents as fitted
    assert best.params["E"] == pytest.approx(math.exp(best.internal["e"]), rel=1e-15)
    assert best.params["A"] == pytest.approx(math.exp(best.internal["a"]), rel=1e-15)
    assert best.params["alpha"] == best.internal["alpha"]
    # the reference optimum from Hoffmann's published start
    assert best.fun <= 1.0182741e-3
    assert best.fun == pytest.approx(OPT_FUN, rel=1e-8)
    for k, v in OPT.items():
        assert best.params[k] == pytest.approx(v, rel=1e-3)
    np.testing.assert_array_equal(best.x, [best.internal[n] for n in ("e", "a", "b", "alpha", "beta")])


def test_fit_objective_matches_evaluate(runs, best):
    ev = lawfit.evaluate("chinchilla", runs, best.x, derivatives=1)
    assert ev.fun.shape == (1,) and ev.grad.shape == (1, 5)
    assert ev.fun[0] == pytest.approx(best.fun, rel=1e-12)


def test_law_object_or_name(runs, best):
    law = lawfit.laws.get("chinchilla")
    assert isinstance(law, lawfit.Law)
    r = lawfit.fit(law, runs, starts=HOFFMANN)
    assert r.fun == best.fun and r.params == best.params
    assert lawfit.laws.get(law) is law


def test_dataframe_or_dict_of_arrays(runs, arrays, best):
    r = lawfit.fit("chinchilla", arrays, starts=HOFFMANN)
    assert r.fun == best.fun and r.params == best.params
    # extra columns are ignored; plain lists work too
    r2 = lawfit.fit("chinchilla", {**{k: list(v) for k, v in arrays.items()}, "C": runs["C"]}, starts=HOFFMANN)
    assert r2.fun == best.fun and r2.params == best.params


def test_columns_mapping(arrays, best):
    renamed = {"params": arrays["N"], "tokens": arrays["D"], "val_loss": arrays["loss"]}
    r = lawfit.fit("chinchilla", renamed, starts=HOFFMANN,
                   columns={"N": "params", "D": "tokens", "loss": "val_loss"})
    assert r.fun == best.fun and r.params == best.params
    df = pd.DataFrame(renamed)
    r = lawfit.fit("chinchilla", df, starts=HOFFMANN, columns={"N": "params", "D": "tokens", "loss": "val_loss"})
    assert r.fun == best.fun


# -- starts ----------------------------------------------------------------------------------------------
def test_starts_natural_dict_internal_dict_and_array(runs):
    natural = {"E": 1.7, "A": 300.0, "B": 900.0, "alpha": 0.3, "beta": 0.3}
    internal = {"e": np.log(1.7), "a": np.log(300.0), "b": np.log(900.0), "alpha": 0.3, "beta": 0.3}
    array = np.array([[internal[k] for k in ("e", "a", "b", "alpha", "beta")]])
    r_nat = lawfit.fit("chinchilla", runs, starts=natural)
    r_int = lawfit.fit("chinchilla", runs, starts=internal)
    r_arr = lawfit.fit("chinchilla", runs, starts=array)
    r_1d = lawfit.fit("chinchilla", runs, starts=array[0])
    for r in (r_int, r_arr, r_1d):
        assert r.n_starts == 1
        assert r.fun == r_nat.fun and r.params == r_nat.params and r.nit == r_nat.nit
    assert r_nat.success and r_nat.fun == pytest.approx(OPT_FUN, rel=1e-8)


def test_starts_grid_dict(runs):
    # a dict of sequences is a grid; parameters not named take their default first grid value
    g = lawfit.starts.grid(lawfit.laws.get("chinchilla"), {"alpha": [0.2, 0.4], "E": [1.0, 2.0]})
    assert g.shape == (4, 5)
    np.testing.assert_array_equal(np.unique(g[:, 3]), [0.2, 0.4])
    np.testing.assert_allclose(np.unique(g[:, 0]), np.log([1.0, 2.0]), rtol=0, atol=0)
    r = lawfit.fit("chinchilla", runs, starts=SMALL_GRID)
    assert r.n_starts == 36 and r.start_fun.shape == (36,) and r.start_status.shape == (36,)
    assert r.best_start == int(np.nanargmin(np.where(r.start_status <= 1, r.start_fun, np.inf)))


def test_hoffmann_grid_shape():
    g = lawfit.starts.hoffmann_grid(lawfit.laws.get("chinchilla"))
    assert g.shape == (4500, 5)
    assert len({tuple(row) for row in g}) == 4500
    np.testing.assert_array_equal(np.unique(g[:, 0]), [-1.0, -0.5, 0.0, 0.5, 1.0])  # e
    np.testing.assert_array_equal(np.unique(g[:, 1]), [0.0, 5.0, 10.0, 15.0, 20.0, 25.0])  # a
    np.testing.assert_array_equal(np.unique(g[:, 3]), [0.0, 0.5, 1.0, 1.5, 2.0])  # alpha


# -- constraints -----------------------------------------------------------------------------------------
def test_fixed_parameters_stay_fixed(runs):
    r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, fixed={"alpha": 0.3})
    assert r.success and r.params["alpha"] == 0.3
    r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, fixed={"E": 1.7, "beta": 0.35})
    assert r.success and r.params["beta"] == 0.35
    assert r.params["E"] == pytest.approx(1.7, rel=1e-15) and r.internal["e"] == np.log(1.7)
    # internal name: internal scale
    r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, fixed={"e": 0.5})
    assert r.internal["e"] == 0.5
    # the fixed start value of a fixed parameter is ignored: same result from a different one
    r2 = lawfit.fit("chinchilla", runs, starts={**HOFFMANN, "e": 0.0}, fixed={"e": 0.5})
    assert r2.fun == r.fun and r2.params == r.params
    assert r.fun > OPT_FUN  # constrained away from the optimum


def test_tied_parameters_come_out_equal(runs):
    for tie in ([("alpha", "beta")], {"beta": "alpha"}):
        r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, tie=tie)
        assert r.success
        assert r.params["alpha"] == r.params["beta"]
        assert r.internal["alpha"] == r.internal["beta"]
        assert r.fun >= OPT_FUN * (1 - 1e-12)
    # tie plus bounds: the group respects the tighter bounds
    r = lawfit.fit("chinchilla", runs, starts={**HOFFMANN, "alpha": 0.3, "beta": 0.3}, tie=[("alpha", "beta")],
                   bounds={"beta": (0.1, 0.32)})
    assert r.params["alpha"] == r.params["beta"] <= 0.32


def test_bounds_respected_and_reported(runs):
    r = lawfit.fit("chinchilla", runs, starts={**HOFFMANN, "alpha": 0.25}, bounds={"alpha": (0.1, 0.3)})
    assert r.success and r.status is Status.CONVERGED_AT_BOUND
    assert r.at_bound == ("alpha",)
    assert r.params["alpha"] == 0.3
    assert "(at bound)" in r.summary()
    assert bool(r.to_frame().loc["alpha", "at_bound"]) and not r.to_frame().loc["beta", "at_bound"]
    assert r.to_dict()["at_bound"] == ["alpha"] and r.to_dict()["status"] == "CONVERGED_AT_BOUND"
    # natural-scale bounds on a log parameter, and bounds that the optimum lies inside
    r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, bounds={"E": (1.0, 3.0), "beta": (0.0, None)})
    assert r.status is Status.CONVERGED and r.at_bound == ()
    assert 1.0 <= r.params["E"] <= 3.0 and r.fun == pytest.approx(OPT_FUN, rel=1e-8)
    # every start of a grid stays inside
    b = lawfit.minimize("chinchilla", runs, starts={"alpha": [0.1, 0.2], "beta": [0.5, 0.6]}, keep="all",
                        bounds={"alpha": (0.05, 0.25), "beta": (0.45, 0.65)})
    assert np.all((b.theta[..., 3] >= 0.05) & (b.theta[..., 3] <= 0.25))
    assert np.all((b.theta[..., 4] >= 0.45) & (b.theta[..., 4] <= 0.65))


# -- determinism across thread counts ----------------------------------------------------------------------
def test_fit_bit_identical_for_any_thread_count(runs):
    r1 = lawfit.fit("chinchilla", runs, starts=SMALL_GRID, threads=1)
    r2 = lawfit.fit("chinchilla", runs, starts=SMALL_GRID, threads=2)
    r3 = lawfit.fit("chinchilla", runs, starts=SMALL_GRID, threads=3)
    for r in (r2, r3):
        assert r.fun == r1.fun and r.params == r1.params and r.internal == r1.internal
        assert r.best_start == r1.best_start and r.nit == r1.nit and r.nfev == r1.nfev
        assert same_bits(r.start_fun, r1.start_fun) and same_bits(r.start_status, r1.start_status)
        assert same_bits(r.start_nit, r1.start_nit)


@pytest.fixture(scope="module")
def boot_weights(runs) -> np.ndarray:
    rng = np.random.default_rng(1234)
    n = len(runs)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=48).astype(np.float64)


@pytest.mark.parametrize("keep", ["best", "all"])
def test_minimize_bit_identical_for_any_thread_count(runs, boot_weights, keep):
    starts = np.array([[HOFFMANN[k] for k in ("e", "a", "b", "alpha", "beta")],
                       [0.5, 5.0, 5.0, 0.5, 0.5], [0.0, 10.0, 10.0, 1.0, 1.0]])
    b1 = lawfit.minimize("chinchilla", runs, starts, weights=boot_weights, keep=keep, threads=1)
    b2 = lawfit.minimize("chinchilla", runs, starts, weights=boot_weights, keep=keep, threads=2)
    bN = lawfit.minimize("chinchilla", runs, starts, weights=boot_weights, keep=keep)  # all cores
    assert_same_batch(b1, b2)
    assert_same_batch(b1, bN)
    R = len(boot_weights)
    assert b1.fun.shape == ((R,) if keep == "best" else (R, 3))
    assert np.all(b1.success)


def test_evaluate_bit_identical_for_any_thread_count(runs, boot_weights):
    rng = np.random.default_rng(7)
    base = np.array([HOFFMANN[k] for k in ("e", "a", "b", "alpha", "beta")])
    params = base + rng.normal(scale=0.2, size=(len(boot_weights), 5))
    for w in (None, boot_weights[0], boot_weights):
        e1 = lawfit.evaluate("chinchilla", runs, params, weights=w, derivatives=2, threads=1)
        e2 = lawfit.evaluate("chinchilla", runs, params, weights=w, derivatives=2, threads=2)
        for a, b in zip(e1, e2):
            assert same_bits(a, b)


# -- keep="best" vs keep="all" ---------------------------------------------------------------------------
def test_keep_best_is_best_of_keep_all(runs, boot_weights):
    W = boot_weights[:12]
    starts = lawfit.starts.grid(lawfit.laws.get("chinchilla"), {"alpha": [0.0, 0.5, 1.5], "beta": [0.0, 1.5],
                                                                "a": [5.0], "b": [5.0]})
    ball = lawfit.minimize("chinchilla", runs, starts, weights=W, keep="all")
    bbest = lawfit.minimize("chinchilla", runs, starts, weights=W, keep="best")
    assert ball.fun.shape == (12, 6) and bbest.fun.shape == (12,)
    assert ball.best_start is None and bbest.best_start.shape == (12,)
    for r in range(len(W)):
        ok = ball.success[r]
        # success first, then lowest finite objective, then lowest start index
        fun = np.where(np.isfinite(ball.fun[r]), ball.fun[r], np.inf)
        s = int(np.lexsort((np.arange(fun.size), fun, ~ok))[0])
        assert bbest.best_start[r] == s
        assert bbest.n_success[r] == int(ok.sum())
        assert same_bits(bbest.fun[r], ball.fun[r, s])
        assert same_bits(bbest.x[r], ball.x[r, s])
        assert bbest.status[r] == ball.status[r, s] and bbest.nit[r] == ball.nit[r, s]
    # lawfit.fit keeps the same best as minimize(keep="best")
    f = lawfit.fit("chinchilla", runs, starts=starts, weights=W[0])
    assert f.best_start == bbest.best_start[0] and f.fun == bbest.fun[0]
    assert f.n_runs == int(np.count_nonzero(W[0]))


def test_minimize_per_row_starts(runs, boot_weights):
    W = boot_weights[:3]
    s = np.array([HOFFMANN[k] for k in ("e", "a", "b", "alpha", "beta")])
    per_row = np.stack([np.stack([s, s + 0.1]), np.stack([s + 0.2, s]), np.stack([s, s])])
    assert per_row.shape == (3, 2, 5)
    b = lawfit.minimize("chinchilla", runs, per_row, weights=W, keep="all")
    shared = lawfit.minimize("chinchilla", runs, np.stack([s, s + 0.1]), weights=W, keep="all")
    assert same_bits(b.fun[0], shared.fun[0])
    assert same_bits(b.fun[2, 0], shared.fun[2, 0]) and same_bits(b.fun[2, 1], shared.fun[2, 0])


def test_batchfit_helpers(runs):
    b = lawfit.minimize("chinchilla", runs, starts=SMALL_GRID, keep="all")
    nat = b.natural()
    assert set(nat) == {"E", "A", "B", "alpha", "beta"}
    np.testing.assert_allclose(nat["E"], np.exp(b.theta[..., 0]), rtol=1e-15)
    counts = b.status_counts()
    assert sum(counts.values()) == 36 and set(counts) <= {s.name for s in Status}


# -- results: summary, to_dict, to_frame ------------------------------------------------------------------
def test_result_summary_to_dict_to_frame(best):
    s = best.summary()
    assert str(best) == s
    assert "chinchilla" in s and "240 runs" in s and "huber" in s
    for name in ("E", "A", "B", "alpha", "beta"):
        assert name in s
    d = best.to_dict()
    assert d["law"] == "chinchilla" and d["objective"] == best.fun and d["success"] is True
    assert d["params"] == best.params and d["internal"] == best.internal
    assert d["status"] == best.status.name and d["message"] == best.status.message
    assert d["n_runs"] == 240 and d["loss"] == "huber" and d["delta"] == 1e-3
    import json

    json.dumps(d)  # plain Python types only
    fr = best.to_frame()
    assert isinstance(fr, pd.DataFrame)
    assert list(fr.index) == ["E", "A", "B", "alpha", "beta"]
    assert fr.loc["E", "value"] == best.params["E"] and fr.loc["E", "fitted_as"] == "e"
    assert fr.loc["A", "internal"] == best.internal["a"] and fr.loc["A", "fitted_as"] == "a"
    assert best.message == best.status.message
    assert best.n_reached() == 1


def test_squared_loss(runs):
    r = lawfit.fit("chinchilla", runs, starts=HOFFMANN, loss="squared")
    assert r.success and r.loss == "squared"
    assert "squared" in r.summary() and "delta" not in r.summary()
    ev = lawfit.evaluate("chinchilla", runs, r.x, loss="squared", derivatives=1)
    assert ev.fun[0] == pytest.approx(r.fun, rel=1e-12)
    assert np.max(np.abs(ev.grad)) < 1e-6


# -- laws -----------------------------------------------------------------------------------------------
def test_law_describe_and_catalogue():
    assert {"chinchilla", "chinchilla_linear_e", "kaplan", "saturating"} <= set(lawfit.laws.available())
    law = lawfit.laws.get("chinchilla")
    text = law.describe()
    assert text.startswith("chinchilla: L(N, D) = ")
    for name in ("E", "A", "B", "alpha", "beta", "fitted as e", "compiled program", "lse("):
        assert name in text
    assert law.param_names == ["E", "A", "B", "alpha", "beta"]
    assert law.internal_names == ["e", "a", "b", "alpha", "beta"]
    assert "chinchilla" in repr(law)
    for name in lawfit.laws.available():
        assert lawfit.laws.get(name).describe()


def test_law_from_string_with_custom_name(runs, best):
    law = lawfit.law("E + A / N**alpha + B / D**beta", variables=["N", "D"], log_params=["E", "A", "B"],
                     name="my_chinchilla")
    assert isinstance(law, lawfit.Law) and law.name == "my_chinchilla"
    assert law.describe().startswith("my_chinchilla: L(N, D) = ")
    assert set(law.param_names) == {"E", "A", "B", "alpha", "beta"}
    assert law.index("log_E") == law.index("E")
    start = {"log_E": HOFFMANN["e"], "log_A": HOFFMANN["a"], "log_B": HOFFMANN["b"],
             "alpha": HOFFMANN["alpha"], "beta": HOFFMANN["beta"]}
    r = lawfit.fit(law, runs, starts=start)
    assert r.success and r.law is law and r.to_dict()["law"] == "my_chinchilla"
    assert r.fun == pytest.approx(best.fun, rel=1e-10)
    for k in ("E", "A", "B", "alpha", "beta"):
        assert r.params[k] == pytest.approx(best.params[k], rel=1e-6)
    # the same law as a string of variable names, and as an Expr
    N, D = lawfit.symbols("N D")
    E, A, B, alpha, beta = lawfit.symbols("E A B alpha beta")
    law2 = lawfit.law(E + A / N**alpha + B / D**beta, variables="N D", log_params=["E", "A", "B"], name="expr")
    assert law2.variables == ("N", "D") and law2.name == "expr"
    r2 = lawfit.fit(law2, runs, starts=start)
    assert r2.fun == pytest.approx(best.fun, rel=1e-10)


def test_user_law_with_extra_term(runs):
    # Chinchilla plus an interaction term; G fixed at zero-ish reproduces Chinchilla
    law = lawfit.law("E + A / N**alpha + B / D**beta + G / (N*D)**gamma", variables=["N", "D"],
                     log_params=["E", "A", "B", "G"], name="chinchilla_plus")
    assert law.n_params == 7 and law.name == "chinchilla_plus"
    start = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37, "G": 1.0, "gamma": 0.5}
    r = lawfit.fit(law, runs, starts=start, fixed={"gamma": 0.5, "log_G": -50.0})
    assert r.success and r.params["gamma"] == 0.5
    assert r.fun == pytest.approx(OPT_FUN, rel=1e-6)


def test_predict(runs, best):
    law = lawfit.laws.get("chinchilla")
    pred = law.predict(runs, best.params)
    p = best.params
    expect = p["E"] + p["A"] / runs["N"] ** p["alpha"] + p["B"] / runs["D"] ** p["beta"]
    np.testing.assert_allclose(pred, expect, rtol=1e-12)


def test_other_builtin_laws_fit_by_name(runs):
    r = lawfit.fit("saturating_C", {"C": runs["C"].to_numpy(), "loss": runs["loss"].to_numpy()},
                   starts={"e": [0.5], "a": [5.0], "alpha": [0.05, 0.2]})
    assert r.success and list(r.params) == ["E", "A", "alpha"]
    r = lawfit.fit("chinchilla_linear_e", runs, starts={"E": [1.5], "a": [6.0], "b": [6.0], "alpha": [0.3],
                                                        "beta": [0.3]})
    assert r.success and r.params["E"] >= 0
    assert r.fun == pytest.approx(OPT_FUN, rel=1e-7)
