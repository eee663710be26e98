# Type stubs for lawfit's private compiled module (cpp/bindings/). Users call lawfit.fit / lawfit.evaluate /
# lawfit.minimize instead; these signatures are the contract between the Python layer and the core.
from typing import Any

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
    def hessian_entries(self) -> int: ...

def minimize(
    program: Program,
    features: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64] | None,
    starts: npt.NDArray[np.float64],
    free_index: npt.NDArray[np.int32],
    fixed_value: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    upper: npt.NDArray[np.float64],
    loss_kind: int,
    delta: float,
    asymmetry: float,
    max_iter: int,
    xtol: float,
    ftol: float,
    radius0: float,
    irls: float,
    switch_rtol: float,
    keep_all: bool,
    threads: int,
    progress: Any = None,
    scale: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]: ...
def evaluate(
    program: Program,
    features: npt.NDArray[np.float64],
    target: npt.NDArray[np.float64],
    params: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64] | None,
    loss_kind: int,
    delta: float,
    asymmetry: float,
    derivatives: int,
    threads: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None, npt.NDArray[np.float64] | None]: ...
def isa() -> str: ...
def set_isa(name: str) -> None: ...
def default_threads() -> int: ...
