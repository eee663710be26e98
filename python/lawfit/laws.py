"""Laws: an expression over data variables and named parameters, with each parameter's transform, bounds
and default starting values. Laws are data for the kernels (see :mod:`lawfit.compiler`): a new law, built
in or written by a user at run time, needs no compiled code.

Built-in laws are listed by :func:`available` and made by :func:`get`::

    lawfit.laws.get("chinchilla")
    lawfit.law("E + A / N**alpha + B / D**beta + G / (N*D)**gamma",
               variables=["N", "D"], log_params=["E", "A", "B", "G"])
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from . import _core, compiler
from .expr import Expr, parse
from .expr import expm1 as _expm1

__all__ = ["Param", "Law", "law", "get", "available", "chinchilla", "chinchilla_linear_e", "chinchilla_tied",
           "saturating", "power_law", "kaplan", "kaplan_learning_curve", "data_constrained", "kaplan_irreducible",
           "broken_power_law", "fine_grained_moe"]

_TRANSFORMS = ("identity", "log")


@dataclass(frozen=True)
class Param:
    """A law parameter.

    Parameters
    ----------
    name : natural-scale name, as reported (``A``).
    transform : ``"log"`` (the fit works on ``internal = log(value)``; the value stays positive) or
        ``"identity"``.
    lower, upper : default bounds on the natural scale.
    internal : name of the fitted quantity (default ``log_<name>`` for log, else ``name``).
    grid : default starting values on the internal scale (a grid over all parameters is their product).
    """

    name: str
    transform: str = "identity"
    lower: float = -math.inf
    upper: float = math.inf
    internal: str = ""
    grid: tuple = ()
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"parameter name must be a string, got {type(self.name).__name__}")
        if not self.name.isidentifier():
            raise ValueError(f"parameter name {self.name!r} is not an identifier")
        if self.transform not in _TRANSFORMS:
            raise ValueError(f"parameter {self.name}: transform must be one of {_TRANSFORMS}, got {self.transform!r}")
        if not isinstance(self.internal, str):
            raise TypeError(f"parameter {self.name}: internal name must be a string, "
                            f"got {type(self.internal).__name__}")
        if self.internal and not self.internal.isidentifier():
            raise ValueError(f"parameter {self.name}: internal name {self.internal!r} is not an identifier")
        if not self.internal:
            object.__setattr__(self, "internal", f"log_{self.name}" if self.transform == "log" else self.name)
        lo, hi = _real(self.lower, self.name, "lower bound"), _real(self.upper, self.name, "upper bound")
        if isinstance(self.grid, (str, bytes)):
            raise TypeError(f"parameter {self.name}: grid must be a sequence of numbers, got {self.grid!r}")
        grid = tuple(_real(g, self.name, "grid value") for g in self.grid)
        if not all(math.isfinite(g) for g in grid):
            raise ValueError(f"parameter {self.name}: grid values (starting points) must be finite, got {grid}")
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"parameter {self.name}: lower bound {lo} must not exceed upper bound {hi}")
        if self.transform == "log" and hi <= 0:
            raise ValueError(f"parameter {self.name}: a log-transformed parameter needs a positive upper bound")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "grid", grid)

    def to_internal(self, value):
        v = np.asarray(value, dtype=float)
        if self.transform == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(v)
        return v

    def to_natural(self, value):
        v = np.asarray(value, dtype=float)
        if self.transform == "log":
            with np.errstate(over="ignore"):  # a diverged fit (log value > 709) reports inf, without a warning
                return np.exp(v)
        return v

    def internal_bounds(self) -> tuple[float, float]:
        if self.transform == "log":
            lo = math.log(self.lower) if self.lower > 0 else -math.inf
            hi = math.log(self.upper) if math.isfinite(self.upper) else math.inf
            return lo, hi
        return self.lower, self.upper


def _real(v, name: str, what: str) -> float:
    """A real number given for parameter ``name`` as a float: strings, complex numbers, arrays and integers
    beyond float64 are errors (float() would take "1.5" and drop an imaginary part with only a warning)."""
    if isinstance(v, (str, bytes, complex, np.complexfloating)) or np.ndim(v) != 0:
        raise TypeError(f"parameter {name}: {what} must be a real number, got {v!r}")
    try:
        return float(v)
    except OverflowError:
        raise ValueError(f"parameter {name}: {what} {v} is beyond the float64 range") from None


class Law:
    """A scaling law: ``expression`` predicts the loss from data ``variables`` and ``params``.

    The fit compares log predictions with log observed losses, so the compiled program computes
    ``log(expression)`` (or the expression itself with ``log_space=True``).
    """

    def __init__(
        self,
        name: str,
        expression: Expr | str,
        variables: Sequence[str],
        params: Sequence[Param],
        *,
        formula: str = "",
        description: str = "",
        log_space: bool = False,
        derived: Mapping[str, tuple] | None = None,
        loss_params: Sequence[Param] = (),
        at_most: Sequence[tuple[str, str]] = (),
    ):
        self.name = str(name)
        params, loss_params = tuple(params), tuple(loss_params)
        if not isinstance(expression, (Expr, str)):
            raise TypeError(f"law {self.name!r}: the expression must be a string or a lawfit Expr, "
                            f"got {type(expression).__name__}")
        for p in params + loss_params:
            if not isinstance(p, Param):
                raise TypeError(f"law {self.name!r}: parameters must be lawfit.Param objects, got {p!r}")
        # Parameters of the loss (Epoch's Huber likelihood scale), appended after the law's; unused by the
        # expression, read by the kernel's loss.
        self.loss_params = tuple(loss_params)
        params = tuple(params) + self.loss_params
        if isinstance(variables, str):  # "N D" or "N, D", as for lawfit.symbols
            variables = variables.replace(",", " ").split()
        self.variables = tuple(variables)
        self.params = tuple(params)
        if not self.params:
            raise ValueError(f"law {self.name!r} has no parameters")
        names = [p.name for p in self.params] + [p.internal for p in self.params]
        for v in self.variables:
            if not isinstance(v, str) or not v.isidentifier():
                raise ValueError(f"law {self.name!r}: variable name {v!r} is not an identifier")
        dup = {n for n in self.param_names if self.param_names.count(n) > 1}
        if dup or len(set(self.variables)) != len(self.variables):
            raise ValueError(f"law {self.name!r}: duplicate names {sorted(dup) or list(self.variables)}")
        clash = set(self.variables) & set(names)
        if clash:
            raise ValueError(f"law {self.name!r}: {sorted(clash)} named both a variable and a parameter")
        # Pairs (a, b) of variables with a <= b required at every run (unique tokens U_D <= tokens seen D),
        # checked by data.prepare with an error naming the row.
        self.at_most = tuple((str(a), str(b)) for a, b in at_most)
        for a, b in self.at_most:
            if a not in self.variables or b not in self.variables:
                raise ValueError(f"law {self.name!r}: at_most pair ({a!r}, {b!r}) must name variables of the law")
        try:
            self._build(expression, formula, description, log_space, derived)
        except RecursionError:
            raise ValueError(f"law {self.name!r}: the expression is nested too deeply to compile") from None
        if len(self.params) > _core.MAX_PARAMS:
            raise ValueError(f"law {self.name!r} has {len(self.params)} parameters; the engine supports at most "
                             f"{_core.MAX_PARAMS}")
        self._core = None
        self.natural_params: frozenset = frozenset()  # parameters that natural_scale() took off the log scale

    def _build(self, expression, formula, description, log_space, derived) -> None:
        """Parse, check and compile the expression (the part of __init__ that recurses over it)."""
        self.expression = parse(expression) if isinstance(expression, str) else expression
        used = self.expression.symbols()
        unknown = used - set(self.variables) - set(self.param_names)
        if unknown:
            raise ValueError(
                f"law {self.name!r}: unknown names {sorted(unknown)} in the expression; "
                f"variables are {list(self.variables)}, parameters {list(self.param_names)}"
            )
        unused = set(self.param_names) - used - {p.name for p in self.loss_params}
        if unused:
            raise ValueError(f"law {self.name!r}: parameters {sorted(unused)} do not appear in the expression")
        # Variables computed from other variables when the data has no such column:
        # name -> (input variable names, function of their arrays).
        self.derived = dict(derived or {})
        for v, spec in self.derived.items():
            if v not in self.variables or not all(i in self.variables and i != v for i in spec[0]):
                raise ValueError(f"law {self.name!r}: derived variable {v!r} must be a variable computed from "
                                 f"other variables")
        self.formula = formula or str(self.expression)
        self.description = description
        self.log_space = bool(log_space)
        info = {
            p.name: compiler.ParamInfo(
                index=i, log=p.transform == "log", nonneg=p.transform == "log" or p.lower >= 0,
                positive=p.transform == "log" or p.lower > 0,
            )
            for i, p in enumerate(self.params)
        }
        self.program = compiler.compile_law(self.expression, self.variables, info, log_space=self.log_space)

    def natural_scale(self) -> "Law":
        """This law with every log-transformed parameter fitted on its natural scale (``identity``, bounded
        below by 0, its default grid mapped through exp): for Chinchilla, E, A and B themselves instead of
        their logs. The parameters keep their names, so results, bounds and allocation read the same. User
        laws choose per parameter with ``log_params`` (:func:`lawfit.law`)."""
        if not any(p.transform == "log" for p in self.params):
            return self
        params = []
        for p in self.params[:len(self.params) - len(self.loss_params)]:
            if p.transform == "log":
                p = Param(p.name, "identity", lower=max(p.lower, 0.0), upper=p.upper, internal=p.name,
                          grid=tuple(float(np.exp(g)) for g in p.grid), description=p.description)
            params.append(p)
        law = Law(self.name, self.expression, self.variables, params, formula=self.formula,
                  description=self.description + " (coefficients on the natural scale)",
                  log_space=self.log_space, derived=self.derived, loss_params=self.loss_params,
                  at_most=self.at_most)
        law.natural_params = frozenset(p.name for p in self.params if p.transform == "log")
        return law

    def with_sigma(self) -> "Law":
        """This law plus ``sigma`` (fitted as ``log_sigma``), the scale of Epoch AI's Huber likelihood
        (loss="huber_likelihood"). Default start: sigma = 1, as Epoch's notebook."""
        if self.loss_params:
            return self
        cached = getattr(self, "_with_sigma", None)
        if cached is None:
            sigma = Param("sigma", "log", internal="log_sigma", grid=(0.0,),
                          description="scale of the Huber likelihood of the log residuals")
            cached = Law(self.name, self.expression, self.variables, self.params, formula=self.formula,
                         description=self.description, log_space=self.log_space, derived=self.derived,
                         loss_params=(sigma,), at_most=self.at_most)
            cached.natural_params = self.natural_params
            self._with_sigma = cached
        return cached

    # -- names and scales ----------------------------------------------------------------------
    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def internal_names(self) -> list[str]:
        return [p.internal for p in self.params]

    @property
    def n_params(self) -> int:
        return len(self.params)

    def index(self, name: str) -> int:
        """Position of a parameter given its natural or internal name."""
        for i, p in enumerate(self.params):
            if name in (p.name, p.internal):
                return i
        raise ValueError(
            f"law {self.name!r} has no parameter {name!r}; parameters: {self.param_names} "
            f"(fitted as {self.internal_names})"
        )

    def value_to_internal(self, name: str, value) -> np.ndarray:
        """A value given under ``name`` (natural or internal) on the internal scale."""
        p = self.params[self.index(name)]
        return np.asarray(value, dtype=float) if name == p.internal else p.to_internal(value)

    def to_internal(self, values: Mapping[str, float]) -> np.ndarray:
        """Internal parameter vector from a mapping of every parameter (natural or internal names)."""
        out = np.full(self.n_params, np.nan)
        given: dict[int, str] = {}
        for k, v in values.items():
            i = self.index(k)
            if i in given:
                raise ValueError(f"parameter {self.params[i].name!r} of law {self.name!r} is given twice "
                                 f"(as {given[i]!r} and {k!r})")
            given[i] = k
            try:
                out[i] = self.value_to_internal(k, v)
            except (TypeError, ValueError):
                raise TypeError(f"the value of parameter {k!r} must be a number, got {v!r}") from None
            if not np.isfinite(out[i]):
                raise ValueError(f"value {float(v):g} of parameter {k!r} is not valid on its scale"
                                 + (" (log-transformed: it must be > 0)" if k == self.params[i].name
                                    and self.params[i].transform == "log" else " (it must be finite)"))
        missing = [p.name for i, p in enumerate(self.params) if i not in given]
        if missing:
            raise ValueError(f"values missing for parameters {missing} of law {self.name!r}")
        return out

    def to_natural(self, internal) -> dict[str, float]:
        x = np.asarray(internal, dtype=float)
        return {p.name: float(p.to_natural(x[..., i])) for i, p in enumerate(self.params)}

    def default_grid(self) -> np.ndarray:
        """Product of the parameters' default grids (internal scale), one start per row."""
        grids = [p.grid or (float(np.clip(0.0, *p.internal_bounds())),) for p in self.params]
        return np.array(list(itertools.product(*grids)), dtype=float)

    # -- compiled form -------------------------------------------------------------------------
    def __getstate__(self):  # picklable (for executors and worker processes): the core object is rebuilt
        state = self.__dict__.copy()
        state["_core"] = None
        return state

    def core_program(self):
        """The validated program object of the compiled extension (from the backends' one cache of compiled
        laws, :mod:`lawfit.backends.compiled`)."""
        if self._core is None:
            from .backends.compiled import compiled

            self._core = compiled(self.program).core
        return self._core

    def predict(self, data, params) -> np.ndarray:
        """Predicted loss (natural scale) at the points of ``data`` for ``params`` (a mapping)."""
        from .data import prepare

        ds = prepare(self, data, target=None)
        theta = self.to_internal(params)
        out = compiler.program_predict(self.program, ds.features, theta)
        return np.exp(out)

    def __repr__(self) -> str:
        ps = ", ".join(f"{p.name}" + (" (log)" if p.transform == "log" else "") for p in self.params)
        return f"Law({self.name!r}: L({', '.join(self.variables)}) = {self.formula}; params {ps})"

    def describe(self) -> str:
        lines = [f"{self.name}: L({', '.join(self.variables)}) = {self.formula}"]
        if self.description:
            lines.append(self.description)
        for p in self.params:
            lo, hi = p.lower, p.upper
            lines.append(f"  {p.name:<8} fitted as {p.internal:<10} bounds [{lo:g}, {hi:g}]")
        lines.append("compiled program (log L):")
        lines += ["  " + t for t in self.program.text]
        try:
            core = self.core_program()
        except ImportError:  # the compiled extension is missing: describe the law without its kernel
            return "\n".join(lines)
        why = f" ({core.affine_why_not})" if core.affine_why_not else ""
        lines.append(f"CPU kernel: {core.kernel}{why}")
        return "\n".join(lines)


