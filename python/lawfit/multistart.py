"""One multi-start fit: one law, one dataset, many starting points, the best fit and how it was reached
(:class:`FitResult`), with the identifiability checks at the optimum. :func:`lawfit.fit` (fitting.py) adds the
bootstrap on top; this module does not know about it."""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import engine
from .status import Status, is_success
from .warnings import IdentifiabilityWarning, IllConditionedWarning

if TYPE_CHECKING:
    from .bootstrap import BootstrapResult
    from .constraints import Constraints
    from .laws import Law
    from .losses import Loss
    from .problem import Problem

__all__ = ["fit", "FitResult"]


@dataclass(frozen=True)
class FitResult:
    """The best of a multi-start fit.

    Attributes
    ----------
    params : natural-scale values by name (for Chinchilla: E, A, B, alpha, beta).
    internal : fitted (internal-scale) values by internal name (e, a, b, alpha, beta).
    fun : objective at the optimum, in the convention of ``objective`` (by default the sum of Huber losses,
        delta 1e-3, of log residuals; see :mod:`lawfit.losses`).
    success : whether the best start converged (``status`` says how).
    objective : the :class:`lawfit.Loss` minimised (loss, parameter, residual scale, reduction).
    n_scored : with ``screen=k``, how many starts were scored (``n_starts`` were fitted).
    condition : condition number of the Hessian of the free parameters (those not on a bound) at the optimum,
        scaled to a unit diagonal; inf when it is singular or not positive definite; NaN when not computed (a
        failed fit).
    unidentified : when the fit warned (:class:`~lawfit.warnings.IdentifiabilityWarning` or
        :class:`~lawfit.warnings.IllConditionedWarning`), the direction it names, e.g. ``"a - 20.7 alpha"``.
    """

    law: Law
    params: dict[str, float]
    internal: dict[str, float]
    fun: float
    success: bool
    status: Status
    nit: int
    nfev: int
    at_bound: tuple[str, ...]
    best_start: int
    n_starts: int
    n_success: int
    n_runs: int
    loss: str
    delta: float
    start_fun: np.ndarray = field(repr=False)
    start_status: np.ndarray = field(repr=False)
    start_nit: np.ndarray = field(repr=False)
    start_theta: np.ndarray = field(repr=False)  # (n_starts, n_params) internal end points of every start
    bootstrap: BootstrapResult | None = field(default=None, repr=False)  # when fit(..., bootstrap=n)
    problem: Problem | None = field(default=None, repr=False)  # the lawfit.Problem that was fitted
    objective: Loss | None = field(default=None, repr=False)
    n_scored: int | None = None
    constraints: Constraints | None = field(default=None, repr=False)  # bounds, fixed and tied parameters
    condition: float = field(default=float("nan"), repr=False)
    unidentified: str | None = field(default=None, repr=False)

    @property
    def message(self) -> str:
        return self.status.message

    @property
    def x(self) -> np.ndarray:
        """Internal parameter vector (order of ``law.internal_names``)."""
        return np.array([self.internal[n] for n in self.law.internal_names])

    def n_reached(self, rtol: float = 1e-9) -> int:
        """Number of starts whose converged objective is within ``rtol`` (relative) of the best."""
        ok = is_success(self.start_status) & np.isfinite(self.start_fun)
        return int(np.sum(ok & (self.start_fun <= self.fun + rtol * abs(self.fun))))

    def to_dict(self) -> dict:
        return {
            "law": self.law.name, "params": dict(self.params), "internal": dict(self.internal),
            "objective": self.fun, "success": self.success, "status": self.status.name,
            "message": self.message, "nit": self.nit, "nfev": self.nfev, "at_bound": list(self.at_bound),
            "best_start": self.best_start, "n_starts": self.n_starts, "n_success": self.n_success,
            "n_runs": self.n_runs, "loss": self.loss, "delta": self.delta,
            "loss_spec": None if self.objective is None else self.objective.to_dict(),
            "n_scored": self.n_scored,
        }

    def to_frame(self):
        """Estimates as a DataFrame: one row per parameter (natural value, internal name and value)."""
        import pandas as pd

        rows = [
            {"param": p.name, "value": self.params[p.name], "fitted_as": p.internal,
             "internal": self.internal[p.internal], "at_bound": p.internal in self.at_bound}
            for p in self.law.params
        ]
        return pd.DataFrame(rows).set_index("param")

    def summary(self) -> str:
        lines = [
            f"lawfit: {self.law.name}   L = {self.law.formula}",
            f"{self.n_runs} runs, " + (self.objective.describe() if self.objective is not None
                                       else f"{self.loss} loss"),
            f"objective {self.fun:.10g}   {self.status.name.lower()} after {self.nit} iterations",
            (f"starts: {self.n_scored} scored, {self.n_starts} fitted, " if self.n_scored is not None
             else f"starts: {self.n_starts}, ") + f"converged {self.n_success}, "
            f"reaching the best to 1e-9: {self.n_reached()}",
            "",
            f"{'param':<10}{'value':>14}   {'fitted as':<10}{'internal':>14}",
        ]
        for p in self.law.params:
            flag = "  (at bound)" if p.internal in self.at_bound else ""
            lines.append(f"{p.name:<10}{self.params[p.name]:>14.6g}   {p.internal:<10}"
                         f"{self.internal[p.internal]:>14.8g}{flag}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def fit(law, data=None, *, starts: Any = "grid", loss=None, delta: float | None = None,
        asymmetry: float | None = None, q: float | None = None, c: float | None = None,
        residual: str | None = None, reduction: str | None = None, screen: int | None = None,
        bounds=None,
        fixed=None, tie=None, weights=None, columns=None, threads: int | None = None,
        progress=None, backend: str = "cpu", **solver) -> FitResult:
    """One multi-start fit: the keywords and result of :func:`lawfit.fit` (documented there), without its
    bootstrap.

    Fewer runs with positive weight (or distinct points) than free parameters is a ValueError. A successful fit
    whose Hessian at the optimum is singular or nearly so warns (:class:`~lawfit.warnings.IdentifiabilityWarning`,
    :class:`~lawfit.warnings.IllConditionedWarning`) naming the direction the data do not determine.
    """
    from .problem import resolve

    prob = resolve(law, data, dict(loss=loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual,
                                   reduction=reduction, bounds=bounds, fixed=fixed, tie=tie, columns=columns,
                                   **solver))
    law, ds, spec = prob.law, prob.data, prob.loss
    w = None
    if weights is not None:
        w = weights if isinstance(weights, np.ma.MaskedArray) else np.asarray(weights)
        if w.ndim != 1:
            raise ValueError(f"fit() takes one weight per run, shape ({ds.n},); use lawfit.engine.minimize "
                             f"for many weight rows")
        w = engine._weights(w, ds.n)[0]  # type: ignore[index]  # not None for given weights
        con = prob.constraints
        if engine._identifiable_rows(law, ds, con, w[None, :])[0].max() == 0:
            raise ValueError(f"too few runs with positive weight ({np.count_nonzero(w)}, at {_n_points(ds, w)} "
                             f"distinct points) for the fit's {con.n_free} free parameters "
                             f"({', '.join(con.free_names)}): the law is not identified")
    batch = engine.minimize(prob, None, starts, weights=w, keep="all", screen=screen, threads=threads,
                            progress=progress, backend=backend)
    fun = batch.fun[0]
    status = batch.status[0]
    ok = is_success(status)
    order = np.lexsort((np.arange(fun.size), np.where(np.isfinite(fun), fun, np.inf), ~ok))
    best = int(order[0])
    theta = batch.theta[0, best]
    mask = int(batch.at_bound[0, best])
    at_bound = tuple(n for j, n in enumerate(batch.constraints.free_names) if mask >> j & 1)
    st = Status(int(status[best]))
    result = FitResult(
        law=law,
        params={p.name: float(p.to_natural(theta[i])) for i, p in enumerate(law.params)},
        internal={p.internal: float(theta[i]) for i, p in enumerate(law.params)},
        fun=float(fun[best]), success=st.success, status=st, nit=int(batch.nit[0, best]),
        nfev=int(batch.nfev[0, best]), at_bound=at_bound,
        best_start=best if batch.start_index is None else int(batch.start_index[0, best]),
        n_starts=int(fun.size),
        n_success=int(ok.sum()), n_runs=ds.n if w is None else int(np.count_nonzero(w)), loss=spec.name,
        delta=spec.delta, start_fun=fun, start_status=status, start_nit=batch.nit[0],
        start_theta=batch.theta[0], objective=spec, n_scored=batch.n_scored, constraints=batch.constraints,
        problem=prob,
    )
    lower = ~ok & np.isfinite(fun) & (fun < result.fun - 1e-6 * abs(result.fun))
    if result.success and lower.any():
        from .warnings import BetterUnconvergedWarning

        j = int(np.flatnonzero(lower)[np.argmin(fun[lower])])
        warnings.warn(BetterUnconvergedWarning(
            f"start {j} stopped without converging ({Status(int(status[j])).name}) at objective {fun[j]:.10g}, "
            f"below the best converged objective {result.fun:.10g} that is reported"), stacklevel=2)
    if result.success:
        cond, direction, warning = _curvature(result, ds, batch.constraints, w, spec)
        result = dataclasses.replace(result, condition=cond, unidentified=direction)
        if warning is not None:
            warnings.warn(warning, stacklevel=2)
    return result




