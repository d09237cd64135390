/**
 * Shared helpers of the CLI tests: run the CLI in-process capturing what it prints, and temporary
 * folders removed after the file's tests.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { program, run } from "../cli/main.js";

/** Run the CLI in-process with these arguments; its exit code and what it printed. */
export function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = "";
  let err = "";
  const code = run(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/**
 * Run an asynchronous command (run, profile: they replay off the event loop) in-process; its exit
 * code and what it printed. process.exitCode, which those commands also set, is restored.
 */
export async function cliAsync(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  let code = 0;
  const saved = process.exitCode;
  try {
    await program({ out: (s) => (out += s), err: (s) => (err += s) }, (c) => (code = c)).exitOverride().parseAsync(argv, { from: "user" });
  } finally {
    process.exitCode = saved;
  }
  return { code, out, err };
}

/** A temporary-folder factory whose folders are removed when the calling test file finishes. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}
