/**
 * The command line, run in-process through `run(argv, io)` with captured output: exit codes
 * (0 clean, 1 input errors, 2 usage), `check` on one and several files, `--format json`, `fmt`
 * (`--check`, `--stdout`, rewriting in place, leaving files with syntax errors alone), missing
 * files, `--version`, `--help` and the default command's summary. One test spawns
 * `bin/fsmoec` as a real process. Files the tests write live in a temporary folder.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { format } from "../grammar/print.js";
import { Exit } from "./exit.js";
import { run } from "./main.js";

/** Run the CLI in-process; returns the exit code and what it printed. */
function cli(...argv: string[]): { code: number; out: string; err: string } {
  let out = "";
  let err = "";
  const code = run(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const examples = readdirSync("examples")
  .filter((f) => f.endsWith(".moe"))
  .sort()
  .map((f) => join("examples", f));
const TINY = join("examples", "tiny.moe");

/** A file with semantic errors only (it parses and formats). */
const SEMANTIC_ERRORS = "model m {\n  layers = 4\n  layers = 5\n  hidden = 128\n  moe { experts = 4, top_k = 2, expert_hidden = 128 }\n}\n";
/** A valid file that is not formatted canonically. */
const UNFORMATTED = "link l {bandwidth=10 GB/s,latency=2 us}\n\n\n\ndevice d { peak_flops = 10 TFLOP/s\n memory = 16 GiB }\n";
/** A file with syntax errors. */
const SYNTAX_ERRORS = "model m {\n  layers = = 4\n  hidden 64\n";

let dir: string;
const tmp = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "fsmoec-cli-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("exit codes", () => {
  it("0 when every file checks clean", () => {
    const r = cli("check", ...examples);
    expect(r.code).toBe(Exit.ok);
    expect(r.out).toBe("");
    expect(r.err).toBe(`${examples.length} files checked, no errors\n`);
  });

  it("1 when a file has errors, with each diagnostic rendered at its line and column", () => {
    const bad = tmp("semantic.moe", SEMANTIC_ERRORS);
    const r = cli("check", bad);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain(`${bad}:3:3: error FSM2006: duplicate field 'layers'`);
    expect(r.err).toContain(`${bad}:2:3: note: 'layers' first given here`);
    expect(r.err).toMatch(/1 file checked, 1 error\n$/);
  });

  it("2 with no arguments, printing the usage", () => {
    const r = cli();
    expect(r.code).toBe(Exit.usage);
    expect(r.out).toBe("");
    expect(r.err).toContain("Usage: fsmoec");
  });

  it("2 for an unknown option, before or after the command", () => {
    for (const argv of [["--bogus"], ["check", TINY, "--bogus"], ["fmt", "--nope", TINY], ["--frobnicate", TINY]]) {
      const r = cli(...argv);
      expect(r.code, argv.join(" ")).toBe(Exit.usage);
      expect(r.err, argv.join(" ")).toMatch(/unknown option '--(bogus|nope|frobnicate)'/);
      expect(r.out).toBe("");
    }
  });

  it("2 for extra arguments, missing arguments and bad option values", () => {
    const cases: [string[], RegExp][] = [
      [[TINY, "extra"], /too many arguments/],
      [[TINY, TINY], /too many arguments/],
      [["check"], /missing required argument 'files'/],
      [["fmt"], /missing required argument 'files'/],
      [["check", TINY, "--format", "xml"], /argument 'xml' is invalid/],
      [["check", TINY, "--format"], /argument missing/],
      [["--print-after", "bogus", TINY], /argument 'bogus' is invalid/],
    ];
    for (const [argv, message] of cases) {
      const r = cli(...argv);
      expect(r.code, argv.join(" ")).toBe(Exit.usage);
      expect(r.err, argv.join(" ")).toMatch(message);
    }
  });

  it("1 with FSM2008 for a file that does not exist", () => {
    const missing = join(dir, "missing.moe");
    for (const argv of [["check", missing], [missing, "-o", join(dir, "out-missing")]]) {
      const r = cli(...argv);
      expect(r.code, argv.join(" ")).toBe(Exit.inputErrors);
      expect(r.err).toContain(`${missing}: error FSM2008: cannot read '${missing}': no such file`);
    }
    const json = cli("check", missing, "--format", "json");
    expect(json.code).toBe(Exit.inputErrors);
    expect(JSON.parse(json.out)).toEqual([
      { file: missing, line: 1, column: 1, endLine: 1, endColumn: 1, code: "FSM2008", severity: "error", message: `cannot read '${missing}': no such file`, related: [] },
    ]);
  });
});

