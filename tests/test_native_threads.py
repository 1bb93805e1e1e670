"""The thread pool (csrc/cpu/threadpool.cc) and the threaded GEMM driver (csrc/ops/linear.cc).

* Thread invariance: ``PackedLinear(...)(x, num_threads=t)`` is bitwise identical for t = 1..4 on every ISA,
  over shapes that take each split the driver has (row blocks, column groups, column groups + a norm in a
  second phase, too small to split) and every norm epilogue. DESIGN.md section 3: results must not depend
  on the thread count; K is never split.
* Concurrency: several Python threads calling one layer at once (the GIL is released inside), on the same
  pool and on pools of different sizes.
* The pool itself through ``_C._pool_check``: every task runs exactly once per job, worker indices in range,
  a throwing task surfaces as RuntimeError without hanging, and the pool stays usable.
* ``runtime_info()["threads"]`` and MBL_NUM_THREADS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from native_helpers import require

_C = pytest.importorskip(
    "mobilebert_lite._C",
    reason="mobilebert_lite._C is not importable: build it with `pip install .` and run pytest from "
    "outside the repository (a source checkout shadows the installed package)",
)

ISAS = ("scalar", "avx2", "avx512", "neon")


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def run_with_timeout(fn, seconds=60.0):
    """fn() on a daemon thread; fails (instead of hanging the suite) if it does not return in time."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 -- re-raised below, on the test's thread
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"no return after {seconds} s: deadlock?"
    if "error" in result:
        raise result["error"]
    return result["value"]


# --- Thread invariance ----------------------------------------------------------------------------------

MS = (1, 7, 16, 128, 300)
NS = (2, 128, 512, 513)
KS = (128, 384)
# (activation, residual?, norm): each norm site of MobileBERT, plus a transcendental activation, which is
# applied per column group when N is split.
EPILOGUES = (
    ("none", False, None),
    ("gelu", True, None),
    ("relu", True, "no_norm"),
    ("gelu_new", True, "layer_norm"),
    ("none", False, "layer_norm"),
)


@pytest.mark.parametrize("K", KS, ids=[f"K{k}" for k in KS])
@pytest.mark.parametrize("isa", ISAS)
def test_thread_count_invariance(isa, K):
    require(isa)
    rng = np.random.default_rng(K)
    for N in NS:
        w, b = randn(rng, N, K) * 0.1, randn(rng, N)
        nw, nb = randn(rng, N), randn(rng, N)
        layer = _C.PackedLinear(w, b, isa=isa)
        for M in MS:
            x, res = randn(rng, M, K), randn(rng, M, N)
            for activation, use_res, norm in EPILOGUES:
                kw = {"activation": activation, "residual": res if use_res else None}
                if norm:
                    kw.update(norm=norm, norm_weight=nw, norm_bias=nb, eps=1e-6)
                first = layer(x, num_threads=1, **kw)
                for t in (2, 3, 4):
                    np.testing.assert_array_equal(
                        layer(x, num_threads=t, **kw), first,
                        err_msg=f"isa={isa} M={M} N={N} K={K} act={activation} res={use_res} norm={norm} threads={t}",
                    )  # fmt: skip


def test_threaded_matches_float64():
    """Bitwise invariance could hide a wrong result that is wrong the same way for every count: check one
    threaded call of each split kind against float64 (the plain GEMM bound of test_native_gemm.py)."""
    rng = np.random.default_rng(1)
    for M, N, K in ((300, 513, 384), (16, 512, 384), (1, 513, 384), (7, 128, 384)):
        x, w, b = randn(rng, M, K), randn(rng, N, K), randn(rng, N)
        got = _C.PackedLinear(w, b)(x, num_threads=2)
        ref = x.astype(np.float64) @ w.astype(np.float64).T + b
        mag = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T + np.abs(b)
        assert (np.abs(got - ref) <= 2 * K * 2.0**-24 * mag + 4 * 2.0**-24 * np.abs(ref)).all(), (M, N, K)


