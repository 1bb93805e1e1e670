"""The native half of the HF parity suite again under every other ISA this CPU supports (MBL_FORCE_ISA).

The main run covers the ISA the dispatcher picks; MBL_FORCE_ISA is read once per process, so each other ISA gets
its own pytest process over test_parity_hf.py (native cases only), against transformers live.
"""

import os
import subprocess
import sys

import pytest

import mobilebert_lite as mbl

HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.skipif("native" not in mbl.BACKENDS, reason="native module not built")


def _other_isas():
    info = mbl.runtime_info() if "native" in mbl.BACKENDS else {"supported_isas": [], "isa": None}
    # the *_vnni / neon_dotprod tables differ from their base ISA only in the int8 GEMM (tests/test_int8_*.py)
    return [isa for isa in info["supported_isas"] if isa != info["isa"] and not info["isa"].startswith(isa + "_")
            and not os.environ.get("MBL_FORCE_ISA")]


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512", "neon"])
def test_parity_suite_under_forced_isa(isa, tmp_path):
    if isa not in _other_isas():
        pytest.skip(f"{isa} is the default ISA here (covered by the main run) or not supported")
    code = ("import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-k', 'native', "
            f"{os.path.join(HERE, 'test_parity_hf.py')!r}]))")
    # cwd outside the source tree, so the child imports the installed package (with its native module).
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MBL_FORCE_ISA": isa}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=1200)
    tail = "\n".join(proc.stdout.splitlines()[-25:])
    assert proc.returncode == 0, f"parity under MBL_FORCE_ISA={isa} failed:\n{tail}\n{proc.stderr[-2000:]}"
    assert " passed" in tail and "failed" not in tail.split("passed")[-1], tail
