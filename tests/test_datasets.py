"""The bundled data sets: registry metadata agrees with the files, values are sane, licences ship, laws fit."""

from importlib import resources

import numpy as np
import pandas as pd
import pytest

import lawfit

NEW = ["gadre2024", "obsscaling", "pythia_lambada"]


def test_available_lists_bundled_sets():
    assert set(NEW + ["chinchilla"]) <= set(lawfit.datasets.available())
    assert lawfit.datasets.available() == sorted(lawfit.datasets.available())


@pytest.mark.parametrize("name", lawfit.datasets.available())
def test_info_matches_file(name):
    meta = lawfit.datasets.info(name)
    df = lawfit.datasets.load(name)
    assert list(df.columns) == list(meta.columns)
    assert len(df) == meta.n_rows
    for col in ("N", "D", "C"):
        v = df[col].to_numpy(dtype=float)
        assert np.all(np.isfinite(v)) and np.all(v > 0), f"{name}.{col}"
    # C is training FLOP = 6 N D in every bundled set
    np.testing.assert_allclose(df["C"], 6.0 * df["N"] * df["D"], rtol=1e-9)
    assert meta.source and meta.citation and meta.licence


@pytest.mark.parametrize("name", NEW)
def test_licence_ships_next_to_data(name):
    pkg = resources.files("lawfit.datasets")
    assert pkg.joinpath(f"{name}.csv").is_file()
    text = pkg.joinpath(f"LICENSE.{name}").read_text()
    if "MIT" in lawfit.datasets.info(name).licence:
        assert "Copyright (c) 2024 mlfoundations" in text and "Permission is hereby granted" in text
    else:
        assert "Apache License" in text and "Version 2.0" in text


def test_gadre2024_columns_and_groups():
    df = lawfit.datasets.load("gadre2024")
    assert sorted(df["dataset"].unique()) == ["c4", "rpj", "rw"]
    assert np.all(np.isfinite(df["loss"])) and np.all(df["loss"] > 0)
    assert np.all((df["err_avg"] > 0) & (df["err_avg"] < 1))
    # D = 20 M N: the token multiplier is over Chinchilla's 20 tokens per parameter
    np.testing.assert_allclose(df["D"], 20 * df["M"] * df["N"], rtol=1e-3)
    parts = [lawfit.datasets.gadre2024(dataset=d) for d in ("c4", "rpj", "rw")]
    assert sum(len(p) for p in parts) == len(df)
    assert all((p["dataset"] == d).all() for p, d in zip(parts, ("c4", "rpj", "rw")))
    with pytest.raises(ValueError, match="dataset must be one of c4, rpj, rw"):
        lawfit.datasets.gadre2024(dataset="pile")


def test_obsscaling_accuracies_in_unit_interval():
    df = lawfit.datasets.load("obsscaling")
    acc = df[["mmlu", "arc_c", "hellaswag", "winograd", "truthfulqa", "gsm8k", "xwinograd", "humaneval"]]
    present = acc.to_numpy()[~np.isnan(acc.to_numpy())]
    assert present.size > 0.9 * acc.size
    assert np.all((present >= 0) & (present <= 1))
    assert not df[["mmlu", "hellaswag", "winograd", "truthfulqa", "gsm8k"]].isna().any().any()
    assert df["model"].is_unique


@pytest.mark.parametrize("subset", ["c4", "rpj", "rw"])
def test_chinchilla_law_fits_gadre2024(subset):
    runs = lawfit.datasets.gadre2024(dataset=subset)
    res = lawfit.fit("chinchilla", runs)
    assert res.success
    p = res.params
    # loss falls with both N and D, towards an irreducible term below every observed loss
    assert p["alpha"] > 0 and p["beta"] > 0
    assert 0 < p["E"] < runs["loss"].min()


def test_power_law_fits_obsscaling_error():
    df = lawfit.datasets.load("obsscaling")
    runs = pd.DataFrame({"C": df["C"], "loss": 1.0 - df["hellaswag"]})
    res = lawfit.fit("power_law_C", runs)
    assert res.success
    assert res.params["alpha"] > 0  # benchmark error falls with training compute


def test_pythia_lambada_columns():
    df = lawfit.datasets.load("pythia_lambada")
    assert df.groupby("model").size().eq(26).all() and df["model"].nunique() == 16
    # non-embedding parameters of GPT-NeoX blocks: 70M has 6 layers of width 512, 12B 36 of width 5120
    n = df.groupby("model")["N"].first()
    assert n["pythia-70m"] == 6 * (12 * 512**2 + 13 * 512) + 2 * 512 == 18_915_328
    assert n["pythia-12b"] == 36 * (12 * 5120**2 + 13 * 5120) + 2 * 5120
    np.testing.assert_array_equal(df["D"], df["step"] * 2**21)
    assert np.all((df["accuracy"] >= 0) & (df["accuracy"] <= 1)) and np.all(df["nll"] > 0)
    std = lawfit.datasets.pythia_lambada(deduped=False)
    assert len(std) == 208 and (std["deduped"] == 0).all()
    with pytest.raises(ValueError, match="deduped must be"):
        lawfit.datasets.pythia_lambada(deduped="yes")


def test_two_stage_forecast_of_the_largest_pythia_runs():
    # fit both stages on the standard-Pile checkpoints below 1e22 FLOP (step >= 2000, where accuracy is no
    # longer zero) and forecast the 10 checkpoints above it (the last 12B and 6.9B ones)
    df = lawfit.datasets.pythia_lambada(deduped=False)
    df = df[df["step"] >= 2000]
    train, test = df[df["C"] < 1e22], df[df["C"] >= 1e22]
    res = lawfit.downstream.fit(train, bootstrap=200, seed=0)  # refits warn nothing (warnings are errors here)
    assert res.stage1.success and res.stage2.success and len(res.draws) >= 190
    assert res.stage1.params["alpha"] > 0  # the task NLL falls with compute
    f = res.forecast(test["C"].to_numpy())
    err = np.abs(f["accuracy"] / test["accuracy"].to_numpy() - 1)
    assert len(test) == 10 and err.mean() < 0.05
