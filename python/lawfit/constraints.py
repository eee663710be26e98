"""Bounds, fixed and tied parameters: how the solver's free vector x maps to the law's full internal vector.

``theta[k] = x[free_index[k]]`` (several k may share a free index: tied) or ``fixed_value[k]``. Bounds are
given on the scale the name implies (natural names: natural scale, mapped through the transforms; internal
names: internal scale) and resolved here once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Constraints", "constraints", "check_starts"]


def _finite(v) -> bool:
    """Whether a real number is finite in float64 (an integer too large for a float is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _is_real(v) -> bool:
    """Whether v is a real scalar: not a string (float() takes "0.5"), not complex (float() of a numpy complex
    drops the imaginary part with only a warning), not an array."""
    return not isinstance(v, (str, bytes, complex, np.complexfloating)) and np.ndim(v) == 0


@dataclass(frozen=True)
class Constraints:
    """How the full parameter vector is built from the free one: theta[k] = x[free_index[k]] or fixed."""

    free_index: np.ndarray  # (n_params,) int32, -1 for fixed
    fixed_value: np.ndarray  # (n_params,) internal scale
    lower: np.ndarray  # (n_free,) internal scale
    upper: np.ndarray
    free_names: tuple  # internal name of each free parameter (the first of a tied group)
    rep: np.ndarray  # (n_free,) full index representing each free parameter

    @property
    def n_free(self) -> int:
        return len(self.free_names)

    def full(self, x: np.ndarray) -> np.ndarray:
        """Full internal vectors from free ones (any leading shape)."""
        x = np.asarray(x, dtype=float)
        out = np.empty(x.shape[:-1] + (len(self.free_index),))
        for k, j in enumerate(self.free_index):
            out[..., k] = x[..., j] if j >= 0 else self.fixed_value[k]
        return out


def constraints(law, bounds: Mapping[str, Sequence[float]] | None = None,
                fixed: Mapping[str, float] | None = None,
                tie: Sequence[Sequence[str]] | Mapping[str, str] | None = None) -> Constraints:
    """Resolve bounds, fixed and tied parameters (names natural or internal; values on the scale the
    name implies).

    ``tie`` is a list of groups (``[("alpha", "beta")]``) or a mapping ``{"beta": "alpha"}``.
    """
    P = law.n_params
    for what, arg in (("bounds", bounds), ("fixed", fixed)):
        if arg is not None and not isinstance(arg, Mapping):
            raise TypeError(f"{what} must be a mapping from parameter names to "
                            f"{'(lower, upper) pairs' if what == 'bounds' else 'values'}, got {type(arg).__name__}")
    if isinstance(tie, str):
        raise TypeError(f"tie must be a list of groups such as [('alpha', 'beta')], got the string {tie!r}")
    lo = np.array([p.internal_bounds()[0] for p in law.params])
    hi = np.array([p.internal_bounds()[1] for p in law.params])
    for what, arg in (("bounds", bounds), ("fixed", fixed)):
        _no_alias(law, what, arg or {})
    for name, b in (bounds or {}).items():
        i = law.index(name)
        try:
            if isinstance(b, (str, bytes)):
                raise TypeError
            pair = tuple(b)
            if any(not _is_real(v) for v in pair if v is not None):
                raise TypeError  # "0.5" is not a number here (float() would take it)
            blo, bhi = (float(v) if v is not None else None for v in pair)
        except OverflowError:
            raise ValueError(f"bounds for {name!r} must be within the float64 range, got {b!r}") from None
        except (TypeError, ValueError):
            raise ValueError(f"bounds for {name!r} must be a pair (lower, upper), got {b!r}") from None
        blo = -math.inf if blo is None else blo
        bhi = math.inf if bhi is None else bhi
        if math.isnan(blo) or math.isnan(bhi):
            raise ValueError(f"bounds for {name!r} contain NaN")
        if blo > bhi:
            raise ValueError(f"lower bound {blo:g} of parameter {name!r} is above its upper bound {bhi:g}")
        p = law.params[i]
        if p.name in getattr(law, "natural_params", ()) and blo < 0:
            raise ValueError(f"bounds for {name!r}: {p.name} is a coefficient fitted on the natural scale "
                             f"(scale='natural'), which must stay >= 0; got the lower bound {blo:g}")
        if name == p.internal or p.transform == "identity":
            lo[i], hi[i] = blo, bhi
        else:
            if bhi <= 0:
                raise ValueError(f"parameter {name!r} is positive (log scale); upper bound {bhi:g} is not")
            lo[i] = math.log(blo) if blo > 0 else -math.inf
            hi[i] = math.log(bhi) if math.isfinite(bhi) else math.inf
    fixed_value = np.zeros(P)
    is_fixed = np.zeros(P, dtype=bool)
    for name, v in (fixed or {}).items():
        i = law.index(name)
        if isinstance(v, bool) or not _is_real(v):
            raise TypeError(f"fixed value of parameter {name!r} must be a number, got {v!r}")
        try:
            iv = float(law.value_to_internal(name, v))
        except OverflowError:
            raise ValueError(f"fixed value of parameter {name!r} is too large for float64") from None
        except (TypeError, ValueError):
            raise TypeError(f"fixed value of parameter {name!r} must be a number, got {v!r}") from None
        if not math.isfinite(iv):
            raise ValueError(f"fixed value {v!r} of parameter {name!r} is not valid on its scale")
        if not lo[i] <= iv <= hi[i]:
            raise ValueError(f"fixed value {v!r} of parameter {name!r} is outside its bounds "
                             f"[{lo[i]:g}, {hi[i]:g}] (internal scale)")
        fixed_value[i], is_fixed[i] = iv, True
    # Tied groups: union by representative (lowest index).
    parent = list(range(P))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    groups = [] if tie is None else ([(k, v) for k, v in tie.items()] if isinstance(tie, Mapping) else tie)
    if not isinstance(groups, (list, tuple)):
        raise TypeError(f"tie must be a list of groups such as [('alpha', 'beta')] or a mapping, "
                        f"got {type(tie).__name__}")
    for g in groups:
        if not isinstance(g, (list, tuple, set, frozenset)) or len(g) < 2:
            raise ValueError(f"each tie must name at least two parameters, got {g!r} "
                             f"(tie is a list of groups such as [('alpha', 'beta')])")
        ids = [law.index(n) for n in g]
        kinds = {law.params[i].transform for i in ids}
        if len(kinds) > 1:
            raise ValueError(f"tied parameters {list(g)} must share one transform (log or identity)")
        r = min(find(i) for i in ids)
        for i in ids:
            parent[find(i)] = r
    free_index = np.full(P, -1, dtype=np.int32)
    rep: list[int] = []
    for i in range(P):
        r = find(i)
        grp = [k for k in range(P) if find(k) == r]
        if any(is_fixed[k] for k in grp):
            vals = {fixed_value[k] for k in grp if is_fixed[k]}
            if len(vals) > 1:
                raise ValueError(f"tied parameters {[law.params[k].name for k in grp]} are fixed to different values")
            fixed_value[i] = vals.pop()
            if not lo[i] <= fixed_value[i] <= hi[i]:  # a tie passes the value on: it must respect i's bounds too
                src = next(law.params[k].name for k in grp if is_fixed[k])
                raise ValueError(f"parameter {law.params[i].name!r} is tied to {src!r}, fixed at "
                                 f"{fixed_value[i]:g} (internal scale), outside the bounds "
                                 f"[{lo[i]:g}, {hi[i]:g}] of {law.params[i].name!r}")
            continue
        if r == i:
            rep.append(i)
    for j, r in enumerate(rep):
        for k in range(P):
            if find(k) == r:
                free_index[k] = j
    if not rep:
        raise ValueError("every parameter is fixed: nothing to fit")
    flo = np.array([max(lo[k] for k in range(P) if free_index[k] == j) for j in range(len(rep))])
    fhi = np.array([min(hi[k] for k in range(P) if free_index[k] == j) for j in range(len(rep))])
    for j, r in enumerate(rep):
        if flo[j] > fhi[j]:
            raise ValueError(f"tied parameters around {law.params[r].name!r} have disjoint bounds")
    return Constraints(free_index, fixed_value, flo, fhi, tuple(law.params[r].internal for r in rep),
                       np.array(rep, dtype=np.int64))


def _no_alias(law, what: str, arg: Mapping) -> None:
    """A ValueError when a mapping names one parameter twice, under its natural and its internal name (the
    later entry would otherwise win silently)."""
    seen: dict[int, str] = {}
    for name in arg:
        i = law.index(name)
        if i in seen:
            raise ValueError(f"{what} names parameter {law.params[i].name!r} twice, as {seen[i]!r} and {name!r} "
                             f"(natural and internal name); give it once")
        seen[i] = name


def check_starts(law, con: Constraints, free: np.ndarray) -> None:
    """Starts (free parameters, any leading shape) must be finite and within the bounds: a ValueError names the
    start and the parameter (starts are never clipped silently)."""
    flat = free.reshape(-1, con.n_free)
    bad = np.argwhere(~np.isfinite(flat))
    if bad.size:
        s, j = bad[0]
        raise ValueError(f"start {s}: parameter {con.free_names[j]} is {flat[s, j]} (starts must be finite)")
    below = np.argwhere(flat < con.lower)
    above = np.argwhere(flat > con.upper)
    for arr, word, b in ((below, "below its lower", con.lower), (above, "above its upper", con.upper)):
        if arr.size:
            s, j = arr[0]
            raise ValueError(
                f"start {s}: parameter {con.free_names[j]} = {flat[s, j]:g} is {word} bound {b[j]:g} "
                f"(internal scale); {len(arr)} start value(s) out of bounds"
            )
