# Type stubs for lawfit's private compiled module (cpp/bindings/). Users call lawfit.fit / lawfit.evaluate /
# lawfit.minimize instead; these signatures are the contract between the Python layer and the core.
from typing import Any, Callable, TypedDict

import numpy as np
import numpy.typing as npt

class Program:
    def __init__(
        self,
        op: npt.ArrayLike,
        a: npt.ArrayLike,
        b: npt.ArrayLike,
        imm: npt.ArrayLike,
        args: npt.ArrayLike,
        argflags: npt.ArrayLike,
        n_params: int,
        n_features: int,
    ) -> None: ...
    @property
    def n_params(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def n_instructions(self) -> int: ...
    @property
    def kernel(self) -> str: ...
    @property
    def affine_why_not(self) -> str: ...
    def hessian_entries(self) -> int: ...

class Loss:
    def __init__(self, kind: int, param: float, asymmetry: float = 1.0, residual: int = 0) -> None: ...
    @property
    def kind(self) -> int: ...
    @property
    def param(self) -> float: ...
    @property
    def asymmetry(self) -> float: ...
    @property
    def residual(self) -> int: ...
    def check(self) -> str | None: ...

class SolverOptions:
    def __init__(
        self,
        max_iter: int = ...,
        xtol: float = ...,
        ftol: float = ...,
        radius0: float = ...,
        irls: float = ...,
        switch_rtol: float = ...,
    ) -> None: ...
    @property
    def max_iter(self) -> int: ...
    @property
    def xtol(self) -> float: ...
    @property
    def ftol(self) -> float: ...
    @property
    def radius0(self) -> float: ...
    @property
    def irls(self) -> float: ...
    @property
    def switch_rtol(self) -> float: ...
    def check(self) -> str | None: ...

LOSS_KINDS: dict[str, int]
LOSS_CURVATURE: dict[str, bool]
OPCODES: dict[str, int]
STATUS: dict[str, int]
MAX_PARAMS: int
MAX_INSTRUCTIONS: int

class _SolverTable(TypedDict):
    # The defaults of SolverOptions, then the constants of the solver's adaptive curvature.
    max_iter: int
    xtol: float
    ftol: float
    radius0: float
    irls: float
    switch_rtol: float
    irls_rho: float
    irls_shrink: float
    irls_min: float

SOLVER: _SolverTable

def minimize(
    program: Program,
    features: npt.ArrayLike,
    target: npt.ArrayLike,
    weights: npt.ArrayLike | None,
    starts: npt.ArrayLike,
    free_index: npt.ArrayLike,
    fixed_value: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    loss: Loss,
    options: SolverOptions,
    keep_all: bool,
    threads: int,
    progress: Callable[[int, int], object] | None = None,
    scale: npt.ArrayLike | None = None,
) -> dict[str, npt.NDArray[Any]]: ...
def evaluate(
    program: Program,
    features: npt.ArrayLike,
    target: npt.ArrayLike,
    params: npt.ArrayLike,
    weights: npt.ArrayLike | None,
    loss: Loss,
    derivatives: int,
    threads: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]: ...
def isa() -> str: ...
# Test-only, process-wide switches (benchmarks and kernel tests); never used by the package itself.
def set_isa(name: str, /) -> None: ...
def set_kernel(name: str, /) -> None: ...
def default_threads() -> int: ...
