"""Progress reporting and interruption of long batches."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lawfit
from lawfit import progress as _progress

GRID = {"e": [0.0, 0.5, 1.0], "a": [5.0, 10.0], "b": [5.0, 10.0], "alpha": [0.3, 0.6], "beta": [0.3, 0.6]}


@pytest.fixture(scope="module")
def runs():
    return lawfit.datasets.chinchilla(drop_highest=5)


def test_progress_callback_counts_every_fit_and_changes_nothing(runs):
    calls = []
    with_cb = lawfit.fit("chinchilla", runs, starts=GRID, progress=lambda d, t: calls.append((d, t)))
    plain = lawfit.fit("chinchilla", runs, starts=GRID)
    assert calls and calls[-1] == (48, 48)
    done = [d for d, _ in calls]
    assert done == sorted(done) and all(t == 48 for _, t in calls)
    assert np.array_equal(with_cb.start_fun, plain.start_fun)


def test_an_exception_in_the_callback_stops_the_batch(runs):
    def stop(done, total):
        raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        lawfit.fit("chinchilla", runs, starts="hoffmann", progress=stop)


def test_fallback_bar_reports_rate_and_time_left(capsys):
    bar = _progress._Bar("fits", delay=0.0)
    bar(10, 100)
    bar(100, 100)
    err = capsys.readouterr().err
    assert "100/100" in err or "100%" in err
    with pytest.raises(TypeError, match="progress"):
        _progress.resolve("yes")


def test_ctrl_c_stops_a_long_batch_within_a_second(tmp_path):
    script = tmp_path / "long.py"
    script.write_text(
        "import lawfit\n"
        "from lawfit.bootstrap import resample_weights\n"
        "runs = lawfit.datasets.chinchilla(drop_highest=5)\n"
        "w = resample_weights(240, 2000, seed=0)\n"
        "print('start', flush=True)\n"
        "lawfit.minimize('chinchilla', runs, 'hoffmann', weights=w)\n"  # 9 million fits: far over a minute
        "print('finished', flush=True)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 2.0
    assert proc.returncode != 0 and "finished" not in out and "KeyboardInterrupt" in err
