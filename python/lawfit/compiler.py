"""Compile a law expression into a straight-line program for the kernels.

The program is a list of instructions (an SSA tape) over data features and the law's *internal*
parameters, computing log L_hat. It is plain data (integer and float arrays), run unchanged by the C++
evaluator and by the CUDA backend; adding a law needs no compiled code.

Lowering rewrites the natural-scale expression into a numerically stable form:

* a parameter with a log transform, P = exp(p), enters as ``exp(p)``;
* ``x ** c`` becomes ``exp(c * log x)`` (for an integer ``c`` and a base not known to be positive, products
  and ``1 / x``, so ``(c - 1)**3`` is finite for ``c < 1``), ``a / b`` becomes ``a * (1 / b)`` and
  ``1 / exp(u)`` becomes ``exp(-u)``; products of exponentials merge, ``log(exp(u))`` is ``u``;
* ``log`` of a data variable becomes a precomputed feature column ``log(N)``;
* ``log`` of a sum of positive terms becomes a max-shifted log-sum-exp over the terms' logarithms, with
  non-negative terms that have no logarithm (a linear parameter E >= 0) kept as linear arguments.

So the Chinchilla law ``E + A / N**alpha + B / D**beta`` with log-transformed E, A, B compiles to
``lse(a - alpha*log(N), b - beta*log(D), e)``: three exponentials and one logarithm per point, no
overflow for any finite parameters. Common subexpressions are shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import _core
from .expr import Expr

# Opcodes: must match cpp/include/lawfit/program.hpp
OPS = dict(_core.OPCODES)  # name -> opcode, the core's table (cpp/include/lawfit/program.hpp)


@dataclass(frozen=True)
class ParamInfo:
    """What the compiler needs to know of a parameter."""

    index: int  # position in the internal parameter vector
    log: bool  # natural value = exp(internal)
    nonneg: bool = False  # natural value known to be >= 0 (from its lower bound)
    positive: bool = False  # natural value known to be > 0


@dataclass
class Program:
    """A compiled law: instruction arrays plus the feature columns they read."""

    op: np.ndarray
    a: np.ndarray
    b: np.ndarray
    imm: np.ndarray
    args: np.ndarray
    argflags: np.ndarray
    n_params: int
    features: list  # [(variable, "raw" | "log")], feature j of the program
    text: list = field(default_factory=list)  # human-readable listing

    @property
    def n_features(self) -> int:
        return len(self.features)

    def listing(self) -> str:
        return "\n".join(self.text)


# IR nodes are nested tuples: (op, *operands) or ("const", value), ("feat", var, kind), ("param", k),
# ("lse", ((arg, flag), ...)).
C = lambda v: ("const", float(v))  # noqa: E731


# Integer powers x**k of a base not known to be positive are products up to this |k| (see _Lowerer.int_pow).
_MAX_INT_POW = 64


def _is_const(x, v=None):
    return x[0] == "const" and (v is None or x[1] == v)


class _Lowerer:
    pinfo: dict[int, ParamInfo]  # parameter index -> facts, set by the caller before lowering

    def __init__(self, variables: Sequence[str], params: Mapping[str, ParamInfo]):
        self.variables = set(variables)
        self.params = params

    # -- positivity facts ----------------------------------------------------------------------
    def positive(self, x) -> bool:
        op = x[0]
        if op == "exp":
            return True
        if op == "const":
            return x[1] > 0
        if op == "feat":
            return x[2] == "raw"  # data variables are validated to be positive
        if op == "param":
            return self.pinfo[x[1]].positive
        if op in ("mul", "add"):
            return self.positive(x[1]) and self.positive(x[2])
        if op == "recip":
            return self.positive(x[1])
        return False

    def nonneg(self, x) -> bool:
        if self.positive(x):
            return True
        op = x[0]
        if op == "const":
            return x[1] >= 0
        if op == "param":
            return self.pinfo[x[1]].nonneg
        if op in ("mul", "add"):
            return self.nonneg(x[1]) and self.nonneg(x[2])
        return False

    # -- smart constructors ---------------------------------------------------------------------
    def add(self, a, b):
        if _is_const(a) and _is_const(b):
            return C(a[1] + b[1])
        if _is_const(a, 0.0):
            return b
        if _is_const(b, 0.0):
            return a
        if b[0] == "neg":
            return self.sub(a, b[1])
        return ("add", a, b)

    def sub(self, a, b):
        if _is_const(a) and _is_const(b):
            return C(a[1] - b[1])
        if _is_const(b, 0.0):
            return a
        if _is_const(a, 0.0):
            return self.neg(b)
        if b[0] == "neg":
            return self.add(a, b[1])
        return ("sub", a, b)

    def neg(self, a):
        if _is_const(a):
            return C(-a[1])
        if a[0] == "neg":
            return a[1]
        return ("neg", a)

    def mul(self, a, b):
        if _is_const(a) and _is_const(b):
            return C(a[1] * b[1])
        if _is_const(a, 1.0):
            return b
        if _is_const(b, 1.0):
            return a
        if _is_const(a, -1.0):
            return self.neg(b)
        if _is_const(b, -1.0):
            return self.neg(a)
        if a[0] == "exp" and b[0] == "exp":
            return self.exp(self.add(a[1], b[1]))
        if _is_const(b):  # constants first, for readability of listings
            a, b = b, a
        return ("mul", a, b)

    def recip(self, a):
        if _is_const(a) and a[1] != 0.0:
            return C(1.0 / a[1])
        if a[0] == "exp":
            return self.exp(self.neg(a[1]))
        if a[0] == "recip":
            return a[1]
        return ("recip", a)

    def exp(self, a):
        if _is_const(a):
            v = math.exp(a[1]) if a[1] < 709 else math.inf
            if math.isfinite(v):
                return C(v)
        if a[0] == "log":
            return a[1]
        return ("exp", a)

    def log(self, a):
        op = a[0]
        if op == "const" and a[1] > 0:
            return C(math.log(a[1]))
        if op == "exp":
            return a[1]
        if op == "feat" and a[2] == "raw":
            return ("feat", a[1], "log")
        if op == "recip" and self.positive(a[1]):
            return self.neg(self.log(a[1]))
        if op == "mul" and self.positive(a[1]) and self.positive(a[2]):
            return self.add(self.log(a[1]), self.log(a[2]))
        if op == "add":
            terms = self._terms(a)
            if all(self.nonneg(t) for t in terms):
                largs = []
                for t in terms:
                    if self.positive(t):
                        largs.append((self.log(t), 0))
                    else:
                        largs.append((t, 1))
                if any(f == 0 for _, f in largs):
                    return ("lse", tuple(largs))
        return ("log", a)

    def pow(self, a, b):
        if _is_const(b):
            c = b[1]
            if c == 1.0:
                return a
            if c == 0.0:
                return C(1.0)
            if c == int(c) and not self.positive(a):
                # x**k for an integer k and a base of unknown sign: exp(k log x) would be NaN for x < 0
                # where x**k is finite, so multiply (exact derivatives) and take 1/x**|k| for k < 0.
                return self.int_pow(a, int(c))
            if _is_const(a) and a[1] > 0:
                try:
                    return C(a[1] ** c)
                except OverflowError:  # 10.0 ** 400: caught below as a non-finite constant
                    return C(math.inf)
        return self.exp(self.mul(b, self.log(a)))

    def int_pow(self, a, k: int):
        """``a ** k`` for an integer ``k != 0`` by repeated squaring (at most ~2 log2 |k| products) when
        |k| <= _MAX_INT_POW; beyond that ``a ** k = (a * a) ** (k / 2)`` (times ``a`` for odd k), the square
        being non-negative, so exp(log) stays real."""
        m = abs(k)
        if m > _MAX_INT_POW:
            half = self.exp(self.mul(C(m // 2), self.log(self.mul(a, a))))
            out = self.mul(a, half) if m % 2 else half
        else:
            out, base = None, a
            while m:
                if m & 1:
                    out = base if out is None else self.mul(out, base)
                m >>= 1
                if m:
                    base = self.mul(base, base)
        return self.recip(out) if k < 0 else out

    def _terms(self, a):
        if a[0] == "add":
            return self._terms(a[1]) + self._terms(a[2])
        return [a]

    # -- lowering ------------------------------------------------------------------------------
    def lower(self, e: Expr):
        op = e.op
        if op == "const":
            return C(e.value)
        if op == "sym":
            if e.name in self.variables:
                return ("feat", e.name, "raw")
            if e.name in self.params:
                p = self.params[e.name]
                node = ("param", p.index)
                return self.exp(node) if p.log else node
            raise ValueError(f"unknown name {e.name!r} in the law: not a variable or parameter")
        args = [self.lower(x) for x in e.args]
        if op == "add":
            return self.add(*args)
        if op == "sub":
            return self.sub(*args)
        if op == "mul":
            return self.mul(*args)
        if op == "div":
            return self.mul(args[0], self.recip(args[1]))
        if op == "neg":
            return self.neg(args[0])
        if op == "pow":
            return self.pow(*args)
        if op == "exp":
            return self.exp(args[0])
        if op == "log":
            return self.log(args[0])
        if op == "expm1":
            return ("expm1", args[0])
        if op == "log1p":
            return ("log1p", args[0])
        if op == "lse":
            if len(args) == 1:
                return args[0]
            return ("lse", tuple((x, 0) for x in args))
        raise ValueError(f"unsupported operation {op!r} in law expression")


def compile_law(
    expr: Expr,
    variables: Sequence[str],
    params: Mapping[str, ParamInfo],
    log_space: bool = False,
) -> Program:
    """Compile ``log(expr)`` (or ``expr`` itself when ``log_space``) into a :class:`Program`."""
    lw = _Lowerer(variables, params)
    lw.pinfo = {p.index: p for p in params.values()}
    root = lw.lower(expr)
    if not log_space:
        root = lw.log(root)
    names = {p.index: n for n, p in params.items()}

    index: dict = {}
    op: list[int]
    args: list[int]
    op, a, b, imm, args, flags, text = [], [], [], [], [], [], []
    features: list = []

    def emit(node) -> int:
        if node in index:
            return index[node]
        kind = node[0]
        ia = ib = 0
        val = 0.0
        if kind == "const":
            val = node[1]
            desc = repr(val)
        elif kind == "feat":
            key = (node[1], node[2])
            if key not in features:
                features.append(key)
            ia = features.index(key)
            desc = node[1] if node[2] == "raw" else f"log({node[1]})"
        elif kind == "param":
            ia = node[1]
            desc = f"param[{ia}] {names.get(ia, '')}"
        elif kind == "lse":
            ids = [(emit(x), f) for x, f in node[1]]
            ia, ib = len(args), len(ids)
            for i, f in ids:
                args.append(i)
                flags.append(f)
            desc = "lse(" + ", ".join(f"%{i}" if f == 0 else f"lin %{i}" for i, f in ids) + ")"
        else:
            ops = [emit(x) for x in node[1:]]
            ia = ops[0]
            ib = ops[1] if len(ops) > 1 else 0
            desc = f"{kind}(" + ", ".join(f"%{i}" for i in ops) + ")"
        i = len(op)
        op.append(OPS[kind])
        a.append(ia)
        b.append(ib)
        imm.append(val)
        text.append(f"%{i} = {desc}")
        index[node] = i
        return i

    emit(root)
    bad = [t for t, v in zip(text, imm) if not math.isfinite(v)]
    if bad:  # constant folding overflowed (1e300 * 1e300, 10 ** 400): the kernels would reject the program
        raise ValueError(f"the law has a constant that is not finite in float64 ({bad[0]}); "
                         f"check for overflowing numbers such as 10**400")
    n_params = max((p.index for p in params.values()), default=-1) + 1
    return Program(
        op=np.asarray(op, dtype=np.int32),
        a=np.asarray(a, dtype=np.int32),
        b=np.asarray(b, dtype=np.int32),
        imm=np.asarray(imm, dtype=np.float64),
        args=np.asarray(args, dtype=np.int32),
        argflags=np.asarray(flags, dtype=np.int32),
        n_params=n_params,
        features=features,
        text=text,
    )


def program_predict(prog: Program, features: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Evaluate a program in NumPy (value only): the output at every point. For checks and predictions.
    Complex features or parameters are allowed (complex-step derivatives). ``theta`` (S, P) evaluates S
    parameter vectors at once and returns (S, n)."""
    vals = program_nodes(prog, features, theta)
    n = features.shape[1]
    return np.broadcast_to(vals[-1], (len(theta), n)) if np.ndim(theta) == 2 else vals[-1]


