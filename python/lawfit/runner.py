"""Long runs of many weight rows (bootstrap resamples): streamed in chunks, pruned, checkpointed, interruptible,
and spread over a ``concurrent.futures.Executor`` (a Dask cluster, Ray, a process pool).

The unit of work is a *chunk*: a contiguous range of weight rows, fitted from the same starts with
``keep="best"``. A row's result depends only on that row, the starts and the options, never on the chunk it
was in, the thread count or the machine that ran it, so chunked, resumed and distributed runs are identical to
one local call. Memory is bounded by one chunk of fits per worker plus the per-row results (a few numbers
per row).

Pruning (``screen=k``): every grid start is first scored by its objective value on every row, all at once
(one matrix product of the rows' weights with the per-run losses at each grid point), and only the ``k`` best
grid points of each row are refitted, together with ``seeds`` (the distinct optima the grid reaches on the
full data: the basins). This keeps the exhaustive protocol's per-row optima at a small fraction of its cost;
``benchmarks/exhaustive.py`` measures the agreement.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import math
import os
import re
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import engine
from . import progress as _progress
from .data import Dataset
from .status import Status

__all__ = ["Job", "run", "Interrupted", "screen_scores"]

_FIELDS = ("x", "fun", "status", "nit", "nfev", "at_bound", "best_start", "n_success")
_RETRIES = 2  # resubmissions of a chunk whose worker was lost (on top of the executor's own retries)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long run. ``partial`` holds the rows finished so far (the others have status
    NOT_RUN); with a checkpoint file they are saved there too, and the same call resumes from them."""

    def __init__(self, partial: engine.BatchFit, done: np.ndarray, checkpoint: str | None):
        super().__init__(f"interrupted after {int(done.sum())} of {done.size} chunks of rows"
                         + (f"; finished rows are saved in {checkpoint}" if checkpoint else ""))
        self.partial = partial
        self.done = done
        self.checkpoint = checkpoint


@dataclass
class Job:
    """Everything a worker needs to fit a chunk of rows (picklable; sent once per chunk).

    starts : (S, n_params) full internal start vectors (the grid).
    seeds : (B, n_params) starts tried on every row in addition to the screened grid points (pruning only).
    screen : 0 fits every start on every row; k > 0 fits the k best grid points of each row, by objective
        value on that row, plus the seeds.
    law, data : a :class:`lawfit.Problem` (then data is None), or a law and its data, with the problem's keywords
        (bounds, fixed, tie, loss, delta, ...) in ``options``; the Job validates them once into ``problem``.
    options : the per-call keywords of :func:`lawfit.engine.minimize` (threads, backend), and without a
        Problem the problem's own.
    """

    law: Any
    data: Dataset | None
    starts: np.ndarray
    seeds: np.ndarray | None = None
    screen: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        from .problem import Problem, resolve

        s = self.screen
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"screen must be a non-negative number of grid points per row (0: every start), "
                             f"got {s!r}")
        self.screen = int(s)
        run = {k: v for k, v in self.options.items() if k in _RUN_OPTIONS}
        rest = {k: v for k, v in self.options.items() if k not in _RUN_OPTIONS}
        self.problem: Problem = resolve(self.law, self.data, rest)  # validated once, here
        self.law, self.data, self.options = self.problem.law, self.problem.data, run

    @property
    def fits_per_row(self) -> int:
        """Local fits per weight row: the whole grid, or the screened grid points plus the seeds."""
        if not self.screen:
            return self.starts.shape[0]
        return min(self.screen, self.starts.shape[0]) + (0 if self.seeds is None else len(self.seeds))

    def fingerprint(self, weights, chunk: int) -> str:
        """A digest of the problem: a checkpoint is only resumed by the same problem (program, data, objective,
        resolved constraints, solver options, lawfit's version: Problem.fingerprint), starts, weights, screening
        and chunk size."""
        h = hashlib.sha256(self.problem.fingerprint())
        for arr in (self.starts, self.seeds if self.seeds is not None else np.empty(0)):
            a = np.ascontiguousarray(arr)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        h.update(str(tuple(weights.shape)).encode())
        for piece in _pieces(weights, 4096):  # weights are read (or drawn) a block at a time
            h.update(_rows(piece).tobytes())
        h.update(repr((self.screen, chunk)).encode())
        return h.hexdigest()


_RUN_OPTIONS = ("threads", "backend", "progress")  # per call; everything else belongs to the problem


