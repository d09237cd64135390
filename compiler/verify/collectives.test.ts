import { describe, expect, it } from "vitest";
import { groupMembers } from "./communicators.js";
import { expandSpmd } from "./spmd.js";
import { moePipeline, swapOps } from "./testing.js";
import { verify } from "./verify.js";

const group = (size: number, stride: number) => ({ name: "g", size, stride, span: "intra" as const, membersPerNode: size, nodes: 1 });

describe("communicator instances", () => {
  it("follow base = r − (⌊r / stride⌋ mod size)·stride", () => {
    expect(groupMembers(group(2, 1), 3)).toEqual([2, 3]);
    expect(groupMembers(group(2, 2), 3)).toEqual([1, 3]);
    expect(groupMembers(group(2, 2), 0)).toEqual([0, 2]);
    expect(groupMembers(group(4, 1), 2)).toEqual([0, 1, 2, 3]);
    expect(groupMembers(group(2, 4), 13)).toEqual([9, 13]);
    expect(groupMembers(group(3, 2), 9)).toEqual([7, 9, 11]);
  });
});

describe("collective order across ranks (FSM4003) and cross-rank deadlock (FSM4004)", () => {
  it("reports two combines swapped on one rank as an order mismatch on its rail instance, with both ranks' ops", () => {
    const { graph, layers } = moePipeline({ degree: 4, gradAllReduce: true });
    const [c1, c2] = layers[0]!.C;
    const programs = expandSpmd(graph, [0, 1, 2, 3], 4, new Map([[1, (ops) => swapOps(ops, c1!, c2!)]]));
    const issues = verify(programs);
    expect(issues.map((i) => i.code)).toEqual(["FSM4003"]);
    // Rank 1 is the lowest member of rail{1,3}, so the message compares rank 3 against it.
    expect(issues[0]!.ops).toEqual([c2, c1]);
    expect(issues[0]!.ranks).toEqual([1, 3]);
    expect(issues[0]!.message).toBe(
      `collective order differs on communicator rail{1,3}: collective #5 is op ${c2} (all_to_all combine L0 fwd chunk 1, inter) on rank 1 ` +
        `but op ${c1} (all_to_all combine L0 fwd chunk 0, inter) on rank 3`,
    );
  });

  it("reports a swap of collectives on two communicators on one stream as a cross-rank deadlock", () => {
    const { graph, layers, allReduce } = moePipeline({ degree: 2, gradAllReduce: true });
    const lastCombine = layers[0]!.C[1]!;
    const programs = expandSpmd(graph, [0, 1, 2, 3], 4, new Map([[3, (ops) => swapOps(ops, lastCombine, allReduce!)]]));
    const issues = verify(programs);
    expect(issues.map((i) => i.code)).toEqual(["FSM4004"]);
    const message = issues[0]!.message;
    expect(message).toContain("all_to_all combine L0 fwd chunk 1 on rail{1,3} (rank 1 op");
    expect(message).toContain("all_reduce grad_allreduce bwd on world{0,1,2,3}");
    expect(message).toContain("on rank 3, ");
    expect(message).toContain("on rank 1, ");
    expect(issues[0]!.ranks).toContain(1);
    expect(issues[0]!.ranks).toContain(3);
  });

  it("reports a rank that skips a collective, naming what the other member issues", () => {
    const { graph, layers } = moePipeline({ degree: 2 });
    const ag = layers[0]!.AG[1]!;
    const programs = expandSpmd(graph, [0, 1, 2, 3], 4, new Map([[0, (ops) => ops.filter((op) => op.id !== ag)]]));
    const issues = verify(programs).filter((i) => i.code === "FSM4003");
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toMatch(
      /^collective order differs on communicator node\{0,1\}: collective #2 is op \d+ \(reduce_scatter esp_reducescatter L0 fwd chunk 0, intra\) on rank 0 but op \d+ \(all_gather esp_allgather L0 fwd chunk 1, intra\) on rank 1$/,
    );
  });

  it("reports a communicator member missing from the programs", () => {
    const { graph } = moePipeline({ degree: 2, gradAllReduce: true });
    const issues = verify(expandSpmd(graph, [0, 1, 2], 4));
    expect(issues.map((i) => i.message).sort()).toEqual([
      "communicator node{2,3} of rank 2: member rank 3 has no program",
      "communicator rail{1,3} of rank 1: member rank 3 has no program",
      "communicator world{0,1,2,3} of rank 0: member rank 3 has no program",
    ]);
    expect(issues.every((i) => i.code === "FSM4005")).toBe(true);
  });

  it("reports a group that does not fit the world", () => {
    const { graph } = moePipeline({ degree: 1, gpus: 2, nodes: 2 });
    const issues = verify({ ...expandSpmd(graph, [0, 1, 2], 3) });
    expect(issues.filter((i) => i.code === "FSM4012").map((i) => i.message)).toContain(
      "group rail (size 2, stride 2) does not fit a world of 3 ranks: rank 1's instance would include rank 3",
    );
  });
});
