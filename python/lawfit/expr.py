"""Symbolic expressions for scaling laws.

A law is written as an ordinary expression over *variables* (data columns such as ``N`` and ``D``) and
*parameters* (``E``, ``A``, ``alpha``...), either with Python operators on :class:`Expr` objects or as a
string parsed by :func:`parse`. Expressions are immutable and hashable; the compiler
(:mod:`lawfit.compiler`) turns them into a program for the compiled kernels.

>>> from lawfit.expr import symbols, exp, log
>>> N, D = symbols("N D")
>>> E, A, B, alpha, beta = symbols("E A B alpha beta")
>>> law = E + A / N**alpha + B / D**beta
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

__all__ = ["Expr", "Symbol", "symbols", "exp", "log", "expm1", "log1p", "sqrt", "lse", "parse"]

Number = Union[int, float]


@dataclass(frozen=True)
class Expr:
    """A node of an expression tree: ``op`` with ``args`` (Expr) and, for leaves, ``value``/``name``."""

    op: str
    args: tuple = ()
    value: float = 0.0
    name: str = ""

    # -- construction helpers -------------------------------------------------------------------
    @staticmethod
    def wrap(x: "Expr | Number") -> "Expr":
        if isinstance(x, Expr):
            return x
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"cannot use {x!r} ({type(x).__name__}) in a law expression")
        try:
            v = float(x)
        except OverflowError:  # an integer beyond float64
            v = math.inf
        if not math.isfinite(v):
            text = repr(x) if len(repr(x)) <= 40 else f"an integer of {len(str(abs(x)))} digits"
            raise ValueError(f"constants in a law must be finite, got {text}")
        return Expr("const", value=v)

    def __add__(self, o): return Expr("add", (self, Expr.wrap(o)))
    def __radd__(self, o): return Expr("add", (Expr.wrap(o), self))
    def __sub__(self, o): return Expr("sub", (self, Expr.wrap(o)))
    def __rsub__(self, o): return Expr("sub", (Expr.wrap(o), self))
    def __mul__(self, o): return Expr("mul", (self, Expr.wrap(o)))
    def __rmul__(self, o): return Expr("mul", (Expr.wrap(o), self))
    def __truediv__(self, o): return Expr("div", (self, Expr.wrap(o)))
    def __rtruediv__(self, o): return Expr("div", (Expr.wrap(o), self))
    def __pow__(self, o): return Expr("pow", (self, Expr.wrap(o)))
    def __rpow__(self, o): return Expr("pow", (Expr.wrap(o), self))
    def __neg__(self): return Expr("neg", (self,))
    def __pos__(self): return self

    # -- inspection -------------------------------------------------------------------------------
    def symbols(self) -> set[str]:
        """Names of all symbols in the expression."""
        if self.op == "sym":
            return {self.name}
        out: set[str] = set()
        for a in self.args:
            out |= a.symbols()
        return out

    def __str__(self) -> str:
        return to_string(self)

    def __repr__(self) -> str:
        return f"Expr({to_string(self)!r})"


def Symbol(name: str) -> Expr:
    """A named symbol: a variable or a parameter, decided when the law is built."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"symbol names must be identifiers, got {name!r}")
    return Expr("sym", name=name)


