/**
 * The `cuda` target (codegen/cuda.ts): every example's plan.cu compiles against the runtime's C
 * API (native/include/fsmoe_runtime.h) with nvcc where nvcc exists, and with g++ under
 * -Wall -Wextra -Werror; the header is plain C; every one links against libfsmoe_runtime (the C
 * API on the CUDA backend, where it is built) with no undefined symbol. Linked with a recording stand-in of the
 * runtime, the generated code issues exactly the plan: every op once, in plan order, on its
 * stream, after waiting for the right events, on the right byte ranges of the arena and the
 * right communicators; the unrolled form and the table-driven form issue the same calls; a
 * failing call is reported with the op's id.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { events, identifier } from "../codegen/common.js";
import { UNROLL_LIMIT, cString, emitCuda } from "../codegen/cuda.js";
import { check } from "../compiler/check/check.js";
import { compileJob } from "../compiler/compile/compile.js";
import { buildPlan } from "../compiler/plan/build.js";
import { DTYPES } from "../compiler/check/schema.js";
import { PlanOp, type Plan } from "../compiler/plan/schema.js";

const run = promisify(execFile);
const INCLUDE = resolve("native/include");
/** Where `npm run build:native` puts libfsmoe_runtime.so (built where nvcc exists). */
const RUNTIME_DIR = resolve("native/build/Release");

/** The plans of a file's train jobs (all of them, or the first), compiled with the auto strategy. */
function plansOf(file: string, all: boolean): Plan[] {
  const jobs = check(file).program.jobs;
  const text = readFileSync(file, "utf8");
  return (all ? jobs : jobs.slice(0, 1)).map((job) => buildPlan(compileJob(job, { strategy: "auto" }).compiled!, file, text, "test"));
}

/** A tool on PATH (or at a known place), or undefined. */
function find(tool: string, ...places: string[]): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${tool}`]).toString().trim() || undefined;
  } catch {
    return places.find((p) => existsSync(p));
  }
}

const nvcc = find("nvcc", "/usr/local/cuda/bin/nvcc");
const gxx = find("g++");
const gcc = find("gcc");
if (!nvcc) console.log("emit-cuda: nvcc not found (PATH, /usr/local/cuda/bin): skipping the nvcc compile of every example");
if (!gxx) console.log("emit-cuda: g++ not found: skipping the g++ checks and the stand-in runtime runs");

const examples = readdirSync("examples").filter((f) => f.endsWith(".moe")).sort();
const plans = examples.flatMap((f) => plansOf(`examples/${f}`, true).map((plan) => ({ name: `${f}:${plan.job.name}`, plan })));
const tiny = plans.find((p) => p.name.startsWith("tiny.moe:"))!.plan;

/** Run `jobs` with at most `width` at a time. */
async function pool<T>(items: readonly T[], width: number, job: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await job(items[next++]!);
  }));
}

/**
 * A stand-in runtime that checks arguments and prints every call, and a main that runs the
 * plan as rank 1; FSMOE_FAIL_AT=k makes the k-th launch (kernel or collective) fail.
 */
const STANDIN = String.raw`
#include "fsmoe_runtime.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>

struct fsmoe_rt {
  const fsmoe_plan_desc* plan = nullptr;
  long fail_at = -1;
  long launches = 0;
};

static int sid(fsmoe_stream_t s) { return int(reinterpret_cast<intptr_t>(s)) - 1; }
static const char* gname(fsmoe_rt* rt, fsmoe_comm_t c) { return rt->plan->groups[reinterpret_cast<intptr_t>(c) - 1].name; }
static fsmoe_status fail(fsmoe_rt* rt) { return ++rt->launches == rt->fail_at ? FSMOE_ERROR_CUDA : FSMOE_OK; }
// The arena is never touched, so it is not allocated: addresses are kBase + offset.
constexpr uintptr_t kBase = uintptr_t(1) << 40;
static long off(fsmoe_rt*, const void* p) { return long(reinterpret_cast<uintptr_t>(p) - kBase); }

