"""IsoFLOP methods (Hoffmann et al.'s Approaches 1 and 2) on synthetic data from a known Chinchilla law, on the
bundled runs, and from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import lawfit
from lawfit import allocation, isoflop
from lawfit.cli import main as cli

LAW = lawfit.laws.get("chinchilla")
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}  # alpha != beta: skewed profiles
SKEWED = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.45, "beta": 0.25}  # strongly skewed
BUDGETS = np.geomspace(1e18, 1e22, 9)


def truth(params):
    a, b, G = allocation.chinchilla_exponents(params)
    return float(a), float(b), lambda C: float(G) * (np.asarray(C) / 6.0) ** float(a)


def isoflop_table(params, *, half=0.5, k=11, drift=0.0, budgets=BUDGETS, noise=0.0, rng=None):
    """k model sizes per budget, log-spaced over +-``half`` decades around a centre that drifts ``drift``
    decades per decade of C away from the true N_opt (0 at the smallest budget); loss from the law."""
    _, _, nopt = truth(params)
    rows = []
    for C in budgets:
        centre = nopt(C) * 10 ** (drift * np.log10(C / budgets[0]))
        for u in np.linspace(-half, half, k):
            N = centre * 10**u
            rows.append((N, C / (6 * N), C))
    df = pd.DataFrame(rows, columns=["N", "D", "C"])
    df["loss"] = LAW.predict(df, params)
    if noise:
        df["loss"] *= np.exp(noise * rng.standard_normal(len(df)))
    return df


# ------------------------------------------------------------------------------------------ Approach 2


@pytest.mark.parametrize("params", [HOFFMANN, SKEWED], ids=["hoffmann", "skewed"])
@pytest.mark.parametrize("shape", isoflop.SHAPES)
def test_centred_sampling_recovers_the_exponent(params, shape):
    """Centred windows of +-0.5 decades: the parabola's vertex is off N_opt (alpha != beta), but by the same
    factor at every budget (the profile of loss - E has one shape up to scale), so a is exact."""
    a_true, b_true, nopt = truth(params)
    res = isoflop.approach2(isoflop_table(params), shape=shape)
    assert res.n_used == 9 and res.points["status"].eq("ok").all()
    assert abs(res.a - a_true) < 1e-3
    assert abs(res.a - a_true) < 1e-9  # exact up to rounding: the test above is not a loose one
    assert abs(res.b - b_true) < 1e-9  # D_opt = C / (6 N_opt): b = 1 - a
    offset = np.log(res.points["N_opt"] / nopt(res.points["C"]))
    assert np.ptp(offset) < 1e-9  # one constant vertex offset at every budget
    if shape == "parabola":
        assert abs(offset.iloc[0]) > 1e-3  # ... which is not zero: k_N is biased, a is not
    assert not res.notes


def test_off_centre_sampling_biases_the_parabola_and_the_cubic_and_interpolant_reduce_it():
    """Windows that drift off N_opt (0.1 decades per decade of C, as when sizes follow a guessed exponent
    0.1 too high) on a strongly skewed profile: measured biases in a."""
    a_true, _, _ = truth(SKEWED)
    data = isoflop_table(SKEWED, drift=0.1)
    bias = {s: isoflop.approach2(data, shape=s).a - a_true for s in isoflop.SHAPES}
    assert bias["parabola"] == pytest.approx(-6.69e-3, abs=2e-5)
    assert abs(bias["parabola"]) > 5e-3
    assert abs(bias["cubic"]) < 5e-4 and abs(bias["cubic"]) < abs(bias["parabola"]) / 10
    assert abs(bias["interpolant"]) < 5e-4 and abs(bias["interpolant"]) < abs(bias["parabola"]) / 10
    res = isoflop.approach2(data)
    assert res.n_used == 9
    assert any("drift" in n and "shape='cubic'" in n for n in res.notes)  # the bias is reported
    assert res.points["offset"].iloc[-1] < -0.5 < res.points["offset"].iloc[0]


def test_unbracketed_and_thin_budgets_are_flagged_and_never_used():
    a_true, _, nopt = truth(HOFFMANN)
    good = isoflop_table(HOFFMANN, budgets=BUDGETS[:6])
    rows = []
    C = BUDGETS[6]  # only two sizes
    rows += [(n, C) for n in nopt(C) * np.array([0.5, 2.0])]
    C = BUDGETS[7]  # sizes all far above N_opt: loss rises monotonically, the minimum lies below them
    rows += [(n, C) for n in nopt(C) * np.geomspace(8, 80, 6)]
    extra = pd.DataFrame(rows, columns=["N", "C"])
    extra["D"] = extra["C"] / (6 * extra["N"])
    extra["loss"] = LAW.predict(extra, HOFFMANN)
    C = BUDGETS[8]  # a hump: a parabola opening downwards
    hump = pd.DataFrame({"N": nopt(C) * np.geomspace(0.3, 3, 5), "C": C})
    hump["D"] = hump["C"] / (6 * hump["N"])
    hump["loss"] = 2.0 + 0.1 * np.array([0.0, 0.7, 1.0, 0.7, 0.0])
    res = isoflop.approach2(pd.concat([good, extra, hump], ignore_index=True))
    pts = res.points
    assert list(pts["status"]) == ["ok"] * 6 + ["too_few_runs", "unbracketed", "unbracketed"]
    assert list(pts["used"]) == [True] * 6 + [False] * 3
    assert "2 model sizes" in pts["note"][6] and "below the smallest sampled size" in pts["note"][7]
    assert "opens downwards" in pts["note"][8]
    assert pts["N_opt"][7] < pts["N_min"][7]  # the extrapolated minimum is reported, not used
    assert res.n_used == 6 and len(res.excluded) == 3
    assert abs(res.a - a_true) < 1e-9  # exactly the six good budgets
    assert any("3 of 9 budgets excluded" in n for n in res.notes)
    doc = res.to_dict()
    assert [b["status"] for b in doc["excluded"]] == ["too_few_runs", "unbracketed", "unbracketed"]
    json.dumps(doc, allow_nan=False)
    # a cubic needs 4 sizes; min_runs raises the bar
    three = isoflop_table(HOFFMANN, k=3, budgets=BUDGETS[6:7])
    cub = isoflop.approach2(pd.concat([good, three], ignore_index=True), shape="cubic")
    assert cub.points["status"].iloc[-1] == "too_few_runs" and "a cubic needs 4" in cub.points["note"].iloc[-1]
    with pytest.raises(ValueError, match="0 of 6 usable.*6 with too few runs"):
        isoflop.approach2(good, min_runs=12)
    with pytest.raises(ValueError, match="1 of 3 usable"):
        isoflop.approach2(pd.concat([good[good.C == BUDGETS[0]], extra], ignore_index=True))


def test_binned_budgets_with_a_tolerance():
    """Runs whose C scatter by up to +-3 % around nine budgets: exact grouping fails with a hint, a tolerance of
    7 % bins them (each bin spanning at most a factor 1.07), nominal budgets snap them."""
    a_true, _, _ = truth(HOFFMANN)
    rng = np.random.default_rng(5)
    df = isoflop_table(HOFFMANN)
    df["C"] = df["C"] * (1 + rng.uniform(-0.03, 0.03, len(df)))
    df["D"] = df["C"] / (6 * df["N"])
    df["loss"] = LAW.predict(df, HOFFMANN)
    with pytest.raises(ValueError, match="tolerance=0.1"):
        isoflop.approach2(df)
    res = isoflop.approach2(df, tolerance=0.07)
    pts = res.points
    assert len(pts) == 9 and pts["n_runs"].eq(11).all() and res.n_used == 9
    assert (pts["C_max"] / pts["C_min"]).max() <= 1.07
    np.testing.assert_allclose(pts["C"], BUDGETS, rtol=0.02)
    assert abs(res.a - a_true) < 5e-3
    snap = isoflop.approach2(df, budgets=BUDGETS, tolerance=0.05)
    np.testing.assert_array_equal(snap.points["C"], BUDGETS)
    assert snap.points["n_runs"].eq(11).all()
    np.testing.assert_array_equal(snap.runs["budget"], res.runs["budget"])
    far = isoflop.approach2(df, budgets=np.append(BUDGETS[:-1], 1e25), tolerance=0.05)
    assert any("11 runs lie farther" in n for n in far.notes) and len(far.points) == 8
    assert any("1 given budgets have no runs" in n for n in far.notes)
    # too wide a tolerance merges neighbouring budgets into fewer bins
    assert len(isoflop.approach2(df, tolerance=3.0).points) < 9


def test_fitting_d_as_well():
    a_true, b_true, _ = truth(HOFFMANN)
    res = isoflop.approach2(isoflop_table(HOFFMANN), d_opt="fit", shape="cubic")
    assert abs(res.a - a_true) < 1e-9 and abs(res.b - b_true) < 1e-9


# ------------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_seeded_and_its_intervals_cover_the_truth():
    a_true, b_true, nopt = truth(HOFFMANN)
    rng = np.random.default_rng(0)
    data = isoflop_table(HOFFMANN, k=15, half=0.6, noise=0.01, rng=rng)
    r1 = isoflop.approach2(data, bootstrap=400, seed=7)
    r2 = isoflop.approach2(data, bootstrap=400, seed=7)
    r3 = isoflop.approach2(data, bootstrap=400, seed=8)
    np.testing.assert_array_equal(r1.bootstrap.a, r2.bootstrap.a)
    assert not np.array_equal(r1.bootstrap.a, r3.bootstrap.a)
    assert r1.bootstrap.n_failed == 0 and r1.bootstrap.draws().shape == (400, 6)
    lo, hi = r1.ci(0.95)["a"]
    assert lo < r1.a < hi and r1.bootstrap.se["a"] > 0
    opt = r1.optimal([1e23])
    assert opt["N_opt_low"][0] < opt["N_opt"][0] < opt["N_opt_high"][0]
    # coverage over independent noisy data sets: 95 % intervals hold the true a in most of them
    hits = 0
    trials = 40
    for t in range(trials):
        d = isoflop_table(HOFFMANN, k=15, half=0.6, noise=0.01, rng=rng)
        lo, hi = isoflop.approach2(d, bootstrap=300, seed=t).ci(0.95)["a"]
        hits += lo <= a_true <= hi
    assert hits >= 0.85 * trials


def test_approach1_bootstrap_is_seeded():
    data = training_curves(HOFFMANN, sizes=25, points=30)
    r1 = isoflop.approach1(data, bootstrap=100, seed=3)
    r2 = isoflop.approach1(data, bootstrap=100, seed=3)
    np.testing.assert_array_equal(r1.bootstrap.a, r2.bootstrap.a)
    lo, hi = r1.ci()["a"]
    assert lo <= r1.a <= hi


# ------------------------------------------------------------------------------------------ Approach 1


def training_curves(params, sizes=40, points=60):
    """Idealised training curves: for each model size, the law's loss at token counts 1e6 to 1e15."""
    rows = [(N, D) for N in np.geomspace(1e7, 1e11, sizes) for D in np.geomspace(1e6, 1e15, points)]
    df = pd.DataFrame(rows, columns=["N", "D"])
    df["loss"] = LAW.predict(df, params)
    return df