# Thresholds on the Hessian of the free parameters, scaled to a unit diagonal (a correlation-like matrix whose
# eigenvalues sum to the number of parameters): a smallest eigenvalue at most RANK_RTOL times the largest is a
# singular (or indefinite) Hessian, one at most COND_RTOL times the largest an ill-conditioned one (a standard
# error along that direction some sqrt(1e7) ~ 3000 times what each parameter's own curvature suggests).
# Measured: the Chinchilla fit to Hoffmann's runs has 8e-6 (Huber), 2e-5 (squared); a two-parameter power law on
# sizes spanning 3 % has 5e-8; a constant N column gives -2e-9 to 1e-16 and five runs for five parameters 1e-16
# to negative.
RANK_RTOL = 1e-9
COND_RTOL = 1e-7
# A free parameter whose curvature is so small that moving it by one unit on its internal scale (a factor e
# for a log parameter) would change the objective by less than FLAT_RTOL of its value has no effect the data
# can see (e.g. an irreducible term E that ran off to 1e-11): not identified, whatever the scaled Hessian says
# (scaling to a unit diagonal hides a vanishing diagonal). Fitted parameters of identified laws are 1e6 and more
# above it (Chinchilla on Hoffmann's runs: the smallest 0.5 H_jj / |f| is ~540).
FLAT_RTOL = 1e-10


