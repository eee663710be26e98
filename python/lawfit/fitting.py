"""``lawfit.fit``: the multi-start fit (:mod:`lawfit.multistart`) and, when asked, its bootstrap
(:mod:`lawfit.bootstrap`). The layers: multistart <- bootstrap <- fitting, so neither lower module imports an
upper one."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import multistart
from .bootstrap import bootstrap as _bootstrap
from .multistart import (COND_RTOL, RANK_RTOL, FitResult, free_hessian, hessian_analysis,  # noqa: F401
                         rank_message)

__all__ = ["fit", "FitResult"]


def fit(law, data=None, *, starts: Any = "grid", bootstrap: int | None = None, seed=None,
        bootstrap_options: dict | None = None, weights=None, threads: int | None = None, progress=None,
        backend: str = "cpu", **options) -> FitResult:
    """Fit a scaling law to training runs from many starting points and keep the best.

    Parameters
    ----------
    law : a :class:`~lawfit.laws.Law`, a built-in name ("chinchilla", "kaplan", ...) or a
        :class:`lawfit.Problem` (then leave out data and the objective, constraint and solver keywords).
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
    progress : True for a progress bar on stderr for long runs, or a callable(done, total).
    backend : "cpu", "cuda" or "auto" (see :func:`lawfit.engine.minimize`).
    bootstrap, seed : when given, also refit on ``bootstrap`` resamples drawn with ``seed`` (the smart
        start strategy of :func:`lawfit.bootstrap`); the result's ``.bootstrap`` holds them.
    bootstrap_options : further keyword arguments of :func:`lawfit.bootstrap` (``strategy``, ``screen``,
        ``chunk``, ``checkpoint``, ``executor``, ``max_basins``).
    **solver : solver options passed to :func:`lawfit.engine.minimize` (max_iter, xtol, ftol, ...).

    Fewer runs with positive weight (or distinct points) than free parameters is a ValueError. A successful fit
    whose Hessian at the optimum is singular or nearly so warns (:class:`~lawfit.warnings.IdentifiabilityWarning`,
    :class:`~lawfit.warnings.IllConditionedWarning`) naming the direction the data do not determine.
    """
    result = multistart.fit(law, data, starts=starts, weights=weights, threads=threads, progress=progress,
                            backend=backend, **options)
    if bootstrap is None:
        return result
    if weights is not None:
        raise ValueError("fit(..., bootstrap=n) resamples the runs; it does not take weights")
    boot = _bootstrap(result.problem, None, bootstrap, seed=seed, starts=starts, threads=threads, _full=result,
                      progress=progress, backend=backend, **(bootstrap_options or {}))
    return dataclasses.replace(result, bootstrap=boot)
