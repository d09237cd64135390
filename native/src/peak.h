// The machine's measured fp32 peak (bench/replay.bench.ts reports host GEMM throughput against
// it): independent fused multiply-add chains, compiled for the widest vector unit the CPU has.
#pragma once

namespace fsmoe {

/**
 * GFLOP/s of `threads` threads each running register-resident multiply-add chains for about
 * `seconds` (2 FLOP per multiply-add), the best of three runs. What the CPU can do at most on
 * fp32 with the vector unit the loader picked, not what any real kernel reaches.
 */
double measurePeakGflops(int threads, double seconds);

}  // namespace fsmoe
