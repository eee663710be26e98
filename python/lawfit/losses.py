"""The objective's conventions in one place: residual scale, loss, reduction.

lawfit minimises ``F(theta) = sum_i w_i rho(r_i)`` (``reduction="sum"``) or that sum divided by ``sum_i w_i``
(``reduction="mean"``), where the residual is

- ``residual="log"``: ``r_i = log L_hat_i - log L_i`` (Hoffmann et al., Epoch AI; the default), or
- ``residual="linear"``: ``r_i = L_hat_i - L_i`` (the raw loss).

Either way ``r > 0`` is an *over-prediction* (the law predicts a higher loss than observed). The losses, one
row each in :data:`REGISTRY`:

==================== ====================================================== ===========================
loss                 rho(r)                                                 parameter (default)
==================== ====================================================== ===========================
``huber``            r^2/2 for abs(r) <= delta, else delta (abs(r) - delta/2)  ``delta`` (1e-3)
``asymmetric_huber`` huber, times ``asymmetry`` where r > 0                 ``delta``, ``asymmetry`` (2)
``squared``          r^2/2                                                  none
``absolute``         abs(r)                                                 none
``quantile``         (1 - q) r for r > 0, -q r for r < 0 (pinball)          ``q`` (0.5)
``cauchy``           c^2/2 log(1 + (r/c)^2)                                 ``c`` (0.01)
``huber_likelihood`` huber(r/sigma) + log sigma + log Z(delta), sigma fitted ``delta`` (1e-3)
==================== ====================================================== ===========================

The factor 1/2 of ``squared`` and ``huber`` is scipy's convention (``scipy.special.huber``), so
``squared`` is half the sum of squared residuals and ``huber`` tends to ``squared`` as delta grows.
``quantile`` makes L_hat estimate the q-quantile of L: with ``q = 1/11`` it is the absolute error with
over-predictions weighted 10 times, divided by 11.

``absolute`` and ``quantile`` are not differentiable where a residual is zero, and their optimum is a point
where several residuals are exactly zero. lawfit reaches it exactly (:mod:`lawfit.nonsmooth`): smooth Huber
fits with a shrinking threshold lead to the right set of zero residuals, then Newton's method on those
residuals lands on the vertex and its optimality conditions are checked; the reported objective is the exact one.

A new loss is one row here, one struct in ``cpp/include/lawfit/loss.hpp`` (its value and derivatives for the
CPU), and one entry of the CUDA emitter's table below (``cuda``), plus its tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np

__all__ = ["Loss", "LossDef", "REGISTRY", "RESIDUALS", "REDUCTIONS", "spec", "names"]

RESIDUALS = ("log", "linear")
REDUCTIONS = ("sum", "mean")


def _positive(name: str) -> Callable[[float], str | None]:
    def check(v: float) -> str | None:
        return None if v > 0 and math.isfinite(v) else f"{name} must be positive and finite, got {v!r}"
    return check


def _open_unit(name: str) -> Callable[[float], str | None]:
    def check(v: float) -> str | None:
        return None if 0.0 < v < 1.0 else f"{name} must lie strictly between 0 and 1, got {v!r}"
    return check


def _huber(r, d):
    a = np.abs(r)
    return np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))


@dataclass(frozen=True)
class LossDef:
    """One loss: its kernel kind (``_core.LOSS_KINDS``), its parameter and how it is fitted.

    rho : NumPy rho(r, param) (screening, tests, reports).
    cuda : the CUDA emitter's per-point source: statements reading ``r``, ``wk`` (the weight, times the
        asymmetry where r > 0), ``P`` (the parameter) and ``c`` (phase-1 curvature times P), setting ``rho``,
        ``wd1 = wk rho'(r)`` and ``wd2 = wk rho''(r)``.
    kinked : not differentiable at r = 0; fitted by Huber continuation and an exact vertex step.
    """

    name: str
    kernel: str
    rho: Callable[[np.ndarray, float], np.ndarray]
    cuda: str
    param: str | None = None
    default: float | None = None
    check: Callable[[float], str | None] | None = None
    kinked: bool = False
    asymmetric: bool = False
    fits_sigma: bool = False  # adds a fitted scale parameter (sigma) to the law
    doc: str = ""


_HUBER_CUDA = """\
aa = abs(r)
if aa <= P:
    rho = 0.5 * r * r
    wd1 = wk * r
    wd2 = wk
else:
    rho = P * (aa - 0.5 * P)
    wd1 = wk * COPYSIGN(P, r)
    wd2 = wk * c / aa