# --- Concurrent callers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("thread_counts", [(2, 2, 2, 2), (1, 2, 3, 4)], ids=["same-pool", "mixed-pools"])
def test_concurrent_callers(thread_counts):
    """4 Python threads share one layer, each with its own input, many calls each, all at once; every result
    is bitwise the single-threaded one. Different num_threads use different pools concurrently; the same
    num_threads queue on one pool."""
    rng = np.random.default_rng(2)
    M, N, K = 64, 512, 128
    w, b, nw, nb = randn(rng, N, K) * 0.1, randn(rng, N), randn(rng, N), randn(rng, N)
    layer = _C.PackedLinear(w, b)
    xs = [randn(rng, M, K) for _ in thread_counts]
    kw = {"activation": "gelu_new", "norm": "layer_norm", "norm_weight": nw, "norm_bias": nb}
    expected = [layer(x, **kw) for x in xs]
    small = [x[:16] for x in xs]  # the column-group split, with its two-phase norm
    expected_small = [e[:16] for e in expected]
    barrier = threading.Barrier(len(thread_counts))
    failures: list[str] = []

    def caller(i: int, t: int) -> None:
        barrier.wait()
        for it in range(150):
            x, want = (xs[i], expected[i]) if it % 2 else (small[i], expected_small[i])
            got = layer(x, num_threads=t, **kw)
            if not np.array_equal(got, want):
                failures.append(f"thread {i} (num_threads={t}) call {it}: wrong result")
                return

    def run_all():
        threads = [threading.Thread(target=caller, args=(i, t)) for i, t in enumerate(thread_counts)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

    run_with_timeout(run_all, 120)
    assert not failures, failures


# --- The pool itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "fresh"])
@pytest.mark.parametrize("num_threads", [1, 2, 3, 5])
def test_pool_runs_every_task_once(num_threads, shared):
    for num_tasks in (0, 1, 2, 3, 17, 1000):
        runs, workers = _C._pool_check(num_threads, num_tasks, repeats=3, shared=shared)
        assert runs == [3] * num_tasks, (num_threads, num_tasks)
        assert set(workers) <= set(range(num_threads))
    # Tasks long enough that the background workers must take some: more than the caller alone.
    _, workers = _C._pool_check(num_threads, 64, task_us=1000.0, shared=shared)
    if num_threads > 1:
        assert len(workers) > 1, workers


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "fresh"])
def test_pool_task_exception(shared):
    """A throwing task (on whichever worker claims it) is rethrown as RuntimeError; the other tasks finish or
    are skipped, nothing hangs, and the pool works afterwards."""
    for num_tasks, throw_at in ((100, 0), (100, 57), (100, 99), (2, 1)):
        with pytest.raises(RuntimeError, match=f"task {throw_at} failed"):
            run_with_timeout(
                lambda n=num_tasks, t=throw_at: _C._pool_check(2, n, throw_at=t, repeats=5, task_us=2.0, shared=shared)
            )
        runs, _ = run_with_timeout(lambda n=num_tasks: _C._pool_check(2, n, shared=shared))
        assert runs == [1] * num_tasks


def test_pool_bad_arguments():
    with pytest.raises(ValueError, match="num_threads"):
        _C._pool_check(0, 1)
    layer = _C.PackedLinear(np.ones((4, 3), np.float32))
    x = np.ones((2, 3), np.float32)
    for bad in (0, -1, 1025):
        with pytest.raises(ValueError, match=rf"PackedLinear: num_threads must be in \[1, 1024\], got {bad}"):
            layer(x, num_threads=bad)
    with pytest.raises(TypeError):
        layer(x, num_threads="2")


# --- runtime_info and MBL_NUM_THREADS -------------------------------------------------------------------


def _runtime_info_threads(env_value: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MBL_NUM_THREADS", None)
    if env_value is not None:
        env["MBL_NUM_THREADS"] = env_value
    # Import the same build as this process: run from the directory holding its package (with `python -c`
    # the working directory comes first on sys.path, and a source checkout there has no _C).
    site = os.path.dirname(os.path.dirname(os.path.abspath(_C.__file__)))
    code = "from mobilebert_lite import _C; print(_C.runtime_info()['threads'])"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=site, capture_output=True, text=True, timeout=60
    )


def test_runtime_info_threads():
    default = _runtime_info_threads(None)
    assert default.returncode == 0, default.stderr
    assert int(default.stdout) == os.cpu_count()
    three = _runtime_info_threads("3")
    assert three.returncode == 0 and int(three.stdout) == 3, three.stderr
    for bad in ("abc", "0", "-2", "2x", "5000"):
        r = _runtime_info_threads(bad)
        assert r.returncode != 0 and "MBL_NUM_THREADS must be an integer in [1, 1024]" in r.stderr, (bad, r.stderr)


@pytest.mark.parametrize("num_threads", [2, 3])
def test_back_to_back_jobs_of_varying_size(num_threads):
    # Regression: a worker that read a finished job's state and then the next job's (larger) task count used
    # to claim a phantom task, after which the caller waited forever (done count past num_tasks). Growing and
    # shrinking task counts back to back, as a forward pass does, reproduced it within a few thousand jobs.
    result = {}

    def run():
        result["violations"] = _C._pool_stress(num_threads, [4, 8, 1, 2, 16, 3, 4, 32, 5], 3000)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the thread pool hung on back-to-back jobs"
    assert result["violations"] == 0
