"""What the make_*.py scripts share: the output path and the CSV writer (floats written with repr, so the
tables round-trip exactly)."""

import csv
from pathlib import Path


def output_path(argv: list[str], name: str) -> Path:
    """argv[2] if given, else the bundled file python/lawfit/datasets/<name>.csv of this checkout."""
    default = Path(__file__).resolve().parents[2] / "python" / "lawfit" / "datasets" / f"{name}.csv"
    return Path(argv[2]) if len(argv) == 3 else default


def write_rows(rows: list[dict], out: Path) -> None:
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    print(f"wrote {len(rows)} rows to {out}")
