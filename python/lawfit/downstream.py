"""Two-stage downstream prediction (the Llama 3 report's method): forecast a task's accuracy at a larger budget.

Stage 1 fits the task's normalised negative log-likelihood of the correct answer against compute with a
saturating power law, ``nll(C) = E + A / C**alpha`` (Huber on log residuals, as for the loss). Stage 2 fits the
accuracy as a sigmoid of that NLL with a floor and a ceiling,

    acc(nll) = floor + span / (1 + exp(k (nll - nll0)))       (floor >= 0, span >= 0, k > 0)

with squared error on the raw accuracy (``residual="linear"``). Chaining them gives the accuracy at a budget;
the joint bootstrap resamples the runs (each run's compute, NLL and accuracy together), refits both stages and
takes intervals of the chained forecast from the bootstrap draws.

The plain percentile interval of those draws is too narrow with few runs: resampling runs reproduces the spread
of a fit with ``n`` runs and ``p`` free parameters only up to a factor of about ``sqrt((n - p) / n)`` (the
bootstrap's analogue of dividing a residual sum of squares by ``n`` instead of ``n - p``). The default interval
(``interval="adjusted"``) therefore widens the percentile interval about the point forecast by ``sqrt(n / (n -
p))``, ``p`` counting the free parameters of both stages (7). On simulated tasks with 60 runs this moves the
coverage of the nominal 95 % interval from about 0.90 to about 0.95 (``benchmarks/downstream_coverage.py``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from . import laws as _laws
from .data import check_level, column
from .warnings import LawfitWarning, ResampleWarning

__all__ = ["fit", "backtest", "DownstreamResult", "DownstreamBacktest", "sigmoid_law", "nll_law"]


def nll_law() -> _laws.Law:
    """Stage 1: ``nll(C) = E + A / C**alpha`` (the catalogue's saturating law in C)."""
    return _laws.get("saturating_C")


def sigmoid_law() -> _laws.Law:
    """Stage 2: accuracy as a sigmoid of the NLL with a floor and a span (ceiling = floor + span)."""
    return _laws.Law(
        "accuracy_sigmoid", "floor + span / (1 + exp(k * (nll - nll0)))", ("nll",),
        (_laws.Param("floor", lower=0.0, upper=1.0, grid=(0.0, 0.25)),
         _laws.Param("span", lower=0.0, upper=1.0, grid=(0.5, 0.75, 1.0)),
         _laws.Param("k", lower=1e-3, upper=1e3, grid=(1.0, 5.0, 20.0)),
         _laws.Param("nll0", grid=(0.5, 1.0, 2.0, 3.0))),
        formula="floor + span / (1 + exp(k (nll - nll0)))",
        description="Accuracy as a sigmoid of the task NLL (Llama 3 report, two-stage prediction).")


@dataclass(frozen=True)
class DownstreamResult:
    """stage1 (NLL against compute) and stage2 (accuracy against NLL) FitResults; ``draw_theta`` the joint
    bootstrap's parameters of both stages on the internal scale ((B, parameters) per stage) when fitted with
    ``bootstrap=n``, and ``draws`` the same on the natural scale (list of (stage1 params, stage2 params)).
    Predictions use the internal values: a draw whose E underflowed to 0 (log E far below the data's reach)
    has no natural log E, but predicts all the same."""

    stage1: Any
    stage2: Any
    draw_theta: tuple = field(default=(), repr=False)

    @property
    def draws(self) -> list:
        if not self.draw_theta:
            return []
        law1, law2 = nll_law(), sigmoid_law()
        return [(law1.to_natural(a), law2.to_natural(b)) for a, b in zip(*self.draw_theta)]

    @property
    def n_runs(self) -> int:
        return int(self.stage1.n_runs)

    @property
    def n_free(self) -> int:
        """Free parameters of both stages (those not fixed or tied)."""
        return sum(r.constraints.n_free if r.constraints is not None else len(r.params)
                   for r in (self.stage1, self.stage2))

    def predict(self, C, stage1: Mapping[str, float] | None = None, stage2: Mapping[str, float] | None = None):
        """Chained forecast: (nll, accuracy) at compute C."""
        C = np.atleast_1d(np.asarray(C, dtype=float))
        nll = nll_law().predict({"C": C}, stage1 or self.stage1.internal)  # internal: E = 0 predicts too
        acc = sigmoid_law().predict({"nll": nll}, stage2 or self.stage2.internal)
        return nll, acc

    def _draw_predictions(self, C: np.ndarray) -> np.ndarray:
        """(nll, accuracy) of every bootstrap draw at compute C: (B, 2, len(C))."""
        from .compiler import program_predict
        from .data import prepare

        t1, t2 = self.draw_theta
        law1, law2 = nll_law(), sigmoid_law()
        nll = np.exp(program_predict(law1.program, prepare(law1, {"C": C}, target=None).features, t1))
        out = np.empty((len(t1), 2, C.size))
        out[:, 0] = nll
        for b in range(len(t1)):  # stage 2's input, the NLL, differs per draw
            feats = prepare(law2, {"nll": nll[b]}, target=None).features
            out[b, 1] = np.exp(program_predict(law2.program, feats, t2[b][None, :]))[0]
        return out

    def forecast(self, C, level: float = 0.95, interval: str = "adjusted") -> dict:
        """Accuracy (and NLL) at compute C, with intervals from the joint bootstrap when it was run.

        ``interval="adjusted"`` (default) widens the percentile interval about the point forecast by
        ``sqrt(n / (n - p))`` (n runs, p free parameters of both stages; see the module's docstring);
        ``"percentile"`` is the plain percentile interval of the bootstrap draws.
        """
        if interval not in ("adjusted", "percentile"):
            raise ValueError(f"interval must be 'adjusted' or 'percentile', got {interval!r}")
        check_level(level)
        nll, acc = self.predict(C)
        out = {"C": np.atleast_1d(np.asarray(C, dtype=float)), "nll": nll, "accuracy": acc}
        if self.draw_theta:
            d = self._draw_predictions(out["C"])  # (B, 2, len(C))
            tail = (1 - level) / 2
            n, p = self.n_runs, self.n_free
            widen = math.sqrt(n / (n - p)) if interval == "adjusted" and n > p else 1.0
            for j, (name, point) in enumerate((("nll", nll), ("accuracy", acc))):
                lo = np.nanquantile(d[:, j], tail, axis=0)
                hi = np.nanquantile(d[:, j], 1 - tail, axis=0)
                top = 1.0 if name == "accuracy" else np.inf
                out[f"{name}_lo"] = np.clip(point + widen * (lo - point), 0.0, top)
                out[f"{name}_hi"] = np.clip(point + widen * (hi - point), 0.0, top)
        return out

    def plot(self, data: Any, path: str | None = None, budgets: Sequence[float] = (), columns=None):
        """NLL against compute and accuracy against NLL, with the fitted curves (and forecasts at budgets)."""
        from .plots import _plt

        plt = _plt()
        C, nll, acc = _task_columns(data, columns)
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        grid = np.geomspace(C.min(), max([C.max(), *budgets]), 200)
        g_nll, g_acc = self.predict(grid)
        a1.scatter(C, nll, s=12)
        a1.plot(grid, g_nll, "k-")
        a1.set_xscale("log")
        a1.set_xlabel("compute C (FLOP)")
        a1.set_ylabel("task NLL")
        a2.scatter(nll, acc, s=12)
        order = np.argsort(g_nll)
        a2.plot(g_nll[order], g_acc[order], "k-")
        a2.set_xlabel("task NLL")
        a2.set_ylabel("accuracy")
        for b in budgets:
            f = self.forecast([b])
            a1.plot([b], f["nll"], "r*", ms=10)
            a2.plot(f["nll"], f["accuracy"], "r*", ms=10)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def _task_columns(data: Any, columns: Mapping[str, str] | None):
    """The columns C, nll and accuracy (``columns`` maps them to other names), of equal length."""
    cols = dict(columns or {})
    C = column(data, cols.get("C", "C"), "compute C")
    nll = column(data, cols.get("nll", "nll"), "task NLL")
    acc = column(data, cols.get("accuracy", "accuracy"), "accuracy")
    if not (C.size == nll.size == acc.size):
        raise ValueError(f"columns C, nll and accuracy have {C.size}, {nll.size} and {acc.size} values")
    return C, nll, acc


_RESERVED = ("weights", "bootstrap", "seed", "columns", "bootstrap_options", "progress")


def _stage_options(opts: Mapping[str, Any] | None, which: str, defaults: Mapping[str, Any]) -> dict:
    """The keywords of one stage's fits: the defaults, then the user's (fixed, bounds, tie, loss, delta, ...)."""
    if opts is None:
        return dict(defaults)
    if not isinstance(opts, Mapping):
        raise TypeError(f"{which} must be a dict of lawfit.fit keywords, got {type(opts).__name__}")
    taken = sorted(k for k in opts if k in _RESERVED)
    if taken:
        raise ValueError(f"{which} cannot set {taken}: the two-stage fit sets them itself")
    return {**defaults, **opts}


def _fit_stages(C, nll, acc, w=None, stage1_starts=None, o1=None, o2=None):
    from .fitting import fit as _fit

    o1 = dict(o1 or {})
    if stage1_starts is not None:
        o1["starts"] = stage1_starts
    s1 = _fit(nll_law(), {"C": C, "loss": nll}, weights=w, **o1)
    s2 = _fit(sigmoid_law(), {"nll": nll, "loss": acc}, weights=w, **(o2 or STAGE2))
    return s1, s2


# Stage 2's fit: squared error on the raw accuracy.
STAGE2 = {"loss": "squared", "residual": "linear"}


# Stage 2's bootstrap refits start from the best SCREEN of its 72 grid points, scored per resample (10x faster
# than fitting all of them; on the bundled Pythia checkpoints every refit reaches the exhaustive optimum).
SCREEN = 16


def _joint_bootstrap(C, nll, acc, s1, n_boot: int, seed, o1=None, o2=None) -> tuple:
    """Both stages refitted on the same resamples of the runs, each stage as one batch (one weight row per
    resample): stage 1 from the full-data optimum, stage 2 from the best SCREEN points of its grid. Resamples
    with fewer than 5 distinct runs, and refits that fail in either stage, are left out."""
    from .engine import minimize

    rng = np.random.default_rng(seed)
    n = C.size
    W = np.array([np.bincount(rng.choice(n, n, replace=True), minlength=n) for _ in range(n_boot)], dtype=float)
    W = W[np.count_nonzero(W, axis=1) >= 5]
    if not len(W):
        return ()
    with warnings.catch_warnings():  # conditioning warnings are the full-data fit's to give
        warnings.simplefilter("ignore", LawfitWarning)
        k1: dict[str, Any] = {k: v for k, v in (o1 or {}).items() if k not in ("starts", "screen")}
        k2: dict[str, Any] = {k: v for k, v in (o2 or STAGE2).items() if k not in ("starts", "screen")}
        b1 = minimize(nll_law(), {"C": C, "loss": nll}, s1.x[None, :], weights=W, **k1)
        b2 = minimize(sigmoid_law(), {"nll": nll, "loss": acc}, (o2 or {}).get("starts", "grid"), weights=W,
                      screen=SCREEN, **k2)
    ok = b1.success & b2.success
    for d in (b1.natural(), b2.natural()):
        for v in d.values():
            ok &= np.isfinite(v)
    rows = np.flatnonzero(ok)
    return (b1.theta[rows], b2.theta[rows]) if rows.size else ()


def fit(data: Any, *, bootstrap: int | None = None, seed=0, columns: Mapping[str, str] | None = None,
        stage1: Mapping[str, Any] | None = None, stage2: Mapping[str, Any] | None = None) -> DownstreamResult:
    """Fit both stages to runs with columns ``C`` (compute), ``nll`` (the task's normalised NLL of the correct
    answer) and ``accuracy`` (``columns`` maps them to other names); ``bootstrap=n`` adds the joint bootstrap.

    ``stage1``, ``stage2``: keywords of :func:`lawfit.fit` for each stage's fits (``fixed``, ``bounds``,
    ``tie``, ``loss``, ``delta``, ``residual``, ``starts``, ...), e.g. ``stage1={"fixed": {"E": 0.5}}`` when the
    runs do not determine the irreducible NLL. Stage 2 defaults to squared error on the raw accuracy.
    """
    o1 = _stage_options(stage1, "stage1", {})
    o2 = _stage_options(stage2, "stage2", STAGE2)
    C, nll, acc = _task_columns(data, columns)
    if C.size < 5:
        raise ValueError(f"two-stage prediction needs at least 5 runs (4 parameters per stage), got {C.size}")
    bad = np.flatnonzero(~((acc > 0) & (acc <= 1)))
    if bad.size:
        raise ValueError(f"accuracy must lie in (0, 1]; row {bad[0]} is {acc[bad[0]]!r}")
    s1, s2 = _fit_stages(C, nll, acc, o1=o1, o2=o2)
    if not bootstrap:
        return DownstreamResult(stage1=s1, stage2=s2)
    if isinstance(bootstrap, bool) or int(bootstrap) < 1:
        raise ValueError(f"bootstrap must be a positive number of resamples, got {bootstrap!r}")
    theta = _joint_bootstrap(C, nll, acc, s1, int(bootstrap), seed, o1, o2)
    kept = len(theta[0]) if theta else 0
    if kept < 0.9 * int(bootstrap):
        warnings.warn(ResampleWarning(
            f"only {kept} of {int(bootstrap)} joint bootstrap resamples gave a draw (resamples with fewer "
            f"than 5 distinct runs, or whose refit failed in either stage, are left out)"
            + ("; the forecast has no interval" if not kept else "; the intervals rest on those draws")),
            stacklevel=2)
    return DownstreamResult(stage1=s1, stage2=s2, draw_theta=theta)


@dataclass(frozen=True)
class DownstreamBacktest:
    """table : one row per cut: n_train, n_test, the accuracy's errors on the held-out runs (``mape``,
    ``log_error``, ``bias``, ``worst`` as in :func:`lawfit.backtest`), ``nll_mape`` (the stage-1 forecast's)
    and, with ``bootstrap=``, ``coverage`` (the share of held-out runs whose accuracy lies in its interval).
    fits : cut -> the :class:`DownstreamResult` on the training runs. predictions : cut -> DataFrame of the
    held-out runs (C, nll, accuracy observed and predicted, and the interval)."""

    table: Any
    fits: dict = field(repr=False)
    predictions: dict = field(repr=False)
    level: float = 0.95


def backtest(data: Any, *, holdout: float | None = 0.2, budget: float | Sequence[float] | None = None,
             bootstrap: int | None = None, seed=0, level: float = 0.95, interval: str = "adjusted",
             columns: Mapping[str, str] | None = None, stage1: Mapping[str, Any] | None = None,
             stage2: Mapping[str, Any] | None = None) -> DownstreamBacktest:
    """How wrong would the two-stage forecast have been? Fit both stages on the runs below a compute cut
    (``holdout`` fraction of largest compute, or ``budget``: one cut or a rolling list, as in
    :func:`lawfit.backtest`) and forecast the accuracy of the runs above it; with ``bootstrap=n`` the forecasts
    get intervals (``interval``, ``level``) and the table the share of held-out runs they cover. ``stage1``,
    ``stage2``: as in :func:`fit`."""
    import pandas as pd

    from .backtest import cuts, errors

    C, nll, acc = _task_columns(data, columns)
    rows, fits, preds = [], {}, {}
    for cut, test in cuts(C, holdout, budget):
        train = ~test
        name = "holdout" if cut is None else f"budget={cut:g}"
        if train.sum() < 5:
            raise ValueError(f"the cut {name} leaves {int(train.sum())} training runs; two-stage prediction "
                             f"needs at least 5")
        res = fit({"C": C[train], "nll": nll[train], "accuracy": acc[train]}, bootstrap=bootstrap, seed=seed,
                  stage1=stage1, stage2=stage2)
        f = res.forecast(C[test], level=level, interval=interval)
        row = {"cut": cut, "n_train": int(train.sum()), "n_test": int(test.sum()),
               **errors(f["accuracy"], acc[test]), "nll_mape": errors(f["nll"], nll[test])["mape"]}
        pred = {"C": C[test], "nll": nll[test], "nll_predicted": f["nll"], "accuracy": acc[test],
                "accuracy_predicted": f["accuracy"]}
        if "accuracy_lo" in f:
            inside = (f["accuracy_lo"] <= acc[test]) & (acc[test] <= f["accuracy_hi"])
            row["coverage"] = float(np.mean(inside))
            pred.update(accuracy_lo=f["accuracy_lo"], accuracy_hi=f["accuracy_hi"])
        rows.append(row)
        fits[cut] = res
        preds[cut] = pd.DataFrame(pred)
    return DownstreamBacktest(table=pd.DataFrame(rows), fits=fits, predictions=preds, level=level)