def screen_scores(job: Job, weights: np.ndarray) -> np.ndarray:
    """Objective value of every grid start on every weight row, (R, S): ``weights @ rho(residuals).T``
    (for the Huber likelihood without its constant log Z(delta) per run, which does not change the ranking).
    Computed a block of starts at a time, so memory beyond the (R, S) scores is one block (2^21 start x run
    cells: Hoffmann's 4500 starts x 240 runs are one block) and, for grids of up to 2^23 cells, their
    predictions (kept per process)."""
    S, n = job.starts.shape[0], job.data.n  # type: ignore[union-attr]  # set by Job.__post_init__
    step = _screen_step(S, n)
    scores = np.empty((weights.shape[0], S))
    for lo in range(0, S, step):
        hi = min(S, lo + step)
        scores[:, lo:hi] = _block_scores(job, weights, lo, hi)
    return scores


_SCREEN_BLOCK = 1 << 21  # start x run cells of one block of scores (one matrix product per block)
_PRED_BLOCK = 1 << 16  # start x run cells of one block of predictions (complex, one array per program node)


def _screen_step(S: int, n: int) -> int:
    return max(1, min(S, _SCREEN_BLOCK // max(1, n)))


def _block_scores(job: Job, weights: np.ndarray, lo: int, hi: int) -> np.ndarray:
    law = job.law
    pred = _grid_predictions(job, lo, hi)
    spec = job.problem.loss
    with np.errstate(all="ignore"):
        r = spec.residuals(pred, job.data)
        if spec.fits_sigma:  # Huber likelihood: rho(r / sigma) + log sigma
            scale = np.exp(job.starts[lo:hi, law.n_params - 1])[:, None]
            rho = spec.rho(r / scale) + np.log(scale)
        else:
            rho = spec.rho(r)
        # rows x starts; a start that is non-finite on a run with weight 0 stays usable
        finite = np.isfinite(rho)
        scores = weights @ np.where(finite, rho, 0.0).T
        if not finite.all():
            scores[(weights > 0) @ (~finite).T.astype(float) > 0] = np.inf
    return scores


_PRED_CACHE: dict = {}
_PRED_CACHE_CELLS = 1 << 23  # grids of up to this many start x run cells keep their predictions (64 MiB)


def _grid_predictions(job: Job, lo: int, hi: int) -> np.ndarray:
    """log L_hat at grid starts lo:hi and every run. A small grid's predictions are kept per process
    (workers see the same grid for every chunk); a large one is recomputed a block at a time."""
    from .compiler import program_predict

    def predict(a: int, b: int) -> np.ndarray:  # every node of the program is (starts, runs): a few at a time
        out = np.empty((b - a, n))
        step = max(1, _PRED_BLOCK // max(1, n))
        for c in range(a, b, step):
            d = min(b, c + step)
            out[c - a:d - a] = np.real(program_predict(job.law.program, job.data.features,  # type: ignore[union-attr]
                                                       job.starts[c:d]))
        return out

    S, n = job.starts.shape[0], job.data.n  # type: ignore[union-attr]  # set by Job.__post_init__
    if S * n > _PRED_CACHE_CELLS:
        return predict(lo, hi)
    key = (id(job.starts), job.starts.shape, id(job.data))
    hit = _PRED_CACHE.get(key)
    if hit is None or hit[0] is not job.starts or hit[1] is not job.data:
        _PRED_CACHE.clear()
        _PRED_CACHE[key] = hit = (job.starts, job.data, predict(0, S))
    return hit[2][lo:hi]


def fit_chunk(job: Job, weights, progress=None) -> dict:
    """Fit the rows ``weights`` (c, n) of ``job``; the best start of each row. Runs on a worker.
    ``weights`` may also be a piece of a row source (an object whose ``rows()`` gives them)."""
    weights = _rows(weights)
    opts = dict(job.options)
    if job.screen:
        S = job.starts.shape[0]
        k = min(job.screen, S)
        scores = screen_scores(job, weights)
        top = np.argsort(scores, axis=1, kind="stable")[:, :k]  # ties: lowest grid index first
        per_row = job.starts[top]  # (c, k, P)
        if job.seeds is not None and len(job.seeds):
            seeds = np.broadcast_to(job.seeds, (weights.shape[0],) + job.seeds.shape)
            per_row = np.concatenate([seeds, per_row], axis=1)
        bf = engine.minimize(job.problem, None, np.ascontiguousarray(per_row), weights=weights, keep="best",
                             progress=progress, **opts)
        nseed = 0 if job.seeds is None else len(job.seeds)
        bs = np.asarray(bf.best_start, dtype=np.int64)
        rows = np.arange(weights.shape[0])
        best_start = np.where(bs >= nseed, top[rows, np.clip(bs - nseed, 0, k - 1)], -1 - bs)  # or -(b+1): seed b
    else:
        bf = engine.minimize(job.problem, None, job.starts, weights=weights, keep="best", progress=progress,
                             **opts)
        best_start = np.asarray(bf.best_start, dtype=np.int64)
    return {"x": bf.x, "fun": bf.fun, "status": bf.status, "nit": bf.nit, "nfev": bf.nfev,
            "at_bound": bf.at_bound, "best_start": best_start, "n_success": np.asarray(bf.n_success)}


def _empty(R: int, n_free: int) -> dict:
    return {"x": np.full((R, n_free), np.nan), "fun": np.full(R, np.nan),
            "status": np.full(R, int(Status.NOT_RUN), dtype=np.int32), "nit": np.zeros(R, dtype=np.int32),
            "nfev": np.zeros(R, dtype=np.int32), "at_bound": np.zeros(R, dtype=np.int32),
            "best_start": np.full(R, -1, dtype=np.int64), "n_success": np.zeros(R, dtype=np.int64)}


def _load(path: str, fingerprint: str, R: int, n_free: int, nchunks: int):
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = str(f["fingerprint"])
            if stored == fingerprint:
                out = {k: f[k].copy() for k in _FIELDS}
                done = f["done"].copy()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"checkpoint {path!r} cannot be read ({type(err).__name__}: {err}); delete it or choose "
                         f"another checkpoint path") from None
    if stored != fingerprint:
        raise ValueError(f"checkpoint {path!r} belongs to a different problem (other data, weights, starts, "
                         f"options or chunk size); delete it or choose another checkpoint path")
    if out["x"].shape != (R, n_free) or done.shape != (nchunks,) or any(out[k].shape[:1] != (R,) for k in _FIELDS):
        raise ValueError(f"checkpoint {path!r} has the wrong shape for this problem")
    return out, done


def _tmp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.tmp-{os.getpid()}-"


def _check_checkpoint(path: str) -> None:
    """Fail before any work when the checkpoint cannot be written; remove stale temporaries of it."""
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path!r} is a directory; give a file name, such as "
                         f"{os.path.join(path, 'run.npz')!r}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write the checkpoint {path!r}: no directory {folder!r}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".npz", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise ValueError(f"cannot write the checkpoint {path!r}: {err.strerror or err}") from None
    _remove_stale(path)


def _remove_stale(path: str) -> None:
    """Temporary files of this checkpoint left by processes that no longer run (killed during a save)."""
    folder = os.path.dirname(path) or "."
    base = re.escape(os.path.basename(path))
    pattern = re.compile(rf"\.{base}\.tmp-(\d+)-.*\.npz|{base}\.tmp-(\d+)")  # the second: earlier versions
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if not m:
            continue
        pid = int(m.group(1) or m.group(2))
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _save(path: str, fingerprint: str, out: dict, done: np.ndarray) -> None:
    """Write the checkpoint atomically: a new temporary file (O_EXCL, random name) in the same directory,
    renamed over the old one, so a crash leaves the previous checkpoint intact. Raises OSError."""
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".npz", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, fingerprint=np.array(fingerprint), done=done, **out)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _try_save(path: str, fingerprint: str, out: dict, done: np.ndarray) -> bool:
    """_save, a failure turned into a warning: finished results are never lost to a failed save."""
    try:
        _save(path, fingerprint, out, done)
        return True
    except OSError as err:
        warnings.warn(f"could not save the checkpoint {path!r} ({err}); the finished rows are kept in memory "
                      f"and returned", RuntimeWarning, stacklevel=3)
        return False


