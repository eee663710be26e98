"""lawfit.backtest: fits on the runs below a compute cut, errors on the runs above it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import lawfit
from lawfit.backtest import errors

RUNS = lawfit.datasets.chinchilla(drop_highest=5)


@pytest.fixture(scope="module")
def bt():
    return lawfit.backtest(["chinchilla", "kaplan"], RUNS, holdout=0.2)


def test_parameters_are_the_fit_on_the_training_runs_and_errors_recompute(bt):
    C = RUNS["C"].to_numpy()
    test = np.zeros(len(RUNS), dtype=bool)
    test[np.argsort(C, kind="stable")[-48:]] = True  # the 20 % of largest compute
    for law in ("chinchilla", "kaplan"):
        key = (law, "default", None)
        ref = lawfit.fit(law, RUNS.loc[~test].reset_index(drop=True))
        assert bt.fits[key].params == ref.params
        df = bt.predictions[key]
        np.testing.assert_array_equal(df["observed"].to_numpy(), RUNS["loss"].to_numpy()[test])
        pred = lawfit.laws.get(law).predict(RUNS.loc[test], ref.params)
        np.testing.assert_allclose(df["predicted"].to_numpy(), pred, rtol=1e-13)
        row = bt.table[bt.table["law"] == law].iloc[0]
        r = pred / df["observed"].to_numpy() - 1
        assert row["mape"] == pytest.approx(100 * np.mean(np.abs(r)), rel=1e-12)
        assert row["bias"] == pytest.approx(100 * np.mean(r), rel=1e-12)
        assert row["worst"] == pytest.approx(100 * np.max(np.abs(r)), rel=1e-12)
        assert row["log_error"] == pytest.approx(np.mean(np.abs(np.log(pred / df["observed"].to_numpy()))))
        assert row["n_train"] == 192 and row["n_test"] == 48


def test_rolling_origin_protocols_and_intervals():
    res = lawfit.backtest("chinchilla", RUNS, budget=[3e20, 3e21], bootstrap=200, seed=0, starts="hoffmann",
                          protocols=[{"name": "huber"}, {"name": "raw squared", "loss": "squared",
                                                         "residual": "linear"}])
    t = res.table
    assert len(t) == 4 and set(t["protocol"]) == {"huber", "raw squared"}
    for _, row in t.iterrows():
        assert row["n_test"] == int(np.sum(RUNS["C"].to_numpy() >= row["cut"]))
        for m in ("mape", "log_error", "worst"):
            assert row[f"{m}_lo"] <= row[m] * (1 + 1e-12) + 1e-12 and row[m] <= row[f"{m}_hi"] * (1 + 1e-12)
    doc = res.to_dict()
    assert doc["schema"] == "lawfit.backtest/1" and len(doc["results"]) == 4
    assert set(doc["results"][0]) >= {"mape", "log_error", "bias", "worst", "mape_ci", "n_train", "n_test", "params"}
    json.dumps(doc)


def test_intervals_that_refit_the_training_resamples():
    res = lawfit.backtest("chinchilla", RUNS, holdout=0.2, bootstrap=100, seed=3, resample="both")
    row = res.table.iloc[0]
    fitted = res.fits[("chinchilla", "default", None)]
    boot = fitted.bootstrap
    assert boot is not None and len(boot.params["E"]) == 100 and row["n_refits"] == 100
    # the interval recomputes from the refits' predictions on the held-out runs (the pairing of refits with
    # held-out resamples does not matter for this check: the worst error over all held-out runs per refit
    # bounds the interval's upper end)
    test = res.predictions[("chinchilla", "default", None)]
    obs = test["observed"].to_numpy()
    held = RUNS.iloc[np.sort(np.argsort(RUNS["C"].to_numpy(), kind="stable")[-48:])]
    np.testing.assert_array_equal(held["loss"].to_numpy(), obs)
    worst = [np.max(np.abs(lawfit.laws.get("chinchilla").predict(held, {k: v[b] for k, v in boot.params.items()})
                           / obs - 1)) * 100 for b in range(100)]
    assert row["worst_hi"] <= max(worst) * (1 + 1e-12)
    assert row["mape_lo"] <= row["mape"] <= row["mape_hi"]
    # refitting adds the fit's own uncertainty: the bias interval is wider than with the fit held fixed
    fixed = lawfit.backtest("chinchilla", RUNS, holdout=0.2, bootstrap=100, seed=3).table.iloc[0]
    assert row["bias_hi"] - row["bias_lo"] > fixed["bias_hi"] - fixed["bias_lo"]
    assert res.to_dict()["results"][0]["n_refits"] == 100
    assert row["unidentified"] == "" and res.to_dict()["results"][0]["unidentified"] is None
    with pytest.raises(ValueError, match="resample must be"):
        lawfit.backtest("chinchilla", RUNS, bootstrap=10, resample="train")


def test_errors_helper():
    e = errors(np.array([1.1, 0.9]), np.array([1.0, 1.0]))
    assert e["mape"] == pytest.approx(10.0) and e["bias"] == pytest.approx(0.0) and e["worst"] == pytest.approx(10.0)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="leaves 3 training runs for 5 free parameters"):
        lawfit.backtest("chinchilla", RUNS.iloc[:15], holdout=0.8)
    with pytest.raises(ValueError, match="leaves 3 training runs for 4 free parameters"):  # a tie frees one
        lawfit.backtest("chinchilla", RUNS.iloc[:15], holdout=0.8, tie={"beta": "alpha"})
    with pytest.raises(ValueError, match="holds out no runs"):
        lawfit.backtest("chinchilla", RUNS, budget=1e40)
    with pytest.raises(ValueError, match="unknown law 'chinchila'.*chinchilla"):
        lawfit.backtest("chinchila", RUNS)
    with pytest.raises(ValueError, match="holdout must be a fraction"):
        lawfit.backtest("chinchilla", RUNS, holdout=1.5)
    cols = {k: RUNS[k].to_numpy() for k in ("N", "D", "loss")}
    with pytest.raises(ValueError, match="the loss column has 239 values but the compute of 240 runs"):
        lawfit.backtest("chinchilla", dict(cols, loss=cols["loss"][:-1]))
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\), got 95"):
        lawfit.backtest("chinchilla", RUNS, bootstrap=10, level=95)
    with pytest.raises(ValueError, match="bootstrap must be a non-negative number"):
        lawfit.backtest("chinchilla", RUNS, bootstrap=2.5)


def test_a_fit_whose_coefficient_underflows_still_predicts():
    # 5 training runs for 5 parameters: the fit is not identified (the row says along what), and its natural
    # A may underflow; the held-out predictions come from the internal parameters
    with pytest.warns(lawfit.LawfitWarning):
        res = lawfit.backtest("chinchilla", RUNS.iloc[:12], holdout=0.2, protocols=[{"drop_highest": 5}])
    row = res.table.iloc[0]
    assert row["n_train"] == 5 and row["unidentified"] != "" and np.isfinite(row["mape"])


def test_command_line(tmp_path):
    csv = tmp_path / "runs.csv"
    RUNS.to_csv(csv, index=False)
    out = tmp_path / "bt.json"
    p = subprocess.run([sys.executable, "-m", "lawfit", "backtest", str(csv), "--laws", "chinchilla,kaplan",
                        "--holdout", "0.2", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "lawfit.backtest/1" and [r["law"] for r in doc["results"]] == ["chinchilla", "kaplan"]
    assert "chinchilla" in p.stdout and "mape" in p.stdout
    p = subprocess.run([sys.executable, "-m", "lawfit", "backtest", str(csv), "--bootstrap", "20", "--resample",
                        "both", "--json", "-"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    row = json.loads(p.stdout)["results"][0]
    assert row["n_refits"] == 20 and row["mape_ci"][0] <= row["mape"] <= row["mape_ci"][1]
    p = subprocess.run([sys.executable, "-m", "lawfit", "backtest", str(csv), "--laws", "broken_power_law_C"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "[poorly determined along log_f1]" in p.stdout
    assert "lawfit: warning: the data do not identify the fit along log_f1" in p.stderr
    assert "IdentifiabilityWarning" not in p.stderr  # one line, not Python's warning format
    p = subprocess.run([sys.executable, "-m", "lawfit", "backtest", str(csv), "--laws", "nolaw"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "unknown law" in p.stderr and "Traceback" not in p.stderr


def test_figure(bt, tmp_path):
    pytest.importorskip("matplotlib")
    fig = bt.plot(tmp_path / "bt.png")
    assert (tmp_path / "bt.png").stat().st_size > 0 and len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_dataset_registry():
    assert "chinchilla" in lawfit.datasets.available()
    meta = lawfit.datasets.info("chinchilla")
    df = lawfit.datasets.load("chinchilla")
    assert len(df) == meta.n_rows and list(df.columns) == list(meta.columns)
    assert "arXiv:2404.10102" in meta.citation and meta.licence and "chinchilla" in str(meta)
    assert len(lawfit.datasets.load("chinchilla", drop_highest=5)) == 240
    with pytest.raises(ValueError, match="unknown data set 'nope'; bundled: chinchilla"):
        lawfit.datasets.info("nope")
    for name in lawfit.datasets.available():  # every law of the catalogue on every data set with N, D, C
        data = lawfit.datasets.load(name)
        if "loss" not in data.columns:  # downstream sets carry task metrics, not a loss
            continue
        res = lawfit.backtest("chinchilla", data, holdout=0.2)
        assert res.table["success"].all()


def test_law_suite_runs_every_law_on_every_loss_data_set():
    """benchmarks/law_suite.py keeps working: one row per (data set, law with those variables), each a
    successful backtest or a row that says why the law is not identified."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "law_suite.py"
    spec = importlib.util.spec_from_file_location("law_suite", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = mod.run()
    names = [n for n, _ in mod.cases()]
    assert set(table["dataset"]) == set(names) and "chinchilla" in names and "gadre2024/c4" in names
    for name, runs in mod.cases():
        part = table[table["dataset"] == name]
        assert sorted(part["law"]) == sorted(mod.laws_for(runs.columns))
        failed = part[~part["success"].astype(bool)]
        assert failed["note"].str.contains("not identified|distinct point").all(), failed
        assert part["success"].astype(bool).sum() >= len(part) - 1
        row = part[part["law"] == "chinchilla"].iloc[0]
        assert row["success"] and 0 < row["mape"] < 5 and row["unidentified"] == ""
    # the broken power law's sharpness runs off to 0 on Hoffmann's runs: the row names it
    row = table[(table["dataset"] == "chinchilla") & (table["law"] == "broken_power_law_C")].iloc[0]
    assert row["unidentified"] == "log_f1" and "log_f1" in row["note"]