@pytest.mark.parametrize("params", [HOFFMANN, SKEWED], ids=["hoffmann", "skewed"])
def test_approach1_recovers_the_exponents_from_training_curves(params):
    a_true, b_true, nopt = truth(params)
    res = isoflop.approach1(training_curves(params))
    assert res.method == "envelope" and res.n_runs == 40
    assert abs(res.a - a_true) < 1e-3 and abs(res.b - b_true) < 1e-3
    pts = res.points
    used = pts[pts["used"]]
    # envelope points lie within one size step (a factor 10^(4/39)) of the true optimum
    assert np.max(np.abs(np.log10(used["N_opt"] / nopt(used["C"])))) < 4 / 39
    # at the ends of the C range the winner is the smallest / largest model: not bracketed, excluded
    assert not pts["used"].iloc[0] and not pts["used"].iloc[-1]
    assert any("not bracketed" in n for n in res.notes)
    np.testing.assert_allclose(used["D_opt"], used["C"] / (6 * used["N_opt"]), rtol=1e-9)


def test_approach1_run_labels_and_bad_curves():
    df = training_curves(HOFFMANN, sizes=12, points=20)
    df["run"] = [f"m{i // 20}" for i in range(len(df))]
    res = isoflop.approach1(df)
    assert not any("grouped into curves by N" in n for n in res.notes)
    np.testing.assert_allclose(res.a, isoflop.approach1(df.drop(columns="run")).a, rtol=1e-12)
    bad = df.copy()
    bad.loc[25, "N"] = 3.0e9
    with pytest.raises(ValueError, match="run 'm1' has rows with different N"):
        isoflop.approach1(bad)
    dup = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"same compute \(rows 3 and 240"):
        isoflop.approach1(dup)


