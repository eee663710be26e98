"""The command line, through its real entry point (python -m lawfit), as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import lawfit


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lawfit", *args], capture_output=True, text=True, timeout=300,
                          **kw)


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    """The bundled runs under other column names, as a user's own table might be."""
    df = lawfit.datasets.chinchilla(drop_highest=5)
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    df.rename(columns={"N": "params", "D": "tokens", "loss": "val_loss"}).to_csv(path, index=False)
    return path


MAP = ["--map", "N=params", "--map", "D=tokens", "--map", "loss=val_loss"]
OPTIMUM = {"E": 1.81722, "alpha": 0.347311, "beta": 0.367172}


def test_example_runs_the_bundled_study(tmp_path):
    out = run("example", cwd=tmp_path)  # it saves chinchilla_study.png in the working directory
    assert out.returncode == 0, out.stderr
    for words in ("objective 0.001018274018", "bootstrap: 4000 resamples", "compute-optimal allocation",
                  "C = 1e+23"):
        assert words in out.stdout, words


def test_fit_json_schema_with_bootstrap_and_budget(csv):
    out = run("fit", str(csv), *MAP, "--starts", "hoffmann", "--bootstrap", "200", "--seed", "3",
              "--budget", "1e23", "--level", "0.9", "--json", "-")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "lawfit.fit/1" and doc["law"] == "chinchilla" and doc["success"] is True
    assert doc["n_runs"] == 240 and doc["objective"] == pytest.approx(1.0182740178e-3, rel=1e-8)
    for k, v in OPTIMUM.items():
        assert doc["params"][k] == pytest.approx(v, rel=1e-4)
    boot = doc["bootstrap"]
    assert boot["n"] == 200 and boot["failed"] == 0 and boot["seed"] == 3 and boot["level"] == 0.9
    for k in ("E", "A", "B", "alpha", "beta"):
        lo, hi = boot["ci"][k]
        assert lo < doc["params"][k] < hi and boot["se"][k] > 0
    alloc = doc["allocation"][0]
    assert alloc["C"] == 1e23 and alloc["N_opt_low"] < alloc["N_opt"] < alloc["N_opt_high"]
    # the same run again gives the same document (seeded)
    again = json.loads(run("fit", str(csv), *MAP, "--starts", "hoffmann", "--bootstrap", "200", "--seed", "3",
                           "--budget", "1e23", "--level", "0.9", "--json", "-").stdout)
    assert again == doc


def test_fit_writes_json_file_and_prints_table(csv, tmp_path):
    target = tmp_path / "fit.json"
    out = run("fit", str(csv), *MAP, "--json", str(target), "--starts", "hoffmann")
    assert out.returncode == 0
    assert "E " in out.stdout and "alpha" in out.stdout
    assert json.loads(target.read_text())["params"]["E"] == pytest.approx(OPTIMUM["E"], rel=1e-4)


@pytest.mark.parametrize("args, words", [
    (["fit", "/no/such/file.csv"], "no such file"),
    (["fit", "{csv}"], "no column 'N'"),
    (["fit", "{csv}", "--map", "N"], "--map expects NAME=COLUMN"),
    (["fit", "{csv}", "--map", "N=params", "--map", "D=tokens", "--map", "loss=val_loss", "--law", "nope"],
     "unknown law"),
    (["fit", "{csv}", "--map", "N=params", "--map", "D=tokens", "--map", "loss=val_loss", "--bootstrap", "0"],
     "--bootstrap"),
    (["fit", "{csv}", "--map", "N=params", "--map", "D=tokens", "--map", "loss=val_loss", "--budget", "x"],
     "--budget"),
    (["fit", "{csv}", "--map", "N=params", "--map", "D=tokens", "--map", "loss=val_loss", "--level", "2"],
     "--level"),
])
def test_user_errors_give_one_line_and_status_2(csv, args, words):
    out = run(*[a.format(csv=csv) for a in args])
    assert out.returncode == 2
    assert words in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_cell_and_non_positive_value_are_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("N,D,loss\n1e8,1e10,3.0\n2e8,oops,2.9\n3e8,3e10,2.8\n")
    out = run("fit", str(path))
    assert out.returncode == 2 and "column 'D'" in out.stderr and "oops" in out.stderr
    path.write_text("N,D,loss\n1e8,1e10,3.0\n2e8,2e10,-2.9\n3e8,3e10,2.8\n")
    out = run("fit", str(path))
    assert out.returncode == 2 and "column 'loss'" in out.stderr and "row 1" in out.stderr


def test_laws_lists_the_catalogue():
    out = run("laws")
    assert out.returncode == 0
    assert all(name in out.stdout for name in lawfit.laws.available())
    assert np.all([line.count("L(") == 1 for line in out.stdout.strip().splitlines()])


