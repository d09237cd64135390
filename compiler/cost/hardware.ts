/**
 * The cost model from hardware figures (SCHEDULING.md §2): roofline compute with the device's
 * efficiency, α–β collectives from link bandwidth, efficiency and latency with the usual
 * algorithm factors, and the node's NICs shared by its GPUs.
 *
 * - all-to-all over P ranks, m per node: each rank sends (m−1)/P of its buffer over its intra
 *   link and (P−m)/P through the NICs; both proceed at once, so β is the slower of the two.
 * - ring AllGather / ReduceScatter: (P−1)/P of the gathered size crosses each hop; all-reduce
 *   twice that. A ring spanning nodes has one inter-node hop per node, shared with the other
 *   rings of the same kind running on that node at the same time.
 * - every GPU of a node runs the same collective at the same time (SPMD), so inter-node
 *   traffic from G/m groups shares the node's NICs.
 * - GEMMs: 2 FLOP per MAC at peak_flops × efficiency; backward is dgrad + wgrad, twice forward.
 * - memory-bound kernels read and write each element once at memory_bandwidth; a device
 *   without memory_bandwidth prices them at zero (stated in the description).
 * - α: the link latency per ring step (P−1 steps; 2(P−1) for all-reduce), one latency for an
 *   all-to-all; no launch overhead for kernels.
 */
import type { Cluster } from "../check/program.js";
import type { Group } from "../graph/types.js";
import type { CostModel, CostQuery, Linear } from "./model.js";

const US = 1e6;

/** Per-element β (µs) of moving `fraction` of an element over a link of `bytesPerSecond`. */
function perElement(fraction: number, bytes: number, bytesPerSecond: number): number {
  return bytesPerSecond > 0 ? (fraction * bytes * US) / bytesPerSecond : 0;
}

/** The hardware cost model of a cluster for elements of `bytes` bytes. */
export function hardwareModel(cluster: Cluster, bytes: number): CostModel {
  const G = cluster.gpusPerNode;
  const intraBw = cluster.intra.bandwidth * cluster.intra.efficiency;
  const nicBw = cluster.inter.bandwidth * cluster.inter.efficiency * cluster.nicsPerNode;
  const flops = cluster.device.peakFlops * cluster.device.efficiency;
  const memBw = cluster.device.memoryBandwidth;
  const ring = (g: Group, factor: number): Linear => {
    const P = g.size;
    const frac = (factor * (P - 1)) / P;
    const intra = g.membersPerNode > 1 ? perElement(frac, bytes, intraBw) : 0;
    const inter = g.nodes > 1 ? perElement(frac, bytes, nicBw / (G / g.membersPerNode)) : 0;
    const latency = g.nodes > 1 ? Math.max(cluster.inter.latency, cluster.intra.latency) : cluster.intra.latency;
    return { alphaUs: factor * (P - 1) * latency * US, betaUs: Math.max(intra, inter) };
  };
  const description =
    `hardware: ${cluster.device.name} at ${cluster.device.peakFlops / 1e12} TFLOP/s × ${cluster.device.efficiency}, ` +
    `intra ${cluster.intra.bandwidth / 1e9} GB/s × ${cluster.intra.efficiency}, inter ${cluster.nicsPerNode} × ${cluster.inter.bandwidth / 1e9} GB/s × ${cluster.inter.efficiency} per node` +
    (memBw === null ? "; no memory_bandwidth: memory-bound kernels priced at zero" : "");
  return {
    name: "hardware",
    interference: 1,
    description,
    linear(q: Omit<CostQuery, "n">): Linear {
      const dirFactor = q.dir === "bwd" ? 2 : 1;
      switch (q.cls) {
        case "expert_gemm":
        case "dense_gemm":
          return { alphaUs: 0, betaUs: (2 * US * dirFactor) / flops };
        case "memory":
          return { alphaUs: 0, betaUs: memBw ? (2 * bytes * US) / memBw : 0 };
        case "all_to_all": {
          const g = q.group!;
          const P = g.size;
          const intra = perElement((g.membersPerNode - 1) / P, bytes, intraBw);
          const inter = g.nodes > 1 ? perElement((P - g.membersPerNode) / P, bytes, nicBw / G) : 0;
          const latency = g.nodes > 1 ? cluster.inter.latency : cluster.intra.latency;
          return { alphaUs: latency * US, betaUs: Math.max(intra, inter) };
        }
        case "all_gather":
        case "reduce_scatter":
          return ring(q.group!, 1);
        case "all_reduce":
          return ring(q.group!, 2);
      }
    },
  };
}
