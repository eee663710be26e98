"""Coverage of the two-stage downstream forecast's 95 % intervals (joint bootstrap) on simulated tasks.

Truth: nll(C) = 0.4 + 3e3 / C^0.2 and accuracy = 0.25 + 0.7 / (1 + exp(6 (nll - 1.2))); N_RUNS runs (default
60) over 1e16 to 1e23 FLOP with 0.5 % log-normal noise on the NLL and 0.005 noise on the accuracy. Each
simulation fits both stages with a joint bootstrap and checks whether the interval of the accuracy at 1e24 FLOP
covers the true value, for the default (``interval="adjusted"``) and the plain percentile interval.

    python benchmarks/downstream_coverage.py [N_SIMS] [N_BOOT] [N_RUNS] [FIRST_SEED]   # defaults 200 200 60 0
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from lawfit import downstream

TRUE1 = {"E": 0.4, "A": 3e3, "alpha": 0.2}
TRUE2 = {"floor": 0.25, "span": 0.7, "k": 6.0, "nll0": 1.2}
TARGET = 1e24
INTERVALS = ("adjusted", "percentile")


def simulate(seed: int, n: int = 60, noise: float = 0.005) -> dict:
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e16, 1e23, n)
    nll = downstream.nll_law().predict({"C": C}, TRUE1) * np.exp(noise * rng.standard_normal(n))
    acc = downstream.sigmoid_law().predict({"nll": nll}, TRUE2) + noise * rng.standard_normal(n)
    return {"C": C, "nll": nll, "accuracy": np.clip(acc, 1e-3, 1.0)}


def study(n_sims: int = 200, n_boot: int = 200, n_runs: int = 60, first_seed: int = 0) -> dict:
    """Coverage (and its Monte Carlo standard error) of each interval over ``n_sims`` simulated tasks."""
    truth = float(downstream.sigmoid_law().predict(
        {"nll": downstream.nll_law().predict({"C": [TARGET]}, TRUE1)}, TRUE2)[0])
    hits = dict.fromkeys(INTERVALS, 0)
    for s in range(first_seed, first_seed + n_sims):
        res = downstream.fit(simulate(s, n_runs), bootstrap=n_boot, seed=10_000 + s)
        for kind in INTERVALS:
            f = res.forecast([TARGET], interval=kind)
            hits[kind] += int(f["accuracy_lo"][0] <= truth <= f["accuracy_hi"][0])
    out: dict = {"n": n_sims, "truth": truth}
    for kind, h in hits.items():
        p = h / n_sims
        out[kind] = {"coverage": p, "mc_se": math.sqrt(p * (1 - p) / n_sims)}
    return out


if __name__ == "__main__":
    argv = [int(float(a)) for a in sys.argv[1:]]
    defaults = [200, 200, 60, 0]
    n_sims, n_boot, n_runs, first = argv + defaults[len(argv):]
    t = time.perf_counter()
    r = study(n_sims, n_boot, n_runs, first)
    print(f"{n_sims} simulations of {n_runs} runs, {n_boot} resamples each, seeds {first}..{first + n_sims - 1} "
          f"({time.perf_counter() - t:.0f} s); coverage of the 95 % interval of accuracy at {TARGET:g} FLOP:")
    for kind in INTERVALS:
        print(f"  {kind:10s} {r[kind]['coverage']:.3f} +- {r[kind]['mc_se']:.3f}")
