/**
 * Reading plan.json back (ARCHITECTURE.md, "plan.json"; the simulator, the emitters and the
 * runtime all start here): parse the JSON, check the format version before anything else,
 * validate every field against the zod schema, then verify the ops (every wait, buffer and
 * group resolves; no cycle; no race). A bad file gives messages that name the field or the op
 * at fault — never an exception.
 */
import { readFileSync } from "node:fs";
import type { Code } from "../diagnostics/messages.js";
import type { Op, TaskGraph } from "../graph/types.js";
import { verifyGraph } from "../verify/index.js";
import { PLAN_FORMAT, Plan } from "./schema.js";

/** One reason a plan was refused. `code` is set for verification issues (FSM4xxx). */
export interface PlanProblem {
  readonly message: string;
  readonly code?: Code;
}

/** A plan that read clean, or why it was refused. */
export type PlanRead = { readonly ok: true; readonly plan: Plan } | { readonly ok: false; readonly problems: readonly PlanProblem[] };

/** Problems reported per file before the rest are counted in one line. */
export const MAX_PLAN_PROBLEMS = 10;

/** Line and column (1-based) of a character offset. */
function lineCol(text: string, offset: number): string {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return `line ${line}, column ${col}`;
}

/** A JSON path as a reader writes it: `ops[3].waits[0]`, `job.model.hidden`. */
export function pathText(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? String(p) : `.${String(p)}`;
  return out === "" ? "the top level" : out;
}

/** What a path inside `ops` points at, for messages: `op 3 (all_to_all dispatch L0 fwd)`. */
function opContext(json: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== "ops" || typeof path[1] !== "number") return "";
  const ops = (json as { ops?: unknown }).ops;
  const op = Array.isArray(ops) ? (ops[path[1]] as Record<string, unknown> | undefined) : undefined;
  if (!op || typeof op !== "object") return "";
  const parts = [op["kind"], op["role"], typeof op["layer"] === "number" && op["layer"] >= 0 ? `L${op["layer"]}` : undefined, op["dir"]].filter((x) => typeof x === "string");
  const id = typeof op["id"] === "number" ? `op ${op["id"]}` : `the op at ops[${path[1]}]`;
  return ` (${id}${parts.length > 0 ? ` ${parts.join(" ")}` : ""})`;
}

/** Parse and validate the text of a plan.json. */
export function parsePlan(text: string): PlanRead {
  const fail = (...problems: PlanProblem[]): PlanRead => ({ ok: false, problems });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /position (\d+)/.exec(msg);
    return fail({ message: `not valid JSON${at ? ` at ${lineCol(text, Number(at[1]))}` : ""}: ${msg.replace(/ in JSON at position \d+.*$/, "")}` });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return fail({ message: `the top level is ${json === null ? "null" : Array.isArray(json) ? "an array" : `a ${typeof json}`}, not a plan object` });
  }
  const top = json as Record<string, unknown>;
  if (!("format" in top)) return fail({ message: `field 'format' is missing: this is not an fsmoe plan (expected format '${PLAN_FORMAT}')` });
  if (top["format"] !== PLAN_FORMAT) {
    const by = typeof top["compiler"] === "string" ? ` (written by ${top["compiler"]})` : "";
    return fail({
      message: `field 'format' is ${JSON.stringify(top["format"])}${by}, but this fsmoec reads '${PLAN_FORMAT}': recompile the source with this version`,
    });
  }
  const parsed = Plan.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const problems: PlanProblem[] = issues.slice(0, MAX_PLAN_PROBLEMS).map((i) => ({
      message: `field '${pathText(i.path)}'${opContext(json, i.path)}: ${i.message}`,
    }));
    if (issues.length > MAX_PLAN_PROBLEMS) problems.push({ message: `${issues.length - MAX_PLAN_PROBLEMS} more problems with fields` });
    return fail(...problems);
  }
  const plan = parsed.data;
  const graph: TaskGraph = { groups: plan.groups, buffers: plan.buffers, ops: plan.ops as readonly Op[] };
  const issues = verifyGraph(graph, { maxIssues: MAX_PLAN_PROBLEMS + 1 });
  if (issues.length > 0) {
    const problems: PlanProblem[] = issues.slice(0, MAX_PLAN_PROBLEMS).map((i) => ({ code: i.code, message: i.message }));
    if (issues.length > MAX_PLAN_PROBLEMS) problems.push({ message: "more verification issues follow (fix these first)" });
    return fail(...problems);
  }
  return { ok: true, plan };
}

/** Read, parse and validate a plan.json file; an unreadable file is a problem too. */
export function readPlan(path: string): PlanRead {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, problems: [{ message: `cannot read: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (e as Error).message}` }] };
  }
  return parsePlan(text);
}

/** A refused plan's problems as the CLI prints them: `FILE: error [FSMnnnn]: message`, one per line. */
export function renderPlanProblems(file: string, problems: readonly PlanProblem[]): string {
  return problems.map((p) => `${file}: error${p.code ? ` ${p.code}` : ""}: ${p.message}\n`).join("");
}
