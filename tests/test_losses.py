"""Losses beyond Huber and squared: the asymmetric Huber (over-predictions weighted more)."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit
import reference

OPTIMUM = np.array([0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243])


@pytest.fixture(scope="module")
def runs():
    df = lawfit.datasets.chinchilla(drop_highest=5)
    return {c: df[c].to_numpy() for c in ("N", "D", "loss")}


@pytest.mark.parametrize("k", [1.0, 2.0, 10.0])
def test_asymmetric_huber_equals_huber_with_over_predictions_weighted(runs, k):
    law = lawfit.laws.get("chinchilla")
    rng = np.random.default_rng(0)
    theta = OPTIMUM + rng.normal(0, 0.02, (4, 5))
    got = lawfit.evaluate(law, runs, theta, loss="asymmetric_huber", asymmetry=k, derivatives=2)
    for i, th in enumerate(theta):
        r = np.asarray(reference.log_prediction(law, runs, th).v, dtype=float) - np.log(runs["loss"])
        w = np.where(r > 0, k, 1.0)
        f, g, h, _ = reference.objective(law, runs, th, weights=w, loss="huber", delta=1e-3)
        assert got.fun[i] == pytest.approx(float(f), rel=1e-10)
        np.testing.assert_allclose(got.grad[i], np.asarray(g, dtype=float), rtol=1e-8, atol=1e-10 * abs(float(f)))
        np.testing.assert_allclose(got.hess[i], np.asarray(h, dtype=float), rtol=1e-7,
                                   atol=1e-8 * np.abs(np.asarray(h, dtype=float)).max())


def test_asymmetry_one_is_plain_huber(runs):
    a = lawfit.evaluate("chinchilla", runs, OPTIMUM[None, :], loss="asymmetric_huber", asymmetry=1.0, derivatives=2)
    b = lawfit.evaluate("chinchilla", runs, OPTIMUM[None, :], loss="huber", derivatives=2)
    assert a.fun[0] == b.fun[0] and np.array_equal(a.hess, b.hess)


def test_asymmetric_fit_follows_the_lower_envelope(runs):
    start = OPTIMUM[None, :]
    over = []
    for k in (1.0, 4.0, 20.0):
        res = lawfit.fit("chinchilla", runs, starts=start, loss="asymmetric_huber", asymmetry=k)
        assert res.success
        pred = np.log(lawfit.laws.get("chinchilla").predict(runs, res.params))
        over.append(np.mean(pred > np.log(runs["loss"]) + 1e-9))
    assert over[0] > over[1] > over[2]  # fewer runs predicted above their loss as over-prediction costs more


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_asymmetry(runs, bad):
    with pytest.raises(ValueError, match="asymmetry"):
        lawfit.evaluate("chinchilla", runs, OPTIMUM[None, :], loss="asymmetric_huber", asymmetry=bad)
