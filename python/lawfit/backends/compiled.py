"""The one cache of compiled laws, owned by the backends.

A law's program (the compiler's arrays) is compiled at most once per process into a :class:`CompiledLaw`, keyed
by the program's content, so laws rebuilt by name, their ``with_sigma()`` variants and user laws with the same
expression share it. Each entry holds what the backends build from the program: the C++ core's validated
``_core.Program``, the CUDA kernels per (loss kind, residual), and memos of per-program work (the solver's
trust-region scaling for the last data it saw). At most :data:`MAX_ENTRIES` programs are kept (least recently
used first out).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["CompiledLaw", "compiled", "clear", "MAX_ENTRIES"]

MAX_ENTRIES = 64


class CompiledLaw:
    """What the backends built from one program: ``core`` (the ``_core.Program``, built on first use),
    ``kernels`` (CUDA kernels by (loss kind, residual)) and ``memo`` (per-program results keyed by the caller)."""

    def __init__(self, arrays: tuple):
        self.arrays = arrays  # (op, a, b, imm, args, argflags, n_params, n_features)
        self._core: Any = None
        self.kernels: dict = {}
        self.memo: dict = {}

    @property
    def core(self):
        if self._core is None:
            from .. import _core

            op, a, b, imm, args, argflags, P, F = self.arrays
            self._core = _core.Program(op, a, b, imm, args, argflags, P, F)
        return self._core


_ENTRIES: OrderedDict = OrderedDict()


def _arrays(program) -> tuple:
    if isinstance(program, tuple):
        return program
    return (program.op, program.a, program.b, program.imm, program.args, program.argflags, program.n_params,
            program.n_features)


def compiled(program) -> CompiledLaw:
    """The cache entry of a program (a compiler ``Program`` or the arrays tuple of ``program_arrays``)."""
    arrays = _arrays(program)
    key = tuple(np.ascontiguousarray(x).tobytes() + str(np.asarray(x).dtype).encode() for x in arrays[:6]) + (
        int(arrays[6]), int(arrays[7]))
    entry = _ENTRIES.get(key)
    if entry is None:
        entry = CompiledLaw(arrays)
        _ENTRIES[key] = entry
        while len(_ENTRIES) > MAX_ENTRIES:
            _ENTRIES.popitem(last=False)
    else:
        _ENTRIES.move_to_end(key)
    return entry


def clear() -> None:
    """Forget every compiled law (tests; the next use compiles again)."""
    _ENTRIES.clear()
