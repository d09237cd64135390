/**
 * The discrete-event engine of the simulator (ARCHITECTURE.md, "runtime/simulate"). One rank
 * stands for all (SPMD: every rank runs the same ops at the same time, so a collective starts
 * when the rank reaches it; skew is folded into op sizes beforehand, see skew.ts). Each of the
 * three streams is a FIFO that runs one op at a time; an op starts when its stream is free and
 * every op it waits for has finished.
 *
 * Ops progress as fluid: an op alone runs at rate 1 and finishes after its time alone. With
 * contention on, the ops running at the same moment share the node's NICs and the GPU's
 * intra-node link max-min fairly: each op needs a fraction u of a link (its bytes over its time
 * alone, over the link's capacity — the cost model already charged the sharing between the G
 * ranks of a node running the same op, so what is added here is sharing between *different*
 * ops), each link is water-filled among the ops on it, and an op progresses at the smallest
 * allocated / needed ratio over its links. Compute kernels run `1 / interference` as fast
 * while any communication kernel runs. On a machine whose ranks share CPU cores (a host
 * profile's `host` section: ranks are threads of one process), every op — kernel or collective,
 * both are CPU work there — also pays the executor's cost per op and per hand-off between
 * threads (each wait on another stream's op, a collective's rendezvous), and the ops running across
 * all W ranks share the cores: each runs at min(1, cores / (W · running here)), since every rank
 * runs the same ops at the same time. Rates only ever drop below 1, so none of these effects can
 * make a plan faster; with all off the engine reproduces the scheduler's timeline
 * (graph/timeline.ts) exactly, to the last bit.
 *
 * Between events it accounts each resource's busy time (compute kernels, intra links, NICs),
 * each stream's, the communication time no compute kernel hides, and the time each effect
 * added. Every op records which earlier op released it (its stream predecessor or a wait, the
 * one that finished last), which gives the critical path.
 */
import type { Prepared } from "./input.js";

/** Resource-level figures of a run (µs). */
export interface Busy {
  /** Compute kernels running. */
  readonly compute: number;
  /** Some op using the GPU's intra-node link running. */
  readonly intra: number;
  /** Some op using the node's NICs running. */
  readonly nic: number;
}

/** What an effect (contention on a link, interference) did to the run. */
export interface Effect {
  /** Ops it slowed at some moment. */
  readonly ops: number;
  /** Time it added to those ops' durations, summed (µs). */
  readonly addedUs: number;
}

/** The result of one simulation. Arrays are indexed by position in the plan's ops. */
export interface EngineResult {
  readonly ok: boolean;
  /** When not ok: the stream heads that could never start. */
  readonly stuck: readonly number[];
  readonly start: Float64Array;
  readonly end: Float64Array;
  /** The op whose completion released each op (-1: nothing, it started at 0). */
  readonly cause: Int32Array;
  readonly makespanUs: number;
  readonly busyUs: Busy;
  readonly streamBusyUs: readonly [number, number, number];
  /** Time some collective ran while no compute kernel did. */
  readonly exposedCommunicationUs: number;
  readonly nic: Effect;
  readonly intra: Effect;
  readonly interference: Effect;
  /** Ops slowed because the ranks' running ops outnumbered the shared cores (zero without shared cores). */
  readonly cores: Effect;
}

/** Ranks sharing CPU cores, as the engine applies it. */
export interface CoreSharing {
  /** Cores per rank: the shared cores over the ranks (W), which all run the same ops at once. */
  readonly perRank: number;
  /** Added to every op's time alone (µs): the executor's own cost per op. */
  readonly dispatchUs: number;
  /** Added per hand-off (µs): per wait on another stream's op, and once for a collective. */
  readonly handoffUs: number;
}

const NIC = 1;
const INTRA = 2;
const INTERFERENCE = 4;
const CORES = 8;

/** Max-min fair shares of one unit of capacity among demands `u` (each ≤ 1), written to `out`. */
function waterFill(u: Float64Array, idx: Int32Array, k: number, out: Float64Array): void {
  // k ≤ 3: insertion sort by demand.
  for (let a = 1; a < k; a++) {
    const x = idx[a]!;
    let b = a - 1;
    while (b >= 0 && u[idx[b]!]! > u[x]!) {
      idx[b + 1] = idx[b]!;
      b--;
    }
    idx[b + 1] = x;
  }
  let cap = 1;
  for (let a = 0; a < k; a++) {
    const j = idx[a]!;
    const share = cap / (k - a);
    const give = u[j]! < share ? u[j]! : share;
    out[j] = give;
    cap -= give;
  }
}

