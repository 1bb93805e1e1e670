#!/usr/bin/env bash
# ARM kernel gate without ARM hardware: cross-compile the C++ kernel tests (mbl_kernel_tests) for AArch64
# and ARMv7 on this x86 host, run them with ctest under qemu-user (the toolchain files set the emulator).
# Never compiles inside emulation (see /work/shared/reference/arm_testing.md).
#   AArch64 under cortex-a72 (Raspberry Pi 4, no dotprod) and cortex-a76 (Pi 5, dotprod);
#   ARMv7 under cortex-a15 (NEON + VFPv4). QEMU_CPU is always set: qemu's default "max" hides the
#   baseline paths.
# Build dirs: .arm/kernels-<triple> (gitignored). Exits non-zero on any build or test failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

# Apt packages, only if something is missing (idempotent, no network when all are there).
need=()
for p in g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user cmake ninja-build; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

status=0
summary=()
# run <build dir> <QEMU_CPU>: ctest under that core; records the test binary's "N passed, M failed" line.
run() {
  local dir=$1 cpu=$2 log
  log=$(mktemp)
  if QEMU_CPU=$cpu ctest --test-dir "$dir" -V >"$log" 2>&1; then :; else status=1; fi
  grep -E "FAIL|active isa|gemm=" "$log" | sed "s/^[0-9]*: /  [$cpu] /" || true
  local line
  line=$(grep -E "^[0-9]+: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -1 | sed 's/^[0-9]*: //')
  if [[ -z $line ]]; then line="no summary (crashed?)"; status=1; tail -5 "$log"; fi
  summary+=("$(basename "$dir") $cpu: $line")
  rm -f "$log"
}

for triple in aarch64-linux-gnu arm-linux-gnueabihf; do
  dir=.arm/kernels-$triple
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMBL_BUILD_PYTHON=OFF -DMBL_BUILD_TESTS=ON \
    -DCMAKE_TOOLCHAIN_FILE="cmake/$triple.cmake" >/dev/null
  cmake --build "$dir" -j2
done
run .arm/kernels-aarch64-linux-gnu cortex-a72
run .arm/kernels-aarch64-linux-gnu cortex-a76
run .arm/kernels-arm-linux-gnueabihf cortex-a15

printf '%s\n' "${summary[@]}"
echo "arm_kernels: $([[ $status == 0 ]] && echo OK || echo FAILED) in $((SECONDS - start)) s"
exit $status
