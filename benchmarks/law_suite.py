"""Every law on every bundled data set, by name: a backtest (the 20 % of runs of largest compute held out) of
each catalogue law whose variables a data set has, with the time each took.

Data sets that mix training corpora (``gadre2024``) are split by corpus; data sets without a ``loss`` column
(``obsscaling``, downstream accuracies) are skipped. Aliases of a law (``saturating`` for ``saturating_C``, ...)
run once.

    python benchmarks/law_suite.py [--bootstrap N] [--csv OUT]
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

import lawfit


def cases():
    """(name, runs) for every loss data set, split by training corpus where a data set has several."""
    for name in lawfit.datasets.available():
        data = lawfit.datasets.load(name)
        if "loss" not in data.columns:
            continue
        if "dataset" in data.columns:
            for corpus, part in data.groupby("dataset", sort=True):
                yield f"{name}/{corpus}", part.reset_index(drop=True)
        else:
            yield name, data


def laws_for(columns) -> list[str]:
    """Catalogue laws whose variables are all columns, by their own names (aliases such as ``saturating`` for
    ``saturating_C`` once)."""
    seen, out = set(), []
    for name in lawfit.laws.available():
        law = lawfit.laws.get(name)
        if law.name in seen or not set(law.variables) <= set(columns):
            continue
        seen.add(law.name)
        out.append(law.name)
    return out


def run(bootstrap: int | None = None) -> pd.DataFrame:
    rows = []
    for dname, runs in cases():
        for law in laws_for(runs.columns):
            t = time.perf_counter()
            try:
                with warnings.catch_warnings():  # a fit the runs do not determine warns; its row names the direction
                    warnings.simplefilter("ignore")
                    res = lawfit.backtest(law, runs, holdout=0.2, bootstrap=bootstrap)
            except ValueError as exc:  # e.g. fewer distinct training points than the law's free parameters
                note = str(exc).split(" in the law")[0]
                rows.append({"dataset": dname, "law": law, "success": False, "note": note,
                             "seconds": time.perf_counter() - t})
                continue
            row = res.table.iloc[0].to_dict()
            row.update(dataset=dname, seconds=time.perf_counter() - t, note="")
            if row["unidentified"]:
                row["note"] = f"poorly determined along {row['unidentified']}"
            rows.append(row)
    cols = ["dataset", "law", "n_train", "n_test", "mape", "bias", "worst", "success", "unidentified", "seconds",
            "note"]
    df = pd.DataFrame(rows)
    return df[cols + [c for c in df.columns if c.endswith(("_lo", "_hi"))]]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=None, help="resamples of the held-out runs per interval")
    ap.add_argument("--csv", help="write the table to this CSV file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    table = run(args.bootstrap)
    with pd.option_context("display.width", 160, "display.max_rows", 200, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))
    print(f"{len(table)} backtests in {time.perf_counter() - t0:.1f} s")
    if args.csv:
        table.to_csv(args.csv, index=False)
