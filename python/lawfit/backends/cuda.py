"""The CUDA backend: ``minimize`` and ``evaluate`` with the signatures, checks and results of the compiled
core's (``lawfit/_core.pyi``, ``cpp/bindings/bind_engine.cpp``), run by numba CUDA kernels.

Importing this module needs numba with NVIDIA's CUDA target (``pip install lawfit[cuda]``, which installs
numba-cuda); :func:`unavailable_reason` says whether a GPU can run it. With ``NUMBA_ENABLE_CUDASIM=1`` set
before numba is first imported, the same kernels run on numba's CUDA simulator (slowly, in Python): that is
how the tests check this backend against the C++ one without a GPU.

The objective, derivatives, solver, statuses and best-start rule are those of the C++ backend (see
``_cuda_codegen``, ``_cuda_solver``, ``_cuda_kernels``); results agree to rounding, not bit for bit (the sums
over points run in another order, and the GPU's exp and log are not the core's). ``threads`` is ignored.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

try:
    from numba import cuda as _nbcuda
except ImportError:
    raise
except Exception as _err:  # noqa: BLE001 - e.g. a numba-cuda release that does not work with this numba
    from importlib.metadata import version as _version

    def _v(dist):
        try:
            return _version(dist)
        except Exception:  # noqa: BLE001
            return "not installed"

    raise ImportError(f"numba.cuda failed to import ({type(_err).__name__}: {_err}; numba {_v('numba')}, "
                      f"numba-cuda {_v('numba-cuda')}: upgrading both may help)") from _err

if getattr(_nbcuda, "implementation", "") != "NVIDIA":  # numba's old built-in target, not numba-cuda
    raise ImportError("numba-cuda (NVIDIA's CUDA target for numba) is not installed")

from . import _cuda_kernels as _k  # noqa: E402
from ._cuda_codegen import program_arrays  # noqa: E402
from ._cuda_math import SIMULATOR  # noqa: E402
from ._cuda_solver import NOT_RUN  # noqa: E402

__all__ = ["minimize", "evaluate", "unavailable_reason", "SIMULATOR", "CHUNK_FITS"]

# Fits (or evaluations) per kernel launch. Between launches the progress callable is called and Ctrl-C is seen.
# 2**17 threads fill an H100 about four times over (at 190-255 registers a thread, 256 threads per SM are
# resident; 132 SMs), so the tail of a launch (its slowest fit) costs little, while a launch stays short: by a
# count of operations (~300 flops per run and evaluation, ~50 evaluations per fit; not measured) ~0.05 s for
# Chinchilla on 240 runs on an H100 and ~1 s on a consumer GPU with 1/64-rate float64, below a desktop's
# display watchdog. Scratch memory: ~60 bytes a fit.
CHUNK_FITS = 1 << 17


def unavailable_reason() -> str | None:
    """None when the kernels can run here (a usable NVIDIA GPU, or numba's simulator), else why not."""
    try:
        if SIMULATOR:
            return None
        if not _nbcuda.is_available():
            err = _nbcuda.cuda_error()
            if err is not None:
                return "the CUDA driver could not be initialised (" + " ".join(str(err).split()) + ")"
            return "no CUDA-capable NVIDIA GPU was found"
        err = _nvvm_error()
        if err is not None:
            return ("NVIDIA's NVVM compiler library, which numba needs to build the kernels, was not found ("
                    + err + "); install it with `pip install numba-cuda[cu12]` (or numba-cuda[cu13] with a "
                    "CUDA 13 driver), or install the CUDA toolkit")
        return None
    except Exception as err:  # noqa: BLE001 - never raise from here
        return f"checking for a CUDA GPU failed ({type(err).__name__}: {' '.join(str(err).split())})"


def _nvvm_error() -> str | None:
    """None if libnvvm loads, else the error in one line."""
    from numba.cuda.cudadrv import nvvm

    try:
        nvvm.NVVM()
    except Exception as err:  # noqa: BLE001 - any failure to load libnvvm means the same to a user
        return " ".join(str(err).split()) or type(err).__name__
    return None


# ---------------------------------------------------------------------------------------------------------
# Argument checks, with the messages of bind_engine.cpp (the Python layer has checked most things already)
# ---------------------------------------------------------------------------------------------------------
def _require(ok: bool, msg: str) -> None:
    if not ok:
        raise ValueError(msg)


def _program(program):
    """The program's arrays, validated by the core (the same messages as the CPU backend)."""
    from .. import _core

    if not all(hasattr(program, k) for k in ("op", "a", "b", "imm", "args", "argflags", "n_params")):
        raise TypeError(f"program must be a lawfit.compiler.Program (a law's .program), got {type(program).__name__}")
    arrays = program_arrays(program)
    _core.Program(*arrays)
    return arrays


def _num(x: float) -> str:
    return "%.6g" % x


def _array(obj, name: str, kinds: str, what: str) -> np.ndarray:
    """The array at the boundary, its dtype checked first (as to_array_d / to_array_i in pybind.hpp)."""
    try:
        arr = np.asarray(obj)
    except Exception:  # noqa: BLE001 - anything numpy cannot take
        raise TypeError(f"{name} must be {what}, got {type(obj).__name__}") from None
    if arr.dtype.kind not in kinds:
        raise TypeError(f"{name} must be {what}, got dtype {arr.dtype}")
    return arr


def _f64(obj, name: str) -> np.ndarray:
    return np.ascontiguousarray(_array(obj, name, "iuf", "an array of real numbers"), dtype=np.float64)


def _i32(obj, name: str) -> np.ndarray:
    arr = _array(obj, name, "iu", "an array of integers")
    if arr.size and (int(arr.min()) < -2**31 or int(arr.max()) > 2**31 - 1):
        raise ValueError(f"{name} has values outside the 32-bit integer range")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _check_weights(w: np.ndarray) -> None:
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0.0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"weights must be finite and >= 0; entry {i} is {_num(w.flat[i])}")


