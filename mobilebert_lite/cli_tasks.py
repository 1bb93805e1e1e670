"""`mobilebert-lite TASK --model DIR [INPUT ...]`: every pipeline task on the command line.

Inputs come from the arguments, a file (`--file F`: one text per line; JSON lines when F ends in .jsonl or with
--jsonl) or stdin (`-`, or no inputs with stdin piped). Each input gives one JSON line on stdout:
{"input": <the input>, "output": <what the pipeline returns for it>}, in input order, flushed as each chunk of
inputs finishes (so a long job can be followed and piped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from .pipelines import TASKS

# Call options each task takes, as (dest, flag): only flags the user actually gave reach the pipeline, so the
# pipeline's own defaults (transformers') apply otherwise.
TASK_OPTIONS = {
    "fill-mask": ("top_k", "targets"),
    "text-classification": ("top_k", "function_to_apply"),
    "sentiment-analysis": ("top_k", "function_to_apply"),
    "zero-shot-classification": ("candidate_labels", "hypothesis_template", "multi_label"),
    "feature-extraction": (),
    "sentence-embeddings": ("pooling", "normalize"),
    "token-classification": ("aggregation_strategy",),
    "ner": ("aggregation_strategy",),
    "question-answering": ("top_k", "doc_stride", "max_answer_len", "handle_impossible_answer"),
    "multiple-choice": (),
    "next-sentence-prediction": (),
}
# How a JSON object input is passed: "positional" (pipe(obj), e.g. {"text", "text_pair"}) or "keywords"
# (pipe(**obj), e.g. {"question", "context"}); tasks missing here take texts only.
DICT_INPUTS = {
    "text-classification": "positional",
    "sentiment-analysis": "positional",
    "zero-shot-classification": "keywords",
    "question-answering": "keywords",
    "multiple-choice": "positional",
    "next-sentence-prediction": "positional",
}
# Tasks whose pipelines map a list of texts to a list of results (one call per chunk, batched inside).
LIST_TASKS = {"fill-mask", "text-classification", "sentiment-analysis", "zero-shot-classification",
              "feature-extraction", "sentence-embeddings", "token-classification", "ner", "multiple-choice",
              "next-sentence-prediction"}
# Without --model these use the bundled default sentence model (all-MiniLM-L6-v2 as MobileBERT).
DEFAULT_MODEL_TASKS = {"feature-extraction", "sentence-embeddings"}

TASK_HELP = {
    "fill-mask": "predict the [MASK] token(s) of each text",
    "text-classification": "classify each text (or {text, text_pair} JSON object)",
    "sentiment-analysis": "alias of text-classification",
    "zero-shot-classification": "score --candidate-labels for each text through an NLI model",
    "feature-extraction": "last hidden state of each text ([1][tokens][hidden] floats)",
    "sentence-embeddings": "one pooled vector per text (default model: all-MiniLM-L6-v2)",
    "token-classification": "label each token (named entities, ...)",
    "ner": "alias of token-classification",
    "question-answering": "extract the answer span: --question/--context, or JSON lines {question, context}",
    "multiple-choice": 'pick the best choice: JSON lines {"question": ..., "choices": [...]}',
    "next-sentence-prediction": "is text_pair the next sentence of text? (JSON lines {text, text_pair}, or "
                                "two texts separated by a tab)",
}


class UsageError(ValueError):
    """Bad command-line usage: reported as one line on stderr, exit code 2."""


# -------------------------------------------------------------------------------------------------- parser


def _top_k(value: str):
    if value.lower() in ("all", "none"):
        return None  # transformers' top_k=None: every label
    return _positive_int(value, "a positive integer or 'all'")


def _positive_int(value: str, expected: str = "a positive integer") -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return n


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--batch-size, --threads, --backend, --quantize: shared by the task subcommands, bench and demo."""
    p.add_argument("--batch-size", type=_positive_int, default=1,
                   help="inputs padded together per model call (default 1: each input alone, exact results)")
    p.add_argument("--threads", type=_positive_int, help="threads for the native engine (default: every CPU)")
    p.add_argument("--backend", choices=("native", "reference"), help="engine (default: native when built)")
    p.add_argument("--quantize", choices=("int8",), help="run the encoder's Linears in int8 (a checkpoint written "
                   "by `mobilebert-lite quantize` runs in int8 without it)")


