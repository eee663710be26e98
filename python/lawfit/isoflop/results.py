"""The results of Approaches 1 and 2: :class:`IsoFLOPResult` (power laws, per-budget table, summary, JSON)
and :class:`IsoFLOPBootstrap` (the resampled exponents), with their formatting helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import check_level
from .minima import _hermite_eval


@dataclass(frozen=True)
class IsoFLOPBootstrap:
    """Bootstrap draws of an Approach 1 or 2 fit.

    Attributes
    ----------
    a, b : exponents of N_opt and D_opt per resample (NaN where the resample had fewer than two usable points).
    log_kN, log_kD : intercepts, N_opt = exp(log_kN) C^a.
    n_used : budgets (Approach 2) or envelope points (Approach 1) in each resample's power law.
    n_dropped : budgets used on the full data but left out of this resample (too thin or unbracketed there).
    """

    n: int
    seed: Any
    unit: str
    a: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    log_kN: np.ndarray = field(repr=False)
    log_kD: np.ndarray = field(repr=False)
    n_used: np.ndarray = field(repr=False)
    n_dropped: np.ndarray = field(repr=False)

    @property
    def ok(self) -> np.ndarray:
        return np.isfinite(self.a) & np.isfinite(self.b)

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(~self.ok))

    @property
    def se(self) -> dict:
        """Standard errors of a and b (successful resamples, ddof = 1)."""
        ok = self.ok
        return {k: float(np.std(v[ok], ddof=1)) if ok.sum() > 1 else float("nan")
                for k, v in (("a", self.a), ("b", self.b))}

    def ci(self, level: float = 0.95) -> dict:
        """Percentile intervals of a and b, name -> (low, high)."""
        check_level(level)
        tail = (1 - level) / 2
        out = {}
        for k, v in (("a", self.a), ("b", self.b)):
            v = v[np.isfinite(v)]
            out[k] = ((float("nan"), float("nan")) if v.size == 0 else
                      (float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))))
        return out

    def draws(self):
        """One row per resample: a, b, log_kN, log_kD, n_used, n_dropped."""
        import pandas as pd

        return pd.DataFrame({"a": self.a, "b": self.b, "log_kN": self.log_kN, "log_kD": self.log_kD,
                             "n_used": self.n_used, "n_dropped": self.n_dropped})


@dataclass(frozen=True)
class IsoFLOPResult:
    """Compute-optimal power laws N_opt = k_N C^a, D_opt = k_D C^b from Approach 1 or 2.

    Attributes
    ----------
    approach : 1 (envelope of training curves or final points) or 2 (IsoFLOP profiles).
    method : "parabola", "cubic" or "interpolant" (Approach 2); "envelope" or "final-point envelope" (1).
    a, b : the exponents; log_kN, log_kD : the intercepts (natural logs, C in FLOP).
    points : DataFrame, one row per budget (Approach 2: C, its span, runs, sizes, N_opt, D_opt, loss_opt,
        status "ok" / "too_few_runs" / "unbracketed", note, used) or per envelope point (Approach 1).
    n_runs : runs in the data; n_used : points in the power-law fit.
    options : the settings that produced it (tolerance, d_opt, min_runs, n_grid, ...).
    notes : remarks worth reading (degenerate envelope, excluded budgets).
    bootstrap : :class:`IsoFLOPBootstrap` when fitted with ``bootstrap=n``.
    """

    approach: int
    method: str
    a: float
    b: float
    log_kN: float
    log_kD: float
    points: Any = field(repr=False)
    n_runs: int = 0
    n_used: int = 0
    options: dict = field(default_factory=dict, repr=False)
    notes: tuple = ()
    bootstrap: IsoFLOPBootstrap | None = field(default=None, repr=False)
    runs: Any = field(default=None, repr=False)  # the runs as read (N, D, C, loss, budget or run label)
    _profiles: tuple = field(default=(), repr=False)  # per budget: what curve() needs

    @property
    def excluded(self):
        """Budgets (or envelope points) left out of the power law, with the reason."""
        return self.points[~self.points["used"]]

    def ci(self, level: float = 0.95) -> dict:
        """Percentile bootstrap intervals of a and b (needs ``bootstrap=``)."""
        if self.bootstrap is None:
            raise ValueError("no bootstrap: fit with bootstrap=n (and seed=) for intervals")
        return self.bootstrap.ci(level)

    def optimal(self, C, level: float = 0.95):
        """N_opt, D_opt and tokens per parameter at budgets ``C`` from the power laws, with percentile
        intervals (``<column>_low`` / ``_high``) when bootstrapped."""
        import pandas as pd

        C = np.atleast_1d(np.asarray(C, dtype=float))
        if C.ndim != 1 or C.size == 0 or not np.all(np.isfinite(C)) or np.any(C <= 0):
            raise ValueError(f"budgets C must be positive and finite, got {C!r}")
        lc = np.log(C)
        N = np.exp(self.log_kN + self.a * lc)
        D = np.exp(self.log_kD + self.b * lc)
        df = pd.DataFrame({"C": C, "N_opt": N, "D_opt": D, "tokens_per_param": D / N})
        if self.bootstrap is not None:
            check_level(level)
            bs = self.bootstrap
            ok = bs.ok
            dN = np.exp(bs.log_kN[ok, None] + bs.a[ok, None] * lc[None, :])
            dD = np.exp(bs.log_kD[ok, None] + bs.b[ok, None] * lc[None, :])
            tail = (1 - level) / 2
            for name, v in (("N_opt", dN), ("D_opt", dD), ("tokens_per_param", dD / dN)):
                if v.shape[0]:
                    df[f"{name}_low"] = np.quantile(v, tail, axis=0)
                    df[f"{name}_high"] = np.quantile(v, 1 - tail, axis=0)
                else:
                    df[f"{name}_low"] = df[f"{name}_high"] = np.nan
        return df

    def curve(self, budget: int, N) -> np.ndarray:
        """Approach 2: the fitted loss profile of budget number ``budget`` (a row of ``points``) at sizes N."""
        if self.approach != 2:
            raise ValueError("curve() is for Approach 2 (IsoFLOP profiles)")
        if not 0 <= budget < len(self._profiles):
            raise ValueError(f"budget must be a row of points, 0..{len(self._profiles) - 1}; got {budget}")
        prof = self._profiles[budget]
        x = np.log(np.asarray(N, dtype=float))
        if prof is None:
            return np.full(x.shape, np.nan)
        if prof["kind"] == "poly":
            s = (x - prof["mid"]) / prof["half"]
            return np.polynomial.polynomial.polyval(s, prof["coef"])
        return _hermite_eval(prof["x"], prof["y"], prof["d"], x)

    def to_frame(self):
        """The per-budget (Approach 2) or per-envelope-point (Approach 1) table."""
        return self.points.copy()

    def to_dict(self, level: float = 0.95, budgets=None) -> dict:
        """JSON-ready: exponents, intercepts, options, every budget with its status, the bootstrap summary and
        ``ci`` (with ``bootstrap=``), and the allocation at ``budgets``."""
        doc = {
            "approach": self.approach, "method": self.method, "a": _num(self.a), "b": _num(self.b),
            "log_kN": _num(self.log_kN), "log_kD": _num(self.log_kD), "n_runs": int(self.n_runs),
            "n_used": int(self.n_used), "options": {k: _plain(v) for k, v in self.options.items()},
            "notes": list(self.notes),
        }
        rows = [{k: _plain(v) for k, v in r.items()} for r in self.points.to_dict("records")]
        doc["budgets" if self.approach == 2 else "points"] = rows
        doc["excluded"] = [r for r in rows if not r["used"]]
        if self.bootstrap is not None:
            bs = self.bootstrap
            doc["bootstrap"] = {"n": bs.n, "failed": bs.n_failed, "seed": _plain(bs.seed), "unit": bs.unit,
                                "level": level, "se": {k: _num(v) for k, v in bs.se.items()},
                                "dropped": int(np.count_nonzero(bs.n_dropped))}
            doc["ci"] = {k: [_num(lo), _num(hi)] for k, (lo, hi) in bs.ci(level).items()}
        if budgets is not None and len(np.atleast_1d(budgets)):
            doc["allocation"] = [{k: _num(float(v)) for k, v in r.items()}
                                 for r in self.optimal(budgets, level).to_dict("records")]
        return doc

    def summary(self, level: float = 0.95) -> str:
        name = {1: "Approach 1 (lower envelope)", 2: "Approach 2 (IsoFLOP profiles)"}[self.approach]
        unit = "budgets" if self.approach == 2 else "envelope points"
        lines = [f"lawfit isoflop: {name}, {self.method}; {self.n_runs} runs, {self.n_used} {unit} used"]
        ci = self.bootstrap.ci(level) if self.bootstrap is not None else None
        for k, lk, what in (("a", "log_kN", "N_opt"), ("b", "log_kD", "D_opt")):
            v = getattr(self, k)
            line = f"  {what} = {math.exp(getattr(self, lk)):.4g} C^{k},  {k} = {v:.4f}"
            if ci is not None and self.bootstrap is not None:
                lo, hi = ci[k]
                line += f"   {int(round(level * 100))}% interval [{lo:.4f}, {hi:.4f}], se {self.bootstrap.se[k]:.4f}"
            lines.append(line)
        if self.bootstrap is not None:
            bs = self.bootstrap
            line = f"  bootstrap: {bs.n} resamples of {bs.unit} (seed {bs.seed}), {bs.n_failed} failed"
            if self.approach == 2:
                line += f", {int(np.count_nonzero(bs.n_dropped))} left out a budget (too thin or unbracketed there)"
            lines.append(line)
        if self.approach == 2:
            lines.append("")
            lines.append(f"  {'C':>10} {'span':>6} {'runs':>5} {'sizes':>5} {'N_opt':>10} {'D_opt':>10} "
                         f"{'loss':>7} {'offset':>6}  status")
            for r in self.points.to_dict("records"):
                span = r["C_max"] / r["C_min"]
                opt = (f"{r['N_opt']:>10.4g} {r['D_opt']:>10.4g} {r['loss_opt']:>7.4f} {r['offset']:>+6.2f}"
                       if np.isfinite(r["N_opt"]) else f"{'-':>10} {'-':>10} {'-':>7} {'-':>6}")
                status = r["status"] + (f" ({r['note']})" if r["note"] else "")
                lines.append(f"  {r['C']:>10.3g} {span:>6.3f} {r['n_runs']:>5d} {r['n_sizes']:>5d} {opt}  {status}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _num(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _plain(v):
    """JSON-ready scalars and lists."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return str(v)
