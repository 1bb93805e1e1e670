"""Guest instructions of ONE MobileBERT forward on aarch64, ours vs ONNX Runtime, counted under qemu-user (no hardware).

    python benchmarks/arm_insn_count.py                      # cortex-a72 and cortex-a76, shape (1,128), 1 thread
    python benchmarks/arm_insn_count.py --cpus cortex-a72 --seq 16
    python benchmarks/arm_insn_count.py --engines native_int8 ort_int8   # int8: ours vs ORT's dynamic int8
    python benchmarks/arm_insn_count.py --x86-cpu EPYC-Milan --engines native_int8 ort_int8   # x86 without AVX-512

Method. QEMU's TCG plugin API counts the guest (aarch64) instructions that are executed: a tiny plugin (the inline
form of QEMU's own tests/plugin/insn.c, built here against the plugin ABI of the installed qemu-user) adds each
translation block's instruction count to a counter every time the block runs, and prints the total at exit. A second
counter does the same for the 128-bit fp32 FMLAs (4 multiply-adds each) found in the block, i.e. the useful vector
arithmetic, so the table also shows how many instructions each engine spends around it. Debian ships a
plugin-enabled qemu-aarch64 but no plugins nor qemu-plugin.h, so the few declarations are inlined below.

A count covers the whole process (interpreter start-up, imports, model load). To isolate one forward, every engine
runs twice in a fresh process: a warm-up forward only, then a warm-up forward plus one more; the difference is one
steady-state forward (the warm-up absorbs one-off work such as weight packing or ORT's first-run allocations).
Both engines read the same weights: the random-weight google/mobilebert-uncased-shape model that `_common.build_all`
writes to /tmp/mbl_bench (hf_model/ for us, onnx/model_fp32.onnx for ORT), and the same int64 inputs.

What the number is: retired guest instructions, one thread. Not time: it ignores IPC, cache misses, and the width
of each instruction (a 128-bit FMLA counts as one, like a scalar add), so it compares instruction-level work only.

Needs the caches of `bash ci/arm_python.sh` (.arm/rootfs-arm64, .arm/site-arm64 with our aarch64 wheel) and a C
compiler on the host; the aarch64 onnxruntime wheel is pip-installed into .arm/ort-arm64 on first use.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ARM = ROOT / ".arm"
ROOTFS = ARM / "rootfs-arm64"
SITE = ARM / "site-arm64"
ORT_SITE = ARM / "ort-arm64"
PLUGIN_DIR = ARM / "qemu-insn"

# The plugin ABI of QEMU 7.2 (Debian bookworm), declared by hand because no qemu-plugin.h is installed. Version 1 is
# what 7.2 accepts; qemu refuses to load the plugin with a clear message if the installed qemu wants another one.
PLUGIN_C = r"""
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* One counter each for the process: the measured runs are single-threaded (other threads would race on them). */
static uint64_t insn_count, fmla_count;

/* FMLA Vd.4S, Vn.4S, Vm.S[i] (by element) and FMLA Vd.4S, Vn.4S, Vm.4S (vector): the 128-bit fp32 multiply-add,
   4 FMAs each, that both engines' GEMM kernels are made of. */
