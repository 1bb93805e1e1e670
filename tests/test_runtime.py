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


def test_package_works_without_the_native_module(tmp_path):
    # A machine that could not build _C still gets a working package: the NumPy engine, chosen by default.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mobilebert_lite._C':\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, mobilebert_lite as m\n"
        "assert m.BACKENDS == ('reference',), m.BACKENDS\n"
        "cfg = m.MobileBertConfig(vocab_size=30, hidden_size=16, embedding_size=8, intra_bottleneck_size=8,"
        " intermediate_size=8, num_hidden_layers=1)\n"
        "model = m.MobileBertForMaskedLM(cfg)\n"
        "assert model.backend == 'reference'\n"
        "print(model(input_ids=np.array([[1, 2, 3]])).logits.shape)\n"
        "try:\n"
        "    m.MobileBertModel(cfg, backend='native')\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MBL_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(1, 3, 30)" in out.stdout
    assert "refused: backend='native' needs the compiled extension" in out.stdout
