/**
 * Golden plan listings (STYLE.md, "Golden files like TypeScript's baselines"): each example's
 * first job, compiled with its own schedule, printed by the listing emitter and compared with
 * spec/baselines/reference/plans/<example>.listing.txt. Listings over LISTING_LIMIT bytes are
 * compared by their header and layer section only (everything before the op list), as
 * <example>.summary.txt, to keep the reference files reviewable.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitListing } from "../codegen/listing.js";
import { check } from "../compiler/check/check.js";
import { compileProgram } from "../compiler/compile/index.js";
import { compareBaseline } from "./baselines.js";

const EXAMPLES = readdirSync("examples").filter((f) => f.endsWith(".moe")).sort();
const LISTING_LIMIT = 400_000;
const OPS_HEADER = "ops (issue order)";

/** The listing of an example's first job under its own schedule. */
function listing(file: string): string {
  const r = check(`examples/${file}`);
  expect(r.diagnostics).toEqual([]);
  const first = r.program.jobs[0]!;
  const { results, diagnostics } = compileProgram(r, { version: "golden", jobs: (j) => j.name === first.name });
  expect(diagnostics).toEqual([]);
  expect(results).toHaveLength(1);
  expect(results[0]!.strategy).toBe(first.schedule);
  return emitListing(results[0]!.plan!);
}

describe("golden plan listings of the examples", () => {
  for (const file of EXAMPLES) {
    const stem = file.replace(/\.moe$/, "");
    it(`${file}: the listing of its first job matches its baseline`, () => {
      const text = listing(file);
      if (Buffer.byteLength(text) < LISTING_LIMIT) {
        expect(compareBaseline(`plans/${stem}.listing.txt`, text)).toBeUndefined();
        return;
      }
      const cut = text.indexOf(`\n${OPS_HEADER}`);
      expect(cut).toBeGreaterThan(0);
      expect(compareBaseline(`plans/${stem}.summary.txt`, text.slice(0, cut + 1))).toBeUndefined();
    });
  }
});
