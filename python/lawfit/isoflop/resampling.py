"""Bootstrap plumbing shared by Approaches 1 and 2: the ``bootstrap=`` check, the generator from ``seed=``,
and the block size (resample x run cells) that bounds the memory of a bootstrap, whatever its size."""

from __future__ import annotations

import numpy as np

_BOOT_BLOCK = 1 << 20  # bootstrap resamples are processed in blocks of about this many (resample, run) cells


def _check_bootstrap(bootstrap) -> int | None:
    if bootstrap is None:
        return None
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 1:
        raise ValueError(f"bootstrap must be a positive number of resamples, got {bootstrap!r}")
    return int(bootstrap)


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _resample_blocks(n_items: int, nboot: int, seed, width: int):
    """Blocks (lo, hi, present) of ``resample_weights(n_items, nboot, seed) > 0``, a block of rows at a time."""
    from ..bootstrap import Resamples

    rows = Resamples(n_items, nboot, seed=_rng(seed))
    for lo, hi, w in rows.blocks(max(1, min(nboot, _BOOT_BLOCK // max(1, width)))):
        yield lo, hi, w > 0