def law(
    expression: Expr | str,
    variables: Sequence[str],
    params: Sequence[str | Param] | None = None,
    *,
    log_params: Iterable[str] = (),
    bounds: Mapping[str, tuple[float, float]] | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    name: str = "custom",
    log_space: bool = False,
) -> Law:
    """Build a law from an expression string (or :class:`Expr`).

    ``params`` defaults to every name in the expression that is not a variable, in order of appearance
    in the text. Names in ``log_params`` are fitted on the log scale (and stay positive). ``bounds`` and
    ``grid`` (internal scale) set defaults per parameter.
    """
    if not isinstance(expression, (Expr, str)):
        raise TypeError(f"the law expression must be a string or a lawfit Expr, got {type(expression).__name__}")
    try:
        expr = parse(expression) if isinstance(expression, str) else expression
        text = expression if isinstance(expression, str) else str(expr)
        symbols = expr.symbols()
    except RecursionError:
        raise ValueError("the law expression is nested too deeply to compile") from None
    if isinstance(variables, str):  # "N D" or "N, D", as for lawfit.symbols
        variables = variables.replace(",", " ").split()
    log_params = set(log_params)
    bounds = dict(bounds or {})
    grid = dict(grid or {})
    if params is None:
        seen: list[str] = []
        import re

        for tok in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", text):
            if tok in symbols and tok not in variables and tok not in seen:
                seen.append(tok)
        params = seen
    plist = []
    for p in params:
        if isinstance(p, Param):
            plist.append(p)
            continue
        if not isinstance(p, str):
            raise TypeError(f"params must be names (strings) or lawfit.Param objects, got {p!r}")
        lo, hi = bounds.pop(p, (-math.inf, math.inf))
        plist.append(Param(p, "log" if p in log_params else "identity", lo, hi, grid=tuple(grid.pop(p, ()))))
    names = {p.name for p in plist}
    extra = (set(log_params) | set(bounds) | set(grid)) - names
    if extra:
        raise ValueError(f"options given for unknown parameters {sorted(extra)}; parameters are {sorted(names)}")
    return Law(name, expr, variables, plist, log_space=log_space)


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------
_EXP_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
_E_GRID = (-1.0, -0.5, 0.0, 0.5, 1.0)
_AB_GRID = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)


