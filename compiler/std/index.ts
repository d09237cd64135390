/**
 * The `std` presets (LANGUAGE.md, "Presets"): devices, links and clusters written in `.moe`
 * in std.moe beside this file, each figure with its source. They are in scope in every file,
 * checked where used (a cluster preset lacks `nodes` until a train job gives it, and what is
 * missing is reported at that use). They are a closed world: a name written in std.moe means
 * another preset, never a user's block of the same name.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { FileNode } from "../../grammar/ast.js";
import { parse } from "../../grammar/parse.js";
import type { SourceFile } from "../diagnostics/span.js";

/** The name std blocks carry in spans and diagnostics. */
export const STD_FILE = "<std>/std.moe";

let cached: { ast: FileNode; source: SourceFile } | undefined;

/** The parsed presets (parsed once per process). */
export function stdPresets(): { ast: FileNode; source: SourceFile } {
  if (!cached) {
    const text = readFileSync(fileURLToPath(new URL("./std.moe", import.meta.url)), "utf8");
    const r = parse(text, STD_FILE);
    if (r.diagnostics.length > 0) throw new Error(`std.moe does not parse: ${r.diagnostics[0]!.message}`);
    cached = { ast: r.ast, source: r.source };
  }
  return cached;
}
