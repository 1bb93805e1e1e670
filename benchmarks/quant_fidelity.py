#!/usr/bin/env python
"""int8 fidelity: mobilebert-lite int8 vs ONNX Runtime dynamic int8, each against its own fp32 engine and against
PyTorch (transformers) fp32, on the same weights and the same tokenized sentences.

    python benchmarks/quant_fidelity.py                   # both models, 384 inputs each
    python benchmarks/quant_fidelity.py --quick           # 48 inputs each (smoke run)
    python benchmarks/quant_fidelity.py --json fid.json --models minilm --inputs 200

Models
  uncased  the random-weight google/mobilebert-uncased-shape MobileBERT of bench_model.py (_common.build_all: 24
           layers, NoNorm, trigram input, bottleneck, 4 FFNs, ReLU; HF init seed 0 + N(0, 0.02) on 1-D parameters);
  minilm   the default model: sentence-transformers/all-MiniLM-L6-v2's real weights converted to MobileBERT format
           (mobilebert_lite.default_model: LayerNorm, no bottleneck, GELU, 6 layers, hidden 384).
  Heads: one HF class per head (MobileBertForMaskedLM, ForSequenceClassification num_labels=3,
  ForQuestionAnswering, ForTokenClassification num_labels=9) holding the encoder's weights; head weights are HF's
  random init (seed 100) + N(0, 0.02) on their 1-D parameters (MiniLM ships no MLM or task heads). Our classes
  get the same tensors as `params` dicts.

Engines (2 threads each)
  ours fp32 / ours int8   MobileBert*(config, params, quantize=None / "int8"), backend="native";
  ORT fp32                one ONNX graph of the encoder + all four heads (torch.onnx.export, TorchScript exporter,
                          opset 17, dynamic batch/sequence; the MLM head is applied at the [MASK] position only,
                          given as a 4th input), CPU EP, ORT_ENABLE_ALL, sequential, intra-op threads 2;
  ORT int8 default        quantize_dynamic(fp32, out, weight_type=QuantType.QInt8) and every other argument at its
                          default: per_channel=False, reduce_range=False, op_types_to_quantize=None (= all of
                          MatMul, Gather, Conv, Attention, LSTM, Transpose, EmbedLayerNormalization present: here the
                          MatMuls with a constant B and the embedding Gathers), extra_options={} (so
                          MatMulConstBOnly=True); activations: dynamic uint8, asymmetric, one scale per tensor;
  ORT int8 per-channel    the same with per_channel=True (one weight scale per output column);
  ORT int8 pc, our plan   (extra, not one of ORT's defaults) per_channel=True restricted with nodes_to_quantize to
                          the MatMuls our int8 plan quantises (encoder Linears and embedding_transformation): word
                          embeddings, pooler and heads stay fp32, as in ours;
  PyTorch fp32            the same torch module that was exported (checked against the HF classes' own forward).

Inputs: texts of mobilebert_lite/data/demo_sentences.txt and the prose-like texts of tests/data/tokenizer_corpus.jsonl,
tokenized with MobileBertTokenizerFast (bundled vocab); token budgets 8..128 (30% sentence pairs with token type 1),
one random non-special token per input replaced by [MASK] (every figure uses these inputs); random batches of 8
padded to their longest input. The same inputs (seed 0) for both models.

Runtime (2-vCPU VM, other jobs running): 5 min for the full run, 45 s with --quick, plus ~1 min the first time for
the ONNX exports and quantize_dynamic runs, cached in <workdir>/fidelity/<model>-<hash of the weights>/.

Figures (errors over the non-padding positions of all inputs, pooled over all of them):
  max rel err  = max|x - x_fp32| / max|x_fp32|;  mean rel err = mean|x - x_fp32| / mean|x_fp32|
  of last_hidden_state, hidden_states[k] (several layers; [0] = embedding output), MLM logits at the [MASK]
  position, sequence-classification logits, QA start/end logits, token-classification logits;
  top-1 agreement with fp32 of the fill-mask prediction (MLM argmax at [MASK]), of the sequence-classification
  argmax, of the token-classification argmax (every real token) and of the QA start/end argmax;
  cosine with fp32 of the sentence embeddings (mean pooling of last_hidden_state over the attention mask): mean, min.
Each int8 engine is compared with its own fp32 engine (first number) and with PyTorch fp32 (in parentheses).
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

# Threads of the libraries that read them at import (torch's OpenMP, numpy's BLAS): 2 unless the caller chose.
for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's OpenMP workers must not spin while other engines run
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO_SENTENCES = REPO / "mobilebert_lite" / "data" / "demo_sentences.txt"
CORPUS = REPO / "tests" / "data" / "tokenizer_corpus.jsonl"
EXPORT_VERSION = "quant_fidelity-export-v1"  # bump when the exported graph changes
OPSET = 17
HEAD_SEED = 100
SEQ_LABELS = 3
TOK_LABELS = 9
BATCH = 8
MAX_LEN = 128

ORT_MODES = {
    # name: (label, quantize_dynamic keyword arguments, restrict to our int8 plan)
    "ort_int8": ("ORT int8 default", {"weight_type": "QInt8"}, False),
    "ort_int8_pc": ("ORT int8 per-channel", {"weight_type": "QInt8", "per_channel": True}, False),
    "ort_int8_plan": ("ORT int8 pc, our plan", {"weight_type": "QInt8", "per_channel": True}, True),
}
FP32_NOISE = 1e-5  # two errors both below this are fp32 rounding (no int8 op before that output): a tie
REQUIRED_ORT = ("ort_int8", "ort_int8_pc")  # the verdict line compares ours with these two of ORT's own settings
INT8_ENGINES = ("ours_int8",) + tuple(ORT_MODES)
OWN_FP32 = {"ours_int8": "ours_fp32", **{k: "ort_fp32" for k in ORT_MODES}}
LABEL = {"ours_int8": "ours int8", **{k: v[0] for k, v in ORT_MODES.items()}}


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------------------

def load_texts() -> list:
    texts = [ln.strip() for ln in DEMO_SENTENCES.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        # prose-like: >= 4 words, mostly ASCII letters (the corpus also holds control characters, emoji, CJK...)
        if isinstance(t, str) and len(t.split()) >= 4 and sum(c.isascii() and c.isalpha() for c in t) > 0.7 * len(t):
            texts.append(t)
    return texts


def make_inputs(n: int, seed: int = 0) -> tuple:
    """n tokenized inputs in random batches of BATCH, padded per batch. Returns (batches, description)."""
    import numpy as np

    from mobilebert_lite import MobileBertTokenizerFast

    tok = MobileBertTokenizerFast()
    cls_id, sep_id, mask_id, pad_id = (tok.convert_tokens_to_ids(t) for t in ("[CLS]", "[SEP]", "[MASK]", "[PAD]"))
    texts = load_texts()
    pieces = tok(texts, add_special_tokens=False)["input_ids"]
    pieces = [p for p in pieces if p]
    rng = np.random.default_rng(seed)

    def stream(k):  # k tokens from random texts joined one after the other
        out = []
        while len(out) < k:
            out.extend(pieces[rng.integers(len(pieces))])
        return out[:k]

    examples = []
    for _ in range(n):
        r = rng.random()
        budget = int(rng.integers(8, 33) if r < 0.4 else rng.integers(33, 97) if r < 0.8 else rng.integers(97, 129))
        if rng.random() < 0.3 and budget >= 12:  # a sentence pair: [CLS] a [SEP] b [SEP]
            na = int(rng.integers(2, budget - 5))
            a, b = stream(na), stream(budget - 3 - na)
            ids = [cls_id] + a + [sep_id] + b + [sep_id]
            tt = [0] * (na + 2) + [1] * (len(b) + 1)
        else:
            ids = [cls_id] + stream(budget - 2) + [sep_id]
            tt = [0] * len(ids)
        real = [i for i, t in enumerate(ids) if t not in (cls_id, sep_id)]
        pos = int(real[rng.integers(len(real))])
        ids[pos] = mask_id
        examples.append((ids, tt, pos))
    order = rng.permutation(n)
    batches = []
    for s in range(0, n, BATCH):
        group = [examples[i] for i in order[s:s + BATCH]]
        L = max(len(e[0]) for e in group)
        B = len(group)
        ids = np.full((B, L), pad_id, np.int64)
        mask = np.zeros((B, L), np.int64)
        tt = np.zeros((B, L), np.int64)
        pos = np.zeros(B, np.int64)
        for j, (i_, t_, p_) in enumerate(group):
            ids[j, :len(i_)] = i_
            mask[j, :len(i_)] = 1
            tt[j, :len(t_)] = t_
            pos[j] = p_
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": tt, "mask_pos": pos})
    lens = np.array([len(e[0]) for e in examples])
    padded = sum(b["input_ids"].size for b in batches)
    desc = {"inputs": n, "batches": len(batches), "batch_size": BATCH, "texts_in_pool": len(pieces),
            "pairs": int(sum(1 for e in examples if 1 in e[1])), "len_min": int(lens.min()),
            "len_median": float(np.median(lens)), "len_max": int(lens.max()), "real_tokens": int(lens.sum()),
            "padding_share": round(float(1 - lens.sum() / padded), 3), "seed": seed}
    return batches, desc


# --------------------------------------------------------------------------------------------------------------
# models: HF classes sharing one encoder, the torch module that is exported, our classes
# --------------------------------------------------------------------------------------------------------------

def hidden_layers(num_layers: int) -> list:
    return sorted({0, round(num_layers / 4), round(num_layers / 2), round(3 * num_layers / 4)} - {num_layers})


def build_hf(model_name: str, workdir: Path):
    """(dict of HF models by head, encoder config, description)."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if model_name == "uncased":
        meta = C.build_all(workdir, log=log)
        src = C.paths(workdir)["hf"]
        desc = f"random google/mobilebert-uncased shape (bench_model.py's, {meta['num_hidden_layers']} layers)"
    else:
        from mobilebert_lite.default_model import DEFAULT_MODEL_NAME, default_model_dir

        src = Path(default_model_dir())
        desc = f"{DEFAULT_MODEL_NAME} (real weights, default model)"
    base = transformers.MobileBertModel.from_pretrained(str(src)).eval()
    enc_sd = base.state_dict()
    cfg = base.config
    torch.manual_seed(HEAD_SEED)
    heads = {}
    for head, cls_name, num_labels in (("mlm", "MobileBertForMaskedLM", None),
                                       ("seq", "MobileBertForSequenceClassification", SEQ_LABELS),
                                       ("qa", "MobileBertForQuestionAnswering", 2),
                                       ("tok", "MobileBertForTokenClassification", TOK_LABELS)):
        c = copy.deepcopy(cfg)
        if num_labels is not None:
            c.num_labels = num_labels
        c.architectures = [cls_name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MiniLM's MLM head has a zero-size dense (hidden == embedding size)
            m = getattr(transformers, cls_name)(c).eval()
        missing, unexpected = m.mobilebert.load_state_dict(enc_sd, strict=False)
        if unexpected and not all(k.startswith("pooler.") for k in unexpected):
            raise RuntimeError(f"{cls_name}: unexpected encoder tensors {unexpected[:3]}")
        if missing:
            raise RuntimeError(f"{cls_name}: encoder tensors not loaded {missing[:3]}")
        g = torch.Generator().manual_seed(HEAD_SEED + len(heads) + 1)
        with torch.no_grad():
            for name, prm in m.named_parameters():
                if not name.startswith("mobilebert.") and prm.ndim == 1:
                    prm.add_(torch.randn(prm.shape, generator=g) * 0.02)
        heads[head] = m
    mlm = heads["mlm"]
    if not torch.equal(mlm.cls.predictions.decoder.weight, mlm.mobilebert.embeddings.word_embeddings.weight):
        raise RuntimeError("MLM decoder is not tied to the word embeddings")
    return heads, base, cfg, desc


def make_multihead(base, heads, layers):
    """The torch module exported to ONNX and used as the PyTorch fp32 reference: HF's encoder once, then each HF
    class's own head modules (dropout is the identity in eval)."""
    import torch

    class MultiHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = base
            self.mlm_head = heads["mlm"].cls
            self.seq_head = heads["seq"].classifier
            self.qa_head = heads["qa"].qa_outputs
            self.tok_head = heads["tok"].classifier

        def forward(self, input_ids, attention_mask, token_type_ids, mask_pos):
            o = self.enc(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         output_hidden_states=True, return_dict=True)
            seq = o.last_hidden_state
            at_mask = seq.gather(1, mask_pos.view(-1, 1, 1).expand(-1, 1, seq.shape[-1])).squeeze(1)
            qa = self.qa_head(seq)
            outs = [seq] + [o.hidden_states[k] for k in layers]
            outs += [self.mlm_head(at_mask), self.seq_head(o.pooler_output), qa[..., 0].contiguous(),
                     qa[..., 1].contiguous(), self.tok_head(seq)]
            return tuple(outs)

    return MultiHead().eval()


def output_names(layers) -> list:
    return (["last_hidden_state"] + [f"hidden_states.{k}" for k in layers]
            + ["mlm_logits", "seq_logits", "start_logits", "end_logits", "token_logits"])


def check_multihead(mh, heads, batch, layers) -> float:
    """max |multihead - HF class's own forward| over every output (the exported graph computes what the HF classes
    compute)."""
    import torch

    t = {k: torch.from_numpy(batch[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        got = dict(zip(output_names(layers), mh(**t, mask_pos=torch.from_numpy(batch["mask_pos"]))))
        worst = 0.0
        mlm = heads["mlm"](**t).logits
        want = {"mlm_logits": mlm[torch.arange(mlm.shape[0]), torch.from_numpy(batch["mask_pos"])],
                "seq_logits": heads["seq"](**t).logits, "token_logits": heads["tok"](**t).logits}
        qa = heads["qa"](**t, output_hidden_states=True)
        want["start_logits"], want["end_logits"] = qa.start_logits, qa.end_logits
        want["last_hidden_state"] = qa.hidden_states[-1]
        for k in layers:
            want[f"hidden_states.{k}"] = qa.hidden_states[k]
        for k, v in want.items():
            worst = max(worst, float((got[k] - v).abs().max() / v.abs().max().clamp_min(1e-30)))
    return worst


def state_hash(mh) -> str:
    import torch

    h = hashlib.sha1(EXPORT_VERSION.encode())
    for k, v in mh.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def export_and_quantize(mh, layers, batch, out_dir: Path) -> dict:
    """ONNX fp32 of the multi-head module + the ORT int8 variants (cached in out_dir). Returns {name: path}."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"ort_fp32": out_dir / "fp32.onnx", **{k: out_dir / f"{k}.onnx" for k in ORT_MODES}}
    names_in = ["input_ids", "attention_mask", "token_type_ids", "mask_pos"]
    names_out = output_names(layers)
    if not files["ort_fp32"].exists():
        t0 = time.perf_counter()
        args = tuple(torch.from_numpy(batch[k]) for k in names_in)
        dyn = {n: {0: "batch", 1: "sequence"} for n in names_in[:3]}
        dyn["mask_pos"] = {0: "batch"}
        for n in names_out:
            dyn[n] = {0: "batch"} if n in ("mlm_logits", "seq_logits") else {0: "batch", 1: "sequence"}
        tmp = files["ort_fp32"].with_suffix(".tmp")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation, tracer warnings (checked below)
            torch.onnx.export(mh, args, str(tmp), input_names=names_in, output_names=names_out, dynamic_axes=dyn,
                              opset_version=OPSET, do_constant_folding=True, dynamo=False)
        tmp.rename(files["ort_fp32"])
        log(f"[export] torch.onnx.export(TorchScript, opset {OPSET}) -> {files['ort_fp32']} "
            f"({time.perf_counter() - t0:.1f} s)")
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    for name, (label, kw, plan) in ORT_MODES.items():
        if files[name].exists():
            continue
        t0 = time.perf_counter()
        kwargs = {k: (getattr(QuantType, v) if k == "weight_type" else v) for k, v in kw.items()}
        if plan:
            g = onnx.load(str(files["ort_fp32"]), load_external_data=False).graph
            consts = {i.name for i in g.initializer}
            kwargs["nodes_to_quantize"] = [n.name for n in g.node if n.op_type == "MatMul" and n.input[1] in consts
                                           and ("/encoder/" in n.name or "embedding_transformation" in n.name)]
            if not kwargs["nodes_to_quantize"]:
                raise RuntimeError("no encoder MatMul found by name in the exported graph")
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic warns about pre-processing and every integer tensor
        tmp = files[name].with_suffix(".tmp")
        try:
            quantize_dynamic(str(files["ort_fp32"]), str(tmp), **kwargs)
        finally:
            root.setLevel(level)
        tmp.rename(files[name])
        log(f"[export] {label}: quantize_dynamic({', '.join(f'{k}={v}' for k, v in kw.items())}"
            f"{', nodes_to_quantize=<encoder MatMuls>' if plan else ''}) ({time.perf_counter() - t0:.1f} s)")
    return files


def graph_summary(path: Path) -> dict:
    """What quantize_dynamic did: op counts of the int8 graph and int8 initialisers."""
    import numpy as np
    import onnx

    g = onnx.load(str(path)).graph
    ops = {}
    for n in g.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    int8 = [i for i in g.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]  # weights
    keep = ("MatMul", "MatMulInteger", "DynamicQuantizeLinear", "Gather", "DequantizeLinear", "Gemm")
    return {"ops": {k: ops[k] for k in keep if k in ops}, "int8_weights": len(int8),
            "int8_params_M": round(sum(int(np.prod(i.dims)) for i in int8) / 1e6, 2),
            "mb": round(path.stat().st_size / 2**20, 1)}


# --------------------------------------------------------------------------------------------------------------
# engines: each returns, per batch, the dict of output_names(layers)
# --------------------------------------------------------------------------------------------------------------

def make_ours(heads, layers, quantize, threads):
    import numpy as np

    import mobilebert_lite as mbl

    models = {}
    for head, m in heads.items():
        cfg = mbl.MobileBertConfig.from_dict(m.config.to_dict())
        params = {k: v.detach().numpy() for k, v in m.state_dict().items()}
        cls = getattr(mbl, type(m).__name__)
        models[head] = cls(cfg, params, backend="native", num_threads=threads, quantize=quantize)
    if quantize:
        n = getattr(models["tok"].engine, "int8_linears", None)
        log(f"[ours] quantize={quantize!r}: {n} int8 Linears in the native engine")

    def run(b):
        feed = {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        B = b["input_ids"].shape[0]
        t = models["tok"](**feed, output_hidden_states=True)
        qa = models["qa"](**feed)
        pos = np.stack([np.arange(B), b["mask_pos"]], 1)
        out = {"last_hidden_state": t.hidden_states[-1], "token_logits": t.logits,
               "mlm_logits": models["mlm"].logits_at(pos, **feed), "seq_logits": models["seq"](**feed).logits,
               "start_logits": qa.start_logits, "end_logits": qa.end_logits}
        for k in layers:
            out[f"hidden_states.{k}"] = t.hidden_states[k]
        return out

    return run, models


def make_ort(path: Path, layers, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # engines alternate; no timing here
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = output_names(layers)

    def run(b):
        return dict(zip(names, s.run(names, {k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids",
                                                                 "mask_pos")})))

    return run


def make_torch(mh, layers, threads):
    import torch

    torch.set_num_threads(threads)
    names = output_names(layers)

    def run(b):
        with torch.no_grad():
            t = {k: torch.from_numpy(v) for k, v in b.items()}
            return {k: v.numpy() for k, v in zip(names, mh(**t))}

    return run


# --------------------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------------------

class Acc:
    """Pooled error and agreement statistics of one (int8 engine, reference) pair."""

    def __init__(self):
        self.err = {}  # figure -> [max|d|, max|ref|, sum|d|, sum|ref|]
        self.agree = {}  # figure -> [agree, total]
        self.cos = []

    def add_err(self, fig, x, ref):
        import numpy as np

        x = np.asarray(x, np.float64)
        ref = np.asarray(ref, np.float64)
        d = np.abs(x - ref)
        a = self.err.setdefault(fig, [0.0, 0.0, 0.0, 0.0])
        a[0] = max(a[0], float(d.max(initial=0)))
        a[1] = max(a[1], float(np.abs(ref).max(initial=0)))
        a[2] += float(d.sum())
        a[3] += float(np.abs(ref).sum())

    def add_agree(self, fig, x, ref):
        import numpy as np

        a = self.agree.setdefault(fig, [0, 0])
        a[0] += int(np.sum(np.asarray(x) == np.asarray(ref)))
        a[1] += int(np.asarray(ref).size)

    def figures(self) -> dict:
        import numpy as np

        out = {}
        for fig, (dmax, rmax, dsum, rsum) in self.err.items():
            out[f"{fig}: max rel err"] = dmax / rmax if rmax else float("nan")
            out[f"{fig}: mean rel err"] = dsum / rsum if rsum else float("nan")
        for fig, (n, tot) in self.agree.items():
            out[f"{fig}: top-1 agreement"] = n / tot if tot else float("nan")
        if self.cos:
            c = np.array(self.cos)
            out["sentence embedding: cosine mean"] = float(c.mean())
            out["sentence embedding: cosine min"] = float(c.min())
        return out


def compare(acc: Acc, x: dict, ref: dict, b: dict, layers) -> None:
    import numpy as np

    m = b["attention_mask"].astype(bool)
    for k in ["last_hidden_state"] + [f"hidden_states.{k}" for k in layers]:
        acc.add_err(k, x[k][m], ref[k][m])
    acc.add_err("MLM logits at [MASK]", x["mlm_logits"], ref["mlm_logits"])
    acc.add_err("seq-cls logits", x["seq_logits"], ref["seq_logits"])
    acc.add_err("QA start/end logits", np.stack([x["start_logits"][m], x["end_logits"][m]]),
                np.stack([ref["start_logits"][m], ref["end_logits"][m]]))
    acc.add_err("token-cls logits", x["token_logits"][m], ref["token_logits"][m])
    acc.add_agree("fill-mask", x["mlm_logits"].argmax(-1), ref["mlm_logits"].argmax(-1))
    acc.add_agree("seq-cls", x["seq_logits"].argmax(-1), ref["seq_logits"].argmax(-1))
    acc.add_agree("token-cls", x["token_logits"][m].argmax(-1), ref["token_logits"][m].argmax(-1))
    neg = np.float32(-np.inf)
    for k in ("start_logits", "end_logits"):
        acc.add_agree("QA start/end", np.where(m, x[k], neg).argmax(-1), np.where(m, ref[k], neg).argmax(-1))
    w = m[..., None].astype(np.float64)

    def pool(h):
        return (np.asarray(h, np.float64) * w).sum(1) / w.sum(1)

    e, r = pool(x["last_hidden_state"]), pool(ref["last_hidden_state"])
    acc.cos.extend((np.sum(e * r, 1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(r, axis=1))).tolist())


def lower_is_better(fig: str) -> bool:
    return "err" in fig


# --------------------------------------------------------------------------------------------------------------
# one model
# --------------------------------------------------------------------------------------------------------------

def run_model(model_name: str, batches, a) -> dict:
    t_start = time.perf_counter()
    import numpy as np

    heads, base, cfg, desc = build_hf(model_name, Path(a.workdir))
    layers = hidden_layers(cfg.num_hidden_layers)
    mh = make_multihead(base, heads, layers)
    import torch

    torch.set_num_threads(a.threads)
    check = check_multihead(mh, heads, batches[0], layers)
    if check > 1e-5:
        raise RuntimeError(f"exported module differs from the HF classes' forward by {check:.2e} (relative)")
    key = state_hash(mh)
    out_dir = Path(a.workdir) / "fidelity" / f"{model_name}-{key}"
    for old in out_dir.parent.glob(f"{model_name}-*"):  # exports of other weights or an older EXPORT_VERSION
        if old != out_dir and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    files = export_and_quantize(mh, layers, batches[0], out_dir)
    log(f"[{model_name}] {desc}: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
        f"{cfg.normalization_type}, {cfg.hidden_act}; hidden states compared at layers {layers}; "
        f"ONNX in {out_dir} ({time.perf_counter() - t_start:.1f} s so far)")

    runs = {"torch": make_torch(mh, layers, a.threads)}
    ours_fp32, _ = make_ours(heads, layers, None, a.threads)
    ours_int8, ours_models = make_ours(heads, layers, "int8", a.threads)
    runs["ours_fp32"], runs["ours_int8"] = ours_fp32, ours_int8
    for name in ("ort_fp32",) + tuple(ORT_MODES):
        runs[name] = make_ort(files[name], layers, a.threads)

    accs = {(e, ref): Acc() for e in INT8_ENGINES for ref in ("own", "torch")}
    base_accs = {e: Acc() for e in ("ours_fp32", "ort_fp32")}  # fp32 engines vs PyTorch fp32
    secs = dict.fromkeys(runs, 0.0)
    for i, b in enumerate(batches):
        outs = {}
        for name, run in runs.items():
            t0 = time.perf_counter()
            outs[name] = {k: np.asarray(v, np.float32) for k, v in run(b).items()}
            secs[name] += time.perf_counter() - t0
        for e in INT8_ENGINES:
            compare(accs[(e, "own")], outs[e], outs[OWN_FP32[e]], b, layers)
            compare(accs[(e, "torch")], outs[e], outs["torch"], b, layers)
        for e in base_accs:
            compare(base_accs[e], outs[e], outs["torch"], b, layers)
        if (i + 1) % 10 == 0 or i + 1 == len(batches):
            log(f"  [{model_name}] batch {i + 1}/{len(batches)}  ({time.perf_counter() - t_start:.0f} s)")
    figs = {}
    for (e, ref), acc in accs.items():
        for fig, v in acc.figures().items():
            figs.setdefault(fig, {}).setdefault(e, {})[ref] = v
    counts = {f"{fig}: top-1 agreement": {e: {ref: accs[(e, ref)].agree[fig] for ref in ("own", "torch")}
                                          for e in INT8_ENGINES}
              for fig in accs[("ours_int8", "own")].agree}
    baseline = {e: acc.figures() for e, acc in base_accs.items()}
    return {
        "model": desc,
        "config": {k: getattr(cfg, k) for k in ("num_hidden_layers", "hidden_size", "intermediate_size",
                                                "embedding_size", "intra_bottleneck_size", "use_bottleneck",
                                                "trigram_input", "num_feedforward_networks", "normalization_type",
                                                "hidden_act", "classifier_activation")},
        "hidden_state_layers": layers,
        "export_check_max_rel_diff_vs_hf_classes": check,
        "onnx_dir": str(out_dir),
        "ort_graphs": {k: graph_summary(files[k]) for k in ("ort_fp32",) + tuple(ORT_MODES)},
        "ours_int8_linears": getattr(ours_models["tok"].engine, "int8_linears", None),
        "engine_seconds": {k: round(v, 2) for k, v in secs.items()},
        "figures": figs,
        "agreement_counts": counts,  # [equal argmaxes, argmaxes]
        "fp32_vs_torch": baseline,
        "seconds": round(time.perf_counter() - t_start, 1),
    }


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------

def fmt(fig: str, v) -> str:
    if v is None or v != v:
        return "-"
    if "agreement" in fig:
        return f"{100 * v:.2f}%"
    if "cosine" in fig:
        return f"1-{1 - v:.2e}"  # 1 - 1.4e-05 = 0.999986
    return f"{v:.2e}"


def verdict(fig: str, vals: dict, against) -> str:
    """'closer' | 'tie' | 'farther': ours vs the ORT engines `against`, on both references."""
    ours = vals.get("ours_int8", {})
    worse = tie = False
    for e in against:
        for ref in ("own", "torch"):
            o, t = ours.get(ref), vals.get(e, {}).get(ref)
            if o is None or t is None:
                continue
            better = o < t if lower_is_better(fig) else o > t
            if o == t or (lower_is_better(fig) and max(o, t) < FP32_NOISE):
                tie = True
            elif not better:
                worse = True
    return "farther" if worse else "tie" if tie else "closer"


def print_report(res: dict) -> tuple:
    hdr = ["model", "figure", LABEL["ours_int8"]] + [LABEL[e] for e in ORT_MODES] + ["ours vs ORT"]
    rows = []
    exceptions, exceptions_plan, n = [], [], 0
    for model_name, r in res["models"].items():
        for fig, vals in r["figures"].items():
            cnt = r.get("agreement_counts", {}).get(fig)
            row = [model_name, fig + (f" (n={cnt['ours_int8']['own'][1]})" if cnt else "")]
            for e in INT8_ENGINES:
                v = vals.get(e, {})
                row.append(f"{fmt(fig, v.get('own'))} ({fmt(fig, v.get('torch'))})")
            v_req = verdict(fig, vals, REQUIRED_ORT)
            v_plan = verdict(fig, vals, ("ort_int8_plan",))
            n += 1
            if v_req == "farther":
                exceptions.append(f"{model_name} {fig}")
            if v_plan == "farther":
                exceptions_plan.append(f"{model_name} {fig}")
            row.append(v_req if v_plan == v_req else f"{v_req} (plan: {v_plan})")
            rows.append(row)
    C.print_table(hdr, rows)
    print("\nEach cell: vs the engine's own fp32 (ours int8 vs ours fp32 native; ORT int8 vs ORT fp32), in parentheses"
          " vs PyTorch fp32.\n"
          "max rel err = max|x - fp32| / max|fp32|, mean rel err = mean|x - fp32| / mean|fp32|, pooled over every "
          "non-padding position of every input;\n"
          "agreement = share of argmaxes equal to fp32's (n = argmaxes compared); cosine (of the mean-pooled sentence "
          "embeddings) printed as 1-(1 - cos).\n"
          "ours vs ORT: closer = better than ORT default and per-channel against both references; tie = equal to one "
          "of them somewhere\n(two errors < 1e-5, i.e. fp32 rounding, count as equal); farther = worse somewhere; "
          "(plan: ...) = the same vs 'ORT int8 pc, our plan' where it differs.")
    print("\nfp32 engines vs PyTorch fp32 (max rel err of last_hidden_state / MLM logits; agreement fill-mask):")
    for model_name, r in res["models"].items():
        for e, f in r["fp32_vs_torch"].items():
            print(f"  {model_name:<8} {e:<10} {f['last_hidden_state: max rel err']:.2e} / "
                  f"{f['MLM logits at [MASK]: max rel err']:.2e}; {100 * f['fill-mask: top-1 agreement']:.2f}%")
    return exceptions, exceptions_plan, n


# --------------------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="48 inputs per model instead of 384 (smoke run)")
    ap.add_argument("--inputs", type=int, default=None, help="inputs per model (default 384; --quick 48)")
    ap.add_argument("--models", default="uncased,minilm", help="comma list of uncased,minilm (default %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="threads of every engine (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="input sampling seed (default %(default)s)")
    ap.add_argument("--workdir", default=str(C.DEFAULT_WORKDIR),
                    help="model/ONNX cache dir shared with bench_model.py (default %(default)s)")
    ap.add_argument("--json", default=None, help="write every figure to this file")
    a = ap.parse_args(argv)
    n = a.inputs or (48 if a.quick else 384)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in models:
        if m not in ("uncased", "minilm"):
            ap.error(f"unknown model {m!r}")
    started = _dt.datetime.now().astimezone()
    t0 = time.perf_counter()
    log(f"# quant_fidelity.py  {started:%Y-%m-%d %H:%M %Z}; {n} inputs per model, {a.threads} threads")
    batches, inputs_desc = make_inputs(n, a.seed)
    log(f"[inputs] {inputs_desc}")
    res = {"date": started.isoformat(timespec="seconds"), "mode": "quick" if a.quick else "full",
           "inputs": inputs_desc, "threads": a.threads, "cpu": C.cpu_model(), "versions": C.versions(),
           "ort_modes": {k: {"label": v[0], "quantize_dynamic_kwargs": v[1],
                             "nodes_to_quantize": "encoder MatMuls (our int8 plan)" if v[2] else None}
                         for k, v in ORT_MODES.items()},
           "models": {}}
    try:
        import mobilebert_lite as mbl

        res["runtime_info"] = {k: mbl.runtime_info().get(k) for k in ("isa", "kernels", "build")}
    except Exception as e:  # noqa: BLE001
        res["runtime_info"] = str(e)
    for m in models:
        try:
            res["models"][m] = run_model(m, batches, a)
        except FileNotFoundError as e:  # the default model's source package is not installed
            log(f"!! {m} skipped: {e}")
            res.setdefault("skipped", {})[m] = str(e)
    if not res["models"]:
        return 1
    print()
    print(f"CPU      : {res['cpu']}")
    ri = res["runtime_info"]
    print(f"ours     : {ri if isinstance(ri, str) else {k: ri[k] for k in ('isa', 'kernels')}}")
    print("versions : " + ", ".join(f"{k} {v}" for k, v in res["versions"].items() if v))
    print(f"inputs   : {inputs_desc}")
    for m, r in res["models"].items():
        print(f"{m:<9}: {r['model']}; hidden states at layers {r['hidden_state_layers']}; ours int8 Linears "
              f"{r['ours_int8_linears']}; ORT int8 graphs " + "; ".join(
                  f"{k}: {g['ops']}" for k, g in r["ort_graphs"].items() if k != "ort_fp32"))
    print()
    exceptions, exceptions_plan, nfig = print_report(res)
    print()
    if exceptions:
        print(f"VERDICT: ours is NOT closer to fp32 than ONNX Runtime dynamic int8 (default and per-channel) on every "
              f"figure: {len(exceptions)} of {nfig} figures farther: " + "; ".join(exceptions))
    else:
        print(f"VERDICT: ours is at least as close to fp32 as ONNX Runtime dynamic int8 (default and per-channel), "
              f"against both fp32 references, on all {nfig} figures (ties: see the last column).")
    if exceptions_plan:
        print(f"         vs 'ORT int8 pc, our plan': farther on {len(exceptions_plan)}: " + "; ".join(exceptions_plan))
    res["verdict"] = {"figures": nfig, "farther_than_ort": exceptions, "farther_than_ort_plan": exceptions_plan,
                      "ours_closer_on_every_figure": not exceptions}
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\n({res['seconds']:.0f} s)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