def chinchilla() -> Law:
    """Chinchilla (Hoffmann et al. 2022, Approach 3): ``L(N, D) = E + A / N**alpha + B / D**beta``.

    Fitted as Epoch AI did: ``a, b, e = log A, log B, log E`` with ``alpha``, ``beta`` linear, so
    ``log L = LSE(a - alpha log N, b - beta log D, e)``. No bounds by default. Default grid: Hoffmann's
    4500 points (alpha, beta in 0..2 by 0.5; e in -1..1 by 0.5; a, b in 0..25 by 5).
    """
    return Law(
        "chinchilla",
        "E + A / N**alpha + B / D**beta",
        ("N", "D"),
        (
            Param("E", "log", internal="e", grid=_E_GRID, description="irreducible loss"),
            Param("A", "log", internal="a", grid=_AB_GRID),
            Param("B", "log", internal="b", grid=_AB_GRID),
            Param("alpha", grid=_EXP_GRID, description="parameter-count exponent"),
            Param("beta", grid=_EXP_GRID, description="data exponent"),
        ),
        formula="E + A / N^alpha + B / D^beta",
        description="Hoffmann et al. (2022) parametric loss; N parameters, D training tokens.",
    )


def chinchilla_linear_e() -> Law:
    """Chinchilla with ``E`` fitted linearly and bounded below by 0 (as OLMo does); A, B on the log scale.

    ``log L = LSE(a - alpha log N, b - beta log D; linear E)`` -- still max-shifted, and finite at E = 0.
    Bounds: E >= 0, the rest unbounded. Default grid: E in {0.5, 1, 1.5, 2, 2.5} with Hoffmann's values for
    a, b, alpha, beta (4500 points).
    """
    return Law(
        "chinchilla_linear_e",
        "E + A / N**alpha + B / D**beta",
        ("N", "D"),
        (
            Param("E", "identity", lower=0.0, grid=(0.5, 1.0, 1.5, 2.0, 2.5)),
            Param("A", "log", internal="a", grid=_AB_GRID),
            Param("B", "log", internal="b", grid=_AB_GRID),
            Param("alpha", grid=_EXP_GRID),
            Param("beta", grid=_EXP_GRID),
        ),
        formula="E + A / N^alpha + B / D^beta  (E >= 0, linear)",
        description="Chinchilla law with a linear, non-negative irreducible loss (OLMo-style).",
    )