def add_task_parser(sub, task: str) -> None:
    options = TASK_OPTIONS[task]
    p = sub.add_parser(task, help=TASK_HELP[task], description=f"{task}: {TASK_HELP[task]}. " + __doc__.split(
        "\n\n")[1].replace("\n", " "))
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="texts (or JSON with --jsonl); '-' reads stdin")
    default = " (default: the bundled all-MiniLM-L6-v2)" if task in DEFAULT_MODEL_TASKS else ""
    p.add_argument("--model", help=f"model directory or cached hub id{default}")
    p.add_argument("--tokenizer", help="tokenizer directory (default: the model directory's files)")
    p.add_argument("--file", "-f", help="read inputs from this file, one per line ('-': stdin)")
    p.add_argument("--jsonl", action="store_true", help="inputs are JSON values, one per line (automatic for .jsonl)")
    p.add_argument("--progress", action="store_true", help="progress bar on stderr even when it is not a terminal")
    add_runtime_arguments(p)
    g = p.add_argument_group("task options")
    g.argument_default = argparse.SUPPRESS
    if "top_k" in options:
        g.add_argument("--top-k", type=_top_k, help="number of results per input ('all' for every label)")
    if "targets" in options:
        g.add_argument("--targets", action="append", help="restrict predictions to these words (comma-separated, "
                                                          "repeatable)")
    if "function_to_apply" in options:
        g.add_argument("--function-to-apply", choices=("softmax", "sigmoid", "none"), help="score function")
    if "candidate_labels" in options:
        g.add_argument("--candidate-labels", action="append", help="labels (comma-separated, repeatable)")
        g.add_argument("--hypothesis-template", help="e.g. 'This example is {}.'")
        g.add_argument("--multi-label", action="store_true", help="score labels independently")
    if "aggregation_strategy" in options:
        g.add_argument("--aggregation-strategy", choices=("none", "simple", "first", "average", "max"),
                       help="how sub-word predictions are grouped into entities")
    if task == "question-answering":
        g.add_argument("--question", default=None, help="the question (inputs are then contexts)")
        g.add_argument("--context", default=None, help="the context (inputs are then questions)")
        g.add_argument("--doc-stride", type=_positive_int, help="overlap of context windows, in tokens")
        g.add_argument("--max-answer-len", type=_positive_int, help="longest answer, in tokens")
        g.add_argument("--handle-impossible-answer", action="store_true",
                       help="allow the empty answer")
    if "pooling" in options:
        g.add_argument("--pooling", choices=("mean", "cls"), help="how token vectors become one vector")
        g.add_argument("--normalize", action=argparse.BooleanOptionalAction,
                       help="L2-normalise the vectors")
    p.set_defaults(fn=run_task, task=task)


def _split_list(values):
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def task_options(args) -> dict:
    """The task options the user gave (their flags default to argparse.SUPPRESS: absent unless given)."""
    opts = {}
    for name in TASK_OPTIONS[args.task]:
        if hasattr(args, name):
            value = getattr(args, name)
            opts[name] = _split_list(value) if name in ("targets", "candidate_labels") else value
    return opts


# -------------------------------------------------------------------------------------------------- inputs


def _stdin_is_piped() -> bool:
    try:
        return not sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def read_inputs(args) -> tuple[list, bool]:
    """(inputs, from_file): every input as a str or a parsed JSON value."""
    jsonl = bool(args.jsonl) or bool(args.file and args.file.endswith(".jsonl"))
    lines, from_file = [], False
    if args.file:
        from_file = True
        if args.file == "-":
            lines += sys.stdin.read().splitlines()
        else:
            if not os.path.isfile(args.file):
                raise FileNotFoundError(f"input file {args.file} does not exist")
            with open(args.file, encoding="utf-8") as f:
                lines += f.read().splitlines()
    for value in args.inputs:
        if value == "-":
            lines += sys.stdin.read().splitlines()
            from_file = True
        else:
            lines.append(value)
    question, context = getattr(args, "question", None), getattr(args, "context", None)
    if not lines and not args.file and not args.inputs:
        if args.task == "question-answering" and question is not None and context is not None:
            return [{"question": question, "context": context}], False
        if not _stdin_is_piped():
            raise UsageError("no inputs: give them as arguments, with --file F, or on stdin")
        lines = sys.stdin.read().splitlines()
        from_file = True
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue  # blank lines separate nothing and would only fail in the tokenizer
        if jsonl:
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UsageError(f"input {n} is not valid JSON ({exc.msg}): {line[:60]!r}") from None
        else:
            items.append(line)
    if not items:
        raise UsageError("no inputs (only blank lines)")
    return [_shape_input(args, item) for item in items], from_file