describe("check", () => {
  it("checks several files in one run and reports each one's errors", () => {
    const bad = tmp("several-bad.moe", SEMANTIC_ERRORS);
    const bad2 = tmp("several-bad2.moe", "link l { bandwidth = 5 us }\n");
    const r = cli("check", TINY, bad, examples[0]!, bad2);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain(`${bad}:3:3: error FSM2006`);
    expect(r.err).toContain(`${bad2}:1:22: error FSM2104: field 'bandwidth' expects a rate (bytes per second), got a time`);
    expect(r.err).not.toContain(TINY);
    expect(r.err).toMatch(/4 files checked, 2 errors\n$/);
  });

  it("--format json prints one JSON array of located diagnostics on stdout", () => {
    const bad = tmp("json-bad.moe", SEMANTIC_ERRORS);
    const bad2 = tmp("json-bad2.moe", "link l { bandwidth = 5 us }\n");
    const r = cli("check", "--format", "json", TINY, bad, bad2);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toBe("");
    const diagnostics = JSON.parse(r.out) as Record<string, unknown>[];
    expect(Array.isArray(diagnostics)).toBe(true);
    expect(diagnostics.map((d) => [d["file"], d["code"]])).toEqual([
      [bad, "FSM2006"],
      [bad2, "FSM2104"],
    ]);
    for (const d of diagnostics) {
      expect(Object.keys(d).sort()).toEqual(["code", "column", "endColumn", "endLine", "file", "line", "message", "related", "severity"]);
      expect(d["code"]).toMatch(/^FSM\d{4}$/);
      expect(d["severity"]).toBe("error");
      for (const k of ["line", "column", "endLine", "endColumn"]) expect(Number.isInteger(d[k]) && (d[k] as number) >= 1, k).toBe(true);
    }
    expect(diagnostics[0]).toEqual({
      file: bad,
      line: 3,
      column: 3,
      endLine: 3,
      endColumn: 9,
      code: "FSM2006",
      severity: "error",
      message: "duplicate field 'layers'",
      related: [{ file: bad, line: 2, column: 3, endLine: 2, endColumn: 9, message: "'layers' first given here" }],
    });
  });

  it("--format json prints [] for clean files", () => {
    const r = cli("check", "--format=json", ...examples);
    expect(r.code).toBe(Exit.ok);
    expect(JSON.parse(r.out)).toEqual([]);
    expect(r.err).toBe("");
  });

  it("reports syntax errors with their FSM1xxx codes", () => {
    const bad = tmp("syntax.moe", SYNTAX_ERRORS);
    const r = cli("check", bad, "--format", "json");
    expect(r.code).toBe(Exit.inputErrors);
    const diagnostics = JSON.parse(r.out) as { code: string; line: number }[];
    expect(diagnostics.filter((d) => /^FSM1\d{3}$/.test(d.code)).map((d) => d.line)).toEqual(expect.arrayContaining([2, 3]));
  });
});

