"""Which Linears can run in int8: quantise one kind of projection at a time (in every layer) and measure how far
the encoder output moves from fp32. The int8 plan (mobilebert_lite/quantization.py) was chosen from this table.

    python tools/int8_sensitivity.py [--model DIR] [--texts N] [--threads T]

Without --model: the google/mobilebert-uncased shape with random weights (seed 0). Inputs: the bundled demo
sentences (and corpus texts) tokenized with the bundled vocabulary, one sequence per call (no padding).
Prints, per kind: max relative error of last_hidden_state (max|x - x_fp32| / max|x_fp32|), mean abs error / mean
abs, and the min cosine of mean-pooled sentence embeddings; then the same for the whole plan.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

import mobilebert_lite as mbl
from mobilebert_lite import quantization
from mobilebert_lite.cli_tools import read_demo_sentences

KIND = re.compile(r"^(embeddings\.embedding_transformation|encoder\.layer\.\d+\.(.*))\.weight$")


def kind_of(name: str) -> str:
    m = KIND.match(name)
    return "embedding_transformation" if m.group(2) is None else re.sub(r"ffn\.\d+\.", "ffn.N.", m.group(2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model directory (default: random uncased-shape MobileBERT)")
    ap.add_argument("--texts", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.model:
        base = mbl.MobileBertModel.from_pretrained(args.model, num_threads=args.threads)
    else:
        base = mbl.MobileBertModel(mbl.MobileBertConfig(classifier_activation=False), seed=0,
                                   num_threads=args.threads)
    config, params = base.config, base.params
    tok = mbl.MobileBertTokenizerFast()
    texts = (read_demo_sentences() * 4)[:args.texts]
    encs = [tok(t, truncation=True, max_length=128, return_tensors="np") for t in texts]

    def run(model):
        outs = [model(input_ids=e["input_ids"], token_type_ids=e["token_type_ids"]).last_hidden_state[0] for e in encs]
        return outs

    ref = run(base)

    def report(label, model):
        outs = run(model)
        rel = max(np.abs(o - r).max() / np.abs(r).max() for o, r in zip(outs, ref))
        mean = np.mean([np.abs(o - r).mean() / np.abs(r).mean() for o, r in zip(outs, ref)])
        cos = min(float(o.mean(0) @ r.mean(0) / np.linalg.norm(o.mean(0)) / np.linalg.norm(r.mean(0)))
                  for o, r in zip(outs, ref))
        print(f"| {label:<40} | {rel:.2e} | {mean:.2e} | {cos:.6f} |")

    kinds = sorted({kind_of(n) for n in quantization.int8_linears(params)})
    print(f"model: {args.model or 'random uncased shape'}; {len(encs)} texts\n")
    print("| int8 Linears | max rel err | mean abs err / mean abs | min cosine |\n|---|---|---|---|")
    for kind in kinds:
        q = quantization.quantize_params(params, only=lambda n, k=kind: kind_of(n) == k)
        report(kind, mbl.MobileBertModel(config, q, num_threads=args.threads))
    report("all of them (quantize='int8')", mbl.MobileBertModel(config, params, quantize="int8",
                                                                   num_threads=args.threads))


if __name__ == "__main__":
    main()