/** Run the engine on a prepared plan. */
export function runEngine(p: Prepared, contention: boolean, interference: number, cores: CoreSharing | null = null): EngineResult {
  const { n, stream, base, waitStart, waits, comm, nicUse, intraUse, lists } = p;
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const cause = new Int32Array(n).fill(-1);
  const done = new Uint8Array(n);
  const slowed = new Uint8Array(n);
  const head = [0, 0, 0];
  const prev = [-1, -1, -1];
  // Per stream slot: the running op, its rate, its remaining work at `since`, and its projected end.
  const run = new Int32Array([-1, -1, -1]);
  const rate = new Float64Array(3);
  const remaining = new Float64Array(3);
  const since = new Float64Array(3);
  const projected = new Float64Array(3);
  const limit = new Uint8Array(3);
  const perRank = cores ? cores.perRank : Infinity;
  const dispatch = cores ? cores.dispatchUs : 0;
  const handoff = cores ? cores.handoffUs : 0;
  const slowModel = contention || interference > 1 || perRank < 3;
  const slowFactor = interference > 1 ? 1 / interference : 1;

  // Scratch for the water-filling.
  const need = new Float64Array(3);
  const give = new Float64Array(3);
  const order = new Int32Array(3);

  let t = 0;
  let completed = 0;
  let busyCompute = 0;
  let busyIntra = 0;
  let busyNic = 0;
  const streamBusy: [number, number, number] = [0, 0, 0];
  let exposed = 0;
  let addedNic = 0;
  let addedIntra = 0;
  let addedInterference = 0;
  let addedCores = 0;

  const newRate = new Float64Array(3);
  const why = new Uint8Array(3);
  /** Water-fill one link among the running ops that use it; lower their rates where it binds. */
  const share = (use: Float64Array, bit: number) => {
    let k = 0;
    let total = 0;
    for (let s = 0; s < 3; s++) {
      const i = run[s]!;
      if (i >= 0 && use[i]! > 0) {
        need[s] = use[i]!;
        total += use[i]!;
        order[k++] = s;
      }
    }
    if (k < 2 || total <= 1) return;
    waterFill(need, order, k, give);
    for (let a = 0; a < k; a++) {
      const s = order[a]!;
      const x = give[s]! / need[s]!;
      if (x < newRate[s]!) {
        newRate[s] = x;
        why[s] = bit;
      }
    }
  };
  const setRates = () => {
    let running = 0;
    for (let s = 0; s < 3; s++) if (run[s]! >= 0) running++;
    if (running < 2 && perRank >= 1) {
      // Alone, an op runs at its planned speed: nothing to share, nothing to interfere with.
      for (let s = 0; s < 3; s++) {
        limit[s] = 0;
        const i = run[s]!;
        if (i < 0 || rate[s] === 1) continue;
        remaining[s] = Math.max(0, remaining[s]! - (t - since[s]!) * rate[s]!);
        since[s] = t;
        rate[s] = 1;
        projected[s] = t + remaining[s]!;
      }
      return;
    }
    newRate.fill(1);
    why.fill(0);
    if (contention) {
      share(nicUse, NIC);
      share(intraUse, INTRA);
    }
    if (slowFactor < 1) {
      let anyComm = false;
      for (let s = 0; s < 3; s++) if (run[s]! >= 0 && comm[run[s]!] === 1) anyComm = true;
      if (anyComm) {
        for (let s = 0; s < 3; s++) {
          const i = run[s]!;
          if (i >= 0 && comm[i] === 0 && slowFactor < newRate[s]!) {
            newRate[s] = slowFactor;
            why[s] = INTERFERENCE;
          }
        }
      }
    }
    if (perRank < running) {
      const cap = perRank / running;
      for (let s = 0; s < 3; s++) {
        if (run[s]! >= 0 && cap < newRate[s]!) {
          newRate[s] = cap;
          why[s] = CORES;
        }
      }
    }
    for (let s = 0; s < 3; s++) {
      const i = run[s]!;
      limit[s] = why[s]!;
      if (i < 0 || newRate[s] === rate[s]) continue;
      remaining[s] = remaining[s]! - (t - since[s]!) * rate[s]!;
      if (remaining[s]! < 0) remaining[s] = 0;
      since[s] = t;
      rate[s] = newRate[s]!;
      projected[s] = t + remaining[s]! / rate[s]!;
      if (why[s]) slowed[i] = slowed[i]! | why[s]!;
    }
  };

  for (;;) {
    // Start every stream head whose stream is free and whose waits are done (zero-time ops finish at once).
    let changed = false;
    for (let again = true; again; ) {
      again = false;
      for (let s = 0; s < 3; s++) {
        if (run[s] !== -1) continue;
        const list = lists[s]!;
        const h = head[s]!;
        if (h >= list.length) continue;
        const i = list[h]!;
        let ready = true;
        let c = prev[s]!;
        let cEnd = c >= 0 ? end[c]! : -1;
        for (let x = waitStart[i]!; x < waitStart[i + 1]!; x++) {
          const j = waits[x]!;
          if (j < 0) continue;
          if (!done[j]) {
            ready = false;
            break;
          }
          if (end[j]! >= cEnd) {
            cEnd = end[j]!;
            c = j;
          }
        }
        if (!ready) continue;
        start[i] = t;
        cause[i] = c;
        head[s] = h + 1;
        prev[s] = i;
        again = true;
        let work = base[i]! + dispatch;
        if (handoff > 0) {
          let handoffs = comm[i]!;
          for (let x = waitStart[i]!; x < waitStart[i + 1]!; x++) if (waits[x]! >= 0 && stream[waits[x]!] !== s) handoffs++;
          work += handoff * handoffs;
        }
        if (work <= 0) {
          end[i] = t;
          done[i] = 1;
          completed++;
          continue;
        }
        run[s] = i;
        rate[s] = 1;
        remaining[s] = work;
        since[s] = t;
        projected[s] = t + work;
        limit[s] = 0;
        changed = true;
      }
    }
    if (run[0] === -1 && run[1] === -1 && run[2] === -1) break;
    if (changed && slowModel) setRates();

    // The next completion.
    let next = Infinity;
    for (let s = 0; s < 3; s++) if (run[s]! >= 0 && projected[s]! < next) next = projected[s]!;
    const dt = next - t;
    if (dt > 0) {
      let computeOn = false;
      let commOn = false;
      let intraOn = false;
      let nicOn = false;
      for (let s = 0; s < 3; s++) {
        const i = run[s]!;
        if (i < 0) continue;
        streamBusy[s] = streamBusy[s]! + dt;
        if (comm[i]) commOn = true;
        else computeOn = true;
        if (intraUse[i]! > 0) intraOn = true;
        if (nicUse[i]! > 0) nicOn = true;
        if (rate[s]! < 1) {
          const lost = dt * (1 - rate[s]!);
          if (limit[s] === NIC) addedNic += lost;
          else if (limit[s] === INTRA) addedIntra += lost;
          else if (limit[s] === CORES) addedCores += lost;
          else addedInterference += lost;
        }
      }
      if (computeOn) busyCompute += dt;
      else if (commOn) exposed += dt;
      if (intraOn) busyIntra += dt;
      if (nicOn) busyNic += dt;
    }
    t = next;
    for (let s = 0; s < 3; s++) {
      const i = run[s]!;
      if (i >= 0 && projected[s]! <= t) {
        end[i] = projected[s]!;
        done[i] = 1;
        completed++;
        run[s] = -1;
      }
    }
    if (slowModel) setRates();
  }

  const stuck: number[] = [];
  if (completed < n) for (let s = 0; s < 3; s++) if (head[s]! < lists[s]!.length) stuck.push(lists[s]![head[s]!]!);
  let makespan = 0;
  for (let i = 0; i < n; i++) if (done[i] && end[i]! > makespan) makespan = end[i]!;
  const effect = (bit: number, added: number): Effect => {
    let ops = 0;
    for (let i = 0; i < n; i++) if (slowed[i]! & bit) ops++;
    return { ops, addedUs: added };
  };
  return {
    ok: completed === n,
    stuck,
    start,
    end,
    cause,
    makespanUs: makespan,
    busyUs: { compute: busyCompute, intra: busyIntra, nic: busyNic },
    streamBusyUs: streamBusy,
    exposedCommunicationUs: exposed,
    nic: effect(NIC, addedNic),
    intra: effect(INTRA, addedIntra),
    interference: effect(INTERFERENCE, addedInterference),
    cores: effect(CORES, addedCores),
  };
}

/** The critical path: from the op that finishes last, back through the op that released each. */
export function criticalPath(r: EngineResult): number[] {
  let last = -1;
  for (let i = 0; i < r.end.length; i++) if (last < 0 || r.end[i]! >= r.end[last]!) last = i;
  const path: number[] = [];
  for (let i = last; i >= 0; i = r.cause[i]!) path.push(i);
  return path.reverse();
}
