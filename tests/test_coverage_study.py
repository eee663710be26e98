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


def test_downstream_coverage_study_small():
    """benchmarks/downstream_coverage.py on 30 simulated tasks: the default interval covers the true accuracy
    about as often as nominal (0.945 over 200), the plain percentile interval is the narrower one."""
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "downstream_coverage.py"
    spec = importlib.util.spec_from_file_location("downstream_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.study(n_sims=30, n_boot=100)
    # at a true 95 %, 30 tasks give 28.5 +- 1.2 hits: fewer than 24 would be a >3.5 sigma failure
    assert res["adjusted"]["coverage"] >= 24 / 30, res
    assert res["percentile"]["coverage"] <= res["adjusted"]["coverage"]
