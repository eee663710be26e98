"""The CUDA kernels of one law: fits, the best start per weight row, batched evaluation. Built once per
(program, loss kind) and cached for the process.

Layout: one thread per fit (problem p = r * S + s, as in batch.cpp). A thread reads its start, walks the
points of its weight row (compressed: the indices and weights of the non-zero entries, so a bootstrap row costs
~63 % of the points, as the C++ evaluator's gathered copy) and runs the whole trust-region fit in registers and
local memory (``_cuda_solver.solve``; arrays sized by the law's parameter count). Neighbouring threads fit
neighbouring starts of one row, so a warp's reads of the data and of the row's weights are mostly the same
addresses (broadcast; not once its fits are at different iterations, which are read at other points). Results go
to a per-launch scratch; with keep='best' a second kernel (one thread per row touched by the launch) folds them
into a running best per row with the total order of ``better()`` in batch.cpp, so only one result per row crosses
back to the host and the answer does not depend on how the batch is split into launches.
"""


from __future__ import annotations

import itertools
import linecache
import math
import warnings

import numpy as np
from numba import cuda, float64

from . import _cuda_math as cm
from ._cuda_codegen import objective_source
from ._cuda_solver import AT_BOUND, NOT_RUN, better, clip, make_solve

THREADS_PER_BLOCK = 128

_serial = itertools.count()


class LawKernels:
    """The compiled kernels of one (program, loss kind); ``n_params`` sizes their local arrays."""

    def __init__(self, objective, n_params: int):
        self.n_params = n_params
        self.objective = objective
        self.fit, self.reduce, self.evaluate = _make_kernels(objective, n_params)


def kernels_for(arrays, loss_kind: int, residual: int = 0) -> LawKernels:
    """Kernels for a program given as ``_cuda_codegen.program_arrays`` (cached by the program's content, the
    loss kind and the residual scale)."""
    from .compiled import compiled

    entry = compiled(arrays)
    key = (int(loss_kind), int(residual))
    k = entry.kernels.get(key)
    if k is None:
        src, consts = objective_source(arrays, loss_kind, residual)
        ns = {"EXP": cm.EXP, "LOG": cm.LOG, "EXPM1": cm.EXPM1, "LOG1P": cm.LOG1P, "COPYSIGN": cm.COPYSIGN,
              "WEIGHT": cm.WEIGHT, "INF": cm.INF}
        for name, v in consts.items():
            ns[name] = np.float64(v) if cm.SIMULATOR else float(v)
        filename = f"<lawfit-cuda-objective-{next(_serial)}>"
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # for tracebacks
        exec(compile(src, filename, "exec"), ns)
        k = LawKernels(cm.device(ns["objective"]), arrays[6])
        entry.kernels[key] = k
    return k


def _make_kernels(objective, NP):
    NPP = NP * NP
    solve = make_solve(objective, NP)

    @cuda.jit
    def fit_kernel(p0, count, S, starts, per_row, row_ptr, pidx, pw, feat, target, fi, fv, nf, lower, upper,
                   scale, floor, hdelta, asym, log_z, max_iter, xtol, ftol, radius0, irls, switch_rtol,
                   ox, ofun, ostatus, onit, onfev, omask):
        t = cuda.grid(1)
        if t >= count:
            return
        p = p0 + t
        r = p // S
        s = p - r * S
        srow = p if per_row else s
        x = cuda.local.array(NP, float64)
        for j in range(nf):
            x[j] = starts[srow, j]
        q0 = row_ptr[r]
        q1 = row_ptr[r + 1]
        if q1 == q0:  # no point with positive weight: the fit is not run; x is the start, clipped as solve() does
            for j in range(nf):
                x[j] = clip(x[j], lower[j], upper[j])
            status = NOT_RUN
            nit = 0
            nfev = 0
            f = math.nan
            mask = 0
        else:
            status, nit, nfev, f, mask = solve(x, fi, fv, nf, lower, upper, scale, feat, target, pidx, pw, q0, q1,
                                               hdelta, asym, log_z, max_iter, xtol, ftol, radius0, irls,
                                               switch_rtol, floor[r])
        for j in range(nf):
            ox[t, j] = x[j]
        ofun[t] = f
        ostatus[t] = status
        onit[t] = nit
        onfev[t] = nfev
        omask[t] = mask

    @cuda.jit
    def reduce_kernel(p0, count, S, r_first, nrows, nf, sx, sfun, sstatus, snit, snfev, smask,
                      bx, bfun, bstatus, bnit, bnfev, bmask, bstart, bnsucc):
        u = cuda.grid(1)
        if u >= nrows:
            return
        r = r_first + u
        pa = r * S
        if pa < p0:
            pa = p0
        pb = (r + 1) * S
        if pb > p0 + count:
            pb = p0 + count
        best = bstart[r]  # -1 before the row's first launch
        bst = bstatus[r]
        bf = bfun[r]
        nsucc = bnsucc[r]
        chosen = -1
        for p in range(pa, pb):
            t = p - p0
            s = p - r * S
            st = sstatus[t]
            fv = sfun[t]
            if st <= AT_BOUND:
                nsucc += 1
            if best < 0 or better(st, fv, s, bst, bf, best):
                best = s
                bst = st
                bf = fv
                chosen = t
        if chosen >= 0:
            for j in range(nf):
                bx[r, j] = sx[chosen, j]
            bfun[r] = sfun[chosen]
            bstatus[r] = sstatus[chosen]
            bnit[r] = snit[chosen]
            bnfev[r] = snfev[chosen]
            bmask[r] = smask[chosen]
            bstart[r] = best
        bnsucc[r] = nsucc

    @cuda.jit
    def eval_kernel(b0, count, params, wstride, row_ptr, pidx, pw, feat, target, fi, fv, hdelta, asym, log_z,
                    of, og, oh):
        t = cuda.grid(1)
        if t >= count:
            return
        b = b0 + t
        x = cuda.local.array(NP, float64)
        g = cuda.local.array(NP, float64)
        H = cuda.local.array(NPP, float64)
        for j in range(NP):
            x[j] = params[b, j]
        cr = b * wstride
        f, scale = objective(x, fi, fv, NP, feat, target, pidx, pw, row_ptr[cr], row_ptr[cr + 1], 0.0, hdelta,
                             asym, log_z, g, H)
        of[t] = f
        for j in range(NP):
            og[t, j] = g[j]
            for k in range(NP):
                oh[t, j, k] = H[j * NP + k]

    return fit_kernel, reduce_kernel, eval_kernel


def launch(kernel, n_threads: int, *args) -> None:
    """kernel[blocks, THREADS_PER_BLOCK](*args) over n_threads threads (a no-op for none)."""
    if n_threads <= 0:
        return
    blocks = (n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    if not cm.SIMULATOR:
        kernel[blocks, THREADS_PER_BLOCK](*args)
        return
    # The simulator runs the kernel as Python: numbers stay numpy scalars (see _cuda_math), and numpy's
    # warnings about inf/nan results, which a GPU produces silently, are not errors.
    args = tuple(np.float64(a) if isinstance(a, float) else a for a in args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kernel[blocks, THREADS_PER_BLOCK](*args)
