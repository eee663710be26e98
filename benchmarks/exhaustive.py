"""The exhaustive bootstrap protocol on the bundled Chinchilla runs, unpruned and pruned, with time, peak memory
and agreement.

Every one of Hoffmann et al.'s 4500 grid starts is refitted on every one of 4000 resamples
(``resample_weights(240, 4000, seed=0)``): 18 million local fits, streamed in chunks of rows. The unpruned
run writes a checkpoint, so an interrupted run (Ctrl-C, a killed process) resumes where it stopped; its
per-resample optima are kept in that file and are the reference for the pruned run.

    python benchmarks/exhaustive.py unpruned [--checkpoint FILE] [--threads T]   # ~1 h on 2 idle cores
    python benchmarks/exhaustive.py pruned [--reference FILE] [--screen K]       # seconds; agreement vs FILE

Peak memory is the process's maximum resident set size (``resource.getrusage``), which includes the Python
interpreter, numpy and pandas.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np

import lawfit
from lawfit import runner
from lawfit.bootstrap import _distinct_optima, resample_weights
from lawfit.data import prepare
from lawfit.starts import resolve

DEFAULT_CKPT = "exhaustive_unpruned.npz"


def _problem(n: int):
    law = lawfit.laws.get("chinchilla")
    ds = prepare(law, lawfit.datasets.chinchilla(drop_highest=5))
    weights = resample_weights(ds.n, 4000, seed=0)[:n]
    return law, ds, weights, resolve(law, "hoffmann")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["unpruned", "pruned"])
    p.add_argument("--n", type=int, default=4000, help="resamples (default 4000)")
    p.add_argument("--checkpoint", default=DEFAULT_CKPT, help="unpruned: checkpoint file (resumed if present)")
    p.add_argument("--reference", default=DEFAULT_CKPT, help="pruned: the unpruned run's checkpoint")
    p.add_argument("--screen", type=int, default=16, help="pruned: grid points refitted per resample")
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    law, ds, weights, grid = _problem(args.n)
    opts = {"threads": args.threads}
    if args.mode == "unpruned":
        job = runner.Job(law, ds, grid, options=opts)
        t = time.perf_counter()
        res = runner.run(job, weights, chunk=args.chunk, checkpoint=args.checkpoint, progress=True)
        dt = time.perf_counter() - t
        print(f"unpruned: {args.n} resamples x {len(grid)} starts = {args.n * len(grid):,} fits in {dt:.1f} s "
              f"(this process; resumed chunks excluded), peak RSS {_peak_mib():.0f} MiB; "
              f"statuses {res.status_counts()}")
        return 0
    t = time.perf_counter()
    full = lawfit.fit(law, ds, starts="hoffmann", threads=args.threads)
    job = runner.Job(law, ds, grid, seeds=_distinct_optima(full), screen=args.screen, options=opts)
    res = runner.run(job, weights, chunk=500)
    dt = time.perf_counter() - t
    print(f"pruned (screen {args.screen} + {len(job.seeds)} basin seed(s)): {args.n} resamples in {dt:.1f} s "
          f"(full-data grid fit included), peak RSS {_peak_mib():.0f} MiB")
    with np.load(args.reference) as ref:
        done_rows = np.repeat(ref["done"], int(np.ceil(len(ref["fun"]) / len(ref["done"]))))[:len(ref["fun"])]
        fun_ref = ref["fun"][:args.n]
        done_rows = done_rows[:args.n]
    m = done_rows.astype(bool)
    rel = (res.fun[m] - fun_ref[m]) / fun_ref[m]
    agree = int(np.sum(rel <= 1e-9))
    print(f"agreement with the unpruned run: {agree} of {m.sum()} resamples ({100 * agree / max(1, m.sum()):.2f} %)"
          f" within 1e-9 relative; largest excess {rel.max():.2e}; pruned better on {int(np.sum(rel < -1e-9))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