def _n_points(ds, w) -> int:
    G, inv = engine._point_groups(ds)
    pos = np.asarray(w) > 0
    return int(np.count_nonzero(pos)) if inv is None else int(np.unique(inv[pos]).size)


def _direction(names, vec) -> str:
    """A direction as a readable combination of parameter names, largest component first with coefficient 1."""
    vec = np.asarray(vec, dtype=float)
    order = np.argsort(-np.abs(vec), kind="stable")
    vec = vec / vec[order[0]]
    terms: list[str] = []
    for j in order:
        c = vec[j]
        if abs(c) < 1e-3:
            continue
        mag = "" if abs(abs(c) - 1) < 5e-4 else f"{abs(c):.3g} "
        terms.append((("- " if c < 0 else "+ ") if terms else ("-" if c < 0 else "")) + mag + names[j])
    return " ".join(terms)


def free_hessian(h: np.ndarray, free_index: np.ndarray) -> np.ndarray:
    """The Hessian over the free parameters from the full one (J^T h J, J = d theta / d x: fixed parameters
    drop out, tied ones add up), by indexing, so a non-finite entry of a fixed parameter does not spread."""
    free_index = np.asarray(free_index)
    if np.array_equal(free_index, np.arange(len(h))):  # nothing fixed or tied
        return np.array(h, dtype=float)
    idx = np.flatnonzero(free_index >= 0)
    m = int(np.max(free_index)) + 1 if idx.size else 0
    sub = h[np.ix_(idx, idx)]
    if np.array_equal(free_index[idx], np.arange(m)):  # no ties: the free parameters in order
        return sub.copy()
    out = np.zeros((m, m))
    np.add.at(out, (free_index[idx][:, None], free_index[idx][None, :]), sub)
    return out


