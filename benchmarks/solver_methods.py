"""How many evaluations does a fit from Hoffmann's grid need, with lawfit's solver and with scipy's methods?

The same problem as benchmark (a): the 240 bundled Chinchilla runs (five highest losses dropped), the summed
Huber loss (delta = 1e-3), log-space Chinchilla law, starts drawn (seeded) from Hoffmann's 4500-point grid.
scipy's methods get lawfit's exact objective, gradient and Hessian (``lawfit.evaluate``), so the comparison
is between the methods, not the derivatives. An evaluation is a distinct parameter vector at which the
objective (and, where the method asks, its derivatives) was computed; lawfit's count is ``BatchFit.nfev``
(each with gradient and Hessian). "reach" counts starts whose objective is <= 1.0182741e-3.

    python benchmarks/solver_methods.py [N_STARTS] [METHOD ...]     # default 60 starts; all methods

At commit b3befe9 (60 starts, seed 1, evaluations per fit, mean / median, and starts reaching the optimum):

    lawfit (trust-region Newton, scaled, two phases)      40.3 /  40   60 of 60
    scipy trust-exact (textbook exact trust-region Newton) 156 / 130   54 of 60
    scipy trust-krylov                          140 to 258 / 135 to 156   28 to 31 of 60 (*)
    scipy BFGS (gtol 1e-12)                                151 / 155   27 of 60
    scipy L-BFGS-B (ftol 1e-15, gtol 1e-12)                122 / 112   24 of 60

(*) trust-krylov's counts vary from run to run with bit-identical objective, gradient and Hessian; the other
methods repeat exactly. The whole run takes about 30 s on 2 cores.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import scipy.optimize

import lawfit
from lawfit.data import prepare
from lawfit.starts import hoffmann_grid

TARGET = 1.0182741e-3
METHODS = {
    # method: (uses gradient, uses Hessian, options)
    "trust-exact": (True, True, {"gtol": 1e-12, "maxiter": 2000}),
    "trust-krylov": (True, True, {"gtol": 1e-12, "maxiter": 2000}),
    "BFGS": (True, False, {"gtol": 1e-12, "maxiter": 2000}),
    "L-BFGS-B": (True, False, {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000}),
}


class Counted:
    """The objective and its derivatives at one parameter vector at a time, counting distinct vectors."""

    def __init__(self, law, runs):
        self.law, self.runs = law, runs
        self.points: set[bytes] = set()

    def _eval(self, x, derivatives):
        self.points.add(np.asarray(x, dtype=float).tobytes())
        return lawfit.evaluate(self.law, self.runs, np.asarray(x, dtype=float)[None], derivatives=derivatives,
                               threads=1)

    def fun(self, x):
        return float(self._eval(x, 0)[0][0])

    def jac(self, x):
        return self._eval(x, 1)[1][0]

    def hess(self, x):
        return self._eval(x, 2)[2][0]


def main(n_starts: int = 60, methods: list[str] | None = None) -> None:
    law = lawfit.laws.get("chinchilla")
    runs = prepare(law, lawfit.datasets.chinchilla(drop_highest=5))  # validated once, not per evaluation
    grid = hoffmann_grid(law)
    starts = grid[np.random.default_rng(1).choice(len(grid), n_starts, replace=False)]

    def report(name, nfev, fun, seconds):
        nfev = np.asarray(nfev, dtype=float)
        print(f"{name:14s} evaluations per fit: mean {nfev.mean():6.1f}  median {np.median(nfev):5.0f}  "
              f"p90 {np.percentile(nfev, 90):5.0f}   reach {int(np.sum(np.asarray(fun) <= TARGET))} / {len(fun)}"
              f"   ({seconds:.2f} s)", flush=True)

    t0 = time.perf_counter()
    res = lawfit.minimize(law, runs, starts, keep="all", threads=1)
    report("lawfit", res.nfev.ravel(), res.fun.ravel(), time.perf_counter() - t0)

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    for method in methods or list(METHODS):
        use_jac, use_hess, options = METHODS[method]
        nfev, fun = [], []
        t0 = time.perf_counter()
        for x0 in starts:
            c = Counted(law, runs)
            out = scipy.optimize.minimize(c.fun, x0, method=method, jac=c.jac if use_jac else None,
                                          hess=c.hess if use_hess else None, options=dict(options))
            nfev.append(len(c.points))
            fun.append(out.fun)
        report(method, nfev, fun, time.perf_counter() - t0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60, sys.argv[2:] or None)
