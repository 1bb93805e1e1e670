#!/usr/bin/env bash
# The Python package as ARM: cross-build the wheel on x86, run a NumPy-only subset of pytest under qemu-user.
#
#   bash ci/arm_python.sh            # aarch64 (arm64): QEMU_CPU=cortex-a72 (no dotprod) and cortex-a76 (dotprod)
#   bash ci/arm_python.sh armv7      # 32-bit armhf:    QEMU_CPU=cortex-a7 and cortex-a15 (NEON + VFPv4)
#
# Recipe: shared/reference/arm_testing.md. Nothing is compiled inside emulation:
# - a Debian bookworm userland for the target (debootstrap --foreign + dpkg-deb -x: no emulation, no binfmt);
# - test dependencies for the target: aarch64 numpy/pytest wheels from PyPI (host pip, --target --platform);
#   on armv7 PyPI has no cp311 numpy wheel, so Debian's python3-numpy (in the rootfs) and pytest's pure wheels;
# - the wheel cross-built by scikit-build-core with cmake/<triple>.cmake, unpacked into the target site dir;
# - pytest run by the target's python3 under qemu-<arch>, once per emulated core, with MBL_REQUIRE_NATIVE=1,
#   then test_arm_smoke.py again under MBL_FORCE_ISA=scalar (honoured) and =avx2 (refused).
# No torch/transformers/tokenizers on the target: tests that need them skip. Everything is cached under .arm/
# (gitignored); a second run only rebuilds the wheel incrementally and reruns the tests.
#
# Environment: ARM_CPUS="cortex-a72 ..." overrides the cores; ARM_TESTS="tests/..." overrides the test subset;
# ARM_JOBS (default 2) for the build.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
ARCH=${1:-aarch64}
JOBS=${ARM_JOBS:-2}
export PIP_DISABLE_PIP_VERSION_CHECK=1

case "$ARCH" in
  aarch64|arm64)
    ARCH=aarch64 DEB_ARCH=arm64 TRIPLE=aarch64-linux-gnu QEMU=qemu-aarch64 PLAT=linux-aarch64
    CPUS=${ARM_CPUS:-cortex-a72 cortex-a76}
    ROOTFS_INCLUDE=python3
    WHEEL_PLATFORMS=(--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --platform linux_aarch64)
    TARGET_DEPS=("numpy==2.4.6" "pytest==9.0.3" "h5py==3.16.0")
    ELF_MACHINE=183 ;;
  armv7|armhf|arm)
    ARCH=armv7 DEB_ARCH=armhf TRIPLE=arm-linux-gnueabihf QEMU=qemu-arm PLAT=linux-armv7l
    CPUS=${ARM_CPUS:-cortex-a7 cortex-a15}  # NEON+VFPv4 cores; A8/A9 would run the scalar kernels
    # libpython3.11-dev: the target's own headers (the host's x86-64 pyconfig.h fails on 32-bit: LONG_BIT)
    ROOTFS_INCLUDE=python3,python3-numpy,libpython3.11-dev
    WHEEL_PLATFORMS=(--platform linux_armv7l)
    TARGET_DEPS=("pytest==9.0.3")  # pure wheels; numpy is Debian's (1.24) from the rootfs
    ELF_MACHINE=40 ;;
  *) echo "usage: $0 [aarch64|armv7]" >&2; exit 2 ;;
esac
TOOLCHAIN=cmake/$TRIPLE.cmake
TARGET_HEADERS=0; [[ $ROOTFS_INCLUDE == *libpython3.11-dev* ]] && TARGET_HEADERS=1
ARM=$PWD/.arm
ROOT=$ARM/rootfs-$DEB_ARCH
SITE=$ARM/site-$DEB_ARCH
VENV=$ARM/venv
DIST=$ARM/dist-$DEB_ARCH
LOGS=$ARM/logs-$DEB_ARCH
EXT_SUFFIX=.cpython-311-$TRIPLE.so
PYTAGS=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 "${WHEEL_PLATFORMS[@]}")
# The NumPy-only subset (~1-2 min per core emulated). test_native_kernels' MBL_FORCE_ISA tests start a child
# sys.executable, which cannot run without binfmt: the forced runs below cover them. test_native_attention.py
# is left out (~3.5 min emulated: L=512 sweeps); add it with ARM_TESTS.
if [[ -n ${ARM_TESTS:-} ]]; then
  read -ra TESTS <<< "$ARM_TESTS"
else
  TESTS=(tests/test_arm_smoke.py tests/test_int8_kernels.py tests/test_tokenizer_core.py tests/test_tf_goldens.py
         tests/test_native_kernels.py tests/test_native_gemm.py -k "not test_force_isa_")
fi
step() { printf '\n== [%4ds] %s\n' $((SECONDS - START)) "$*"; }

