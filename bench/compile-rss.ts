/**
 * Child process of bench/compile.bench.ts: check and compile DeepSeek-V3 on 2,048 GPUs (auto)
 * and print the process's peak resident memory in MB.
 */
import { check } from "../compiler/check/check.js";
import { compileJob } from "../compiler/compile/compile.js";

const job = check("bench/deepseek-v3-scale.moe").program.jobs.find((j) => j.name === "deepseek_v3_2048")!;
const c = compileJob(job, { strategy: "auto" });
if (!c.compiled) throw new Error("DeepSeek-V3 at 2,048 GPUs did not compile");
console.log(String(process.resourceUsage().maxRSS / 1024));