"""

REGISTRY: dict[str, LossDef] = {}


def _register(d: LossDef) -> None:
    REGISTRY[d.name] = d


_register(LossDef("huber", "huber", _huber, _HUBER_CUDA, "delta", 1e-3, _positive("delta"),
                  doc="Huber with threshold delta (Hoffmann et al., Epoch AI: 1e-3 on log residuals)"))
_register(LossDef("asymmetric_huber", "huber", _huber, _HUBER_CUDA, "delta", 1e-3, _positive("delta"),
                  asymmetric=True, doc="Huber with over-predictions weighted `asymmetry` times"))
_register(LossDef("squared", "squared", lambda r, p: 0.5 * r * r,
                  "rho = 0.5 * r * r\nwd1 = wk * r\nwd2 = wk\n", doc="r^2 / 2 (least squares)"))
_register(LossDef("absolute", "absolute", lambda r, p: np.abs(r),
                  "rho = abs(r)\nwd1 = wk if r > 0.0 else (-wk if r < 0.0 else 0.0)\nwd2 = 0.0\n",
                  kinked=True, doc="|r| (least absolute deviations), fitted exactly"))
_register(LossDef("quantile", "quantile", lambda r, q: np.where(r > 0, (1.0 - q) * r, -q * r),
                  "rho = (1.0 - P) * r if r > 0.0 else -P * r\n"
                  "wd1 = wk * (1.0 - P) if r > 0.0 else (-wk * P if r < 0.0 else 0.0)\nwd2 = 0.0\n",
                  "q", 0.5, _open_unit("q"), kinked=True,
                  doc="pinball loss of the q-quantile (L_hat estimates the q-quantile of L), fitted exactly"))
_register(LossDef("cauchy", "cauchy", lambda r, c: 0.5 * c * c * np.log1p((r / c) ** 2),
                  "u = r / P\nden = 1.0 + u * u\nrho = 0.5 * P * P * LOG1P(u * u)\nwd1 = wk * (r / den)\n"
                  "wd2 = wk * ((1.0 - u * u) / (den * den))\n", "c", 1e-2, _positive("c"),
                  doc="Cauchy (Lorentzian) c^2/2 log(1 + (r/c)^2): redescending, for heavy outliers"))
_register(LossDef("huber_likelihood", "huber_likelihood", _huber, "", "delta", 1e-3, _positive("delta"),
                  fits_sigma=True,
                  doc="Epoch AI's negative log likelihood of a Huber-type error with fitted scale sigma"))


def rounding_residual(target: np.ndarray) -> np.ndarray:
    """Per run, the residual a perfect fit can show as rounding leaves it: 1000 ulps of max(1, |target|), the
    target on the residual's scale (log L or L). The Python twin of ``rounding_floor`` in
    cpp/include/lawfit/loss.hpp."""
    return 1e3 * np.finfo(float).eps * np.maximum(1.0, np.abs(target))


def names() -> list[str]:
    return list(REGISTRY)


@dataclass(frozen=True)
class Loss:
    """A validated loss specification: which loss, its parameter, the residual scale and the reduction.

    Build one with :func:`spec` (or ``lawfit.Loss("quantile", q=0.1, residual="linear")``); every function
    that takes ``loss=`` accepts a name or one of these.
    """

    name: str = "huber"
    param: float | None = 1e-3
    asymmetry: float = 1.0
    residual: str = "log"
    reduction: str = "sum"
    definition: LossDef = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __init__(self, name: str = "huber", *, delta: float | None = None, q: float | None = None,
                 c: float | None = None, asymmetry: float | None = None, residual: str = "log",
                 reduction: str = "sum"):
        if not isinstance(name, str) or name not in REGISTRY:
            raise ValueError(f"unknown loss {name!r}; choose one of {names()}")
        d = REGISTRY[name]
        given = {"delta": delta, "q": q, "c": c}
        for k, v in given.items():
            if v is not None and k != d.param:
                raise ValueError(f"loss {name!r} takes no parameter {k!r}"
                                 + (f" (its parameter is {d.param!r})" if d.param else ""))
        param = None
        if d.param is not None:
            v = given[d.param]
            param = _number(d.param, d.default if v is None else v)
            msg = d.check(param) if d.check else None
            if msg:
                raise ValueError(f"loss {name!r}: {msg}")
        if asymmetry is not None:
            v = _number("asymmetry", asymmetry)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"asymmetry must be positive and finite, got {asymmetry!r}")
        if asymmetry is not None and not d.asymmetric:
            if asymmetry != 2.0:  # the documented default of the asymmetry keyword is ignored by other losses
                raise ValueError(f"asymmetry applies to the asymmetric_huber loss only, not {name!r}")
            asymmetry = None
        asym = 1.0
        if d.asymmetric:
            asym = _number("asymmetry", 2.0 if asymmetry is None else asymmetry)
            if not (asym > 0 and math.isfinite(asym)):
                raise ValueError(f"asymmetry must be positive and finite, got {asym!r}")
        if not isinstance(residual, str) or residual not in RESIDUALS:
            raise ValueError(f"residual must be one of {RESIDUALS}, got {residual!r}")
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "param", param)
        object.__setattr__(self, "asymmetry", asym)
        object.__setattr__(self, "residual", residual)
        object.__setattr__(self, "reduction", reduction)
        object.__setattr__(self, "definition", d)

    def __reduce__(self):  # picklable for worker processes: rebuilt from the registry by name
        kw = {"residual": self.residual, "reduction": self.reduction}
        if self.definition.param:
            kw[self.definition.param] = self.param
        if self.definition.asymmetric:
            kw["asymmetry"] = self.asymmetry
        return (_rebuild, (self.name, kw))

    # -- what the kernels take -------------------------------------------------------------------------------
    @property
    def kind(self) -> int:
        from . import _core

        return int(_core.LOSS_KINDS[self.definition.kernel])

    @property
    def kernel_param(self) -> float:
        return 1.0 if self.param is None else float(self.param)

    def core(self):
        """The loss as the backends take it (``_core.Loss``)."""
        from . import _core

        return _core.Loss(self.kind, self.kernel_param, self.asymmetry, RESIDUALS.index(self.residual))

    @property
    def kinked(self) -> bool:
        return self.definition.kinked

    @property
    def fits_sigma(self) -> bool:
        return self.definition.fits_sigma

    @property
    def delta(self) -> float:
        """Huber's threshold (the parameter of the Huber losses); NaN for the others (for reports)."""
        return float(cast(float, self.param)) if self.definition.param == "delta" else float("nan")

    # -- NumPy forms --------------------------------------------------------------------------------------------
    def residuals(self, log_pred: np.ndarray, data) -> np.ndarray:
        """r for predictions ``log_pred`` (log L_hat, broadcast over runs) against a prepared dataset."""
        if self.residual == "log":
            return log_pred - data.target
        return np.exp(log_pred) - data.raw_loss

    def rho(self, r: np.ndarray) -> np.ndarray:
        """Weighted-per-point rho(r) as the kernels compute it (without the Huber likelihood's terms in
        sigma)."""
        out = self.definition.rho(r, self.kernel_param)
        if self.asymmetry != 1.0:
            out = np.where(r > 0, self.asymmetry * out, out)
        return out

    def target(self, data) -> np.ndarray:
        """The kernels' target array: log L (log residual) or L (linear residual)."""
        return data.target if self.residual == "log" else data.raw_loss

    def describe(self) -> str:
        p = "" if self.param is None else f", {self.definition.param}={self.param:g}"
        a = f", asymmetry={self.asymmetry:g}" if self.definition.asymmetric else ""
        return f"{self.name}{p}{a} on {self.residual} residuals, {self.reduction}"

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"loss": self.name, "residual": self.residual, "reduction": self.reduction}
        if self.definition.param:
            d[self.definition.param] = self.param
        if self.definition.asymmetric:
            d["asymmetry"] = self.asymmetry
        return d


def _rebuild(name: str, kw: dict) -> Loss:
    return Loss(name, **kw)


def _number(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got {v!r}") from None
    return f


def spec(loss: Any = "huber", *, delta: float | None = None, asymmetry: float | None = None,
         q: float | None = None, c: float | None = None, residual: str | None = None,
         reduction: str | None = None) -> Loss:
    """A validated :class:`Loss` from a name and options, or ``loss`` itself when it is already one (then
    the options must not be given)."""
    if isinstance(loss, Loss):
        extra = {k: v for k, v in (("delta", delta), ("q", q), ("c", c), ("residual", residual),
                                   ("reduction", reduction)) if v is not None}
        if asymmetry is not None and asymmetry != 2.0:
            extra["asymmetry"] = asymmetry
        if extra:
            raise ValueError(f"loss is a lawfit.Loss; give {sorted(extra)} to it, not separately")
        return loss
    if delta is not None and not (isinstance(loss, str) and loss in REGISTRY
                                  and REGISTRY[loss].param == "delta"):
        if delta == 1e-3:  # the documented default of the delta keyword: ignored by losses without delta
            delta = None
    return Loss(loss, delta=delta, q=q, c=c, asymmetry=asymmetry, residual=residual or "log",
                reduction=reduction or "sum")
