/*
 * fsmoe_runtime_cuda.h: creating and reading back the CUDA runtime that implements
 * fsmoe_runtime.h (libfsmoe_runtime, native/src/capi/). A generated plan.cu issues one iteration
 * through fsmoe_runtime.h; these functions are the host program's side around it:
 *
 *     fsmoe_rt* rt = NULL;
 *     if (fsmoe_cuda_create(plan_json, plan_json_bytes, NULL, &rt) != FSMOE_OK) { puts(fsmoe_cuda_error(rt)); ... }
 *     int32_t failed = -1;
 *     fsmoe_status st = fsmoe_plan_<job>(rt, fsmoe_cuda_rank(rt), &failed);   // issues the iteration
 *     if (st == FSMOE_OK) st = fsmoe_cuda_synchronize(rt);
 *     if (st == FSMOE_OK) st = fsmoe_cuda_write_results(rt, "out.tensors");   // fsmoe-tensors/1
 *     fsmoe_cuda_destroy(rt);
 *
 * The runtime needs the plan.json that the plan.cu was generated from (the generated file
 * carries the schedule; plan.json also carries what kernels read: shapes, router fields,
 * weights' seeds, the taps): fsmoe_plan_begin checks that the two agree (world size, ops,
 * arena size, every op's kind, stream and byte ranges as they are launched). One process runs
 * one rank: a plan of one rank, or one rank of an NCCL world started by torchrun or an MPI
 * launcher (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; native/src/cuda/bootstrap.h). Without a
 * device, fsmoe_cuda_create fails with FSMOE_ERROR_UNAVAILABLE and "no CUDA device: …".
 */
#ifndef FSMOE_RUNTIME_CUDA_H
#define FSMOE_RUNTIME_CUDA_H

#include "fsmoe_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Load and validate `plan_json` (`bytes` bytes of plan.json text), set up this process's rank on
 * the GPU (arena, streams, weights, inputs, communicators) and return the runtime in *out.
 * `options_json` may be NULL or {"precision": "fp32"|"bf16", "gemm": "auto"|"cublas"|"builtin",
 * "comm": "auto"|"loopback"|"nccl", "timeoutMs": N}. On failure *out still holds a runtime whose
 * fsmoe_cuda_error says why (destroy it), or NULL when memory ran out.
 */
fsmoe_status fsmoe_cuda_create(const char* plan_json, uint64_t bytes, const char* options_json, fsmoe_rt** out);

/** Free the runtime (NULL is allowed). */
void fsmoe_cuda_destroy(fsmoe_rt* rt);

/** The last failure's message ("" when none); valid until the next call on `rt`. */
const char* fsmoe_cuda_error(const fsmoe_rt* rt);

/** The plan rank this process runs (-1 when the runtime is not set up). */
int32_t fsmoe_cuda_rank(const fsmoe_rt* rt);

/** Wait (up to the timeout) until the issued iteration has finished on the device. */
fsmoe_status fsmoe_cuda_synchronize(fsmoe_rt* rt);

/** Write the last iteration's tensors, routing and loss (fsmoe-tensors/1, as fsmoe-replay writes) to `path`. */
fsmoe_status fsmoe_cuda_write_results(fsmoe_rt* rt, const char* path);

#ifdef __cplusplus
}
#endif

#endif /* FSMOE_RUNTIME_CUDA_H */
