#!/usr/bin/env python
"""Batch tokenization throughput on one thread: MobileBertTokenizerFast (C++) vs transformers' BertTokenizerFast
(Rust, `tokenizers`), and MobileBertTokenizer (pure Python) vs transformers' BertTokenizerLegacy (pure Python).
All four load the same directory (the bundled bert-base-uncased vocab.txt + tokenizer_config.json).

    python benchmarks/bench_tokenizer.py                       # test corpus, batches of 64, 5 repeats
    python benchmarks/bench_tokenizer.py --quick               # 3 repeats on a third of the corpus
    python benchmarks/bench_tokenizer.py --corpus my.txt       # one text per line (.jsonl: one JSON string per line)
    python benchmarks/bench_tokenizer.py --json out.json

Two call modes are timed: `tok(batch, padding=True, truncation=True, max_length=512)` ("padded") and plain
`tok(batch)`. One repeat = the whole corpus in batches; the table shows the median over the repeats after one
warm-up pass. Before timing, each pair must produce the same input_ids on the whole corpus (printed).
Targets: ours-fast >= 1.0x the Rust tokenizer, ours-slow >= 1.5x the legacy Python tokenizer.
"""

from __future__ import annotations

import os

# Before anything imports `tokenizers`: its Rayon pool reads these once, at first use.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import gc  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "tests" / "data" / "tokenizer_corpus.jsonl"
BUNDLED_VOCAB = ROOT / "mobilebert_lite" / "data" / "vocab_uncased.txt"

# (ours, reference, target ratio ours/reference in texts/s)
PAIRS = (("ours_fast", "hf_rust", 1.0), ("ours_slow", "hf_legacy", 1.5))
LABEL = {"ours_fast": "mbl MobileBertTokenizerFast", "hf_rust": "HF BertTokenizerFast (Rust)",
         "ours_slow": "mbl MobileBertTokenizer", "hf_legacy": "HF BertTokenizerLegacy (Python)"}
MODES = ("padded", "plain")


def load_corpus(path: Path) -> list:
    text = Path(path).read_text("utf-8")
    if Path(path).suffix == ".jsonl":
        return [json.loads(x) for x in text.split("\n") if x]
    return [x for x in text.split("\n") if x.strip()]


def make_dir(do_lower_case: bool) -> str:
    d = Path(tempfile.mkdtemp(prefix="mbl_tok_bench_"))
    shutil.copyfile(BUNDLED_VOCAB, d / "vocab.txt")
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": do_lower_case, "model_max_length": 512}))
    return str(d)


def load_tokenizers(directory: str, which: list) -> dict:
    toks = {}
    if "ours_fast" in which or "ours_slow" in which:
        import mobilebert_lite as mbl

        for key, cls in (("ours_fast", mbl.MobileBertTokenizerFast), ("ours_slow", mbl.MobileBertTokenizer)):
            if key in which:
                # one thread: pass num_threads=1 where the class takes it
                params = inspect.signature(cls.__init__).parameters
                extra = {"num_threads": 1} if "num_threads" in params else {}
                toks[key] = cls.from_pretrained(directory, **extra)
    if "hf_rust" in which:
        from transformers import BertTokenizerFast

        toks["hf_rust"] = BertTokenizerFast.from_pretrained(directory)
    if "hf_legacy" in which:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

        toks["hf_legacy"] = BertTokenizerLegacy.from_pretrained(directory)
    return toks


def batches(lines: list, size: int) -> list:
    return [lines[i:i + size] for i in range(0, len(lines), size)]


def call(tok, batch, mode):
    if mode == "padded":
        return tok(batch, padding=True, truncation=True, max_length=512)
    return tok(batch)


def input_ids(tok, chunks, mode) -> list:
    out = []
    for b in chunks:
        out += [list(r) for r in call(tok, b, mode)["input_ids"]]
    return out


def check_agreement(toks: dict, chunks: list) -> dict:
    """Per tokenizer and mode: number of texts whose input_ids differ from HF's Rust tokenizer, the parity target
    of both our classes (HF's legacy Python tokenizer itself differs from it on some exotic Unicode)."""
    result = {}
    if "hf_rust" not in toks:
        return result
    for mode in MODES:
        ref = input_ids(toks["hf_rust"], chunks, mode)
        for key in toks:
            if key == "hf_rust":
                continue
            ids = input_ids(toks[key], chunks, mode)
            bad = [i for i, (x, y) in enumerate(zip(ids, ref)) if x != y]
            result[(key, "hf_rust", mode)] = {"mismatching_texts": len(bad) + abs(len(ids) - len(ref)),
                                              "first": bad[0] if bad else None}
    return result


def time_pass(tok, chunks, mode) -> float:
    gc.collect()
    t0 = time.perf_counter()
    for b in chunks:
        call(tok, b, mode)
    return time.perf_counter() - t0


