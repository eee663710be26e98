"""User laws: random expressions compiled and checked against the compiler's NumPy evaluation, garbage law text
to the parser, and garbage arguments to the Param and Law constructors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lawfit
from lawfit.compiler import program_predict
from lawfit.data import prepare

from fuzz.helpers import BOUND_VALUES, RAW, check_batch, fuzz, rejected, Src, synthetic


LEAVES = ["N", "D", "E", "A", "B", "alpha", "beta", "G", "const"]
CONSTANTS = [0, 1, 2, 0.5, -1, 1e-300, 1e300, 10**400, 3.5, 1e-3, -0.5]
UNARY = ["neg", "exp", "log", "expm1", "log1p", "sqrt"]
BINARY = ["+", "-", "*", "/", "**", "lse"]


def expression(src: Src, depth: int = 0) -> str:
    """Expression text over variables N, D and parameters E, A, B, alpha, beta, G (depth <= 4)."""
    if depth >= 4 or src.rare(4):
        leaf = src.choose(LEAVES)
        return repr(src.choose(CONSTANTS)) if leaf == "const" else leaf
    if src.flip():
        op = src.choose(UNARY)
        a = expression(src, depth + 1)
        return f"-({a})" if op == "neg" else f"{op}({a})"
    op = src.choose(BINARY)
    a, b = expression(src, depth + 1), expression(src, depth + 1)
    return f"lse({a}, {b})" if op == "lse" else f"({a}) {op} ({b})"


RUNS5 = {seed: synthetic(5, seed) for seed in range(8)}
for _r in RUNS5.values():
    _r["C"] = 6 * _r["N"] * _r["D"]


@fuzz("user_laws", 1000)
@given(raw=RAW, log_params=st.sets(st.sampled_from(["E", "A", "B", "G"])),
       variables=st.sampled_from([("N", "D"), ("N",), ("N", "D", "C")]), seed=st.integers(0, 7),
       scale=st.sampled_from([0.0, 0.3, 3.0]), log_space=st.booleans(), bounded=st.booleans())
def test_user_laws_from_random_expressions(raw, log_params, variables, seed, scale, log_space, bounded):
    text = expression(Src(raw))
    bounds = {"alpha": (0.0, 2.0)} if bounded and "alpha" in text else None
    law = rejected(lambda: lawfit.law(text, variables=list(variables), log_params=log_params & set(text.split()),
                                      log_space=log_space, bounds=bounds))
    if law is None:
        return
    assert 1 <= law.n_params <= 12
    law.core_program()  # every program the compiler emits passes the core's validation
    runs = RUNS5[seed]
    lo = np.array([p.internal_bounds()[0] for p in law.params])
    hi = np.array([p.internal_bounds()[1] for p in law.params])
    theta = np.clip(np.random.default_rng(seed).normal(scale=scale, size=(2, law.n_params)), lo, hi)
    ds = prepare(law, runs)
    ev = lawfit.evaluate(law, ds, theta, derivatives=2, loss="squared", threads=1)
    assert ev.fun.shape == (2,) and ev.grad.shape == ev.hess.shape[:2] == (2, law.n_params)
    # the compiled kernel agrees with the compiler's NumPy evaluation of the same program
    for i in range(2):
        with np.errstate(all="ignore"):
            r = program_predict(law.program, ds.features, theta[i]) - ds.target
            ref = float(np.sum(0.5 * r * r))
        if np.isfinite(ref) and np.isfinite(ev.fun[i]):
            assert ev.fun[i] == pytest.approx(ref, rel=1e-9, abs=1e-300), (text, theta[i])
    if law.n_params > np.unique(ds.features.T, axis=0).shape[0]:  # more parameters than distinct runs: refused
        with pytest.raises(ValueError, match="free parameters"):
            lawfit.minimize(law, ds, theta[:1], max_iter=4, keep="all", threads=1)
        return
    b = lawfit.minimize(law, ds, theta[:1], max_iter=4, keep="all", threads=1)
    check_batch(b, "squared")


TOKENS = ["N", "D", "E", "A", "alpha", "+", "-", "*", "/", "**", "^", "(", ")", ",", "exp", "log", "lse",
          "sqrt", "1", "0.5", "1e400", ".", "[", "]", "lambda", ":", "if", "else", " ", "x", "__import__",
          "'s'", "=", "==", "@", "%", "//", "~", "not", "and", "True", "None", "1j", "\x00", "\n", "#", "9" * 400]


@fuzz("parse_text", 800)
@given(text=st.one_of(st.text(max_size=30), st.lists(st.sampled_from(TOKENS), max_size=12).map("".join),
                      st.integers(1, 3000).map(lambda k: "-" * k + "N"),
                      st.integers(1, 3000).map(lambda k: "+".join(["N"] * k)),
                      st.integers(1, 400).map(lambda k: "(" * k + "N" + ")" * k),
                      st.integers(1, 1000).map(lambda k: "exp(" * k + "N" + ")" * k)),
       as_law=st.booleans())
def test_parse_and_law_with_garbage_text(text, as_law):
    if as_law:
        law = rejected(lambda: lawfit.law(text, variables=["N"]))
        if law is not None:
            assert law.n_params >= 1
            law.core_program()
    else:
        expr = rejected(lambda: lawfit.parse(text))
        if expr is not None:
            assert isinstance(expr, lawfit.expr.Expr)


PARAM_NAMES = ["x", "E", "alpha", "1x", "", "log_x"]
TRANSFORMS = ["identity", "log", "sqrt"]
INTERNALS = ["", "p", "log_p", "1p"]
VARIABLES = [["N"], "N", ["N", "N"], ["x"], [], "N, D"]
EXPRESSIONS = ["x * N", "x / N", "N", "x", "x + 1e300 * 1e300", "x ** 10 ** 400"]


@fuzz("param_law_constructors", 700)
@given(raw=RAW)
def test_param_and_law_constructors_with_garbage(raw):
    src = Src(raw)

    def arg(options):
        return src.choose(options) if src.int(0, 3) else src.garbage()

    lower = src.uniform(-10, 10) if src.flip() else arg(BOUND_VALUES)
    upper = src.uniform(-10, 10) if src.flip() else arg(BOUND_VALUES)
    grid = [src.uniform(-5, 5) for _ in range(src.int(0, 3))] if src.int(0, 3) else src.garbage()
    p = rejected(lambda: lawfit.Param(arg(PARAM_NAMES), arg(TRANSFORMS), lower, upper, arg(INTERNALS), grid))
    if p is None:
        return
    assert p.name.isidentifier() and p.internal.isidentifier() and not p.lower > p.upper
    assert all(math.isfinite(g) for g in p.grid)
    law = rejected(lambda: lawfit.Law("fuzz", arg(EXPRESSIONS), arg(VARIABLES), [p]))
    if law is not None:
        assert law.n_params == 1
        law.core_program()
