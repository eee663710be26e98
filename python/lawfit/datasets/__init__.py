"""Bundled example data."""

from __future__ import annotations

from importlib import resources

__all__ = ["chinchilla"]


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
