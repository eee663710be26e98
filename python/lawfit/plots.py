"""Figures for a fit (matplotlib, an optional dependency: ``pip install lawfit[plot]``).

Each function draws on a given ``ax`` (or a new figure) and returns the axes; :func:`study` puts the four
standard panels on one figure and can save it (PNG or PDF by the file name).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import allocation

__all__ = ["observed_vs_predicted", "isoflop", "surface", "frontier", "tokens_per_parameter", "corner", "study",
           "isoflop_approaches"]


def _plt():
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("lawfit's plots need matplotlib: pip install 'lawfit[plot]'") from None
    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1") or "ipykernel" in sys.modules


def _axes(ax):
    if ax is not None:
        return ax
    plt = _plt()
    return plt.subplots(figsize=(5.5, 4.5))[1]


def _plain_log(axis) -> None:
    """Plain numbers (2, 2.5, 3) rather than 2 x 10^0 on a log axis spanning less than a decade."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(fmt)


def _runs(result, data):
    from .data import prepare

    ds = prepare(result.law, data)
    return ds, result.law.predict(data, result.internal), np.exp(ds.target)


def observed_vs_predicted(result, data, ax=None):
    """Observed against predicted loss, log-log, with the identity line."""
    ax = _axes(ax)
    _, pred, obs = _runs(result, data)
    ax.scatter(pred, obs, s=14, alpha=0.7, edgecolors="none", label=f"{len(obs)} runs")
    lo, hi = min(pred.min(), obs.min()) * 0.97, max(pred.max(), obs.max()) * 1.03
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="observed = predicted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax.xaxis)
    _plain_log(ax.yaxis)
    ax.set_xlabel("predicted loss")
    ax.set_ylabel("observed loss")
    ax.set_title("fit quality")
    ax.legend(loc="upper left", frameon=False, fontsize=8)
    return ax