def saturating(variable: str = "C") -> Law:
    """Saturating power law in one variable: ``L(x) = E + A / x**alpha`` (for L(C), L(N) or L(D)).

    ``E`` and ``A`` on the log scale (``e``, ``a``), ``alpha`` linear; no bounds. Default grid: e in -1..1 by
    0.5, a in 0..25 by 5, alpha in {0.05, 0.1, 0.2, 0.3, 0.5, 1} (180 points).
    """
    return Law(
        f"saturating_{variable}",
        f"E + A / {variable}**alpha",
        (variable,),
        (
            Param("E", "log", internal="e", grid=_E_GRID),
            Param("A", "log", internal="a", grid=_AB_GRID),
            Param("alpha", grid=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0)),
        ),
        formula=f"E + A / {variable}^alpha",
        description=f"Saturating power law of the loss in {variable}.",
    )


def kaplan() -> Law:
    """Kaplan et al. (2020): ``L(N, D) = ((N_c / N)**(alpha_N / alpha_D) + D_c / D)**alpha_D``.

    ``N_c``, ``D_c`` on the log scale (``log_Nc``, ``log_Dc``); the exponents linear, bounded below by 1e-6.
    Kaplan's values: alpha_N 0.076, alpha_D 0.095, N_c 8.8e13, D_c 5.4e13. Default grid: log_Nc, log_Dc in
    {25, 30, 35, 40}, alpha_N, alpha_D in {0.05, 0.1, 0.3} (144 points).
    """
    return Law(
        "kaplan",
        "((Nc / N)**(alpha_N / alpha_D) + Dc / D)**alpha_D",
        ("N", "D"),
        (
            Param("Nc", "log", internal="log_Nc", grid=(25.0, 30.0, 35.0, 40.0)),
            Param("Dc", "log", internal="log_Dc", grid=(25.0, 30.0, 35.0, 40.0)),
            Param("alpha_N", lower=1e-6, grid=(0.05, 0.1, 0.3)),
            Param("alpha_D", lower=1e-6, grid=(0.05, 0.1, 0.3)),
        ),
        formula="((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D",
        description="Kaplan et al. (2020) joint law of parameters and data.",
    )


