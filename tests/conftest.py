"""Shared test setup: the CUDA backend's tests run on numba's CUDA simulator.

numba reads NUMBA_ENABLE_CUDASIM once, when it is first imported. It is set here, before any test module is
collected, so tests/test_cuda.py (which imports the CUDA backend, and so numba, at collection) runs the kernels
on the simulator and checks them against the C++ backend on machines without a GPU, CI included. lawfit itself
imports numba only when a CUDA backend is requested. Set NUMBA_ENABLE_CUDASIM=0 to run those tests on a GPU.

Once collection is over the variable is removed again (when it was set here): numba has made its choice for
this process by then, and subprocesses that tests start (the command-line tests run ``python -m lawfit ...
--backend cuda`` and expect it to fail on a machine without a GPU) must see the machine as it is.

Hypothesis runs derandomized (the same examples on every run, so a CI failure reproduces on any machine);
``pytest --hypothesis-profile=explore`` draws fresh random examples instead (the fuzz battery, tests/fuzz/, then
runs ten times as many, as with LAWFIT_FUZZ=explore).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("reproducible")

_SET_HERE = "NUMBA_ENABLE_CUDASIM" not in os.environ
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")


def pytest_collection_finish(session):
    if _SET_HERE:
        os.environ.pop("NUMBA_ENABLE_CUDASIM", None)
