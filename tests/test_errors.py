"""Bad input raises ValueError or TypeError whose message names the problem; a fit
that meets non-finite values reports it in its own status while the rest of the batch completes.

Non-contiguous arrays are not bad input: they are accepted and give the same results as contiguous ones.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

import lawfit
from lawfit import Status

# the fuzz battery's data and starts, for the regressions it found (end of this file); tests/fuzz/helpers.py
# is importable as fuzz.helpers because pytest puts tests/ on sys.path (as for reference.py)
from fuzz.helpers import CHIN, HUGE_INT, LAW, synthetic
from fuzz.helpers import GOOD_START as FUZZ_START

N_RUNS = 24
# internal scale [e, a, b, alpha, beta]
GOOD_START = np.array([0.6, 6.0, 6.0, 0.3, 0.3])
ONE_START = {"e": [0.6], "a": [6.0], "b": [6.0], "alpha": [0.3], "beta": [0.3]}


def _synthetic(n: int = N_RUNS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), n))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))
    loss = (1.8 + 480.0 / N**0.35 + 2100.0 / D**0.37) * np.exp(rng.normal(scale=0.01, size=n))
    return {"N": N, "D": D, "loss": loss}


@pytest.fixture(scope="module")
def data() -> dict:
    return _synthetic()


@pytest.fixture(scope="module")
def frame(data) -> pd.DataFrame:
    return pd.DataFrame(data)


def with_value(data: dict, column: str, row: int, value) -> dict:
    col = np.array(data[column], dtype=float if isinstance(value, float) else object)
    col[row] = value
    return {**data, column: col}


def named(*parts: str) -> str:
    """A regex matching a message that contains every part, in order."""
    return ".*".join(re.escape(p) for p in parts)


def fit(data, **kw):
    kw.setdefault("starts", ONE_START)
    return lawfit.fit("chinchilla", data, **kw)


# -- data values -------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["N", "D", "loss"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_data_names_column_and_row(data, column, value):
    bad = with_value(data, column, 7, value)
    with pytest.raises(ValueError, match=named(f"column {column!r}", "non-finite", "row 7")):
        fit(bad)
    with pytest.raises(ValueError, match=named(f"column {column!r}", "row 7")):
        lawfit.evaluate("chinchilla", bad, GOOD_START)
    with pytest.raises(ValueError, match=named(f"column {column!r}", "row 7")):
        lawfit.minimize("chinchilla", pd.DataFrame(bad), GOOD_START)


@pytest.mark.parametrize("column", ["N", "D", "loss"])
@pytest.mark.parametrize("value", [0.0, -1.0, -1e-300])
def test_non_positive_data_names_column_and_row(data, column, value):
    bad = with_value(data, column, 5, value)
    with pytest.raises(ValueError, match=named(f"column {column!r}", "non-positive", "row 5", "> 0")):
        fit(bad)
    with pytest.raises(ValueError, match=named(f"column {column!r}", "non-positive", "row 5")):
        fit(pd.DataFrame(bad))


def test_non_positive_counts_the_other_bad_rows(data):
    loss = data["loss"].copy()
    loss[[2, 4, 9]] = -1.0
    with pytest.raises(ValueError, match=named("column 'loss'", "row 2", "and 2 more")):
        fit({**data, "loss": loss})


def test_variables_of_a_single_variable_law_are_checked_too():
    C = np.array([1e18, 1e19, -1e20, 1e21])
    with pytest.raises(ValueError, match=named("column 'C'", "law variable C", "non-positive", "row 2")):
        lawfit.fit("saturating_C", {"C": C, "loss": np.array([3.0, 2.8, 2.6, 2.4])})


def test_string_cell_in_dataframe_names_column_row_and_value(frame):
    df = frame.copy()
    df["N"] = df["N"].astype(object)
    df.loc[4, "N"] = "abc"
    with pytest.raises(TypeError, match=named("column 'N'", "non-numeric", "'abc'", "row 4")):
        fit(df)
    df = frame.copy()
    df["loss"] = df["loss"].astype(object)
    df.loc[11, "loss"] = "n/a"
    with pytest.raises(TypeError, match=named("column 'loss'", "observed loss", "'n/a'", "row 11")):
        fit(df)


def test_missing_cells_name_column_and_row(data, frame):
    bad = with_value(data, "D", 3, None)
    with pytest.raises(ValueError, match=named("column 'D'", "row 3")):
        fit(bad)
    df = frame.copy()
    df["loss"] = df["loss"].astype("Float64")
    df.loc[6, "loss"] = pd.NA
    with pytest.raises((ValueError, TypeError), match=named("column 'loss'", "row 6")):
        fit(df)


@pytest.mark.parametrize(
    "column_value, err",
    [
        (np.array(["1e9"] * N_RUNS), TypeError),  # numpy strings
        (np.ones(N_RUNS, dtype=bool), TypeError),
        (np.ones(N_RUNS, dtype=complex), TypeError),
        (np.ones(N_RUNS, dtype="datetime64[s]"), TypeError),
        (np.ones((N_RUNS, 1)), ValueError),  # not one-dimensional
        (5.0, ValueError),
    ],
)
def test_wrong_column_dtype_or_shape_names_column(data, column_value, err):
    with pytest.raises(err, match="column 'N'"):
        fit({**data, "N": column_value})


@pytest.mark.parametrize("column", ["N", "D", "loss"])
def test_mismatched_column_lengths(data, column):
    bad = {**data, column: data[column][:-3]}
    with pytest.raises(ValueError, match=named(f"column {column!r} has {N_RUNS - 3} values; expected {N_RUNS}")):
        fit(bad)
    with pytest.raises(ValueError, match=named(f"column {column!r}", f"{N_RUNS - 3} values")):
        lawfit.evaluate("chinchilla", pd.Series(bad).to_dict(), GOOD_START)


def test_all_column_lengths_different(data):
    bad = {"N": data["N"][:-1], "D": data["D"][:-2], "loss": data["loss"]}
    with pytest.raises(ValueError, match=named("different lengths", f"N {N_RUNS - 1}", f"D {N_RUNS - 2}",
                                               f"loss {N_RUNS}")):
        fit(bad)


def test_empty_data():
    empty = {"N": np.array([]), "D": np.array([]), "loss": np.array([])}
    with pytest.raises(ValueError, match="empty"):
        fit(empty)
    with pytest.raises(ValueError, match="empty"):
        fit(pd.DataFrame(empty))
    with pytest.raises(ValueError, match="empty"):
        lawfit.evaluate("chinchilla", empty, GOOD_START)


@pytest.mark.parametrize("not_data", [None, 5, 2.5])
def test_data_of_the_wrong_type(not_data):
    with pytest.raises(TypeError, match="DataFrame or a mapping"):
        fit(not_data)


# -- names: laws, columns, parameters ----------------------------------------------------------------------
def test_unknown_law_name(data):
    with pytest.raises(ValueError, match=named("unknown law 'chinchila'", "chinchilla", "kaplan")):
        lawfit.fit("chinchila", data)
    with pytest.raises(ValueError, match="unknown law 'nope'"):
        lawfit.evaluate("nope", data, GOOD_START)
    with pytest.raises(ValueError, match="unknown law"):
        lawfit.minimize("", data, GOOD_START)
    with pytest.raises(TypeError, match="law must be a Law or the name"):
        lawfit.fit(42, data)


def test_unknown_column_names(data):
    with pytest.raises(ValueError, match=named("no column 'D'", "law variable D", "'tokens'")):
        fit({"N": data["N"], "tokens": data["D"], "loss": data["loss"]})
    with pytest.raises(ValueError, match=named("no column 'loss'", "observed loss", "'val_loss'")):
        fit({"N": data["N"], "D": data["D"], "val_loss": data["loss"]})
    with pytest.raises(ValueError, match=named("no column 'params'", "law variable N")):
        fit(data, columns={"N": "params"})
    with pytest.raises(ValueError, match=named("columns= maps unknown names ['Q']", "'N', 'D'")):
        fit(data, columns={"Q": "N"})


@pytest.mark.parametrize(
    "kw",
    [
        {"bounds": {"gamma": (0, 1)}},
        {"fixed": {"gamma": 0.5}},
        {"tie": [("alpha", "gamma")]},
        {"tie": {"gamma": "alpha"}},
        {"starts": {"gamma": [0.1, 0.2]}},
    ],
)
def test_unknown_parameter_names(data, kw):
    with pytest.raises(ValueError, match=named("no parameter 'gamma'", "'E', 'A', 'B', 'alpha', 'beta'")):
        fit(data, **kw)


# -- arrays: params, weights, starts ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, err, msg",
    [
        (np.array([["0.6", "6", "6", "0.3", "0.3"]]), TypeError, "params must be numeric"),
        (np.array([[0.6, 6, 6, 0.3, 0.3]], dtype=object), TypeError, "params must be numeric"),
        (np.array([[True] * 5]), TypeError, "params must be numeric"),
        (np.zeros((2, 4)), ValueError, "params must have shape (batch, 5)"),
        (np.zeros((2, 2, 5)), ValueError, "params must have shape (batch, 5)"),
        (np.zeros(6), ValueError, "params must have shape (batch, 5)"),
    ],
)
def test_evaluate_bad_params(data, params, err, msg):
    with pytest.raises(err, match=re.escape(msg)):
        lawfit.evaluate("chinchilla", data, params)


def test_evaluate_bad_options(data):
    P = np.tile(GOOD_START, (3, 1))
    with pytest.raises(ValueError, match="derivatives must be 0, 1 or 2"):
        lawfit.evaluate("chinchilla", data, P, derivatives=3)
    with pytest.raises(ValueError, match="weights have 2 rows but params have 3"):
        lawfit.evaluate("chinchilla", data, P, weights=np.ones((2, N_RUNS)))
    with pytest.raises(ValueError, match="threads"):
        lawfit.evaluate("chinchilla", data, P, threads=0)


@pytest.mark.parametrize(
    "weights, err, msg",
    [
        (-np.ones(N_RUNS), ValueError, named("finite and >= 0", "row 0, run 0", "-1")),
        (np.r_[np.ones(5), np.nan, np.ones(N_RUNS - 6)], ValueError, named("finite and >= 0", "run 5", "nan")),
        (np.r_[np.ones(8), np.inf, np.ones(N_RUNS - 9)], ValueError, named("finite and >= 0", "run 8", "inf")),
        (np.ones(N_RUNS + 1), ValueError, named(f"{N_RUNS + 1} columns", f"{N_RUNS} runs")),
        (np.ones(N_RUNS - 1), ValueError, named(f"{N_RUNS - 1} columns", f"{N_RUNS} runs")),
        (np.ones((2, 2, N_RUNS)), ValueError, "weights must have shape"),
        (np.array(["1"] * N_RUNS), TypeError, "weights must be numeric"),
        (np.ones(N_RUNS, dtype=object), TypeError, "weights must be numeric"),
        (np.ones(N_RUNS, dtype=bool), TypeError, "weights must be numeric"),
    ],
)
def test_bad_weights(data, weights, err, msg):
    with pytest.raises(err, match=msg):
        lawfit.minimize("chinchilla", data, GOOD_START, weights=weights)
    with pytest.raises(err, match=msg):
        lawfit.evaluate("chinchilla", data, GOOD_START, weights=weights)
    if np.ndim(weights) == 1:
        with pytest.raises(err, match=msg):
            fit(data, weights=weights)


def test_bad_weight_rows_name_the_row(data):
    W = np.ones((4, N_RUNS))
    W[2, 13] = -0.5
    with pytest.raises(ValueError, match=named("row 2, run 13", "-0.5")):
        lawfit.minimize("chinchilla", data, GOOD_START, weights=W)
    with pytest.raises(ValueError, match="one weight per run"):
        fit(data, weights=np.ones((2, N_RUNS)))
    with pytest.raises(ValueError, match="one weight per run"):
        fit(data, weights=1.0)


@pytest.mark.parametrize(
    "starts, err, msg",
    [
        (np.array([["0.6", "6", "6", "0.3", "0.3"]]), TypeError, "starts must be numeric"),
        (np.array([[0.6, 6, 6, 0.3, 0.3]], dtype=object), TypeError, "starts must be numeric"),
        (np.zeros((1, 2, 5), dtype=object), TypeError, "starts must be numeric"),
        (np.zeros((2, 4)), ValueError, "starts must have shape (n_starts, 5)"),
        (np.zeros((0, 5)), ValueError, "at least one start"),
        (np.zeros((3, 2, 5)), ValueError, "per-row starts must have shape (1, n_starts, 5)"),
        ("nowhere", ValueError, "unknown start strategy 'nowhere'"),
        ({"alpha": "x"}, TypeError, "starting values for 'alpha' must be numbers"),
        ({"alpha": []}, ValueError, "starting values for 'alpha' must be a non-empty"),
        ({"E": [-1.0, 1.0]}, ValueError, "starting value -1 for 'E' is not valid"),
        ({"E": "1", "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3}, TypeError, "starting values for 'E'"),
        ({"E": 0.0, "A": 400, "B": 400, "alpha": 0.3, "beta": 0.3}, ValueError, "value 0 of parameter 'E'"),
        ({"E": 1.0, "e": 0.0, "A": 400, "B": 400, "alpha": 0.3}, ValueError, "given twice"),
        ({"E": 1.0, "A": 400, "B": 400, "alpha": 0.3, "gamma": 1.0}, ValueError, "no parameter 'gamma'"),
    ],
)
def test_bad_starts(data, starts, err, msg):
    with pytest.raises(err, match=re.escape(msg)):
        lawfit.minimize("chinchilla", data, starts)


def test_non_finite_start_names_start_and_parameter(data):
    S = np.tile(GOOD_START, (4, 1))
    S[2, 3] = np.nan
    with pytest.raises(ValueError, match=named("start 2", "parameter alpha", "nan", "finite")):
        fit(data, starts=S)
    S[2, 3] = np.inf
    with pytest.raises(ValueError, match=named("start 2", "parameter alpha", "inf")):
        fit(data, starts=S)


def test_starts_outside_bounds(data):
    S = np.tile(GOOD_START, (3, 1))
    S[1, 4] = 0.9
    with pytest.raises(ValueError, match=named("start 1", "parameter beta", "0.9", "above its upper bound 0.5")):
        fit(data, starts=S, bounds={"beta": (0.1, 0.5)})
    with pytest.raises(ValueError, match=named("start 0", "parameter e", "below its lower bound")):
        fit(data, starts=S, bounds={"E": (2.0, 3.0)})
    # Kaplan's default bounds: exponents above 1e-6
    with pytest.raises(ValueError, match=named("parameter alpha_N", "below its lower bound")):
        lawfit.minimize("kaplan", data, np.array([[30.0, 30.0, -0.1, 0.1]]))
    with pytest.raises(ValueError, match="starts='hoffmann' needs a Chinchilla-type law"):
        lawfit.minimize("kaplan", data, "hoffmann")


# -- non-contiguous arrays are accepted ------------------------------------------------------------------
def test_non_contiguous_params_to_evaluate(data):
    rng = np.random.default_rng(3)
    P = GOOD_START + rng.normal(scale=0.1, size=(7, 5))
    ref = lawfit.evaluate("chinchilla", data, P, derivatives=2)
    big = np.zeros((21, 15))
    big[::3, ::3] = P
    W = rng.uniform(0.0, 2.0, size=(7, N_RUNS))
    Wbig = np.zeros((7, 2 * N_RUNS))
    Wbig[:, ::2] = W
    cases = [np.asfortranarray(P), big[::3, ::3], P[::-1][::-1], P.T.copy().T]
    for Q in cases:
        out = lawfit.evaluate("chinchilla", data, Q, derivatives=2)
        for a, b in zip(out, ref):
            np.testing.assert_array_equal(a, b)
    assert not big[::3, ::3].flags.c_contiguous and not np.asfortranarray(P).flags.c_contiguous
    ref_w = lawfit.evaluate("chinchilla", data, P, weights=W, derivatives=1)
    for Wq in (Wbig[:, ::2], np.asfortranarray(W)):
        out = lawfit.evaluate("chinchilla", data, big[::3, ::3], weights=Wq, derivatives=1)
        for a, b in zip(out, ref_w):
            np.testing.assert_array_equal(a, b)
    # a single strided row of weights shared by every parameter row
    out = lawfit.evaluate("chinchilla", data, P, weights=Wbig[0, ::2])
    ref1 = lawfit.evaluate("chinchilla", data, P, weights=W[0].copy())
    np.testing.assert_array_equal(out.fun, ref1.fun)


def test_non_contiguous_data_columns(data):
    ref = fit(data)
    # strided numpy columns
    strided = {}
    for k, v in data.items():
        big = np.zeros(3 * N_RUNS)
        big[::3] = v
        strided[k] = big[::3]
        assert not strided[k].flags.c_contiguous
    r = fit(strided)
    assert r.fun == ref.fun and r.params == ref.params
    # strided DataFrame columns: every other row of a larger frame
    big = pd.DataFrame({k: np.repeat(v, 2) for k, v in data.items()})
    df = big.iloc[::2]
    assert not np.asarray(df["N"]).flags.c_contiguous
    r = fit(df)
    assert r.fun == ref.fun and r.params == ref.params
    # reversed views, float32 / big-endian / integer-convertible columns are converted, not rejected
    rev = {k: v[::-1].copy()[::-1] for k, v in data.items()}
    assert fit(rev).fun == ref.fun
    assert fit({**data, "N": data["N"].astype(">f8")}).fun == ref.fun
    r32 = fit({**data, "loss": data["loss"].astype(np.float32)})
    assert r32.success


def test_non_contiguous_starts_and_weights_to_minimize(data):
    rng = np.random.default_rng(5)
    S = GOOD_START + rng.normal(scale=0.05, size=(4, 5))
    W = rng.integers(0, 3, size=(3, N_RUNS)).astype(float)
    ref = lawfit.minimize("chinchilla", data, S, weights=W, keep="all")
    Sbig = np.zeros((8, 10))
    Sbig[::2, ::2] = S
    Wbig = np.zeros((6, N_RUNS))
    Wbig[::2] = W
    out = lawfit.minimize("chinchilla", data, Sbig[::2, ::2], weights=Wbig[::2], keep="all")
    np.testing.assert_array_equal(out.fun, ref.fun)
    np.testing.assert_array_equal(out.x, ref.x)
    np.testing.assert_array_equal(out.status, ref.status)
    out = lawfit.minimize("chinchilla", data, np.asfortranarray(S), weights=np.asfortranarray(W), keep="all")
    np.testing.assert_array_equal(out.fun, ref.fun)


# -- bounds, fixed, tie ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, err, msg",
    [
        ({"bounds": {"alpha": (1.0, 0.0)}}, ValueError, named("lower bound 1", "'alpha'", "above its upper bound 0")),
        ({"bounds": {"E": (3.0, 2.0)}}, ValueError, named("lower bound 3", "'E'", "upper bound 2")),
        ({"bounds": {"alpha": (np.nan, 1.0)}}, ValueError, named("bounds for 'alpha'", "NaN")),
        ({"bounds": {"alpha": 1.0}}, ValueError, named("bounds for 'alpha'", "pair")),
        ({"bounds": {"alpha": (0, 1, 2)}}, ValueError, named("bounds for 'alpha'", "pair")),
        ({"bounds": {"alpha": ("a", 1)}}, ValueError, named("bounds for 'alpha'", "pair")),
        ({"bounds": {"E": (-2.0, -1.0)}}, ValueError, named("'E'", "positive", "upper bound -1")),
        ({"bounds": [("alpha", 0, 1)]}, TypeError, "bounds must be a mapping"),
        ({"fixed": [("alpha", 0.3)]}, TypeError, "fixed must be a mapping"),
        ({"fixed": {"alpha": "x"}}, TypeError, "fixed value of parameter 'alpha' must be a number"),
        ({"fixed": {"alpha": [0.3, 0.4]}}, TypeError, "fixed value of parameter 'alpha' must be a number"),
        ({"fixed": {"alpha": np.nan}}, ValueError, named("fixed value nan", "'alpha'")),
        ({"fixed": {"E": 0.0}}, ValueError, named("fixed value 0.0", "'E'", "not valid")),
        ({"fixed": {"E": -1.0}}, ValueError, named("fixed value -1.0", "'E'", "not valid")),
        ({"fixed": {"alpha": 2.0}, "bounds": {"alpha": (0.0, 1.0)}}, ValueError,
         named("fixed value 2.0", "'alpha'", "outside its bounds")),
        ({"fixed": {"E": 1.0, "A": 1.0, "B": 1.0, "alpha": 0.3, "beta": 0.3}}, ValueError, "every parameter is fixed"),
        ({"tie": "alpha"}, TypeError, "tie must be a list of groups"),
        ({"tie": [("alpha",)]}, ValueError, "at least two parameters"),
        ({"tie": ("alpha", "beta")}, ValueError, "list of groups"),
        ({"tie": [("alpha", "a")]}, ValueError, named("tied parameters", "'alpha', 'a'", "transform")),
        ({"tie": [("alpha", "beta")], "fixed": {"alpha": 0.3, "beta": 0.4}}, ValueError, "fixed to different values"),
        ({"tie": [("alpha", "beta")], "bounds": {"alpha": (0.0, 0.2), "beta": (0.5, 1.0)}}, ValueError,
         "disjoint bounds"),
    ],
)
def test_bad_bounds_fixed_tie(data, kw, err, msg):
    with pytest.raises(err, match=msg):
        lawfit.minimize("chinchilla", data, GOOD_START, **kw)


def test_bad_param_definitions():
    with pytest.raises(ValueError, match=named("parameter x", "lower bound 2", "upper bound 1")):
        lawfit.Param("x", lower=2.0, upper=1.0)
    with pytest.raises(ValueError, match=named("parameter x", "transform")):
        lawfit.Param("x", transform="sqrt")
    with pytest.raises(ValueError, match=named("parameter x", "positive upper bound")):
        lawfit.Param("x", transform="log", upper=-1.0)
    with pytest.raises(ValueError, match="not an identifier"):
        lawfit.Param("1x")


# -- laws ----------------------------------------------------------------------------------------------
def test_too_many_parameters():
    text13 = " + ".join(f"p{i} * N**(-{i + 1})" for i in range(13))
    with pytest.raises(ValueError, match=named("13 parameters", "at most 12")):
        lawfit.law(text13, variables=["N"], name="thirteen")
    params = [lawfit.Param(f"p{i}") for i in range(13)]
    with pytest.raises(ValueError, match=named("'thirteen'", "13 parameters", "at most 12")):
        lawfit.Law("thirteen", text13, ["N"], params)
    text12 = " + ".join(f"p{i} * N**(-{i + 1})" for i in range(12))
    assert lawfit.law(text12, variables=["N"]).n_params == 12


@pytest.mark.parametrize(
    "text, kw, msg",
    [
        ("E + A / N**", {}, "cannot parse law expression"),
        ("E + A.x / N", {}, "Attribute is not allowed"),
        ("E + A / N**alpha if N else 0", {}, "IfExp is not allowed"),
        ("E + foo(N)", {}, "unknown function 'foo'"),
        ("E + A / N**alpha", {"log_params": ["Q"]}, "unknown parameters ['Q']"),
        ("E + A / N**alpha", {"bounds": {"Q": (0, 1)}}, "unknown parameters ['Q']"),
        ("E + A / N**alpha", {"params": ["E", "A", "alpha", "G"]}, "parameters ['G'] do not appear"),
        ("E + A / N**alpha", {"params": ["E", "A"]}, "unknown names ['alpha']"),
        ("N + A", {"params": ["N", "A"]}, "named both a variable and a parameter"),
        ("", {}, "empty"),
    ],
)
def test_bad_user_laws(text, kw, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        lawfit.law(text, variables=["N"], **kw)


def test_bad_law_variables_and_expressions():
    with pytest.raises(ValueError, match="variable name 'N-1' is not an identifier"):
        lawfit.law("E + A / M**alpha", variables=["N-1"])
    with pytest.raises(TypeError, match="law expression must be a string"):
        lawfit.parse(3)
    with pytest.raises(TypeError, match="cannot use"):
        lawfit.symbols("N")[0] + "x"
    with pytest.raises(ValueError, match="constants in a law must be finite"):
        lawfit.symbols("N")[0] + float("inf")


def test_law_variable_missing_from_data(data):
    law = lawfit.law("E + A / C**alpha", variables=["C"], log_params=["E", "A"], name="mine")
    with pytest.raises(ValueError, match=named("no column 'C'", "law variable C", "'N', 'D', 'loss'")):
        lawfit.fit(law, data, starts={"alpha": [0.1]})


# -- solver options, loss, delta, threads, keep --------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, err, msg",
    [
        ({"max_iter": 0}, ValueError, "max_iter must be a positive integer"),
        ({"max_iter": -5}, ValueError, "max_iter must be a positive integer"),
        ({"max_iter": 2.5}, ValueError, "max_iter must be a positive integer"),
        ({"max_iter": True}, ValueError, "max_iter must be a positive integer"),
        ({"max_iter": 2**40}, ValueError, "max_iter must be a positive integer"),
        ({"xtol": 0.0}, ValueError, "xtol"),
        ({"xtol": -1e-8}, ValueError, "xtol"),
        ({"xtol": float("nan")}, ValueError, "xtol"),
        ({"xtol": 2.0}, ValueError, "xtol"),
        ({"xtol": "tiny"}, TypeError, "solver option xtol must be a number"),
        ({"ftol": -1.0}, ValueError, "ftol"),
        ({"ftol": "x"}, TypeError, "solver option ftol must be a number"),
        ({"radius0": 0.0}, ValueError, "radius0"),
        ({"radius0": float("inf")}, ValueError, "radius0"),
        ({"irls": -1.0}, ValueError, "irls"),
        ({"switch_rtol": 1.0}, ValueError, "switch_rtol"),
        ({"trust_scale": "diag"}, ValueError, "trust_scale must be 'auto', None or an array"),
        ({"trust_scale": [1.0, 1.0]}, ValueError, named("trust_scale must have one entry per free parameter",
                                                         "e, a, b, alpha, beta")),
        ({"trust_scale": [1.0, 1.0, 1.0, -2.0, 1.0]}, ValueError, "trust_scale for free parameter 'alpha'"),
        ({"trust_scale": [1.0, 1.0, 1.0, 1.0, np.inf]}, ValueError, "trust_scale for free parameter 'beta'"),
        ({"trust_scale": ["x"] * 5}, TypeError, "trust_scale must be numeric"),
        ({"maxiter": 10}, TypeError, "maxiter"),
        ({"loss": "l1"}, ValueError, named("unknown loss 'l1'", "huber", "squared")),
        ({"loss": "Huber"}, ValueError, "unknown loss 'Huber'"),
        ({"delta": 0.0}, ValueError, "delta must be positive and finite"),
        ({"delta": -1e-3}, ValueError, "delta must be positive and finite"),
        ({"delta": float("nan")}, ValueError, "delta must be positive and finite"),
        ({"delta": float("inf")}, ValueError, "delta must be positive and finite"),
        ({"delta": "0.001"}, TypeError, "delta must be a number"),
        ({"loss": "quantile", "q": 1.5}, ValueError, "q must lie strictly between 0 and 1"),
        ({"loss": "quantile", "q": 0.0}, ValueError, "q must lie strictly between 0 and 1"),
        ({"loss": "squared", "q": 0.5}, ValueError, "loss 'squared' takes no parameter 'q'"),
        ({"residual": "raw"}, ValueError, "residual must be one of"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
        ({"threads": 0}, ValueError, "threads must be a positive integer"),
        ({"threads": -2}, ValueError, "threads must be a positive integer"),
        ({"threads": 1.5}, ValueError, "threads must be a positive integer"),
    ],
)
def test_bad_solver_options(data, kw, err, msg):
    with pytest.raises(err, match=msg):
        fit(data, **kw)


def test_bad_options_to_evaluate_and_minimize(data):
    with pytest.raises(ValueError, match="unknown loss 'abs'"):
        lawfit.evaluate("chinchilla", data, GOOD_START, loss="abs")
    with pytest.raises(ValueError, match="delta must be positive"):
        lawfit.evaluate("chinchilla", data, GOOD_START, delta=0.0)
    with pytest.raises(ValueError, match="keep must be 'best' or 'all'"):
        lawfit.minimize("chinchilla", data, GOOD_START, keep="first")


def test_bad_dataset_options():
    with pytest.raises(ValueError, match="drop_highest must be a non-negative integer"):
        lawfit.datasets.chinchilla(drop_highest=-1)
    with pytest.raises(ValueError, match="drop_highest must be a non-negative integer"):
        lawfit.datasets.chinchilla(drop_highest=2.5)
    with pytest.raises(ValueError, match="would drop all 245 runs"):
        lawfit.datasets.chinchilla(drop_highest=245)


def test_huge_thread_count_is_harmless(data):
    assert fit(data, threads=2**40).fun == fit(data, threads=1).fun


# -- non-finite values and empty weight rows: per-fit status, the batch completes -----------------------------
def _kaplan_data() -> dict:
    d = _synthetic(seed=1)
    N, D = d["N"], d["D"]
    return {"N": N, "D": D, "loss": ((8.8e13 / N) ** (0.076 / 0.095) + 5.4e13 / D) ** 0.095}


def test_kaplan_overflowing_start_is_non_finite_in_its_slot():
    kd = _kaplan_data()
    # [log_Nc, log_Dc, alpha_N, alpha_D]; the second start has alpha_N / alpha_D = 1e306: exponents overflow
    S = np.array([[30.0, 30.0, 0.08, 0.1], [30.0, 30.0, 1e300, 1e-6], [32.1, 31.6, 0.076, 0.095]])
    b = lawfit.minimize("kaplan", kd, S, keep="all")
    assert b.status.shape == (1, 3)
    assert b.status[0, 1] == Status.NON_FINITE
    assert b.status[0, 0] in (Status.CONVERGED, Status.CONVERGED_AT_BOUND)
    assert b.status[0, 2] in (Status.CONVERGED, Status.CONVERGED_AT_BOUND)
    assert b.fun[0, 0] < 1e-20 and b.fun[0, 2] < 1e-20
    # the other fits are unaffected by their neighbour
    alone = lawfit.minimize("kaplan", kd, S[[0, 2]], keep="all")
    np.testing.assert_array_equal(alone.fun[0], b.fun[0, [0, 2]])
    np.testing.assert_array_equal(alone.x[0], b.x[0, [0, 2]])
    # keep="best" passes over it
    best = lawfit.minimize("kaplan", kd, S, keep="best")
    assert best.status[0] in (Status.CONVERGED, Status.CONVERGED_AT_BOUND) and best.best_start[0] != 1
    assert best.n_success[0] == 2
    r = lawfit.fit("kaplan", kd, starts=S)
    assert r.success and r.start_status[1] == Status.NON_FINITE and r.n_success == 2
    assert r.status.name.lower() in r.summary()


def test_linear_e_log_of_zero_is_non_finite_in_its_slot(data):
    # chinchilla_linear_e [E, a, b, alpha, beta]: E = 0 and both power terms underflow -> log(0)
    S = np.array([[0.0, -800.0, -800.0, 0.3, 0.3], [1.8, 6.0, 6.0, 0.3, 0.3], [0.0, 6.0, 6.0, 0.3, 0.3]])
    ev = lawfit.evaluate("chinchilla_linear_e", data, S)
    assert not np.isfinite(ev.fun[0]) and np.all(np.isfinite(ev.fun[1:]))
    assert np.all(np.isfinite(ev.grad[1:]))
    b = lawfit.minimize("chinchilla_linear_e", data, S, keep="all")
    assert b.status[0, 0] == Status.NON_FINITE
    assert np.all(b.success[0, 1:])
    r = lawfit.fit("chinchilla_linear_e", data, starts=S)
    assert r.success and r.best_start != 0


def test_all_starts_non_finite_reports_non_finite(data):
    S = np.array([[0.0, -800.0, -800.0, 0.3, 0.3], [0.0, -900.0, -700.0, 0.5, 0.5]])
    r = lawfit.fit("chinchilla_linear_e", data, starts=S)
    assert r.status is Status.NON_FINITE and r.success is False
    assert "objective" in r.summary()
    b = lawfit.minimize("chinchilla_linear_e", data, S, keep="best")
    assert b.status[0] == Status.NON_FINITE and b.n_success[0] == 0


def test_overflowing_exponent_in_chinchilla_is_non_finite(data):
    S = np.array([[0.6, 6.0, 6.0, -1e308, 0.3], GOOD_START])
    b = lawfit.minimize("chinchilla", data, S, keep="all")
    assert b.status[0, 0] == Status.NON_FINITE and b.success[0, 1]


def test_evaluate_non_finite_params_stay_in_their_row(data):
    P = np.tile(GOOD_START, (4, 1))
    P[1, 3] = np.nan
    P[2, 0] = np.inf
    ev = lawfit.evaluate("chinchilla", data, P, derivatives=2)
    assert np.isnan(ev.fun[1]) and not np.isfinite(ev.fun[2])
    ref = lawfit.evaluate("chinchilla", data, GOOD_START, derivatives=2)
    for k in (0, 3):
        assert ev.fun[k] == ref.fun[0]
        np.testing.assert_array_equal(ev.grad[k], ref.grad[0])
        np.testing.assert_array_equal(ev.hess[k], ref.hess[0])


@pytest.mark.parametrize("keep", ["all", "best"])
def test_all_zero_weight_row_is_not_run_for_that_row_only(data, keep):
    rng = np.random.default_rng(11)
    W = rng.integers(0, 3, size=(5, N_RUNS)).astype(float)
    W[:, 0] = 1.0
    W[2] = 0.0
    S = np.stack([GOOD_START, GOOD_START + 0.05])
    b = lawfit.minimize("chinchilla", data, S, weights=W, keep=keep)
    rows = np.array([0, 1, 3, 4])
    assert np.all(b.status[2] == Status.NOT_RUN) and not np.any(b.success[2])
    assert np.all(b.status[rows] != Status.NOT_RUN)
    assert np.all(b.success[rows])
    # the other rows are exactly what they are without the empty row
    without = lawfit.minimize("chinchilla", data, S, weights=W[rows], keep=keep)
    np.testing.assert_array_equal(b.fun[rows], without.fun)
    np.testing.assert_array_equal(b.x[rows], without.x)
    if keep == "best":
        assert b.n_success[2] == 0


def test_zero_weights_in_fit_and_nearly_empty_rows(data):
    # a single fit with fewer positive-weight runs than free parameters (none here) is refused
    with pytest.raises(ValueError, match=r"too few runs with positive weight \(0, at 0 distinct points\) for the "
                                         r"fit's 5"):
        fit(data, weights=np.zeros(N_RUNS))
    # in a batch, rows with one or two positive weights are skipped (NOT_RUN); the full row is fitted
    W = np.zeros((3, N_RUNS))
    W[0, 4] = 1.0
    W[1, :2] = 1.0
    W[2] = 1.0
    b = lawfit.minimize("chinchilla", data, np.stack([GOOD_START, GOOD_START + 0.2]), weights=W, keep="all")
    assert np.all(b.status[:2] == Status.NOT_RUN)
    assert np.all(b.success[2])


# =====================================================================================================================
# Regressions found by the fuzz battery (tests/fuzz/), on its synthetic data and starts (fuzz.helpers)
# =====================================================================================================================
# -- the Python layer --------------------------------------------------------------------------------------------------
def test_integers_beyond_float64_are_value_errors():
    """Regression: 10**400 anywhere a number goes raised OverflowError (not ValueError/TypeError)."""
    runs = synthetic(6, 0)
    start = np.array([FUZZ_START["chinchilla"]])
    big = HUGE_INT
    cases = [
        lambda: lawfit.fit(CHIN, {**runs, "N": np.array([big, *runs["N"][1:]], dtype=object)}, starts=start),
        lambda: lawfit.fit(CHIN, runs, starts=start, fixed={"alpha": big}),
        lambda: lawfit.fit(CHIN, runs, starts=start, bounds={"alpha": (0, big)}),
        lambda: lawfit.fit(CHIN, runs, starts=start, delta=big),
        lambda: lawfit.fit(CHIN, runs, starts=start, asymmetry=big),
        lambda: lawfit.fit(CHIN, runs, starts=start, xtol=big),
        lambda: lawfit.evaluate(CHIN, runs, start, delta=-big),
        lambda: lawfit.Param("x", lower=big),
        lambda: lawfit.Param("x", grid=[0.0, big]),
        lambda: lawfit.parse("1" + "0" * 400 + " * N"),
        lambda: lawfit.law("E + 10**400 * N**alpha", ["N"]),
        lambda: lawfit.law("E + 10.0**400.0 * N**alpha", ["N"]),
        lambda: lawfit.symbols("N")[0] * big,
    ]
    for case in cases:
        with pytest.raises(ValueError, match="float64|finite|not valid"):
            case()



def test_object_columns_take_numbers_only():
    """Regression: an object column raised OverflowError for an integer beyond float64 and took True as 1.
    Numeric text stays a number (a CSV column with one bad cell arrives as text); the error names the bad cell."""
    runs = synthetic(6, 0)
    start = np.array([FUZZ_START["chinchilla"]])
    text = pd.Series([f"{v:.17g}" for v in runs["N"]], dtype=object)
    ref = lawfit.fit(CHIN, runs, starts=start)
    assert lawfit.fit(CHIN, {**runs, "N": text}, starts=start).fun == ref.fun
    text[3] = "oops"
    with pytest.raises(TypeError, match="column 'N' .* non-numeric value 'oops' at row 3"):
        lawfit.fit(CHIN, {**runs, "N": text}, starts=start)
    N = runs["N"].astype(object)
    N[2] = True
    with pytest.raises(TypeError, match="non-numeric value True at row 2"):
        lawfit.fit(CHIN, {**runs, "N": N}, starts=start)
    N[2] = HUGE_INT
    with pytest.raises(ValueError, match="column 'N' .* too large for float64 at row 2"):
        lawfit.fit(CHIN, pd.DataFrame({**runs, "N": N}), starts=start)
    # Decimal, Fraction and numpy scalars in an object column are numbers; None is a missing value
    from decimal import Decimal
    from fractions import Fraction

    N = runs["N"].astype(object)
    N[0], N[1], N[2] = Decimal(N[0]), Fraction(N[1]), np.float32(N[2])
    assert lawfit.fit(CHIN, {**runs, "N": N}, starts=start).success
    N[3] = None
    with pytest.raises(ValueError, match="non-finite value nan at row 3"):
        lawfit.fit(CHIN, {**runs, "N": N}, starts=start)



def test_wrong_types_in_law_construction_are_type_errors():
    """Regression: these raised AttributeError (or a misleading "law has no parameters")."""
    for case, msg in [
        (lambda: lawfit.law(5, ["N"]), "expression must be a string or a lawfit Expr"),
        (lambda: lawfit.law(None, ["N"]), "expression must be a string or a lawfit Expr"),
        (lambda: lawfit.Law("x", 5, ["N"], [lawfit.Param("a")]), "expression must be a string"),
        (lambda: lawfit.Law("x", "a * N", ["N"], [5]), "parameters must be lawfit.Param objects"),
        (lambda: lawfit.law("a * N", ["N"], params=[5]), "params must be names"),
        (lambda: lawfit.Param(5), "parameter name must be a string"),
        (lambda: lawfit.Param("x", internal=5), "internal name must be a string"),
        (lambda: lawfit.Param("x", lower="0"), "lower bound must be a real number"),
        (lambda: lawfit.Param("x", grid=[np.complex128(1 + 2j)]), "grid value must be a real number"),
        (lambda: lawfit.Param("x", grid="abc"), "grid must be a sequence of numbers"),
    ]:
        with pytest.raises(TypeError, match=msg):
            case()
    with pytest.raises(ValueError, match="grid values .* must be finite"):
        lawfit.Param("x", grid=[0.0, math.nan])
    with pytest.raises(ValueError, match="internal name '1p' is not an identifier"):
        lawfit.Param("x", internal="1p")



def test_deeply_nested_expressions_are_value_errors():
    """Regression: RecursionError from the parser, the compiler or str() of a deep expression."""
    for text in ("-" * 5000 + "N", "+".join(["N"] * 20000), "a * N" + " + N" * 3000, "exp(" * 900 + "N" + ")" * 900):
        with pytest.raises(ValueError, match="nested too deeply|too many nested parentheses") as err:
            lawfit.law(text, ["N"])
        assert len(str(err.value)) < 300  # the message quotes the start of the text, not all of it
    N, a = lawfit.symbols("N a")
    e = a * N
    for _ in range(3000):
        e = e + N
    with pytest.raises(ValueError, match="nested too deeply"):
        lawfit.law(e, ["N"])
    with pytest.raises(ValueError, match="nested too deeply"):
        lawfit.Law("deep", e, ["N"], [lawfit.Param("a")])



def test_folded_constants_that_overflow_are_rejected_when_the_law_is_built():
    """Regression: 10**400 folded by the compiler raised OverflowError; 1e300 * 1e300 folded to inf and was
    only rejected by the core at the first fit ("law program instruction 1: constant is not finite")."""
    for text in ("E + 1e300 * 1e300 * N**alpha", "E + 10**400 * N**alpha", "E + N**alpha / 1e-320"):
        with pytest.raises(ValueError, match="constant that is not finite"):
            lawfit.law(text, ["N"])



def test_option_checks():
    """Regression: derivatives=1.0 reached the core (a TypeError listing its signature), True was taken as 1;
    a scalar weight was accepted as one row; strings were accepted as bounds ("0.5"), numpy complex numbers as
    bounds and fixed values (imaginary part dropped with a ComplexWarning)."""
    runs = synthetic(1, 0)
    start = np.array(FUZZ_START["chinchilla"])
    for d in (1.0, True, "1"):
        with pytest.raises(ValueError, match="derivatives must be 0, 1 or 2"):
            lawfit.evaluate(CHIN, runs, start, derivatives=d)
    with pytest.raises(ValueError, match=r"weights must have shape \(1,\) or \(n_rows, 1\), got \(\)"):
        lawfit.minimize(CHIN, runs, start, weights=2.0)
    with pytest.raises(ValueError, match="bounds for 'alpha' must be a pair"):
        lawfit.minimize(CHIN, runs, start, bounds={"alpha": ("0", "1")})
    with pytest.raises(ValueError, match="bounds for 'alpha' must be a pair"):
        lawfit.minimize(CHIN, runs, start, bounds={"alpha": "01"})
    # numpy complex numbers: float() dropped the imaginary part with only a ComplexWarning
    with pytest.raises(ValueError, match="bounds for 'alpha' must be a pair"):
        lawfit.minimize(CHIN, runs, start, bounds={"alpha": np.array([1 + 1j, 2])})
    with pytest.raises(TypeError, match="fixed value of parameter 'alpha' must be a number"):
        lawfit.minimize(CHIN, runs, start, fixed={"alpha": np.complex128(0.3)})
    # clearer messages for options of the wrong type (were "dictionary update sequence element #0 has length 1",
    # "unhashable type: 'list'", "'int' object is not iterable", "object of type 'int' has no len()")
    with pytest.raises(TypeError, match="columns must be a mapping"):
        lawfit.minimize(CHIN, runs, start, columns="N")
    with pytest.raises(ValueError, match=r"unknown loss \[\]"):
        lawfit.minimize(CHIN, runs, start, loss=[])
    with pytest.raises(TypeError, match="tie must be a list of groups"):
        lawfit.minimize(CHIN, runs, start, tie=5)
    with pytest.raises(ValueError, match="each tie must name at least two parameters, got 5"):
        lawfit.minimize(CHIN, runs, start, tie=[5])
    # numpy real scalars and 0-d arrays are numbers
    b = lawfit.minimize(CHIN, synthetic(6, 0), start, fixed={"alpha": np.array(0.3)},
                        bounds={"beta": (np.float32(0), np.int64(1))})
    assert b.theta[0, 3] == 0.3



def test_natural_values_of_a_diverged_fit_are_inf_without_a_warning():
    """Regression: exp() of an internal value above 709 warned "overflow encountered in exp" (an error under
    pytest) when a fit reported natural parameters."""
    runs = synthetic(6, 0)
    b = lawfit.minimize(CHIN, runs, np.array([[800.0, 6.0, 6.0, 0.3, 0.3]]), keep="all", max_iter=1)
    assert b.natural()["E"][0, 0] == math.inf
    assert lawfit.laws.get("chinchilla").params[0].to_natural(1e308) == math.inf


# -- a huge start, overflow in the allocation, absurd bootstrap sizes --------------------------------------------------
def test_huge_start_does_not_stop_as_converged_far_from_a_stationary_point():
    """Regression: from e = 1e308 the first step's norm overflowed to inf, the trust radius became inf, and the
    fit stopped after 3 iterations as CONVERGED with objective 1.1e306. Norms are now computed without
    overflow and the radius stays finite: the fit walks down to the data."""
    runs = synthetic(12, 0)
    b = lawfit.minimize(CHIN, runs, np.array([[1e308, 6.0, 6.0, 0.3, 0.3]]), keep="all", max_iter=200)
    assert b.fun[0, 0] < 1.0


def test_allocation_overflow_is_a_value_error():
    values = {"E": 1.7, "A": HUGE_INT, "B": 400.0, "alpha": 0.3, "beta": 0.3}
    with pytest.raises(ValueError):
        lawfit.allocation.compute_optimal(values, 1e21, law="chinchilla")



def test_allocation_overflow_with_small_exponents():
    values = {"E": 1.0, "A": 129.0, "B": 0.0625, "alpha": 0.0078125, "beta": 0.00390625}
    try:
        df = lawfit.allocation.compute_optimal(values, 1e15, law="chinchilla")
    except ValueError:
        return
    assert np.all(np.isfinite(df[["N_opt", "D_opt", "loss"]].to_numpy()))



def test_bootstrap_of_absurd_size_is_a_value_error():
    with pytest.raises(ValueError):
        lawfit.bootstrap(LAW["saturating_N"], synthetic(3, 0), 2**40, starts=np.array([FUZZ_START["saturating_N"]]))
