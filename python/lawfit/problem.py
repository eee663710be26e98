"""A fitting problem, validated once: the law, the data, the objective, the constraints and the solver's options.

``fit``, ``bootstrap``, ``minimize``, ``evaluate`` and the runner take a :class:`Problem` in place of a law (then
none of the problem's own keywords may be given again), or build one from their keywords. Only what varies per
call stays outside: starts, weight rows, ``keep``, ``screen``, threads, progress and the backend.

    prob = lawfit.problem("chinchilla", runs, loss="quantile", q=0.1, bounds={"alpha": (0, 1)})
    lawfit.minimize(prob, starts="hoffmann", weights=W)
    lawfit.evaluate(prob, prob.law.default_grid()[:10])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import _core
from . import laws as _laws
from . import losses as _losses
from .constraints import Constraints, _finite, constraints
from .data import Dataset, prepare

__all__ = ["Problem", "SolverOptions", "problem", "resolve", "PROBLEM_KEYWORDS"]

_OPTS = ("max_iter", "xtol", "ftol", "radius0", "irls", "switch_rtol")
_LOSS_KEYS = ("loss", "delta", "asymmetry", "q", "c", "residual", "reduction")
PROBLEM_KEYWORDS = _LOSS_KEYS + ("bounds", "fixed", "tie", "columns") + _OPTS + ("trust_scale",)


@dataclass(frozen=True)
class SolverOptions:
    """The per-fit solver's options (DESIGN.md, "The solver"); defaults from the core (``_core.SOLVER``)."""

    max_iter: int = _core.SOLVER["max_iter"]
    xtol: float = _core.SOLVER["xtol"]
    ftol: float = _core.SOLVER["ftol"]
    radius0: float = _core.SOLVER["radius0"]
    irls: float = _core.SOLVER["irls"]
    switch_rtol: float = _core.SOLVER["switch_rtol"]

    def __post_init__(self):
        m = self.max_iter
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m < 2**31:
            raise ValueError(f"max_iter must be a positive integer below 2**31, got {m!r}")
        object.__setattr__(self, "max_iter", int(m))
        for name in _OPTS[1:]:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise TypeError(f"solver option {name} must be a number, got {v!r}")
            if not _finite(v):
                raise ValueError(f"solver option {name} must be finite, got {v!r}")
            object.__setattr__(self, name, float(v))

    def core(self):
        """As the backends take them (``_core.SolverOptions``; the core checks the ranges)."""
        return _core.SolverOptions(self.max_iter, self.xtol, self.ftol, self.radius0, self.irls, self.switch_rtol)


@dataclass(frozen=True, eq=False)
class Problem:
    """law (with the loss's own parameters, e.g. the Huber likelihood's sigma), data (a prepared
    :class:`~lawfit.data.Dataset`), loss (a :class:`lawfit.Loss`), constraints (bounds, fixed and tied
    parameters, resolved), solver (:class:`SolverOptions`), trust_scale (the solver's scaling: an array per
    free parameter, or None)."""

    law: Any
    data: Dataset
    loss: _losses.Loss
    constraints: Constraints
    solver: SolverOptions
    trust_scale: np.ndarray | None = field(default=None, repr=False)

    @property
    def target(self) -> np.ndarray:
        """The kernels' target: log L or L, by the loss's residual scale."""
        return self.loss.target(self.data)

    def fingerprint(self) -> bytes:
        """A digest of everything that determines a fit's result: program, data, objective, resolved
        constraints, solver options, parameter names and transforms, and lawfit's version."""
        from . import __version__

        h = hashlib.sha256()
        prog = self.law.program
        con = self.constraints
        for arr in (prog.op, prog.a, prog.b, prog.imm, prog.args, prog.argflags, self.data.features,
                    self.target, con.free_index, con.fixed_value, con.lower, con.upper, con.rep,
                    np.empty(0) if self.trust_scale is None else self.trust_scale):
            a = np.ascontiguousarray(arr)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        h.update(repr((self.loss, self.solver, con.free_names,
                       tuple((p.name, p.internal, p.transform) for p in self.law.params), __version__)).encode())
        return h.digest()


def problem(law, data, *, loss: Any = "huber", delta: float | None = None, asymmetry: float | None = None,
            q: float | None = None, c: float | None = None, residual: str | None = None,
            reduction: str | None = None, bounds: Mapping | None = None, fixed: Mapping | None = None,
            tie=None, columns: Mapping[str, str] | None = None, max_iter: int | None = None,
            xtol: float | None = None, ftol: float | None = None, radius0: float | None = None,
            irls: float | None = None, switch_rtol: float | None = None, trust_scale: Any = "auto") -> Problem:
    """Validate a fitting problem once. The keywords are those of :func:`lawfit.fit` (see there); solver
    options left as None take the core's defaults; ``trust_scale`` is "auto", None or an array."""
    from . import engine
    from .trust import _trust_scale_option

    spec = _losses.spec(loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual, reduction=reduction)
    law = engine.law_for_loss(_laws.get(law), spec)
    ds = prepare(law, data, columns=columns)
    con = constraints(law, bounds, fixed, tie)
    given: dict[str, Any] = {k: v for k, v in zip(_OPTS, (max_iter, xtol, ftol, radius0, irls, switch_rtol))
                             if v is not None}
    solver = SolverOptions(**given)
    scale = _trust_scale_option(trust_scale, law, ds, con)
    return Problem(law=law, data=ds, loss=spec, constraints=con, solver=solver, trust_scale=scale)


def resolve(law, data, kw: Mapping[str, Any]) -> Problem:
    """``law`` itself when it is a :class:`Problem` (then ``data`` and the problem keywords must be left out),
    else :func:`problem` of the arguments. ``kw`` holds the problem keywords as the caller received them
    (None, or "auto" for trust_scale, means not given; trust_scale=None is the choice of no scaling)."""
    given = {k: v for k, v in kw.items()
             if (k == "trust_scale" and not (isinstance(v, str) and v == "auto"))  # None: no scaling, a choice
             or (k != "trust_scale" and v is not None)}
    if isinstance(law, Problem):
        if data is not None:
            raise ValueError("a lawfit.Problem carries its data; do not pass data as well")
        if given:
            raise ValueError(f"a lawfit.Problem is already validated; {sorted(given)} belong to it "
                             f"(build another with lawfit.problem(...))")
        return law
    unknown = set(kw) - set(PROBLEM_KEYWORDS)
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    return problem(law, data, **given)