def chinchilla_tied() -> Law:
    """Chinchilla with one exponent for parameters and data: ``L(N, D) = E + A / N**alpha + B / D**alpha``.

    ``e, a, b = log E, log A, log B``; ``alpha`` linear, unbounded. Default grid: Hoffmann's values for
    e, a, b and alpha (900 points). (``lawfit.fit("chinchilla", ..., tie=[("alpha", "beta")])`` fits the
    same model.)
    """
    return Law(
        "chinchilla_tied",
        "E + A / N**alpha + B / D**alpha",
        ("N", "D"),
        (
            Param("E", "log", internal="e", grid=_E_GRID),
            Param("A", "log", internal="a", grid=_AB_GRID),
            Param("B", "log", internal="b", grid=_AB_GRID),
            Param("alpha", grid=_EXP_GRID),
        ),
        formula="E + A / N^alpha + B / D^alpha",
        description="Chinchilla law with tied exponents (alpha = beta).",
    )


def power_law(variable: str = "C") -> Law:
    """Pure power law in one variable: ``L(x) = A / x**alpha``, fitted as ``log L = a - alpha log x``.

    ``a = log A``; ``alpha`` linear, unbounded. Default grid: a in 0..25 by 5, alpha in {0.05, 0.1, 0.2, 0.3,
    0.5, 1}.
    """
    return Law(
        f"power_law_{variable}",
        f"A / {variable}**alpha",
        (variable,),
        (
            Param("A", "log", internal="a", grid=_AB_GRID),
            Param("alpha", grid=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0)),
        ),
        formula=f"A / {variable}^alpha",
        description=f"Pure power law of the loss in {variable} (no irreducible term).",
    )


def kaplan_learning_curve() -> Law:
    """Kaplan et al. (2020), loss against parameters and training steps:
    ``L(N, S) = (N_c / N)**alpha_N + (S_c / S)**alpha_S``.

    ``N_c``, ``S_c`` on the log scale (``log_Nc``, ``log_Sc``); exponents linear, bounded below by 1e-6.
    Kaplan's values: alpha_N 0.076, alpha_S 0.76, N_c 6.4e13, S_c 2.1e3. Default grid: 36 points.
    """
    return Law(
        "kaplan_learning_curve",
        "(Nc / N)**alpha_N + (Sc / S)**alpha_S",
        ("N", "S"),
        (
            Param("Nc", "log", internal="log_Nc", grid=(25.0, 30.0, 35.0)),
            Param("Sc", "log", internal="log_Sc", grid=(5.0, 8.0, 11.0)),
            Param("alpha_N", lower=1e-6, grid=(0.05, 0.1)),
            Param("alpha_S", lower=1e-6, grid=(0.5, 1.0)),
        ),
        formula="(N_c / N)^alpha_N + (S_c / S)^alpha_S",
        description="Kaplan et al. (2020) learning-curve law; S training steps.",
    )


class _UniqueParamsPerToken:
    """U_N = min(N, U_D / tokens_per_param) (a plain class, so the law pickles for worker processes)."""

    def __init__(self, ratio: float):
        self.ratio = float(ratio)

    def __call__(self, N, U_D):
        return np.minimum(N, U_D / self.ratio)


class _ComputeOptimalParams:
    """U_N = min(N, N_opt(U_D)): N_opt(U_D) is the compute-optimal N whose optimal D is U_D under the Chinchilla
    law E + A/N^alpha + B/D^beta. Along C = 6 N D the optimum is N = G (C/6)^a, D = (C/6)^b / G, with
    G = (alpha A / (beta B))^(1 / (alpha + beta)), a = beta / (alpha + beta), b = alpha / (alpha + beta); so
    C/6 = (G U_D)^(1/b) and N_opt(U_D) = G (G U_D)^(beta / alpha), computed in logarithms."""

    def __init__(self, A: float, B: float, alpha: float, beta: float):
        self.log_g = (math.log(alpha * A) - math.log(beta * B)) / (alpha + beta)
        self.ratio = beta / alpha

    def n_opt(self, U_D):
        with np.errstate(over="ignore"):
            return np.exp(self.log_g + self.ratio * (np.log(U_D) + self.log_g))

    def __call__(self, N, U_D):
        return np.minimum(N, self.n_opt(U_D))


_BASE = ("E", "A", "B", "alpha", "beta")


