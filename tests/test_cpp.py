"""The C++ core's own tests (cpp/tests/), built with CMake and run by CTest.

One CMake configure and build per test session (``-DLAWFIT_BUILD_CPP_TESTS=ON`` in a temporary folder, the
core compiled as for the wheel), then one ``ctest -R`` per program:

- test_solver: the trust-region solver on synthetic laws (parameter recovery, bounds, fixed and tied parameters,
  the hard case of the trust-region subproblem at a saddle point, the status codes);
- test_program: validation and analysis of law programs;
- test_batch: run_batch bit-identical for 1, 2, 3 and all threads in both output modes, evaluate_batch equal to
  single evaluations.

The exp/log test (vecmath) is registered with CTest too; tests/test_vecmath.py builds and runs it for the
default target and for AVX2 + FMA, so it is not run again here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ["solver", "program", "batch"]
CMAKE = shutil.which("cmake")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CMAKE is None or CXX is None, reason="needs cmake and a C++ compiler to build the C++ tests"),
    pytest.mark.skipif(not (ROOT / "cpp" / "tests").is_dir(), reason="needs the C++ sources"),
]


def _ctest() -> str:
    beside = Path(CMAKE).with_name("ctest")  # the ctest of the same CMake
    return str(beside) if beside.exists() else (shutil.which("ctest") or "ctest")


@pytest.fixture(scope="session")
def cpp_build(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("cpp-tests")
    configure = [CMAKE, "-S", str(ROOT), "-B", str(build), "-DLAWFIT_BUILD_CPP_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"]
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    run = subprocess.run(configure, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    run = subprocess.run([CMAKE, "--build", str(build), "--parallel", str(os.cpu_count() or 1), "--target",
                          *[f"test_{name}" for name in PROGRAMS]], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    return build


def test_ctest_registers_every_program(cpp_build):
    run = subprocess.run([_ctest(), "-N"], cwd=cpp_build, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in [*PROGRAMS, "vecmath"]:
        assert f": {name}\n" in run.stdout, run.stdout
    assert f"Total Tests: {len(PROGRAMS) + 1}" in run.stdout, run.stdout


@pytest.mark.parametrize("name", PROGRAMS)
def test_cpp_program(cpp_build, name):
    run = subprocess.run([_ctest(), "-R", f"^{name}$", "--verbose", "--timeout", "120"], cwd=cpp_build,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "100% tests passed" in run.stdout and "ALL CHECKS PASSED" in run.stdout, run.stdout[-6000:]
