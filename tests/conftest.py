"""Shared fixtures and comparison helpers for the HF parity tests.

Fixtures
    backend          parametrised over ``mobilebert_lite.BACKENDS`` (only requested by the parity tests, so the
                     package is imported lazily and other test files do not depend on it)
    rtol             per-backend tolerance from DESIGN.md section 3 (1e-5 reference, 1e-4 native)
    hf_checkpoint    session-scoped factory: hf_checkpoint(class_name, config_kwargs) -> HFCheckpoint (cached)
    make_tmp_dir     tmp-dir factory: make_tmp_dir("name") -> fresh directory path (str)

Helpers (``from conftest import ...``; tests/ is on sys.path)
    assert_close(ours, hf, rtol, name)          one tensor: shapes equal, max|ours - hf| <= rtol * max(1, max|hf|)
    assert_outputs_match(ours, hf_out, rtol)    every HF field present in ours (same names and order), compared
                                                element-wise (tuples too), argmax agreement for logits
    assert_tuple_outputs_match(ours, hf_tuple)  return_dict=False
    run_hf(model, inputs, **flags)              HF forward on the same NumPy inputs (eval, no_grad)
    fp64_diagnosis(model, inputs, ours, flags)  on failure: HF fp32 and ours against HF float64
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# DESIGN.md section 3: max|ours - hf| <= RTOL * max(1, max|hf|) per output tensor.
RTOL = {"reference": 1e-5, "native": 1e-4}

# Output fields that are logits over classes on their last axis (argmax agreement is checked for them).
LOGIT_FIELDS = ("logits", "prediction_logits", "seq_relationship_logits", "start_logits", "end_logits")


# --------------------------------------------------------------------------------------------------------------
# fixtures


def _backends():
    import mobilebert_lite as mbl  # a failing import must fail the parity tests, not skip them

    backends = tuple(mbl.BACKENDS)
    assert backends, "mobilebert_lite.BACKENDS is empty"
    assert "reference" in backends, f"the reference backend must always be available, got {backends}"
    return backends


def _parametrizes_backend_itself(metafunc):
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "backend" in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    # `backend` = every entry of mobilebert_lite.BACKENDS, unless the test parametrises it itself.
    if "backend" in metafunc.fixturenames and not _parametrizes_backend_itself(metafunc):
        metafunc.parametrize("backend", _backends())


# ------------------------------------------------------------------ largest relative error seen, per class
# Every assert_close call records its relative error under the running test's (backend, class_name); the
# terminal summary prints the maxima, so each CI log states how close to HF each class came.
_CURRENT_KEY = [None]
_MAX_ERRORS: dict = {}


@pytest.fixture(autouse=True)
def _error_key(request):
    params = getattr(request.node, "callspec", None)
    params = params.params if params is not None else {}
    _CURRENT_KEY[0] = (params.get("backend"), params.get("class_name", request.node.originalname))
    yield
    _CURRENT_KEY[0] = None


def _record_error(rel):
    key = _CURRENT_KEY[0]
    if key is not None:
        _MAX_ERRORS[key] = max(rel, _MAX_ERRORS.get(key, 0.0))


def pytest_terminal_summary(terminalreporter):
    if not _MAX_ERRORS:
        return
    terminalreporter.section("largest relative error vs transformers, per class (max|ours-hf| / max(1, max|hf|))")
    for (backend, class_name), err in sorted(_MAX_ERRORS.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        terminalreporter.write_line(f"{str(backend):<10} {class_name:<40} {err:.2e}")


@pytest.fixture
def rtol(backend):
    assert backend in RTOL, f"no tolerance defined for backend {backend!r}"
    return RTOL[backend]


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory):
    from hf_checkpoints import HFCheckpointFactory

    return HFCheckpointFactory(str(tmp_path_factory.mktemp("hf_checkpoints")))


@pytest.fixture
def make_tmp_dir(tmp_path):
    counter = [0]

    def make(name="d"):
        counter[0] += 1
        path = tmp_path / f"{name}_{counter[0]}"
        path.mkdir()
        return str(path)

    return make


@pytest.fixture(scope="session")
def mbl():
    import mobilebert_lite

    return mobilebert_lite


# --------------------------------------------------------------------------------------------------------------
# running HF


def to_torch(value):
    """numpy -> torch: integer arrays become torch.long, floating arrays float32."""
    import torch

    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        return torch.as_tensor(arr.astype(np.int64))
    if arr.dtype.kind == "f":
        return torch.as_tensor(arr.astype(np.float32))
    raise TypeError(f"cannot convert {arr.dtype} input to torch")


def run_hf(model, inputs: dict, **flags):
    """Runs the HF model (eval, no_grad) on the same numpy inputs.

    HF writes an inferred ``problem_type`` into the config on the first call with labels; the cached model is
    shared between tests, so that mutation is undone here.
    """
    import torch

    model.eval()
    saved_problem_type = model.config.problem_type
    try:
        with torch.no_grad():
            return model(**{k: to_torch(v) for k, v in inputs.items()}, **flags)
    finally:
        model.config.problem_type = saved_problem_type


def fp64_diagnosis(model, inputs: dict, ours, flags: dict) -> str:
    """For a failure message: per output tensor, HF fp32 and ours against HF run in float64 (relative to
    max(1, max|x|)). Tells a real bug (ours far from fp64) from rounding noise (HF fp32 itself that far)."""
    import torch
    from hf_checkpoints import fp64_model

    def t64(v):
        t = to_torch(v)
        return t.double() if t.is_floating_point() else t

    try:
        with torch.no_grad():
            ref = fp64_model(model)(**{k: t64(v) for k, v in inputs.items()}, return_dict=True, **flags)
            hf32 = run_hf(model, inputs, return_dict=True, **flags)
        lines = ["fp64 diagnosis (relative error vs HF float64):"]
        for key in ref.keys():
            refs = ref[key] if isinstance(ref[key], tuple) else (ref[key],)
            hfs = hf32[key] if isinstance(hf32[key], tuple) else (hf32[key],)
            try:
                mine = ours[key] if isinstance(ours[key], tuple) else (ours[key],)
            except Exception:  # noqa: BLE001 - missing field: reported by the main assertion
                mine = (None,) * len(refs)
            for i, (r, h, o) in enumerate(zip(refs, hfs, mine)):
                r = r.numpy()
                scale = max(1.0, float(np.abs(r).max())) if r.size else 1.0
                e_hf = float(np.abs(h.numpy() - r).max()) / scale if r.size else 0.0
                try:
                    e_ours = float(np.abs(np.asarray(o, np.float64) - r).max()) / scale if r.size else 0.0
                    e_ours = f"{e_ours:.2e}"
                except Exception:  # noqa: BLE001
                    e_ours = "n/a"
                lines.append(f"  {key}[{i}]: HF fp32 {e_hf:.2e}, ours {e_ours}")
        return "\n".join(lines)
    except Exception as exc:  # noqa: BLE001 - diagnosis must never mask the real failure
        return f"(fp64 diagnosis failed: {exc!r})"


def to_numpy(t):
    return t.detach().cpu().numpy()


# --------------------------------------------------------------------------------------------------------------
# comparisons


def _as_array(ours, name):
    assert ours is not None, f"{name}: ours is None"
    assert isinstance(ours, (np.ndarray, np.generic)), f"{name}: expected a NumPy array, got {type(ours).__name__}"
    arr = np.asarray(ours)
    assert arr.dtype == np.float32, f"{name}: expected float32, got {arr.dtype}"
    return arr


def assert_close(ours, hf, rtol, name="tensor"):
    """Shapes equal and max|ours - hf| <= rtol * max(1, max|hf|)."""
    if not isinstance(hf, np.ndarray):
        hf = to_numpy(hf)
    hf = hf.astype(np.float32)
    ours = _as_array(ours, name)
    assert ours.shape == hf.shape, f"{name}: shape {ours.shape} != HF {hf.shape}"
    assert np.all(np.isfinite(hf)), f"{name}: HF output is not finite (test setup problem)"
    assert np.all(np.isfinite(ours)), f"{name}: ours is not finite ({np.sum(~np.isfinite(ours))} bad values)"
    if hf.size == 0:
        return
    diff = np.abs(ours.astype(np.float64) - hf.astype(np.float64))
    err = float(diff.max())
    scale = float(np.abs(hf).max())
    bound = rtol * max(1.0, scale)
    _record_error(err / max(1.0, scale))
    if not err <= bound:
        where = np.unravel_index(int(np.argmax(diff)), diff.shape)
        raise AssertionError(
            f"{name}: max abs error {err:.3e} at index {tuple(int(i) for i in where)} "
            f"(ours {float(ours[where]):.7g}, HF {float(hf[where]):.7g}); max|hf| = {scale:.4g}; "
            f"relative error {err / max(1.0, scale):.3e} > rtol {rtol:g} (shape {hf.shape})"
        )


def assert_argmax_agrees(ours, hf, rtol, name="logits"):
    """Argmax over the last axis identical wherever HF's top-2 gap exceeds the tolerance."""
    if not isinstance(hf, np.ndarray):
        hf = to_numpy(hf)
    ours = np.asarray(ours)
    if hf.ndim == 0 or hf.shape[-1] < 2:
        return
    tol = rtol * max(1.0, float(np.abs(hf).max()))
    hf2 = hf.reshape(-1, hf.shape[-1])
    ours2 = ours.reshape(-1, ours.shape[-1])
    top2 = np.sort(hf2, axis=-1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    decisive = gap > tol
    a_hf = np.argmax(hf2, axis=-1)
    a_ours = np.argmax(ours2, axis=-1)
    bad = np.nonzero(decisive & (a_hf != a_ours))[0]
    assert bad.size == 0, (
        f"{name}: argmax differs from HF in {bad.size} of {int(decisive.sum())} decisive rows "
        f"(first row {int(bad[0])}: ours {int(a_ours[bad[0]])}, HF {int(a_hf[bad[0]])}, gap {float(gap[bad[0]]):.3g})"
    )


def assert_value_matches(ours, hf, rtol, name):
    """Tensor, or tuple of tensors (hidden_states / attentions), compared element-wise."""
    if isinstance(hf, (tuple, list)):
        assert isinstance(ours, tuple), f"{name}: expected a tuple, got {type(ours).__name__}"
        assert len(ours) == len(hf), f"{name}: ours has {len(ours)} entries, HF {len(hf)}"
        for i, (o, h) in enumerate(zip(ours, hf)):
            assert_value_matches(o, h, rtol, f"{name}[{i}]")
        return
    assert_close(ours, hf, rtol, name)


def assert_model_output_protocol(ours):
    """ours behaves like an HF ModelOutput: attribute, key and index access agree; to_tuple() in key order."""
    keys = list(ours.keys())
    tup = ours.to_tuple()
    assert isinstance(tup, tuple), f"to_tuple() returned {type(tup).__name__}"
    assert len(tup) == len(keys), f"to_tuple() has {len(tup)} entries for keys {keys}"
    for i, k in enumerate(keys):
        v = ours[k]
        assert v is not None, f"field {k} is None but present (None fields must be dropped)"
        assert getattr(ours, k) is v, f"out.{k} is not out[{k!r}]"
        assert ours[i] is v, f"out[{i}] is not out[{k!r}]"
        assert tup[i] is v, f"out.to_tuple()[{i}] is not out[{k!r}]"


def assert_outputs_match(ours, hf_out, rtol, check_argmax=True):
    """Every field HF returns is present in ours with the same name and order, and matches within rtol."""
    hf_keys = list(hf_out.keys())
    assert_model_output_protocol(ours)
    ours_keys = list(ours.keys())
    assert ours_keys == hf_keys, f"output fields differ: ours {ours_keys}, HF {hf_keys}"
    for k in hf_keys:
        assert_value_matches(ours[k], hf_out[k], rtol, k)
        if check_argmax and k in LOGIT_FIELDS:
            assert_argmax_agrees(ours[k], hf_out[k], rtol, k)


def assert_tuple_outputs_match(ours, hf_tuple, rtol, names=None):
    """return_dict=False: a plain tuple in HF's to_tuple() order."""
    assert isinstance(ours, tuple), f"return_dict=False must return a plain tuple, got {type(ours).__name__}"
    assert type(ours) is tuple, f"return_dict=False must return a plain tuple, got {type(ours).__name__}"
    assert isinstance(hf_tuple, tuple)
    assert len(ours) == len(hf_tuple), f"tuple length {len(ours)} != HF {len(hf_tuple)}"
    for i, (o, h) in enumerate(zip(ours, hf_tuple)):
        label = f"[{i}]" if names is None else f"[{i}] ({names[i]})"
        assert_value_matches(o, h, rtol, label)


def assert_outputs_identical(a, b, name="output"):
    """Bitwise equality of two of our outputs (same keys, same arrays)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        assert isinstance(a, tuple) and isinstance(b, tuple), f"{name}: {type(a).__name__} vs {type(b).__name__}"
        assert len(a) == len(b), f"{name}: {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_outputs_identical(x, y, f"{name}[{i}]")
        return
    if hasattr(a, "keys"):
        assert list(a.keys()) == list(b.keys()), f"{name}: keys {list(a.keys())} vs {list(b.keys())}"
        for k in a.keys():
            assert_outputs_identical(a[k], b[k], f"{name}.{k}")
        return
    x, y = np.asarray(a), np.asarray(b)
    assert x.shape == y.shape and x.dtype == y.dtype, f"{name}: {x.shape}/{x.dtype} vs {y.shape}/{y.dtype}"
    if not np.array_equal(x, y):
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        raise AssertionError(f"{name}: not bitwise identical (max abs difference {float(d.max()):.3e})")
