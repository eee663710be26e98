"""Starting points. Arrays are on the internal (fitted) scale; dicts are keyed by parameter names."""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

import numpy as np

__all__ = ["hoffmann_grid", "grid", "resolve"]

MAX_STARTS = 1_000_000  # points of a dict grid (one fit each per weight row)

HOFFMANN_AXES = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}


def grid(law, axes: Mapping[str, Any]) -> np.ndarray:
    """Cartesian product of per-parameter values, as full internal parameter vectors (one per row).

    Keys are natural names (values on the natural scale) or internal names (internal scale). Parameters
    not named take the first value of their default grid.
    """
    cols: list[list[float]] = []
    given: dict[int, tuple] = {}
    for k, v in axes.items():
        i = law.index(k)
        if i in given:
            raise ValueError(f"starts name parameter {law.params[i].name!r} twice, as {given[i][0]!r} and {k!r} "
                             f"(natural and internal name); give it once")
        given[i] = (k, v)
    for i, p in enumerate(law.params):
        if i in given:
            k, v = given[i]
            vals = np.atleast_1d(law.value_to_internal(k, _numeric(k, v)))
            if vals.ndim != 1 or vals.size == 0:
                raise ValueError(f"starting values for {k!r} must be a non-empty 1-d sequence")
            if not np.isfinite(vals).all():
                bad = np.atleast_1d(np.asarray(v, dtype=float))[~np.isfinite(vals)][0]
                raise ValueError(f"starting value {bad:g} for {k!r} is not valid on its scale"
                                 + (" (log-transformed: it must be > 0)" if k == p.name and p.transform == "log"
                                    else " (it must be finite)"))
            cols.append([float(x) for x in vals])
        else:
            cols.append([float(p.grid[0]) if p.grid else 0.0])
    size = math.prod(len(c) for c in cols)
    if size > MAX_STARTS:
        raise ValueError(f"the start grid has {size:,} points ({' x '.join(str(len(c)) for c in cols)}), more than "
                         f"{MAX_STARTS:,}; give fewer values per parameter")
    mesh = np.meshgrid(*[np.array(c, dtype=float) for c in cols], indexing="ij")  # the last varies fastest
    return np.stack([m.ravel() for m in mesh], axis=1)


def _numeric(name: str, value: Any) -> np.ndarray:
    """Starting values given for ``name`` as a float array, or a TypeError naming the parameter."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"starting values for {name!r} must be numbers, got {value!r}")
    return np.asarray(arr, dtype=float)


def hoffmann_grid(law) -> np.ndarray:
    """Hoffmann et al.'s 4500-point grid (as in Epoch's replication), for laws with parameters
    e, a, b, alpha, beta (Chinchilla)."""
    names = set(law.internal_names) | set(law.param_names)
    if not set(HOFFMANN_AXES) <= names:
        raise ValueError(
            f"starts='hoffmann' needs a Chinchilla-type law with parameters e, a, b, alpha, beta; "
            f"law {law.name!r} has {law.internal_names}"
        )
    # Order of Epoch's loops: alpha, beta, e, a, b (b varies fastest).
    rows = []
    order = ["alpha", "beta", "e", "a", "b"]
    idx = [law.index(k) for k in order]
    for combo in itertools.product(*(HOFFMANN_AXES[k] for k in order)):
        x = np.zeros(law.n_params)
        for i, v in zip(idx, combo):
            x[i] = v
        rows.append(x)
    return np.array(rows)


def resolve(law, starts: Any) -> np.ndarray:
    """Full internal start vectors (S, n_params) from a strategy name, a dict grid or an array."""
    if starts is None or (isinstance(starts, str) and starts == "grid"):
        return law.default_grid()
    if isinstance(starts, str):
        if starts == "hoffmann":
            return hoffmann_grid(law)
        raise ValueError(f"unknown start strategy {starts!r}; use 'grid', 'hoffmann', a dict or an array")
    if isinstance(starts, Mapping):
        if all(np.ndim(v) == 0 for v in starts.values()) and len(starts) == law.n_params:
            return law.to_internal({k: _numeric(k, v) for k, v in starts.items()})[None, :]
        return grid(law, starts)
    arr = np.asarray(starts)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"starts must be numeric, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != law.n_params:
        raise ValueError(
            f"starts must have shape (n_starts, {law.n_params}) on the internal scale "
            f"({', '.join(law.internal_names)}), got {arr.shape}"
        )
    return arr
