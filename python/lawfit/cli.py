"""The ``lawfit`` command line.

    lawfit example                         the bundled Chinchilla study: fit, bootstrap, allocation
    lawfit fit RUNS.csv --law chinchilla   fit a law to a CSV of training runs
    lawfit plot RUNS.csv --plot FIG.png    the same, saving the study figure
    lawfit optimal FIT.json --budget 1e23  compute-optimal allocation from a saved fit
    lawfit isoflop RUNS.csv --tolerance 0.2  IsoFLOP profiles (Approach 2) or the envelope (--approach 1)
    lawfit laws                            list the built-in laws

User errors print one line on stderr and exit with status 2; never a traceback. ``fit`` and ``plot`` exit with
status 1 when the fit failed, or when the data do not identify it (a ``lawfit: warning:`` line on stderr names the
direction); an ill-conditioned fit is a warning line only.

JSON output (``--json OUT`` or ``--json -``), schema version 1::

    {"schema": "lawfit.fit/1", "law": name, "params": {name: value}, "internal": {name: value},
     "objective": float, "success": bool, "status": name, "n_runs": int, "n_starts": int,
     "loss": name, "delta": float|null, "objective_spec": {"loss", "residual", "reduction", parameter},
     "bootstrap": {"n": int, "failed": int, "seed": int|null, "level": float,
                   "se": {name: value}, "ci": {name: [low, high]}}        (only with --bootstrap)
     "allocation": [{"C": ..., "N_opt": ..., "D_opt": ..., ...}, ...]}     (only with --budget)

``lawfit isoflop`` writes schema "lawfit.isoflop/1" (see :mod:`lawfit.isoflop`)::

    {"schema": "lawfit.isoflop/1", "approach": 1|2, "method": "parabola"|"cubic"|"interpolant"|"envelope"|
     "final-point envelope", "a": float, "b": float (N_opt = exp(log_kN) C^a, D_opt = exp(log_kD) C^b),
     "log_kN": float, "log_kD": float, "n_runs": int, "n_used": int, "options": {...}, "notes": [str],
     "budgets": [{"C", "C_min", "C_max", "n_runs", "n_sizes", "N_min", "N_max", "N_opt", "D_opt",
                  "loss_opt", "offset", "status": "ok"|"too_few_runs"|"unbracketed", "note", "used"}]
                                      (approach 2; approach 1: "points", one per envelope point)
     "excluded": [the budgets or points with "used": false],
     "bootstrap": {"n", "failed", "seed", "unit", "level", "se": {"a", "b"}, "dropped"}  (with --bootstrap)
     "ci": {"a": [low, high], "b": [low, high]}                                     (with --bootstrap)
     "allocation": [{"C", "N_opt", "D_opt", "tokens_per_param", ...}]}               (with --budget)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from . import __version__, allocation, datasets, laws, losses
from .fitting import fit
from .warnings import IdentifiabilityWarning, LawfitWarning

SCHEMA = "lawfit.fit/1"


def _clean(v):
    """JSON-safe floats (NaN and inf become null)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _document(result, table, level: float, seed) -> dict:
    doc = {
        "schema": SCHEMA, "law": result.law.name,
        "params": {k: _clean(float(v)) for k, v in result.params.items()},
        "internal": {k: _clean(float(v)) for k, v in result.internal.items()},
        "objective": _clean(result.fun), "success": bool(result.success), "status": result.status.name,
        "n_runs": result.n_runs, "n_starts": result.n_starts, "loss": result.loss, "delta": _clean(result.delta),
        "objective_spec": result.objective.to_dict() if result.objective is not None else None,
    }
    boot = result.bootstrap
    if boot is not None:
        doc["bootstrap"] = {
            "n": boot.n, "failed": boot.n_failed, "seed": seed, "level": level,
            "se": {k: _clean(v) for k, v in boot.se.items()},
            "ci": {k: [_clean(lo), _clean(hi)] for k, (lo, hi) in boot.ci(level).items()},
        }
    if table is not None:
        doc["allocation"] = [{k: _clean(float(v)) for k, v in row.items()} for row in table.to_dict("records")]
    return doc