def isoflop(result, data, ax=None, n_budgets: int = 6):
    """Loss against parameters N for runs grouped into compute budgets (C = 6 N D, log-binned), with the
    fitted law along each budget and its compute-optimal point."""
    import matplotlib as mpl

    ax = _axes(ax)
    N = np.asarray(data["N"], dtype=float)
    D = np.asarray(data["D"], dtype=float)
    loss = np.asarray(data["loss"], dtype=float)
    C = 6 * N * D
    edges = np.quantile(np.log(C), np.linspace(0, 1, n_budgets + 1))
    which = np.clip(np.searchsorted(edges, np.log(C), side="right") - 1, 0, n_budgets - 1)
    cmap = mpl.colormaps["viridis"]
    for k in range(n_budgets):
        sel = which == k
        if not np.any(sel):
            continue
        color = cmap(k / max(1, n_budgets - 1))
        c = float(np.exp(np.median(np.log(C[sel]))))
        ax.scatter(N[sel], loss[sel], s=12, color=color, alpha=0.8, edgecolors="none")
        n = np.geomspace(N[sel].min() / 2, N[sel].max() * 2, 100)
        curve = result.law.predict({"N": n, "D": c / (6 * n)}, result.internal)
        ax.plot(n, curve, color=color, lw=1.2, label=f"C ~ {c:.1e}")
        opt = allocation.compute_optimal(result.params, [c], law=result.law)
        ax.plot(opt.N_opt, opt.loss, marker="*", ms=9, color=color, mec="k", mew=0.5, ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title("isoFLOP slices (star: compute-optimal)")
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    return ax


def surface(result, data, ax=None):
    """Contours of the fitted loss over (N, D), the runs, and the compute-optimal frontier."""
    ax = _axes(ax)
    N = np.asarray(data["N"], dtype=float)
    D = np.asarray(data["D"], dtype=float)
    n = np.geomspace(N.min() / 3, N.max() * 3, 120)
    d = np.geomspace(D.min() / 3, D.max() * 3, 120)
    nn, dd = np.meshgrid(n, d)
    L = result.law.predict({"N": nn.ravel(), "D": dd.ravel()}, result.internal).reshape(nn.shape)
    levels = np.quantile(L, np.linspace(0.02, 0.98, 14))
    cs = ax.contour(nn, dd, L, levels=np.unique(levels), cmap="viridis_r", linewidths=0.8)
    ax.clabel(cs, fmt="%.2f", fontsize=6, inline=True)
    ax.scatter(N, D, s=8, color="0.25", alpha=0.6, edgecolors="none", label="runs")
    C = np.geomspace(6 * n.min() * d.min(), 6 * n.max() * d.max(), 80)
    opt = allocation.compute_optimal(result.params, C, law=result.law)
    keep = (opt.N_opt >= n.min()) & (opt.N_opt <= n.max()) & (opt.D_opt >= d.min()) & (opt.D_opt <= d.max())
    ax.plot(opt.N_opt[keep], opt.D_opt[keep], color="C3", lw=1.8, label="compute-optimal frontier")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("tokens D")
    ax.set_title("fitted loss surface")
    ax.legend(frameon=True, framealpha=0.9, fontsize=8, loc="lower right")
    return ax


def tokens_per_parameter(result, ax=None, budgets=None, level: float = 0.95):
    """Tokens per parameter at the compute optimum against compute, with the bootstrap band."""
    ax = _axes(ax)
    budgets = np.geomspace(1e18, 1e26, 60) if budgets is None else np.asarray(budgets, dtype=float)
    df = allocation.compute_optimal(result, budgets, level=level)
    ax.plot(df.C, df.tokens_per_param, color="C2", lw=1.5, label="D_opt / N_opt")
    if "tokens_per_param_low" in df:
        ax.fill_between(df.C, df.tokens_per_param_low, df.tokens_per_param_high, color="C2", alpha=0.2, lw=0,
                        label=f"{int(level * 100)}% bootstrap band")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("tokens per parameter")
    ax.set_title("compute-optimal tokens per parameter", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return ax


def frontier(result, ax=None, budgets=None, level: float = 0.95):
    """Compute-optimal N_opt(C) and D_opt(C), with bootstrap bands when the fit has a bootstrap."""
    ax = _axes(ax)
    budgets = np.geomspace(1e18, 1e26, 60) if budgets is None else np.asarray(budgets, dtype=float)
    df = allocation.compute_optimal(result, budgets, level=level)
    for col, color, label in (("N_opt", "C0", "parameters N_opt"), ("D_opt", "C1", "tokens D_opt")):
        ax.plot(df.C, df[col], color=color, lw=1.5, label=label)
        if f"{col}_low" in df:
            ax.fill_between(df.C, df[f"{col}_low"], df[f"{col}_high"], color=color, alpha=0.2, lw=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("N_opt, D_opt")
    band = f" ({int(level * 100)}% bootstrap band)" if "N_opt_low" in df else ""
    ax.set_title("compute-optimal frontier" + band, fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return ax


def corner(boot, names=None, fig=None):
    """Pairwise scatter of bootstrap draws; log-transformed parameters shown as log10 of their values."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    law = boot.law
    names = list(names or [p.name for p in law.params if p not in law.loss_params])
    k = len(names)
    fig = fig or plt.figure(figsize=(1.9 * k + 1, 1.9 * k + 1))
    logs = {p.name: p.transform == "log" for p in law.params}
    values = {n: (np.log10(v) if logs[n] else v) for n, v in boot.params.items() if n in names}
    label = {n: (f"log10 {n}" if logs[n] else n) for n in names}
    for i, a in enumerate(names):
        for j, b in enumerate(names[: i + 1]):
            ax = fig.add_subplot(k, k, i * k + j + 1)
            x = values[b]
            if i == j:
                ax.hist(x[np.isfinite(x)], bins=40, color="C0", alpha=0.7)
                ax.set_yticks([])
            else:
                ax.scatter(x, values[a], s=2, alpha=0.25, color="C0", edgecolors="none")
                ax.yaxis.set_major_locator(MaxNLocator(3))
            ax.xaxis.set_major_locator(MaxNLocator(3))
            if i == k - 1:
                ax.set_xlabel(label[b], fontsize=9)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(label[a], fontsize=9)
            elif j > 0:
                ax.set_yticklabels([])
            ax.tick_params(labelsize=7)
    fig.suptitle(f"bootstrap draws ({boot.n} resamples)", fontsize=10)
    fig.tight_layout()
    return fig


def study(result, data, path: str | None = None, budgets=None) -> Any:
    """One figure: fit quality, isoFLOP slices, the loss surface, the compute-optimal frontier, tokens per
    parameter and the residuals."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    observed_vs_predicted(result, data, axes[0, 0])
    isoflop(result, data, axes[0, 1])
    surface(result, data, axes[0, 2])
    frontier(result, axes[1, 0], budgets=budgets)
    tokens_per_parameter(result, axes[1, 1], budgets=budgets)
    _, pred, obs = _runs(result, data)
    ax = axes[1, 2]
    ax.scatter(6 * np.asarray(data["N"], float) * np.asarray(data["D"], float), np.log(obs) - np.log(pred), s=12,
               alpha=0.7, edgecolors="none")
    ax.axhline(0, color="0.3", lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("log observed - log predicted")
    ax.set_title("residuals")
    fig.suptitle(f"{result.law.name}: L = {result.law.formula}", fontsize=11)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=130)
    return fig


def isoflop_approaches(approach2, approach1=None, approach3=None, budget: float | None = None,
                       level: float = 0.95, path: str | None = None) -> Any:
    """Hoffmann et al.'s three approaches on one figure (see :mod:`lawfit.isoflop`).

    Left: the IsoFLOP profiles of ``approach2`` (an :class:`~lawfit.isoflop.IsoFLOPResult`): runs per budget,
    the fitted curves and their minima (excluded budgets grey). Right: N_opt against C: the budget minima,
    the envelope points of ``approach1``, and the power laws of Approaches 1 and 2 and the allocation of
    ``approach3`` (a Chinchilla :class:`~lawfit.FitResult`), with bootstrap bands when they have draws; a
    dotted line marks ``budget``.
    """
    plt = _plt()
    import matplotlib as mpl

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.2))
    pts = approach2.points
    runs = approach2.runs
    used = np.flatnonzero(pts["used"].to_numpy())
    cmap = mpl.colormaps["viridis"]
    for g, row in enumerate(pts.to_dict("records")):
        sel = runs["budget"].to_numpy() == g
        if row["used"]:
            color = cmap(np.searchsorted(used, g) / max(1, used.size - 1))
            ax.scatter(runs["N"][sel], runs["loss"][sel], s=12, color=color, alpha=0.8, edgecolors="none")
            n = np.geomspace(row["N_min"], row["N_max"], 100)
            ax.plot(n, approach2.curve(g, n), color=color, lw=1.2, label=f"C = {row['C']:.2g}")
            ax.plot(row["N_opt"], row["loss_opt"], marker="*", ms=10, color=color, mec="k", mew=0.5, ls="none")
        else:
            ax.scatter(runs["N"][sel], runs["loss"][sel], s=10, facecolors="none", edgecolors="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    n_excl = len(pts) - used.size
    ax.set_title(f"Approach 2: IsoFLOP profiles ({approach2.method}); star: minimum"
                 + (f"; {n_excl} budgets excluded (grey)" if n_excl else ""), fontsize=9)
    if used.size <= 12:
        ax.legend(frameon=False, fontsize=7, loc="upper right")
    lo = float(runs["C"].min()) / 2
    hi = max(float(runs["C"].max()) * 2, 2 * budget if budget else 0.0)
    C = np.geomspace(lo, hi, 80)
    tail = int(round(level * 100))

    def band(res, color, label):
        df = res.optimal(C, level) if hasattr(res, "optimal") else allocation.compute_optimal(res, C, level=level)
        bx.plot(df.C, df.N_opt, color=color, lw=1.6, label=label)
        if "N_opt_low" in df:
            bx.fill_between(df.C, df.N_opt_low, df.N_opt_high, color=color, alpha=0.15, lw=0)

    def label(name, a, ci):
        return f"{name}: a = {a:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    if approach1 is not None:
        p1 = approach1.points[approach1.points["used"]]
        bx.scatter(p1.C, p1.N_opt, s=6, color="C0", alpha=0.35, edgecolors="none")
        ci = approach1.bootstrap.ci(level)["a"] if approach1.bootstrap is not None else None
        band(approach1, "C0", label(f"Approach 1 ({approach1.method})", approach1.a, ci))
    bx.scatter(pts.C[pts.used], pts.N_opt[pts.used], s=30, color="C1", marker="*", zorder=3)
    ci = approach2.bootstrap.ci(level)["a"] if approach2.bootstrap is not None else None
    band(approach2, "C1", label(f"Approach 2 ({approach2.method})", approach2.a, ci))
    if approach3 is not None:
        a3 = allocation.chinchilla_exponents(approach3.params)[0]
        ci = None
        if approach3.bootstrap is not None:
            b = approach3.bootstrap
            draws = allocation.chinchilla_exponents({k: v[b.ok] for k, v in b.params.items()})[0]
            ci = (float(np.quantile(draws, (1 - level) / 2)), float(np.quantile(draws, (1 + level) / 2)))
        band(approach3, "C2", label("Approach 3 (parametric)", float(a3), ci))
    if budget:
        bx.axvline(budget, color="0.4", lw=0.8, ls=":")
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("training compute C (FLOP)")
    bx.set_ylabel("compute-optimal N_opt")
    bx.set_title(f"N_opt = k C^a ({tail}% bootstrap bands)", fontsize=9)
    bx.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=130)
    return fig
