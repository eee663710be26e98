"""lawfit.bootstrap: reproducing Epoch AI's standard errors, determinism, intervals, validation."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit.bootstrap import resample_weights

HOFFMANN = {"e": 0.5267228, "a": 6.0073404, "b": 6.0179186, "alpha": 0.33917084, "beta": 0.2849083}
# Epoch AI's bootstrap standard errors (4000 resamples, one BFGS fit each from Hoffmann's point).
EPOCH_SE = {"A": 124.52, "B": 1293.28, "E": 0.02566, "alpha": 0.01540, "beta": 0.02060}
OPTIMUM = np.array([0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243])  # e, a, b, alpha, beta


@pytest.fixture(scope="module")
def runs():
    return lawfit.datasets.chinchilla(drop_highest=5)


def epoch_resamples(n_runs=240, n=4000):
    """Epoch's notebook: np.random.seed(42), then n x np.random.choice(indices, 240, replace=True)."""
    state = np.random.get_state()
    try:
        np.random.seed(42)
        idx = np.arange(n_runs)
        return np.stack([np.random.choice(idx, n_runs, replace=True) for _ in range(n)])
    finally:
        np.random.set_state(state)


def test_replaying_epochs_resamples_reproduces_their_standard_errors(runs):
    res = lawfit.bootstrap("chinchilla", runs, resamples=epoch_resamples(), strategy="fixed", start=HOFFMANN,
                           starts=OPTIMUM[None, :])
    assert res.n == 4000 and res.n_failed == 0
    print("\nEpoch replay SE:", {k: round(v, 6) for k, v in res.se.items()})
    for name, want in EPOCH_SE.items():
        assert res.se[name] == pytest.approx(want, rel=0.01), name


def test_same_seed_same_draws_any_thread_count(runs):
    kw = dict(n=64, seed=7, strategy="fixed", starts=OPTIMUM[None, :])
    a = lawfit.bootstrap("chinchilla", runs, threads=1, **kw)
    b = lawfit.bootstrap("chinchilla", runs, threads=2, **kw)
    c = lawfit.bootstrap("chinchilla", runs, n=64, seed=8, strategy="fixed", starts=OPTIMUM[None, :])
    assert np.array_equal(a.weights, b.weights)
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.fun, b.fun)
    assert not np.array_equal(a.weights, c.weights)


def test_resample_weights_from_indices_and_generator():
    idx = np.array([[0, 0, 2], [1, 2, 2]])
    assert resample_weights(3, resamples=idx).tolist() == [[2, 0, 1], [0, 1, 2]]
    w = resample_weights(5, 10, seed=np.random.default_rng(3))
    assert w.shape == (10, 5) and np.all(w.sum(axis=1) == 5)
    assert np.array_equal(w, resample_weights(5, 10, seed=3))


@pytest.mark.parametrize("bad, exc, words", [
    (np.array([[0, 1, 3]]), ValueError, "resamples[0, 2] = 3"),
    (np.array([[0, -1, 2]]), ValueError, "resamples[0, 1] = -1"),
    (np.array([[0, 1]]), ValueError, "shape (n_resamples, 3)"),
    (np.array([[0.0, 1.0, 2.0]]), TypeError, "integer array"),
])
def test_bad_resamples_are_rejected_with_a_message(bad, exc, words):
    with pytest.raises(exc) as err:
        resample_weights(3, resamples=bad)
    assert words in str(err.value)


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_resample_count(n):
    with pytest.raises(ValueError, match="number of resamples"):
        resample_weights(3, n)


def test_intervals_covariance_and_draws(runs):
    res = lawfit.bootstrap("chinchilla", runs, n=400, seed=0, strategy="fixed", starts=OPTIMUM[None, :])
    with pytest.raises(ValueError, match="BCa intervals need the jackknife"):
        res.ci(0.9, method="bca")  # never a hidden batch of fits inside a frozen result
    jres = res.with_jackknife()
    assert res.jackknife is None and set(jres.jackknife) == set(res.params)
    assert all(v.shape == (len(runs),) for v in jres.jackknife.values())
    for method in ("percentile", "bca"):
        ci = jres.ci(0.9, method=method)
        for name, (lo, hi) in ci.items():
            assert lo < res.fit.params[name] < hi, (method, name, lo, hi)
    wide, narrow = res.ci(0.95), res.ci(0.5)
    assert all(wide[k][0] <= narrow[k][0] and narrow[k][1] <= wide[k][1] for k in wide)
    cov = res.cov()
    assert np.allclose(cov.values, cov.values.T)
    assert np.allclose(np.sqrt(np.diag(cov.values)), [res.se[k] for k in cov.index])
    assert list(res.cov("internal").index) == ["e", "a", "b", "alpha", "beta"]
    df = res.draws()
    assert list(df.columns) == ["E", "A", "B", "alpha", "beta", "objective", "status"] and len(df) == 400
    assert sum(res.status_counts().values()) == 400
    assert "400 resamples" in res.summary()
    with pytest.raises(ValueError, match="level"):
        res.ci(1.5)
    with pytest.raises(ValueError, match="method"):
        res.ci(0.9, method="student")
    with pytest.raises(ValueError, match="scale"):
        res.cov("log")