def _report(result, table, level: float, seconds: float, out) -> None:
    print(result.summary(), file=out)
    if result.bootstrap is not None:
        print("", file=out)
        print(result.bootstrap.summary(level), file=out)
    if table is not None:
        print("\ncompute-optimal allocation (C = 6 N D)" + (f", {int(level * 100)}% intervals"
                                                           if result.bootstrap is not None else ""), file=out)
        for row in table.to_dict("records"):
            line = (f"  C = {row['C']:.3g}: N = {row['N_opt']:.3g}, D = {row['D_opt']:.3g}, "
                    f"{row['tokens_per_param']:.1f} tokens/param, loss {row['loss']:.4f}")
            if "N_opt_low" in row:
                line += (f"  [N {row['N_opt_low']:.3g} to {row['N_opt_high']:.3g}, "
                         f"D {row['D_opt_low']:.3g} to {row['D_opt_high']:.3g}]")
            print(line, file=out)
    print(f"\n{seconds:.2f} s", file=out)


def _figures(args, result, data) -> None:
    if getattr(args, "plot", None) or getattr(args, "corner", None):
        try:
            from . import plots
        except ImportError as err:  # pragma: no cover - plots imports matplotlib lazily
            raise ValueError(str(err)) from None
        try:
            if args.plot:
                plots.study(result, data, args.plot)
            if args.corner:
                if result.bootstrap is None:
                    raise ValueError("--corner needs --bootstrap N")
                plots.corner(result.bootstrap).savefig(args.corner, dpi=120)
        except ImportError as err:
            raise ValueError(str(err)) from None
        except OSError as err:
            raise ValueError(f"cannot write the figure: {err}") from None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _check_paths(args) -> None:
    """Refuse an output path that is an input (or another output): writing it would destroy the input."""
    inputs = [(opt, getattr(args, dest)) for opt, dest in (("the runs", "runs"), ("the fit", "fit"))
              if isinstance(getattr(args, dest, None), str)]
    outputs = [(opt, getattr(args, dest)) for opt, dest in
               (("--json", "json"), ("--plot", "plot"), ("--corner", "corner"), ("--checkpoint", "checkpoint"))
               if isinstance(getattr(args, dest, None), str) and getattr(args, dest) != "-"]
    for i, (opt, path) in enumerate(outputs):
        for other, src in inputs + outputs[:i]:
            if _same_file(path, src):
                raise ValueError(f"{opt} {path} is the same file as {other} ({src}); it would be overwritten: "
                                 f"choose another path")


def _write_json(path: str, doc: dict) -> None:
    """The document as indented JSON to ``path``, or to stdout for '-'."""
    text = json.dumps(doc, indent=2)
    if path == "-":
        print(text)
        return
    try:
        with open(path, "w") as fh:
            fh.write(text + "\n")
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror}") from None


def _emit(args, result, budgets, seconds: float) -> int:
    table = allocation.compute_optimal(result, budgets, level=args.level) if budgets else None
    if args.json:
        _write_json(args.json, _document(result, table, args.level, getattr(args, "seed", None)))
    if args.json != "-":
        _report(result, table, args.level, seconds, sys.stdout)
    return 0 if result.success else 1


def _budgets(values) -> list[float]:
    out = []
    for v in values or []:
        try:
            c = float(v)
        except ValueError:
            raise ValueError(f"--budget expects FLOP counts such as 1e23, got {v!r}") from None
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"--budget must be a positive, finite FLOP count, got {v!r}")
        out.append(c)
    return out