def _base_values(base) -> dict[str, float]:
    """E, A, B, alpha, beta of a base Chinchilla fit (a FitResult of a law of that form) or a mapping."""
    from .multistart import FitResult

    if isinstance(base, FitResult):
        from .allocation import _chinchilla_roles

        roles = _chinchilla_roles(base.law)
        if roles is None:
            raise ValueError(f"base: law {base.law.name!r} is not of the Chinchilla form E + A / N^alpha + "
                             f"B / D^beta; fit 'chinchilla' on the single-epoch runs")
        if not base.success:
            raise ValueError(f"base: the Chinchilla fit did not converge ({base.status.name}: {base.message})")
        values = {r: base.params[n] for r, n in roles.items()}
    elif isinstance(base, Mapping):
        unknown = sorted(set(map(str, base)) - set(_BASE))
        missing = [k for k in _BASE if k not in base]
        if unknown or missing:
            raise ValueError(f"base must give exactly {list(_BASE)}" + (f"; missing {missing}" if missing else "")
                             + (f"; unknown {unknown}" if unknown else ""))
        values = {}
        for k in _BASE:
            v = base[k]
            if isinstance(v, (bool, np.bool_)):
                raise TypeError(f"base: {k} must be a real number, got {v!r}")
            values[k] = _real(v, k, "base value")
    else:
        raise TypeError(f"base must be a lawfit.FitResult of a Chinchilla fit or a mapping of "
                        f"{', '.join(_BASE)}, got {type(base).__name__}")
    for k, v in values.items():
        if not math.isfinite(v) or v < 0 or (v == 0 and k != "E"):
            raise ValueError(f"base: {k} = {v!r} must be finite and " + (">= 0" if k == "E" else "> 0"))
    return values


def data_constrained(tokens_per_param: float | None = None, *, base=None) -> Law:
    """Muennighoff et al. (2023), data-constrained scaling: ``L = E + A / N'**alpha + B / D'**beta`` with

    ``D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*))``, ``R_D = D / U_D - 1`` (repeated epochs of the U_D unique
    tokens count less and less), and likewise ``N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*))``,
    ``R_N = N / U_N - 1``, where U_N is the number of parameters worth having for U_D unique tokens.

    The paper's procedure, ``data_constrained(base=fit)``: fit the Chinchilla law on single-epoch runs
    (``D == U_D``), freeze it, and fit only ``R_D*`` and ``R_N*`` (``RD``, ``RN``, on the log scale:
    ``log_RD``, ``log_RN``) on all runs. ``base`` is that fit (a :class:`~lawfit.FitResult` of a law of the
    Chinchilla form) or a mapping of E, A, B, alpha, beta. U_N = min(N, N_opt(U_D)), with N_opt(U_D) the
    compute-optimal N for U_D tokens under the base law (G (G U_D)^(beta/alpha), G as in
    :mod:`lawfit.allocation`), unless the data has a ``U_N`` column. Default grid: 25 points. With the paper's
    fit (alpha = beta = 0.3526596, A = e^6.255414, B = e^7.3049974, E = e^0.6254804, R_N* = 5.309743,
    R_D* = 15.387756) it predicts 2.2256441 at N = 6.34e9, D = 242e9, U_D = 25e9.

    Without ``base``: all seven parameters are fitted jointly (``e, a, b = log E, log A, log B``; alpha, beta
    linear; default grid 128 points) and U_N = min(N, U_D / tokens_per_param) (default 20) unless the data has
    a ``U_N`` column: a fixed ratio, which the compute-optimal ratio equals only for one set of base parameters.

    Inputs: N, D, U_D (and optionally U_N); every run needs U_D <= D (and U_N <= N), else a ValueError naming
    the row.
    """
    order = (("U_D", "D"), ("U_N", "N"))
    if base is not None:
        if tokens_per_param is not None:
            raise ValueError("data_constrained: give tokens_per_param or base, not both (with a base law, U_N is "
                             "the compute-optimal N for U_D tokens)")
        v = _base_values(base)
        N, D, U_D, U_N, RD, RN = (Expr("sym", name=n) for n in ("N", "D", "U_D", "U_N", "RD", "RN"))
        E, A, B, alpha, beta = (Expr.wrap(v[k]) for k in _BASE)
        n_eff = U_N * (1 + RN * (-_expm1(-(N / U_N - 1) / RN)))
        d_eff = U_D * (1 + RD * (-_expm1(-(D / U_D - 1) / RD)))
        values = ", ".join(f"{k} = {v[k]:.7g}" for k in _BASE)
        return Law(
            "data_constrained",
            E + A / n_eff ** alpha + B / d_eff ** beta,
            ("N", "D", "U_D", "U_N"),
            (
                Param("RD", "log", internal="log_RD", grid=tuple(math.log(x) for x in (1.0, 3.0, 10.0, 30.0, 100.0)),
                      description="R_D*: repetitions of the data at which returns have decayed by 1/e"),
                Param("RN", "log", internal="log_RN", grid=tuple(math.log(x) for x in (0.3, 1.0, 3.0, 10.0, 30.0)),
                      description="R_N*: the same for excess parameters"),
            ),
            formula=f"E + A / N'^alpha + B / D'^beta with the base law frozen ({values}), "
                    "D' = U_D + U_D R_D* (1 - exp(-(D/U_D - 1) / R_D*)), N' likewise with U_N = min(N, N_opt(U_D))",
            description="Muennighoff et al. (2023) data-constrained law: R_D*, R_N* on a frozen Chinchilla fit; "
                        "U_D unique tokens.",
            derived={"U_N": (("N", "U_D"), _ComputeOptimalParams(v["A"], v["B"], v["alpha"], v["beta"]))},
            at_most=order,
        )
    if tokens_per_param is None:
        tokens_per_param = 20.0
    if isinstance(tokens_per_param, (bool, np.bool_)) or not isinstance(tokens_per_param, (int, float, np.number)) \
            or not (0 < tokens_per_param < math.inf):
        raise ValueError(f"tokens_per_param must be a positive number, got {tokens_per_param!r}")
    ratio = float(tokens_per_param)
    return Law(
        "data_constrained",
        "E + A / (U_N * (1 + RN * (-expm1(-(N / U_N - 1) / RN))))**alpha"
        " + B / (U_D * (1 + RD * (-expm1(-(D / U_D - 1) / RD))))**beta",
        ("N", "D", "U_D", "U_N"),
        (
            Param("E", "log", internal="e", grid=(0.0, 0.5)),
            Param("A", "log", internal="a", grid=(5.0, 10.0)),
            Param("B", "log", internal="b", grid=(5.0, 10.0)),
            Param("alpha", grid=(0.3, 0.5)),
            Param("beta", grid=(0.3, 0.5)),
            Param("RD", "log", internal="log_RD", grid=(math.log(5.0), math.log(20.0)),
                  description="R_D*: repetitions of the data at which returns have decayed by 1/e"),
            Param("RN", "log", internal="log_RN", grid=(math.log(2.0), math.log(10.0)),
                  description="R_N*: the same for excess parameters"),
        ),
        formula="E + A / N'^alpha + B / D'^beta, D' = U_D + U_D R_D* (1 - exp(-(D/U_D - 1) / R_D*)), "
                "N' likewise with U_N",
        description="Muennighoff et al. (2023) data-constrained law; U_D unique tokens.",
        derived={"U_N": (("N", "U_D"), _UniqueParamsPerToken(ratio))},
        at_most=order,
    )


