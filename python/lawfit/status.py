"""Per-fit status codes. The numbers come from the core (``_core.STATUS``); this is the one message table."""

from __future__ import annotations

import enum

from . import _core


class Status(enum.IntEnum):
    """Why a fit stopped. ``CONVERGED`` and ``CONVERGED_AT_BOUND`` count as success."""

    # the numbers are the core's (_core.STATUS, from cpp/include/lawfit/status.hpp)
    CONVERGED = _core.STATUS["CONVERGED"]
    CONVERGED_AT_BOUND = _core.STATUS["CONVERGED_AT_BOUND"]
    MAX_ITERATIONS = _core.STATUS["MAX_ITERATIONS"]
    STEP_FAILED = _core.STATUS["STEP_FAILED"]
    NON_FINITE = _core.STATUS["NON_FINITE"]
    NOT_RUN = _core.STATUS["NOT_RUN"]

    def __str__(self) -> str:
        return self.name

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def success(self) -> bool:
        return self <= Status.CONVERGED_AT_BOUND


_MESSAGES = {
    Status.CONVERGED: "converged: the Newton step is negligible (a stationary point)",
    Status.CONVERGED_AT_BOUND: "converged with at least one parameter on a bound",
    Status.MAX_ITERATIONS: "stopped at the iteration limit before converging",
    Status.STEP_FAILED: "the trust region collapsed: no step decreases the objective, yet the point is not stationary",
    Status.NON_FINITE: "the objective, its derivatives or the natural parameters are not finite (overflow, or log of "
                       "a non-positive value)",
    Status.NOT_RUN: "not run: the weight row has fewer runs with positive weight (or at distinct points) than free "
                    "parameters, or the run stopped before reaching it",
}


def is_success(codes):
    """Vectorised success test for an array of status codes."""
    import numpy as np

    return np.asarray(codes) <= int(Status.CONVERGED_AT_BOUND)