def test_strategies(runs):
    grid = {"alpha": [0.3, 0.5], "beta": [0.3, 0.5], "e": [0.5], "a": [6.0], "b": [7.0]}
    kw = dict(n=24, seed=1, starts=grid)
    fixed = lawfit.bootstrap("chinchilla", runs, strategy="fixed", **kw)
    exhaustive = lawfit.bootstrap("chinchilla", runs, strategy="exhaustive", **kw)
    smart = lawfit.bootstrap("chinchilla", runs, strategy="smart", **kw)
    assert exhaustive.n_starts == 4 and fixed.n_starts == 1 and smart.n_starts >= 1
    # the whole grid finds at least as good an optimum per resample as one start at the full-data optimum
    assert np.all(exhaustive.fun <= fixed.fun * (1 + 1e-9))
    assert np.allclose(smart.fun, exhaustive.fun, rtol=1e-9)
    with pytest.raises(ValueError, match="strategy"):
        lawfit.bootstrap("chinchilla", runs, n=2, strategy="clever")


def test_bootstrap_through_fit(runs):
    r = lawfit.fit("chinchilla", runs, starts=OPTIMUM[None, :], bootstrap=32, seed=5)
    b = lawfit.bootstrap("chinchilla", runs, n=32, seed=5, starts=OPTIMUM[None, :])
    assert r.bootstrap is not None and r.bootstrap.n == 32
    assert np.array_equal(r.bootstrap.theta, b.theta)
    assert lawfit.fit("chinchilla", runs, starts=OPTIMUM[None, :]).bootstrap is None


def test_sandwich_equals_hc0_for_a_log_linear_least_squares_fit():
    """Pure power law, squared loss: log L = a - alpha log C is linear, so the sandwich is the textbook
    heteroskedasticity-robust (HC0) covariance (X'X)^-1 X' diag(r^2) X (X'X)^-1."""
    rng = np.random.default_rng(0)
    C = np.geomspace(1e18, 1e23, 50)
    loss = 3e3 * C**-0.15 * np.exp(rng.normal(0, 0.02, C.size) * (1 + np.linspace(0, 2, C.size)))
    data = {"C": C, "loss": loss}
    res = lawfit.fit("power_law_C", data, loss="squared")
    X = np.column_stack([np.ones(C.size), -np.log(C)])
    r = X @ res.x - np.log(loss)
    bread = np.linalg.inv(X.T @ X)
    hc0 = bread @ (X.T * r**2) @ X @ bread
    got = lawfit.sandwich(res, data, scale="internal").to_numpy()
    np.testing.assert_allclose(got, hc0, rtol=1e-8)
    nat = lawfit.sandwich(res, data)  # natural scale: d A = A d a
    assert nat.loc["A", "A"] == pytest.approx(hc0[0, 0] * res.params["A"] ** 2, rel=1e-8)


def test_sandwich_close_to_bootstrap_for_squared_loss(runs):
    """For a smooth loss the sandwich and the bootstrap estimate the same spread (here within 15 %)."""
    res = lawfit.fit("chinchilla", runs, starts=OPTIMUM[None, :], loss="squared", bootstrap=2000, seed=0)
    cov = lawfit.sandwich(res, runs)
    for name in ("E", "alpha", "beta"):
        assert np.sqrt(cov.loc[name, name]) == pytest.approx(res.bootstrap.se[name], rel=0.15), name
    with pytest.raises(ValueError, match="scale"):
        lawfit.sandwich(res, runs, scale="log")


def test_jackknife_at_bootstrap_time_equals_the_explicit_call(runs):
    a = lawfit.bootstrap("chinchilla", runs, n=20, seed=3, strategy="fixed", starts=OPTIMUM[None, :], jackknife=True)
    b = lawfit.bootstrap("chinchilla", runs, n=20, seed=3, strategy="fixed", starts=OPTIMUM[None, :])
    for k, v in b.with_jackknife().jackknife.items():
        np.testing.assert_array_equal(a.jackknife[k], v)
    assert a.ci(0.9, method="bca") == b.with_jackknife().ci(0.9, method="bca")
