"""Benchmark setup.

* Collect ``bench_*.py`` files in this folder, so that ``pytest benchmarks/ --benchmark-only`` finds them
  without changing the project's ``python_files`` (the default test run never looks here: ``testpaths``
  is ``tests``).
* Pin OpenBLAS to one thread (unless the caller set it) before NumPy loads. The scipy baseline calls
  L-BFGS-B, whose core makes many tiny BLAS calls; with OpenBLAS's default thread pool on a small, busy
  machine those calls cost milliseconds each and slow scipy down 20-40x, which would flatter lawfit.
  lawfit itself does not use BLAS (its workers are its own threads), so this changes only the baseline.
"""

from __future__ import annotations

import os
import sys

if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        # Files named on the command line are collected by pytest itself; do not collect them twice.
        if parent.session.isinitpath(file_path):
            return None
        return pytest.Module.from_parent(parent, path=file_path)
    return None