def kaplan_irreducible() -> Law:
    """Kaplan et al.'s coupled law of parameters and data with an irreducible loss:
    ``L(N, D) = E + ((N_c / N)**(alpha_N / alpha_D) + D_c / D)**alpha_D``.

    The joint form is eq. (1.5) of Kaplan et al. (2020), "Scaling Laws for Neural Language Models",
    arXiv:2001.08361; the irreducible term ``E`` is the one Henighan et al. (2020), "Scaling Laws for
    Autoregressive Generative Modeling", arXiv:2010.14701, add to Kaplan-style power laws (in one variable
    there; here in the joint form). Unlike Chinchilla's sum, N and D interact: the gain from more data
    depends on N. ``E``, ``N_c``, ``D_c`` on the log scale (``e``,
    ``log_Nc``, ``log_Dc``); the exponents linear, bounded below by 1e-6. Default grid: e in {0, 0.5, 1},
    log_Nc, log_Dc in {20, 25, 30, 35}, alpha_N, alpha_D in {0.1, 0.3, 0.6} (432 points).
    """
    return Law(
        "kaplan_irreducible",
        "E + ((Nc / N)**(alpha_N / alpha_D) + Dc / D)**alpha_D",
        ("N", "D"),
        (
            Param("E", "log", internal="e", grid=(0.0, 0.5, 1.0), description="irreducible loss"),
            Param("Nc", "log", internal="log_Nc", grid=(20.0, 25.0, 30.0, 35.0)),
            Param("Dc", "log", internal="log_Dc", grid=(20.0, 25.0, 30.0, 35.0)),
            Param("alpha_N", lower=1e-6, grid=(0.1, 0.3, 0.6)),
            Param("alpha_D", lower=1e-6, grid=(0.1, 0.3, 0.6)),
        ),
        formula="E + ((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D",
        description="Kaplan et al. (2020, arXiv:2001.08361) coupled law of parameters and data, eq. (1.5), "
                    "with an irreducible loss E (Henighan et al. 2020, arXiv:2010.14701).",
    )


# Decades (log10) of the default starts for the break of broken_power_law, per variable.
_BREAK_DECADES = {"C": (18.0, 20.0, 22.0), "N": (7.5, 8.5, 9.5), "D": (9.0, 10.0, 11.0)}


