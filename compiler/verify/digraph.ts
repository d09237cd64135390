/**
 * A compact directed graph for the verifier's order checks (ARCHITECTURE.md, "The pipeline":
 * compiler/verify/ proves the plan acyclic and deadlock-free): predecessor lists in CSR form,
 * a topological order by Kahn's algorithm and, when there is none, one cycle. Everything is
 * O((nodes + edges) · log nodes) at worst, so a plan of 50,000 ops (or that many per rank over
 * a few ranks) costs milliseconds.
 */

/** Predecessor lists: the edges into node v are `preds[predStart[v] .. predStart[v + 1])`. */
export interface Digraph {
  readonly nodes: number;
  readonly predStart: Int32Array;
  /** The source node of each edge. */
  readonly preds: Int32Array;
  /** The index each edge had when it was added to the builder (to look up what it stands for). */
  readonly edgeIds: Int32Array;
}

/** Builds a {@link Digraph} from edges added in any order. */
export class DigraphBuilder {
  private from: Int32Array;
  private to: Int32Array;
  private edges = 0;

  /** `capacity` is a hint: how many edges to make room for at first. */
  constructor(
    readonly nodes: number,
    capacity = 2 * nodes,
  ) {
    this.from = new Int32Array(Math.max(capacity, 16));
    this.to = new Int32Array(Math.max(capacity, 16));
  }

  /** Add the edge `from → to` (to happens after from); returns the edge's index. */
  edge(from: number, to: number): number {
    if (this.edges === this.from.length) {
      const grow = (a: Int32Array) => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.from = grow(this.from);
      this.to = grow(this.to);
    }
    this.from[this.edges] = from;
    this.to[this.edges] = to;
    return this.edges++;
  }

  /** The finished graph (a stable counting sort of the edges by target). */
  build(): Digraph {
    const n = this.nodes;
    const m = this.edges;
    const predStart = new Int32Array(n + 1);
    for (let e = 0; e < m; e++) predStart[this.to[e]! + 1]!++;
    for (let v = 0; v < n; v++) predStart[v + 1]! += predStart[v]!;
    const fill = predStart.slice(0, n);
    const preds = new Int32Array(m);
    const edgeIds = new Int32Array(m);
    for (let e = 0; e < m; e++) {
      const at = fill[this.to[e]!]!++;
      preds[at] = this.from[e]!;
      edgeIds[at] = e;
    }
    return { nodes: n, predStart, preds, edgeIds };
  }
}

/** A topological order of the nodes that have one; `done[v]` is 1 for exactly those nodes. */
export interface Topology {
  readonly order: Int32Array;
  readonly done: Uint8Array;
  readonly acyclic: boolean;
}

/**
 * Kahn's algorithm, always taking the smallest ready node (a binary heap), so the order is
 * deterministic and, when node numbers already are a topological order (a plan whose waits all
 * point back in issue order), it is exactly that order.
 */
export function topologicalOrder(g: Digraph): Topology {
  const n = g.nodes;
  const indegree = new Int32Array(n);
  const succStart = new Int32Array(n + 1);
  for (let v = 0; v < n; v++) {
    indegree[v] = g.predStart[v + 1]! - g.predStart[v]!;
    for (let e = g.predStart[v]!; e < g.predStart[v + 1]!; e++) succStart[g.preds[e]! + 1]!++;
  }
  for (let v = 0; v < n; v++) succStart[v + 1]! += succStart[v]!;
  const succ = new Int32Array(g.preds.length);
  const fill = succStart.slice(0, n);
  for (let v = 0; v < n; v++) {
    for (let e = g.predStart[v]!; e < g.predStart[v + 1]!; e++) succ[fill[g.preds[e]!]!++] = v;
  }
  const order = new Int32Array(n);
  const done = new Uint8Array(n);
  const heap = new MinHeap(n);
  for (let v = 0; v < n; v++) if (indegree[v] === 0) heap.push(v);
  let count = 0;
  while (heap.size > 0) {
    const v = heap.pop();
    order[count++] = v;
    done[v] = 1;
    for (let e = succStart[v]!; e < succStart[v + 1]!; e++) {
      const w = succ[e]!;
      if (--indegree[w]! === 0) heap.push(w);
    }
  }
  return { order: order.subarray(0, count), done, acyclic: count === n };
}

/** A binary min-heap of node numbers. */
class MinHeap {
  private readonly items: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(capacity, 1));
  }

  push(x: number): void {
    const a = this.items;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= x) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = x;
  }

  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a[--this.size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && a[child + 1]! < a[child]!) child++;
      if (a[child]! >= last) break;
      a[i] = a[child]!;
      i = child;
    }
    a[i] = last;
    return top;
  }
}

/**
 * One cycle among the nodes Kahn's algorithm could not order: `nodes[i]` depends on
 * `nodes[i + 1]` through the edge added as `edges[i]` (its builder index), and the last node
 * depends on the first. Every such
 * node keeps a predecessor that is also unordered, so walking predecessors must close a loop.
 * The cycle is rotated to start at its smallest node, for stable messages.
 */
export function findCycle(g: Digraph, topology: Topology): { nodes: number[]; edges: number[] } | undefined {
  if (topology.acyclic) return undefined;
  const { done } = topology;
  let start = 0;
  while (done[start]) start++;
  const step = new Map<number, number>();
  const nodes: number[] = [];
  const edges: number[] = [];
  let v = start;
  while (!step.has(v)) {
    step.set(v, nodes.length);
    nodes.push(v);
    let next = -1;
    for (let e = g.predStart[v]!; e < g.predStart[v + 1]!; e++) {
      if (!done[g.preds[e]!]) {
        next = e;
        break;
      }
    }
    if (next < 0) throw new Error("findCycle: an unordered node without an unordered predecessor");
    edges.push(g.edgeIds[next]!);
    v = g.preds[next]!;
  }
  const from = step.get(v)!;
  const cycleNodes = nodes.slice(from);
  const cycleEdges = edges.slice(from);
  let min = 0;
  for (let i = 1; i < cycleNodes.length; i++) if (cycleNodes[i]! < cycleNodes[min]!) min = i;
  return {
    nodes: [...cycleNodes.slice(min), ...cycleNodes.slice(0, min)],
    edges: [...cycleEdges.slice(min), ...cycleEdges.slice(0, min)],
  };
}
