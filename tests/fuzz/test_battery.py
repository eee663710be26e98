"""The battery's size: every fuzz test registers its number of cases in CASES (fuzz.helpers.fuzz)."""

from __future__ import annotations

import importlib
from pathlib import Path

from fuzz.helpers import CASES


def test_battery_size():
    # each family registers its cases when it is imported: import them all, so that this holds when run alone
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        importlib.import_module(f"fuzz.{path.stem}")
    assert sum(CASES.values()) >= 10_000, CASES
