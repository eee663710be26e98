"""``lawfit.fit``: one law, one dataset, many starting points, the best fit and how it was reached."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import engine
from . import laws as _laws
from .data import prepare
from .status import Status, is_success

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
    """

    law: Any
    params: dict
    internal: dict
    fun: float
    success: bool
    status: Status
    nit: int
    nfev: int
    at_bound: tuple
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
    bootstrap: Any = field(default=None, repr=False)  # BootstrapResult when fit(..., bootstrap=n)
    objective: Any = field(default=None, repr=False)
    n_scored: int | None = None

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


def fit(law, data, *, starts: Any = "grid", loss="huber", delta: float | None = None,
        asymmetry: float | None = None, q: float | None = None, c: float | None = None,
        residual: str | None = None, reduction: str | None = None, screen: int | None = None,
        bounds=None,
        fixed=None, tie=None, weights=None, columns=None, threads: int | None = None,
        bootstrap: int | None = None, seed=None, progress=None, backend: str = "cpu",
        bootstrap_options: dict | None = None, **solver) -> FitResult:
    """Fit a scaling law to training runs from many starting points and keep the best.

    Parameters
    ----------
    law : a :class:`~lawfit.laws.Law` or a built-in name ("chinchilla", "kaplan", ...).
    data : DataFrame or mapping of arrays with a column per law variable (N, D, ...) and ``loss``;
        ``columns`` maps law names to other column names, e.g. ``{"N": "params", "loss": "val_loss"}``.
    starts : "grid" (the law's default grid), "hoffmann" (Hoffmann et al.'s 4500 points, Chinchilla),
        a dict of values per parameter (natural names: natural scale; internal names such as ``a``:
        internal scale) whose product is the grid, or an array (n_starts, n_params) on the internal scale.
    loss : "huber" (with ``delta``, default 1e-3), "squared" (r^2/2), "absolute" (|r|, minimised exactly),
        "quantile" (pinball loss with ``q``), "asymmetric_huber" (Huber with over-predictions, r > 0,
        weighted ``asymmetry`` times: for fitting the lower envelope of under-tuned runs),
        "huber_likelihood" (Epoch AI's maximum likelihood with a Huber-type error of scale sigma, fitted
        too: ``params`` then include ``sigma``), or a :class:`lawfit.Loss`. See :mod:`lawfit.losses`.
    residual : "log" (r = log L_hat - log L, the default) or "linear" (r = L_hat - L).
    reduction : "sum" (the default) or "mean" (divided by the sum of the weights).
    screen : None (fit every start) or k: score every start by its objective and fit only the k best
        (``screen=16`` reaches the optimum of Hoffmann's 4500-start grid on the bundled runs).
    bounds : {name: (lower, upper)}; fixed : {name: value}; tie : [("alpha", "beta")].
    weights : non-negative weight per run (for example bootstrap counts).
    threads : worker threads (default: all cores). Results do not depend on it.
    bootstrap, seed : when given, also refit on ``bootstrap`` resamples drawn with ``seed`` (the smart
        start strategy of :func:`lawfit.bootstrap`); the result's ``.bootstrap`` holds them.
    bootstrap_options : further keyword arguments of :func:`lawfit.bootstrap` (``strategy``, ``screen``,
        ``chunk``, ``checkpoint``, ``executor``, ``max_basins``).
    progress : True for a progress bar on stderr for long runs, or a callable(done, total).
    backend : "cpu", "cuda" or "auto" (see :func:`lawfit.engine.minimize`).
    **solver : solver options passed to :func:`lawfit.engine.minimize` (max_iter, xtol, ftol, ...).
    """
    from . import losses as _losses

    spec = _losses.spec(loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual,
                        reduction=reduction)
    law = engine.law_for_loss(law, spec)
    ds = prepare(law, data, columns=columns)
    w = None
    if weights is not None:
        w = np.asarray(weights)
        if w.ndim != 1:
            raise ValueError(f"fit() takes one weight per run, shape ({ds.n},); use lawfit.engine.minimize "
                             f"for many weight rows")
    batch = engine.minimize(law, ds, starts, weights=w, bounds=bounds, fixed=fixed, tie=tie, loss=spec,
                            keep="all", screen=screen, threads=threads, progress=progress,
                            backend=backend, **solver)
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
        start_theta=batch.theta[0], objective=spec, n_scored=batch.n_scored,
    )
    if bootstrap is None:
        return result
    if w is not None:
        raise ValueError("fit(..., bootstrap=n) resamples the runs; it does not take weights")
    from .bootstrap import bootstrap as _bootstrap

    boot = _bootstrap(law, ds, bootstrap, seed=seed, starts=starts, loss=spec,
                      bounds=bounds,
                      fixed=fixed, tie=tie, threads=threads, _full=result, progress=progress,
                      backend=backend, **(bootstrap_options or {}), **solver)
    return dataclasses.replace(result, bootstrap=boot)


