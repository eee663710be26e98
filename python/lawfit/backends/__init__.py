"""Compute backends. Each backend module offers ``minimize`` and ``evaluate`` with the signatures of the
compiled core's functions (``lawfit/_core.pyi``), so the Python layer calls them interchangeably:

- ``"cpu"``: the C++ core (``lawfit._core``), always available;
- ``"cuda"``: numba CUDA kernels (``lawfit.backends.cuda``), with ``pip install lawfit[cuda]`` and an
  NVIDIA GPU (or numba's CUDA simulator, ``NUMBA_ENABLE_CUDASIM=1``, for tests);
- ``"auto"``: the GPU for batches of at least :data:`AUTO_MIN_FITS` fits when one is usable (never the
  simulator), else the CPU.
"""

from __future__ import annotations

BACKENDS = ("cpu", "cuda", "auto")

# Below this many fits per call the GPU does not pay for its start-up and transfers (see README, "GPU").
AUTO_MIN_FITS = 20_000


class BackendUnavailable(RuntimeError):
    """An explicitly requested backend cannot run here; the message says what is missing."""


def cuda_unavailable_reason() -> str | None:
    """None when the CUDA backend can run, else why not (in words a user can act on)."""
    try:
        from . import cuda
    except ImportError as err:  # numba-cuda itself is missing
        return (f"the CUDA backend needs numba with CUDA support ({err}); install it with "
                f"`pip install lawfit[cuda]`")
    return cuda.unavailable_reason()


def get(backend: str = "cpu", n_fits: int | None = None):
    """The backend module for ``backend`` ("cpu", "cuda" or "auto") for a call of ``n_fits`` fits."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from .. import _core

    if backend == "cpu":
        return _core
    if backend == "auto":
        if (n_fits is None or n_fits >= AUTO_MIN_FITS) and cuda_unavailable_reason() is None:
            from . import cuda

            if not cuda.SIMULATOR:  # numba's CUDA simulator runs only when asked for by name
                return cuda
        return _core
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"backend='cuda' was requested but cannot run: {reason}. "
                                 f"Use backend='cpu' (or 'auto' to use a GPU only when one is usable).")
    from . import cuda

    return cuda


def program_for(core, law):
    """The law's program in the form ``core`` takes: the compiled core's validated ``Program`` object, or for
    other backends the compiler's arrays (``law.program``: op, a, b, imm, args, argflags), validated by the
    core all the same."""
    prog = law.core_program()  # validates (a bad tape is rejected here for every backend)
    from .. import _core

    return prog if core is _core else law.program