def _show_progress(args) -> bool:
    """A progress bar for long work, on a terminal only and not with --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _cmd_example(args) -> int:
    runs = datasets.chinchilla(drop_highest=5)
    print("Chinchilla runs (Hoffmann et al. 2022, via Epoch AI's replication): 240 runs after dropping the "
          "5 highest losses; Hoffmann's 4500 starts; 4000 bootstrap resamples\n")
    t = time.perf_counter()
    result = fit("chinchilla", runs, starts="hoffmann", threads=args.threads, bootstrap=4000, seed=0,
                 progress=_show_progress(args))
    budgets = [1e21, 1e23, 1e25]
    args.seed = 0
    seconds = time.perf_counter() - t
    if args.plot is None and not args.no_plot:
        try:
            import matplotlib  # noqa: F401

            args.plot = "chinchilla_study.png"
        except ImportError:
            print("(no figure: matplotlib is not installed; pip install 'lawfit[plot]')\n")
    code = _emit(args, result, budgets, seconds)  # the JSON and the report first: a failed figure loses nothing
    _figures(args, result, runs)
    if args.plot and args.json != "-":
        print(f"figure: {args.plot}" + (f", {args.corner}" if args.corner else ""))
    return code


def _prepare_table(table, columns: dict, args):
    """Row filters and derived columns: D from C = 6 N D (or N from C and D) when the table lacks it."""
    import pandas as pd

    def col(name):
        return columns.get(name, name)

    for missing, (a, b) in (("D", ("N", "C")), ("N", ("D", "C"))):
        if col(missing) not in table and col(a) in table and col(b) in table:
            num = {k: pd.to_numeric(table[col(k)], errors="coerce") for k in (a, b)}
            table = table.assign(**{col(missing): num[b] / (6.0 * num[a])})
    if args.drop_highest:
        if args.drop_highest < 0:
            raise ValueError(f"--drop-highest must be >= 0, got {args.drop_highest}")
        if col("loss") not in table:
            raise ValueError(f"--drop-highest needs the loss column {col('loss')!r}")
        from .data import column

        # every loss cell must be a number (an error names the row): a text cell is never dropped silently
        loss = column(table, col("loss"), "observed loss")
        if args.drop_highest >= loss.size:
            raise ValueError(f"--drop-highest {args.drop_highest} would drop every run")
        # exactly K rows, the highest losses first; among equal losses the earlier rows go first
        drop = np.argsort(-loss, kind="stable")[:args.drop_highest]
        keep = np.ones(loss.size, dtype=bool)
        keep[drop] = False
        table = table[keep].reset_index(drop=True)
    return table


def _read_csv(path: str):
    """A CSV file as a DataFrame; unreadable files are one-line errors."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {path} as CSV: {err}") from None


def _map_columns(items, allowed=None) -> dict:
    """--map NAME=COLUMN options as {NAME: COLUMN}; ``allowed`` restricts the names."""
    columns = {}
    for item in items or []:
        name, sep, col = item.partition("=")
        if not sep or not name or not col or (allowed is not None and name not in allowed):
            expected = "NAME=COLUMN" if allowed is None else " or ".join(f"{a}=COLUMN" for a in allowed)
            raise ValueError(f"--map expects {expected}, got {item!r}")
        columns[name] = col
    return columns


def _read_runs(args):
    """The runs CSV and the --map columns, prepared (D derived from C, --drop-highest)."""
    table = _read_csv(args.runs)
    columns = _map_columns(args.map)
    table = _prepare_table(table, columns, args)
    return table, columns


def _cmd_fit(args) -> int:
    table, columns = _read_runs(args)
    law = laws.get(args.law)
    if "C" in columns and "C" not in law.variables:  # C only serves to derive D (or N) above
        columns = {k: v for k, v in columns.items() if k != "C"}
    if args.bootstrap is not None and args.bootstrap < 1:
        raise ValueError(f"--bootstrap must be a positive number of resamples, got {args.bootstrap}")
    if not (0 < args.level < 1):
        raise ValueError(f"--level must lie in (0, 1), got {args.level}")
    budgets = _budgets(args.budget)
    t = time.perf_counter()
    spec = losses.spec(args.loss, delta=args.delta, q=args.q, c=args.c, residual=args.residual,
                       reduction=args.reduction)
    result, unidentified = _with_warnings_as_lines(lambda: fit(
        law, table, starts=args.starts, loss=spec, screen=args.screen_starts, columns=columns, threads=args.threads,
        bootstrap=args.bootstrap, seed=args.seed, progress=_show_progress(args), backend=args.backend,
        bootstrap_options=_bootstrap_options(args)))
    seconds = time.perf_counter() - t
    code = _emit(args, result, budgets, seconds)  # the JSON and the report first: a failed figure loses nothing
    if args.plot or args.corner:
        from .data import prepare

        ds = prepare(law, table, columns=columns)
        data = {**ds.columns, "loss": np.exp(ds.target)}  # type: ignore[arg-type]  # prepare sets the target
        _figures(args, result, data)
    return 1 if unidentified else code


