"""The C++ exp/log (cpp/include/lawfit/vecmath.hpp) against glibc: cpp/tests/test_vecmath.cpp, compiled here.

The kernels' accuracy claims (at most 1 ulp from glibc, IEEE special values, the array and scalar paths
agreeing, log_normal bit-identical to log on normal arguments) are checked by that program on 10M+
arguments per function. It is built twice: for baseline x86-64 (or the machine's default target), where the
lane masks come from sign bits, and, on a CPU with AVX2 and FMA, as the AVX2 kernels are built.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "cpp" / "tests" / "test_vecmath.cpp"
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


FLAG_SETS = [pytest.param(["-O2"], id="default-target")]
if platform.machine().lower() in ("x86_64", "amd64"):
    FLAG_SETS.append(pytest.param(
        ["-O3", "-mavx2", "-mfma"], id="avx2-fma",
        marks=pytest.mark.skipif(not _has_avx2_fma(), reason="this CPU lacks AVX2 or FMA")))


@pytest.mark.slow
@pytest.mark.skipif(CXX is None or not SOURCE.exists(), reason="needs a C++ compiler and the C++ sources")
@pytest.mark.parametrize("flags", FLAG_SETS)
def test_vecmath_program(tmp_path, flags):
    exe = tmp_path / "test_vecmath"
    build = subprocess.run([CXX, "-std=c++17", *flags, "-I", str(ROOT / "cpp" / "include"), str(SOURCE),
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe), "--no-bench"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "ALL CHECKS PASSED" in run.stdout, run.stdout[-3000:] + run.stderr
    assert "log_normal vs log" in run.stdout  # the check of the kernels' fast-path log ran
