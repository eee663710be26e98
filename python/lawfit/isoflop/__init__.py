"""Compute-optimal allocation from IsoFLOP profiles and training curves: Hoffmann et al.'s Approaches 1 and 2,
beside the parametric fit (Approach 3, :func:`lawfit.fit` with :mod:`lawfit.allocation`).

Approach 2 (:func:`approach2`), IsoFLOP profiles
    Runs are grouped by training compute C (the table's C column, or C = 6 N D): runs that share a budget
    exactly, or, with ``tolerance=T``, runs binned in log C, each bin spanning at most a factor 1 + T (the
    densest window first, so bins sit on the clusters of budgets), or snapped to given ``budgets=``. Per
    budget, the loss (not the log loss, see below) is fitted against x = log N by least squares with a
    parabola (Hoffmann et al.), a cubic, or interpolated with a piecewise cubic ("interpolant", modified
    Akima slopes), and its minimum located. A budget is *excluded* from the power law, and listed with the
    reason, when it has fewer distinct model sizes than the shape needs (3, 4, 3; ``min_runs`` raises it),
    when the fitted curve has no minimum (a parabola opening downwards), or when the minimum lies outside the
    sampled range of log N (not bracketed). Then ``log N_opt = log k_N + a log C`` is fitted by least squares
    over the budgets used. D_opt = C / (6 N_opt) at each budget by default (``d_opt="derived"``: consistent
    with C = 6 N D, so b = 1 - a exactly); ``d_opt="fit"`` locates the minimum against log D as well.

    Why the loss and not the log loss: along a budget the Chinchilla law is
    L = E + K (exp(-alpha u)/alpha + exp(beta u)/beta) with u = log(N / N_opt) and K depending on C only,
    so loss - E has the same shape at every budget up to the factor K. A window of sizes placed the same way
    around N_opt at every budget (centred, or any fixed offset and width) then puts the parabola's vertex at
    the same offset from N_opt at every budget: k_N is biased, the exponent a is not. The log loss breaks
    this (E no longer cancels). The documented bias of the parabola (alpha != beta: the profile is skewed)
    reaches a only when the window's placement relative to N_opt drifts with C, as when the sampled sizes
    follow a guessed exponent; the cubic and the interpolant follow the skew and shrink it.

Approach 1 (:func:`approach1`), the lower envelope of training curves
    From a table of training curves (several rows per run: N, tokens so far D, loss; runs are grouped by a
    ``run`` column, or by N), each curve's loss is interpolated linearly in log C (= log D + const) and, at
    ``n_grid`` log-spaced budgets within the covered range, the run with the lowest loss is found; its N and
    D are the envelope's allocation at that C. Envelope points whose winner is the smallest or the largest
    model covering that C are not bracketed and are excluded (and counted). Power laws in C are fitted over
    the rest. With final losses only (one row per run, e.g. the bundled Chinchilla runs), Approach 1
    degenerates to the envelope of final points: the runs with a lower loss than every run of smaller C (the
    Pareto front of loss against compute), with N and D fitted against their own C.

Bootstrap (``bootstrap=n, seed=s``; ``numpy.random.default_rng(seed)`` as in :mod:`lawfit.bootstrap`)
    Approach 2 resamples the runs within each budget (with replacement, as many as the budget has); every
    budget's polynomial is refitted for all resamples at once as weighted normal equations (R x G small
    systems solved as one batch), and the power law as a batch of weighted regressions. A budget that is too
    thin or unbracketed in a resample is left out of that resample's power law (counted in ``n_dropped``).
    Approach 1 resamples the runs (models); the envelope of all resamples is computed as one masked minimum.
    Intervals are percentile intervals on a, b and on N_opt, D_opt at any budget (:meth:`IsoFLOPResult.optimal`).

:func:`compare` puts the three approaches side by side (exponents, intervals, the allocation each implies at a
budget) in a DataFrame; :func:`lawfit.plots.isoflop_approaches` draws them.

Modules: ``results`` (IsoFLOPResult, IsoFLOPBootstrap), ``budgets`` (reading runs, grouping them into budgets),
``minima`` (the minimum of each profile, power laws in C), ``resampling`` (bootstrap plumbing), ``profiles``
(Approach 2), ``envelope`` (Approach 1), ``comparison`` (compare).
"""

from __future__ import annotations

from .budgets import HOFFMANN_BUDGETS
from .budgets import TRAIN_FLOPS as TRAIN_FLOPS
from .budgets import _EXACT as _EXACT  # read by the tests
from .budgets import _bin_budgets as _bin_budgets  # read by the tests and benchmarks/isoflop_grouping.py
from .comparison import compare
from .envelope import approach1
from .minima import SHAPES
from .profiles import DRIFT_NOTE as DRIFT_NOTE
from .profiles import approach2
from .results import IsoFLOPBootstrap, IsoFLOPResult

__all__ = ["approach1", "approach2", "compare", "IsoFLOPResult", "IsoFLOPBootstrap", "SHAPES", "HOFFMANN_BUDGETS"]
