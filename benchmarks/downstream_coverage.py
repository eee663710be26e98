"""Coverage of the two-stage downstream forecast's 95 % interval (joint bootstrap) on simulated tasks.

Truth: nll(C) = 0.4 + 3e3 / C^0.2 and accuracy = 0.25 + 0.7 / (1 + exp(6 (nll - 1.2))); 60 runs over
1e16 to 1e23 FLOP with 0.5 % log-normal noise on the NLL and 0.005 noise on the accuracy. Each simulation fits
both stages with a joint bootstrap and checks whether the interval of the accuracy at 1e24 FLOP covers the
true value.

    python benchmarks/downstream_coverage.py [N_SIMS] [N_BOOT]     # defaults 200 and 200
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


def simulate(seed: int, n: int = 60, noise: float = 0.005) -> dict:
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e16, 1e23, n)
    nll = downstream.nll_law().predict({"C": C}, TRUE1) * np.exp(noise * rng.standard_normal(n))
    acc = downstream.sigmoid_law().predict({"nll": nll}, TRUE2) + noise * rng.standard_normal(n)
    return {"C": C, "nll": nll, "accuracy": np.clip(acc, 1e-3, 1.0)}


def study(n_sims: int = 200, n_boot: int = 200) -> dict:
    truth = float(downstream.sigmoid_law().predict(
        {"nll": downstream.nll_law().predict({"C": [TARGET]}, TRUE1)}, TRUE2)[0])
    hits = 0
    for s in range(n_sims):
        res = downstream.fit(simulate(s), bootstrap=n_boot, seed=10_000 + s)
        f = res.forecast([TARGET])
        hits += int(f["accuracy_lo"][0] <= truth <= f["accuracy_hi"][0])
    p = hits / n_sims
    return {"coverage": p, "mc_se": math.sqrt(p * (1 - p) / n_sims), "n": n_sims, "truth": truth}


if __name__ == "__main__":
    argv = sys.argv[1:]
    t = time.perf_counter()
    r = study(int(argv[0]) if argv else 200, int(argv[1]) if len(argv) > 1 else 200)
    print(f"coverage of the 95 % interval of accuracy at {TARGET:g} FLOP: {r['coverage']:.3f} +- {r['mc_se']:.3f} "
          f"({r['n']} simulations, {time.perf_counter() - t:.0f} s)")
