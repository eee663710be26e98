"""How often do lawfit's 95 % intervals cover the truth? A simulation study.

The truth is Chinchilla's law fitted (Huber, Hoffmann's grid) to the bundled runs (five highest dropped). Each
simulated data set keeps the runs' N and D and draws the losses as L_true(N, D) * exp(r), with r resampled from
the fitted log residuals (residual resampling: realistic, heavy-tailed noise). On each set lawfit fits the law
(``screen=16``) and computes 95 % intervals of

    alpha, beta, a = beta / (alpha + beta), N_opt(1e23 FLOP), and L(N, D) at the largest run (a forecast)

by the percentile bootstrap, the BCa bootstrap and the sandwich covariance (delta method for the derived
quantities). The coverage is the share of sets whose interval contains the true value, with its Monte Carlo
standard error sqrt(p (1 - p) / n_sets).

    python benchmarks/coverage.py [N_SETS] [N_BOOT]      # defaults 500 and 200; about 2 to 4 minutes
"""

from __future__ import annotations

import math
import sys
import time
from statistics import NormalDist

import numpy as np

import lawfit
from lawfit import allocation
from lawfit.bootstrap import bca_levels

QUANTITIES = ("alpha", "beta", "a", "N_opt", "forecast")
METHODS = ("percentile", "bca", "sandwich")
BUDGET = 1e23


def _derived(law, params: dict, point) -> dict:
    a = params["beta"] / (params["alpha"] + params["beta"])
    n_opt = float(allocation.compute_optimal(params, [BUDGET], law=law)["N_opt"].iloc[0])
    forecast = float(law.predict(point, params)[0])
    return {"alpha": params["alpha"], "beta": params["beta"], "a": a, "N_opt": n_opt, "forecast": forecast}


def _sandwich_intervals(res, data, law, point, z: float) -> dict:
    cov = lawfit.sandwich(res, data, scale="internal").to_numpy()
    x = res.x
    base = _derived(law, law.to_natural(x), point)
    out = {}
    grads = {k: np.zeros(x.size) for k in base}
    for j in range(x.size):  # delta method, central differences on the internal scale
        h = 1e-6 * max(1.0, abs(x[j]))
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        dp, dm = _derived(law, law.to_natural(xp), point), _derived(law, law.to_natural(xm), point)
        for k in base:
            grads[k][j] = (dp[k] - dm[k]) / (2 * h)
    for k, v in base.items():
        se = math.sqrt(max(float(grads[k] @ cov @ grads[k]), 0.0))
        out[k] = (v - z * se, v + z * se)
    return out


def _boot_intervals(boot, law, point, level: float, method: str) -> dict:
    draws = boot.params
    n = len(next(iter(draws.values())))
    rows = [{k: v[i] for k, v in draws.items()} for i in range(n)]
    ok = [r for r in rows if all(np.isfinite(list(r.values())))]
    vals = {k: np.array([_derived(law, r, point)[k] for r in ok]) for k in QUANTITIES}
    est = _derived(law, boot.fit.params, point)
    tail = (1 - level) / 2
    if method == "percentile":
        return {k: (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))) for k, v in vals.items()}
    # BCa: bias from the draws, acceleration from the jackknife (lawfit's own BCa levels)
    jack_rows = [{k: v[i] for k, v in boot.jackknife.items()} for i in range(len(next(iter(boot.jackknife.values()))))]
    jack_ok = [r for r in jack_rows if all(np.isfinite(list(r.values())))]
    jvals = {k: np.array([_derived(law, r, point)[k] for r in jack_ok]) for k in QUANTITIES}
    out = {}
    for k, v in vals.items():
        lo, hi = bca_levels(v, est[k], jvals[k], tail)
        out[k] = (float(np.quantile(v, lo)), float(np.quantile(v, hi)))
    return out


def study(n_sets: int = 500, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> dict:
    """Coverage per (method, quantity): {"coverage": p, "mc_se": ..., "n": sets}."""
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    law = lawfit.laws.get("chinchilla")
    truth_fit = lawfit.fit(law, runs, starts="hoffmann")
    N, D = runs["N"].to_numpy(), runs["D"].to_numpy()
    base = law.predict({"N": N, "D": D}, truth_fit.params)
    resid = np.log(runs["loss"].to_numpy()) - np.log(base)
    k = int(np.argmax(6 * N * D))
    point = {"N": N[k:k + 1], "D": D[k:k + 1]}
    truth = _derived(law, truth_fit.params, point)
    rng = np.random.default_rng(seed)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    hits = {(m, q): 0 for m in METHODS for q in QUANTITIES}
    counted = {(m, q): 0 for m in METHODS for q in QUANTITIES}
    for s in range(n_sets):
        data = {"N": N, "D": D, "loss": base * np.exp(rng.choice(resid, resid.size, replace=True))}
        res = lawfit.fit(law, data, starts="hoffmann", screen=16)
        if not res.success:
            continue
        boot = lawfit.bootstrap(law, data, n_boot, seed=seed * 100_003 + s, _full=res, jackknife=True)
        intervals = {"percentile": _boot_intervals(boot, law, point, level, "percentile"),
                     "bca": _boot_intervals(boot, law, point, level, "bca")}
        try:
            intervals["sandwich"] = _sandwich_intervals(res, data, law, point, z)
        except ValueError:
            pass
        for m, iv in intervals.items():
            for q in QUANTITIES:
                lo, hi = iv[q]
                counted[(m, q)] += 1
                hits[(m, q)] += int(lo <= truth[q] <= hi)
    out = {}
    for key in hits:
        n = counted[key]
        p = hits[key] / n if n else float("nan")
        out[key] = {"coverage": p, "mc_se": math.sqrt(p * (1 - p) / n) if n else float("nan"), "n": n}
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    n_sets = int(argv[0]) if argv else 500
    n_boot = int(argv[1]) if len(argv) > 1 else 200
    t = time.perf_counter()
    res = study(n_sets, n_boot)
    print(f"coverage of nominal 95 % intervals, {n_sets} simulated data sets, {n_boot} bootstrap resamples each "
          f"({time.perf_counter() - t:.0f} s)")
    print(f"{'quantity':<10}" + "".join(f"{m:>22}" for m in METHODS))
    for q in QUANTITIES:
        cells = "".join(f"{res[(m, q)]['coverage']:>14.3f} +- {res[(m, q)]['mc_se']:.3f}" for m in METHODS)
        print(f"{q:<10}{cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
