"""`mobilebert-lite bench` (time a model on a few input shapes) and `mobilebert-lite demo` (semantic search with
the default sentence model over a small bundled set of sentences)."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

DEMO_SENTENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "demo_sentences.txt")
DEMO_QUERIES = (
    "How do I cook pasta?",
    "Which planet is closest to the sun?",
    "My laptop will not turn on.",
    "Tips for staying healthy",
)


# ---------------------------------------------------------------------------------------------------- bench


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """"1x16,8x128" -> [(1, 16), (8, 128)] (batch x tokens)."""
    shapes = []
    for part in text.split(","):
        try:
            batch, length = (int(v) for v in part.lower().split("x"))
        except ValueError:
            raise ValueError(f"--shapes takes BATCHxTOKENS items like 1x16,8x128; got {part!r}") from None
        if batch < 1 or length < 2:
            raise ValueError(f"shape {part!r}: batch must be >= 1 and tokens >= 2")
        shapes.append((batch, length))
    return shapes


def _bench_model_dir(args) -> tuple[str, str]:
    if args.model:
        return args.model, "given"
    from .default_model import default_model_dir

    try:
        return default_model_dir(), "default all-MiniLM-L6-v2"
    except FileNotFoundError:
        from .cli import example_model_dir

        return example_model_dir(), "random example (default model not installed)"


def cmd_bench(args) -> int:
    from . import modeling
    from .config import MobileBertConfig
    from .hub import resolve_model_dir

    shapes = parse_shapes(args.shapes)
    model_dir, origin = _bench_model_dir(args)
    model_dir = resolve_model_dir(model_dir)
    config = MobileBertConfig.from_pretrained(model_dir)
    name = (config.architectures or ["MobileBertModel"])[0]
    if name not in modeling.MODEL_CLASSES or name == "MobileBertForMultipleChoice":
        name = "MobileBertModel"  # time the encoder: the multiple-choice head wants a 3-D input
    model = modeling.MODEL_CLASSES[name].from_pretrained(model_dir, backend=args.backend, num_threads=args.threads,
                                                         quantize=args.quantize)
    if max(length for _, length in shapes) > config.max_position_embeddings:
        raise ValueError(f"the model takes at most {config.max_position_embeddings} tokens")
    rng = np.random.default_rng(0)
    rows = []
    for batch, length in shapes:
        ids = rng.integers(1000, config.vocab_size, size=(batch, length), dtype=np.int64)
        ids[:, 0], ids[:, -1] = 101 % config.vocab_size, 102 % config.vocab_size
        mask = np.ones_like(ids)
        model(input_ids=ids, attention_mask=mask)  # warm-up: workspace allocation, packing, caches
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - t0)
        median = float(np.median(times))
        rows.append({"batch": batch, "tokens": length, "ms_median": round(median * 1e3, 3),
                     "ms_min": round(min(times) * 1e3, 3), "tokens_per_s": round(batch * length / median, 1)})
    if args.json:
        json.dump({"model": model_dir, "origin": origin, "class": name, "backend": model.backend,
                   "threads": args.threads, "results": rows}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"model   {model_dir} ({origin})\nclass   {name}, backend {model.backend}, threads "
          f"{args.threads or 'default'}, median of {args.repeat} runs after one warm-up")
    print(f"{'shape':>10} {'ms':>10} {'min ms':>10} {'tokens/s':>12}")
    for r in rows:
        shape = f"{r['batch']}x{r['tokens']}"
        print(f"{shape:>10} {r['ms_median']:>10.2f} {r['ms_min']:>10.2f} {r['tokens_per_s']:>12.0f}")
    return 0


# ---------------------------------------------------------------------------------------------------- demo


def read_demo_sentences(path: str = DEMO_SENTENCES) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def sentence_embedder(model_dir: str, *, backend=None, threads=None, batch_size: int = 1, quantize=None):
    """(embed(texts) -> unit vectors [n, hidden], description). Prefers the SentenceEmbeddingPipeline; without it,
    mean pooling over MobileBertModel's last hidden state (what sentence-transformers does for this model)."""
    try:
        from .pipelines import pipeline

        pipe = pipeline("sentence-embeddings", model=model_dir, batch_size=batch_size, num_threads=threads,
                        backend=backend, quantize=quantize)
    except ImportError:
        pipe = None
    if pipe is not None:
        def embed(texts):
            return _unit(np.asarray(pipe(list(texts), pooling="mean", normalize=True), dtype=np.float32))

        return embed, "SentenceEmbeddingPipeline (mean pooling)"

    from .modeling import MobileBertModel
    from .tokenization import MobileBertTokenizerFast

    model = MobileBertModel.from_pretrained(model_dir, backend=backend, num_threads=threads, quantize=quantize)
    tokenizer = MobileBertTokenizerFast.from_pretrained(model_dir)

    def embed(texts):
        vectors = []
        for text in texts:  # one unpadded sequence at a time: exactly its own result
            enc = tokenizer(text, truncation=True, max_length=256, return_tensors="np")
            hidden = model(**enc).last_hidden_state[0]
            vectors.append(hidden.mean(axis=0))
        return _unit(np.stack(vectors))

    return embed, "mean pooling over MobileBertModel"


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cmd_demo(args) -> int:
    from .default_model import DEFAULT_MODEL_NAME, default_model_dir
    from .hub import resolve_model_dir

    t0 = time.perf_counter()
    model_dir = resolve_model_dir(args.model) if args.model else default_model_dir()
    sentences = read_demo_sentences(args.sentences or DEMO_SENTENCES)
    if not sentences:
        raise ValueError("the sentence file holds no sentences")
    queries = args.query or list(DEMO_QUERIES)
    embed, how = sentence_embedder(model_dir, backend=args.backend, threads=args.threads,
                                   batch_size=args.batch_size, quantize=args.quantize)
    embed(sentences[:1])  # warm-up, so the timing below is steady-state
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    corpus = embed(sentences)
    corpus_s = time.perf_counter() - t1
    found = embed(queries) @ corpus.T
    name = "given model" if args.model else DEFAULT_MODEL_NAME
    print(f"model     {name} as MobileBERT, {model_dir}")
    print(f"encoder   {how}; ready in {load_s:.2f} s (first use converts and caches the model)")
    print(f"encoded   {len(sentences)} sentences in {corpus_s * 1e3:.1f} ms: "
          f"{corpus_s * 1e3 / len(sentences):.2f} ms per sentence")
    for query, scores in zip(queries, found):
        print(f"\nquery: {query}")
        for rank, i in enumerate(np.argsort(-scores, kind="stable")[:args.top_k], 1):
            print(f"  {rank}. {scores[i]:.3f}  {sentences[i]}")
    return 0
