/**
 * Choosing a job's cost model (SCHEDULING.md §2): the cluster's `profile` — a built-in name or
 * a JSON file relative to the `.moe` file that names it — over the hardware model, or the
 * hardware model alone. A missing or malformed profile is a located diagnostic.
 */
import { dirname, isAbsolute, join } from "node:path";
import type { TrainJob } from "../check/program.js";
import type { CheckHost } from "../check/host.js";
import { nodeHost } from "../check/host.js";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { hardwareModel } from "./hardware.js";
import type { CostModel } from "./model.js";
import { builtinProfiles, Profile, profileModel } from "./profiles.js";

/** The cost model of a job, or the diagnostic that says why its profile cannot be used. */
export function costModelFor(job: TrainJob, bytes: number, host: CheckHost = nodeHost): { model?: CostModel; diagnostics: Diagnostic[] } {
  const hardware = hardwareModel(job.cluster, bytes);
  const name = job.cluster.profile;
  if (name === null) return { model: hardware, diagnostics: [] };
  const builtin = builtinProfiles.get(name);
  if (builtin) return { model: profileModel(builtin, hardware), diagnostics: [] };
  const span = job.cluster.spans["profile"]!;
  const path = span.file.startsWith("<") || isAbsolute(name) ? name : join(dirname(span.file), name);
  let text: string;
  try {
    const raw = host.read(path);
    text = typeof raw === "string" ? raw : new TextDecoder().decode(raw);
  } catch (e) {
    return { diagnostics: [diagnostic("FSM3009", span, { profile: name, reason: (e as Error).message, builtins: [...builtinProfiles.keys()].join(", ") })] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { diagnostics: [diagnostic("FSM3010", span, { profile: name, detail: `not JSON: ${(e as Error).message}` })] };
  }
  const parsed = Profile.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const where = first.path.length > 0 ? first.path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join("") : "the top level";
    return { diagnostics: [diagnostic("FSM3010", span, { profile: name, detail: `${where}: ${first.message}` })] };
  }
  return { model: profileModel(parsed.data, hardware), diagnostics: [] };
}