def symbols(names: str | Iterable[str]) -> tuple[Expr, ...]:
    """``symbols("N D")`` -> ``(N, D)``."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    return tuple(Symbol(n) for n in names)


def exp(x) -> Expr:
    return Expr("exp", (Expr.wrap(x),))


def log(x) -> Expr:
    return Expr("log", (Expr.wrap(x),))


def expm1(x) -> Expr:
    return Expr("expm1", (Expr.wrap(x),))


def log1p(x) -> Expr:
    return Expr("log1p", (Expr.wrap(x),))


def sqrt(x) -> Expr:
    return Expr("pow", (Expr.wrap(x), Expr.wrap(0.5)))


def lse(*terms) -> Expr:
    """log(sum(exp(t) for t in terms)), evaluated stably."""
    if not terms:
        raise ValueError("lse needs at least one term")
    return Expr("lse", tuple(Expr.wrap(t) for t in terms))


_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
_SYM = {"add": " + ", "sub": " - ", "mul": "*", "div": "/", "pow": "**"}


def to_string(e: Expr, parent: int = 0) -> str:
    if e.op == "const":
        v = e.value
        s = repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)
        return f"({s})" if v < 0 else s
    if e.op == "sym":
        return e.name
    if e.op in ("add", "sub", "mul", "div", "pow"):
        p = _PREC[e.op]
        right = p + 1 if e.op in ("sub", "div") else (p if e.op == "pow" else p)
        left = p + 1 if e.op == "pow" else p
        s = to_string(e.args[0], left) + _SYM[e.op] + to_string(e.args[1], right)
        return f"({s})" if p < parent else s
    if e.op == "neg":
        s = "-" + to_string(e.args[0], 3)
        return f"({s})" if 3 < parent else s
    return f"{e.op}(" + ", ".join(to_string(a) for a in e.args) + ")"


_FUNCS = {"exp": exp, "log": log, "expm1": expm1, "log1p": log1p, "sqrt": sqrt, "lse": lse, "logsumexp": lse}


def parse(text: str, names: Mapping[str, Expr] | None = None) -> Expr:
    """Parse a law written as a Python-style expression string.

    Allowed: numbers, names, ``+ - * / **`` (``^`` is accepted as ``**``), unary minus, and the functions
    exp, log, expm1, log1p, sqrt, lse (alias logsumexp). Every other construct is rejected with a
    ValueError naming it.
    """
    if not isinstance(text, str):
        raise TypeError(f"a law expression must be a string, got {type(text).__name__}")
    src = text.replace("^", "**").strip()
    if not src:
        raise ValueError("the law expression is empty")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"cannot parse law expression {_short(text)!r}: {err.msg}") from None
    except RecursionError:
        raise ValueError(f"law expression {_short(text)!r} is nested too deeply") from None
    names = dict(names or {})

    def conv(node: ast.AST) -> Expr:
        if isinstance(node, ast.Expression):
            return conv(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
            node.value, bool
        ):
            return Expr.wrap(node.value)
        if isinstance(node, ast.Name):
            if node.id in _FUNCS:
                raise ValueError(f"{node.id} is a function; call it, as in {node.id}(x)")
            return names.get(node.id) or Symbol(node.id)
        if isinstance(node, ast.BinOp):
            a, b = conv(node.left), conv(node.right)
            ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
            for cls, op in ops.items():
                if isinstance(node.op, cls):
                    return Expr(op, (a, b))
            raise ValueError(f"operator {type(node.op).__name__} is not allowed in a law expression")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -conv(node.operand)
            if isinstance(node.op, ast.UAdd):
                return conv(node.operand)
            raise ValueError(f"operator {type(node.op).__name__} is not allowed in a law expression")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
                fname = getattr(node.func, "id", ast.dump(node.func))
                raise ValueError(
                    f"unknown function {fname!r} in law expression; allowed: {', '.join(sorted(_FUNCS))}"
                )
            if node.keywords:
                raise ValueError(f"{node.func.id}() takes no keyword arguments")
            args = [conv(a) for a in node.args]
            if node.func.id not in ("lse", "logsumexp") and len(args) != 1:
                raise ValueError(f"{node.func.id}() takes exactly one argument")
            return _FUNCS[node.func.id](*args)
        raise ValueError(f"{type(node).__name__} is not allowed in a law expression ({_short(text)!r})")

    try:
        return conv(tree)
    except RecursionError:
        raise ValueError(f"law expression {_short(text)!r} is nested too deeply") from None


def _short(text: str, n: int = 120) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."