def _data(arrays, features, target):
    n_features = arrays[7]
    _require(features.ndim == 2, "features must be a 2-d array (n_features, n_points)")
    _require(target.ndim == 1, "target must be a 1-d array (n_points,)")
    _require(features.shape[0] == n_features,
             f"features has {features.shape[0]} rows; the law uses {n_features}")
    _require(features.shape[1] == target.shape[0], "features and target disagree on the number of points")


def _loss(loss):
    """(kind, parameter, asymmetry, residual, log Z, phase-1 curvature applies) of a ``_core.Loss``, checked
    as the core checks it."""
    from .. import _core

    if not isinstance(loss, _core.Loss):
        raise TypeError(f"loss must be a lawfit._core.Loss, got {type(loss).__name__}")
    err = loss.check()
    _require(err is None, f"loss: {err}")
    kind, param, asymmetry = int(loss.kind), float(loss.param), float(loss.asymmetry)
    log_z = 0.0
    if kind == int(_core.LOSS_KINDS["huber_likelihood"]):
        # log of the Huber density's normaliser (loss_kernel.hpp)
        log_z = math.log(math.sqrt(2.0 * math.pi) * math.erf(param / math.sqrt(2.0))
                         + 2.0 * math.exp(-0.5 * param * param) / param)
    name = next(k for k, v in _core.LOSS_KINDS.items() if v == kind)
    return kind, param, asymmetry, int(loss.residual), log_z, bool(_core.LOSS_CURVATURE[name])