def measure(toks: dict, chunks: list, repeat: int, log) -> dict:
    """Median seconds per pass over the corpus, per (tokenizer, mode); passes of different tokenizers alternate so
    that a slow phase of the machine hits all of them alike."""
    times = {(k, m): [] for k in toks for m in MODES}
    for mode in MODES:
        for k in toks:
            time_pass(toks[k], chunks, mode)  # warm-up: caches, lazy imports, allocator
        for r in range(repeat):
            for k in toks:
                times[(k, mode)].append(time_pass(toks[k], chunks, mode))
            log(f"  {mode}: repeat {r + 1}/{repeat} done")
    return {key: {"median_s": statistics.median(v), "min_s": min(v), "runs": v} for key, v in times.items()}


def count_tokens(tok, chunks) -> int:
    return sum(len(r) for r in input_ids(tok, chunks, "plain"))


def print_table(res: dict, toks: dict, n_texts: int, n_tokens: int) -> list:
    print(f"\n{'mode':<7} {'tokenizer':<33} {'median s':>9} {'texts/s':>10} {'tokens/s':>11}")
    for mode in MODES:
        for k in toks:
            med = res[(k, mode)]["median_s"]
            print(f"{mode:<7} {LABEL[k]:<33} {med:>9.3f} {n_texts / med:>10.0f} {n_tokens / med:>11.0f}")
    print(f"\n{'ratio ours/HF (throughput)':<60} {'padded':>8} {'plain':>8}  target")
    rows = []
    for ours, ref, target in PAIRS:
        if ours not in toks or ref not in toks:
            continue
        ratios = {m: res[(ref, m)]["median_s"] / res[(ours, m)]["median_s"] for m in MODES}
        met = all(r >= target for r in ratios.values())
        print(f"{LABEL[ours] + ' / ' + LABEL[ref]:<60} {ratios['padded']:>7.2f}x {ratios['plain']:>7.2f}x"
              f"  >= {target}x {'met' if met else 'NOT met'}")
        rows.append({"ours": ours, "reference": ref, "target": target, "ratios": ratios, "met": met})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="text file, one text per line, or .jsonl "
                    "(default: the test corpus)")
    ap.add_argument("--batch", type=int, default=64, help="texts per call (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=None, help="timed passes per tokenizer and mode (default 5, "
                    "quick 3)")
    ap.add_argument("--quick", action="store_true", help="a third of the corpus, 3 repeats")
    ap.add_argument("--cased", action="store_true", help="do_lower_case=False (default: uncased)")
    ap.add_argument("--only", default=None, help="comma list of ours_fast,hf_rust,ours_slow,hf_legacy")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU (Linux)")
    ap.add_argument("--json", default=None, help="write every number to this file")
    a = ap.parse_args(argv)
    repeat = a.repeat or (3 if a.quick else 5)
    which = [w.strip() for w in (a.only or "ours_fast,hf_rust,ours_slow,hf_legacy").split(",") if w.strip()]
    for w in which:
        if w not in LABEL:
            ap.error(f"unknown tokenizer {w!r}; choose from {', '.join(LABEL)}")
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})

    lines = load_corpus(Path(a.corpus))
    if a.quick:
        lines = lines[::3]
    chunks = batches(lines, a.batch)
    started = _dt.datetime.now().astimezone()
    print(f"# bench_tokenizer.py  {started:%Y-%m-%d %H:%M %Z}")
    print(f"# cpu: {C.cpu_model()}")
    print(f"# versions: {C.versions()}; tokenizers {_version('tokenizers')}; "
          f"mobilebert_lite fingerprint {C.package_fingerprint()}")
    print(f"# corpus {a.corpus}: {len(lines)} texts, {sum(len(s) for s in lines):,} characters; batches of "
          f"{a.batch}; {repeat} repeats after 1 warm-up; do_lower_case={not a.cased}; "
          f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}, TOKENIZERS_PARALLELISM=false", flush=True)

    toks = load_tokenizers(make_dir(not a.cased), which)
    agreement = check_agreement(toks, chunks)
    ok = True
    for (key, ref, mode), r in agreement.items():
        same = r["mismatching_texts"] == 0
        ok &= same or key == "hf_legacy"
        detail = "identical" if same else f"{r['mismatching_texts']} texts differ (first: line {r['first']})"
        print(f"# input_ids {LABEL[key]} vs {LABEL[ref]} ({mode}): {detail}")
    if not ok:
        print("# WARNING: ours differ from HF; the timings below compare different work", flush=True)

    ref_tok = toks.get("hf_rust") or next(iter(toks.values()))
    n_tokens = count_tokens(ref_tok, chunks)
    res = measure(toks, chunks, repeat, log=lambda s: print(s, flush=True))
    rows = print_table(res, toks, len(lines), n_tokens)
    print(f"\n(tokens/s counts the {n_tokens:,} unpadded tokens incl. [CLS]/[SEP] of the corpus for every mode)")

    if a.json:
        out = {"started": started.isoformat(), "cpu": C.cpu_model(), "versions": C.versions(),
               "package_fingerprint": C.package_fingerprint(), "corpus": a.corpus, "texts": len(lines),
               "tokens": n_tokens, "batch": a.batch, "repeat": repeat, "do_lower_case": not a.cased,
               "agreement": {f"{o}|{r}|{m}": v for (o, r, m), v in agreement.items()},
               "timings": {f"{k}|{m}": v for (k, m), v in res.items()}, "ratios": rows}
        Path(a.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {a.json}")
    return 0


def _version(pkg: str):
    import importlib.metadata as md

    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
