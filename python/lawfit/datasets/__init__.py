"""Bundled data sets, by name: ``available()``, ``info(name)`` (source, citation, licence, columns) and
``load(name)``, so a benchmark suite can run every law on every data set."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

__all__ = ["chinchilla", "available", "info", "load", "DatasetInfo"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a bundled data set is: where it comes from, how to cite it, its licence and its columns."""

    name: str
    description: str
    source: str
    citation: str
    licence: str
    columns: dict
    n_rows: int
    loader: Callable[..., Any]

    def __str__(self) -> str:
        cols = ", ".join(f"{k} ({v})" for k, v in self.columns.items())
        return (f"{self.name}: {self.description}\n  rows: {self.n_rows}\n  columns: {cols}\n  source: {self.source}"
                f"\n  cite: {self.citation}\n  licence: {self.licence}")


def chinchilla(drop_highest: int = 0):
    """The Chinchilla training runs (Hoffmann et al. 2022, Figure 4) as a DataFrame with columns
    N (parameters), D (tokens), C (training FLOP) and loss.

    Reconstructed from the paper's figure by Besiroglu, Erdil, Barnett and You, "Chinchilla Scaling: A
    replication attempt" (Epoch AI, 2024, arXiv:2404.10102); D = C / (6 N). 245 runs.

    Parameters
    ----------
    drop_highest : drop this many runs with the highest loss. ``drop_highest=5`` gives the 240 runs of
        Epoch's protocol (rows whose loss is below the 5th largest loss).
    """
    import pandas as pd

    with resources.files(__package__).joinpath("chinchilla.csv").open("r") as fh:
        df = pd.read_csv(fh)
    if isinstance(drop_highest, bool) or not isinstance(drop_highest, int) or drop_highest < 0:
        raise ValueError(f"drop_highest must be a non-negative integer, got {drop_highest!r}")
    if drop_highest:
        if drop_highest >= len(df):
            raise ValueError(f"drop_highest={drop_highest} would drop all {len(df)} runs")
        threshold = df["loss"].nlargest(drop_highest).iloc[-1]
        df = df[df["loss"] < threshold].reset_index(drop=True)
    return df


_REGISTRY = {
    "chinchilla": DatasetInfo(
        name="chinchilla",
        description="Chinchilla training runs (Hoffmann et al. 2022, Figure 4), final loss per run",
        source="Epoch AI's replication, repository epoch-research/analyzing-chinchilla, data/svg_extracted_data.csv "
               "(commit 92258837), values read off the paper's SVG figure",
        citation="Hoffmann et al. (2022), Training Compute-Optimal Large Language Models, arXiv:2203.15556; "
                 "Besiroglu, Erdil, Barnett and You (2024), Chinchilla Scaling: A replication attempt, "
                 "arXiv:2404.10102",
        licence="no licence file in the upstream repository; the values are measurements read from a published "
                "figure, redistributed with attribution (cite both works)",
        columns={"N": "parameters", "D": "training tokens (C / 6N)", "C": "training FLOP", "loss": "final loss"},
        n_rows=245,
        loader=chinchilla,
    ),
}


def available() -> list[str]:
    """Names of the bundled data sets."""
    return sorted(_REGISTRY)


def info(name: str) -> DatasetInfo:
    """Source, citation, licence and columns of a bundled data set."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown data set {name!r}; bundled: {', '.join(available())}") from None


def load(name: str, **kwargs):
    """A bundled data set as a DataFrame (keywords go to its loader, e.g. ``drop_highest=5``)."""
    return info(name).loader(**kwargs)
