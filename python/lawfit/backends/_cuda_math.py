"""Math functions and the device-function decorator for the CUDA backend, on a GPU and under numba's simulator.

On a GPU, ``math.exp`` and friends follow IEEE: overflow gives inf, log(0) = -inf, log(-1) = nan, 1/0 = inf,
and the solver turns non-finite values into statuses. Under the simulator (NUMBA_ENABLE_CUDASIM=1) the same
code runs as Python, where ``math.exp(1000.0)`` raises OverflowError and ``1.0 / 0.0`` ZeroDivisionError. So
there the functions are numpy's, which return numpy float64 scalars with IEEE results, and every number the
kernels compute stays a numpy scalar (array elements, numpy math, kernel arguments converted by the
launcher); numpy's RuntimeWarnings for those results are silenced around simulated launches only
(``_cuda_kernels.launch``), since a GPU gives the same values silently.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from numba import cuda

# Whether numba.cuda is the simulator: decided by NUMBA_ENABLE_CUDASIM when numba was first imported (read from
# the module itself, since numba's config object may be reloaded from the environment later).
SIMULATOR = cuda.jit.__module__.startswith("numba.cuda.simulator")

# numpy's functions under the simulator, math's on a GPU (see above).
EXP: Callable[..., Any]
LOG: Callable[..., Any]
EXPM1: Callable[..., Any]
LOG1P: Callable[..., Any]
SQRT: Callable[..., Any]
COPYSIGN: Callable[..., Any]
WEIGHT: type

if SIMULATOR:
    EXP, LOG, EXPM1, LOG1P, SQRT, COPYSIGN = np.exp, np.log, np.expm1, np.log1p, np.sqrt, np.copysign
    WEIGHT = np.float64  # a weight read from a float32 or float64 array, as float64

    def device(fn):
        # Plain Python functions: a simulated device function (cuda.jit(device=True)) swaps module globals
        # on every call, which would dominate the simulator's run time; the code is the same.
        return fn
else:
    EXP, LOG, EXPM1, LOG1P, SQRT, COPYSIGN = math.exp, math.log, math.expm1, math.log1p, math.sqrt, math.copysign
    WEIGHT = float

    def device(fn):
        return cuda.jit(device=True)(fn)

INF = math.inf
