"""Bundled data sets, by name: ``available()``, ``info(name)`` (source, citation, licence, columns) and
``load(name)``, so a benchmark suite can run every law on every data set."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

__all__ = ["chinchilla", "gadre2024", "obsscaling", "pythia_lambada", "available", "info", "load", "DatasetInfo"]


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


def _read(filename: str):
    import pandas as pd

    with resources.files(__package__).joinpath(filename).open("r") as fh:
        return pd.read_csv(fh)


def gadre2024(dataset: str | None = None):
    """The over-training runs of Gadre et al. (2024), "Language models scale reliably with over-training and
    on downstream tasks" (arXiv:2403.08540): 104 open_lm models, 11M to 6.9B parameters, trained on C4,
    RedPajama or RefinedWeb with 0.25 to 32 times the compute-optimal 20 tokens per parameter.

    Columns: dataset (training data: ``c4``, ``rpj``, ``rw``), model (open_lm configuration), M (token
    multiplier, D = 20 M N), N (parameters), D (training tokens), C (training FLOP, 6 N D), loss (next-token
    loss on C4 validation data) and err_avg (mean top-1 error over 46 downstream tasks). Derived from the
    upstream run files by ``benchmarks/datasets/make_gadre2024.py``. MIT licence (``LICENSE.gadre2024``).

    Parameters
    ----------
    dataset : keep only the runs trained on this data set (``"c4"``, ``"rpj"`` or ``"rw"``); all 104 if None.
    """
    df = _read("gadre2024.csv")
    if dataset is not None:
        names = sorted(df["dataset"].unique())
        if dataset not in names:
            raise ValueError(f"dataset must be one of {', '.join(names)} or None, got {dataset!r}")
        df = df[df["dataset"] == dataset].reset_index(drop=True)
    return df


def obsscaling():
    """Public base language models with their size, training tokens, training compute and benchmark
    accuracies, from Ruan, Maddison and Hashimoto (2024), "Observational Scaling Laws and the Predictability of
    Language Model Performance" (arXiv:2405.10938).

    Columns: model, family, N (parameters), D (training tokens), C (training FLOP, 6 N D), and the accuracies
    mmlu, arc_c, hellaswag, winograd, truthfulqa, gsm8k, xwinograd, humaneval in [0, 1] (NaN where upstream
    has no value). 122 models of 38 families: the upstream models with a known training-data size, less one
    whose upstream data size is off by a factor 1000. Derived by ``benchmarks/datasets/make_obsscaling.py``.
    Apache-2.0 licence (``LICENSE.obsscaling``).
    """
    return _read("obsscaling.csv")


def pythia_lambada(deduped: bool | None = None):
    """LAMBADA results of the Pythia checkpoints (Biderman et al. 2023, "Pythia: A Suite for Analyzing Large
    Language Models Across Training and Scaling", arXiv:2304.01373): 16 models of 19M to 11B non-embedding
    parameters, 26 checkpoints each (steps 1 to 143000), zero-shot. For two-stage downstream prediction
    (:mod:`lawfit.downstream`): ``nll`` is the mean negative log-likelihood of the correct last word (the log
    of the reported perplexity) and ``accuracy`` the share of last words predicted exactly.

    Columns: model (upstream name), deduped (1: trained on the deduplicated Pile), N (non-embedding
    parameters, from each model's layer count and width), step, D (tokens seen, step x 2,097,152), C (6 N D),
    nll, accuracy (0 at the earliest checkpoints: filter, e.g. ``step >= 1000``, before fitting). Derived by
    ``benchmarks/datasets/make_pythia_lambada.py``. Apache-2.0 licence (``LICENSE.pythia_lambada``).

    Parameters
    ----------
    deduped : keep only the models trained on the deduplicated (True) or the standard (False) Pile; both if
        None.
    """
    df = _read("pythia_lambada.csv")
    if deduped is not None:
        if not isinstance(deduped, bool):
            raise ValueError(f"deduped must be True, False or None, got {deduped!r}")
        df = df[df["deduped"] == int(deduped)].reset_index(drop=True)
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
    "gadre2024": DatasetInfo(
        name="gadre2024",
        description="Over-trained open_lm runs (Gadre et al. 2024): 104 runs on C4, RedPajama and RefinedWeb, "
                    "0.25 to 32 times compute-optimal tokens; C4 validation loss and 46-task downstream error",
        source="repository mlfoundations/scaling, commit a003c4913793ac2ae7ef87b28ecb562955d026d5, files "
               "exp_data/models/*.json and exp_data/evals/*.json (benchmarks/datasets/make_gadre2024.py)",
        citation="Gadre, Smyrnis, Shankar, Gururangan, Wortsman et al. (2024), Language models scale reliably with "
                 "over-training and on downstream tasks, arXiv:2403.08540",
        licence="MIT, Copyright (c) 2024 mlfoundations (LICENSE.gadre2024)",
        columns={"dataset": "training data (c4, rpj, rw)", "model": "open_lm configuration",
                 "M": "token multiplier, D = 20 M N", "N": "parameters", "D": "training tokens",
                 "C": "training FLOP (6ND)", "loss": "C4 validation loss",
                 "err_avg": "mean top-1 error over 46 downstream tasks"},
        n_rows=104,
        loader=gadre2024,
    ),
    "obsscaling": DatasetInfo(
        name="obsscaling",
        description="Public base language models (Ruan et al. 2024): size, tokens, compute and eight benchmark "
                    "accuracies, for downstream scaling",
        source="repository ryoungj/ObsScaling, commit 4d6e1e43fd2635d04654aa77d1df9d5266ea0382, file "
               "eval_results/base_llm_benchmark_eval.csv (benchmarks/datasets/make_obsscaling.py)",
        citation="Ruan, Maddison and Hashimoto (2024), Observational Scaling Laws and the Predictability of "
                 "Language Model Performance, arXiv:2405.10938",
        licence="Apache-2.0 (LICENSE.obsscaling; the upstream licence names no copyright holder, the work is "
                "that of the authors of ryoungj/ObsScaling)",
        columns={"model": "Hugging Face model name", "family": "model family", "N": "parameters",
                 "D": "training tokens", "C": "training FLOP (6ND)",
                 "mmlu": "accuracy", "arc_c": "accuracy (NaN if missing)", "hellaswag": "accuracy",
                 "winograd": "accuracy",
                 "truthfulqa": "accuracy", "gsm8k": "accuracy", "xwinograd": "accuracy (NaN if missing)",
                 "humaneval": "pass@1 (NaN if missing)"},
        n_rows=122,
        loader=obsscaling,
    ),
    "pythia_lambada": DatasetInfo(
        name="pythia_lambada",
        description="LAMBADA perplexity and accuracy of 16 Pythia models over 26 training checkpoints each, "
                    "for two-stage downstream prediction",
        source="repository EleutherAI/pythia, commit a19eecb807ec2c79a39ebf18108816e6ffffc1d5, files "
               "evals/pythia-v1/*/zero-shot/*.json and models/*/pythia-*.yml "
               "(benchmarks/datasets/make_pythia_lambada.py)",
        citation="Biderman, Schoelkopf, Anthony, Bradley, O'Brien et al. (2023), Pythia: A Suite for Analyzing "
                 "Large Language Models Across Training and Scaling, arXiv:2304.01373; Paperno et al. (2016), "
                 "The LAMBADA dataset, arXiv:1606.06031",
        licence="Apache-2.0, Copyright 2023 EleutherAI (LICENSE.pythia_lambada); the upstream README extends "
                "it to every copyrightable artifact of the repository",
        columns={"model": "upstream model name", "deduped": "1: deduplicated Pile, 0: standard",
                 "N": "non-embedding parameters", "step": "training step", "D": "tokens seen (step x 2^21)",
                 "C": "training FLOP (6ND)", "nll": "mean NLL of the correct last word (log perplexity)",
                 "accuracy": "share of last words predicted exactly"},
        n_rows=416,
        loader=pythia_lambada,
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