static int is_fmla_4s(uint32_t op) {
    return (op & 0xFFC0F400u) == 0x4F801000u || (op & 0xFFE0FC00u) == 0x4E20CC00u;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb), fmla = 0;
    (void)id;
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t op;
        if (qemu_plugin_insn_size(insn) != 4) continue;
        memcpy(&op, qemu_plugin_insn_data(insn), 4); /* aarch64 code is little-endian, like the x86 host */
        fmla += is_fmla_4s(op);
    }
    /* Counted per block execution (as QEMU's insn plugin with inline=on): exact unless a block exits early. */
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, n);
    if (fmla) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &fmla_count, fmla);
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    char buf[96];
    (void)id; (void)p;
    snprintf(buf, sizeof buf, "mbl-insns: %llu fmla4s: %llu\n", (unsigned long long)insn_count,
             (unsigned long long)fmla_count);
    qemu_plugin_outs(buf);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info; (void)argc; (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
"""

# ORT's cpuinfo reads /proc/cpuinfo and /sys/devices/system/cpu, which qemu-user 7.2 passes through from the x86
# host: it finds no ARM core and dereferences NULL while importing onnxruntime. qemu looks an absolute path up under
# QEMU_LD_PREFIX first, so a prefix made of links to the rootfs plus a one-core ARM /proc/cpuinfo and cpu lists
# fixes that without touching the rootfs. The MIDR fields match QEMU_CPU; both engines run under the same prefix.
CPUINFO = {
    "cortex-a72": ("0x0", "0xd08", "3", "fp asimd evtstrm crc32 cpuid"),
    "cortex-a76": ("0x4", "0xd0b", "1", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                                        "asimdrdm lrcpc dcpop asimddp"),
}

ENGINES = ("native", "ort_fp32", "native_int8", "ort_int8")
LABEL = {"native": "mbl native", "ort_fp32": "ORT fp32", "native_int8": "mbl int8", "ort_int8": "ORT int8"}
OURS = {"native": "native", "ort_fp32": "native", "native_int8": "native_int8", "ort_int8": "native_int8"}


# --------------------------------------------------------------------------------------------------------------
# Guest side: runs under qemu-aarch64 with the target's python3
# --------------------------------------------------------------------------------------------------------------

def child(engine: str, forwards: int, batch: int, seq: int, workdir: Path) -> None:
    sys.path.insert(0, str(HERE))
    import _common
    import numpy as np

    feed = _common.make_inputs([(batch, seq)])[f"{batch}x{seq}"]
    run, _ = _common.load_engine(engine, workdir, threads=1)
    out = None
    for _ in range(forwards):
        out = run(feed)
    # A checksum of the output: cheap, identical in both runs, and shows that both engines computed the same thing.
    print(f"{engine} forwards={forwards} shape={tuple(out.shape)} mean_abs={float(np.abs(out).mean()):.6f}")


# --------------------------------------------------------------------------------------------------------------
# Host side
# --------------------------------------------------------------------------------------------------------------

def build_plugin() -> Path:
    so = PLUGIN_DIR / "libinsn.so"
    src = PLUGIN_DIR / "insn.c"
    if so.exists() and src.exists() and src.read_text() == PLUGIN_C:
        return so
    PLUGIN_DIR.mkdir(parents=True, exist_ok=True)
    src.write_text(PLUGIN_C)
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    return so


def make_prefix(cpu: str) -> Path:
    prefix = PLUGIN_DIR / f"prefix-{cpu}"
    (prefix / "proc").mkdir(parents=True, exist_ok=True)
    (prefix / "sys/devices/system/cpu").mkdir(parents=True, exist_ok=True)
    for entry in ROOTFS.iterdir():
        link = prefix / entry.name
        if entry.name not in ("proc", "sys") and not link.is_symlink():
            link.symlink_to(entry)
    variant, part, rev, features = CPUINFO[cpu]
    (prefix / "proc/cpuinfo").write_text(
        f"processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: {variant}\nCPU part\t: {part}\nCPU revision\t: {rev}\n\n")
    for name in ("possible", "present"):
        (prefix / "sys/devices/system/cpu" / name).write_text("0\n")
    return prefix


def ensure_ort() -> None:
    if (ORT_SITE / "onnxruntime").is_dir():
        return
    # --no-deps: the runtime only needs numpy (already in .arm/site-arm64); the others are for its tools.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(ORT_SITE),
                    "--only-binary=:all:", "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
                    "--implementation", "cp", "--abi", "cp311", "onnxruntime"], check=True)


def count(plugin: Path, cpu: str, engine: str, forwards: int, args) -> tuple[int, int, str, float]:
    """Run one guest process; return (guest instructions, FMLA.4S among them, its stdout line, wall seconds).

    With --x86-cpu the guest is this host's python and packages under qemu-x86_64 with that x86 CPU model, so that
    both engines dispatch to the kernels that CPU would get (e.g. EPYC-Milan = Zen 3: AVX2, no AVX-512; QEMU 7.2's
    TCG runs AVX2 but no AVX-512). The FMLA count is then meaningless (it decodes aarch64) and reported as 0."""
    sys.path.insert(0, str(HERE))
    import _common

    env = _common.child_env(1)
    env.update(PYTHONHASHSEED="0")
    child_args = [str(Path(__file__).resolve()), "--child", engine, "--forwards", str(forwards), "--batch",
                  str(args.batch), "--seq", str(args.seq), "--workdir", str(args.workdir)]
    if args.x86_cpu:
        log = PLUGIN_DIR / f"log-x86-{cpu}-{engine}-{forwards}.txt"
        cmd = ["qemu-x86_64", "-cpu", cpu, "-plugin", str(plugin), "-d", "plugin", "-D", str(log), sys.executable]
    else:
        prefix = make_prefix(cpu)
        env.update(QEMU_CPU=cpu, QEMU_LD_PREFIX=str(prefix), PYTHONPATH=os.pathsep.join([str(SITE), str(ORT_SITE)]))
        log = PLUGIN_DIR / f"log-{cpu}-{engine}-{forwards}.txt"
        cmd = ["qemu-aarch64", "-plugin", str(plugin), "-d", "plugin", "-D", str(log), str(prefix / "usr/bin/python3")]
    t0 = time.perf_counter()
    r = subprocess.run(cmd + child_args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"guest run failed ({' '.join(cmd + child_args)}):\n{r.stdout}\n{r.stderr}")
    m = re.search(r"mbl-insns: (\d+) fmla4s: (\d+)", log.read_text())
    if not m:
        sys.exit(f"no instruction count in {log}")
    fmla = 0 if args.x86_cpu else int(m.group(2))
    return int(m.group(1)), fmla, r.stdout.strip().splitlines()[-1], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpus", nargs="+", default=["cortex-a72", "cortex-a76"])
    ap.add_argument("--engines", nargs="+", default=["native", "ort_fp32"], choices=ENGINES)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--workdir", type=Path, default=Path(os.environ.get("MBL_BENCH_DIR", "/tmp/mbl_bench")))
    ap.add_argument("--x86-cpu", metavar="MODEL",
                    help="count on x86 instead: this host's python under qemu-x86_64 -cpu MODEL (e.g. EPYC-Milan, Zen "
                         "3's AVX2 without AVX-512); --cpus is then ignored")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--forwards", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.forwards, args.batch, args.seq, args.workdir)
        return

    if args.x86_cpu:
        args.cpus = [args.x86_cpu]
    else:
        for p in (ROOTFS / "usr/bin/python3", SITE / "mobilebert_lite"):
            if not p.exists():
                sys.exit(f"missing {p}: run `bash ci/arm_python.sh` first")
    sys.path.insert(0, str(HERE))
    import _common

    _common.build_all(args.workdir)  # cached: HF safetensors + ONNX fp32 of the same random weights
    if not args.x86_cpu:
        ensure_ort()
    plugin = build_plugin()
    emulator = "qemu-x86_64" if args.x86_cpu else "qemu-aarch64"
    qemu = subprocess.run([emulator, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"{qemu}; shape ({args.batch},{args.seq}); 1 thread; guest instructions of one forward = "
          f"count(warm-up + 1 forward) - count(warm-up only)")

    rows = []
    for cpu in args.cpus:
        for engine in args.engines:
            n1, f1, _, w1 = count(plugin, cpu, engine, 1, args)
            n2, f2, line, w2 = count(plugin, cpu, engine, 2, args)
            rows.append((cpu, engine, n2 - n1, f2 - f1))
            print(f"  {cpu:11s} {LABEL[engine]:10s} process {n1:,} / {n2:,} insns ({w1:.0f} s / {w2:.0f} s "
                  f"emulated) -> one forward {n2 - n1:,} insns, {f2 - f1:,} FMLA.4S   [{line}]", flush=True)

    print()
    print("| QEMU_CPU | engine | G insns / forward | M FMLA.4S / forward | FMLA share | insns per FMLA | vs ours |")
    print("|---|---|---|---|---|---|---|")
    ours = {(cpu, engine): n for cpu, engine, n, _ in rows if engine in ("native", "native_int8")}
    for cpu, engine, n, f in rows:
        base = ours.get((cpu, OURS[engine]))
        rel = f"{n / base:.2f}x" if base else "-"
        fmla = ("-", "-", "-") if args.x86_cpu else (f"{f / 1e6:.1f}", f"{f / n:.0%}", f"{n / max(f, 1):.2f}")
        print(f"| {cpu} | {LABEL[engine]} | {n / 1e9:.3f} | {' | '.join(fmla)} | {rel} |")


if __name__ == "__main__":
    main()