def _with_warnings_as_lines(call):
    """(call(), whether it raised IdentifiabilityWarning), printing lawfit's own warnings as one stderr line
    each ("lawfit: warning: ..."); other warnings as Python shows them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LawfitWarning)
        out = call()
    unidentified = False
    for w in caught:
        if issubclass(w.category, LawfitWarning):
            print(f"lawfit: warning: {w.message}", file=sys.stderr)
            unidentified |= issubclass(w.category, IdentifiabilityWarning)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return out, unidentified


def _cmd_optimal(args) -> int:
    try:
        with open(args.fit) as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"no such file: {args.fit}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{args.fit} is not JSON: {err}") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("lawfit.fit/"):
        raise ValueError(f"{args.fit} is not a lawfit fit (write one with 'lawfit fit ... --json FILE')")
    budgets = _budgets(args.budget)
    if not budgets:
        raise ValueError("give at least one --budget FLOPS")
    if not isinstance(doc.get("law"), str) or not isinstance(doc.get("params"), dict):
        raise ValueError(f"{args.fit} has no law name and params mapping (write one with 'lawfit fit ... --json "
                         f"FILE')")
    law = laws.get(doc["law"])
    params = {k: v for k, v in doc["params"].items() if k in law.param_names}
    for k, v in params.items():  # JSON true is not 1, and 1e400 reads as inf: neither is a parameter value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{args.fit}: parameter {k!r} must be a finite number, got {json.dumps(v)}")
    table = allocation.compute_optimal(params, budgets, law=law)
    if args.json:
        _write_json(args.json, {"schema": "lawfit.optimal/1", "law": law.name,
                                 "allocation": [{k: _clean(v) for k, v in row.items()}
                                                for row in table.to_dict("records")]})
    if args.json != "-":
        print(f"compute-optimal allocation for {law.name} (C = 6 N D), from {args.fit}")
        for row in table.to_dict("records"):
            print(f"  C = {row['C']:.3g}: N = {row['N_opt']:.4g}, D = {row['D_opt']:.4g}, "
                  f"{row['tokens_per_param']:.1f} tokens/param, loss {row['loss']:.4f}")
    return 0


def _cmd_isoflop(args) -> int:
    from . import isoflop

    table, columns = _read_runs(args)
    if args.bootstrap is not None and args.bootstrap < 1:
        raise ValueError(f"--bootstrap must be a positive number of resamples, got {args.bootstrap}")
    if not (0 < args.level < 1):
        raise ValueError(f"--level must lie in (0, 1), got {args.level}")
    budgets = _budgets(args.budget)
    listed = [v for item in args.nominal or [] for v in item.split(",") if v.strip()]
    nominal = _budgets([c for v in listed for c in (isoflop.HOFFMANN_BUDGETS if v.strip() == "hoffmann" else [v])])
    t = time.perf_counter()
    if args.approach == 1:
        result = isoflop.approach1(table, n_grid=args.grid, mode=args.mode, bootstrap=args.bootstrap,
                                   seed=args.seed, columns=columns)
    else:
        result = isoflop.approach2(table, shape=args.shape, tolerance=args.tolerance, budgets=nominal or None,
                                   min_runs=args.min_runs, d_opt=args.d_opt, bootstrap=args.bootstrap,
                                   seed=args.seed, columns=columns)
    seconds = time.perf_counter() - t
    if args.json:
        _write_json(args.json, {"schema": "lawfit.isoflop/1", **result.to_dict(args.level, budgets or None)})
    if args.json != "-":
        print(result.summary(args.level))
        if budgets:
            print("\ncompute-optimal allocation from the power laws" + (
                f", {int(args.level * 100)}% intervals" if result.bootstrap is not None else ""))
            for row in result.optimal(budgets, args.level).to_dict("records"):
                line = (f"  C = {row['C']:.3g}: N = {row['N_opt']:.3g}, D = {row['D_opt']:.3g}, "
                        f"{row['tokens_per_param']:.1f} tokens/param")
                if "N_opt_low" in row:
                    line += (f"  [N {row['N_opt_low']:.3g} to {row['N_opt_high']:.3g}, "
                             f"D {row['D_opt_low']:.3g} to {row['D_opt_high']:.3g}]")
                print(line)
        print(f"\n{seconds:.2f} s")
    return 0


def _cmd_backtest(args) -> int:
    from .backtest import backtest

    table, columns = _read_runs(args)
    names = [x.strip() for x in args.laws.split(",") if x.strip()]
    opts: dict = {"starts": args.starts, "loss": args.loss, "residual": args.residual}
    res, _ = _with_warnings_as_lines(lambda: backtest(
        names, table, holdout=args.holdout, budget=args.budget or None, bootstrap=args.bootstrap, seed=args.seed,
        resample=args.resample, columns=columns or None, **opts))
    if args.json != "-":
        with_ci = args.bootstrap is not None
        print("backtest on the held-out runs (mape, bias, worst in %; log_error in log units)")
        for _, row in res.table.iterrows():
            cut = "" if row["cut"] is None else f"  cut {row['cut']:.3g}"
            line = (f"{row['law']:<22}{cut}  train {row['n_train']}, test {row['n_test']}:  mape {row['mape']:.3f}"
                    f"  log_error {row['log_error']:.5f}  bias {row['bias']:+.3f}  worst {row['worst']:.3f}")
            if with_ci:
                line += f"  (mape {args.level:.0%} interval {row['mape_lo']:.3f} to {row['mape_hi']:.3f})"
            if row["unidentified"]:
                line += f"  [poorly determined along {row['unidentified']}]"
            print(line)
    if args.json:
        _write_json(args.json, res.to_dict())
    if args.plot:
        res.plot(args.plot)
    return 0


def _cmd_downstream(args) -> int:
    from . import downstream

    table = _read_csv(args.runs)
    columns = _map_columns(args.map, allowed=("C", "nll", "accuracy"))
    res, _ = _with_warnings_as_lines(lambda: downstream.fit(table, bootstrap=args.bootstrap, seed=args.seed,
                                                            columns=columns))
    budgets = _budgets(args.budget) if args.budget else []
    forecasts: list[dict] = []
    doc = {"schema": "lawfit.downstream/1", "stage1": {k: _clean(v) for k, v in res.stage1.params.items()},
           "stage2": {k: _clean(v) for k, v in res.stage2.params.items()}, "n_bootstrap": len(res.draws),
           "interval": args.interval, "forecasts": forecasts}
    for b in budgets:
        f = res.forecast([b], level=args.level, interval=args.interval)
        forecasts.append({k: _clean(float(v[0])) for k, v in f.items()})
    if args.json != "-":
        print("stage 1, nll(C) = E + A / C^alpha: " + ", ".join(f"{k} {v:.6g}" for k, v in res.stage1.params.items()))
        print("stage 2, accuracy(nll): " + ", ".join(f"{k} {v:.6g}" for k, v in res.stage2.params.items()))
        for row in forecasts:
            ci = (f" ({args.level:.0%} interval {row['accuracy_lo']:.4f} to {row['accuracy_hi']:.4f})"
                  if "accuracy_lo" in row else "")
            print(f"C = {row['C']:.3g}: nll {row['nll']:.4f}, accuracy {row['accuracy']:.4f}{ci}")
    if args.holdout is not None or args.cut:
        bt, _ = _with_warnings_as_lines(lambda: downstream.backtest(
            table, holdout=args.holdout, budget=args.cut or None, bootstrap=args.bootstrap, seed=args.seed,
            level=args.level, interval=args.interval, columns=columns))
        doc["backtest"] = [{k: (None if v is None else int(v) if k in ("n_train", "n_test") else _clean(float(v)))
                            for k, v in row.items()} for row in bt.table.to_dict("records")]
        if args.json != "-":
            print("backtest on the held-out runs (accuracy: mape, bias, worst in %; nll_mape in %)")
            for row in doc["backtest"]:
                cut = "holdout" if row["cut"] is None else f"cut {row['cut']:.3g}"
                cov = f", {row['coverage']:.0%} inside their intervals" if "coverage" in row else ""
                print(f"{cut}: train {row['n_train']}, test {row['n_test']}: mape {row['mape']:.3f}, "
                      f"bias {row['bias']:+.3f}, worst {row['worst']:.3f}, nll_mape {row['nll_mape']:.3f}{cov}")
    if args.json:
        _write_json(args.json, doc)
    if args.plot:
        res.plot(table, args.plot, budgets=budgets, columns=columns)
    return 0


def _cmd_laws(args) -> int:
    for name in laws.available():
        law = laws.get(name)
        print(f"{name:<22} L({', '.join(law.variables)}) = {law.formula}")
    return 0


def _cmd_datasets(args) -> int:
    from . import datasets

    if args.name is None:
        if args.csv:
            raise ValueError("--csv needs a data set name: lawfit datasets NAME --csv OUT")
        for name in datasets.available():
            d = datasets.info(name)
            print(f"{name:<16} {d.n_rows:>4} rows  {', '.join(d.columns)}")
        return 0
    d = datasets.info(args.name)
    if not args.csv:
        print(d)
        return 0
    text = datasets.load(args.name).to_csv(index=False)
    if args.csv == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(args.csv, "w", newline="") as fh:
            fh.write(text)
    except OSError as err:
        raise ValueError(f"cannot write {args.csv}: {err.strerror}") from None
    print(f"wrote {d.n_rows} rows of {args.name} to {args.csv} (licence: {d.licence})")
    return 0


def _bootstrap_options(args) -> dict:
    opts: dict = {"strategy": args.strategy}
    if args.strategy == "pruned":
        opts["screen"] = args.screen
    if args.checkpoint:
        opts["checkpoint"] = args.checkpoint
    if args.chunk is not None:
        opts["chunk"] = args.chunk
    if (args.checkpoint or args.chunk is not None or args.strategy != "smart") and args.bootstrap is None:
        raise ValueError("--strategy, --checkpoint and --chunk apply to the bootstrap: add --bootstrap N")
    return opts


def _fit_options(p, plot_required: bool = False) -> None:
    p.add_argument("runs", help="CSV file with one row per training run")
    p.add_argument("--law", default="chinchilla", help="built-in law (see 'lawfit laws')")
    p.add_argument("--starts", default="grid", help="'grid' (the law's default) or 'hoffmann'")
    p.add_argument("--loss", default="huber", choices=losses.names(), help="the loss (see lawfit.losses)")
    p.add_argument("--delta", type=float, default=None, help="Huber's threshold (default 1e-3)")
    p.add_argument("--q", type=float, default=None, help="the quantile of --loss quantile (default 0.5)")
    p.add_argument("--c", type=float, default=None, help="the scale of --loss cauchy (default 0.01)")
    p.add_argument("--residual", default="log", choices=list(losses.RESIDUALS),
                   help="log: log L_hat - log L (default); linear: L_hat - L")
    p.add_argument("--reduction", default="sum", choices=list(losses.REDUCTIONS),
                   help="sum (default) or mean of the per-run losses")
    p.add_argument("--screen-starts", type=int, default=None, metavar="K",
                   help="score every start of the fit and refit only the K best (e.g. 16 with --starts hoffmann)")
    p.add_argument("--map", action="append", metavar="NAME=COLUMN",
                   help="read law variable NAME (or 'loss') from COLUMN; repeatable")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K",
                   help="drop exactly K runs, those with the highest loss (of equal losses, the earlier rows; "
                        "Epoch's protocol drops 5)")
    p.add_argument("--bootstrap", type=int, metavar="N", help="refit on N bootstrap resamples")
    p.add_argument("--seed", type=int, default=None, help="seed of the resamples")
    p.add_argument("--strategy", default="smart", choices=["smart", "pruned", "exhaustive", "fixed"],
                   help="starts of each resample: smart (the full-data basins; default), pruned (the --screen "
                        "best grid points per resample plus the basins), exhaustive (the whole grid), fixed")
    p.add_argument("--screen", type=int, default=16, metavar="K", help="pruned: grid points refitted per resample")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="save finished resamples to FILE (.npz) as the bootstrap runs; rerun to resume")
    p.add_argument("--chunk", type=int, metavar="N", help="resamples per unit of work (default 256)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--budget", action="append", metavar="FLOPS",
                   help="report the compute-optimal allocation at this budget; repeatable")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT ('-' for stdout)")
    p.add_argument("--plot", metavar="FILE", required=plot_required,
                   help="save the study figure (PNG or PDF, needs matplotlib)")
    p.add_argument("--corner", metavar="FILE", help="save the bootstrap corner plot (with --bootstrap)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--backend", default="cpu", choices=["cpu", "cuda", "auto"],
                   help="compute backend: cpu (C++ core), cuda (numba CUDA, pip install lawfit[cuda]) or auto "
                        "(the GPU for large batches when one is usable)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lawfit", description="Fit neural scaling laws, fast.")
    parser.add_argument("--version", action="version", version=f"lawfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("example", help="the bundled Chinchilla study: fit, bootstrap, allocation")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    p.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT ('-' for stdout)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--plot", metavar="FILE",
                   help="study figure (PNG or PDF; default chinchilla_study.png when matplotlib is installed)")
    p.add_argument("--no-plot", action="store_true", help="no figure")
    p.add_argument("--corner", metavar="FILE", help="save the bootstrap corner plot")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_example)
    p = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    _fit_options(p)
    p.set_defaults(func=_cmd_fit)
    p = sub.add_parser("plot", help="fit a law to a CSV of runs and save the study figure")
    _fit_options(p, plot_required=True)
    p.set_defaults(func=_cmd_fit)
    p = sub.add_parser("optimal", help="compute-optimal N and D at given budgets, from a saved fit")
    p.add_argument("fit", help="JSON written by 'lawfit fit ... --json FILE'")
    p.add_argument("--budget", action="append", metavar="FLOPS", help="training budget; repeatable")
    p.add_argument("--json", metavar="OUT", help="write the table as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=_cmd_optimal)
    p = sub.add_parser("isoflop", help="compute-optimal exponents from IsoFLOP profiles or the loss envelope "
                                       "(Hoffmann et al.'s Approaches 2 and 1)")
    p.add_argument("runs", help="CSV file: N, loss and D or C (one row per run; training curves for --approach 1)")
    p.add_argument("--approach", type=int, choices=[1, 2], default=2,
                   help="2: minimum of each IsoFLOP profile (default); 1: lower envelope of loss against C")
    p.add_argument("--map", action="append", metavar="NAME=COLUMN",
                   help="read N, D, C, loss (or run, for --approach 1) from COLUMN; repeatable")
    p.add_argument("--shape", default="parabola", choices=["parabola", "cubic", "interpolant"],
                   help="curve fitted to each profile against log N (approach 2)")
    p.add_argument("--tolerance", type=float, default=None, metavar="T",
                   help="bin runs whose C differ by up to a factor 1 + T (default: exact budgets)")
    p.add_argument("--nominal", action="append", metavar="FLOPS[,FLOPS...]",
                   help="snap runs to these nominal budgets (within --tolerance); repeatable; 'hoffmann' for "
                        "Hoffmann et al.'s nine (6e18 to 3e21)")
    p.add_argument("--min-runs", type=int, default=None, metavar="K",
                   help="distinct model sizes a budget needs (default: what the shape needs)")
    p.add_argument("--d-opt", default="derived", choices=["derived", "fit"],
                   help="D_opt = C / (6 N_opt) (default) or fitted against log D too")
    p.add_argument("--mode", default="auto", choices=["auto", "curves", "final"],
                   help="approach 1: training curves, or final losses only (the envelope of final points)")
    p.add_argument("--grid", type=int, default=1500, help="approach 1: log-spaced budgets along the envelope")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K",
                   help="drop exactly K runs, those with the highest loss (of equal losses, the earlier rows)")
    p.add_argument("--bootstrap", type=int, metavar="N", help="N bootstrap resamples for intervals")
    p.add_argument("--seed", type=int, default=None, help="seed of the resamples")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--budget", action="append", metavar="FLOPS",
                   help="report N_opt and D_opt at this budget; repeatable")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=_cmd_isoflop)
    p = sub.add_parser("backtest", help="fit laws on the runs below a compute cut, report errors on the runs above")
    p.add_argument("runs", help="CSV file with one row per training run (N, D or C, loss)")
    p.add_argument("--laws", default="chinchilla", help="comma-separated built-in laws (default chinchilla)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of runs of largest compute held out")
    p.add_argument("--budget", type=float, action="append", metavar="C",
                   help="hold out runs with compute >= C instead; repeat for a rolling origin")
    p.add_argument("--bootstrap", type=int, metavar="N", help="intervals from N resamples of the held-out runs")
    p.add_argument("--resample", default="test", choices=("test", "both"),
                   help="'both' also resamples the training runs and refits (intervals include the fit's uncertainty)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--starts", default="grid", help="'grid' (each law's default) or 'hoffmann'")
    p.add_argument("--loss", default="huber", choices=losses.names())
    p.add_argument("--residual", default="log", choices=list(losses.RESIDUALS))
    p.add_argument("--map", action="append", metavar="NAME=COLUMN", help="read NAME (or 'loss') from COLUMN")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K", help="drop exactly K runs of highest loss")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON (schema lawfit.backtest/1; '-': stdout)")
    p.add_argument("--plot", metavar="FILE", help="predicted vs observed and error vs compute (needs matplotlib)")
    p.set_defaults(func=_cmd_backtest)
    p = sub.add_parser("downstream", help="two-stage downstream prediction: task NLL against compute, accuracy "
                                          "against NLL, chained to a forecast at larger budgets")
    p.add_argument("runs", help="CSV with columns C, nll (task NLL of the correct answer) and accuracy")
    p.add_argument("--budget", type=float, action="append", metavar="C", help="forecast at this compute; repeatable")
    p.add_argument("--bootstrap", type=int, metavar="N", help="joint bootstrap with N resamples for intervals")
    p.add_argument("--interval", default="adjusted", choices=("adjusted", "percentile"),
                   help="'adjusted' (default) widens the percentile interval by sqrt(n / (n - p))")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--map", action="append", metavar="NAME=COLUMN", help="read C, nll or accuracy from COLUMN")
    p.add_argument("--holdout", type=float, metavar="F",
                   help="also backtest: fit on all but the fraction F of runs of largest compute, score the rest")
    p.add_argument("--cut", type=float, action="append", metavar="C",
                   help="also backtest with a compute cut (runs at or above C held out); repeatable")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON (schema lawfit.downstream/1)")
    p.add_argument("--plot", metavar="FILE", help="both stages and the forecasts (needs matplotlib)")
    p.set_defaults(func=_cmd_downstream)
    p = sub.add_parser("laws", help="list the built-in laws")
    p.set_defaults(func=_cmd_laws)
    p = sub.add_parser("datasets", help="list the bundled data sets, describe one, or write it as CSV")
    p.add_argument("name", nargs="?", help="a bundled data set (lawfit datasets lists them)")
    p.add_argument("--csv", metavar="OUT", help="write the data set as CSV ('-': stdout)")
    p.set_defaults(func=_cmd_datasets)
    args = parser.parse_args(argv)
    from .backends import BackendUnavailable

    try:
        _check_paths(args)
        return args.func(args)
    except (KeyError, AttributeError) as err:
        if args.command != "optimal":
            raise
        # a JSON document of the wrong shape (a field missing, a list where a mapping belongs)
        print(f"lawfit: error: {args.fit} is not a valid lawfit fit ({type(err).__name__}: {err})", file=sys.stderr)
        return 2
    except (ValueError, TypeError, BackendUnavailable) as err:
        msg = str(err)
        if msg.startswith("data has no column") and getattr(args, "command", "") in ("fit", "plot", "isoflop"):
            msg += "; name the column with --map VARIABLE=COLUMN"
            if "'D'" in msg or "'N'" in msg:
                msg += " (N or D can also come from training FLOP: --map C=COLUMN, with C = 6 N D)"
        print(f"lawfit: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a path that is a directory, unreadable, on a full disk, ...
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"lawfit: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("lawfit: error: out of memory; try fewer resamples or runs, a smaller --chunk or --grid",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        from .runner import Interrupted

        extra = ""
        if isinstance(err, Interrupted) and err.checkpoint:
            extra = f" ({int(err.done.sum())} of {err.done.size} chunks saved in {err.checkpoint}; run the same " \
                    f"command again to resume)"
        print(f"lawfit: interrupted{extra}", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
