"""Options, starts, weights and parameter arrays of the public calls (fit, minimize, evaluate, bootstrap and the
allocation): valid ones, and malformed ones of every type, name, shape and value."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import lawfit
from lawfit import engine

from fuzz.helpers import (BOUND_VALUES, GOOD_START, HUGE_INT, LAW, LAWS_SMALL, RAW, check_batch, check_fit,
                          check_points, fuzz, rejected, Src, synthetic)


HASHABLE_GARBAGE = [None, True, 0, 1, -1, HUGE_INT, 0.0, math.nan, math.inf, "", "a", "log_", b"x", (1,), (),
                    frozenset(), 1 + 2j, np.int64(3)]
NAMES = {name: law.param_names + law.internal_names + ["gamma", "", "N", "loss"] for name, law in LAW.items()}
LOSS_NAMES = list(engine.LOSSES)
SOLVER_OPTIONS = {"xtol": (1e-12, 1e-6), "ftol": (0.0, 1e-10), "radius0": (0.01, 1.0), "irls": (0.0, 1.0),
                  "switch_rtol": (0.0, 1e-2)}
TIES = {"chinchilla": [("alpha", "beta")], "chinchilla_linear_e": [("alpha", "beta"), ("A", "B")],
        "chinchilla_tied": [("a", "b")], "saturating_N": [("E", "A")], "power_law_N": [],
        "kaplan": [("alpha_N", "alpha_D"), ("Nc", "Dc")]}


def name_of(src: Src, law):
    return src.choose(NAMES[law.name]) if src.int(0, 5) else src.choose(HASHABLE_GARBAGE)


def value(src: Src):
    k = src.int(0, 5)
    return src.uniform(-5, 30) if k <= 2 else src.choose(BOUND_VALUES) if k <= 4 else src.garbage()


def bounded(v, k: int):
    """Garbage, except that a valid but large count (iterations, resamples) becomes k: a case must stay cheap.
    (bootstrap=2**40 was a MemoryError: test_bootstrap_of_absurd_size_is_a_value_error, tests/test_errors.py.)"""
    return k if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and k < v < 2**63 else v


def valid_options(src: Src, law) -> dict:
    """Keyword arguments of lawfit.fit that are all valid (bounds contain the law's good start)."""
    base = GOOD_START[law.name]
    kw: dict = {}
    if src.flip():
        kw["bounds"] = {}
        for _ in range(src.int(1, 2)):
            i = src.int(0, law.n_params - 1)
            p = law.params[i]
            lo = None if src.rare(4) else base[i] - src.uniform(0, 2)
            hi = None if src.rare(4) else base[i] + src.uniform(0, 2)
            if src.flip() and p.transform == "log":  # natural name, natural scale
                kw["bounds"][p.name] = tuple(None if v is None else math.exp(v) for v in (lo, hi))
            else:
                kw["bounds"][p.internal] = (lo, hi)
    if src.flip():
        i = src.int(0, law.n_params - 1)
        kw["fixed"] = {law.params[i].internal: base[i]}  # inside any bounds above
    if TIES[law.name] and src.rare(3):
        kw["tie"] = [src.choose(TIES[law.name])] if src.flip() else dict([src.choose(TIES[law.name])])
    if src.rare(3):
        kw["loss"] = src.choose(LOSS_NAMES)
    if src.rare(4):
        kw["delta"] = src.uniform(1e-4, 1)
    if src.rare(5):
        kw["asymmetry"] = src.uniform(0.1, 10)
    if src.rare(4):
        kw["threads"] = src.choose([None, 1, 2, 2**40])
    kw["max_iter"] = src.int(1, 10)
    if src.rare(6):
        opt = src.choose(list(SOLVER_OPTIONS))
        kw[opt] = src.uniform(*SOLVER_OPTIONS[opt])
    if src.rare(5):
        kw["columns"] = {"N": "N", "loss": "loss"}
    if src.rare(12):
        kw["bootstrap"], kw["seed"] = 2, src.int(0, 10)
    if src.rare(10):
        kw["backend"] = src.choose(["cpu", "auto"])
    return kw


def bad_option(src: Src, law, kw: dict) -> None:
    """Replace or add one option with a malformed value."""
    key = src.choose(["bounds", "fixed", "tie", "loss", "delta", "asymmetry", "threads", "max_iter", "xtol", "ftol",
                      "radius0", "irls", "switch_rtol", "columns", "bootstrap", "seed", "backend", "maxiter",
                      "weights"])
    k = src.int(0, 2)
    if key == "bounds":
        kw[key] = ({name_of(src, law): (value(src), value(src)) if src.int(0, 4) else src.garbage()
                    for _ in range(src.int(1, 2))} if k else src.garbage())
    elif key == "fixed":
        kw[key] = {name_of(src, law): value(src) for _ in range(src.int(1, 2))} if k else src.garbage()
    elif key == "tie":
        kw[key] = ([[name_of(src, law) for _ in range(src.int(0, 3))] for _ in range(src.int(1, 2))] if k == 0 else
                   {name_of(src, law): name_of(src, law)} if k == 1 else src.garbage())
    elif key == "columns":
        kw[key] = ({src.choose(["N", "D", "loss", "Q"]): src.choose(["N", "D", "loss", "x"])
                    for _ in range(src.int(1, 2))} if k else src.garbage())
    elif key in ("max_iter", "bootstrap"):
        kw[key] = bounded(src.garbage(), 10 if key == "max_iter" else 3)
    elif key == "weights":
        kw[key] = None  # set by the test
    else:
        kw[key] = src.choose([0.0, -1.0, 2.0, 1e300, math.nan, math.inf]) if k == 0 else src.garbage()


def starts_for(src: Src, law, good: bool = True):
    """Starts for law (which may carry the likelihood's sigma): valid near the good start, or malformed."""
    base = np.r_[GOOD_START[law.name], [0.0] * (law.n_params - len(GOOD_START[law.name]))]
    P = law.n_params
    if good:
        kind = src.int(0, 2)
        if kind == 0:
            S = src.int(1, 2)
            return base + src.uniform(0, 0.3) * np.arange(S * P).reshape(S, P) / (S * P)
        if kind == 1:  # a one-parameter grid around the others' good values
            i = src.int(0, P - 1)
            return {law.params[i].internal: [base[i], base[i] + src.uniform(0, 0.3)]}
        nat = {p.name: float(p.to_natural(base[i])) for i, p in enumerate(law.params)}
        return nat
    kind = src.int(0, 5)
    if kind == 0:
        return {src.choose(law.internal_names + ["gamma"]): [src.uniform(-3, 30) for _ in range(src.int(0, 2))]
                if src.flip() else src.garbage()}
    if kind == 1:
        nat = {p.name: float(p.to_natural(base[i])) for i, p in enumerate(law.params)}
        nat[src.choose(list(nat))] = src.garbage()
        return nat
    if kind == 2:  # the default grids of these two laws have at most 180 starts; chinchilla's 4500
        return src.choose(["grid", "hoffmann", "nowhere", None] if law.name in ("saturating_N", "power_law_N")
                          else ["hoffmann", "nowhere"])
    if kind == 3:
        shape = src.choose([(P,), (1, P + 1), (1, P - 1), (0, P), (2, 1, P), (1, 1, P), (P, 1)])
        return np.resize(base, shape) if 0 not in shape else np.zeros(shape)
    if kind == 4:
        return np.full((1, P), src.choose([math.nan, math.inf, 1e308, -1e308, 1e5]))
    return src.garbage()


WEIGHT_CELLS = [1.0, 0.0, 2.0, 0.5, -1.0, math.nan, math.inf, 1e308, "1", None]


@fuzz("fit_options", 2000)
@given(raw=RAW, lawname=st.sampled_from(LAWS_SMALL), n=st.integers(1, 6), seed=st.integers(0, 1000))
def test_fit_with_arbitrary_options(raw, lawname, n, seed):
    """Valid options, then (in about two cases of three) one or two of them, the starts or the weights
    malformed: wrong types, names, shapes, values."""
    src = Src(raw)
    law = LAW[lawname]
    runs = synthetic(n, seed)
    kw = valid_options(src, law)
    bad = src.choose([0, 1, 1, 2])
    for _ in range(bad):
        bad_option(src, law, kw)
    fitted = law.with_sigma() if isinstance(kw.get("loss"), str) and kw["loss"] == "huber_likelihood" else law
    starts = starts_for(src, fitted, good=not (bad and src.rare(3)))
    weights = kw.pop("weights", 1)
    if weights is None or src.rare(4):
        weights = [src.choose(WEIGHT_CELLS[:4] if weights == 1 else WEIGHT_CELLS) for _ in range(n)]
        if weights != 1 and src.rare(3):
            weights = src.garbage()
        elif src.flip():
            weights = np.array(weights, dtype=object if any(isinstance(w, str) or w is None for w in weights)
                               else float)
    else:
        weights = None
    res = rejected(lambda: lawfit.fit(law, runs, starts=starts, weights=weights, **kw))
    if res is None:
        return
    loss = kw.get("loss", "huber")
    check_fit(res)
    # the constraints of the fit, rebuilt from the same arguments: every start's end point obeys them
    con = engine.constraints(res.law, kw.get("bounds"), kw.get("fixed"), kw.get("tie"))
    check_points(res.law, con, res.start_theta, res.start_status, res.start_fun, loss)


@fuzz("minimize_evaluate_arrays", 1100)
@given(raw=RAW, lawname=st.sampled_from(LAWS_SMALL), n=st.integers(1, 5), R=st.integers(0, 3),
       S=st.integers(0, 2), frame=st.booleans())
def test_minimize_and_evaluate_with_arbitrary_arrays(raw, lawname, n, R, S, frame):
    """Weights, starts and parameter arrays of every shape, dtype and layout, valid in about half the cases."""
    src = Src(raw)
    law = LAW[lawname]
    runs = synthetic(n, src.int(0, 1000))
    if frame:
        runs = pd.DataFrame(runs)
    P = law.n_params
    base = np.array(GOOD_START[lawname])
    if src.flip():  # valid weights
        shape = src.choose([(n,), (max(R, 1), n), (1, n)])
        w = None if src.rare(3) else np.random.default_rng(R).integers(0, 3, shape).astype(float)
        if w is not None and w.ndim == 2 and src.flip():
            w = np.asfortranarray(w)
    else:
        shape = src.choose([(n,), (R, n), (1, n), (R, n + 1), (n - 1,), (2, 2, n), ()])
        kind = src.int(0, 2)
        if kind == 0:
            w = np.full(shape, src.choose([-1.0, math.nan, math.inf, 0.0, 1e300]))
        elif kind == 1:
            w = np.ones(shape, dtype=src.choose([bool, object, complex, str, np.int8]))
        else:
            w = src.garbage()
    rows = w.shape[0] if isinstance(w, np.ndarray) and w.ndim == 2 else 1
    keep = src.choose(["best", "all"]) if src.int(0, 7) else src.garbage()
    if src.flip():  # valid starts
        shape = src.choose([(max(S, 1), P), (P,), (rows, max(S, 1), P)])
        starts = np.resize(base, shape) + src.uniform(-0.1, 0.1)
    else:
        shape = src.choose([(S, P), (P,), (max(R, 1), S, P), (R, S, P), (S, P + 1), (1, 1, 1, P)])
        starts = np.resize(base, shape) if 0 not in shape else np.zeros(shape)
        kind = src.int(0, 2)
        if kind == 0:
            starts = starts.astype(object)
        elif kind == 1:
            starts = np.full(shape, src.choose([math.nan, math.inf, 1e308, -1e308]))
        else:
            starts = src.garbage()
    b = rejected(lambda: lawfit.minimize(law, runs, starts, weights=w, keep=keep, max_iter=5, threads=1))
    if b is not None:
        check_batch(b)
        assert b.status.shape[0] == rows
    if src.flip():  # valid parameters, possibly non-contiguous or non-finite (a per-row NaN objective)
        shape = src.choose([(P,), (rows, P)] if rows > 1 else [(P,), (2, P), (0, P), (3, P)])
        params = np.resize(base, shape) + src.uniform(-0.5, 0.5)
        kind = src.int(0, 2)
        if kind == 1:
            params = np.asfortranarray(np.atleast_2d(params))[:, ::-1][:, ::-1]
        elif kind == 2:
            params = params + src.choose([math.nan, math.inf, 1e308, -50.0])
    else:
        shape = src.choose([(P + 1,), (2, 2, P), (1, P - 1), (0,)])
        params = np.resize(base, shape) if 0 not in shape else np.zeros(shape)
        if src.flip():
            params = src.garbage()
    derivatives = src.choose([0, 1, 2]) if src.int(0, 7) else src.garbage()
    loss = src.choose(["huber", "squared", "asymmetric_huber"]) if src.int(0, 7) else src.garbage()
    ev = rejected(lambda: lawfit.evaluate(law, runs, params, weights=w, derivatives=derivatives, loss=loss,
                                          threads=1))
    if ev is not None:
        B = np.atleast_2d(params).shape[0]
        assert ev.fun.shape == (B,)
        assert np.all(~(ev.fun < 0))
        p2 = np.atleast_2d(params)
        finite = np.all(np.isfinite(p2), axis=1) & (np.max(np.abs(p2), axis=1, initial=0.0) < 100)
        if lawname.startswith("chinchilla") or lawname in ("saturating_N", "power_law_N"):
            assert np.all(np.isfinite(ev.fun[finite]))  # sums of exponentials of affine terms: finite
        if derivatives >= 1:
            assert ev.grad.shape == (B, P)
        if derivatives == 2:
            assert ev.hess.shape == (B, P, P)
            np.testing.assert_array_equal(ev.hess, np.swapaxes(ev.hess, 1, 2))


# Moderate magnitudes only: overflow in the allocation is pinned by test_allocation_overflow_* in
# tests/test_errors.py.
ALLOC_PARAMS = st.fixed_dictionaries({
    "E": st.one_of(st.floats(0.1, 5), st.sampled_from([0.0, -1.0, math.nan])),
    "A": st.one_of(st.floats(10, 1e3), st.sampled_from([0.0, -1.0])),
    "B": st.one_of(st.floats(10, 1e3), st.sampled_from([0.0, -1.0])),
    "alpha": st.one_of(st.floats(0.1, 0.8), st.sampled_from([0.0, -0.3])),
    "beta": st.one_of(st.floats(0.1, 0.8), st.sampled_from([0.0, -0.3]))})


@fuzz("allocation", 250)
@given(values=ALLOC_PARAMS,
       C=st.one_of(st.floats(1e18, 1e26), st.lists(st.floats(1e18, 1e26), max_size=3),
                   st.sampled_from([0.0, -1.0, math.nan, math.inf, "1e20", [], None])),
       method=st.sampled_from(["auto", "closed", "numeric", "exact"]),
       target=st.one_of(st.floats(2.0, 10.0), st.sampled_from([0.0, -1.0, math.nan])))
def test_allocation_with_arbitrary_parameters(values, C, method, target):
    df = rejected(lambda: lawfit.allocation.compute_optimal(values, C, law="chinchilla", method=method))
    if df is not None:
        assert len(df) == np.atleast_1d(C).size and set(df.columns) >= {"C", "N_opt", "D_opt", "loss"}
    out = rejected(lambda: lawfit.allocation.budget_for_loss(values, target, law="chinchilla"))
    if out is not None:
        assert len(out) == 1


@fuzz("bootstrap", 200)
@given(n_runs=st.integers(2, 5), seed_data=st.integers(0, 100),
       n=st.one_of(st.integers(1, 3), st.sampled_from([0, -1, 2.5, "3", None, True])),
       seed=st.one_of(st.integers(0, 5), st.sampled_from([None, -1, 1.5, "s", [1, 2]])),
       strategy=st.sampled_from(["smart", "fixed", "exhaustive", "nope", None]),
       resamples=st.sampled_from(["none", "zeros", "float", "out_of_range", "wide", "list", "garbage"]))
def test_bootstrap_with_arbitrary_options(n_runs, seed_data, n, seed, strategy, resamples):
    runs = synthetic(n_runs, seed_data)
    kw = {"n": n, "seed": seed, "strategy": strategy, "starts": np.array([GOOD_START["saturating_N"]]),
          "max_iter": 5, "threads": 1}
    kw["resamples"] = {"none": None, "zeros": np.zeros((2, n_runs), dtype=int), "float": np.zeros((2, n_runs)),
                       "out_of_range": np.full((1, n_runs), n_runs), "wide": np.zeros((1, n_runs + 1), dtype=int),
                       "list": [[0] * n_runs], "garbage": "x"}[resamples]
    res = rejected(lambda: lawfit.bootstrap(LAW["saturating_N"], runs, **kw))
    if res is not None:
        assert res.status.shape == (res.n,) and np.all((res.status >= 0) & (res.status <= 5))
        assert res.theta.shape == (res.n, 3)
