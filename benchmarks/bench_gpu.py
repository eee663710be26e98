"""The GPU targets against the CPU backend, in one run, with the ratios.

(1) 4000 bootstrap refits from Hoffmann's published point (keep="best"), (2) Hoffmann's 4500-start grid
(keep="all"), (3) the exhaustive bootstrap: every one of the 4500 grid starts on every resample (4000 x 4500 =
18 million fits; the CPU runs a slice of it and its time is scaled). Each case checks that both backends agree
on the objective (1e-9 relative) and prints seconds, fits per second and the CPU / GPU ratio.

Run on a machine with an NVIDIA GPU (``pip install ".[cuda]"``):

    python benchmarks/bench_gpu.py            # full sizes
    python benchmarks/bench_gpu.py --toy      # tiny sizes (numba's simulator: NUMBA_ENABLE_CUDASIM=1)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import lawfit
from lawfit.starts import hoffmann_grid

HOFFMANN_INTERNAL = np.array([0.5267228, 6.0073404, 6.0179186, 0.33917084, 0.2849083])


def _weights(n_runs: int, rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.choice(n_runs, n_runs, replace=True), minlength=n_runs)
                     for _ in range(rows)]).astype(float)


def _time(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(toy: bool = False, repeat: int = 3) -> list[dict]:
    """Measure the three cases; returns one dict per case (also printed)."""
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    law = lawfit.laws.get("chinchilla")
    grid = hoffmann_grid(law)
    n_boot, n_grid, exh_rows, exh_cpu_rows = (4000, 4500, 4000, 8) if not toy else (8, 12, 3, 1)
    if toy:
        runs = runs.iloc[::12].reset_index(drop=True)
        grid = grid[:: len(grid) // n_grid][:n_grid]
        repeat = 1
    W = _weights(len(runs), max(n_boot, exh_rows))
    cases = {
        "bootstrap refits": dict(starts=HOFFMANN_INTERNAL[None, :], weights=W[:n_boot], keep="best",
                                 fits=n_boot, cpu_rows=n_boot),
        "grid": dict(starts=grid, weights=None, keep="all", fits=len(grid), cpu_rows=1),
        "exhaustive bootstrap": dict(starts=grid, weights=W[:exh_rows], keep="best", fits=exh_rows * len(grid),
                                     cpu_rows=exh_cpu_rows),
    }
    results = []
    for name, c in cases.items():
        w_cpu = None if c["weights"] is None else c["weights"][:c["cpu_rows"]]
        t_cpu, cpu = _time(lambda: lawfit.minimize(law, runs, c["starts"], weights=w_cpu, keep=c["keep"],
                                                   backend="cpu"), repeat)
        cpu_fits = (1 if w_cpu is None else w_cpu.shape[0]) * c["starts"].shape[0]
        t_cpu_full = t_cpu * c["fits"] / cpu_fits  # the CPU's time for the whole case, by proportion
        t_gpu, gpu = _time(lambda: lawfit.minimize(law, runs, c["starts"], weights=c["weights"], keep=c["keep"],
                                                   backend="cuda"), repeat)
        k = cpu.fun.shape[0]
        f_c, f_g = np.ravel(cpu.fun), np.ravel(gpu.fun[:k])
        ok = np.isfinite(f_c) & np.isfinite(f_g)
        agree = float(np.max(np.abs(f_c[ok] - f_g[ok]) / np.abs(f_c[ok]))) if ok.any() else 0.0
        row = {"case": name, "fits": c["fits"], "cpu_s": t_cpu_full, "gpu_s": t_gpu,
               "cpu_fits_per_s": c["fits"] / t_cpu_full, "gpu_fits_per_s": c["fits"] / t_gpu,
               "ratio": t_cpu_full / t_gpu, "max_rel_diff": agree,
               "cpu_measured_fits": cpu_fits}
        results.append(row)
        print(f"{name:<22} {c['fits']:>10,} fits  CPU {t_cpu_full:9.3f} s"
              f"{'' if cpu_fits == c['fits'] else f' (scaled from {cpu_fits:,})'}  GPU {t_gpu:8.3f} s  "
              f"GPU/CPU speed {t_cpu_full / t_gpu:6.1f}x  objectives agree to {agree:.1e}")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--toy", action="store_true", help="tiny sizes (for numba's CUDA simulator)")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = p.parse_args(argv)
    from lawfit.backends import cuda_unavailable_reason

    reason = cuda_unavailable_reason()
    if reason is not None:
        print(f"bench_gpu: the CUDA backend cannot run here: {reason}")
        return 2
    res = run(toy=args.toy)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