def test_approach1_with_final_losses_only_is_the_envelope_of_final_points():
    rng = np.random.default_rng(1)
    df = isoflop_table(HOFFMANN, noise=0.005, rng=rng)
    df["N"] *= np.exp(1e-6 * rng.standard_normal(len(df)))  # one row per run
    res = isoflop.approach1(df)
    assert res.method == "final-point envelope" and "final losses only" in res.notes[0]
    # the front by brute force: runs with a lower loss than every run of smaller C
    order = np.lexsort((df["loss"], df["C"]))
    best, front = np.inf, []
    for i in order:
        if df["loss"][i] < best:
            front.append(i)
            best = df["loss"][i]
    assert list(res.points["row"]) == front
    lnC, lnN = np.log(df["C"][front]), np.log(df["N"][front])
    assert res.a == pytest.approx(np.polyfit(lnC, lnN, 1)[0], rel=1e-10)


# --------------------------------------------------------------------------------- the bundled runs


@pytest.fixture(scope="module")
def chinchilla():
    return lawfit.datasets.chinchilla(drop_highest=5)


def test_three_approaches_on_the_bundled_runs(chinchilla, tmp_path):
    r1 = isoflop.approach1(chinchilla, mode="final", bootstrap=200, seed=0)
    r2 = isoflop.approach2(chinchilla, budgets=isoflop.HOFFMANN_BUDGETS, tolerance=0.15, bootstrap=200, seed=0)
    assert r2.n_used == 9 and 0.49 < r2.a < 0.54 and 0.47 < r1.a < 0.54
    table = isoflop.compare(chinchilla, 1e23, bootstrap=200, seed=0, mode="final", approach2=r2)
    assert list(table.index) == [1, 2, 3]
    a3 = allocation.chinchilla_exponents({"A": 477.8, "B": 2143.4, "alpha": 0.34731, "beta": 0.36717})[0]
    assert table.loc[3, "a"] == pytest.approx(a3, abs=1e-4)  # beta / (alpha + beta) at the reference optimum
    assert table.loc[1, "a"] == r1.a and table.loc[1, "a_low"] == r1.ci()["a"][0]  # same seed, same draws
    assert table.loc[2, "a"] == r2.a and np.isnan(table.loc[2, "seconds"]) and table.loc[3, "seconds"] > 0
    for k in (1, 2, 3):
        row = table.loc[k]
        assert row["a_low"] < row["a"] < row["a_high"] and row["N_opt_low"] < row["N_opt"] < row["N_opt_high"]
        assert row["a"] + row["b"] == pytest.approx(1.0)
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    from lawfit import plots

    path = tmp_path / "approaches.png"
    fig = plots.isoflop_approaches(r2, r1, None, budget=1e23, path=str(path))
    assert path.stat().st_size > 20_000 and len(fig.axes) == 2
    assert all(ax.get_xlabel() and ax.get_title() for ax in fig.axes)
    mpl.pyplot.close(fig)