def _floors(loss, target: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Per weight row, the objective of a perfect fit as rounding leaves it (``rounding_floor`` in
    cpp/include/lawfit/loss.hpp): a fit that stops there is converged even where its relative tests fail.
    -inf for the likelihood."""
    from .. import _core
    from ..losses import REGISTRY, rounding_residual

    R = 1 if weights is None else weights.shape[0]
    kind, param, asymmetry = int(loss.kind), float(loss.param), float(loss.asymmetry)
    if kind == int(_core.LOSS_KINDS["huber_likelihood"]):
        return np.full(R, -np.inf)
    kernel = next(k for k, v in _core.LOSS_KINDS.items() if v == kind)
    rho = next(d.rho for d in REGISTRY.values() if d.kernel == kernel and not d.fits_sigma)
    t = rounding_residual(target)
    with np.errstate(all="ignore"):
        per_point = np.maximum(asymmetry * rho(t, param), rho(-t, param))
    return np.full(R, per_point.sum()) if weights is None else weights @ per_point


def _rows(weights: np.ndarray | None, n: int):
    """Weight rows compressed to their non-zero entries, the points the C++ evaluator gathers: row_ptr
    (rows + 1), point indices (uint16 when they fit) and weights (float32 when every value is exactly a
    float32, as bootstrap counts are)."""
    vals: np.ndarray
    if weights is None:
        row_ptr = np.array([0, n], dtype=np.int64)
        pidx = np.arange(n)
        vals = np.ones(n)
    else:
        nz = weights != 0.0
        row_ptr = np.concatenate(([0], np.cumsum(nz.sum(axis=1)))).astype(np.int64)
        rows, pidx = np.nonzero(nz)  # row-major: the points of a row in increasing order
        vals = weights[rows, pidx]
    pidx = pidx.astype(np.uint16 if n <= 1 << 16 else np.int32)
    with np.errstate(all="ignore"):
        v32 = vals.astype(np.float32)
    if np.array_equal(v32.astype(np.float64), vals):
        vals = v32
    return row_ptr, np.ascontiguousarray(pidx), np.ascontiguousarray(vals)


def _to_device(*arrays):
    return tuple(_nbcuda.to_device(np.ascontiguousarray(a)) for a in arrays)


# ---------------------------------------------------------------------------------------------------------
# minimize / evaluate
# ---------------------------------------------------------------------------------------------------------
def minimize(program: Any, features: npt.ArrayLike, target: npt.ArrayLike, weights: npt.ArrayLike | None,
             starts: npt.ArrayLike, free_index: npt.ArrayLike, fixed_value: npt.ArrayLike, lower: npt.ArrayLike,
             upper: npt.ArrayLike, loss: Any, options: Any, keep_all: bool, threads: int,
             progress: Callable[[int, int], Any] | None = None,
             scale: npt.ArrayLike | None = None) -> dict[str, np.ndarray]:
    """``lawfit._core.minimize`` on the GPU: one fit per (weight row, start); all fits (``keep_all``) or the
    best start of each row with ``best_start`` and ``n_success``. ``threads`` is ignored."""
    arrays = _program(program)
    P = arrays[6]
    if progress is not None and not callable(progress):
        raise TypeError("progress must be None or a callable(done, total)")
    features, target, starts = _f64(features, "features"), _f64(target, "target"), _f64(starts, "starts")
    fixed_value, lower, upper = _f64(fixed_value, "fixed_value"), _f64(lower, "lower"), _f64(upper, "upper")
    free_index = _i32(free_index, "free_index")
    kind, delta, asymmetry, residual, log_z, curvature = _loss(loss)
    _data(arrays, features, target)
    n = target.shape[0]
    if weights is not None:
        weights = _f64(weights, "weights")
        _require(weights.ndim == 2 and weights.shape[1] == n, "weights must be a 2-d array (n_rows, n_points)")
        _check_weights(weights)
    R = 1 if weights is None else weights.shape[0]
    _require(free_index.ndim == 1 and free_index.shape[0] == P, "free_index must have one entry per law parameter")
    _require(fixed_value.ndim == 1 and fixed_value.shape[0] == P,
             "fixed_value must have one entry per law parameter")
    _require(bool(np.all((free_index >= -1) & (free_index < P))), "free_index out of range")
    nf = int(free_index.max()) + 1
    _require(nf >= 1, "at least one parameter must be free")
    _require(lower.ndim == 1 and upper.ndim == 1 and lower.shape[0] == nf and upper.shape[0] == nf,
             "lower and upper must have one entry per free parameter")
    for j in range(nf):
        _require(bool(lower[j] <= upper[j]),  # false for NaN too
                 f"bounds of free parameter {j}: lower {_num(lower[j])} must not exceed upper {_num(upper[j])} "
                 f"(nor be NaN)")
    if scale is None:
        scale = np.ones(nf)  # no scaling: the solver's formulas with D = 1 are those without D, bit for bit
    else:
        scale = _f64(scale, "scale")
        _require(scale.ndim == 1 and scale.shape[0] == nf, "scale must have one entry per free parameter")
        for j in range(nf):
            _require(bool(scale[j] > 0.0 and math.isfinite(scale[j])),
                     f"scale of free parameter {j} must be positive and finite, got {_num(scale[j])}")
    if starts.ndim == 2:
        _require(starts.shape[1] == nf, "starts must have one column per free parameter")
        S, per_row = starts.shape[0], False
    else:
        _require(starts.ndim == 3 and starts.shape[0] == R and starts.shape[2] == nf,
                 "per-row starts must have shape (n_rows, n_starts, n_free)")
        S, per_row = starts.shape[1], True
        starts = starts.reshape(R * S, nf)
    _require(S >= 1, "at least one start is needed")
    from .. import _core

    if not isinstance(options, _core.SolverOptions):
        raise TypeError(f"options must be a lawfit._core.SolverOptions, got {type(options).__name__}")
    max_iter, xtol, ftol, radius0 = options.max_iter, options.xtol, options.ftol, options.radius0
    irls, switch_rtol = options.irls, options.switch_rtol
    if not curvature:
        irls = 0.0  # no Huber band: exact Newton throughout (as the binding)
    err = _core.SolverOptions(max_iter, xtol, ftol, radius0, irls, switch_rtol).check()  # the core's own check
    _require(err is None, str(err))
    keep_all = bool(keep_all)

    kern = _k.kernels_for(arrays, kind, residual)
    total = R * S
    N = total if keep_all else R
    x = np.empty((N, nf))
    fun = np.empty(N)
    status = np.empty(N, dtype=np.int32)
    nit = np.empty(N, dtype=np.int32)
    nfev = np.empty(N, dtype=np.int32)
    at_bound = np.empty(N, dtype=np.uint32)
    out = {"x": x, "fun": fun, "status": status, "nit": nit, "nfev": nfev, "at_bound": at_bound}
    if total == 0:
        if not keep_all:
            out["best_start"] = np.empty(0, dtype=np.int32)
            out["n_success"] = np.empty(0, dtype=np.int32)
        if progress is not None:
            progress(0, 0)
        return out

    row_ptr, pidx, pw = _rows(weights, n)
    d_feat, d_target, d_row_ptr, d_pidx, d_pw, d_starts, d_fi, d_fv, d_lo, d_hi, d_scale, d_floor = _to_device(
        features, target, row_ptr, pidx, pw, starts, free_index, fixed_value, lower, upper, scale,
        _floors(loss, target, weights))
    chunk = max(1, min(int(CHUNK_FITS), total))
    sx = _nbcuda.device_array((chunk, nf), dtype=np.float64)
    sfun = _nbcuda.device_array(chunk, dtype=np.float64)
    sstatus, snit, snfev = (_nbcuda.device_array(chunk, dtype=np.int32) for _ in range(3))
    smask = _nbcuda.device_array(chunk, dtype=np.uint32)
    if not keep_all:  # the running best of each row, on the device
        d_best = _to_device(np.zeros((R, nf)), np.full(R, np.nan), np.full(R, NOT_RUN, dtype=np.int32),
                            np.zeros(R, dtype=np.int32), np.zeros(R, dtype=np.int32),
                            np.zeros(R, dtype=np.uint32), np.full(R, -1, dtype=np.int32),
                            np.zeros(R, dtype=np.int32))
    for p0 in range(0, total, chunk):
        count = min(chunk, total - p0)
        _k.launch(kern.fit, count, p0, count, S, d_starts, per_row, d_row_ptr, d_pidx, d_pw, d_feat, d_target,
                  d_fi, d_fv, nf, d_lo, d_hi, d_scale, d_floor, delta, asymmetry, log_z, max_iter, xtol, ftol,
                  radius0, irls, switch_rtol, sx, sfun, sstatus, snit, snfev, smask)
        if keep_all:
            for d, h in ((sx, x), (sfun, fun), (sstatus, status), (snit, nit), (snfev, nfev), (smask, at_bound)):
                d[:count].copy_to_host(h[p0:p0 + count])
        else:
            r_first = p0 // S
            nrows = (p0 + count - 1) // S - r_first + 1
            _k.launch(kern.reduce, nrows, p0, count, S, r_first, nrows, nf, sx, sfun, sstatus, snit, snfev,
                      smask, *d_best)
        if progress is not None:
            progress(p0 + count, total)
    if not keep_all:
        bx, bfun, bstatus, bnit, bnfev, bmask, bstart, bnsucc = (d.copy_to_host() for d in d_best)
        x[:], fun[:], status[:], nit[:], nfev[:], at_bound[:] = bx, bfun, bstatus, bnit, bnfev, bmask
        out["best_start"] = bstart
        out["n_success"] = bnsucc
    return out


def evaluate(program: Any, features: npt.ArrayLike, target: npt.ArrayLike, params: npt.ArrayLike,
             weights: npt.ArrayLike | None, loss: Any, derivatives: int,
             threads: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``lawfit._core.evaluate`` on the GPU: objective (and gradient, Hessian) for each row of ``params``
    (B, n_params), with weights None, (n,) shared or (B, n). ``threads`` is ignored."""
    arrays = _program(program)
    P = arrays[6]
    features, target, params = _f64(features, "features"), _f64(target, "target"), _f64(params, "params")
    _data(arrays, features, target)
    n = target.shape[0]
    kind, delta, asymmetry, residual, log_z, _ = _loss(loss)
    _require(params.ndim == 2 and params.shape[1] == P, f"params must be a 2-d array (batch, {P})")
    derivatives = int(derivatives)
    _require(0 <= derivatives <= 2, "derivatives must be 0, 1 or 2")
    B = params.shape[0]
    wstride = 0
    if weights is not None:
        weights = _f64(weights, "weights")
        _check_weights(weights)
        if weights.ndim == 1:
            _require(weights.shape[0] == n, "weights must have one entry per point")
            weights = weights[None, :]
        else:
            _require(weights.ndim == 2 and weights.shape[0] == B and weights.shape[1] == n,
                     "weights must have shape (n_points,) or (batch, n_points)")
            wstride = 1
    fun = np.empty(B)
    grad = np.empty((B, P))
    hess = np.empty((B, P, P))
    if B > 0:
        kern = _k.kernels_for(arrays, kind, residual)
        row_ptr, pidx, pw = _rows(weights, n)
        fi = np.arange(P, dtype=np.int32)
        d_params, d_row_ptr, d_pidx, d_pw, d_feat, d_target, d_fi, d_fv = _to_device(
            params, row_ptr, pidx, pw, features, target, fi, np.zeros(P))
        chunk = max(1, min(int(CHUNK_FITS), B))
        of = _nbcuda.device_array(chunk, dtype=np.float64)
        og = _nbcuda.device_array((chunk, P), dtype=np.float64)
        oh = _nbcuda.device_array((chunk, P, P), dtype=np.float64)
        for b0 in range(0, B, chunk):
            count = min(chunk, B - b0)
            _k.launch(kern.evaluate, count, b0, count, d_params, wstride, d_row_ptr, d_pidx, d_pw, d_feat,
                      d_target, d_fi, d_fv, delta, asymmetry, log_z, of, og, oh)
            of[:count].copy_to_host(fun[b0:b0 + count])
            if derivatives >= 1:
                og[:count].copy_to_host(grad[b0:b0 + count])
            if derivatives >= 2:
                oh[:count].copy_to_host(hess[b0:b0 + count])
    return (fun, grad if derivatives >= 1 else None, hess if derivatives >= 2 else None)