def hessian_analysis(hess: np.ndarray, names) -> tuple[float, float, str]:
    """(smallest / largest eigenvalue, condition number, direction of the smallest eigenvalue) of a free-parameter
    Hessian scaled to a unit diagonal. The direction is given on the parameters' own (internal) scale: moving the
    parameters along it changes the objective least; it is "" when the ratio exceeds COND_RTOL (nothing to report).
    A parameter with no curvature is that direction by itself. A Hessian that is not finite gives (nan, nan, "")."""
    hess = np.asarray(hess, dtype=float)
    if not np.all(np.isfinite(hess)):
        return math.nan, math.nan, ""
    d = np.diag(hess)
    bad = np.flatnonzero(d <= 0)
    if bad.size:
        j = int(bad[0])
        e = np.zeros(len(names))
        e[j] = 1.0
        return -math.inf, math.inf, _direction(names, e)
    s = 1.0 / np.sqrt(d)
    ev, vecs = np.linalg.eigh(hess * np.outer(s, s))
    rel = float(ev[0] / ev[-1])
    cond = float(ev[-1] / ev[0]) if ev[0] > 0 else math.inf
    return rel, cond, _direction(names, vecs[:, 0] * s) if rel <= COND_RTOL else ""


def rank_message(direction: str, rel: float, names) -> str:
    """Why a Hessian is singular, naming the direction (shared by fit's warning and sandwich's error)."""
    why = ("the objective does not curve along it at the optimum" if not math.isfinite(rel) else
           f"the Hessian at the optimum is singular or not positive definite there (smallest/largest eigenvalue of "
           f"the scaled Hessian {rel:.2g})")
    return (f"the data do not identify the fit along {direction} (in the fitted parameters {', '.join(names)}): "
            f"{why}; the estimates along it are arbitrary. Fix or tie a parameter, or add runs that vary what it "
            f"depends on")


def _curvature(result: FitResult, ds, con, w, spec):
    """Condition of the fit's Hessian over its free parameters not on a bound (one evaluation at the optimum),
    and the warning to issue, if any."""
    free = [j for j, n in enumerate(con.free_names) if n not in result.at_bound]
    if not free or spec.kinked:  # a kinked loss has no curvature; its vertex check verified the optimum
        return float("nan"), None, None
    ev = engine.evaluate(result.law, ds, result.x[None, :], weights=w, loss=spec, derivatives=2)
    h = ev.hess[0]  # type: ignore[index]
    names = [con.free_names[j] for j in free]
    hf = free_hessian(h, con.free_index)[np.ix_(free, free)]
    fval = abs(float(ev.fun[0]))
    flat = np.flatnonzero(0.5 * np.diag(hf) < FLAT_RTOL * fval) if np.all(np.isfinite(hf)) else np.array([])
    if flat.size:  # a parameter the objective does not see
        return math.inf, names[int(flat[0])], IdentifiabilityWarning(rank_message(names[int(flat[0])], -math.inf,
                                                                                  names))
    rel, cond, direction = hessian_analysis(hf, names)
    if math.isnan(rel):
        return math.nan, None, None
    if rel <= RANK_RTOL:
        return cond, direction, IdentifiabilityWarning(rank_message(direction, rel, names))
    if rel <= COND_RTOL:
        return cond, direction, IllConditionedWarning(
            f"the fit is ill-conditioned (condition number {cond:.3g} of the scaled Hessian): the direction "
            f"{direction} (in the fitted parameters {', '.join(names)}) is poorly determined by the data")
    return cond, None, None
