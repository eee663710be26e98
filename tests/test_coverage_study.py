"""The coverage study (benchmarks/coverage.py) on a few simulated data sets: it runs, and its intervals are not
absurdly narrow (a guard against regressions in the bootstrap, BCa and sandwich intervals)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest


@pytest.mark.slow
def test_coverage_study_small():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "coverage.py"
    spec = importlib.util.spec_from_file_location("coverage_study", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.study(n_sets=12, n_boot=60, seed=1)
    assert set(res) == {(m, q) for m in mod.METHODS for q in mod.QUANTITIES}
    for (method, q), v in res.items():
        assert v["n"] >= 10, (method, q)
        assert 0.0 <= v["coverage"] <= 1.0
    # with 12 sets at nominal 95 %, fewer than 7 hits would be a >5 sigma failure of any sensible interval
    for method in mod.METHODS:
        for q in ("alpha", "beta", "a"):
            assert res[(method, q)]["coverage"] >= 7 / 12, (method, q, res[(method, q)])