def _check_chunk(chunk, R: int) -> int:
    if chunk is None:
        return max(1, min(R, 256))
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of rows, got {chunk!r}")
    return int(chunk)


def run(job: Job, weights, *, chunk: int | None = None, checkpoint: str | os.PathLike | None = None,
        checkpoint_every: float = 5.0, executor: cf.Executor | None = None, progress=None) -> engine.BatchFit:
    """Fit every row of ``weights`` (R, n) for ``job`` in chunks of ``chunk`` rows; the best start per row.

    weights : (R, n) array; an ``np.memmap`` is read one chunk at a time, so R can exceed memory. Or a row
        source such as :class:`lawfit.bootstrap.Resamples` (``shape`` and ``pieces(chunk)``, pieces with
        ``rows()``): each chunk's rows are drawn when it runs (by the worker, with an executor), so the weight
        matrix is never built.

    checkpoint : a file (.npz) that receives the finished chunks at most every ``checkpoint_every`` seconds,
        on Ctrl-C and at the end. If it exists and holds the same problem, its finished chunks are reused.
    executor : runs the chunks (``client.get_executor()`` for Dask, ``ray.util.ActorPool`` needs an adapter;
        any ``concurrent.futures.Executor``). Each chunk is one task; a task whose worker is lost is
        resubmitted. Without it, chunks run here, each on all cores.
    progress : True for a progress bar, or a callable(done_fits, total_fits).
    Raises :class:`Interrupted` on Ctrl-C, with the finished rows.
    """
    if not isinstance(weights, np.ndarray) and not hasattr(weights, "pieces"):
        weights = np.asarray(weights, dtype=np.float64)  # np.memmap stays on disk: read a chunk at a time
    if len(weights.shape) != 2:
        raise ValueError(f"weights must be a 2-d array (rows, runs), got shape {weights.shape}")
    R = weights.shape[0]
    chunk = _check_chunk(chunk, R)
    con = job.problem.constraints
    nchunks = math.ceil(R / chunk)
    path = os.fspath(checkpoint) if checkpoint is not None else None
    if path:
        _check_checkpoint(path)
    fp = job.fingerprint(weights, chunk) if path else ""
    if path and os.path.exists(path):
        out, done = _load(path, fp, R, con.n_free, nchunks)
    else:
        out, done = _empty(R, con.n_free), np.zeros(nchunks, dtype=bool)
    per_row = job.fits_per_row
    total = R * per_row
    report = _progress.resolve(progress)
    finished = int(sum(min(R, (c + 1) * chunk) - c * chunk for c in np.flatnonzero(done))) * per_row
    last_save = time.monotonic()

    def store(c: int, res: dict) -> None:
        nonlocal last_save, finished
        lo, hi = c * chunk, min(R, (c + 1) * chunk)
        for k in _FIELDS:
            out[k][lo:hi] = np.asarray(res[k]).reshape(out[k][lo:hi].shape)
        done[c] = True
        finished += (hi - lo) * per_row
        if report is not None:
            report(finished, total)
        if path and time.monotonic() - last_save >= checkpoint_every:
            _try_save(path, fp, out, done)
            last_save = time.monotonic()

    try:
        if executor is None:
            for c, piece in enumerate(_pieces(weights, chunk)):
                if done[c]:
                    continue
                inner = None
                if report is not None:
                    base = finished
                    def inner(d, t, base=base):
                        return report(base + d, total)
                store(c, fit_chunk(job, piece, progress=inner))
        else:
            _run_executor(executor, job, weights, chunk, done, store)
    except KeyboardInterrupt:
        saved = bool(path) and _try_save(path, fp, out, done)  # type: ignore[arg-type]  # path is a str here
        raise Interrupted(_batch(job, con, out), done.copy(), path if saved else None) from None
    if path:
        _try_save(path, fp, out, done)
    return _batch(job, con, out)


