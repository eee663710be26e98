"""The ``lawfit`` command line.

    lawfit example                       fit Chinchilla to the bundled runs (Hoffmann's 4500 starts)
    lawfit fit RUNS.csv --law chinchilla fit a law to a CSV of training runs
    lawfit laws                          list the built-in laws

User errors print one line on stderr and exit with status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import __version__, datasets, laws
from .fitting import fit


def _print_fit(result, seconds: float, out) -> None:
    print(result.summary(), file=out)
    print(f"\n{seconds:.3f} s ({result.n_starts} starts)", file=out)


def _cmd_example(args) -> int:
    runs = datasets.chinchilla(drop_highest=5)
    print("Chinchilla runs (Hoffmann et al. 2022, via Epoch AI's replication): 240 runs after dropping the "
          "5 highest losses\n")
    t = time.perf_counter()
    result = fit("chinchilla", runs, starts="hoffmann", threads=args.threads)
    _print_fit(result, time.perf_counter() - t, sys.stdout)
    return 0 if result.success else 1


def _cmd_fit(args) -> int:
    import pandas as pd

    try:
        table = pd.read_csv(args.runs)
    except FileNotFoundError:
        raise ValueError(f"no such file: {args.runs}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {args.runs} as CSV: {err}") from None
    columns = {}
    for item in args.map or []:
        name, sep, col = item.partition("=")
        if not sep or not name or not col:
            raise ValueError(f"--map expects NAME=COLUMN, got {item!r}")
        columns[name] = col
    law = laws.get(args.law)
    t = time.perf_counter()
    result = fit(law, table, starts=args.starts, loss=args.loss, delta=args.delta, columns=columns,
                 threads=args.threads)
    seconds = time.perf_counter() - t
    if args.json:
        doc = result.to_dict()
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    if args.json != "-":
        _print_fit(result, seconds, sys.stdout)
    return 0 if result.success else 1


def _cmd_laws(args) -> int:
    for name in laws.available():
        law = laws.get(name)
        print(f"{name:<22} L({', '.join(law.variables)}) = {law.formula}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lawfit", description="Fit neural scaling laws, fast.")
    parser.add_argument("--version", action="version", version=f"lawfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("example", help="fit the Chinchilla law to the bundled runs")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    p.set_defaults(func=_cmd_example)
    p = sub.add_parser("fit", help="fit a law to a CSV of training runs")
    p.add_argument("runs", help="CSV file with one row per training run")
    p.add_argument("--law", default="chinchilla", help="built-in law (see 'lawfit laws')")
    p.add_argument("--starts", default="grid", help="'grid' (the law's default) or 'hoffmann'")
    p.add_argument("--loss", default="huber", choices=["huber", "squared"])
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log residuals")
    p.add_argument("--map", action="append", metavar="NAME=COLUMN",
                   help="read law variable NAME (or 'loss') from COLUMN; repeatable")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT ('-' for stdout)")
    p.set_defaults(func=_cmd_fit)
    p = sub.add_parser("laws", help="list the built-in laws")
    p.set_defaults(func=_cmd_laws)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        print(f"lawfit: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lawfit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
