"""Turning user tables into the engine's arrays, with errors that name the column and row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

__all__ = ["Dataset", "prepare", "column", "check_level"]


@dataclass(frozen=True)
class Dataset:
    """Data of one law: ``features`` (n_features, n) as the program reads them, ``target`` = log loss, and
    ``loss`` the observed loss itself (for linear residuals)."""

    features: np.ndarray
    target: np.ndarray | None
    n: int
    columns: dict  # variable -> original 1-d array (float64)
    loss: np.ndarray | None = None

    @property
    def raw_loss(self) -> np.ndarray:
        """The observed loss L (the linear residual's target)."""
        if self.loss is not None:
            return self.loss
        if self.target is None:
            raise ValueError("this dataset has no observed loss")
        return np.exp(self.target)


def _get(data: Any, name: str):
    try:
        return data[name]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _names(data: Any) -> list[str]:
    try:
        return [str(c) for c in data.keys()]
    except Exception:
        return []


def check_level(level) -> None:
    """An interval's confidence level: a number strictly between 0 and 1, or a ValueError naming it."""
    if not (isinstance(level, (float, int)) and not isinstance(level, bool) and 0 < level < 1):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")


def column(data: Any, name: str, role: str) -> np.ndarray:
    """Column ``name`` of ``data`` as a finite, positive float64 array; ``role`` is used in messages."""
    raw = _get(data, name)
    if raw is None:
        have = _names(data)
        raise ValueError(
            f"data has no column {name!r} ({role}); columns present: {have if have else 'none'}"
        )
    if isinstance(raw, np.ma.MaskedArray) and np.ma.getmaskarray(raw).any():
        rows = np.flatnonzero(np.ma.getmaskarray(raw).ravel())
        raise ValueError(f"column {name!r} ({role}) is a masked array with {rows.size} masked value(s), the first "
                         f"at row {rows[0]}; masks are not applied: drop those runs (or fill them) first")
    arr = np.asarray(raw)
    if arr.ndim != 1:
        raise ValueError(f"column {name!r} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind == "O":
            arr = _object_column(arr, name, role)
        else:
            raise TypeError(f"column {name!r} ({role}) must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"column {name!r} ({role}) has a non-finite value {arr[bad[0]]} at row {bad[0]}"
                         + (f" (and {bad.size - 1} more)" if bad.size > 1 else ""))
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        raise ValueError(
            f"column {name!r} ({role}) has a non-positive value {arr[bad[0]]:g} at row {bad[0]}"
            + (f" (and {bad.size - 1} more)" if bad.size > 1 else "")
            + "; scaling-law fits take logarithms, so values must be > 0"
        )
    return arr


def _object_column(arr: np.ndarray, name: str, role: str) -> np.ndarray:
    """A 1-d object column (a pandas object column, a list mixing types) as float64, value by value, so that an
    error names the first bad cell: None is missing (NaN, reported as non-finite); numeric text is a number (a
    CSV column with one bad cell arrives as text: "1e10", "oops", ...); booleans are not numbers (like boolean
    columns); an integer beyond float64 is too large."""
    out = np.empty(arr.shape[0])
    for i, v in enumerate(arr.tolist()):
        if v is None:
            out[i] = np.nan
            continue
        try:
            if isinstance(v, (bool, np.bool_)) or (isinstance(v, np.ndarray) and v.ndim != 0):
                raise TypeError
            out[i] = float(v)
        except OverflowError:
            raise ValueError(f"column {name!r} ({role}) has a value too large for float64 at row {i}") from None
        except (TypeError, ValueError):
            text = repr(v)
            text = text if len(text) <= 60 else text[:57] + "..."
            raise TypeError(f"column {name!r} ({role}) has a non-numeric value {text} at row {i}") from None
    return out


def prepare(law, data: Any, target: str | None = "loss", columns: Mapping[str, str] | None = None) -> Dataset:
    """Build the arrays for ``law`` from a DataFrame or a mapping of arrays.

    ``columns`` maps law variables (and ``"loss"``) to the column names of ``data`` when they differ.
    """
    if isinstance(data, Dataset):
        return data
    if data is None or not hasattr(data, "__getitem__"):
        raise TypeError(f"data must be a pandas DataFrame or a mapping of arrays, got {type(data).__name__}")
    if columns is not None and not isinstance(columns, Mapping):
        raise TypeError(f"columns must be a mapping from law variables (and 'loss') to column names, "
                        f"got {type(columns).__name__}")
    columns = dict(columns or {})
    unknown = set(columns) - set(law.variables) - {"loss"}
    if unknown:
        raise ValueError(f"columns= maps unknown names {sorted(unknown)}; the law's variables are "
                         f"{list(law.variables)} (and 'loss')")
    derived = getattr(law, "derived", {})
    cols = {v: column(data, columns.get(v, v), f"law variable {v}") for v in law.variables if v not in derived}
    for v, (inputs, fn) in derived.items():  # computed from other variables unless the data has the column
        if _get(data, columns.get(v, v)) is not None:
            cols[v] = column(data, columns.get(v, v), f"law variable {v}")
        else:
            cols[v] = column({v: np.asarray(fn(*(cols[i] for i in inputs)), dtype=float)}, v,
                             f"law variable {v}, derived from {', '.join(inputs)}")
    for a, b in getattr(law, "at_most", ()):  # e.g. unique tokens U_D <= tokens seen D, at every run
        if cols[a].shape == cols[b].shape:  # (different lengths are reported below)
            bad = np.flatnonzero(cols[a] > cols[b])
            if bad.size:
                i = bad[0]
                raise ValueError(
                    f"row {i}: {a} = {cols[a][i]:g} exceeds {b} = {cols[b][i]:g} (columns {columns.get(a, a)!r}, "
                    f"{columns.get(b, b)!r}); law {law.name!r} needs {a} <= {b} at every run"
                    + (f" ({bad.size - 1} more rows)" if bad.size > 1 else ""))
    y = loss = None
    sizes = {columns.get(v, v): arr.size for v, arr in cols.items()}
    if target is not None:
        tname = columns.get("loss", target)
        loss = column(data, tname, "observed loss")
        y = np.log(loss)
        sizes[tname] = loss.size
    n = next(iter(sizes.values()), None)
    if len(set(sizes.values())) > 1:
        lengths = ", ".join(f"{k} {m}" for k, m in sizes.items())
        values, counts = np.unique(list(sizes.values()), return_counts=True)
        if np.sum(counts == counts.max()) > 1:  # no majority length to call the expected one
            raise ValueError(f"columns have different lengths ({lengths}); every column needs one value per run")
        common = int(values[np.argmax(counts)])
        odd = [k for k, m in sizes.items() if m != common]
        raise ValueError(
            f"column {odd[0]!r} has {sizes[odd[0]]} values; expected {common} like the others ({lengths})"
        )
    if not n:
        raise ValueError("data is empty: no runs to fit")
    feats = []
    for var, kind in law.program.features:
        feats.append(cols[var] if kind == "raw" else np.log(cols[var]))
    F = np.ascontiguousarray(np.array(feats, dtype=np.float64).reshape(len(feats), n))
    return Dataset(features=F, target=y, n=int(n), columns=cols,
                   loss=None if loss is None else np.ascontiguousarray(loss, dtype=np.float64))
