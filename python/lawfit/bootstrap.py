"""Bootstrap uncertainty: refit the law on resamples of the runs, as weight rows of one engine batch.

Resamples are drawn in Python from a ``numpy.random.Generator`` (or given explicitly), so the draws and
every refit are identical for any thread count and backend.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from . import engine
from .data import check_level, prepare
from .multistart import FitResult, fit
from .status import Status, is_success

if TYPE_CHECKING:
    from .laws import Law

__all__ = ["bootstrap", "BootstrapResult", "Resamples", "resample_weights", "sandwich"]

STRATEGIES = ("smart", "fixed", "exhaustive", "pruned")
_MAX_WEIGHT_BYTES = 8 * 2**30  # resample weights held in memory at once
_RESULT_BYTES = 160  # per-resample results kept (parameters, objective, status, counts) with a few parameters
_MAX_RESULT_BYTES = 16 * 2**30
_LOCAL_CHUNK = 4096  # resamples per batch of a local bootstrap
_CHUNK_BYTES = 2**25  # weight rows (and pruning scores) of one batch


def _check_resamples(n_runs: int, resamples) -> np.ndarray:
    idx = np.asarray(resamples)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"resamples must be an integer array of row positions, got dtype {idx.dtype}")
    if idx.ndim != 2 or idx.shape[1] != n_runs:
        raise ValueError(f"resamples must have shape (n_resamples, {n_runs}) (one row position per drawn "
                         f"run), got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_runs):
        r, c = np.argwhere((idx < 0) | (idx >= n_runs))[0]
        raise ValueError(f"resamples[{r}, {c}] = {idx[r, c]} is not a row position in 0..{n_runs - 1}")
    return idx


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of resamples must be a positive integer, got {n!r}")
    return int(n)


def _counts(idx: np.ndarray, n_runs: int) -> np.ndarray:
    """Weight rows (r, n_runs) from drawn row positions (r, k): how often each run was drawn."""
    r = idx.shape[0]
    flat = (np.asarray(idx, dtype=np.int64) + n_runs * np.arange(r, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=r * n_runs).reshape(r, n_runs).astype(np.float64)


_DRAW_BLOCK = 1 << 20  # row positions drawn at once when a generator is only advanced


def _advance(rng: np.random.Generator, n_runs: int, rows: int) -> None:
    """Draw (and discard) ``rows`` resamples of ``n_runs`` positions: the generator ends where drawing them
    all at once would leave it (a Generator's stream does not depend on how the draws are split into calls)."""
    step = max(1, _DRAW_BLOCK // max(1, n_runs))
    for lo in range(0, rows, step):
        rng.integers(0, n_runs, size=(min(step, rows - lo), n_runs))


class _Drawn:
    """Rows ``lo:hi`` of a :class:`Resamples`: the generator's state where they begin (small and picklable,
    so an executor is sent this, not the weights)."""

    __slots__ = ("rng", "n_runs", "lo", "hi", "after")

    def __init__(self, rng, n_runs, lo, hi):
        self.rng, self.n_runs, self.lo, self.hi, self.after = rng, n_runs, lo, hi, None

    def __getstate__(self):
        return (self.rng, self.n_runs, self.lo, self.hi)

    def __setstate__(self, state):
        self.rng, self.n_runs, self.lo, self.hi = state
        self.after = None

    def rows(self) -> np.ndarray:
        g = copy.deepcopy(self.rng)
        out = _counts(g.integers(0, self.n_runs, size=(self.hi - self.lo, self.n_runs)), self.n_runs)
        self.after = g
        return out


class _Indexed:
    """Rows ``lo:hi`` of given row positions (``resamples=``)."""

    __slots__ = ("idx", "n_runs")

    def __init__(self, idx, n_runs):
        self.idx, self.n_runs = idx, n_runs

    def rows(self) -> np.ndarray:
        return _counts(self.idx, self.n_runs)


class Resamples:
    """Bootstrap weight rows (n_resamples, n_runs), drawn a block at a time instead of held in memory.

    The rows are exactly those of :func:`resample_weights` with the same arguments: ``n`` resamples drawn with
    ``numpy.random.default_rng(seed)`` (or the Generator ``seed``, which is advanced past all of them, as
    :func:`resample_weights` leaves it), or the given row positions ``resamples``. :meth:`pieces` yields
    blocks of rows in order; each piece's ``rows()`` draws them from the generator's state at its first row,
    so memory is one block, and a piece sent to another process is a few hundred bytes.
    """

    def __init__(self, n_runs: int, n: int | None = None, *, seed=None, resamples=None):
        self.n_runs = int(n_runs)
        if resamples is not None:
            self._idx: np.ndarray | None = _check_resamples(self.n_runs, resamples)
            self._rng = None
            self.shape = (self._idx.shape[0], self.n_runs)
            return
        n = _check_count(n)
        if n * _RESULT_BYTES > _MAX_RESULT_BYTES:
            raise ValueError(f"{n} resamples need about {n * _RESULT_BYTES // 2**30} GiB for their results alone "
                             f"(~{_RESULT_BYTES} bytes each); run them in batches (several seeds)")
        self._idx = None
        if isinstance(seed, np.random.Generator):
            self._rng = copy.deepcopy(seed)
            _advance(seed, self.n_runs, n)
        else:
            self._rng = np.random.default_rng(seed)
        self.shape = (n, self.n_runs)

    def __len__(self) -> int:
        return self.shape[0]

    def pieces(self, chunk: int):
        """Blocks of ``chunk`` rows (the last may be shorter), in order: objects with ``rows()``."""
        R = self.shape[0]
        if self._idx is not None:
            for lo in range(0, R, chunk):
                yield _Indexed(self._idx[lo:lo + chunk], self.n_runs)
            return
        g = copy.deepcopy(self._rng)
        for lo in range(0, R, chunk):
            hi = min(R, lo + chunk)
            piece = _Drawn(copy.deepcopy(g), self.n_runs, lo, hi)
            yield piece
            if piece.after is not None:  # drawn here already: continue from where it ended
                g = piece.after
                piece.after = None
            else:
                _advance(g, self.n_runs, hi - lo)  # type: ignore[arg-type]  # drawn rows have a generator

    def blocks(self, chunk: int):
        """(lo, hi, weight rows lo:hi) for consecutive blocks of ``chunk`` rows."""
        lo = 0
        for piece in self.pieces(chunk):
            w = piece.rows()
            yield lo, lo + w.shape[0], w
            lo += w.shape[0]

    def rows(self) -> np.ndarray:
        """All rows at once (n_resamples, n_runs)."""
        return resample_weights(self.n_runs, resamples=self._idx) if self._idx is not None else \
            np.concatenate([w for _, _, w in self.blocks(max(1, _DRAW_BLOCK // max(1, self.n_runs)))])


def resample_weights(n_runs: int, n: int | None = None, *, seed=None, resamples=None) -> np.ndarray:
    """Weight rows (n_resamples, n_runs): how often each run is drawn in each resample.

    Either ``n`` resamples drawn with ``numpy.random.default_rng(seed)`` (``seed`` may also be a
    Generator), or ``resamples``: an integer array (n_resamples, n_runs) of row positions, for example to
    replay someone else's resamples exactly. All rows are held in memory; :class:`Resamples` gives the same
    rows a block at a time (what :func:`bootstrap` uses).
    """
    if resamples is not None:
        idx = _check_resamples(n_runs, resamples)
        return np.stack([np.bincount(row, minlength=n_runs) for row in idx]).astype(np.float64)
    n = _check_count(n)
    if int(n) * n_runs * 8 > _MAX_WEIGHT_BYTES:
        raise ValueError(f"{n} resamples of {n_runs} runs need {int(n) * n_runs * 8 // 2**30} GiB of weights; "
                         f"draw them a block at a time with lawfit.bootstrap.Resamples, or pass a "
                         f"memory-mapped weight matrix to lawfit.runner.run")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws = rng.integers(0, n_runs, size=(int(n), n_runs))
    return np.stack([np.bincount(row, minlength=n_runs) for row in draws]).astype(np.float64)


@dataclass(frozen=True)
class BootstrapResult:
    """Refits of a law on resamples of the runs.

    Attributes
    ----------
    fit : the fit on the full data (the point estimate).
    params : natural-scale draws, name -> array (n_resamples,); failed refits are NaN.
    status : per-resample status codes (lawfit.Status).
    """

    law: Law
    fit: FitResult
    strategy: str
    resamples: Resamples | np.ndarray = field(repr=False)  # the weight rows, drawn on demand, or an array
    theta: np.ndarray = field(repr=False)  # internal draws (n_resamples, n_params)
    fun: np.ndarray = field(repr=False)
    status: np.ndarray = field(repr=False)
    nfev: np.ndarray = field(repr=False)
    best_start: np.ndarray = field(repr=False)
    n_starts: int = 1
    # leave-one-run-out draws for BCa, name -> (n_runs,): from bootstrap(..., jackknife=True) or with_jackknife()
    jackknife: dict[str, np.ndarray] | None = field(default=None, repr=False)
    problem: Any = field(default=None, repr=False)  # the lawfit.Problem that was resampled
    options: dict[str, Any] = field(default_factory=dict, repr=False)  # threads, backend of the refits

    @property
    def n(self) -> int:
        return int(self.status.size)

    @property
    def weights(self) -> np.ndarray:
        """The weight rows (n_resamples, n_runs), drawn again from the seed when asked for (not kept)."""
        r = self.resamples
        return r.rows() if isinstance(r, Resamples) else np.asarray(r)

    @property
    def ok(self) -> np.ndarray:
        return is_success(self.status)

    @property
    def n_failed(self) -> int:
        return int(np.count_nonzero(~self.ok))

    @property
    def params(self) -> dict[str, np.ndarray]:
        out = {}
        for i, p in enumerate(self.law.params):
            v = np.asarray(p.to_natural(self.theta[:, i]), dtype=float)
            out[p.name] = np.where(self.ok, v, np.nan)
        return out

    def draws(self):
        """The draws as a DataFrame: natural parameters, objective, status name, one row per resample."""
        import pandas as pd

        df = pd.DataFrame(self.params)
        df["objective"] = self.fun
        df["status"] = [Status(int(s)).name for s in self.status]
        return df

    def status_counts(self) -> dict[str, int]:
        codes, counts = np.unique(self.status, return_counts=True)
        return {Status(int(c)).name: int(k) for c, k in zip(codes, counts)}

    @property
    def se(self) -> dict[str, float]:
        """Bootstrap standard errors (natural scale; successful refits; ddof = 1)."""
        return {k: float(np.nanstd(v, ddof=1)) for k, v in self.params.items()}

    def cov(self, scale: str = "natural"):
        """Covariance of the draws as a DataFrame, on the natural or the internal (fitted) scale."""
        import pandas as pd

        if scale == "natural":
            names = self.law.param_names
            x = np.column_stack([self.params[n] for n in names])
        elif scale == "internal":
            names = self.law.internal_names
            x = self.theta[self.ok]
        else:
            raise ValueError(f"scale must be 'natural' or 'internal', got {scale!r}")
        x = x[np.all(np.isfinite(x), axis=1)]
        return pd.DataFrame(np.cov(x, rowvar=False, ddof=1), index=names, columns=names)

    def ci(self, level: float = 0.95, method: str = "percentile") -> dict[str, tuple[float, float]]:
        """Two-sided intervals, name -> (low, high), natural scale.

        ``method="percentile"``: quantiles of the draws. ``method="bca"``: bias-corrected and accelerated
        (Efron), with the acceleration from the leave-one-run-out jackknife, which this result must hold: from
        ``bootstrap(..., jackknife=True)`` or ``result.with_jackknife()`` (n_runs more fits).
        """
        check_level(level)
        if method not in ("percentile", "bca"):
            raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")
        if method == "bca" and self.jackknife is None:
            raise ValueError("BCa intervals need the jackknife: use result.with_jackknife().ci(..., method='bca') "
                             "or bootstrap(..., jackknife=True)")
        tail = (1 - level) / 2
        out = {}
        draws = self.params
        for k, v in draws.items():
            v = v[np.isfinite(v)]
            if v.size == 0:
                out[k] = (float("nan"), float("nan"))
                continue
            lo, hi = tail, 1 - tail
            if method == "bca":
                lo, hi = self._bca_levels(k, v, tail)
            out[k] = (float(np.quantile(v, lo)), float(np.quantile(v, hi)))
        return out

    def _bca_levels(self, name: str, v: np.ndarray, tail: float) -> tuple[float, float]:
        assert self.jackknife is not None  # ci() checked it
        return bca_levels(v, self.fit.params[name], self.jackknife[name], tail)

    def with_jackknife(self) -> "BootstrapResult":
        """This result with the leave-one-run-out jackknife that BCa intervals need (n_runs refits from the
        full-data optimum, in blocks of rows); a new result, this one is unchanged."""
        if self.jackknife is not None:
            return self
        return dataclasses.replace(self, jackknife=jackknife_draws(self.problem, self.fit, self.options))

    def summary(self, level: float = 0.95) -> str:
        ci = self.ci(level)
        se = self.se
        lines = [
            f"bootstrap: {self.n} resamples ({self.strategy} starts, {self.n_starts} per resample), "
            f"{self.n_failed} failed",
            f"{'param':<10}{'estimate':>14}{'se':>14}   {int(level * 100)}% interval (percentile)",
        ]
        for p in self.law.params:
            lo, hi = ci[p.name]
            lines.append(f"{p.name:<10}{self.fit.params[p.name]:>14.6g}{se[p.name]:>14.4g}   "
                         f"[{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _distinct_optima(result: FitResult, rtol: float = 1e-6) -> np.ndarray:
    """Internal vectors of the distinct converged optima of a multi-start fit (best first)."""
    ok = is_success(result.start_status) & np.isfinite(result.start_fun)
    order = np.argsort(np.where(ok, result.start_fun, np.inf), kind="stable")
    out: list[np.ndarray] = []
    theta = result.start_theta
    for i in order:
        if not ok[i]:
            break
        x = theta[i]
        if all(np.max(np.abs(x - y) / (1.0 + np.abs(y))) > rtol for y in out):
            out.append(x)
    return np.array(out) if out else result.x[None, :]


def bootstrap(law, data=None, n: int = 1000, *, seed=None, resamples=None, strategy: str = "smart",
              start: Any = None, starts: Any = "grid", max_basins: int = 8, loss=None,
              delta: float | None = None, asymmetry: float | None = None, q: float | None = None,
              c: float | None = None, residual: str | None = None, reduction: str | None = None,
              bounds=None, fixed=None, tie=None, columns=None,
              threads: int | None = None, _full: FitResult | None = None, progress=None,
              backend: str = "cpu", screen: int = 16, chunk: int | None = None, checkpoint=None,
              executor=None, jackknife: bool = False, **solver) -> BootstrapResult:
    """Refit ``law`` on ``n`` bootstrap resamples of the runs and collect the estimates.

    Parameters
    ----------
    n, seed : number of resamples and the seed (or ``numpy.random.Generator``) that draws them.
    resamples : instead, an integer array (n_resamples, n_runs) of row positions to replay exactly.
    strategy : start points per resample:
        ``"fixed"`` - one start per resample, ``start`` (default: the full-data optimum); Epoch AI used
        Hoffmann et al.'s published point;
        ``"exhaustive"`` - the whole grid ``starts`` for every resample;
        ``"smart"`` (default) - the distinct optima (basins) the grid reaches on the full data, at most
        ``max_basins`` of them, for every resample;
        ``"pruned"`` - the exhaustive protocol's answers at a fraction of its cost: every grid point is scored
        by its objective on each resample (one matrix product) and the ``screen`` best of them are refitted,
        plus the smart strategy's basins.
    chunk : resamples per unit of work (streamed, checkpointed and distributed by chunk; results do not
        depend on it). Default: up to 4096 (32 MiB of weights) without ``checkpoint``/``executor``, else 256.
        The weight rows of a chunk are drawn when it runs, never all at once: memory is one chunk plus a few
        numbers per resample.
    checkpoint : a file (.npz) for finished chunks: written as the run goes (and on Ctrl-C); an existing
        checkpoint of the same problem is resumed. Ctrl-C raises :class:`lawfit.runner.Interrupted` with the
        finished resamples.
    executor : a ``concurrent.futures.Executor`` that runs the chunks, e.g. ``dask.distributed.Client(...)
        .get_executor()``; results are identical to a local run.
    starts : the grid of the full-data fit (and of ``"exhaustive"``): as in :func:`lawfit.fit`.
    jackknife : also run the leave-one-run-out jackknife that BCa intervals need (n_runs more fits; or later,
        ``result.with_jackknife()``).
    The other options are those of :func:`lawfit.fit` and apply to every refit.
    """
    from .problem import Problem, resolve as _resolve

    if isinstance(law, Problem) and isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        data, n = None, data  # bootstrap(problem, n)
    prob = _resolve(law, data, dict(loss=loss, delta=delta, asymmetry=asymmetry, q=q, c=c, residual=residual,
                                    reduction=reduction, bounds=bounds, fixed=fixed, tie=tie, columns=columns,
                                    **solver))
    law, ds = prob.law, prob.data
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown bootstrap strategy {strategy!r}; choose one of {STRATEGIES}")
    rows = Resamples(ds.n, n if resamples is None else None, seed=seed, resamples=resamples)
    options: dict[str, Any] = dict(threads=threads, backend=backend)  # per call; the problem carries the rest
    full = _full if _full is not None else fit(prob, starts=starts, progress=progress, **options)
    from . import runner
    from .starts import resolve

    if strategy == "fixed":
        if start is None:
            st = full.x[None, :]
        else:
            st = resolve(law, start)
            if st.shape[0] != 1:
                raise ValueError("strategy='fixed' takes one start; use 'exhaustive' or 'smart' for a grid")
    elif strategy == "exhaustive":
        st = resolve(law, starts)
    else:  # smart, and the basins that seed pruned
        st = _distinct_optima(full)[:max_basins]
    if strategy == "pruned":
        job = runner.Job(prob, None, resolve(law, starts), seeds=st, screen=screen, options=options)
        if not job.screen:
            raise ValueError(f"screen must be a positive number of grid points per resample, got {screen!r}")
    else:
        job = runner.Job(prob, None, st, options=options)
    if chunk is None and checkpoint is None and executor is None:  # bounded memory: a block of weight rows
        wide = max(ds.n, job.starts.shape[0] if job.screen else 0)  # and of screening scores
        chunk = max(1, min(rows.shape[0], _LOCAL_CHUNK, _CHUNK_BYTES // (8 * wide)))
    batch = runner.run(job, rows, chunk=chunk, checkpoint=checkpoint, executor=executor, progress=progress)
    result = BootstrapResult(
        law=law, fit=full, strategy=strategy, resamples=rows, theta=batch.theta, fun=batch.fun,
        status=batch.status, nfev=batch.nfev, best_start=batch.best_start,  # type: ignore[arg-type]  # keep="best"
        n_starts=job.fits_per_row,
        problem=prob, options=options,
        jackknife=jackknife_draws(prob, full, options) if jackknife else None,
    )
    _warn_other_basin(law, full, batch.theta, batch.status)
    return result


def bca_levels(draws: np.ndarray, estimate: float, jackknife: np.ndarray, tail: float) -> tuple[float, float]:
    """Efron's BCa quantile levels for the two-sided interval with ``tail`` in each tail: the bias correction
    from the share of (finite) ``draws`` below ``estimate``, the acceleration from the leave-one-out
    ``jackknife`` values (non-finite ones ignored)."""
    nd = NormalDist()
    v = draws
    frac = (np.count_nonzero(v < estimate) + 0.5 * np.count_nonzero(v == estimate)) / v.size
    frac = min(max(frac, 0.5 / v.size), 1 - 0.5 / v.size)
    z0 = nd.inv_cdf(frac)
    jack = jackknife[np.isfinite(jackknife)]
    d = jack.mean() - jack
    denom = 6.0 * np.sum(d**2) ** 1.5
    a = float(np.sum(d**3) / denom) if denom > 0 else 0.0
    levels = []
    for z in (nd.inv_cdf(tail), nd.inv_cdf(1 - tail)):
        adj = z0 + (z0 + z) / (1 - a * (z0 + z))
        levels.append(nd.cdf(adj))
    return levels[0], levels[1]


def jackknife_draws(problem, full: FitResult, options: dict | None = None) -> dict[str, np.ndarray]:
    """Leave-one-run-out refits of ``problem`` from the full-data optimum: natural draws, name -> (n_runs,), NaN
    where a refit failed. The n weight rows are fitted a block at a time (never an n x n matrix)."""
    n = problem.data.n
    parts = []
    step = max(1, min(n, _CHUNK_BYTES // (8 * n)))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        w = np.ones((hi - lo, n))
        w[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        batch = engine.minimize(problem, None, full.x[None, :], weights=w, **(options or {}))
        ok = batch.success
        parts.append({k: np.where(ok, v, np.nan) for k, v in batch.natural().items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _warn_other_basin(law, full: FitResult, theta: np.ndarray, status: np.ndarray, z: float = 5.0) -> None:
    """BasinWarning when, for some parameter, the median successful draw lies more than ``z`` robust standard
    errors (1.4826 MAD, internal scale) from the full-data estimate."""
    import warnings

    from .warnings import BasinWarning

    ok = is_success(status)
    if ok.sum() < 20 or not full.success:
        return
    th = theta[ok]
    med = np.median(th, axis=0)
    mad = 1.4826 * np.median(np.abs(th - med), axis=0)
    x = full.x
    for i, p in enumerate(law.params):
        if mad[i] > 0 and np.isfinite(mad[i]) and abs(med[i] - x[i]) > z * mad[i]:
            warnings.warn(BasinWarning(
                f"the bootstrap draws of {p.internal} lie around {med[i]:.6g} (robust SE {mad[i]:.3g}), far from "
                f"the full-data estimate {x[i]:.6g}: the refits land in another basin"), stacklevel=3)
            return



def sandwich(result: FitResult, data, *, columns=None, scale: str = "natural"):
    """Robust (sandwich) covariance of an M-estimate, ``H^-1 S H^-1`` at the optimum, as a DataFrame.

    H is the objective's Hessian, S the sum of the per-run score outer products (score_i = w_i rho'(r_i)
    d log L_hat_i / d theta), both from the compiled kernel: one batched evaluation with one weight row per run.
    Both are taken over the fit's free parameters: a fixed parameter has zero variance and covariance, tied
    parameters share one variance (their covariance equals it). A singular or indefinite H (a direction the data
    do not identify) is a ValueError naming that direction.
    ``scale="natural"`` maps it through the transforms (delta method: d exp(p) = exp(p) dp). With a Huber loss
    the Hessian gets curvature only from runs inside the Huber band, so this can be far narrower than the
    bootstrap (which also sees the choice of those runs).
    """
    import pandas as pd

    from .multistart import RANK_RTOL, free_hessian, hessian_analysis, rank_message

    if scale not in ("natural", "internal"):
        raise ValueError(f"scale must be 'natural' or 'internal', got {scale!r}")
    law = result.law
    ds = prepare(law, data, columns=columns)
    if result.loss not in ("huber", "squared"):
        raise ValueError(f"sandwich covariance supports the huber and squared losses, not {result.loss!r}")
    con = result.constraints if result.constraints is not None else engine.constraints(law)
    J = np.zeros((law.n_params, con.n_free))  # d theta / d x: fixed rows zero, tied rows repeat their column
    for k, j in enumerate(con.free_index):
        if j >= 0:
            J[k, j] = 1.0
    theta = result.x
    spec = result.objective if result.objective is not None else result.loss
    hess = engine.evaluate(law, ds, theta[None, :], loss=spec, derivatives=2).hess[0]  # type: ignore[index]
    hess = free_hessian(hess, con.free_index)
    rel, _, direction = hessian_analysis(hess, con.free_names)
    if math.isnan(rel):
        raise ValueError("the objective's Hessian is not finite at this fit: no sandwich covariance")
    if not rel > RANK_RTOL:
        raise ValueError("no sandwich covariance: " + rank_message(direction, rel, con.free_names))
    meat = np.zeros_like(hess)
    for lo in range(0, ds.n, 1024):  # per-run scores, a block of one-hot weight rows at a time
        hi = min(ds.n, lo + 1024)
        w = np.zeros((hi - lo, ds.n))
        w[np.arange(hi - lo), np.arange(lo, hi)] = 1.0
        g = engine.evaluate(law, ds, np.tile(theta, (hi - lo, 1)), weights=w, loss=spec,
                            derivatives=1).grad
        g = np.stack([g[:, con.free_index == j].sum(axis=1) for j in range(con.n_free)],  # type: ignore[index]
                     axis=1)
        meat += g.T @ g
    try:
        hinv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        raise ValueError("the objective's Hessian is singular at this fit: no sandwich covariance") from None
    cov = J @ (hinv @ meat @ hinv) @ J.T
    if scale == "internal":
        names = law.internal_names
    else:
        names = law.param_names
        jac = np.array([np.exp(theta[i]) if p.transform == "log" else 1.0 for i, p in enumerate(law.params)])
        cov = cov * np.outer(jac, jac)
    return pd.DataFrame(cov, index=names, columns=names)