def _pieces(weights, chunk: int):
    """Consecutive blocks of ``chunk`` rows: views of an array, or a row source's pieces."""
    if hasattr(weights, "pieces"):
        yield from weights.pieces(chunk)
        return
    for lo in range(0, weights.shape[0], chunk):
        yield weights[lo:lo + chunk]


def _rows(piece) -> np.ndarray:
    if isinstance(piece, np.ndarray):
        return np.ascontiguousarray(piece, dtype=np.float64)
    return np.ascontiguousarray(piece.rows(), dtype=np.float64)


def _run_executor(executor: cf.Executor, job: Job, weights, chunk: int, done: np.ndarray, store) -> None:
    futures: dict = {}
    tries: dict = {}
    sent: dict = {}

    def submit(c: int) -> None:
        piece = sent[c]
        futures[executor.submit(fit_chunk, job, _rows(piece) if isinstance(piece, np.ndarray) else piece)] = c

    for c, piece in enumerate(_pieces(weights, chunk)):  # a row source's piece is sent, not its rows
        if not done[c]:
            sent[c] = piece
            submit(c)
    try:
        while futures:
            finished, _ = cf.wait(list(futures), timeout=0.2, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                c = futures.pop(fut)
                try:
                    res = fut.result()
                except (ValueError, TypeError):
                    raise  # a problem with the input: retrying cannot help
                except Exception:  # a lost worker (KilledWorker, BrokenProcessPool, ...): run the chunk again
                    tries[c] = tries.get(c, 0) + 1
                    if tries[c] > _RETRIES:
                        raise
                    submit(c)
                    continue
                sent.pop(c, None)
                store(c, res)
    finally:
        for fut in futures:
            fut.cancel()


def _batch(job: Job, con, out: dict) -> engine.BatchFit:
    x = out["x"]
    return engine.BatchFit(law=job.law, constraints=con, x=x, theta=con.full(x), fun=out["fun"],
                           status=out["status"], nit=out["nit"], nfev=out["nfev"], at_bound=out["at_bound"],
                           best_start=out["best_start"], n_success=out["n_success"])
