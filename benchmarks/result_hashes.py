"""Fingerprints of the reference results, to show a change is bit-identical: Hoffmann's 4500-start grid on the
240 bundled runs (every fit's x, objective and status) and 4000 seeded bootstrap refits from Hoffmann's point
(weights = counts of ``rng.choice(240, 240, replace=True)``, ``rng = np.random.default_rng(0)``).

    python benchmarks/result_hashes.py
"""

from __future__ import annotations

import hashlib

import numpy as np

import lawfit
from lawfit.starts import hoffmann_grid

HOFFMANN_INTERNAL = np.array([0.5267228, 6.0073404, 6.0179186, 0.33917084, 0.2849083])


def main() -> None:
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    law = lawfit.laws.get("chinchilla")
    g = lawfit.minimize(law, runs, hoffmann_grid(law), keep="all")
    grid = hashlib.sha256(np.ascontiguousarray(g.x).tobytes() + np.ascontiguousarray(g.fun).tobytes()
                          + g.status.astype(np.int32).tobytes()).hexdigest()
    rng = np.random.default_rng(0)
    n = len(runs)
    W = np.stack([np.bincount(rng.choice(n, n, replace=True), minlength=n) for _ in range(4000)]).astype(float)
    b = lawfit.minimize(law, runs, HOFFMANN_INTERNAL[None, :], weights=W, keep="best")
    boot = hashlib.sha256(np.ascontiguousarray(b.x).tobytes() + np.ascontiguousarray(b.fun).tobytes()).hexdigest()
    print(f"grid {grid[:16]}  bootstrap {boot[:16]}  best objective {float(g.fun.min())!r}")


if __name__ == "__main__":
    main()