# ----------------------------------------------------------------------------------------- bad input


def test_bad_input_names_the_column_and_row():
    df = isoflop_table(HOFFMANN)
    with pytest.raises(ValueError, match="no column 'N'"):
        isoflop.approach2(df.drop(columns="N"))
    with pytest.raises(ValueError, match="'D'.*or 'C'"):
        isoflop.approach2(df.drop(columns=["D", "C"]))
    bad = df.copy()
    bad.loc[4, "N"] = -1.0
    with pytest.raises(ValueError, match="column 'N'.*non-positive value -1 at row 4"):
        isoflop.approach2(bad)
    bad = df.copy()
    bad.loc[7, "loss"] = np.nan
    with pytest.raises(ValueError, match="column 'loss'.*non-finite value nan at row 7"):
        isoflop.approach1(bad)
    bad = df.astype({"C": object})
    bad.loc[2, "C"] = "lots"
    with pytest.raises(TypeError, match="column 'C'.*'lots' at row 2"):
        isoflop.approach2(bad)
    renamed = df.rename(columns={"N": "params"})
    assert isoflop.approach2(renamed, columns={"N": "params"}).n_used == 9
    for kwargs, words in (({"shape": "quartic"}, "shape must be one of"), ({"d_opt": "x"}, "d_opt"),
                          ({"tolerance": -1}, "tolerance"), ({"min_runs": 2}, "min_runs"),
                          ({"bootstrap": 0}, "bootstrap"), ({"columns": {"X": "N"}}, "unknown names"),
                          ({"budgets": [0.0]}, "budgets")):
        with pytest.raises(ValueError, match=words):
            isoflop.approach2(df, **kwargs)
    with pytest.raises(ValueError, match="level"):
        isoflop.approach2(df, bootstrap=10, seed=0).ci(1.5)
    with pytest.raises(ValueError, match="no bootstrap"):
        isoflop.approach2(df).ci()
    with pytest.raises(ValueError, match="mode"):
        isoflop.approach1(df, mode="x")


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("isoflop") / "runs.csv"
    isoflop_table(HOFFMANN).rename(columns={"N": "params", "loss": "val_loss"}).drop(columns="D").to_csv(
        path, index=False)
    return path


