"""The extension boundary: lawfit._core (other libraries may call it directly) given random instruction arrays
and malformed arrays and scalars; and the deterministic regressions found there (program size limits, dtypes
checked instead of cast, weights and bounds, NOT_RUN rows)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawfit import Status, _core

from fuzz.helpers import (CHIN, CHIN_PROG, GOOD_START, RAW, _chin_minimize_args, core_data, fuzz, rejected, Src,
                          with_loss)


INT_ARRAY_GARBAGE = [
    np.array([0.5]), np.array(["1"]), np.array([1 + 0j]), np.array([2**40]), np.array([2**63], dtype=np.uint64),
    np.array([True]), np.array([None], dtype=object), [1.5], "abc", None, 3, [[1, 2], [3]], np.zeros((2, 2), int),
    np.array([-(2**31) - 1]), np.array([np.datetime64("2020-01-01")]), object(), np.array([1, 2], dtype=object)]
BAD_OPCODES = [-1, 13, 99, 2**31 - 1, -(2**31)]
BAD_CONSTANTS = [0.0, 1.0, -2.5, 1e300, -1e-300, math.inf, math.nan]
SCALAR_GARBAGE = [2**31, -(2**40), 1.0, "2", None, -3, 0, 13, 14]


def program_arrays(src: Src) -> list:
    """Arguments of _core.Program: instruction arrays, mostly well-formed, with occasional corruption of
    operands (out of range, forward references, bad opcodes and flags, non-finite constants) and of the
    arrays themselves (dtype, shape, length, type)."""
    L = src.int(0, 24)
    P = src.int(1, 12)
    F = src.int(0, 3)
    op, a, b, imm, args, flags = [], [], [], [], [], []
    bad = src.rare(4)
    for i in range(L):
        leaf = i == 0 or src.rare(3)
        o = src.int(0, 2) if leaf else src.int(3, 12)
        ia = ib = 0
        v = 0.0
        if o == 0:
            v = src.choose(BAD_CONSTANTS) if bad else src.uniform(-5, 5)
        elif o == 1:
            ia = src.int(-1, F) if bad else src.int(0, max(F - 1, 0))
            if F == 0 and not bad:
                o, v = 0, 1.0
        elif o == 2:
            ia = src.int(-1, P) if bad else src.int(0, P - 1)
        elif o == 10:
            k = src.int(0 if bad else 1, 3)
            ia, ib = len(args), k
            for _ in range(k):
                args.append(src.int(-1, i) if bad else src.int(0, i - 1))
                flags.append(src.choose([0, 0, 1, 2] if bad else [0, 0, 1]))
            if not bad and all(f == 1 for f in flags[ia:]):
                flags[ia] = 0
            if bad and src.flip():
                ia = src.int(-2, len(args) + 2)
        else:
            ia = src.int(-2, i + 1) if bad else src.int(0, i - 1)
            ib = src.int(-2, i + 1) if bad else src.int(0, i - 1)
        if bad and src.rare(8):
            o = src.choose(BAD_OPCODES)
        op.append(o)
        a.append(ia)
        b.append(ib)
        imm.append(v)
    arrays = [np.array(op, np.int32), np.array(a, np.int32), np.array(b, np.int32), np.array(imm, float),
              np.array(args, np.int32), np.array(flags, np.int32), P, F]
    if src.rare(5):  # wrong dtype, shape, length or type of one argument
        j = src.int(0, 7)
        if j < 6:
            x = arrays[j]
            variants = [
                lambda: x.astype(np.int64), lambda: x.astype(np.uint8), lambda: x.astype(np.float32),
                lambda: x[::-1], lambda: x[:-1], lambda: np.repeat(x, 2)[::2], lambda: x.reshape(-1, 1),
                lambda: x.astype(np.int64) + 2**32, lambda: x.astype(object)]
            k = src.int(0, len(INT_ARRAY_GARBAGE) + len(variants) - 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # casting NaN constants to integers: garbage on purpose
                m = len(INT_ARRAY_GARBAGE)
                arrays[j] = INT_ARRAY_GARBAGE[k] if k < m else variants[k - m]()
        else:
            arrays[j] = src.choose(SCALAR_GARBAGE)
    return arrays


@fuzz("core_program", 1400)
@given(raw=RAW, n=st.integers(0, 70), seed=st.integers(0, 50), loss=st.integers(0, 2),
       derivatives=st.integers(0, 2))
def test_core_program_with_random_instructions(raw, n, seed, loss, derivatives):
    arrays = program_arrays(Src(raw))
    prog = rejected(lambda: _core.Program(*arrays))
    if prog is None:
        return
    P, F = prog.n_params, prog.n_features
    assert prog.n_instructions == len(arrays[0]) and 0 <= prog.hessian_entries() <= P * (P + 1) // 2
    X, y = core_data(F, n, seed)
    theta = np.random.default_rng(seed).normal(size=(3, P))
    f, g, h = _core.evaluate(prog, X, y, theta, None, _core.Loss(loss, 1e-3, 1.0), derivatives, 1)
    assert f.shape == (3,)
    assert (g is None) == (derivatives < 1) and (h is None) == (derivatives < 2)
    if h is not None:
        assert h.shape == (3, P, P)
    nf = max(1, P - 1)
    free_index = np.r_[np.arange(nf), -np.ones(P - nf)].astype(np.int32)
    out = _core.minimize(prog, X, y, None, theta[:, :nf], free_index, np.zeros(P), np.full(nf, -10.0),
                         np.full(nf, 10.0), _core.Loss(loss, 1e-3, 1.0),
                         _core.SolverOptions(4, 1e-10, 1e-14, 0.05, 0.25, 1e-4),
                         True, 1)
    status = out["status"]
    assert status.shape == (3,) and np.all((status >= 0) & (status <= 5))
    assert np.all((out["x"] >= -10.0) & (out["x"] <= 10.0))
    if n == 0:
        assert np.all(status == Status.NOT_RUN)


BAD_PROGRAMS = [None, CHIN, "prog", 1, CHIN.program]
BAD_SCALARS = {  # per scalar argument: values outside its domain or of the wrong type
    "loss_kind": [-1, 6, 2**40, 1.0, "0", None],
    "delta": [0.0, -1.0, math.nan, math.inf, "x", None],
    "asymmetry": [0.0, -1.0, math.nan, math.inf, "x"],
    "derivatives": [-1, 3, 1.0, None, 2**40],
    "threads": [2**31, 1.5, None, "2"],
    "max_iter": [0, -2, 2**31, 1.0, None],
    "xtol": [0.0, -1.0, 1.0, math.nan, "x"], "ftol": [-1.0, 1.0, math.nan, math.inf],
    "radius0": [0.0, -1.0, math.inf, math.nan], "irls": [-1.0, math.inf, math.nan],
    "switch_rtol": [-1.0, 1.0, math.nan], "keep_all": ["x", None, 2.5],
    "progress": [5, "x", object()],
}
# valid values that stress the kernels: no threads given (all cores), huge thread counts, likelihood loss
ODD_SCALARS = {"threads": [0, -1, 2**31 - 1, 2], "loss_kind": [1, 2, 3, 4], "delta": [1e-300, 1e300],
               "asymmetry": [1e-300, 1e300], "max_iter": [1], "irls": [0.0, 1e300],
               "ftol": [0.0], "switch_rtol": [0.0]}


def mutate(src: Src, args: dict, arrays: tuple) -> None:
    """Corrupt zero, one or two arguments (arrays: dtype, layout, shape, values; scalars: domain, type; the
    program: not a Program), or give a scalar an odd but valid value."""
    for _ in range(src.choose([0, 1, 1, 1, 2])):
        key = src.choose(list(args))
        if key in arrays:
            args[key] = corrupt(src, np.ones(3) if args[key] is None else args[key], force=True)
        elif key == "program":
            args[key] = src.choose(BAD_PROGRAMS)
        elif key in BAD_SCALARS:
            args[key] = src.choose(BAD_SCALARS[key]) if src.int(0, 3) else src.garbage()
    if src.rare(3):
        key = src.choose(list(ODD_SCALARS))
        if key in args:
            args[key] = src.choose(ODD_SCALARS[key])


def corrupt(src: Src, arr, force: bool = False):
    """A malformed version of arr (or, unless forced, arr itself most of the time)."""
    if not force and src.int(0, 9) < 6:
        return arr
    kind = src.int(0, 21)
    if kind == 21:
        return src.garbage()
    if kind == 20:
        return src.choose(INT_ARRAY_GARBAGE)
    variants = [
        lambda: arr.astype(np.float32), lambda: arr.astype(object), lambda: arr.astype(complex),
        lambda: arr.astype(str), lambda: arr.T, lambda: np.asfortranarray(arr), lambda: arr[..., ::-1],
        lambda: np.repeat(arr, 2, axis=-1)[..., ::2], lambda: arr[..., :-1], lambda: arr[None],
        lambda: arr.reshape(-1), lambda: np.full(arr.shape, np.nan), lambda: np.full(arr.shape, np.inf),
        lambda: -arr, lambda: arr.astype(np.int64), lambda: arr.tolist(), lambda: arr[..., None],
        lambda: np.full(arr.shape, 2**40), lambda: np.full(arr.shape, -1e308), lambda: arr.astype(bool)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # casting NaN to integers: garbage on purpose
        try:
            return variants[kind]()
        except (TypeError, ValueError, AttributeError):  # arr was already corrupted (a list, strings)
            return src.garbage()


@fuzz("core_evaluate", 700)
@given(raw=RAW, n=st.integers(0, 9), B=st.integers(0, 3))
def test_core_evaluate_with_malformed_arrays(raw, n, B):
    src = Src(raw)
    X, y = core_data(2, n, src.int(0, 20))
    theta = np.tile(GOOD_START["chinchilla"], (B, 1)) + src.uniform(-1, 1)
    args = dict(program=CHIN_PROG, features=X, target=y, params=theta,
                weights=src.choose([None, np.ones(n), np.ones((B, n)), np.zeros((B, n)), np.full(n, 3.0)]),
                loss_kind=src.int(0, 2), delta=1e-3, asymmetry=src.choose([1.0, 2.0]), derivatives=src.int(0, 2),
                threads=src.choose([1, 2]))
    mutate(src, args, ("features", "target", "params", "weights"))
    if args["weights"] is None and src.rare(3):
        args["weights"] = corrupt(src, np.ones((B, n)), force=True)
    out = rejected(lambda: _core.evaluate(**with_loss(args)))
    if out is not None:
        f, g, h = out
        Bn = np.shape(args["params"])[0]
        d = args["derivatives"]
        assert f.shape == (Bn,)
        assert (g is None) == (d < 1) and (h is None) == (d < 2)
        if g is not None:
            assert g.shape == (Bn, 5)
        if h is not None:
            assert h.shape == (Bn, 5, 5)
        if args["loss_kind"] != 2:
            assert np.all(~(f < 0))


@fuzz("core_minimize", 700)
@given(raw=RAW, n=st.integers(0, 9), R=st.integers(0, 2), nf=st.integers(1, 5), S=st.integers(1, 2))
def test_core_minimize_with_malformed_arrays(raw, n, R, nf, S):
    src = Src(raw)
    X, y = core_data(2, n, src.int(0, 20))
    free_index = np.r_[np.arange(nf), -np.ones(5 - nf)].astype(np.int32)
    if src.flip():
        free_index = np.random.default_rng(src.int(0, 9)).permutation(free_index)
    if src.rare(4):  # tied: two parameters share a free index
        free_index[free_index == nf - 1] = 0 if nf > 1 else free_index[free_index == nf - 1]
        nf = int(free_index.max()) + 1
    w = src.choose([None, np.ones((R, n)), np.zeros((R, n)), np.full((R, n), 2.0)])
    rows = 1 if w is None else R
    starts = np.zeros(src.choose([(S, nf), (rows, S, nf)])) + np.array(GOOD_START["chinchilla"])[:nf]
    lo, hi = src.choose([(-np.inf, np.inf), (-1.0, 20.0), (0.3, 0.3), (-50.0, 50.0)])
    args = dict(program=CHIN_PROG, features=X, target=y, weights=w, starts=starts, free_index=free_index,
                fixed_value=np.array(GOOD_START["chinchilla"]), lower=np.full(nf, lo), upper=np.full(nf, hi),
                loss_kind=src.int(0, 2), delta=1e-3, asymmetry=1.0, max_iter=src.int(1, 4), xtol=1e-10, ftol=1e-14,
                radius0=0.05, irls=0.25, switch_rtol=1e-4, keep_all=src.flip(), threads=src.choose([1, 2]),
                progress=src.choose([None, None, lambda done, total: None]))
    mutate(src, args, ("features", "target", "weights", "starts", "free_index", "fixed_value", "lower", "upper"))
    out = rejected(lambda: _core.minimize(**with_loss(args)))
    if out is not None:
        status = out["status"]
        assert status.ndim == 1 and np.all((status >= 0) & (status <= 5))
        assert out["x"].shape == (status.size, np.max(np.asarray(args["free_index"])) + 1)
        lo_, hi_ = np.asarray(args["lower"], dtype=float), np.asarray(args["upper"], dtype=float)
        x = out["x"]
        assert np.all((x >= lo_) & (x <= hi_) | np.isnan(x))
        if np.any(np.isnan(x)):  # a NaN start stays NaN (status NON_FINITE, or NOT_RUN without data)
            assert not np.all(np.isfinite(np.asarray(args["starts"], dtype=float)))
            assert np.all(np.isin(status[np.any(np.isnan(x), axis=1)], [Status.NON_FINITE, Status.NOT_RUN]))
        ran = status != Status.NOT_RUN
        assert np.all(np.isnan(out["fun"][~ran]))
        if args["loss_kind"] != 2:  # the likelihood may be negative
            assert np.all(~(out["fun"][ran] < 0))
        if not args["keep_all"]:
            assert np.all((out["best_start"] >= 0) & (out["best_start"] < np.shape(args["starts"])[-2]))


def test_core_program_size_limits():
    """Regression: a program of 10^6 constants was accepted and each evaluator thread then allocated 512 MB
    (10^7: 5 GB, the machine's memory). The core now caps instructions, log-sum-exp operands and the
    evaluator's workspace, with a ValueError."""
    L = 1 << 17
    z = np.zeros(L, np.int32)
    with pytest.raises(ValueError, match="instructions; the engine supports at most"):
        _core.Program(z, z, z, np.zeros(L), np.zeros(0, np.int32), np.zeros(0, np.int32), 1, 0)
    # one lse over 2 arguments, repeated: the argument lists may overlap, so their total is capped too
    L = 40_000
    op = np.full(L, 10, np.int32)
    op[:2] = 2
    a = np.zeros(L, np.int32)
    a[:2] = [0, 1]
    b = np.full(L, 2, np.int32)
    b[:2] = 0
    with pytest.raises(ValueError, match="too many log-sum-exp arguments"):
        _core.Program(op, a, b, np.zeros(L), np.array([0, 1], np.int32), np.zeros(2, np.int32), 2, 0)
    # 12 parameters, every node with a dense Hessian: within the instruction limits, over the workspace limit
    L = 12_000
    op = np.full(L, 5, np.int32)  # mul
    op[:12] = 2
    a = np.r_[np.arange(12), np.arange(11, L - 1)].astype(np.int32)
    b = np.r_[np.zeros(12), np.arange(12, L) % 12].astype(np.int32)
    with pytest.raises(ValueError, match="law program too large.*MiB"):
        _core.Program(op, a, b, np.zeros(L), np.zeros(0, np.int32), np.zeros(0, np.int32), 12, 0)
    # the same law, short, is fine
    prog = _core.Program(op[:100], a[:100], b[:100], np.zeros(100), np.zeros(0, np.int32), np.zeros(0, np.int32),
                         12, 0)
    assert prog.hessian_entries() == 78


# -- regressions at the extension boundary ---------------------------------------------------------------------
def test_core_rejects_a_program_that_is_not_a_program():
    """Regression: minimize/evaluate with program=object() raised RuntimeError ("Unable to cast Python
    instance"), not TypeError."""
    for bad in (object(), CHIN, "chinchilla", 3, CHIN.program):
        with pytest.raises(TypeError, match="program must be a lawfit._core.Program"):
            _core.minimize(**_chin_minimize_args(program=bad))
        with pytest.raises(TypeError, match="program must be a lawfit._core.Program"):
            _core.evaluate(bad, *core_data(2, 3, 0), np.zeros((1, 5)), None, _core.Loss(0, 1e-3, 1.0), 1, 1)


def test_core_checks_dtypes_instead_of_casting():
    """Regression: the core force-cast every array, so strings became numbers ("1.5"), complex numbers lost
    their imaginary part, free_index 4.7 became 4, and op = 2**32 + 3 wrapped to 3 (a valid opcode)."""
    X, y = core_data(2, 6, 0)
    with pytest.raises(TypeError, match="features must be an array of real numbers, got dtype <U"):
        _core.minimize(**_chin_minimize_args(features=X.astype(str)))
    with pytest.raises(TypeError, match="target must be an array of real numbers, got dtype complex128"):
        _core.minimize(**_chin_minimize_args(target=y.astype(complex)))
    with pytest.raises(TypeError, match="params must be an array of real numbers, got dtype object"):
        _core.evaluate(CHIN_PROG, X, y, np.zeros((1, 5), dtype=object), None, _core.Loss(0, 1e-3, 1.0), 1, 1)
    with pytest.raises(TypeError, match="free_index must be an array of integers, got dtype float64"):
        _core.minimize(**_chin_minimize_args(free_index=np.array([0, 1, 2, 3, 4.7])))
    with pytest.raises(ValueError, match="free_index has values outside the 32-bit integer range"):
        _core.minimize(**_chin_minimize_args(free_index=np.array([0, 1, 2, 3, 2**32 + 4])))
    pr = CHIN.program
    with pytest.raises(ValueError, match="law program: op has values outside the 32-bit integer range"):
        _core.Program(pr.op.astype(np.int64) + 2**32, pr.a, pr.b, pr.imm, pr.args, pr.argflags, 5, 2)
    with pytest.raises(TypeError, match="law program: a must be an array of integers"):
        _core.Program(pr.op, pr.a + 0.5, pr.b, pr.imm, pr.args, pr.argflags, 5, 2)
    with pytest.raises(TypeError, match="weights must be an array of real numbers, got list"):
        _core.minimize(**_chin_minimize_args(weights=[[1, 2], [3]]))
    # integer and float32 arrays, lists and non-contiguous views are converted as before
    ref = _core.minimize(**_chin_minimize_args())
    out = _core.minimize(**_chin_minimize_args(features=X.tolist(), free_index=np.arange(5, dtype=np.uint8),
                                               starts=np.asfortranarray(np.array([GOOD_START["chinchilla"]]))))
    assert out["fun"][0] == ref["fun"][0]


def test_core_rejects_bad_weights_and_bounds():
    """Regression: the core accepted negative and NaN weights (an unbounded or NaN objective, reported as an
    ordinary status) and NaN bounds or lower > upper (the start was clipped to a point outside the box)."""
    with pytest.raises(ValueError, match="weights must be finite and >= 0; entry 2 is -1"):
        _core.minimize(**_chin_minimize_args(weights=np.array([[1, 1, -1, 1, 1, 1.0]])))
    with pytest.raises(ValueError, match="weights must be finite and >= 0; entry 0 is nan"):
        _core.evaluate(CHIN_PROG, *core_data(2, 6, 0), np.zeros((1, 5)), np.full(6, np.nan), _core.Loss(0, 1e-3, 1.0),
                       1, 1)
    with pytest.raises(ValueError, match="bounds of free parameter 3: lower 1 must not exceed upper 0"):
        _core.minimize(**_chin_minimize_args(lower=np.array([-np.inf] * 3 + [1.0, 0.0]),
                                             upper=np.array([np.inf] * 3 + [0.0, 1.0])))
    with pytest.raises(ValueError, match="bounds of free parameter 0: lower nan"):
        _core.minimize(**_chin_minimize_args(lower=np.full(5, np.nan)))
    with pytest.raises(TypeError, match="progress must be None or a callable"):
        _core.minimize(**_chin_minimize_args(), progress=5)


def test_core_not_run_rows_report_the_start_clipped_into_the_bounds():
    """Regression: the core clips starts into the bounds (its contract), but a row without positive weight
    (NOT_RUN) reported the start unclipped, outside the box."""
    out = _core.minimize(**_chin_minimize_args(weights=np.zeros((2, 6)), lower=np.full(5, 0.3),
                                               upper=np.full(5, 0.4), keep_all=True))
    assert np.all(out["status"] == Status.NOT_RUN)
    np.testing.assert_array_equal(out["x"], np.clip([GOOD_START["chinchilla"]] * 2, 0.3, 0.4))
