"""Backend selection and the runtime report."""

import os
import subprocess
import sys

import pytest

import mobilebert_lite as mbl


def test_native_built_where_required():
    # .ci/run sets MBL_REQUIRE_NATIVE: there the compiled module must import, or the native tests would be skipped.
    if os.environ.get("MBL_REQUIRE_NATIVE"):
        assert "native" in mbl.BACKENDS, mbl.runtime_info().get("native_error")
    else:
        assert "reference" in mbl.BACKENDS


def test_runtime_info_reports_backends():
    info = mbl.runtime_info()
    assert info["backends"] == mbl.BACKENDS
    assert info["default_backend"] in mbl.BACKENDS
    if "native" in mbl.BACKENDS:
        assert info["isa"] in info["compiled_isas"]
        assert isinstance(info["kernels"], dict) and info["kernels"]


def test_unknown_backend_is_an_error():
    cfg = mbl.MobileBertConfig(vocab_size=20, hidden_size=16, embedding_size=8, intra_bottleneck_size=8,
                               intermediate_size=8, num_hidden_layers=1)
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        mbl.MobileBertModel(cfg, backend="gpu")


def test_env_selects_default_backend():
    code = "import mobilebert_lite as m; print(m.runtime_info()['default_backend'])"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MBL_BACKEND": "reference"},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "reference"