def test_datasets_lists_describes_and_writes_bundled_data(tmp_path):
    out = run("datasets")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.strip().splitlines()] == lawfit.datasets.available()
    out = run("datasets", "gadre2024")
    assert out.returncode == 0 and "licence: MIT" in out.stdout and "arXiv:2403.08540" in out.stdout
    path = tmp_path / "g.csv"
    out = run("datasets", "gadre2024", "--csv", str(path))
    assert out.returncode == 0 and "104 rows" in out.stdout
    pd.testing.assert_frame_equal(pd.read_csv(path), lawfit.datasets.load("gadre2024"))  # exact round trip
    out = run("fit", str(path), "--starts", "hoffmann")  # the written table is a valid input
    assert out.returncode == 0, out.stderr
    out = run("datasets", "nope")
    assert out.returncode == 2 and "unknown data set 'nope'" in out.stderr and "chinchilla" in out.stderr
    out = run("datasets", "--csv", str(path))
    assert out.returncode == 2 and "needs a data set name" in out.stderr


def test_optimal_from_a_saved_fit(csv, tmp_path):
    saved = tmp_path / "fit.json"
    assert run("fit", str(csv), *MAP, "--starts", "hoffmann", "--json", str(saved)).returncode == 0
    out = run("optimal", str(saved), "--budget", "1e21", "--budget", "1e23", "--json", "-")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == "lawfit.optimal/1" and [r["C"] for r in doc["allocation"]] == [1e21, 1e23]
    params = json.loads(saved.read_text())["params"]
    want = lawfit.allocation.compute_optimal(params, [1e21, 1e23], law="chinchilla")
    np.testing.assert_allclose([r["N_opt"] for r in doc["allocation"]], want.N_opt, rtol=1e-12)
    table = run("optimal", str(saved), "--budget", "1e23")
    assert table.returncode == 0 and "C = 1e+23" in table.stdout
    for args, words in ((["optimal", str(saved)], "--budget"), (["optimal", str(csv), "--budget", "1e23"], "JSON"),
                        (["optimal", "/no/file.json", "--budget", "1e23"], "no such file")):
        bad = run(*args)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr


def test_derived_tokens_and_dropping_the_highest_losses(tmp_path):
    """The raw Chinchilla table has N, C and loss only: D comes from C = 6 N D; dropping the 5 highest losses
    gives Epoch's 240 runs and the reference optimum."""
    raw = lawfit.datasets.chinchilla()[["N", "C", "loss"]]
    path = tmp_path / "raw.csv"
    raw.to_csv(path, index=False)
    out = run("fit", str(path), "--drop-highest", "5", "--starts", "hoffmann", "--json", "-")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n_runs"] == 240 and doc["objective"] == pytest.approx(1.0182740178e-3, rel=1e-8)
    bad = run("fit", str(path), "--drop-highest", "500")
    assert bad.returncode == 2 and "every run" in bad.stderr


def test_plot_subcommand_and_backend_flag(csv, tmp_path):
    fig = tmp_path / "study.png"
    out = run("plot", str(csv), *MAP, "--plot", str(fig), "--quiet")
    assert out.returncode == 0, out.stderr
    assert fig.stat().st_size > 20_000
    assert run("plot", str(csv), *MAP).returncode == 2  # --plot is required
    bad = run("fit", str(csv), *MAP, "--backend", "cuda")
    assert bad.returncode == 2 and "backend='cuda' was requested but cannot run" in bad.stderr
    assert run("fit", str(csv), *MAP, "--backend", "cpu", "--quiet").returncode == 0


