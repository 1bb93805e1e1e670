"""The task subcommands of `mobilebert-lite`: inputs from arguments, files and stdin, JSON lines out (equal to the
Python pipeline's results), task flags, bench, demo, --help everywhere, and clean errors."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mobilebert_lite import cli
from mobilebert_lite.cli_tasks import TASK_OPTIONS, _json_default

pytest.importorskip("transformers")

VOCAB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mobilebert_lite", "data",
                     "vocab_uncased.txt")

# class, extra config, task inputs (texts or JSON objects), task flags, the same options as keywords
MODELS = {
    "masked_lm": ("MobileBertForMaskedLM", {}),
    "sentiment": ("MobileBertForSequenceClassification", {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}}),
    "nli": ("MobileBertForSequenceClassification",
            {"id2label": {0: "contradiction", 1: "neutral", 2: "entailment"}}),
    "ner": ("MobileBertForTokenClassification",
            {"id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}}),
    "qa": ("MobileBertForQuestionAnswering", {}),
    "choice": ("MobileBertForMultipleChoice", {}),
    "nsp": ("MobileBertForNextSentencePrediction", {}),
    "base": ("MobileBertModel", {}),
}

CASES = {
    "fill-mask": ("masked_lm", ["the capital of france is [MASK].", "hello [MASK] world"], ["--top-k", "2"],
                  {"top_k": 2}),
    "text-classification": ("sentiment", ["i love it", {"text": "good", "text_pair": "fine"}],
                            ["--top-k", "all", "--function-to-apply", "sigmoid"],
                            {"top_k": None, "function_to_apply": "sigmoid"}),
    "sentiment-analysis": ("sentiment", ["this is bad", "great movie"], [], {}),
    "zero-shot-classification": ("nli", ["the match ended in a draw", "stocks fell"],
                                 ["--candidate-labels", "sports,finance", "--candidate-labels", "politics",
                                  "--multi-label", "--hypothesis-template", "It is about {}."],
                                 {"candidate_labels": ["sports", "finance", "politics"], "multi_label": True,
                                  "hypothesis_template": "It is about {}."}),
    "feature-extraction": ("base", ["short text", "a slightly longer text here"], [], {}),
    "sentence-embeddings": ("base", ["one sentence", "another one"], ["--pooling", "cls", "--no-normalize"],
                            {"pooling": "cls", "normalize": False}),
    "token-classification": ("ner", ["john lives in paris", "mary went to rome"],
                             ["--aggregation-strategy", "simple"], {"aggregation_strategy": "simple"}),
    "ner": ("ner", ["alice met bob"], [], {}),
    "question-answering": ("qa", [{"question": "where does he live?", "context": "he lives in paris."}],
                           ["--max-answer-len", "5", "--doc-stride", "16", "--handle-impossible-answer"],
                           {"max_answer_len": 5, "doc_stride": 16, "handle_impossible_answer": True}),
    "multiple-choice": ("choice", [{"question": "the sky is", "choices": ["blue", "a fish", "green"]}], [], {}),
    "next-sentence-prediction": ("nsp", [{"text": "i went home.", "text_pair": "then i slept."}], [], {}),
}


def test_every_task_has_a_case():
    assert set(CASES) == set(TASK_OPTIONS)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """Tiny random transformers checkpoints (real vocabulary) for every task head."""
    import transformers
    from tiny_hf import make_tiny_hf_model

    transformers.utils.logging.set_verbosity_error()
    root = tmp_path_factory.mktemp("cli_models")
    dirs = {}
    for key, (class_name, extra) in MODELS.items():
        overrides = dict(vocab_size=30522, max_position_embeddings=64, **extra)
        if "id2label" in extra:
            overrides["label2id"] = {v: k for k, v in extra["id2label"].items()}
        model = make_tiny_hf_model(class_name, seed=len(dirs), **overrides)
        path = root / key
        model.save_pretrained(path)
        shutil.copyfile(VOCAB, path / "vocab.txt")
        dirs[key] = str(path)
    return dirs


def _jsonl(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _api_result(task, model_dir, item, options):
    """What the Python pipeline returns for one input, through the same JSON encoding."""
    from mobilebert_lite.pipelines import pipeline

    pipe = pipeline(task, model=model_dir, backend="reference")
    if task == "question-answering":
        result = pipe(**item, **options)
    elif task == "zero-shot-classification":
        result = pipe(item, **options)
    elif task == "fill-mask":
        result = pipe(item, **options)
    else:
        result = pipe([item], **options)[0]
    return json.loads(json.dumps(result, default=_json_default))


def _as_argument(item):
    return json.dumps(item) if isinstance(item, dict) else item


@pytest.mark.parametrize("task", sorted(CASES))
def test_task_arguments_match_the_pipeline(task, model_dirs, capsys):
    key, inputs, flags, options = CASES[task]
    jsonl = ["--jsonl"] if any(isinstance(i, dict) for i in inputs) else []
    argv = [task, "--model", model_dirs[key], "--backend", "reference", *jsonl, *flags,
            *[json.dumps(i) if jsonl else i for i in inputs]]
    assert cli.main(argv) == 0
    lines = _jsonl(capsys.readouterr().out)
    assert [line["input"] for line in lines] == inputs
    for line, item in zip(lines, inputs):
        assert line["output"] == _api_result(task, model_dirs[key], item, options), task


def test_fill_mask_file_and_progress(model_dirs, tmp_path, capsys):
    texts = [f"sentence number {i} is [MASK]." for i in range(11)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts[:5]) + "\n\n" + "\n".join(texts[5:]) + "\n")  # a blank line is skipped
    argv = ["fill-mask", "--model", model_dirs["masked_lm"], "--file", str(path), "--top-k", "1", "--progress",
            "--batch-size", "3", "--backend", "reference"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    lines = _jsonl(captured.out)
    assert [line["input"] for line in lines] == texts
    assert all(len(line["output"]) == 1 and {"score", "token", "token_str", "sequence"} <= set(line["output"][0])
               for line in lines)
    assert "11/11" in captured.err and "[" in captured.err  # the progress bar
    # without --progress and with a non-terminal stderr: no bar
    assert cli.main(argv[:-5] + ["--top-k", "1"]) == 0
    assert cli.main(argv[:7]) == 0 and capsys.readouterr().err == ""


def test_jsonl_file_for_question_answering(model_dirs, tmp_path, capsys):
    rows = [{"question": "who?", "context": "alice went home."}, {"question": "what?", "context": "a red car."}]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["question-answering", "--model", model_dirs["qa"], "--file", str(path),
                     "--backend", "reference"]) == 0
    lines = _jsonl(capsys.readouterr().out)
    assert [line["input"] for line in lines] == rows
    assert all({"score", "start", "end", "answer"} <= set(line["output"]) for line in lines)


def test_question_answering_flags(model_dirs, capsys):
    qa = model_dirs["qa"]
    assert cli.main(["question-answering", "--model", qa, "--question", "where?", "--context", "in paris."]) == 0
    (line,) = _jsonl(capsys.readouterr().out)
    assert line["input"] == {"question": "where?", "context": "in paris."}
    # --question: the inputs are contexts; --context: the inputs are questions
    assert cli.main(["question-answering", "--model", qa, "--question", "where?", "in paris.", "at home."]) == 0
    assert [x["input"]["context"] for x in _jsonl(capsys.readouterr().out)] == ["in paris.", "at home."]
    assert cli.main(["question-answering", "--model", qa, "--context", "in paris.", "where?", "when?",
                     "--top-k", "2"]) == 0
    lines = _jsonl(capsys.readouterr().out)
    assert [x["input"]["question"] for x in lines] == ["where?", "when?"]
    assert all(len(x["output"]) == 2 for x in lines)


def test_next_sentence_tab_separated(model_dirs, capsys):
    assert cli.main(["next-sentence-prediction", "--model", model_dirs["nsp"], "i went home.\tthen i slept."]) == 0
    (line,) = _jsonl(capsys.readouterr().out)
    assert line["input"] == {"text": "i went home.", "text_pair": "then i slept."}
    assert set(line["output"]) >= {"is_next", "score"}


@pytest.mark.parametrize("how", ["implicit", "dash", "file-dash"])
def test_stdin(model_dirs, monkeypatch, capsys, how):
    monkeypatch.setattr(sys, "stdin", io.StringIO("good film\nbad film\n"))
    extra = {"implicit": [], "dash": ["-"], "file-dash": ["--file", "-"]}[how]
    assert cli.main(["sentiment-analysis", "--model", model_dirs["sentiment"], *extra]) == 0
    lines = _jsonl(capsys.readouterr().out)
    assert [x["input"] for x in lines] == ["good film", "bad film"]
    assert all(x["output"]["label"] in ("NEGATIVE", "POSITIVE") for x in lines)


def test_subprocess_pipe(model_dirs):
    """The real process: stdin piped, JSON lines out, exit code 0; then a missing model: exit 2, no traceback."""
    run = [sys.executable, "-m", "mobilebert_lite"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(run + ["sentence-embeddings", "--model", model_dirs["base"]], input="a\nb c\n",
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    vectors = [np.asarray(x["output"]) for x in _jsonl(done.stdout)]
    assert len(vectors) == 2 and all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in vectors)
    bad = subprocess.run(run + ["fill-mask", "--model", "/nonexistent/model", "x [MASK]"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode == 2
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def _error(capsys, argv) -> str:
    code = cli.main(argv)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("mobilebert-lite: error:") and "Traceback" not in err
    return err


def test_errors(model_dirs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    mlm = model_dirs["masked_lm"]
    assert "does not exist" in _error(capsys, ["fill-mask", "--model", str(tmp_path / "nope"), "a [MASK]"])
    assert "offline" in _error(capsys, ["fill-mask", "--model", "someone/missing-model", "a [MASK]"])
    assert "needs --model" in _error(capsys, ["fill-mask", "a [MASK]"])
    assert "--candidate-labels" in _error(capsys, ["zero-shot-classification", "--model", model_dirs["nli"], "x"])
    assert "not valid JSON" in _error(capsys, ["fill-mask", "--model", mlm, "--jsonl", "{nope"])
    assert "--question" in _error(capsys, ["question-answering", "--model", model_dirs["qa"], "just text"])
    assert "input file" in _error(capsys, ["fill-mask", "--model", mlm, "--file", str(tmp_path / "none.txt")])
    assert "tab" in _error(capsys, ["next-sentence-prediction", "--model", model_dirs["nsp"], "no tab here"])
    assert "no inputs" in _error(capsys, ["fill-mask", "--model", mlm, "-"])  # empty stdin
    # a pipeline's own complaint (no [MASK]) is one line too
    _error(capsys, ["fill-mask", "--model", mlm, "there is no mask here"])
    # the wrong head for the task: the loader names the problem
    _error(capsys, ["question-answering", "--model", model_dirs["sentiment"], "--question", "q", "c"])


def test_no_inputs_on_a_terminal(model_dirs, capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Tty(""))
    assert "no inputs" in _error(capsys, ["fill-mask", "--model", model_dirs["masked_lm"]])


@pytest.mark.parametrize("argv", [["fill-mask", "--top-k", "0", "x"], ["fill-mask", "--top-k", "many", "x"],
                                  ["fill-mask", "--batch-size", "-1", "x"], ["sentence-embeddings", "--pooling",
                                                                             "max", "x"],
                                  ["bogus-task", "x"], ["text-classification", "--function-to-apply", "relu"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "error:" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "info", "convert", "bench", "demo", *sorted(TASK_OPTIONS)])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mobilebert-lite " + command)


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(task in out for task in TASK_OPTIONS) and "demo" in out and "bench" in out


def test_bench(model_dirs, capsys):
    assert cli.main(["bench", "--model", model_dirs["base"], "--shapes", "1x8,2x16", "--repeat", "2", "--json",
                     "--backend", "reference"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["batch"], r["tokens"]) for r in report["results"]] == [(1, 8), (2, 16)]
    assert all(r["ms_median"] > 0 and r["tokens_per_s"] > 0 for r in report["results"])
    assert cli.main(["bench", "--model", model_dirs["masked_lm"], "--shapes", "1x8", "--repeat", "1"]) == 0
    assert "tokens/s" in capsys.readouterr().out
    assert "BATCHxTOKENS" in _error(capsys, ["bench", "--model", model_dirs["base"], "--shapes", "8by8"])


def test_demo_with_a_given_model(model_dirs, tmp_path, capsys):
    sentences = tmp_path / "s.txt"
    sentences.write_text("the cat sat on the mat.\n# a comment\ndogs bark at night.\nthe stock market fell.\n")
    assert cli.main(["demo", "--model", model_dirs["base"], "--sentences", str(sentences), "-q", "a cat",
                     "--top-k", "2", "--backend", "reference"]) == 0
    out = capsys.readouterr().out
    assert "query: a cat" in out and "ms per sentence" in out and "3 sentences" in out
    assert out.count("  1. ") == 1 and out.count("  2. ") == 1 and "  3. " not in out
