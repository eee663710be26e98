"""The robustness battery: hypothesis fuzzing of the public API and of the extension boundary, concurrent calls
from several Python threads, extreme magnitudes, duplicate rows and single-run edge cases. One concept per file:

- test_data.py: malformed data (cells, dtypes, shapes, containers, missing columns) to fit and evaluate;
- test_options.py: malformed options, starts, weights and parameter arrays to fit, minimize, evaluate, bootstrap
  and the allocation;
- test_laws.py: user laws from random expressions, garbage law text, the Param and Law constructors;
- test_core_boundary.py: raw arguments to lawfit._core (programs, arrays, scalars), and the regressions found there;
- test_concurrency.py: concurrent calls from several Python threads;
- test_magnitudes.py: N and D up to 1e15, losses from 1e-300 to 1e300;
- test_duplicates_and_single_runs.py: duplicate rows and single-run edge cases;
- test_forecasts.py: malformed input to lawfit.backtest and lawfit.downstream (fit, forecast, backtest);
- test_battery.py: the battery's size (``CASES``).

helpers.py holds what they share: the ``fuzz`` settings and ``CASES``, ``rejected``, the byte-string choices
(``Src``), the laws, starts and synthetic data, the checks of a valid result, and the extension's arguments. The
deterministic regressions the battery found in the Python layer are pinned in tests/test_errors.py.

The fuzz property, for every generated case: the call returns a valid result (right shapes, every status a
lawfit.Status, objectives >= 0, converged fits finite, parameters inside their bounds, fixed ones fixed) or
raises ValueError or TypeError with a message. Any other exception fails the test; a crash in the compiled
core (the extension boundary is fuzzed in-process) fails the run loudly. Warnings are errors (pyproject), so
a stray numpy RuntimeWarning counts as a failure too.

Reproducibility. Every fuzz test runs with ``derandomize=True`` and ``database=None``: the examples come from a
seed hashed from the test function, so CI runs the same cases every time (until the test or hypothesis changes), a
failure reproduces on any machine from the test name alone, and no example database is written into the checkout.
The price is that CI never explores new cases; ``LAWFIT_FUZZ=explore pytest tests/fuzz`` (or the whole suite
under ``pytest --hypothesis-profile=explore``, tests/conftest.py) runs ten times as many random (not
derandomized) cases for that. The cases are tiny (a few runs, one or two starts, a handful of iterations) so that
more than 10,000 of them (``CASES``) run in well under a minute.

This directory is a package (``fuzz``), so its modules import ``fuzz.helpers`` as tests/test_errors.py does:
pytest puts tests/ on sys.path, as for tests/reference.py.
"""
