/**
 * `fsmoec profile --backend host -o FILE [--iterations N] [--name NAME] [--format text|json]`
 * (ARCHITECTURE.md, "Profiling"): replay a sweep of jobs on the host backend, fit α and β per op
 * class and kind, measure the executor's costs and the cores the ranks share, and write a
 * profile a cluster can name (runtime/replay/profile.ts). Exit codes: 0 ok; 2 usage; 3 a runtime
 * failure (the addon is not built, a backend without profiling, a file that cannot be written).
 */
import { Command, Option } from "commander";
import { loadAddon } from "../runtime/replay/index.js";
import { profileHost } from "../runtime/replay/profile.js";
import type { Io } from "./compile.js";
import { Exit } from "./exit.js";
import { writeFileAtomic } from "./io.js";

/** Register `profile` on the CLI. */
export function registerProfileCommand(cli: Command, io: Io, setExit: (code: number) => void): void {
  const finish = (code: number) => {
    setExit(code);
    if (code !== Exit.ok) process.exitCode = code;
  };
  cli
    .command("profile")
    .description("time every op class on a backend over a sweep of sizes, fit α and β by least squares, and write a profile a cluster can name")
    .addOption(new Option("--backend <backend>", "where to measure").choices(["host", "cuda"]).default("host"))
    .requiredOption("-o, --out <file>", "the profile file to write")
    .option("--iterations <n>", "iterations per sweep point (the first is a warm-up)", "8")
    .option("--name <name>", "the profile's name", "host")
    .addOption(new Option("--format <format>", "how to report").choices(["text", "json"]).default("text"))
    .action(async (flags: { backend: string; out: string; iterations: string; name: string; format: string }) => {
      try {
        finish(await profileCommand(flags, io));
      } catch (e) {
        io.err(`fsmoec: error: ${(e as Error).message}\n`);
        finish(Exit.runtime);
      }
    });

}

async function profileCommand(flags: { backend: string; out: string; iterations: string; name: string; format: string }, io: Io): Promise<number> {
  const iterations = Number(flags.iterations);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1000) {
    io.err(`fsmoec: error: --iterations expects a whole number from 1 to 1000, got '${flags.iterations}'\n`);
    return Exit.usage;
  }
  if (flags.backend !== "host") {
    io.err(`fsmoec: error: the ${flags.backend} backend is not built yet; use --backend host\n`);
    return Exit.runtime;
  }
  const loaded = loadAddon();
  if (!loaded.addon) {
    io.err(`fsmoec: error: ${loaded.error}\n`);
    return Exit.runtime;
  }
  const { profile, fits, dispatchUs, handoffUs } = await profileHost({ iterations, name: flags.name, ...(flags.format === "text" && { onProgress: (d: number, n: number) => io.err(`\rprofiling ${d}/${n}`) }) });
  if (flags.format === "text") io.err("\n");
  try {
    writeFileAtomic(flags.out, JSON.stringify(profile, null, 2) + "\n");
  } catch (e) {
    io.err(`fsmoec: error: cannot write ${flags.out}: ${(e as Error).message}\n`);
    return Exit.runtime;
  }
  if (flags.format === "json") {
    io.out(JSON.stringify({ file: flags.out, profile, fits }, null, 2) + "\n");
    return Exit.ok;
  }
  io.out(`profile '${profile.name}' of the host backend: t = α + β·n, least squares\n`);
  const rows = fits.map((f) => [f.op, f.kind ?? "", f.group ?? "", f.dir ?? "", f.gemms === undefined ? "" : String(f.gemms), f.alphaUs.toFixed(3), f.betaUs.toExponential(3), f.samples > 0 ? f.r2.toFixed(3) : "", String(f.samples)]);
  const head = ["op", "kind", "group", "dir", "gemms", "α µs", "β µs", "R²", "points"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) io.out("  " + r.map((c, i) => (i >= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ") + "\n");
  io.out(`  the ranks share ${profile.host!.cores} core${profile.host!.cores === 1 ? "" : "s"}; the executor costs ${dispatchUs} µs of CPU per op and ${handoffUs} µs per hand-off between threads (fsmoec run and simulate apply these)\n`);
  io.out(`wrote ${flags.out} (name it in a cluster: profile = "${flags.out}")\n`);
  return Exit.ok;
}