describe("fmt", () => {
  it("--check exits 1 and names an unformatted file, without touching it", () => {
    const file = tmp("unformatted.moe", UNFORMATTED);
    const r = cli("fmt", "--check", file);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain(file);
    expect(r.err).toMatch(/not formatted/);
    expect(readFileSync(file, "utf8")).toBe(UNFORMATTED);
  });

  it("--check exits 0 and prints nothing for formatted files", () => {
    const file = tmp("formatted.moe", format(UNFORMATTED).text!);
    const r = cli("fmt", "--check", file, ...examples, "compiler/std/std.moe");
    expect(r).toEqual({ code: Exit.ok, out: "", err: "" });
  });

  it("--check names only the unformatted files of several", () => {
    const good = tmp("several-formatted.moe", format(UNFORMATTED).text!);
    const bad = tmp("several-unformatted.moe", UNFORMATTED);
    const r = cli("fmt", "--check", good, bad);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain(bad);
    expect(r.err).not.toContain(good);
  });

  it("rewrites a file in place with the canonical text, and a second run changes nothing", () => {
    const file = tmp("rewrite.moe", UNFORMATTED);
    const first = cli("fmt", file);
    expect(first.code).toBe(Exit.ok);
    expect(first.err).toContain(file);
    const text = readFileSync(file, "utf8");
    expect(text).toBe(format(UNFORMATTED).text);
    expect(text).toBe("link l {\n  bandwidth = 10 GB/s\n  latency   = 2 us\n}\n\ndevice d {\n  peak_flops = 10 TFLOP/s\n  memory     = 16 GiB\n}\n");
    const mtime = statSync(file).mtimeMs;
    const second = cli("fmt", file);
    expect(second).toEqual({ code: Exit.ok, out: "", err: "" });
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("--stdout prints the formatted text and leaves the file alone", () => {
    const file = tmp("stdout.moe", UNFORMATTED);
    const r = cli("fmt", "--stdout", file);
    expect(r.code).toBe(Exit.ok);
    expect(r.out).toBe(format(UNFORMATTED).text);
    expect(readFileSync(file, "utf8")).toBe(UNFORMATTED);
  });

  it("leaves a file with syntax errors untouched, reports them and exits 1", () => {
    const file = tmp("broken.moe", SYNTAX_ERRORS);
    const before = readFileSync(file);
    for (const argv of [["fmt", file], ["fmt", "--check", file], ["fmt", "--stdout", file]]) {
      const r = cli(...argv);
      expect(r.code, argv.join(" ")).toBe(Exit.inputErrors);
      expect(r.err).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: error FSM1\\d{3}`));
      expect(r.out).toBe("");
      expect(readFileSync(file).equals(before)).toBe(true);
    }
  });

  it("formats the other files when one has syntax errors", () => {
    const broken = tmp("mixed-broken.moe", SYNTAX_ERRORS);
    const fine = tmp("mixed-fine.moe", UNFORMATTED);
    const r = cli("fmt", broken, fine);
    expect(r.code).toBe(Exit.inputErrors);
    expect(readFileSync(fine, "utf8")).toBe(format(UNFORMATTED).text);
    expect(readFileSync(broken, "utf8")).toBe(SYNTAX_ERRORS);
  });

  it("exits 1 for a file that does not exist", () => {
    const missing = join(dir, "fmt-missing.moe");
    const r = cli("fmt", missing);
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain(missing);
    expect(r.err).toMatch(/no such file/);
  });
});

describe("information", () => {
  it("--version and -V print the package version", () => {
    for (const flag of ["--version", "-V"]) expect(cli(flag)).toEqual({ code: Exit.ok, out: `${version}\n`, err: "" });
  });

  it("--help lists the commands and options", () => {
    const r = cli("--help");
    expect(r.code).toBe(Exit.ok);
    expect(r.err).toBe("");
    for (const s of ["Usage: fsmoec", "check", "fmt", "--version", "--help"]) expect(r.out).toContain(s);
  });

  it("COMMAND --help describes the command", () => {
    const check = cli("check", "--help");
    expect(check.code).toBe(Exit.ok);
    expect(check.out).toContain("Usage: fsmoec check");
    expect(check.out).toContain("--format");
    const fmt = cli("fmt", "--help");
    expect(fmt.code).toBe(Exit.ok);
    for (const s of ["Usage: fsmoec fmt", "--check", "--stdout"]) expect(fmt.out).toContain(s);
  });

  it("the default command summarizes each train job of examples/tiny.moe", () => {
    const r = cli(TINY, "-o", join(dir, "out-tiny"));
    expect(r.code).toBe(Exit.ok);
    const lines = r.out.split("\n");
    expect(lines[0]).toBe("train tiny_job");
    expect(r.out).toContain("  model     tiny: 4 layers (2 MoE), hidden 64, 4 experts top-2, expert FFN 128 gelu, router softmax_topk, bf16\n");
    expect(r.out).toContain("  cluster   tiny_2x2: 2 × 2 GPUs (device, 10 TFLOP/s, 17.18 GB), intra 10 GB/s, inter 1 × 1.25 GB/s\n");
    expect(r.out).toContain("  layout    tp 2, esp 2, ep 2, edp 1: 2 experts per rank, each sharded 2 ways\n");
    expect(r.out).toContain("  tokens    2 × 16 per micro-batch, 2 micro-batches; 16 tokens per rank per MoE layer, capacity 8 per expert\n");
    expect(r.out).toMatch(/ {2}schedule {2}auto, pipeline \S+, gradients adaptive, recompute selective, seed 7\n/);
  });

  it("the default command exits 1 on a file with errors and prints no summary", () => {
    const bad = tmp("summary-bad.moe", SEMANTIC_ERRORS);
    const r = cli(bad, "-o", join(dir, "out-bad"));
    expect(r.code).toBe(Exit.inputErrors);
    expect(r.err).toContain("FSM2006");
    expect(r.out).not.toContain("train ");
  });

  it("--print-after parse and check print the stage's value as JSON", () => {
    const parsed = cli("--print-after", "parse", TINY);
    expect(parsed.code).toBe(Exit.ok);
    const asts = JSON.parse(parsed.out) as { file: string; items: { kind: string }[] }[];
    expect(asts[0]!.file).toBe(TINY);
    expect(asts[0]!.items.map((i) => i.kind)).toEqual(["block", "block", "block"]);
    const checked = cli("--print-after", "check", TINY);
    expect(checked.code).toBe(Exit.ok);
    const program = JSON.parse(checked.out) as { jobs: { name: string }[] };
    expect(program.jobs.map((j) => j.name)).toEqual(["tiny_job"]);
  });
});

describe("bin/fsmoec", () => {
  it("runs as a real process: check examples/tiny.moe exits 0", () => {
    const r = spawnSync(process.execPath, ["./bin/fsmoec", "check", TINY], { encoding: "utf8", timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe("1 file checked, no errors\n");
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });
});