def test_example_writes_its_figure(tmp_path):
    out = run("example", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "figure: chinchilla_study.png" in out.stdout
    assert (tmp_path / "chinchilla_study.png").stat().st_size > 20_000


def test_ctrl_c_in_the_command_line(tmp_path):
    import signal
    import time

    big = tmp_path / "big.csv"
    df = lawfit.datasets.chinchilla(drop_highest=5)
    import pandas as pd

    pd.concat([df] * 50).to_csv(big, index=False)  # 12,000 runs: the Hoffmann grid takes tens of seconds
    proc = subprocess.Popen([sys.executable, "-m", "lawfit", "fit", str(big), "--starts", "hoffmann", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 2.0
    assert proc.returncode == 130 and "lawfit: interrupted" in err and "Traceback" not in err


def test_tokens_derived_from_a_mapped_flop_column(tmp_path):
    df = lawfit.datasets.chinchilla()
    path = tmp_path / "mine.csv"
    df.rename(columns={"N": "Model Size", "C": "Training FLOP", "loss": "final loss"})[
        ["Model Size", "Training FLOP", "final loss"]].to_csv(path, index=False)
    out = run("fit", str(path), "--map", "N=Model Size", "--map", "C=Training FLOP", "--map", "loss=final loss",
              "--drop-highest", "5", "--starts", "hoffmann", "--json", "-")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["objective"] == pytest.approx(1.0182740178e-3, rel=1e-8)
    missing = run("fit", str(path), "--map", "N=Model Size", "--map", "loss=final loss")
    assert missing.returncode == 2 and "--map C=COLUMN" in missing.stderr


def test_objective_options(csv):
    """--loss, --q, --residual, --reduction and --screen-starts reach the fit; the JSON says which objective."""
    out = run("fit", str(csv), *MAP, "--starts", "hoffmann", "--loss", "absolute", "--residual", "linear",
              "--reduction", "mean", "--json", "-", "--quiet")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["objective_spec"] == {"loss": "absolute", "residual": "linear", "reduction": "mean"}
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    ref = lawfit.fit("chinchilla", runs, starts="hoffmann", loss="absolute", residual="linear", reduction="mean")
    assert doc["objective"] == pytest.approx(ref.fun, rel=1e-12)
    out = run("fit", str(csv), *MAP, "--starts", "hoffmann", "--screen-starts", "16", "--json", "-", "--quiet")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["objective"] == pytest.approx(0.0010182740178, rel=1e-10)
    for bad, words in ((["--loss", "quantile", "--q", "1.5"], "q must lie strictly between 0 and 1"),
                       (["--residual", "raw"], "invalid choice"), (["--loss", "cauchy", "--c", "0"], "c must be")):
        out = run("fit", str(csv), *MAP, *bad)
        assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr


# ----------------------------------------------------------------------------------------------- files


def _one_line_error(out, *words):
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    for w in words:
        assert w in out.stderr, (w, out.stderr)


def test_an_output_that_is_an_input_is_refused(csv, tmp_path):
    before = csv.read_bytes()
    for args, words in ((["--json", str(csv)], "--json"), (["--json", f"{csv.parent}/./{csv.name}"], "--json"),
                        (["--bootstrap", "4", "--checkpoint", str(csv)], "--checkpoint"),
                        (["--plot", str(csv)], "--plot")):
        _one_line_error(run("fit", str(csv), *MAP, *args), words, "same file")
    assert csv.read_bytes() == before
    out = tmp_path / "o.json"
    _one_line_error(run("fit", str(csv), *MAP, "--json", str(out), "--corner", str(out), "--bootstrap", "4"),
                    "--corner", "same file as --json")
    fit = tmp_path / "fit.json"
    assert run("fit", str(csv), *MAP, "--json", str(fit)).returncode == 0
    saved = fit.read_bytes()
    _one_line_error(run("optimal", str(fit), "--budget", "1e23", "--json", str(fit)), "same file as the fit")
    assert fit.read_bytes() == saved


def test_json_and_report_are_written_before_the_figure(csv, tmp_path):
    pytest.importorskip("matplotlib")
    js = tmp_path / "fit.json"
    out = run("fit", str(csv), *MAP, "--json", str(js), "--plot", str(tmp_path / "missing" / "fig.png"))
    _one_line_error(out, "figure")
    assert json.loads(js.read_text())["success"] is True
    assert "objective" in out.stdout  # the report too


@pytest.mark.parametrize("case", ["runs_dir", "isoflop_dir", "optimal_dir", "optimal_no_law", "optimal_list",
                                  "ckpt_dir", "ckpt_no_dir", "ckpt_corrupt", "ckpt_empty"])
def test_file_problems_give_one_line_and_status_2(csv, tmp_path, case):
    d = tmp_path / "adir"
    d.mkdir()
    (tmp_path / "nolaw.json").write_text('{"schema": "lawfit.fit/1"}')
    (tmp_path / "list.json").write_text('{"schema": "lawfit.fit/1", "law": "chinchilla", "params": [1, 2]}')
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    (tmp_path / "empty.npz").write_bytes(b"")
    boot = ["fit", str(csv), *MAP, "--bootstrap", "4", "--checkpoint"]
    args, words = {
        "runs_dir": (["fit", str(d)], "directory"),
        "isoflop_dir": (["isoflop", str(d)], "directory"),
        "optimal_dir": (["optimal", str(d), "--budget", "1e23"], "directory"),
        "optimal_no_law": (["optimal", str(tmp_path / "nolaw.json"), "--budget", "1e23"],
                           "no law name and params mapping"),
        "optimal_list": (["optimal", str(tmp_path / "list.json"), "--budget", "1e23"],
                         "no law name and params mapping"),
        "ckpt_dir": (boot + [str(d)], "is a directory"),
        "ckpt_no_dir": (boot + [str(tmp_path / "nowhere" / "c.npz")], "no directory"),
        "ckpt_corrupt": (boot + [str(tmp_path / "bad.npz")], "cannot be read"),
        "ckpt_empty": (boot + [str(tmp_path / "empty.npz")], "cannot be read"),
    }[case]
    _one_line_error(run(*args), words)


def test_memory_error_is_one_line(monkeypatch, capsys, csv):
    from lawfit import cli

    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(cli, "fit", boom)
    assert cli.main(["fit", str(csv), *MAP]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lawfit: error: out of memory") and len(err.strip().splitlines()) == 1