# ---------------------------------------------------------------------------------------- 0. host packages
step "host packages"
PKGS=(qemu-user debootstrap cmake ninja-build "g++-$TRIPLE")
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
[[ -f $TOOLCHAIN ]] || { echo "missing $TOOLCHAIN" >&2; exit 1; }
python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "the host python3 must be 3.11 (the target is Debian bookworm's CPython 3.11: same ABI, same .pyc)" >&2
  exit 1; }

# ---------------------------------------------------------------------- 1. target userland (no emulation)
if [[ ! -f $ROOT/.complete ]]; then
  step "debootstrap --foreign $DEB_ARCH bookworm ($ROOTFS_INCLUDE)"
  rm -rf "$ROOT" "$ROOT.tmp"
  debootstrap --foreign --arch "$DEB_ARCH" --variant=minbase --include="$ROOTFS_INCLUDE" bookworm "$ROOT.tmp" \
    > "$ARM/debootstrap-$DEB_ARCH.log" 2>&1 || { tail -20 "$ARM/debootstrap-$DEB_ARCH.log"; exit 1; }
  # stage 1 only unpacks the "required" set: unpack every downloaded package by hand
  for d in "$ROOT.tmp"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$d" "$ROOT.tmp"; done
  rm -f "$ROOT.tmp"/var/cache/apt/archives/*.deb
  # Debian's numpy links libblas.so.3/liblapack.so.3, which the (never run) alternatives would provide
  for lib in blas/libblas.so.3 lapack/liblapack.so.3; do
    if [[ -e $ROOT.tmp/usr/lib/$TRIPLE/$lib && ! -e $ROOT.tmp/usr/lib/$TRIPLE/${lib#*/} ]]; then
      ln -s "$lib" "$ROOT.tmp/usr/lib/$TRIPLE/${lib#*/}"
    fi
  done
  # host CPython 3.11 writes valid .pyc for the target's 3.11 (numpy import under qemu: 3.4 s -> 1 s)
  python3 -m compileall -q -j"$JOBS" "$ROOT.tmp/usr/lib/python3.11" "$ROOT.tmp/usr/lib/python3/dist-packages" \
    >/dev/null 2>&1 || true
  touch "$ROOT.tmp/.complete"
  mv "$ROOT.tmp" "$ROOT"
fi
export QEMU_LD_PREFIX=$ROOT
"$QEMU" -cpu "${CPUS%% *}" "$ROOT/usr/bin/python3" -c 'import platform, sys; print("target python", sys.version.split()[0], platform.machine())'

# ------------------------------------------------------------------ 2. host build tools, target test deps
if [[ ! -f $VENV/.complete ]]; then
  step "host build venv"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # cmake from PyPI too: Debian bookworm's 3.25 is older than what the build is tested with
  "$VENV/bin/pip" install -q "scikit-build-core==1.1.2" "pybind11==3.1.0" "ninja==1.13.0" "cmake>=3.26"
  touch "$VENV/.complete"
fi
DEPS_STAMP="$SITE/.deps-$(echo "${TARGET_DEPS[*]}" | md5sum | cut -c1-12)"
if [[ ! -f $DEPS_STAMP ]]; then
  step "target test deps: ${TARGET_DEPS[*]}"
  rm -rf "$SITE"
  mkdir -p "$SITE"
  deps=("${TARGET_DEPS[@]}")
  "$VENV/bin/pip" install -q --target "$SITE" "${PYTAGS[@]}" "${deps[@]}"
  python3 -m compileall -q -j"$JOBS" "$SITE" >/dev/null 2>&1 || true
  touch "$DEPS_STAMP"
fi

# --------------------------------------------------------------- 3. cross-build the wheel and install it
step "cross-build the $ARCH wheel ($TOOLCHAIN)"
rm -rf "$DIST"
mkdir -p "$DIST" "$LOGS"
HEADER_ARGS=()
if ((TARGET_HEADERS)); then  # Debian's pyconfig.h is a multiarch wrapper: <TRIPLE/python3.11/pyconfig.h>
  HEADER_ARGS=(-Ccmake.define.Python_INCLUDE_DIR="$ROOT/usr/include/python3.11")
  export CXXFLAGS="${CXXFLAGS:-} -idirafter $ROOT/usr/include"
fi
# SETUPTOOLS_EXT_SUFFIX names the module for the target; _PYTHON_HOST_PLATFORM tags the wheel; no build
# isolation (with it pip would fetch build tools for the *target* platform); a fixed build dir keeps the
# second build incremental.
if ! SETUPTOOLS_EXT_SUFFIX=$EXT_SUFFIX _PYTHON_HOST_PLATFORM=$PLAT CMAKE_BUILD_PARALLEL_LEVEL=$JOBS \
    "$VENV/bin/pip" wheel -v --no-build-isolation --no-deps -w "$DIST" . \
    -Ccmake.toolchain-file="$TOOLCHAIN" -Cbuild-dir="$ARM/build-$DEB_ARCH" "${HEADER_ARGS[@]}" \
    > "$LOGS/wheel.log" 2>&1; then
  tail -40 "$LOGS/wheel.log"; exit 1
