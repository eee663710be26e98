"""The type stub of the compiled module (python/lawfit/_core.pyi) against the module itself.

stubtest (run by .ci/run) checks the names but cannot see the signatures of pybind11 functions, which carry
them only in their docstrings; these tests compare those: parameter names, order, which have defaults and
which are positional-only, and that the properties the stub declares read-only are read-only.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import lawfit
from lawfit import _core

STUB = pathlib.Path(lawfit.__file__).with_name("_core.pyi")  # beside the package's Python files


def _stub() -> ast.Module:
    return ast.parse(STUB.read_text())


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def _runtime_params(obj) -> list[tuple[str, bool, bool]]:
    """(name, has default, positional-only) per parameter, from pybind11's signature line; self dropped."""
    line = obj.__doc__.strip().splitlines()[0]
    inner = line[line.index("(") + 1:line.rindex(") ->")]
    out = []
    for p in _split_top(inner):
        name = p.split(":")[0].strip()
        if name == "self":
            continue
        # pybind11 names a parameter argN when it was bound without py::arg: it cannot be passed by keyword
        positional = name.startswith("arg") and name[3:].isdigit()
        out.append((name, "=" in p, positional))
    return out


def _stub_params(fn: ast.FunctionDef) -> list[tuple[str, bool, bool]]:
    a = fn.args
    pos = a.posonlyargs + a.args
    first_default = len(pos) - len(a.defaults)
    out = []
    for i, arg in enumerate(pos):
        if arg.arg == "self":
            continue
        out.append((arg.arg, i >= first_default, arg in a.posonlyargs))
    return out


def _stub_functions():
    return [n for n in _stub().body if isinstance(n, ast.FunctionDef)]


def _stub_classes():
    return [n for n in _stub().body if isinstance(n, ast.ClassDef) and hasattr(_core, n.name)]


def _same(stub, runtime) -> bool:
    """Same parameters: names (any name for a positional-only one), defaults and positional-only flags."""
    return len(stub) == len(runtime) and all(
        (sd, sp) == (rd, rp) and (sn == rn or rp) for (sn, sd, sp), (rn, rd, rp) in zip(stub, runtime))


@pytest.mark.parametrize("fn", _stub_functions(), ids=lambda f: f.name)
def test_function_signatures_match(fn):
    stub, runtime = _stub_params(fn), _runtime_params(getattr(_core, fn.name))
    assert _same(stub, runtime), (stub, runtime)


@pytest.mark.parametrize("cls", _stub_classes(), ids=lambda c: c.name)
def test_class_members_match(cls):
    runtime_cls = getattr(_core, cls.name)
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    props = {name for name, fn in methods.items()
             if any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)}
    assert _same(_stub_params(methods["__init__"]), _runtime_params(runtime_cls.__init__))
    runtime_props = {k for k, v in vars(runtime_cls).items() if isinstance(v, property)}
    assert props == runtime_props
    for name in props:
        assert vars(runtime_cls)[name].fset is None, f"{cls.name}.{name} is writable but the stub says read-only"
    for name in set(methods) - props - {"__init__"}:
        assert _same(_stub_params(methods[name]), _runtime_params(getattr(runtime_cls, name))), name


def test_tables_match_their_stub_types():
    solver = next(n for n in _stub().body if isinstance(n, ast.ClassDef) and n.name == "_SolverTable")
    fields = {s.target.id: s.annotation.id for s in solver.body if isinstance(s, ast.AnnAssign)}
    assert set(fields) == set(_core.SOLVER)
    for k, t in fields.items():
        assert type(_core.SOLVER[k]).__name__ == t, k