def test_cli_json(csv, capsys):
    a_true, b_true, _ = truth(HOFFMANN)
    args = ["isoflop", str(csv), "--map", "N=params", "--map", "loss=val_loss", "--bootstrap", "200", "--seed",
            "1", "--level", "0.9", "--budget", "1e23", "--json", "-"]
    assert cli(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "lawfit.isoflop/1" and doc["approach"] == 2 and doc["method"] == "parabola"
    assert doc["a"] == pytest.approx(a_true, abs=1e-9) and doc["b"] == pytest.approx(b_true, abs=1e-9)
    assert set(doc["ci"]) == {"a", "b"} and doc["ci"]["a"][0] <= doc["a"] <= doc["ci"]["a"][1]
    assert doc["bootstrap"]["n"] == 200 and doc["bootstrap"]["seed"] == 1 and doc["bootstrap"]["level"] == 0.9
    assert len(doc["budgets"]) == 9 and doc["excluded"] == [] and doc["allocation"][0]["C"] == 1e23
    assert cli(args) == 0
    assert json.loads(capsys.readouterr().out) == doc  # seeded


def test_cli_text_and_approach_1(csv, capsys, tmp_path):
    assert cli(["isoflop", str(csv), "--map", "N=params", "--map", "loss=val_loss", "--shape", "cubic",
                "--budget", "1e22"]) == 0
    out = capsys.readouterr().out
    assert "Approach 2 (IsoFLOP profiles), cubic" in out and "C = 1e+22" in out
    nominal = ",".join(f"{c:.17g}" for c in BUDGETS)
    assert cli(["isoflop", str(csv), "--map", "N=params", "--map", "loss=val_loss", "--nominal", nominal,
                "--tolerance", "0.01", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["options"]["budgets"] == pytest.approx(list(BUDGETS), rel=1e-15) and doc["n_used"] == 9
    target = tmp_path / "a1.json"
    assert cli(["isoflop", str(csv), "--map", "N=params", "--map", "loss=val_loss", "--approach", "1",
                "--json", str(target)]) == 0
    doc = json.loads(target.read_text())
    assert doc["approach"] == 1 and doc["method"] == "final-point envelope" and "points" in doc


def test_cli_errors_exit_2_with_one_line(csv, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "lawfit", "isoflop", *args], capture_output=True, text=True,
                              timeout=120)

    out = run(str(csv))  # the file's columns are params and val_loss
    assert out.returncode == 2 and "no column 'N'" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("lawfit: error:")
    bad = tmp_path / "bad.csv"
    bad.write_text("N,C,loss\n1e8,1e18,3.0\n2e8,1e18,2.9\n3e8,-1e18,2.8\n")
    out = run(str(bad))
    assert out.returncode == 2 and "column 'C'" in out.stderr and "row 2" in out.stderr
    out = run(str(csv), "--map", "N=params", "--map", "loss=val_loss", "--bootstrap", "0")
    assert out.returncode == 2 and "--bootstrap" in out.stderr


# ------------------------------------------------------------------------------ scaling of the grouping


def _bins_quadratic(C, width):
    """The greedy binning as first written (one pass over all free values per bin): the reference."""
    lc = np.log(C)
    order = np.argsort(lc, kind="stable")
    s = lc[order]
    free = np.ones(s.size, dtype=bool)
    label_sorted = np.full(s.size, -1)
    bins = []
    while free.any():
        idx = np.flatnonzero(free)
        v = s[idx]
        hi = np.searchsorted(v, v + width * (1 + 1e-12), side="right")
        i = int(np.argmax(hi - np.arange(v.size)))
        members = idx[i:hi[i]]
        label_sorted[members] = len(bins)
        bins.append(float(np.exp(np.mean(s[members]))))
        free[members] = False
    values = np.array(bins)
    rank = np.argsort(values, kind="stable")
    relabel = np.empty_like(rank)
    relabel[rank] = np.arange(rank.size)
    label = np.empty(s.size, dtype=int)
    label[order] = relabel[label_sorted]
    return label, values[rank]


def _nearest_quadratic(C, budgets, width):
    lc = np.log(C)
    b = np.unique(np.asarray(budgets, dtype=float))
    dist = np.abs(lc[:, None] - np.log(b)[None, :])
    near = np.argmin(dist, axis=1)
    label = np.where(dist[np.arange(lc.size), near] <= width * (1 + 1e-12), near, -1)
    keep = np.flatnonzero(np.bincount(label[label >= 0], minlength=b.size) > 0)
    remap = np.full(b.size, -1)
    remap[keep] = np.arange(keep.size)
    return np.where(label >= 0, remap[np.maximum(label, 0)], -1), b[keep]


@pytest.mark.parametrize("case", range(60))
def test_grouping_equals_the_quadratic_greedy(case):
    """The O(n log n) binning makes exactly the bins of the original greedy (densest window first, ties to the
    lower C), on clustered, uniform, tied and tiny inputs; snapping to budgets picks the same nearest one."""
    import math

    rng = np.random.default_rng(case)
    kind = case % 4
    n = int(rng.integers(1, 400))
    if kind == 0:  # budgets with a scatter in C
        centres = np.geomspace(1e18, 1e22, int(rng.integers(1, 12)))
        C = rng.choice(centres, n) * (1 + rng.uniform(-0.05, 0.05, n))
    elif kind == 1:  # no structure
        C = 10 ** rng.uniform(18, 22, n)
    elif kind == 2:  # many exact ties
        C = rng.choice(10 ** rng.uniform(18, 19, 7), n)
    else:  # a fine lattice: many equally dense windows
        C = np.exp(np.round(rng.uniform(0, 2, n), 1)) * 1e20
    tol = float(rng.choice([0.0, 0.01, 0.05, 0.1, 0.3, 1.0]))
    width = math.log1p(max(tol, isoflop._EXACT))
    got = isoflop._bin_budgets(C, tol, None)
    ref = _bins_quadratic(C, width)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    budgets = 10 ** rng.uniform(18, 22, int(rng.integers(1, 10)))
    if case % 5 == 0:
        budgets = np.append(budgets, np.sqrt(budgets[0] * C[0]) ** 2 / C[0])  # a run midway between two budgets
    got = isoflop._bin_budgets(C, tol, budgets)
    ref = _nearest_quadratic(C, budgets, width)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])


def test_bootstrap_in_blocks_equals_one_block(monkeypatch):
    """Approach 1 and 2 bootstraps run in blocks of resamples: the draws and results do not depend on the
    block size (a block of one resample and one block of all of them agree bit for bit)."""
    rng = np.random.default_rng(1)
    data = isoflop_table(HOFFMANN, k=9, half=0.6, noise=0.01, rng=rng)
    curves = training_curves(HOFFMANN, sizes=8, points=12)
    out = {}
    for block in (1, 200, 10**9):
        monkeypatch.setattr(isoflop.resampling, "_BOOT_BLOCK", block)
        out[block] = [isoflop.approach2(data, bootstrap=37, seed=4).bootstrap.draws(),
                      isoflop.approach2(data, bootstrap=37, seed=4, d_opt="fit", shape="cubic").bootstrap.draws(),
                      isoflop.approach1(curves, bootstrap=37, seed=4, n_grid=50).bootstrap.draws(),
                      isoflop.approach1(data, mode="final", bootstrap=37, seed=4).bootstrap.draws()]
    for block in (1, 200):
        for a, b in zip(out[block], out[10**9]):
            pd.testing.assert_frame_equal(a, b)
