"""Figures render, with labelled axes, from the API and the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lawfit

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
from lawfit import plots  # noqa: E402

START = np.array([[0.5973068, 6.1692464, 7.6701567, 0.3473105, 0.36717243]])


@pytest.fixture(scope="module")
def fitted():
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    return runs, lawfit.fit("chinchilla", runs, starts=START, bootstrap=200, seed=0)


def test_study_figure(fitted, tmp_path):
    runs, res = fitted
    path = tmp_path / "study.png"
    fig = plots.study(res, runs, str(path))
    assert path.stat().st_size > 20_000
    axes = fig.axes
    assert len(axes) == 6
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert axes[0].get_xscale() == "log" and axes[2].get_yscale() == "log" and axes[3].get_yscale() == "log"
    assert len(axes[1].get_legend().get_texts()) >= 3  # one line per compute budget
    mpl.pyplot.close(fig)


def test_corner_figure(fitted, tmp_path):
    _, res = fitted
    fig = plots.corner(res.bootstrap)
    assert len(fig.axes) == 15  # 5 parameters: 5 histograms + 10 pairs
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert {"log10 E", "log10 A", "log10 B", "alpha", "beta"} <= labels
    fig.savefig(tmp_path / "corner.pdf")
    assert (tmp_path / "corner.pdf").stat().st_size > 10_000
    mpl.pyplot.close(fig)


def test_cli_writes_figures(tmp_path):
    df = lawfit.datasets.chinchilla(drop_highest=5)
    csv = tmp_path / "runs.csv"
    df.to_csv(csv, index=False)
    out = subprocess.run([sys.executable, "-m", "lawfit", "fit", str(csv), "--bootstrap", "100", "--seed", "0",
                          "--starts", "hoffmann", "--plot", str(tmp_path / "s.png"), "--corner",
                          str(tmp_path / "c.png")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.png").stat().st_size > 20_000 and (tmp_path / "c.png").stat().st_size > 20_000
    bad = subprocess.run([sys.executable, "-m", "lawfit", "fit", str(csv), "--corner", str(tmp_path / "x.png")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--corner needs --bootstrap" in bad.stderr