def program_nodes(prog: Program, features: np.ndarray, theta: np.ndarray) -> list:
    """The value of every node of the program (a list in program order; arrays broadcastable to the points),
    as :func:`program_predict` computes them."""
    vals: list = []
    batched = np.ndim(theta) == 2
    n = features.shape[1]
    dtype = np.result_type(features.dtype, np.asarray(theta).dtype, np.float64)
    for i in range(len(prog.op)):
        o, ia, ib = int(prog.op[i]), int(prog.a[i]), int(prog.b[i])
        with np.errstate(all="ignore"):
            if o == 0:
                v = np.full(n, prog.imm[i], dtype=dtype)
            elif o == 1:
                v = features[ia]
            elif o == 2:
                v = np.asarray(theta)[:, ia, None] if batched else np.full(n, theta[ia], dtype=dtype)
            elif o == 3:
                v = vals[ia] + vals[ib]
            elif o == 4:
                v = vals[ia] - vals[ib]
            elif o == 5:
                v = vals[ia] * vals[ib]
            elif o == 6:
                v = -vals[ia]
            elif o == 7:
                v = 1.0 / vals[ia]
            elif o == 8:
                v = np.exp(vals[ia])
            elif o == 9:
                v = np.log(vals[ia])
            elif o == 10:
                ids = prog.args[ia:ia + ib]
                fl = prog.argflags[ia:ia + ib]
                logs = np.stack(np.broadcast_arrays(*[vals[j] if f == 0 else np.log(vals[j])
                                                      for j, f in zip(ids, fl)]))
                m = logs.real.max(axis=0)  # real part: also for complex-step derivatives
                v = m + np.log(np.exp(logs - m).sum(axis=0))
            elif o == 11:
                v = np.expm1(vals[ia])
            else:
                v = np.log1p(vals[ia])
        vals.append(v)
    return vals

