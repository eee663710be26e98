"""Backtests: how wrong would a law and a fitting protocol have been on the next scale up?

Each law is fitted (:func:`lawfit.fit`) on the runs below a compute cut and judged on the runs above it:

- ``holdout=0.2`` (the default): the 20 % of runs with the largest compute C = 6 N D (or the ``C`` column) are
  held out;
- ``budget=X``: runs with C >= X are held out; ``budget=[X1, X2, ...]`` is a rolling origin (one backtest per
  cut: fit below X_i, predict everything at or above it).

Errors on the held-out runs, with r_i = L_hat_i / L_i - 1 (the relative error of the predicted loss):

- ``mape``: 100 mean |r_i| (percent);
- ``log_error``: mean |log L_hat_i - log L_i|;
- ``bias``: 100 mean r_i (percent; > 0 means the law over-predicts the loss);
- ``worst``: 100 max |r_i| (percent).

With ``bootstrap=n`` each error gets a percentile interval from n resamples of the held-out runs (the spread
that comes from which runs happened to be held out), and with ``resample="both"`` also from refits on
resamples of the training runs (the fit's own uncertainty). ``protocols`` repeats the
backtest under other fitting choices (loss, delta, residual, starts, dropped runs, ...) to show how much a
forecast depends on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from . import laws as _laws
from .data import check_level, column

__all__ = ["backtest", "BacktestResult", "SCHEMA", "METRICS"]

SCHEMA = "lawfit.backtest/1"
METRICS = ("mape", "log_error", "bias", "worst")


def _compute(data: Any, columns: Mapping[str, str]) -> np.ndarray:
    if _has(data, columns.get("C", "C")):
        return column(data, columns.get("C", "C"), "compute C")
    if _has(data, columns.get("N", "N")) and _has(data, columns.get("D", "D")):
        return 6.0 * column(data, columns.get("N", "N"), "N") * column(data, columns.get("D", "D"), "D")
    raise ValueError("backtest needs the compute of every run: a column C, or N and D (C = 6 N D)")


def _has(data: Any, name: str) -> bool:
    try:
        data[name]
        return True
    except (KeyError, IndexError, TypeError, ValueError):
        return False


def _rows(data: Any, mask: np.ndarray):
    """The runs where ``mask`` holds, as the same kind of table (DataFrame or mapping of arrays)."""
    if hasattr(data, "iloc"):
        return data.loc[mask].reset_index(drop=True)
    return {k: np.asarray(v)[mask] for k, v in data.items()}


def cuts(C: np.ndarray, holdout: float | None = 0.2, budget: float | Sequence[float] | None = None
         ) -> list[tuple[float | None, np.ndarray]]:
    """The backtest's splits of runs with compute ``C``: (cut, held-out mask) per cut; ``cut`` is None for a
    holdout fraction. A cut that holds out no run is a ValueError naming it."""
    n = C.size
    masks: list[tuple[float | None, np.ndarray]]
    if budget is not None:
        given: list[Any] = list(budget) if isinstance(budget, (list, tuple, np.ndarray)) else [budget]
        if not given:
            raise ValueError("budget is an empty list: give one compute cut or several (a rolling origin)")
        values = [float(b) for b in given]
        for b in values:
            if not (math.isfinite(b) and b > 0):
                raise ValueError(f"budget must be a positive compute, got {b!r}")
        masks = [(b, C >= b) for b in values]
    else:
        if holdout is None or not (0 < float(holdout) < 1):
            raise ValueError(f"holdout must be a fraction in (0, 1), got {holdout!r}")
        k = int(round(float(holdout) * n))
        order = np.argsort(C, kind="stable")
        test = np.zeros(n, dtype=bool)
        test[order[n - k:]] = True
        masks = [(None, test)]
    for cut, test in masks:
        if not test.any():
            raise ValueError(f"the cut {'holdout' if cut is None else f'budget={cut:g}'} holds out no runs "
                             f"(compute ranges {C.min():.3g} to {C.max():.3g})")
    return masks


def errors(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """The backtest's errors of predicted against observed losses (see the module docstring)."""
    with np.errstate(over="ignore"):  # a relative error beyond the float range is inf, as it is
        r = pred / obs - 1.0
    log_r = np.log(pred) - np.log(obs)
    return {"mape": float(100.0 * np.mean(np.abs(r))), "log_error": float(np.mean(np.abs(log_r))),
            "bias": float(100.0 * np.mean(r)), "worst": float(100.0 * np.max(np.abs(r)))}


