"""Progress reporting for long batches: ``progress=True`` in fit / bootstrap / minimize, or a callable
``progress(done, total)`` called every 50 ms from the waiting thread (with the GIL) while the core works.

With ``True`` a bar is shown on stderr once the work has run for about a second: tqdm's when tqdm is
installed (rate and time left), otherwise one self-updating line.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

__all__ = ["resolve"]


class _Bar:
    def __init__(self, desc: str, delay: float = 1.0):
        self.desc, self.delay, self.t0 = desc, delay, time.monotonic()
        self.bar: Any = None  # a tqdm bar once shown
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.t0
        if not self.shown and elapsed < self.delay and done < total:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.desc, unit="fit", file=sys.stderr, leave=False)
            self.bar.update(done - self.bar.n)
            if done >= total:
                self.bar.close()
        else:
            rate = done / elapsed if elapsed > 0 else 0.0
            left = (total - done) / rate if rate > 0 else float("inf")
            end = "\n" if done >= total else ""
            print(f"\r{self.desc}: {done}/{total} fits, {rate:,.0f} fits/s, {left:.0f} s left   ", end=end,
                  file=sys.stderr, flush=True)
        self.shown = True


def resolve(progress, desc: str = "lawfit") -> Callable[[int, int], None] | None:
    """None, a callable (used as is) or True (a bar on stderr)."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return _Bar(desc)
    if callable(progress):
        return progress
    raise TypeError(f"progress must be True, False, None or a callable(done, total), got {progress!r}")
