"""Build python/lawfit/datasets/gadre2024.csv from a checkout of github.com/mlfoundations/scaling.

Usage: python benchmarks/datasets/make_gadre2024.py PATH/TO/scaling [OUT.csv]

Reads exp_data/models/*.json (one file per training run) and exp_data/evals/evaluation_<run>_heavy.json
(the 46 downstream evaluations of that run) of the upstream checkout; downloads nothing. Per run:

  dataset   training data: c4 (upstream c4_original), rpj (RedPajama), rw (RefinedWeb, upstream rw_original)
  model     the open_lm configuration (upstream hyperparameters.model, file stem)
  M         the token multiplier over compute-optimal, D = 20 M N (upstream chinchilla_multiplier)
  N         parameters (upstream hyperparameters.params)
  D         training tokens (upstream hyperparameters.tokens)
  C         training FLOP, 6 N D (as upstream's scaling/shared.py defines it)
  loss      next-token loss on the C4 validation set (the result whose val_data is .../c4_val/...; the
            paper's default loss evaluation)
  err_avg   mean top-1 error, 1 - accuracy, over the 46 downstream tasks (eval_metrics.icl)

Rows are sorted by dataset, N, D; the output is deterministic.
"""

import json
import sys
from pathlib import Path

from common import output_path, write_rows

DATASETS = {"c4_original": "c4", "rpj": "rpj", "rw_original": "rw"}


def row(model_json: Path, evals_dir: Path) -> dict:
    run = json.loads(model_json.read_text())
    hp = run["hyperparameters"]
    c4 = [r["loss"] for r in run["results"] if "/c4_val/" in r["val_data"][0]]
    if len(c4) != 1:
        raise ValueError(f"{model_json.name}: expected one c4_val result, found {len(c4)}")
    icl = json.loads((evals_dir / f"evaluation_{model_json.stem}_heavy.json").read_text())["eval_metrics"]["icl"]
    if len(icl) != 46:
        raise ValueError(f"{model_json.name}: expected 46 downstream tasks, found {len(icl)}")
    N, D = int(hp["params"]), int(hp["tokens"])
    return {
        "dataset": DATASETS[run["dataset_name"]],
        "model": hp["model"].split("/")[-1].removesuffix(".json"),
        "M": float(hp["chinchilla_multiplier"]),
        "N": N,
        "D": D,
        "C": float(6 * N * D),
        "loss": float(c4[0]),
        "err_avg": sum(1.0 - float(v) for v in icl.values()) / len(icl),
    }


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    root = Path(argv[1])
    rows = [row(p, root / "exp_data/evals") for p in sorted((root / "exp_data/models").glob("*.json"))]
    rows.sort(key=lambda r: (r["dataset"], r["N"], r["D"]))
    write_rows(rows, output_path(argv, "gadre2024"))


if __name__ == "__main__":
    main(sys.argv)
