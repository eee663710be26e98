"""Time ``lawfit isoflop`` (Approach 2) on large tables, where grouping runs into budgets used to be quadratic.

Three tables of ``--rows`` runs (default 10^6), each run a model size N and a budget C with the loss of the
Chinchilla law plus 1 % noise:

- ``scatter``: 60 budgets from 1e18 to 1e22 FLOP, every run's C scattered by up to +-3 % around its budget,
  binned with ``tolerance=0.07`` (the densest window first);
- ``nominal``: the same runs snapped to the 60 nominal budgets (``budgets=``, within a factor 1.07);
- ``exact``: 60 budgets shared exactly (no tolerance);
- ``uniform``: C log-uniform from 1e18 to 1e22 FLOP, binned with ``tolerance=0.001`` (~13,000 bins, most of
  them too thin for a parabola: approach2 reports an error after grouping, which is timed too).

Prints the seconds of ``isoflop.approach2`` (median of ``--repeat``) and of the grouping alone. Run:
``python benchmarks/isoflop_grouping.py [--rows 1000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

import lawfit
from lawfit import isoflop


def table(rows: int, scatter: float, rng) -> pd.DataFrame:
    budgets = np.geomspace(1e18, 1e22, 60)
    C = rng.choice(budgets, rows)
    nopt = 0.1 * np.sqrt(C / 6.0)
    N = nopt * 10 ** rng.uniform(-0.6, 0.6, rows)
    C = C * (1 + rng.uniform(-scatter, scatter, rows))
    df = pd.DataFrame({"N": N, "C": C, "D": C / (6 * N)})
    law = lawfit.laws.get("chinchilla")
    df["loss"] = law.predict(df, {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}) * np.exp(
        0.01 * rng.standard_normal(rows))
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = {"scatter": (table(args.rows, 0.03, rng), dict(tolerance=0.07)),
             "nominal": (None, dict(tolerance=0.07, budgets=np.geomspace(1e18, 1e22, 60))),
             "exact": (table(args.rows, 0.0, rng), dict()),
             "uniform": (None, dict(tolerance=0.001))}
    cases["nominal"] = (cases["scatter"][0], cases["nominal"][1])
    uni = table(args.rows, 0.0, rng)
    uni["C"] = 10 ** rng.uniform(18, 22, args.rows)
    cases["uniform"] = (uni, cases["uniform"][1])
    for name, (df, kw) in cases.items():
        C = df["C"].to_numpy()
        group, full = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            isoflop._bin_budgets(C, kw.get("tolerance"), kw.get("budgets"))
            group.append(time.perf_counter() - t)
            t = time.perf_counter()
            try:
                res = isoflop.approach2(df, **kw)
                what = f"{len(res.points)} budgets, a = {res.a:.4f}"
            except ValueError as err:
                what = f"error: {str(err)[:70]}..."
            full.append(time.perf_counter() - t)
        print(f"{name:8s} {args.rows} rows: grouping {statistics.median(group):.2f} s, approach2 "
              f"{statistics.median(full):.2f} s (median of {args.repeat}); {what}")


if __name__ == "__main__":
    main()
