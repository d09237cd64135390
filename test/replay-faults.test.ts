/**
 * Faults on the host backend (ARCHITECTURE.md, "Runtime"): a malformed or hostile plan is
 * rejected before anything runs, with a message; a collective that waits past its timeout fails
 * the run naming the op, the stream and the rank; never a crash or a hang.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Plan } from "../compiler/plan/schema.js";
import { checkedJob, layerJobSource, modelJobSource } from "../runtime/replay/fixtures.js";
import { loadAddon, planFor, replay } from "../runtime/replay/index.js";

const { addon, error } = loadAddon();
if (!addon) console.warn(`replay fault tests skipped: ${error}`);

function basePlan(): Plan {
  const { plan } = planFor(checkedJob(layerJobSource({ nodes: 2, gpus: 2, pipeline: "2" })), "fsmoe");
  return plan!;
}

function mutated(f: (p: Plan & Record<string, unknown>) => void): string {
  const p = structuredClone(basePlan()) as Plan & Record<string, unknown>;
  f(p);
  return JSON.stringify(p);
}

describe.skipIf(!addon)("hostile plans are rejected before execution", () => {
  const cases: readonly { name: string; text: () => string; message: RegExp }[] = [
    { name: "truncated JSON", text: () => JSON.stringify(basePlan()).slice(0, 500), message: /malformed JSON: byte \d+/ },
    { name: "not JSON at all", text: () => "\u0000\u0001garbage", message: /malformed JSON/ },
    { name: "nesting 10 000 deep", text: () => "[".repeat(10_000), message: /nesting deeper than 64/ },
    { name: "another format", text: () => mutated((p) => ((p as Record<string, unknown>).format = "fsmoe-plan/9")), message: /plan\.format/ },
    { name: "a buffer outside the arena", text: () => mutated((p) => ((p.buffers[5] as { offset: number }).offset = p.memory.arenaBytes)), message: /outside the arena/ },
    { name: "an access past its buffer", text: () => mutated((p) => ((p.ops[2]!.accesses[0] as { offset: number }).offset = 1 << 20)), message: /lies outside buffer/ },
    { name: "a misaligned access", text: () => mutated((p) => Object.assign(p.ops.find((o) => o.kind === "all_reduce")!.accesses[0]!, { offset: 2, bytes: 16 })), message: /not 4-byte aligned/ },
    { name: "a wait on a missing op", text: () => mutated((p) => (p.ops[3]!.waits as number[]).push(10_000)), message: /not an earlier op/ },
    { name: "a wait on a later op", text: () => mutated((p) => (p.ops[3]!.waits as number[]).push(5)), message: /not an earlier op/ },
    { name: "a negative buffer index", text: () => mutated((p) => ((p.ops[1]!.accesses[0] as { buffer: number }).buffer = -1)), message: /out of range/ },
    { name: "a huge arena", text: () => mutated((p) => ((p.memory as { arenaBytes: number }).arenaBytes = 2 ** 50)), message: /exceeds the host limit/ },
    { name: "a huge model", text: () => mutated((p) => ((p.job.model as { hidden: number }).hidden = 1e9)), message: /out of range/ },
    { name: "a world too large for the host", text: () => mutated((p) => ((p.job.cluster as { nodes: number }).nodes = 64)), message: /at most 8/ },
    { name: "a collective on an unknown group", text: () => mutated((p) => ((p.ops[2] as { group?: string }).group = "nope")), message: /unknown group/ },
    { name: "an all-to-all that does not split into blocks", text: () => mutated((p) => ((p.ops[2]!.accesses[1] as { bytes: number }).bytes -= 4)), message: /all-to-all|needs|shapes/ },
    { name: "an expert op with the wrong hidden buffer", text: () => mutated((p) => ((p.buffers[p.ops.find((o) => o.kind === "expert")!.accesses[1]!.buffer] as { bytes: number }).bytes -= 256)), message: /the shapes give|outside/ },
    { name: "a chunk beyond the degree", text: () => mutated((p) => ((p.ops.find((o) => o.kind === "expert")! as { chunk: number }).chunk = 7)), message: /outside the degree/ },
    { name: "a bf16 plan", text: () => mutated((p) => ((p.job.model as { dtype: string }).dtype = "bf16")), message: /fp32/ },
    { name: "an unsupported router", text: () => mutated((p) => ((p.job.model as { router: string }).router = "softmoe")), message: /router softmoe not supported by the host backend yet/ },
    { name: "an unsupported op kind", text: () => mutated((p) => ((p.ops[0] as { kind: string }).kind = "norm")), message: /op kind norm not supported by the host backend yet/ },
    { name: "a dense op in a layer job", text: () => mutated((p) => ((p.ops[0] as { kind: string }).kind = "attention")), message: /op kind attention in a job of kind layer/ },
    { name: "an expert index on another kind of op", text: () => mutated((p) => ((p.ops[0] as { expert?: number }).expert = 0)), message: /only an expert op names a local expert/ },
    { name: "a max reduction on a kernel", text: () => mutated((p) => ((p.ops[0] as { reduce?: string }).reduce = "max")), message: /only an all-reduce has a reduction/ },
    { name: "routing decisions of the wrong size", text: () => mutated((p) => ((p.ops.find((o) => o.kind === "gate")!.accesses[2] as { bytes: number }).bytes -= 12)), message: /the shapes give/ },
    { name: "a router without its fields", text: () => mutated((p) => delete (p.job.model as { routeScale?: number }).routeScale), message: /job\.model\.routeScale: missing/ },
    { name: "group limits that do not divide the experts", text: () => mutated((p) => ((p.job.model as { groups: number }).groups = 3)), message: /groups: must divide the experts/ },
    { name: "capacity that does not split into the degree", text: () => mutated((p) => ((p.layers[0] as { capacity: number }).capacity += 1)), message: /capacity/ },
  ];
  for (const c of cases)
    it(`rejects ${c.name}`, () => {
      const v = addon!.validate(c.text());
      expect(v.ok).toBe(false);
      expect(v.error).toMatch(c.message);
    });

  const model = () => {
    const { plan } = planFor(checkedJob(modelJobSource({ nodes: 2, gpus: 2 })), "fsmoe");
    return plan!;
  };
  const mutatedModel = (f: (p: Plan & Record<string, unknown>) => void) => {
    const p = structuredClone(model()) as Plan & Record<string, unknown>;
    f(p);
    return JSON.stringify(p);
  };
  const modelCases: readonly { name: string; text: () => string; message: RegExp }[] = [
    { name: "multi-head latent attention without its ranks", text: () => mutatedModel((p) => ((p.job.model.attention as { kind: string }).kind = "mla")), message: /job\.model\.attention\.qLoraRank/ },
    { name: "key/value heads that do not split over tp", text: () => mutatedModel((p) => Object.assign(p.job.model.attention!, { kvHeads: 1 })), message: /key\/value heads do not split over tp = 2/ },
    { name: "a vocabulary that does not split over tp", text: () => mutatedModel((p) => ((p.job.model as { vocab: number }).vocab = 63)), message: /does not split over tp = 2/ },
    { name: "a model without a vocabulary", text: () => mutatedModel((p) => ((p.job.model as { vocab: number | null }).vocab = null)), message: /models with a vocabulary/ },
    { name: "logits of the wrong size", text: () => mutatedModel((p) => ((p.ops.find((o) => o.kind === "lm_head")!.accesses[1] as { bytes: number }).bytes -= 4)), message: /the shapes give/ },
    { name: "an unknown loss role", text: () => mutatedModel((p) => ((p.ops.find((o) => o.kind === "loss")! as { role: string }).role = "loss_min")), message: /unknown loss role 'loss_min'/ },
    { name: "token ids of the wrong size", text: () => mutatedModel((p) => ((p.buffers.find((b) => b.name === "mb0.tokens")! as { bytes: number }).bytes += 4)), message: /mb0\.tokens|outside/ },
  ];
  for (const c of modelCases)
    it(`rejects a model plan with ${c.name}`, () => {
      const v = addon!.validate(c.text());
      expect(v.ok).toBe(false);
      expect(v.error).toMatch(c.message);
    });

  it("rejects them in run too, before anything executes", async () => {
    const r = await addon!.run(mutated((p) => (p.ops[3]!.waits as number[]).push(10_000)));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/not an earlier op/);
  });

  it("survives random mutations of a plan: a message or a clean run, never a crash or a hang", async () => {
    const text = JSON.stringify(basePlan());
    const plan = JSON.parse(text) as Record<string, unknown>;
    // Every numeric leaf, by path.
    const leaves: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (typeof v === "number") leaves.push(path);
      else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(plan, []);
    const values = fc.oneof(fc.integer({ min: -3, max: 70_000 }), fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, 1e300, 0.5, Number.NaN));
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(leaves.length - 1), values), { minLength: 1, maxLength: 3 }), fc.nat(text.length), fc.boolean(), async (edits, cut, truncate) => {
        const p = structuredClone(plan);
        for (const [leaf, value] of edits) {
          const path = leaves[leaf]!;
          let o = p as Record<string | number, unknown>;
          for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
          o[path[path.length - 1]!] = value;
        }
        const s = truncate ? JSON.stringify(p).slice(0, cut) : JSON.stringify(p);
        const v = addon!.validate(s);
        if (!v.ok) {
          expect(typeof v.error).toBe("string");
          expect(v.error!.length).toBeGreaterThan(0);
          return;
        }
        if (runs++ < 40) {
          const r = await addon!.run(s, JSON.stringify({ timeoutMs: 300 }));
          expect(r.ok || typeof (r as { error: string }).error === "string").toBe(true);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
  }, 120_000);
});

describe.skipIf(!addon)("collective faults end the run with a message", () => {
  it("a rank that skips a collective makes its peers time out, naming the op, stream and rank", async () => {
    const job = checkedJob(layerJobSource({ nodes: 2, gpus: 2 }));
    const { plan } = planFor(job, "fsmoe");
    // The last collective on the dp group: the peer waits for it and nothing follows it.
    const last = [...plan!.ops].reverse().find((o) => o.kind === "all_reduce" && o.group === "dp")!;
    const t0 = performance.now();
    const r = await replay(plan!, { skip: [{ rank: 0, op: last.id }], timeoutMs: 300 });
    expect(r.ok).toBe(false);
    const message = (r as { error: string }).error;
    expect(message).toContain(`collective all_reduce 'grad_allreduce' (op ${last.id}`);
    expect(message).toMatch(new RegExp(`on stream ${last.stream} of rank \\d`));
    expect(message).toMatch(/timed out after 300 ms waiting in group dp \{0, 2\} for rank 0/);
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it("a rank that skips an early collective fails as a mismatch or a timeout, never a hang", async () => {
    const job = checkedJob(layerJobSource({ nodes: 2, gpus: 2, pipeline: "2" }));
    const { plan } = planFor(job, "fsmoe");
    const dispatch = plan!.ops.find((o) => o.kind === "all_to_all")!;
    const r = await replay(plan!, { skip: [{ rank: 3, op: dispatch.id }], timeoutMs: 300 });
    expect(r.ok).toBe(false);
    expect((r as { error: string }).error).toMatch(/collective (all_to_all|all_gather|reduce_scatter|all_reduce) '.*' \(op \d+.*\) on stream \w+ of rank \d+.*(timed out|mismatch)/);
  });
});
