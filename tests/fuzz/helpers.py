"""Shared helpers of the fuzz battery (the package docstring, __init__.py, explains the battery): the settings
of a fuzz test, the byte-string choices, the laws, starts and data, the checks of a valid result, and the
extension's arguments."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import lawfit
from lawfit import Status, _core, engine


# Exploring: LAWFIT_FUZZ=explore, or the whole suite under ``pytest --hypothesis-profile=explore`` (tests/conftest.py).
EXPLORE = os.environ.get("LAWFIT_FUZZ") == "explore" or not settings.default.derandomize
CASES: dict[str, int] = {}  # test name -> generated cases per run


def fuzz(name: str, n: int):
    """Settings of a fuzz test with ``n`` generated cases (registered in CASES)."""
    CASES[name] = n
    return settings(max_examples=n * (10 if EXPLORE else 1), deadline=None, derandomize=not EXPLORE,
                    database=None, suppress_health_check=list(HealthCheck))


def rejected(fn):
    """fn()'s result, or None when it raised ValueError or TypeError with a message. Any other exception
    propagates and fails the test."""
    try:
        with warnings.catch_warnings():  # a degenerate fit may warn (IdentifiabilityWarning): a valid outcome
            warnings.simplefilter("ignore", lawfit.LawfitWarning)
            return fn()
    except (ValueError, TypeError) as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return None


# ---------------------------------------------------------------------------------------------------------
# Generating cases. Most tests take one hypothesis-drawn byte string and turn it into choices (Src), as
# coverage-guided fuzzers do: hypothesis still generates, mutates and shrinks the bytes, but a case costs one
# draw instead of dozens (each hypothesis draw costs ~0.1 ms, more than the calls under test). Shrinking moves
# towards zero bytes, i.e. towards the first option of every choice, which is the well-formed one.
# ---------------------------------------------------------------------------------------------------------
HUGE_INT = 10**400  # beyond float64


class Src:
    """Choices read from a byte string; once it is used up, from a generator seeded by it."""

    def __init__(self, raw: bytes):
        self.raw, self.i = raw, 0
        self.rng = None

    def int(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        nb = 1 if span <= 256 else 2 if span <= 65536 else 8
        if self.i + nb <= len(self.raw):
            v = int.from_bytes(self.raw[self.i:self.i + nb], "little")
            self.i += nb
        else:
            if self.rng is None:
                self.rng = np.random.default_rng(list(self.raw) or [0])
            v = int(self.rng.integers(0, 2 ** (8 * nb - 1)))
        return lo + v % span

    def choose(self, seq):
        return seq[self.int(0, len(seq) - 1)]

    def flip(self) -> bool:
        return self.int(0, 1) == 1

    def rare(self, k: int) -> bool:
        """True once in k (never for zero bytes)."""
        return self.int(0, k - 1) == k - 1

    def uniform(self, lo: float, hi: float) -> float:
        return lo + (hi - lo) * self.int(0, 65535) / 65535

    def float(self) -> float:
        """Any float64 bit pattern: NaNs, infinities, subnormals, huge and tiny values."""
        bits = self.int(0, 2**64 - 1)
        return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])

    def garbage(self):
        k = self.int(0, len(GARBAGE) + 1)
        if k == len(GARBAGE):
            return self.float()
        if k == len(GARBAGE) + 1:
            return self.int(-(2**62), 2**62)
        return GARBAGE[k]


GARBAGE = [
    None, True, False, 0, 1, -1, 2**31, 2**63, -(2**70), HUGE_INT, -HUGE_INT, 0.0, -0.0, math.nan, math.inf,
    -math.inf, 5e-324, 1e308, "", "a", "1.5", "nan", "grid", "all", "best", "huber", b"", b"x", [], [1], [1.5, "a"],
    [[1, 2], [3]], (), (1,), (None, None), (1, 2, 3), {}, {"a": 1}, {"a": (1, 2)}, {1, 2}, frozenset(), object(),
    1 + 2j, np.float64("nan"), np.int64(3), np.bool_(True), np.float32("inf"), np.array(["a", "b"]),
    np.zeros((2, 2)), np.array([], dtype=float), np.array(3.0), np.array([1 + 1j]), pd.NA, slice(1), range(3),
    np.datetime64("2020-01-01"), pd.Series([1.0]), pd.DataFrame({"a": [1.0]}), lambda: 0, ValueError("x"), str,
]


LAWS_SMALL = ["chinchilla", "chinchilla_linear_e", "saturating_N", "power_law_N", "kaplan", "chinchilla_tied"]
LAW = {name: lawfit.laws.get(name) for name in LAWS_SMALL}
# A start (internal scale) near the optimum of the synthetic data, per law.
GOOD_START = {
    "chinchilla": [0.6, 6.0, 6.5, 0.3, 0.3],
    "chinchilla_linear_e": [1.8, 6.0, 6.5, 0.3, 0.3],
    "chinchilla_tied": [0.6, 6.0, 6.5, 0.3],
    "saturating_N": [0.6, 6.0, 0.3],
    "power_law_N": [6.0, 0.3],
    "kaplan": [32.0, 31.0, 0.08, 0.1],
}
RAW = st.binary(min_size=8, max_size=160)
CHIN = LAW["chinchilla"]
CHIN_PROG = CHIN.core_program()
BOUND_VALUES = [None, 0.0, 1e-6, 1.0, -1.0, 0.5, 2.0, 25.0, -25.0, math.inf, -math.inf, math.nan, "0.5", HUGE_INT,
                True, [0.0], 1 + 0j, np.float32(0.5), np.int64(1)]


def synthetic(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 10, n)
    D = 10 ** rng.uniform(8, 11, n)
    loss = (1.8 + 480.0 / N**0.35 + 2100.0 / D**0.37) * np.exp(rng.normal(scale=0.01, size=n))
    return {"N": N, "D": D, "loss": loss}


def core_data(F: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(rng.uniform(-3, 25, (F, n))), rng.normal(size=n)


def check_batch(b: engine.BatchFit, loss: str = "huber") -> None:
    """Invariants of a valid batch of fits."""
    assert b.status.shape == b.fun.shape == b.nit.shape == b.nfev.shape
    assert b.x.shape == b.status.shape + (b.constraints.n_free,)
    assert b.theta.shape == b.status.shape + (b.law.n_params,)
    assert np.all((b.status >= 0) & (b.status <= 5))
    check_points(b.law, b.constraints, b.theta.reshape(-1, b.law.n_params), b.status.ravel(), b.fun.ravel(), loss)


def check_points(law, con, theta, status, fun, loss) -> None:
    """End points of fits: NOT_RUN has no objective, objectives >= 0 (but the likelihood's), converged ones
    finite, free parameters inside their bounds, fixed ones at their values, tied ones equal."""
    run = status != Status.NOT_RUN
    assert np.all(np.isnan(fun[~run]))
    if loss != "huber_likelihood":  # the likelihood adds log sigma and may be negative
        assert np.all(~(fun[run] < 0)), fun
    ok = status <= Status.CONVERGED_AT_BOUND
    assert np.all(np.isfinite(fun[ok]))
    x = theta[:, con.rep]
    assert np.all((x >= con.lower) & (x <= con.upper)), (x, con.lower, con.upper)
    for k, j in enumerate(con.free_index):
        if j < 0:
            assert np.all(theta[:, k] == con.fixed_value[k])
        else:
            assert np.all(theta[:, k] == x[:, j])


def check_fit(res: lawfit.FitResult) -> None:
    assert isinstance(res.status, Status)
    assert res.start_status.shape == res.start_fun.shape == (res.n_starts,)
    assert np.all((res.start_status >= 0) & (res.start_status <= 5))
    assert res.success == (res.status <= Status.CONVERGED_AT_BOUND)
    assert 0 <= res.best_start < res.n_starts and 0 <= res.n_success <= res.n_starts
    if res.success:
        assert math.isfinite(res.fun)
    assert set(res.params) == set(res.law.param_names)


# -- the extension's arguments --------------------------------------------------------------------------------
def with_loss(args: dict) -> dict:
    """The extension's arguments: the loss's kind, parameter and asymmetry as one ``_core.Loss`` (built inside
    the call, so a malformed one is rejected like any other argument)."""
    a = dict(args)
    if "loss_kind" in a:
        a["loss"] = _core.Loss(a.pop("loss_kind"), a.pop("delta"), a.pop("asymmetry"))
    if "max_iter" in a:
        a["options"] = _core.SolverOptions(*(a.pop(k) for k in ("max_iter", "xtol", "ftol", "radius0", "irls",
                                                                  "switch_rtol")))
    return a


def _chin_minimize_args(**change):
    X, y = core_data(2, 6, 0)
    args = dict(program=CHIN_PROG, features=X, target=y, weights=None, starts=np.array([GOOD_START["chinchilla"]]),
                free_index=np.arange(5, dtype=np.int32), fixed_value=np.zeros(5), lower=np.full(5, -np.inf),
                upper=np.full(5, np.inf), loss_kind=0, delta=1e-3, asymmetry=1.0, max_iter=5, xtol=1e-10,
                ftol=1e-14, radius0=0.05, irls=0.25, switch_rtol=1e-4, keep_all=False, threads=1)
    args.update(change)
    return with_loss(args)
