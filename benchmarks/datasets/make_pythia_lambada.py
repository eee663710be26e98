"""Build python/lawfit/datasets/pythia_lambada.csv from a checkout of github.com/EleutherAI/pythia.

Usage: python benchmarks/datasets/make_pythia_lambada.py CHECKOUT [OUT.csv]

Reads, and downloads nothing:
- models/<SIZE>/pythia-<size>.yml: "num-layers" and "hidden-size" of each model;
- evals/pythia-v1/pythia-<size>[-deduped|-bf16]/zero-shot/*.json: zero-shot lm-evaluation-harness results of
  each checkpoint; the LAMBADA (OpenAI version) perplexity and accuracy are used.

One row per (model, checkpoint) with step > 0 (step 0 is the untrained model, zero tokens). Columns:

  model      upstream directory name (pythia-70m, pythia-70m-deduped, ..., pythia-1b-bf16)
  deduped    1 when trained on the deduplicated Pile, else 0
  N          non-embedding parameters, L (12 d^2 + 13 d) + 2 d for L layers of width d (GPT-NeoX blocks:
             attention and MLP weights and biases, two layer norms per block, the final layer norm)
  step       training step of the checkpoint
  D          training tokens seen, step x 2,097,152 (1024 sequences of 2048 tokens per step, the "2M" batch
             of the upstream README)
  C          6 N D
  nll        log of the LAMBADA perplexity: the mean negative log-likelihood of the correct last word
  accuracy   LAMBADA accuracy (the last word predicted exactly)

Rows are sorted by model name and step; the output is deterministic.
"""

import json
import math
import re
import sys
from pathlib import Path

from common import output_path, write_rows

TOKENS_PER_STEP = 1024 * 2048


def _arch(root: Path, size: str) -> tuple[int, int]:
    """(layers, width) from the model's NeoX config (a YAML file with JSON-style "key": value lines)."""
    cfg = (root / "models" / size.upper() / f"pythia-{size}.yml").read_text()
    layers = int(re.search(r'"num-layers":\s*(\d+)', cfg).group(1))
    width = int(re.search(r'"hidden-size":\s*(\d+)', cfg).group(1))
    return layers, width


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__)
    root = Path(argv[1])
    rows = []
    for d in sorted((root / "evals" / "pythia-v1").iterdir()):
        m = re.fullmatch(r"pythia-([0-9.]+[mb])(-deduped|-bf16)?", d.name)
        if not m or not (d / "zero-shot").is_dir():
            continue  # the batch-size variants (e.g. pythia-160m-0.5MtokBS) are left out
        size = m.group(1)
        layers, width = _arch(root, size)
        n = layers * (12 * width * width + 13 * width) + 2 * width
        for f in sorted((d / "zero-shot").glob("*.json")):
            doc = json.loads(f.read_text())
            cfg = doc["config"]
            assert cfg["num_fewshot"] == 0, f
            step = int(re.search(r"revision=step(\d+)", cfg["model_args"]).group(1))
            lam = doc["results"].get("lambada_openai")
            if step == 0 or lam is None:
                continue
            tokens = step * TOKENS_PER_STEP
            rows.append({"model": d.name, "deduped": int(m.group(2) == "-deduped"), "N": n, "step": step,
                         "D": tokens, "C": 6.0 * n * tokens, "nll": math.log(lam["ppl"]),
                         "accuracy": float(lam["acc"])})
    rows.sort(key=lambda r: (r["model"], r["step"]))
    write_rows(rows, output_path(argv, "pythia_lambada"))


if __name__ == "__main__":
    main(sys.argv)
