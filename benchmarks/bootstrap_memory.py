"""Peak memory (RSS) of command-line bootstraps at two sizes, and its growth per resample.

Runs, each in a fresh process, on the bundled Chinchilla runs (``lawfit/datasets/chinchilla.csv`` copied to
``runs.csv`` in a temporary directory):

- ``lawfit fit runs.csv --bootstrap N --quiet``
- ``lawfit isoflop runs.csv --tolerance 0.2 --bootstrap N`` (Approach 2)
- ``lawfit isoflop runs.csv --approach 1 --bootstrap N`` (Approach 1 on the runs read as curves, ~0.5 ms per
  resample: run at smaller sizes by default)

and prints the peak RSS of each (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper process that
runs only that command), the wall time, and (RSS(large) - RSS(small)) / (large - small) in bytes per resample.
The bootstrap's weight rows are drawn a chunk at a time, so memory is one chunk plus a few numbers per resample.

    python benchmarks/bootstrap_memory.py [--small 20000] [--large 200000] [--approach1 2000,20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lawfit

WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss(args: list[str], cwd: str) -> tuple[int, float]:
    """Peak RSS in bytes (Linux reports KiB) and seconds of one command."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=cwd, capture_output=True, text=True,
                         check=True)
    seconds = time.perf_counter() - t
    code, kib = out.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(args)} exited with {code}: {out.stderr}")
    scale = 1 if sys.platform == "darwin" else 1024
    return int(kib) * scale, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=200000)
    ap.add_argument("--approach1", default="2000,20000", help="the two sizes for Approach 1")
    args = ap.parse_args()
    lawfit_cli = [sys.executable, "-m", "lawfit"]
    csv = Path(lawfit.__file__).parent / "datasets" / "chinchilla.csv"
    a1 = [int(v) for v in args.approach1.split(",")]
    cases = [("fit", ["fit", "runs.csv", "--quiet"], (args.small, args.large)),
             ("isoflop 2", ["isoflop", "runs.csv", "--tolerance", "0.2"], (args.small, args.large)),
             ("isoflop 1", ["isoflop", "runs.csv", "--approach", "1"], tuple(a1))]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(csv, os.path.join(tmp, "runs.csv"))
        for name, cmd, sizes in cases:
            rss = []
            for n in sizes:
                b, s = peak_rss(lawfit_cli + cmd + ["--bootstrap", str(n), "--seed", "0"], tmp)
                rss.append(b)
                print(f"lawfit {' '.join(cmd)} --bootstrap {n}: peak RSS {b / 2**20:.1f} MiB, {s:.1f} s", flush=True)
            growth = (rss[1] - rss[0]) / (sizes[1] - sizes[0])
            print(f"  {name}: growth {growth:.0f} bytes per resample ({sizes[0]} -> {sizes[1]})", flush=True)


if __name__ == "__main__":
    main()
