"""Theoretical cycles of one MobileBERT forward on Cortex-A72 (Raspberry Pi 4) and Cortex-A76 (Raspberry Pi 5).

    python benchmarks/arm_cycle_estimate.py                  # shape (1,128), google/mobilebert-uncased config
    python benchmarks/arm_cycle_estimate.py --seq 384 --eff 0.5 0.9

A paper estimate, no hardware and no emulation: it counts the work the engine issues and divides by documented
pipeline throughput. The chain:

1. FLOPs by layer type from the config, one packed GEMM per projection exactly as csrc/model/mobilebert.cc issues
   them (bottleneck input/attention, Q, K, V, attention output, 4 FFNs, output bottleneck; the trigram embedding
   transformation; the pooler on the [CLS] row), plus attention's QK^T and PV.
2. The aarch64 NEON microkernel (csrc/kernels/arm/gemm_neon.cc) computes an 8x12 tile; per k step it issues
   MR * NR/4 = 24 FMLA (by element, 128-bit), i.e. 96 multiply-adds. Tiles are padded to 8 rows x 12 columns, so
   the FMLA count includes the padding (N=128 -> 11 tiles = 132 columns). GCC 12 compiles the k loop of the 8-row
   tile to 47 instructions: 24 FMLA, 3 q loads of the weight panel, 2 scalar loads + 2 DUP + 6 LD1 lane inserts
   gathering A, 10 integer/branch (read from `aarch64-linux-gnu-objdump -d` of the built _C module).
3. Throughput (the assumption: our reading of Arm's Software Optimization Guides, to be confirmed on hardware):
   - Cortex-A72 (UAN 0016A): two FP/ASIMD pipes F0/F1, 64 bits wide; a Q-form FMLA occupies both, so one
     128-bit FMLA per cycle = 8 FP32 FLOP/cycle peak. LD1-lane and DUP also take an F0/F1 slot each.
   - Cortex-A76: two 128-bit ASIMD pipes V0/V1, both able to FMLA: two 128-bit FMLA per cycle = 16 FLOP/cycle.
     LD1-lane and DUP take a V slot each.
   Per k step of the 8x12 tile: A72 24 + 8/2 = 28 cycles, A76 (24 + 8)/2 = 16 cycles on the FP/ASIMD pipes; the
   47 instructions need 15.7 (A72, 3-wide decode) / 11.8 (A76, 4-wide) cycles of front end, so the FP pipes bound.
   Kernel ceiling: 24/28 = 86% of FMA peak on A72, 12/16 = 75% on A76 (the lane inserts cost the A76 more).
4. An efficiency factor (default 0.6-0.9 of the kernel ceiling) for everything the pipe model ignores: cache misses
   (the ~84 MB of packed fp32 weights are streamed from DRAM once per forward), out-of-order imperfections, the tile
   epilogues, softmax, NoNorm, and Python. The DRAM-bound line is printed as a lower bound check.

Cycles are converted at 1.5 GHz (Pi 4) and 2.4 GHz (Pi 5); one core.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

# Microkernel facts (csrc/kernels/arm/gemm_neon.cc, kernels.h: kGemmMr = 8, kGemmNr = 12 on aarch64).
MR, NR, LANES = 8, 12, 4
FMLA_PER_KSTEP = MR * NR // LANES  # 24
INSNS_PER_KSTEP = 47  # compiled k loop of the 8-row tile (objdump); used only to cross-check the qemu count
OTHER_ASIMD_PER_KSTEP = 8  # 6 LD1 lane inserts + 2 DUP that share the FP/ASIMD pipes with the FMLAs
# Tile epilogue: 24 accumulators x (2 compares + 2 selects of the clamp) on the vector pipes + 24 stores.
EPILOGUE_ASIMD_PER_TILE = 24 * 4


@dataclass(frozen=True)
class Core:
    name: str
    board: str
    ghz: float
    fmla_per_cycle: float  # 128-bit FMLA per cycle
    asimd_slots: float  # single-slot ASIMD uops per cycle (lane insert, DUP, compare, select)
    q_fmla_slots: int  # pipe slots a 128-bit FMLA occupies
    dram_gbs: float  # single-core streaming read bandwidth assumed for the DRAM lower bound
    exp_cycles_per_vec: float  # softmax exp of 4 lanes (polynomial ~12 ASIMD ops), rough


CORES = (
    Core("Cortex-A72", "Raspberry Pi 4", 1.5, 1.0, 2.0, 2, 4.0, 12.0),
    Core("Cortex-A76", "Raspberry Pi 5", 2.4, 2.0, 2.0, 1, 10.0, 6.0),
)


@dataclass
class Gemm:
    name: str
    count: int  # per forward
    M: int
    N: int
    K: int

    def flops(self) -> int:
        return 2 * self.M * self.N * self.K * self.count

    def row_tiles(self) -> list[int]:
        # Full 8-row tiles plus one tail tile of M % 8 rows (its own unrolled body: MR * 3 FMLA per k step).
        return [MR] * (self.M // MR) + ([self.M % MR] if self.M % MR else [])

    def col_tiles(self) -> int:
        return math.ceil(self.N / NR)

    def ksteps(self) -> int:
        return len(self.row_tiles()) * self.col_tiles() * self.K * self.count

    def fmla(self) -> int:
        return sum(mr * NR // LANES for mr in self.row_tiles()) * self.col_tiles() * self.K * self.count

    def tiles(self) -> int:
        return len(self.row_tiles()) * self.col_tiles() * self.count

    def weight_bytes(self) -> int:
        return 4 * self.col_tiles() * NR * self.K * self.count  # packed panel, zero-padded to 12 columns


def gemms(cfg, batch: int, seq: int) -> list[Gemm]:
    """The projections of one forward, in the order csrc/model/mobilebert.cc runs them."""
    R, H, T, Iw = batch * seq, cfg.hidden_size, cfg.true_hidden_size, cfg.intermediate_size
    n = cfg.num_hidden_layers
    E = cfg.embedding_size * (3 if cfg.trigram_input else 1)
    out = [Gemm("embedding transformation", 1, R, H, E)]
    if cfg.use_bottleneck:
        out.append(Gemm("bottleneck input", n, R, T, H))
        if not cfg.use_bottleneck_attention:
            out.append(Gemm("bottleneck attention", n, R, T, H))
    qk_in = T if cfg.use_bottleneck else H
    v_in = T if cfg.use_bottleneck_attention or not cfg.use_bottleneck else H
    out += [
        Gemm("query", n, R, T, qk_in),
        Gemm("key", n, R, T, qk_in),
        Gemm("value", n, R, T, v_in),
        Gemm("attention output", n, R, T, T),
        Gemm("FFN intermediate", n * cfg.num_feedforward_networks, R, Iw, T),
        Gemm("FFN output", n * cfg.num_feedforward_networks, R, T, Iw),
    ]
    if cfg.use_bottleneck:
        out.append(Gemm("output bottleneck", n, R, H, T))
    if cfg.classifier_activation:
        out.append(Gemm("pooler ([CLS] rows)", 1, batch, H, H))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--eff", type=float, nargs=2, default=(0.6, 0.9), metavar=("LOW", "HIGH"),
                    help="fraction of the kernel ceiling actually reached (default 0.6 0.9)")
    args = ap.parse_args()

    from mobilebert_lite import MobileBertConfig

    cfg = MobileBertConfig()  # google/mobilebert-uncased shape
    B, L = args.batch, args.seq
    gs = gemms(cfg, B, L)

    # Attention per layer and sequence: QK^T and PV, 2 * L * L * d FLOPs each per head; heads * d = T.
    attn_flops = 2 * 2 * L * L * cfg.true_hidden_size * B * cfg.num_hidden_layers
    attn_fmla = attn_flops // (2 * LANES)  # counted as ideal 4-lane FMLAs (the attention kernel is NEON too)
    exps = cfg.num_attention_heads * L * L * B * cfg.num_hidden_layers

    print(f"MobileBertConfig() (google/mobilebert-uncased shape): {cfg.num_hidden_layers} layers, hidden "
          f"{cfg.hidden_size}, bottleneck {cfg.true_hidden_size}, intermediate {cfg.intermediate_size}, "
          f"{cfg.num_feedforward_networks} FFNs; shape ({B},{L})")
    print()
    print("| GEMM | per forward | M x N x K | MFLOP | FMLA (8x12 tiles, padded) M |")
    print("|---|---|---|---|---|")
    for g in gs:
        print(f"| {g.name} | {g.count} | {g.M} x {g.N} x {g.K} | {g.flops() / 1e6:.1f} | {g.fmla() / 1e6:.2f} |")
    gemm_flops = sum(g.flops() for g in gs)
    gemm_fmla = sum(g.fmla() for g in gs)
    ksteps = sum(g.ksteps() for g in gs)
    tiles = sum(g.tiles() for g in gs)
    wbytes = sum(g.weight_bytes() for g in gs)  # every layer and FFN has its own weights: count = matrices
    print(f"| **all GEMMs** | | | **{gemm_flops / 1e6:.1f}** | **{gemm_fmla / 1e6:.2f}** |")
    print(f"| attention QK^T + PV | {cfg.num_hidden_layers} | {cfg.num_attention_heads} heads, L={L} | "
          f"{attn_flops / 1e6:.1f} | {attn_fmla / 1e6:.2f} (ideal) |")
    total_flops = gemm_flops + attn_flops
    useful = 8 * (gemm_fmla + attn_fmla)
    print(f"\ntotal {total_flops / 1e9:.3f} GFLOP per forward; tile padding adds {useful / total_flops - 1:.1%}; "
          f"{exps / 1e6:.2f} M softmax exps; {wbytes / 1e6:.1f} MB of packed fp32 weights read per forward.")
    print(f"GEMM k loop alone: {ksteps / 1e6:.2f} M k steps x {INSNS_PER_KSTEP} instructions = "
          f"{ksteps * INSNS_PER_KSTEP / 1e9:.3f} G instructions (compare with arm_insn_count.py's total per forward).")

    print()
    print("| core (board, GHz) | FMA peak FLOP/cycle | Mcycles at FMA peak | kernel ceiling | Mcycles, kernel model "
          f"| ms at {args.eff[1]:.0%}-{args.eff[0]:.0%} of model | DRAM lower bound ms |")
    print("|---|---|---|---|---|---|---|")
    for c in CORES:
        peak_cycles = (gemm_fmla + attn_fmla) / c.fmla_per_cycle
        # FP/ASIMD pipe occupancy of one 8-row k step: FMLAs take q_fmla_slots each, the rest one slot each.
        kstep_cycles = (FMLA_PER_KSTEP * c.q_fmla_slots + OTHER_ASIMD_PER_KSTEP) / c.asimd_slots
        ceiling = (FMLA_PER_KSTEP / c.fmla_per_cycle) / kstep_cycles
        model = (gemm_fmla / FMLA_PER_KSTEP * kstep_cycles  # tail tiles approximated by the full-tile ratio
                 + tiles * EPILOGUE_ASIMD_PER_TILE / c.asimd_slots
                 + attn_fmla / c.fmla_per_cycle / ceiling
                 + exps / LANES * c.exp_cycles_per_vec)
        ms_hi = model / args.eff[1] / (c.ghz * 1e6)
        ms_lo = model / args.eff[0] / (c.ghz * 1e6)
        dram_ms = wbytes / (c.dram_gbs * 1e9) * 1e3
        print(f"| {c.name} ({c.board}, {c.ghz}) | {8 * c.fmla_per_cycle:.0f} | {peak_cycles / 1e6:.0f} | "
              f"{ceiling:.0%} | {model / 1e6:.0f} | {ms_hi:.0f}-{ms_lo:.0f} | {dram_ms:.0f} |")
    print(f"\nOne core, fp32. Not a measurement: the efficiency range is an assumption; the DRAM bound assumes the "
          f"weights are not cache-resident (they cannot be: {wbytes / 1e6:.0f} MB vs 1-2 MB of L2).")


if __name__ == "__main__":
    main()
