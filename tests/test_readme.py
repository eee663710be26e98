"""The README's worked backend example runs as written and gives the linear-residual least-squares optimum."""

from __future__ import annotations

import pathlib

import pytest

import lawfit

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str) -> str:
    text = README.read_text()
    i = text.index(marker)
    start = text.rindex("```python", 0, i) + len("```python")
    return text[start:text.index("```", i)]


def test_backend_wrapper_example():
    ns: dict = {}
    exec(compile(_block("def fit_raw_mse"), "README.md", "exec"), ns)
    runs = lawfit.datasets.chinchilla(drop_highest=5)
    ref = lawfit.fit("chinchilla", runs, starts="hoffmann", loss="squared", residual="linear")
    assert ns["mse"] == pytest.approx(2 * ref.fun / len(runs), rel=1e-9)
    for k, v in ref.params.items():
        assert ns["params"][k] == pytest.approx(v, rel=1e-6), k