extern "C" {
const char* fsmoe_status_name(fsmoe_status s) { return s == FSMOE_OK ? "FSMOE_OK" : "FSMOE_ERROR"; }
fsmoe_status fsmoe_plan_begin(fsmoe_rt* rt, const fsmoe_plan_desc* p, int32_t rank) {
  if (p == nullptr || p->api_version != FSMOE_RUNTIME_API_VERSION) return FSMOE_ERROR_MISMATCH;
  if (rank < 0 || rank >= p->world_size || p->world_size != p->nodes * p->gpus_per_node) return FSMOE_ERROR_MISMATCH;
  rt->plan = p;
  std::printf("begin %s rank=%d ops=%d events=%d groups=%d buffers=%d arena=%llu\n", p->job, rank, p->num_ops, p->num_events, p->num_groups,
              p->num_buffers, (unsigned long long)p->arena_bytes);
  return FSMOE_OK;
}
fsmoe_status fsmoe_plan_end(fsmoe_rt*) { std::printf("end\n"); return FSMOE_OK; }
fsmoe_status fsmoe_report(fsmoe_rt*, int32_t op, fsmoe_status st, const char*) { std::printf("report op=%d status=%d\n", op, int(st)); return st; }
fsmoe_status fsmoe_stream(fsmoe_rt*, int32_t id, fsmoe_stream_t* out) {
  if (id < 0 || id >= FSMOE_STREAM_COUNT) return FSMOE_ERROR_INVALID_ARGUMENT;
  *out = reinterpret_cast<fsmoe_stream_t>(intptr_t(id) + 1);
  return FSMOE_OK;
}
fsmoe_status fsmoe_event(fsmoe_rt* rt, int32_t id, fsmoe_event_t* out) {
  if (id < 0 || id >= rt->plan->num_events) return FSMOE_ERROR_OUT_OF_RANGE;
  *out = reinterpret_cast<fsmoe_event_t>(intptr_t(id) + 1);
  return FSMOE_OK;
}
fsmoe_status fsmoe_event_record(fsmoe_rt*, fsmoe_event_t e, fsmoe_stream_t s) {
  std::printf("record s=%d e=%d\n", sid(s), int(reinterpret_cast<intptr_t>(e)) - 1);
  return FSMOE_OK;
}
fsmoe_status fsmoe_event_wait(fsmoe_rt*, fsmoe_stream_t s, fsmoe_event_t e) {
  std::printf("wait s=%d e=%d\n", sid(s), int(reinterpret_cast<intptr_t>(e)) - 1);
  return FSMOE_OK;
}
fsmoe_status fsmoe_buffer(fsmoe_rt* rt, uint64_t offset, uint64_t bytes, void** out) {
  if (offset + bytes > rt->plan->arena_bytes) return FSMOE_ERROR_OUT_OF_RANGE;
  *out = reinterpret_cast<void*>(kBase + uintptr_t(offset));
  return FSMOE_OK;
}
fsmoe_status fsmoe_comm(fsmoe_rt* rt, const fsmoe_group_desc* g, int32_t, fsmoe_comm_t* out) {
  const long index = long(g - rt->plan->groups);
  if (index < 0 || index >= rt->plan->num_groups) return FSMOE_ERROR_OUT_OF_RANGE;
  std::printf("comm %s\n", g->name);
  *out = reinterpret_cast<fsmoe_comm_t>(intptr_t(index) + 1);
  return FSMOE_OK;
}
static fsmoe_status kernel(const char* name, fsmoe_rt* rt, const fsmoe_op_info* op, const fsmoe_tensor* t, int32_t n, fsmoe_stream_t s) {
  if (fail(rt) != FSMOE_OK) return FSMOE_ERROR_CUDA;
  std::printf("kernel %s op=%d s=%d", name, op->id, sid(s));
  for (int32_t i = 0; i < n; ++i) std::printf(" %c%ld+%llu", t[i].write ? 'w' : 'r', off(rt, t[i].data), (unsigned long long)t[i].bytes);
  std::printf("\n");
  return FSMOE_OK;
}
#define KERNEL(k) fsmoe_status fsmoe_launch_##k(FSMOE_KERNEL_PARAMS) { return kernel(#k, rt, op, tensors, num_tensors, stream); }
KERNEL(embed) KERNEL(lm_head) KERNEL(loss) KERNEL(attention) KERNEL(dense_ffn) KERNEL(shared_expert) KERNEL(norm)
KERNEL(gate) KERNEL(order) KERNEL(dispatch_gemm) KERNEL(expert_gemm) KERNEL(combine_gemm) KERNEL(iorder)
static fsmoe_status coll(const char* name, fsmoe_rt* rt, fsmoe_comm_t c, const void* send, uint64_t sb, void* recv, uint64_t rb, int32_t dtype, fsmoe_stream_t s) {
  if (fail(rt) != FSMOE_OK) return FSMOE_ERROR_CUDA;
  std::printf("%s g=%s s=%d dtype=%d r%ld+%llu w%ld+%llu\n", name, gname(rt, c), sid(s), dtype, off(rt, send), (unsigned long long)sb, off(rt, recv), (unsigned long long)rb);
  return FSMOE_OK;
}
fsmoe_status fsmoe_all_to_all(fsmoe_rt* rt, fsmoe_comm_t c, const void* a, uint64_t ab, void* b, uint64_t bb, int32_t d, fsmoe_stream_t s) { return coll("all_to_all", rt, c, a, ab, b, bb, d, s); }
fsmoe_status fsmoe_all_gather(fsmoe_rt* rt, fsmoe_comm_t c, const void* a, uint64_t ab, void* b, uint64_t bb, int32_t d, fsmoe_stream_t s) { return coll("all_gather", rt, c, a, ab, b, bb, d, s); }
fsmoe_status fsmoe_reduce_scatter(fsmoe_rt* rt, fsmoe_comm_t c, const void* a, uint64_t ab, void* b, uint64_t bb, int32_t d, fsmoe_stream_t s) { return coll("reduce_scatter", rt, c, a, ab, b, bb, d, s); }
fsmoe_status fsmoe_all_reduce(fsmoe_rt* rt, fsmoe_comm_t c, const fsmoe_tensor* t, int32_t n, int32_t dtype, fsmoe_stream_t s) {
  if (fail(rt) != FSMOE_OK) return FSMOE_ERROR_CUDA;
  std::printf("all_reduce g=%s s=%d dtype=%d", gname(rt, c), sid(s), dtype);
  for (int32_t i = 0; i < n; ++i) std::printf(" w%ld+%llu", off(rt, t[i].data), (unsigned long long)t[i].bytes);
  std::printf("\n");
  return FSMOE_OK;
}
}  // extern "C"