def broken_power_law(variable: str = "C") -> Law:
    """Broken neural scaling law with one break (Caballero et al. 2022, "Broken Neural Scaling Laws",
    arXiv:2210.14891, eq. 1 with n = 1): ``L(x) = E + A x**(-c0) (1 + (x / d1)**(1 / f1))**(-c1 f1)``.

    The paper's a, b are ``E``, ``A``. Below the break ``d1`` the loss falls with slope ``c0`` on a log-log
    plot of L - E, above it with ``c0 + c1``; ``f1`` sets how sharp the break is. ``E``, ``A``, ``d1``, ``f1`` on
    the log scale (``e``, ``a``, ``log_d1``, ``log_f1``); ``c0``, ``c1`` linear and unbounded (``c1 < 0``
    flattens the curve after the break). Default grid: e in {0, 0.5, 1}, a in {0, 5, 10, 15}, c0 in
    {0.05, 0.3}, c1 in {-0.1, 0.2}, d1 at three decades typical of the variable (C: 1e18, 1e20, 1e22), f1 in
    {0.3, 1} (288 points).
    """
    decades = _BREAK_DECADES.get(variable, (2.0, 4.0, 6.0))
    return Law(
        f"broken_power_law_{variable}",
        f"E + A / {variable}**c0 / (1 + ({variable} / d1)**(1 / f1))**(c1 * f1)",
        (variable,),
        (
            Param("E", "log", internal="e", grid=(0.0, 0.5, 1.0), description="irreducible loss (a)"),
            Param("A", "log", internal="a", grid=(0.0, 5.0, 10.0, 15.0), description="scale (b)"),
            Param("c0", grid=(0.05, 0.3), description="slope before the break"),
            Param("c1", grid=(-0.1, 0.2), description="change of slope at the break"),
            Param("d1", "log", internal="log_d1", grid=tuple(k * math.log(10.0) for k in decades),
                  description="location of the break"),
            Param("f1", "log", internal="log_f1", grid=(math.log(0.3), 0.0), description="sharpness of the break"),
        ),
        formula=f"E + A {variable}^(-c0) (1 + ({variable} / d1)^(1 / f1))^(-c1 f1)",
        description=f"Broken neural scaling law with one break (Caballero et al. 2022, arXiv:2210.14891) in "
                    f"{variable}.",
    )


def fine_grained_moe() -> Law:
    """Krajewski et al. (2024), "Scaling Laws for Fine-Grained Mixture of Experts", arXiv:2402.07871:
    ``L(N, D, G) = E + (A_G / G**gamma + A) / N**alpha + B / D**beta``, G the granularity of the experts.

    The paper's c, a, b, g are ``E``, ``A``, ``B``, ``A_G``. The interaction term ``A_G / (G^gamma N^alpha)`` makes the
    benefit of granularity shrink with model size. ``E``, ``A``, ``B``, ``A_G`` on the log scale (``e``, ``a``,
    ``b``, ``log_A_G``); exponents linear, unbounded. Default grid: e in {-0.5, 0.5}, a, b in {0, 5, 10},
    alpha, beta in {0.1, 0.4}, log_A_G in {0, 2.5}, gamma in {0.3, 1} (288 points).
    """
    return Law(
        "fine_grained_moe",
        "E + (A_G / G**gamma + A) / N**alpha + B / D**beta",
        ("N", "D", "G"),
        (
            Param("E", "log", internal="e", grid=(-0.5, 0.5), description="irreducible loss (c)"),
            Param("A", "log", internal="a", grid=(0.0, 5.0, 10.0)),
            Param("B", "log", internal="b", grid=(0.0, 5.0, 10.0)),
            Param("alpha", grid=(0.1, 0.4), description="parameter-count exponent"),
            Param("beta", grid=(0.1, 0.4), description="data exponent"),
            Param("A_G", "log", grid=(0.0, 2.5), description="granularity coefficient (g)"),
            Param("gamma", grid=(0.3, 1.0), description="granularity exponent"),
        ),
        formula="E + (A_G / G^gamma + A) / N^alpha + B / D^beta",
        description="Krajewski et al. (2024, arXiv:2402.07871) fine-grained mixture-of-experts law; G granularity.",
    )


_REGISTRY: dict[str, Callable[[], Law]] = {
    "chinchilla": chinchilla,
    "chinchilla_linear_e": chinchilla_linear_e,
    "kaplan": kaplan,
    "saturating": saturating,
    "saturating_C": lambda: saturating("C"),
    "saturating_N": lambda: saturating("N"),
    "saturating_D": lambda: saturating("D"),
    "chinchilla_tied": chinchilla_tied,
    "power_law": power_law,
    "power_law_C": lambda: power_law("C"),
    "power_law_N": lambda: power_law("N"),
    "power_law_D": lambda: power_law("D"),
    "kaplan_learning_curve": kaplan_learning_curve,
    "data_constrained": data_constrained,
    "muennighoff": data_constrained,
    "kaplan_irreducible": kaplan_irreducible,
    "broken_power_law": broken_power_law,
    "broken_power_law_C": lambda: broken_power_law("C"),
    "broken_power_law_N": lambda: broken_power_law("N"),
    "broken_power_law_D": lambda: broken_power_law("D"),
    "fine_grained_moe": fine_grained_moe,
}


def available() -> list[str]:
    """Names of the built-in laws."""
    return sorted(_REGISTRY)


SCALES = ("log", "natural")


def get(name: str | Law, scale: str = "log") -> Law:
    """A built-in law by name (a :class:`Law` is returned unchanged when ``scale`` is "log").

    ``scale="log"`` fits positive coefficients as logs (Chinchilla's ``e, a, b``, Epoch AI's choice);
    ``scale="natural"`` fits them on the natural scale with the bound >= 0 (:meth:`Law.natural_scale`).
    """
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if isinstance(name, Law):
        return name.natural_scale() if scale == "natural" else name
    if not isinstance(name, str):
        raise TypeError(f"law must be a Law or the name of a built-in law, got {type(name).__name__}")
    try:
        law = _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown law {name!r}; built-in laws: {', '.join(available())}") from None
    return law.natural_scale() if scale == "natural" else law
