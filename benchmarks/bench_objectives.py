"""Every loss of the registry on Hoffmann's 4500-start grid (the 240 bundled runs, five highest dropped), and
screening against the exhaustive grid.

For each loss: the median time of ``lawfit.fit(..., starts="hoffmann")``, fits per second, the share of starts
that converge and the share that reach the best objective to 1e-9, and in the same process scipy's
Nelder-Mead (what scripts use for a loss without derivatives) on 20 of the grid's starts with a NumPy objective
of the same loss: the ratio of the time per fit.

Run:  pytest benchmarks/bench_objectives.py --benchmark-only -s
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

import lawfit
from lawfit import losses
from lawfit.compiler import program_predict
from lawfit.data import prepare
from lawfit.starts import hoffmann_grid

optimize = pytest.importorskip("scipy.optimize")

CASES = {
    "huber": {},
    "squared": {},
    "absolute": {},
    "quantile": {"q": 1 / 11},
    "cauchy": {"c": 0.01},
    "asymmetric_huber": {"asymmetry": 10.0},
    "huber_likelihood": {},
    "squared, linear residual": {"loss": "squared", "residual": "linear"},
    "huber, linear residual": {"loss": "huber", "residual": "linear"},
    "absolute, linear residual": {"loss": "absolute", "residual": "linear"},
}
N_SCIPY = 20


@pytest.fixture(scope="module")
def runs():
    return lawfit.datasets.chinchilla(drop_highest=5)


def _kw(name):
    kw = dict(CASES[name])
    kw.setdefault("loss", name)
    return kw


def _scipy_per_fit(runs, kw) -> float:
    """Seconds per Nelder-Mead fit from grid starts with a NumPy objective of the same loss."""
    spec = losses.spec(**kw)
    law = lawfit.engine.law_for_loss("chinchilla", spec)
    ds = prepare(law, runs)
    grid = hoffmann_grid(lawfit.laws.get("chinchilla"))[::4500 // N_SCIPY][:N_SCIPY]
    if spec.fits_sigma:
        grid = np.hstack([grid, np.zeros((len(grid), 1))])

    def f(theta):
        with np.errstate(all="ignore"):
            r = spec.residuals(np.real(program_predict(law.program, ds.features, theta[None, :]))[0], ds)
            if spec.fits_sigma:
                s = theta[-1]
                return float(np.sum(spec.rho(r * np.exp(-s)) + s))
            return float(np.sum(spec.rho(r)))

    t = time.perf_counter()
    for x0 in grid:
        optimize.minimize(f, x0, method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-8, "fatol": 1e-12})
    return (time.perf_counter() - t) / len(grid)


@pytest.mark.parametrize("name", list(CASES))
def test_losses_on_hoffmanns_grid(benchmark, runs, name):
    kw = _kw(name)
    times = []

    def run():
        t = time.perf_counter()
        res = lawfit.fit("chinchilla", runs, starts="hoffmann", **kw)
        times.append(time.perf_counter() - t)
        return res

    res = benchmark.pedantic(run, rounds=3, iterations=1)
    assert res.success
    med = statistics.median(times)
    per_fit = med / res.n_starts
    scipy = _scipy_per_fit(runs, kw)
    print(f"\n{name:<28} {med:7.3f} s  {res.n_starts / med:8.0f} fits/s  converged "
          f"{res.n_success / res.n_starts:6.1%}  reach best {res.n_reached(1e-9) / res.n_starts:6.1%}  "
          f"objective {res.fun:.10g}  scipy Nelder-Mead {scipy * 1e3:.1f} ms/fit = {scipy / per_fit:.0f}x")


def test_screening_against_the_exhaustive_grid(benchmark, runs):
    full_t = []
    for _ in range(3):
        t = time.perf_counter()
        full = lawfit.fit("chinchilla", runs, starts="hoffmann")
        full_t.append(time.perf_counter() - t)
    scr = benchmark.pedantic(lambda: lawfit.fit("chinchilla", runs, starts="hoffmann", screen=16), rounds=5,
                             iterations=1)
    assert abs(scr.fun - full.fun) <= 1e-12 * full.fun
    med = benchmark.stats.stats.median
    print(f"\nscreen=16: {med * 1e3:.1f} ms (median of 5), exhaustive {statistics.median(full_t):.3f} s: "
          f"1/{statistics.median(full_t) / med:.0f} of the time, objective equal to "
          f"{abs(scr.fun - full.fun) / full.fun:.1e}")
