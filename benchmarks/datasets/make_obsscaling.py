"""Build python/lawfit/datasets/obsscaling.csv from a checkout of github.com/ryoungj/ObsScaling.

Usage: python benchmarks/datasets/make_obsscaling.py base_llm_benchmark_eval.csv [OUT.csv]
(the file eval_results/base_llm_benchmark_eval.csv of the upstream checkout)

Reads the upstream table of public base models (one row per model, 148 rows); downloads nothing. Keeps the
models whose training-data size is known (upstream 'Pretraining Data Size (T)' not empty, 123 models) and drops
cerebras/btlm-3b-8k-base, whose upstream data size (627 T, i.e. the 627 B tokens of SlimPajama read as
trillions) is off by a factor 1000; 122 rows remain. Columns:

  model      upstream 'Model' (Hugging Face name)
  family     upstream 'Model Family'
  N          parameters, upstream 'Model Size (B)' in units (the decimal string read with exponent 9)
  D          training tokens, upstream 'Pretraining Data Size (T)' in units (exponent 12)
  C          training FLOP, upstream 'FLOPs (1E21)' in units (exponent 21); upstream computes it as 6 N D
  mmlu, arc_c, hellaswag, winograd, truthfulqa, gsm8k, xwinograd, humaneval
             benchmark accuracies in [0, 1] (upstream columns of the same names); empty where upstream has none

Rows keep the upstream order; the output is deterministic.
"""

import csv
import sys

from common import output_path, write_rows

DROP = {"cerebras/btlm-3b-8k-base"}
BENCH = {"MMLU": "mmlu", "ARC-C": "arc_c", "HellaSwag": "hellaswag", "Winograd": "winograd",
         "TruthfulQA": "truthfulqa", "GSM8K": "gsm8k", "XWinograd": "xwinograd", "HumanEval": "humaneval"}


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    rows = []
    with open(argv[1], newline="") as fh:
        for r in csv.DictReader(fh):
            if not r["Pretraining Data Size (T)"] or r["Model"] in DROP:
                continue
            row = {"model": r["Model"], "family": r["Model Family"],
                   "N": repr(float(r["Model Size (B)"] + "e9")),
                   "D": repr(float(r["Pretraining Data Size (T)"] + "e12")),
                   "C": repr(float(r["FLOPs (1E21)"] + "e21"))}
            for src, dst in BENCH.items():
                row[dst] = repr(float(r[src])) if r[src] else ""
            rows.append(row)
    write_rows(rows, output_path(argv, "obsscaling"))


if __name__ == "__main__":
    main(sys.argv)
