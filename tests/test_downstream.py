"""Two-stage downstream prediction: NLL against compute, accuracy as a sigmoid of NLL, chained."""

from __future__ import annotations

import numpy as np
import pytest

import lawfit
from lawfit import downstream

TRUE1 = {"E": 0.4, "A": 3e3, "alpha": 0.2}
TRUE2 = {"floor": 0.25, "span": 0.7, "k": 6.0, "nll0": 1.2}


def _data(noise: float = 0.0, n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = np.geomspace(1e16, 1e23, n)
    nll = downstream.nll_law().predict({"C": C}, TRUE1) * np.exp(noise * rng.standard_normal(n))
    acc = downstream.sigmoid_law().predict({"nll": nll}, TRUE2) + noise * rng.standard_normal(n)
    return {"C": C, "nll": nll, "accuracy": np.clip(acc, 1e-3, 1.0)}


def test_recovers_both_stages_without_noise():
    res = downstream.fit(_data())
    assert res.stage1.success and res.stage2.success
    for k, v in TRUE1.items():
        assert res.stage1.params[k] == pytest.approx(v, rel=1e-6), k
    for k, v in TRUE2.items():
        assert res.stage2.params[k] == pytest.approx(v, rel=1e-6), k
    assert res.stage2.objective.residual == "linear"
    nll, acc = res.predict([1e25])
    truth = downstream.sigmoid_law().predict({"nll": downstream.nll_law().predict({"C": [1e25]}, TRUE1)}, TRUE2)
    assert acc[0] == pytest.approx(truth[0], rel=1e-8)


def test_joint_bootstrap_interval_and_noisy_recovery():
    res = downstream.fit(_data(noise=0.005, seed=3), bootstrap=200, seed=1)
    assert len(res.draws) >= 190
    f = res.forecast([1e24, 1e25])
    assert np.all(f["accuracy_lo"] <= f["accuracy"]) and np.all(f["accuracy"] <= f["accuracy_hi"])
    draws = np.array([[d[1][k] for k in TRUE2] for d in res.draws])
    se = draws.std(axis=0, ddof=1)
    for j, (k, v) in enumerate(TRUE2.items()):
        assert abs(res.stage2.params[k] - v) <= 3 * se[j] + 1e-9, (k, res.stage2.params[k], v, se[j])


def test_adjusted_interval_widens_the_percentile_interval_about_the_forecast():
    d = _data(noise=0.005, seed=4)
    res = downstream.fit(d, bootstrap=100, seed=2)
    assert res.n_runs == 60 and res.n_free == 7
    pct = res.forecast([1e24], interval="percentile")
    adj = res.forecast([1e24])
    draws = np.array([res.predict([1e24], s1, s2)[1][0] for s1, s2 in res.draws])
    assert pct["accuracy_lo"][0] == pytest.approx(np.quantile(draws, 0.025), rel=1e-12)
    widen = np.sqrt(60 / 53)
    for side in ("lo", "hi"):
        for name in ("nll", "accuracy"):
            expect = pct[name] + widen * (pct[f"{name}_{side}"] - pct[name])
            np.testing.assert_allclose(adj[f"{name}_{side}"], expect, rtol=1e-12)
    assert adj["accuracy_hi"][0] - adj["accuracy_lo"][0] > pct["accuracy_hi"][0] - pct["accuracy_lo"][0]
    with pytest.raises(ValueError, match="interval must be"):
        res.forecast([1e24], interval="bca")
    with pytest.raises(ValueError, match="level must"):
        res.forecast([1e24], level=95)


def test_batched_joint_bootstrap_equals_refitting_each_resample():
    d = _data(noise=0.005, seed=5)
    res = downstream.fit(d, bootstrap=30, seed=4)
    rng = np.random.default_rng(4)  # the same resamples, refitted one at a time with every grid start
    n = d["C"].size
    W = [np.bincount(rng.choice(n, n, replace=True), minlength=n).astype(float) for _ in range(30)]
    assert len(res.draws) == 30
    for w, (p1, p2) in zip(W, res.draws):
        r1, r2 = downstream._fit_stages(d["C"], d["nll"], d["accuracy"], w, stage1_starts=res.stage1.x[None, :])
        for k, v in r1.params.items():
            assert p1[k] == pytest.approx(v, rel=1e-6), k
        for k, v in r2.params.items():
            assert p2[k] == pytest.approx(v, rel=1e-6, abs=1e-9), k


def test_too_few_usable_resamples_warn_with_the_counts():
    d = {k: v[::12] for k, v in _data(noise=0.005, seed=2).items()}  # 5 runs: most resamples repeat one
    with pytest.warns(lawfit.warnings.ResampleWarning, match=r"only \d+ of 20 joint bootstrap resamples"):
        res = downstream.fit(d, bootstrap=20, seed=0)
    f = res.forecast([1e24])
    assert ("accuracy_lo" in f) == bool(res.draws)


def test_bad_input():
    d = _data()
    with pytest.raises(ValueError, match="accuracy must lie in"):
        downstream.fit(dict(d, accuracy=d["accuracy"] + 2))
    with pytest.raises(ValueError, match="at least 5 runs"):
        downstream.fit({k: v[:3] for k, v in d.items()})
    with pytest.raises(ValueError, match="task NLL"):
        downstream.fit({"C": d["C"], "accuracy": d["accuracy"]})
    with pytest.raises(ValueError, match="have 60, 59 and 60 values"):
        downstream.backtest(dict(d, nll=d["nll"][:-1]))
    assert lawfit.downstream is downstream


def test_command_line(tmp_path):
    import json
    import subprocess
    import sys

    import pandas as pd

    csv = tmp_path / "task.csv"
    pd.DataFrame(_data(noise=0.005, seed=3)).to_csv(csv, index=False)
    out = tmp_path / "d.json"
    p = subprocess.run([sys.executable, "-m", "lawfit", "downstream", str(csv), "--budget", "1e25", "--bootstrap",
                        "50", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "lawfit.downstream/1" and doc["n_bootstrap"] >= 45 and doc["interval"] == "adjusted"
    f = doc["forecasts"][0]
    assert f["accuracy_lo"] <= f["accuracy"] <= f["accuracy_hi"] and "accuracy" in p.stdout
    p = subprocess.run([sys.executable, "-m", "lawfit", "downstream", str(csv), "--cut", "1e22", "--cut", "1e21",
                        "--bootstrap", "30", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rows = json.loads(out.read_text())["backtest"]
    assert [r["cut"] for r in rows] == [1e22, 1e21] and isinstance(rows[0]["n_train"], int)
    assert 0 <= rows[0]["coverage"] <= 1 and "inside their intervals" in p.stdout


def test_same_seed_same_forecast_for_any_thread_count(monkeypatch):
    d = _data(noise=0.005, seed=6)
    out = []
    for n in ("1", "2", "3"):
        monkeypatch.setenv("LAWFIT_NUM_THREADS", n)
        res = downstream.fit(d, bootstrap=40, seed=9)
        bt = lawfit.backtest("saturating_C", {"C": d["C"], "loss": d["nll"]}, holdout=0.2, bootstrap=40, seed=9,
                             resample="both")
        out.append((res.forecast([1e24]), res.draws, bt.table))
    for f, draws, table in out[1:]:
        for k, v in out[0][0].items():
            np.testing.assert_array_equal(f[k], v)
        assert draws == out[0][1]
        assert table.equals(out[0][2])


def test_backtest_of_the_two_stage_forecast():
    ckpt = lawfit.datasets.pythia_lambada(deduped=False)
    ckpt = ckpt[ckpt["step"] >= 2000]
    with pytest.warns(lawfit.IdentifiabilityWarning, match="along e "):  # below 3e21 FLOP, E runs off to 0
        bt = downstream.backtest(ckpt, budget=[3e21, 1e22], bootstrap=100, seed=0)
    assert list(bt.table["cut"]) == [3e21, 1e22] and list(bt.table["n_test"]) == [29, 10]
    for _, row in bt.table.iterrows():
        p = bt.predictions[row["cut"]]
        r = p["accuracy_predicted"] / p["accuracy"] - 1
        assert row["mape"] == pytest.approx(100 * np.mean(np.abs(r)), rel=1e-12)
        assert row["bias"] == pytest.approx(100 * np.mean(r), rel=1e-12)
        inside = (p["accuracy_lo"] <= p["accuracy"]) & (p["accuracy"] <= p["accuracy_hi"])
        assert row["coverage"] == pytest.approx(inside.mean())
        assert row["n_train"] == int(np.sum(ckpt["C"] < row["cut"]))
    # below 3e21 FLOP the irreducible NLL is not identified: some draws have E = exp(log E) = 0, which has no
    # natural-scale log; they forecast from their internal parameters all the same
    fit = bt.fits[3e21]
    assert any(d[0]["E"] == 0.0 for d in fit.draws) and np.all(np.isfinite(bt.predictions[3e21]["accuracy_lo"]))
    with pytest.raises(ValueError, match="leaves 4 training runs; two-stage prediction needs at least 5"):
        downstream.backtest(ckpt, budget=float(np.sort(ckpt["C"])[4]))
    with pytest.raises(ValueError, match="holds out no runs"):
        downstream.backtest(ckpt, budget=1e30)


def test_stage_options_fix_what_the_runs_do_not_determine():
    ckpt = lawfit.datasets.pythia_lambada(deduped=False)
    ckpt = ckpt[(ckpt["step"] >= 2000) & (ckpt["C"] < 3e21)]
    # E is not identified below 3e21 FLOP (it runs off to 0); fixed, the fit is identified (no warning here,
    # where warnings are errors) and every draw keeps it
    res = downstream.fit(ckpt, bootstrap=50, seed=0, stage1={"fixed": {"E": 0.5}})
    assert res.stage1.params["E"] == 0.5 and res.n_free == 6
    assert all(d[0]["E"] == 0.5 for d in res.draws) and len(res.draws) >= 45
    b = downstream.fit(ckpt, stage1={"fixed": {"E": 0.5}}, stage2={"loss": "absolute"})  # residual kept linear
    assert b.stage2.objective.name == "absolute" and b.stage2.objective.residual == "linear"
    with pytest.raises(TypeError, match="stage1 must be a dict"):
        downstream.fit(ckpt, stage1="fixed")
    with pytest.raises(ValueError, match=r"stage2 cannot set \['weights'\]"):
        downstream.fit(ckpt, stage2={"weights": np.ones(len(ckpt))})
    with pytest.raises(TypeError, match="unexpected keyword"):
        downstream.fit(ckpt, stage1={"fixd": {"E": 0.5}})