extern "C" const fsmoe_plan_desc* PLAN_DESC(void);
extern "C" fsmoe_status PLAN(fsmoe_rt* rt, int32_t rank, int32_t* failed_op);

int main() {
  fsmoe_rt rt;
  if (const char* f = std::getenv("FSMOE_FAIL_AT")) rt.fail_at = std::atol(f);
  if (PLAN_DESC()->num_ops <= 0) return 2;
  int32_t failed = -2;
  const fsmoe_status st = PLAN(&rt, 1, &failed);
  std::printf("status=%d failed_op=%d\n", int(st), failed);
  return 0;
}
`;

/** What the stand-in prints for a plan run as rank 1 (see STANDIN). */
function expectedCalls(plan: Plan): string {
  const ev = events(plan);
  const streams = ["compute", "intra", "inter"];
  const groups = new Map(plan.groups.map((g, i) => [g.name, i]));
  const offsets = new Map(plan.buffers.map((b) => [b.id, b.offset]));
  const dtype = { fp32: 0, bf16: 1, fp16: 2, fp8: 3 }[plan.job.model.dtype];
  const range = (a: Plan["ops"][number]["accesses"][number]) => `${a.write ? "w" : "r"}${offsets.get(a.buffer)! + a.offset}+${a.bytes}`;
  const out = [`begin ${plan.job.name} rank=1 ops=${plan.ops.length} events=${ev.count} groups=${plan.groups.length} buffers=${plan.buffers.length} arena=${plan.memory.arenaBytes}`];
  const used = [...new Set(plan.ops.filter((op) => op.group !== undefined && ["all_to_all", "all_gather", "reduce_scatter", "all_reduce"].includes(op.kind)).map((op) => groups.get(op.group!)!))].sort((a, b) => a - b);
  for (const g of used) out.push(`comm ${plan.groups[g]!.name}`);
  for (const op of plan.ops) {
    const s = streams.indexOf(op.stream);
    for (const e of ev.waitsOf[op.id]!) out.push(`wait s=${s} e=${e}`);
    const ranges = op.accesses.map(range).join(" ");
    if (op.kind === "all_reduce") out.push(`all_reduce g=${op.group} s=${s} dtype=${dtype} ${ranges}`);
    else if (["all_to_all", "all_gather", "reduce_scatter"].includes(op.kind)) out.push(`${op.kind} g=${op.group} s=${s} dtype=${dtype} ${ranges}`);
    else out.push(`kernel ${op.kind === "expert" ? "expert_gemm" : op.kind} op=${op.id} s=${s}${ranges ? ` ${ranges}` : ""}`);
    if (ev.recordOf[op.id]! >= 0) out.push(`record s=${s} e=${ev.recordOf[op.id]}`);
  }
  out.push("end", "status=0 failed_op=-1");
  return out.join("\n") + "\n";
}

describe("the cuda target", () => {
  it("writes C++ without HTML escapes, for the plan's job, unrolled for small plans and table-driven for big ones", () => {
    const cu = emitCuda(tiny);
    expect(cu).not.toMatch(/&(lt|gt|amp|quot|#x27);/);
    expect(cu).toContain(`extern "C" fsmoe_status fsmoe_plan_${identifier(tiny.job.name)}(fsmoe_rt* rt, int32_t rank, int32_t* failed_op)`);
    expect(tiny.ops.length).toBeLessThanOrEqual(UNROLL_LIMIT);
    expect(cu).toContain("// #0 compute: embed embedding");
    const big = plans.find((p) => p.plan.ops.length > UNROLL_LIMIT)!.plan;
    const table = emitCuda(big);
    expect(table).toContain("for (int32_t i = 0; i < kNumOps; ++i)");
    expect(table).not.toContain("// #0 compute:");
  });

  it("numbers op kinds, streams and dtypes in the runtime header as plan.json's schema orders them", () => {
    const header = readFileSync(join(INCLUDE, "fsmoe_runtime.h"), "utf8");
    const values = (prefix: string) => [...header.matchAll(new RegExp(`\\b${prefix}([A-Z0-9_]+) = (\\d+)`, "g"))].map((m) => [m[1]!.toLowerCase(), Number(m[2])]);
    expect(values("FSMOE_OP_").filter(([k]) => k !== "kind_count")).toEqual(PlanOp.shape.kind.options.map((k, i) => [k, i]));
    expect(values("FSMOE_STREAM_").filter(([k]) => k !== "count")).toEqual(PlanOp.shape.stream.options.map((k, i) => [k, i]));
    expect(values("FSMOE_DTYPE_")).toEqual(DTYPES.map((k, i) => [k, i]));
  });

  it("escapes C strings so that any name stays one literal", () => {
    expect(cString(`a"b\\c?\n`)).toBe(`"a\\"b\\\\c\\?\\012"`);
    expect(cString("µ")).toBe(`"\\302\\265"`);
  });

  it.skipIf(!gcc)("declares a runtime API that is plain C", () => {
    execFileSync(gcc!, ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only", "-x", "c", join(INCLUDE, "fsmoe_runtime.h")]);
  });

  it.skipIf(!gxx)("every example's plan.cu passes g++ -fsyntax-only -Wall -Wextra -Werror", { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-cu-gxx-"));
    await pool(plans, 2, async ({ name, plan }) => {
      const file = join(dir, `${identifier(name)}.cu`);
      writeFileSync(file, emitCuda(plan));
      await run(gxx!, ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c++", "-I", INCLUDE, file], { maxBuffer: 1 << 24 });
    });
  });

  it.skipIf(!nvcc)("every example's plan.cu compiles with nvcc against the runtime's C API and links against libfsmoe_runtime (where it is built)", { timeout: 900_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-cu-nvcc-"));
    const runtime = existsSync(join(RUNTIME_DIR, "libfsmoe_runtime.so"));
    if (!runtime) console.log(`emit-cuda: ${RUNTIME_DIR}/libfsmoe_runtime.so is not built (npm run build:native, where nvcc exists): plan.cu files are compiled, not linked`);
    // nvcc spends most of its wall time waiting, so three at a time cost about one core.
    console.log(`emit-cuda: compiling ${plans.length} plans with ${nvcc}`);
    await pool(plans, 3, async ({ name, plan }) => {
      const file = join(dir, `${identifier(name)}.cu`);
      const obj = file.replace(/\.cu$/, ".o");
      writeFileSync(file, emitCuda(plan));
      await run(nvcc!, ["-std=c++17", "-c", "-Xcompiler", "-fPIC", "-I", INCLUDE, file, "-o", obj], { maxBuffer: 1 << 24 });
      expect(existsSync(obj), name).toBe(true);
      if (!runtime) return;
      // Every symbol resolved: the library implements the whole C API the generated code calls.
      const lib = file.replace(/\.cu$/, ".so");
      await run(nvcc!, ["-shared", obj, "-L", RUNTIME_DIR, "-lfsmoe_runtime", "-Xlinker", "--no-undefined", "-o", lib], { maxBuffer: 1 << 24 });
      expect(existsSync(lib), name).toBe(true);
    });
  });

  describe.skipIf(!gxx)("linked with a stand-in runtime", () => {
    const dir = mkdtempSync(join(tmpdir(), "fsmoe-cu-run-"));
    writeFileSync(join(dir, "standin.cc"), STANDIN);

    const built = new Map<string, (failAt?: number) => Promise<string>>();

    /** Build plan.cu (in the given form) with the stand-in, once, and return a runner. */
    async function build(plan: Plan, unroll: boolean): Promise<(failAt?: number) => Promise<string>> {
      const stem = `${identifier(plan.job.name)}_${unroll ? "unrolled" : "table"}`;
      const done = built.get(stem);
      if (done) return done;
      const cu = join(dir, `${stem}.cu`);
      writeFileSync(cu, emitCuda(plan, { unroll }));
      const fn = `fsmoe_plan_${identifier(plan.job.name)}`;
      const exe = join(dir, stem);
      await run(gxx!, ["-std=c++17", "-O0", "-x", "c++", "-I", INCLUDE, `-DPLAN=${fn}`, `-DPLAN_DESC=${fn}_desc`, join(dir, "standin.cc"), cu, "-o", exe]);
      const runner = async (failAt?: number) => (await run(exe, [], { env: { ...process.env, ...(failAt !== undefined && { FSMOE_FAIL_AT: String(failAt) }) }, maxBuffer: 1 << 28 })).stdout;
      built.set(stem, runner);
      return runner;
    }

    it("issues every op of tiny in plan order, with its waits, events, byte ranges and communicators, in both forms", { timeout: 300_000 }, async () => {
      const expected = expectedCalls(tiny);
      for (const unroll of [true, false]) expect(await (await build(tiny, unroll))(), unroll ? "unrolled" : "table").toBe(expected);
    });

    it("issues a big plan the same way from its tables", { timeout: 300_000 }, async () => {
      const big = plans.find((p) => p.plan.ops.length > UNROLL_LIMIT && p.plan.ops.length < 4000)!.plan;
      expect(await (await build(big, false))()).toBe(expectedCalls(big));
    });

    it("reports the op whose launch failed and stops there", { timeout: 300_000 }, async () => {
      for (const unroll of [true, false]) {
        const runPlan = await build(tiny, unroll);
        const victim = tiny.ops[40]!;
        const out = await runPlan(41);
        expect(out).toContain(`report op=${victim.id} status=7\n`);
        expect(out.endsWith(`status=7 failed_op=${victim.id}\n`)).toBe(true);
        expect(out).not.toContain("end\n");
        const launched = out.split("\n").filter((l) => /^(kernel|all_|reduce_)/.test(l));
        expect(launched).toHaveLength(40);
      }
    });
  });
});