def _shape_input(args, item):
    """Task-specific input forms: QA's --question/--context, NSP's tab-separated pair."""
    task = args.task
    if task == "question-answering":
        question, context = args.question, args.context
        if isinstance(item, str):
            if question is not None and context is None:
                return {"question": question, "context": item}
            if context is not None and question is None:
                return {"question": item, "context": context}
            raise UsageError("question-answering: give --question (inputs are contexts) or --context (inputs are "
                             "questions), or JSON lines with question and context")
        if isinstance(item, dict):
            item = dict(item)
            if question is not None:
                item.setdefault("question", question)
            if context is not None:
                item.setdefault("context", context)
    if task == "next-sentence-prediction" and isinstance(item, str):
        if "\t" not in item:
            raise UsageError("next-sentence-prediction: separate the two texts by a tab, or use JSON lines "
                             '{"text": ..., "text_pair": ...}')
        first, second = item.split("\t", 1)
        return {"text": first, "text_pair": second}
    if isinstance(item, dict) and task not in DICT_INPUTS:
        if set(item) == {"text"} or set(item) == {"inputs"}:
            return next(iter(item.values()))
        raise UsageError(f"{task} takes texts; got a JSON object with keys {sorted(item)}")
    if not isinstance(item, (str, dict)):
        raise UsageError(f"{task}: each input must be a text or a JSON object, got {type(item).__name__}")
    if task == "multiple-choice" and not isinstance(item, dict):
        raise UsageError('multiple-choice takes JSON lines, e.g. {"question": ..., "choices": [...]}')
    return item


# -------------------------------------------------------------------------------------------------- running


class Progress:
    """A plain progress bar on stderr: `[#####.....]  120/300  40%  35.1/s  eta 5s`."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.total, self.enabled, self.done = total, enabled, 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {frac:4.0%} {rate:7.1f}/s eta {eta:4.0f}s")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _call_chunk(pipe, task: str, chunk: list, opts: dict) -> list:
    """One result per input of chunk, whatever the pipeline's transformers-style wrapping."""
    mode = DICT_INPUTS.get(task)
    if task in LIST_TASKS and not (mode == "keywords" and any(isinstance(i, dict) for i in chunk)):
        result = pipe(list(chunk), **opts)
        if len(chunk) == 1 and task == "fill-mask":
            # transformers unwraps a one-text list; tolerate both forms
            wrapped = isinstance(result, list) and len(result) == 1 and isinstance(result[0], list)
            return [result[0] if wrapped else result]
        result = _to_list(result)
        if len(result) != len(chunk):
            raise RuntimeError(f"{task} returned {len(result)} results for {len(chunk)} inputs")
        return result
    out = []
    for item in chunk:
        if isinstance(item, dict) and mode == "keywords":
            out.append(pipe(**{**opts, **item}))
        else:
            out.append(pipe(item, **opts))
    return out


def _to_list(value):
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def load_task_pipeline(args):
    from . import hub
    from .pipelines import pipeline

    model = args.model
    if model is None:
        if args.task not in DEFAULT_MODEL_TASKS:
            raise UsageError(f"{args.task} needs --model DIR (a {TASKS[args.task][1].replace('Pipeline', '')} "
                             "model directory)")
        from .default_model import default_model_dir

        model = default_model_dir()
    hub.resolve_model_dir(model, kind="model")  # a clear "not found" before any other work
    return pipeline(args.task, model=model, tokenizer=args.tokenizer, batch_size=args.batch_size,
                    num_threads=args.threads, backend=args.backend, quantize=args.quantize)


def run_task(args) -> int:
    items, from_file = read_inputs(args)
    opts = task_options(args)
    if args.task == "zero-shot-classification" and "candidate_labels" not in opts and not all(
            isinstance(i, dict) and "candidate_labels" in i for i in items):
        raise UsageError("zero-shot-classification needs --candidate-labels (comma-separated)")
    pipe = load_task_pipeline(args)
    show = from_file and (args.progress or _stderr_is_tty())
    progress = Progress(len(items), show)
    chunk_size = max(8, 4 * args.batch_size)
    out = sys.stdout
    for start in range(0, len(items), chunk_size):
        chunk = items[start:start + chunk_size]
        for item, result in zip(chunk, _call_chunk(pipe, args.task, chunk, opts)):
            out.write(json.dumps({"input": item, "output": result}, default=_json_default, ensure_ascii=False))
            out.write("\n")
        out.flush()
        progress.update(len(chunk))
    return 0


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
