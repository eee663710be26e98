"""lawfit.Problem: the fit problem validated once and taken by fit, bootstrap, minimize, evaluate and the runner."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import lawfit
from lawfit import runner

RUNS = lawfit.datasets.chinchilla(drop_highest=5)
KW = dict(loss="quantile", q=0.25, residual="linear", bounds={"alpha": (0.0, 2.0)}, max_iter=300)


@pytest.fixture(scope="module")
def prob():
    return lawfit.problem("chinchilla", RUNS, **KW)


def test_every_entry_point_takes_a_problem(prob):
    direct = lawfit.fit("chinchilla", RUNS, starts="hoffmann", screen=8, **KW)
    via = lawfit.fit(prob, starts="hoffmann", screen=8)
    assert via.fun == direct.fun and via.params == direct.params and via.objective == prob.loss
    bf = lawfit.minimize(prob, starts=via.x[None, :], weights=np.ones((2, len(RUNS))))
    np.testing.assert_allclose(bf.fun, direct.fun, rtol=1e-12)  # refitted from the optimum: the same vertex
    ev = lawfit.evaluate(prob, via.x)
    assert ev.fun[0] == pytest.approx(via.fun, rel=1e-14)
    boot = lawfit.bootstrap(prob, 6, seed=1, starts="hoffmann")
    ref = lawfit.bootstrap("chinchilla", RUNS, 6, seed=1, starts="hoffmann", **KW)
    np.testing.assert_array_equal(boot.theta, ref.theta)
    job = runner.Job(prob, None, via.x[None, :])
    out = runner.run(job, np.ones((3, len(RUNS))))
    np.testing.assert_allclose(out.fun, np.full(3, via.fun), rtol=1e-12)


def test_a_problem_is_validated_once(prob, monkeypatch):
    import importlib

    problem_mod = importlib.import_module("lawfit.problem")  # the module (lawfit.problem is the function)

    calls = []
    monkeypatch.setattr(problem_mod, "prepare", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(problem_mod, "constraints", lambda *a, **k: calls.append(1))
    lawfit.minimize(prob, starts="hoffmann", screen=2)
    lawfit.evaluate(prob, np.zeros(5) + 0.5)
    assert calls == []


def test_a_problem_refuses_its_keywords_again(prob):
    with pytest.raises(ValueError, match="already validated.*loss"):
        lawfit.fit(prob, loss="huber")
    with pytest.raises(ValueError, match="already validated.*max_iter"):
        lawfit.minimize(prob, max_iter=10)
    with pytest.raises(ValueError, match="carries its data"):
        lawfit.minimize(prob, RUNS)
    with pytest.raises(TypeError, match="unexpected keyword"):
        lawfit.fit("chinchilla", RUNS, maxiter=3)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        lawfit.problem("chinchilla", RUNS, max_iter=0)


def test_problems_pickle_for_worker_processes(prob):
    again = pickle.loads(pickle.dumps(prob))
    assert again.loss == prob.loss and again.fingerprint() == prob.fingerprint()
    x = np.array([0.6, 6.0, 7.5, 0.34, 0.37])
    assert lawfit.evaluate(again, x).fun[0] == lawfit.evaluate(prob, x).fun[0]


def test_the_fingerprint_covers_the_objective_and_constraints(prob):
    other = [lawfit.problem("chinchilla", RUNS, **dict(KW, q=0.5)),
             lawfit.problem("chinchilla", RUNS, **dict(KW, residual="log")),
             lawfit.problem("chinchilla", RUNS, **dict(KW, bounds={"alpha": (0.0, 3.0)})),
             lawfit.problem("chinchilla", RUNS, **dict(KW, max_iter=301))]
    prints = {p.fingerprint() for p in other} | {prob.fingerprint()}
    assert len(prints) == 5
    assert lawfit.problem("chinchilla", RUNS, **KW).fingerprint() == prob.fingerprint()


def test_one_cache_of_compiled_laws():
    """Laws rebuilt by name share one compiled entry (the core program, CUDA kernels, trust-scale memo); the
    cache is bounded."""
    from lawfit.backends import compiled as cache

    a, b = lawfit.laws.get("chinchilla"), lawfit.laws.get("chinchilla")
    assert a is not b and a.core_program() is b.core_program()
    entry = cache.compiled(a.program)
    lawfit.fit(a, RUNS, starts="hoffmann", screen=2)
    assert "trust_scale" in entry.memo
    for k in range(cache.MAX_ENTRIES + 3):  # distinct programs push the oldest out
        cache.compiled(lawfit.law(f"E + A/N**(alpha + {k + 1})", ["N"], log_params=["E", "A"]).program)
    assert len(cache._ENTRIES) == cache.MAX_ENTRIES
    assert cache.compiled(a.program) is not entry  # evicted, rebuilt on demand