@dataclass(frozen=True)
class BacktestResult:
    """table : one row per (law, protocol, cut) with the errors, their intervals (``<metric>_lo``/``_hi`` with
    ``bootstrap=``), n_train, n_test, success and ``unidentified`` (the direction the training runs do not
    determine or determine poorly, as the fit's warning names it; "" when there was no such warning).
    fits : (law, protocol, cut) -> the FitResult on the training runs.
    predictions : (law, protocol, cut) -> DataFrame of the held-out runs (C, observed, predicted)."""

    table: Any
    fits: dict = field(repr=False)
    predictions: dict = field(repr=False)
    level: float = 0.95

    def to_dict(self) -> dict:
        """The document of ``lawfit backtest --json`` (schema ``lawfit.backtest/1``)."""
        rows = []
        for _, row in self.table.iterrows():
            cut = None if row["cut"] is None or row["cut"] != row["cut"] else float(row["cut"])
            key = (row["law"], row["protocol"], cut)
            entry = {"law": row["law"], "protocol": row["protocol"], "cut": cut,
                     "n_train": int(row["n_train"]), "n_test": int(row["n_test"]),
                     "params": {k: _clean(v) for k, v in self.fits[key].params.items()},
                     "success": bool(self.fits[key].success),
                     "unidentified": self.fits[key].unidentified}
            if "n_refits" in row and row["n_refits"] == row["n_refits"]:
                entry["n_refits"] = int(row["n_refits"])
            for m in METRICS:
                entry[m] = _clean(row[m])
                if f"{m}_lo" in row:
                    entry[f"{m}_ci"] = [_clean(row[f"{m}_lo"]), _clean(row[f"{m}_hi"])]
            rows.append(entry)
        return {"schema": SCHEMA, "level": self.level, "results": rows}

    def plot(self, path: str | None = None):
        """Predicted against observed loss on the held-out runs, and the relative error against compute."""
        from .plots import _plt

        plt = _plt()
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for key, df in self.predictions.items():
            label = " / ".join(str(k) for k in key if k not in (None, "default"))
            a1.scatter(df["observed"], df["predicted"], s=12, label=label)
            a2.scatter(df["C"], 100.0 * (df["predicted"] / df["observed"] - 1.0), s=12, label=label)
        lo = min(float(df["observed"].min()) for df in self.predictions.values())
        hi = max(float(df["observed"].max()) for df in self.predictions.values())
        a1.plot([lo, hi], [lo, hi], "k--", lw=1)
        a1.set_xlabel("observed loss (held out)")
        a1.set_ylabel("predicted loss")
        a2.axhline(0.0, color="k", lw=1)
        a2.set_xscale("log")
        a2.set_xlabel("compute C (FLOP)")
        a2.set_ylabel("relative error of the prediction (%)")
        a1.legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def _clean(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return f if math.isfinite(f) else None


def backtest(laws: str | Any | Sequence[Any], runs: Any, *, holdout: float | None = 0.2,
             budget: float | Sequence[float] | None = None, protocols: Sequence[Mapping[str, Any]] | None = None,
             bootstrap: int | None = None, seed=0, level: float = 0.95, resample: str = "test",
             columns: Mapping[str, str] | None = None, **fit_options) -> BacktestResult:
    """Fit each law on the runs below a compute cut and report its errors on the runs above it.

    Parameters
    ----------
    laws : a law (name or :class:`~lawfit.laws.Law`) or a list of them.
    runs : DataFrame or mapping of arrays with the laws' variables, ``loss``, and ``C`` or ``N`` and ``D``.
    holdout : the fraction of runs, those of largest compute, to hold out (ignored when ``budget`` is given).
    budget : a compute cut (runs with C >= budget are held out), or a list of cuts (a rolling origin).
    protocols : fitting choices to compare: a list of dicts of :func:`lawfit.fit` keywords, each with an
        optional ``"name"`` (default: one protocol, ``fit_options``). ``"drop_highest": k`` drops the k training
        runs of highest loss.
    bootstrap, seed, level : percentile intervals of each error from ``bootstrap`` resamples.
    resample : what the intervals resample. ``"test"`` (default): the held-out runs only, with the fit fixed
        (how much the errors depend on which runs were held out). ``"both"``: also the training runs, refitting
        the law on each resample (:func:`lawfit.fit` with ``bootstrap=``), so the intervals include the fit's
        own uncertainty; resample ``b`` of the training runs pairs with resample ``b`` of the held-out runs,
        and refits that fail are left out.
    **fit_options : keywords of :func:`lawfit.fit` for every fit (``starts``, ``loss``, ``residual``, ...).
    """
    import pandas as pd

    from .constraints import constraints as _constraints
    from .fitting import fit

    law_list = [laws] if isinstance(laws, (str, _laws.Law)) else list(laws)
    if not law_list:
        raise ValueError("backtest needs at least one law")
    resolved = [_laws.get(x) for x in law_list]
    columns = dict(columns or {})
    C = _compute(runs, columns)
    obs_all = column(runs, columns.get("loss", "loss"), "observed loss")
    if obs_all.size != C.size:
        raise ValueError(f"the loss column has {obs_all.size} values but the compute of {C.size} runs is given")
    check_level(level)
    masks = cuts(C, holdout, budget)
    if resample not in ("test", "both"):
        raise ValueError(f"resample must be 'test' or 'both', got {resample!r}")
    if bootstrap is not None and (isinstance(bootstrap, bool) or int(bootstrap) != bootstrap or bootstrap < 0):
        raise ValueError(f"bootstrap must be a non-negative number of resamples (0: no intervals), got {bootstrap!r}")
    n_boot = int(bootstrap) if bootstrap else 0
    refit = n_boot > 0 and resample == "both"
    if protocols is None:
        protocols = [dict(fit_options, name="default")]
    else:
        if isinstance(protocols, (str, bytes, Mapping)) or not all(isinstance(p, Mapping) for p in protocols):
            raise TypeError("protocols must be a list of dicts of lawfit.fit keywords (with an optional 'name')")
        if not protocols:
            raise ValueError("protocols is an empty list: give at least one protocol, or leave it out")
        protocols = [dict(fit_options, **p) for p in protocols]
    rows, fits, preds = [], {}, {}
    rng = np.random.default_rng(seed)
    for cut, test in masks:
        n_test = int(test.sum())
        for law in resolved:
            for proto in protocols:
                opts = dict(proto)
                name = str(opts.pop("name", f"protocol {protocols.index(proto)}"))
                drop = int(opts.pop("drop_highest", 0) or 0)
                train = ~test
                if drop:
                    idx = np.flatnonzero(train)
                    worst = idx[np.argsort(-obs_all[idx], kind="stable")[:drop]]
                    train = train.copy()
                    train[worst] = False
                n_train = int(train.sum())
                n_free = _constraints(law, opts.get("bounds"), opts.get("fixed"), opts.get("tie")).n_free
                if n_train < n_free:
                    raise ValueError(f"law {law.name!r}: the cut leaves {n_train} training runs for {n_free} free "
                                     f"parameters; hold out fewer runs")
                if refit:
                    if "bootstrap" in opts:
                        raise ValueError("resample='both' refits with backtest's own bootstrap=; "
                                         "drop 'bootstrap' from the protocol")
                    res = fit(law, _rows(runs, train), columns=columns or None, bootstrap=n_boot,
                              seed=int(rng.integers(2**63)), **opts)
                else:
                    res = fit(law, _rows(runs, train), columns=columns or None, **opts)
                test_runs = _rows(runs, test)
                test_vars = test_runs if not columns else _rename(test_runs, columns, law)
                pred = res.law.predict(test_vars, res.internal)  # internal: E underflowed to 0 still predicts
                obs = obs_all[test]
                e = errors(pred, obs)
                row = {"law": law.name, "protocol": name, "cut": cut,
                       "n_train": n_train, "n_test": n_test, **e, "success": res.success,
                       "unidentified": res.unidentified or ""}
                if bootstrap:
                    picks = [rng.integers(0, n_test, n_test) for _ in range(n_boot)]
                    if refit:
                        assert res.bootstrap is not None
                        th = np.asarray(res.bootstrap.theta)  # internal draws
                        good = res.bootstrap.ok & np.all(np.isfinite(th), axis=1)
                        names_i = res.law.internal_names
                        preds_b = [(res.law.predict(test_vars, dict(zip(names_i, th[b]))), picks[b])
                                   for b in np.flatnonzero(good)]
                        row["n_refits"] = int(good.sum())
                    else:
                        preds_b = [(pred, i) for i in picks]
                    if preds_b:
                        draws = np.array([list(errors(p[i], obs[i]).values()) for p, i in preds_b])
                        tail = (1 - level) / 2
                        for j, m in enumerate(METRICS):
                            row[f"{m}_lo"], row[f"{m}_hi"] = (float(np.quantile(draws[:, j], tail)),
                                                              float(np.quantile(draws[:, j], 1 - tail)))
                    else:  # every refit failed: no interval
                        for m in METRICS:
                            row[f"{m}_lo"] = row[f"{m}_hi"] = float("nan")
                rows.append(row)
                key = (law.name, name, row["cut"])
                fits[key] = res
                preds[key] = pd.DataFrame({"C": C[test], "observed": obs, "predicted": pred})
    return BacktestResult(table=pd.DataFrame(rows), fits=fits, predictions=preds, level=level)


def _rename(data, columns: Mapping[str, str], law) -> dict:
    """The law's variables under their own names, from a table whose columns ``columns`` renames."""
    return {v: column(data, columns.get(v, v), f"law variable {v}") for v in law.variables}
