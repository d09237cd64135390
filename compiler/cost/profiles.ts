/**
 * Cost models from fitted profiles (SCHEDULING.md §2, ARCHITECTURE.md "Profiling"): α and β
 * per op class, optionally per group role, direction and GEMM count. A profile names a
 * built-in (`fsmoe-paper-16|32|48`, the FSMoE authors' fitted constants) or a JSON file; op
 * classes it does not fit fall back to the hardware model of the cluster.
 */
import { z } from "zod";
import type { CostModel, CostQuery, Linear, OpClass } from "./model.js";

/** Op kinds an entry may narrow to (the plan's op kinds). */
const OP_KINDS = ["embed", "lm_head", "loss", "attention", "dense_ffn", "shared_expert", "norm", "gate", "order", "dispatch_gemm", "expert", "combine_gemm", "iorder", "all_to_all", "all_gather", "reduce_scatter", "all_reduce"] as const;

/** One fitted line. `kind`, `group`, `dir` and `gemms` narrow when it applies; the most specific match wins. */
export const ProfileEntry = z
  .object({
    op: z.enum(["all_to_all", "all_gather", "reduce_scatter", "all_reduce", "expert_gemm", "dense_gemm", "memory"]),
    group: z.string().optional(),
    dir: z.enum(["fwd", "bwd"]).optional(),
    gemms: z.number().int().min(1).optional(),
    /** The op kind within the class (host profiles fit attention, the dense FFN, the LM head … separately). */
    kind: z.enum(OP_KINDS).optional(),
    alphaUs: z.number().finite().min(0),
    betaUs: z.number().finite().min(0),
  })
  .strict();

/** A profile file (`fsmoec profile` writes them; a cluster's `profile` names one). */
export const Profile = z
  .object({
    format: z.literal("fsmoe-profile/1"),
    name: z.string().min(1),
    description: z.string(),
    entries: z.array(ProfileEntry).min(1),
    /** Compute kernels run this many times slower while a communication kernel runs (the simulator uses it; default 1: none). */
    interference: z.number().finite().min(1).optional(),
    /** The ranks share this machine's CPU cores (host profiles; the simulator applies it, see SharedCores). */
    host: z.object({ cores: z.number().int().min(1), dispatchUs: z.number().finite().min(0), handoffUs: z.number().finite().min(0).optional() }).strict().optional(),
  })
  .strict();

export type Profile = z.infer<typeof Profile>;
export type ProfileEntry = z.infer<typeof ProfileEntry>;

const paperNote =
  "The FSMoE authors' fitted constants (paper-era script, fp32 buffers; the same constants were used for fp16 and are " +
  "used here for every dtype), from shared/reference/fsmoe-digest.md §3.3: ms converted to µs, β per element or per MAC; " +
  "expert GEMM backward is twice forward; the forward GEMM α includes the authors' × 1.3 / 2 factor.";

function paper(gpus: 16 | 32 | 48, a2aBeta: number, arBeta: number): Profile {
  return {
    format: "fsmoe-profile/1",
    name: `fsmoe-paper-${gpus}`,
    description: `${paperNote} All-to-all and all-reduce slopes for ${gpus} GPUs.`,
    entries: [
      // Each fit is for the collective the authors measured: the all-to-all over EP, the
      // AllGather and ReduceScatter over ESP, the dense-gradient all-reduce over the rail.
      // Other groups (tensor parallelism's, expert replicas') use the hardware model.
      { op: "all_to_all", group: "ep", alphaUs: 287.46, betaUs: a2aBeta * 1000 },
      { op: "all_gather", group: "esp", alphaUs: 337.89, betaUs: 2.3478e-7 * 1000 },
      { op: "reduce_scatter", group: "esp", alphaUs: 395.39, betaUs: 2.2171e-7 * 1000 },
      { op: "all_reduce", group: "dp", alphaUs: 511.37, betaUs: arBeta * 1000 },
      { op: "expert_gemm", gemms: 2, dir: "fwd", alphaUs: 706.2, betaUs: 7.657e-11 * 1000 },
      { op: "expert_gemm", gemms: 3, dir: "fwd", alphaUs: 956.7, betaUs: 1.586e-10 * 1000 },
      { op: "expert_gemm", gemms: 2, dir: "bwd", alphaUs: 2 * 706.2, betaUs: 2 * 7.657e-11 * 1000 },
      { op: "expert_gemm", gemms: 3, dir: "bwd", alphaUs: 2 * 956.7, betaUs: 2 * 1.586e-10 * 1000 },
    ],
  };
}

/** The built-in profiles, by name. */
export const builtinProfiles: ReadonlyMap<string, Profile> = new Map(
  [paper(16, 1.3057e-6, 2.9157e-6), paper(32, 1.8543e-6, 3.4951e-6), paper(48, 2.3201e-6, 4.9512e-6)].map((p) => [p.name, p]),
);

function specificity(e: ProfileEntry): number {
  return (e.kind ? 8 : 0) + (e.group ? 4 : 0) + (e.dir ? 2 : 0) + (e.gemms ? 1 : 0);
}

/** A cost model from a profile; op classes the profile does not cover are priced by `fallback`. */
export function profileModel(profile: Profile, fallback: CostModel): CostModel {
  const byOp = new Map<OpClass, ProfileEntry[]>();
  for (const e of profile.entries) {
    const list = byOp.get(e.op) ?? [];
    list.push(e);
    byOp.set(e.op, list);
  }
  for (const list of byOp.values()) list.sort((a, b) => specificity(b) - specificity(a));
  return {
    name: profile.name,
    interference: profile.interference ?? 1,
    sharedCores: profile.host ?? null,
    description: `${profile.description} Not in the profile (priced by the hardware model): ${["all_to_all", "all_gather", "reduce_scatter", "all_reduce", "expert_gemm", "dense_gemm", "memory"].filter((c) => !byOp.has(c as OpClass)).join(", ") || "nothing"}.`,
    linear(q: Omit<CostQuery, "n">): Linear {
      const match = byOp
        .get(q.cls)
        ?.find((e) => (!e.kind || e.kind === q.kind) && (!e.group || e.group === q.group?.name) && (!e.dir || e.dir === q.dir) && (!e.gemms || e.gemms === q.gemms));
      if (!match) return fallback.linear(q);
      return { alphaUs: match.alphaUs, betaUs: match.betaUs };
    },
  };
}