fi
grep -E "mobilebert_lite: |Built wheel|Created wheel" "$LOGS/wheel.log" | sed 's/^ *//' || true
WHEEL=$(ls "$DIST"/*.whl)
# The package falls back to a pure wheel when the native build fails (pyproject's if.failed override): a
# cross build must not pass that way, so check the module is in the wheel and is an ELF for the target.
python3 - "$WHEEL" "$EXT_SUFFIX" "$ELF_MACHINE" <<'EOF'
import struct, sys, zipfile
wheel, suffix, machine = sys.argv[1], sys.argv[2], int(sys.argv[3])
z = zipfile.ZipFile(wheel)
mods = [n for n in z.namelist() if n.startswith("mobilebert_lite/_C") and n.endswith(".so")]
# _C.so also imports (CPython accepts a bare .so); it is what FindPython gives when it cannot query the
# target interpreter and CMakeLists does not take scikit-build-core's SKBUILD_SOABI.
if mods == ["mobilebert_lite/_C.so"]:
    print(f"NOTE: the module is named _C.so, not _C{suffix} (Python_SOABI unknown to CMake)")
else:
    assert mods == ["mobilebert_lite/_C" + suffix], f"{wheel}: native module missing or misnamed: {mods}"
head = z.read(mods[0])[:20]
assert head[:4] == b"\x7fELF" and struct.unpack("<H", head[18:20])[0] == machine, f"{mods[0]}: not the target ELF"
print(f"wheel ok: {wheel.rsplit('/', 1)[-1]} has {mods[0]} (ELF e_machine {machine})")
EOF
"$VENV/bin/pip" install -q --no-deps --target "$SITE" --upgrade "${PYTAGS[@]}" "$WHEEL"
python3 -m compileall -q -j"$JOBS" "$SITE/mobilebert_lite" >/dev/null 2>&1 || true

# ---------------------------------------------------------------------- 4. pytest under qemu, per core
# -P: the repo root is not put on sys.path, so the installed package (with _C) is imported, not ./mobilebert_lite.
# PYTHONNOUSERSITE: qemu's -L falls back to host files, and no x86 user site may leak in.
run_py() {  # run_py CPU LOGNAME ARGS...  (env vars for the target are passed by the caller's environment)
  local cpu=$1 log=$2; shift 2
  QEMU_CPU=$cpu PYTHONPATH=$SITE PYTHONNOUSERSITE=1 MBL_REQUIRE_NATIVE=1 \
    "$QEMU" "$ROOT/usr/bin/python3" -P "$@" 2>&1 | tee "$LOGS/$log.log"
  return "${PIPESTATUS[0]}"
}
SUMMARY=()
FAILED=0
for cpu in $CPUS; do
  step "pytest as $ARCH on QEMU_CPU=$cpu: ${TESTS[*]}"
  t0=$SECONDS
  run_py "$cpu" "$cpu" -c 'import mobilebert_lite as m; i = m.runtime_info()
print("runtime_info:", {k: i[k] for k in ("isa", "compiled_isas", "supported_isas", "kernels", "numpy")})
print("cpu features:", sorted(k for k, v in i["cpu_features"].items() if v)); print("build:", i["build"])' || FAILED=1
  run_py "$cpu" "pytest-$cpu" -m pytest -q -p no:cacheprovider "${TESTS[@]}" || FAILED=1
  line=$(grep -E "^=*.*[0-9]+ (passed|failed|error|skipped).* in [0-9.]+s" "$LOGS/pytest-$cpu.log" | tail -1 || true)
  SUMMARY+=("$cpu: ${line//=/} (wall $((SECONDS - t0)) s)")
done

# MBL_FORCE_ISA is read once per process: one more process each, on the first core only
cpu=${CPUS%% *}
step "MBL_FORCE_ISA=scalar and =avx2 on QEMU_CPU=$cpu"
t0=$SECONDS
MBL_FORCE_ISA=scalar run_py "$cpu" "forced-scalar" -m pytest -q -p no:cacheprovider tests/test_arm_smoke.py || FAILED=1
line=$(grep -E "[0-9]+ (passed|failed).* in [0-9.]+s" "$LOGS/forced-scalar.log" | tail -1 || true)
SUMMARY+=("$cpu MBL_FORCE_ISA=scalar: ${line//=/}")
MBL_FORCE_ISA=avx2 run_py "$cpu" "forced-avx2" -m pytest -q -p no:cacheprovider tests/test_arm_smoke.py \
  -k "forced_isa_env or foreign_isas" || FAILED=1
line=$(grep -E "[0-9]+ (passed|failed).* in [0-9.]+s" "$LOGS/forced-avx2.log" | tail -1 || true)
SUMMARY+=("$cpu MBL_FORCE_ISA=avx2 (refused): ${line//=/} (both forced runs: $((SECONDS - t0)) s)")

step "summary ($ARCH)"
printf '%s\n' "${SUMMARY[@]}"
echo "total wall time: $((SECONDS - START)) s"
exit $FAILED
