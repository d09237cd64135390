/*
 * fsmoe_runtime.h: the C API of the fsmoe runtime that generated launch sequences call.
 *
 * `fsmoec compile FILE --emit cuda` writes plan.cu: for one train job, a per-rank function
 *
 *     fsmoe_status fsmoe_plan_<job>(fsmoe_rt* rt, int32_t rank, int32_t* failed_op);
 *
 * that issues one training iteration of the plan (ARCHITECTURE.md, "Runtime"): it announces
 * the plan (fsmoe_plan_begin), looks up the three streams and the communicators of the plan's
 * groups, then for every op in plan order waits for the events of the ops it depends on,
 * launches the op (a kernel by kind, or a collective on the group's communicator) and records
 * the op's event when a later op on another stream waits for it; it ends with fsmoe_plan_end.
 * The same file also defines `const fsmoe_plan_desc* fsmoe_plan_<job>_desc(void)`, so a runtime
 * can size the arena and create events and communicators before the first iteration.
 *
 * Everything a generated file needs is declared here; a runtime (host threads, CUDA streams
 * with NCCL, a simulator, a recorder for tests) implements these functions. The API is plain C
 * (C99 / C++17), uses no CUDA types, and every function returns an fsmoe_status: the generated
 * code checks each one, and on failure calls fsmoe_report with the op id that failed, stores
 * that id in *failed_op and returns the status. Nothing here throws or aborts.
 *
 * Conventions:
 * - Handles (fsmoe_rt, streams, events, communicators) are opaque and owned by the runtime;
 *   lookups return the same handle for the same id during one plan (the runtime caches them).
 * - Memory is one arena per rank, sized by fsmoe_plan_desc.arena_bytes; buffers live at the
 *   compiler-assigned offsets (plan.json "buffers"), so addresses are fixed across iterations
 *   and a captured CUDA graph never needs updating.
 * - Sizes are bytes unless a name says elements; dtype is the model's element type.
 * - Ranks are SPMD: every rank runs the same op list; group membership is a formula of the
 *   rank (LANGUAGE.md, "Training semantics"): the members of rank r's instance of a group are
 *   base + i * stride for i in [0, size), base = r - ((r / stride) % size) * stride.
 */
#ifndef FSMOE_RUNTIME_H
#define FSMOE_RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this API; a generated plan carries the version it was written for. */
#define FSMOE_RUNTIME_API_VERSION 1

/* ---- Handles ---------------------------------------------------------------------------- */

/** The runtime of one rank (one process per GPU, or one thread per rank on the host). */
typedef struct fsmoe_rt fsmoe_rt;
/** A stream: ops on it run in issue order. */
typedef struct fsmoe_stream_s* fsmoe_stream_t;
/** An event: recorded on a stream after an op, waited for on another stream. */
typedef struct fsmoe_event_s* fsmoe_event_t;
/** A communicator: this rank's instance of a group. */
typedef struct fsmoe_comm_s* fsmoe_comm_t;

/* ---- Status codes ----------------------------------------------------------------------- */

typedef enum fsmoe_status {
  FSMOE_OK = 0,
  /** A null pointer, a negative count, an unknown kind or stream id. */
  FSMOE_ERROR_INVALID_ARGUMENT = 1,
  /** A byte range outside the arena, an event or group id beyond the plan's counts. */
  FSMOE_ERROR_OUT_OF_RANGE = 2,
  /** The arena, an event or a communicator could not be allocated. */
  FSMOE_ERROR_OUT_OF_MEMORY = 3,
  /** The backend does not implement this op kind, dtype or group shape. */
  FSMOE_ERROR_UNSUPPORTED = 4,
  /** A device or library (CUDA device, NCCL, cuBLAS) is not available here. */
  FSMOE_ERROR_UNAVAILABLE = 5,
  /** The plan does not fit this runtime: API version, world size, rank, a call out of order. */
  FSMOE_ERROR_MISMATCH = 6,
  /** A CUDA call failed. */
  FSMOE_ERROR_CUDA = 7,
  /** An NCCL (or other communication library) call failed. */
  FSMOE_ERROR_COMM = 8,
  /** A bug in the runtime. */
  FSMOE_ERROR_INTERNAL = 9
} fsmoe_status;

/* ---- Enumerations (the values match plan.json's enums, in the schema's order) ----------- */

/** Streams (plan.json "stream"). */
typedef enum fsmoe_stream_id {
  FSMOE_STREAM_COMPUTE = 0,
  FSMOE_STREAM_INTRA = 1,
  FSMOE_STREAM_INTER = 2,
  FSMOE_STREAM_COUNT = 3
} fsmoe_stream_id;

/** Op kinds (plan.json "kind", compiler/plan/schema.ts order). */
typedef enum fsmoe_op_kind {
  FSMOE_OP_EMBED = 0,
  FSMOE_OP_LM_HEAD = 1,
  FSMOE_OP_LOSS = 2,
  FSMOE_OP_ATTENTION = 3,
  FSMOE_OP_DENSE_FFN = 4,
  FSMOE_OP_SHARED_EXPERT = 5,
  FSMOE_OP_NORM = 6,
  FSMOE_OP_GATE = 7,
  FSMOE_OP_ORDER = 8,
  FSMOE_OP_DISPATCH_GEMM = 9,
  FSMOE_OP_EXPERT = 10,
  FSMOE_OP_COMBINE_GEMM = 11,
  FSMOE_OP_IORDER = 12,
  FSMOE_OP_ALL_TO_ALL = 13,
  FSMOE_OP_ALL_GATHER = 14,
  FSMOE_OP_REDUCE_SCATTER = 15,
  FSMOE_OP_ALL_REDUCE = 16,
  FSMOE_OP_KIND_COUNT = 17
} fsmoe_op_kind;

/** Direction of an op (plan.json "dir"). */
typedef enum fsmoe_dir { FSMOE_FWD = 0, FSMOE_BWD = 1 } fsmoe_dir;

/** Element types (the model's dtype). */
typedef enum fsmoe_dtype {
  FSMOE_DTYPE_FP32 = 0,
  FSMOE_DTYPE_BF16 = 1,
  FSMOE_DTYPE_FP16 = 2,
  FSMOE_DTYPE_FP8 = 3
} fsmoe_dtype;

/** Which links a group's traffic crosses (plan.json groups[].span). */
typedef enum fsmoe_span { FSMOE_SPAN_INTRA = 0, FSMOE_SPAN_INTER = 1, FSMOE_SPAN_BOTH = 2 } fsmoe_span;

/* ---- Descriptors (static data in the generated file) ------------------------------------ */

/** A communication group (plan.json "groups"). */
typedef struct fsmoe_group_desc {
  const char* name;          /* "tp", "esp", "ep", "edp", "dp" */
  int32_t size;              /* ranks in one instance */
  int32_t stride;            /* distance between consecutive members */
  int32_t span;              /* fsmoe_span */
  int32_t members_per_node;
  int32_t nodes;
} fsmoe_group_desc;

/** A buffer of the arena (plan.json "buffers"). */
typedef struct fsmoe_buffer_desc {
  const char* name;
  uint64_t offset;           /* in the arena */
  uint64_t bytes;
  int32_t persistent;        /* 1: lives across iterations (gradients, saved state) */
} fsmoe_buffer_desc;

/** The whole plan, given to fsmoe_plan_begin. */
typedef struct fsmoe_plan_desc {
  int32_t api_version;       /* FSMOE_RUNTIME_API_VERSION the file was generated for */
  const char* format;        /* plan.json "format", e.g. "fsmoe-plan/1" */
  const char* job;
  const char* strategy;      /* deepspeed, tutel, fsmoe, auto */
  const char* source_sha256; /* hash of the .moe source */
  /* cluster and layout */
  int32_t nodes, gpus_per_node, world_size;
  int32_t tp, esp, ep, edp;
  /* model */
  int32_t layers, hidden, vocab; /* vocab: -1 for a standalone layer */
  int32_t experts, top_k, expert_hidden, capacity0;
  int32_t dtype;             /* fsmoe_dtype */
  /* batch */
  int32_t micro_batch, seq_len, micro_batches;
  uint64_t seed;
  /* resources */
  uint64_t arena_bytes;
  int32_t num_groups;
  const fsmoe_group_desc* groups;
  int32_t num_buffers;
  const fsmoe_buffer_desc* buffers;
  int32_t num_events;
  int32_t num_ops;
  double predicted_iteration_us;
} fsmoe_plan_desc;

/** What a kernel or collective is told about its op (plan.json "ops"). */
typedef struct fsmoe_op_info {
  int32_t id;
  int32_t kind;              /* fsmoe_op_kind */
  int32_t stream;            /* fsmoe_stream_id */
  int32_t layer;             /* -1: embedding, LM head, loss */
  int32_t dir;               /* fsmoe_dir */
  int32_t micro_batch;
  int32_t chunk;             /* pipeline chunk of an MoE layer, -1: whole */
  int32_t group;             /* index into the plan's groups, -1: none */
  uint64_t elements;
  uint64_t macs;
  uint64_t bytes;            /* bytes a collective moves */
  double predicted_us;
  const char* role;          /* e.g. "dispatch", "esp_allgather", "recompute.expert" */
} fsmoe_op_info;

/** A byte range an op reads or writes, resolved to a pointer in this rank's arena. */
typedef struct fsmoe_tensor {
  void* data;
  uint64_t bytes;
  int32_t buffer;            /* buffer id */
  int32_t write;             /* 1: written, 0: read */
} fsmoe_tensor;

/* ---- Plan lifetime ---------------------------------------------------------------------- */

/** A constant name of a status ("FSMOE_OK", ...). */
const char* fsmoe_status_name(fsmoe_status status);

/**
 * Start issuing one iteration of `plan` as `rank`. The first call for a plan allocates the
 * arena and creates the streams, events and communicators; later calls check that the plan is
 * the same one. Fails with FSMOE_ERROR_MISMATCH for another API version or world size.
 */
fsmoe_status fsmoe_plan_begin(fsmoe_rt* rt, const fsmoe_plan_desc* plan, int32_t rank);

/** Finish issuing the iteration (on CUDA: end graph capture, or launch the captured graph). */
fsmoe_status fsmoe_plan_end(fsmoe_rt* rt);

/**
 * Record a failure: which op (-1 outside any op), the status, and the call that failed, for the
 * runtime's error message. Returns `status` unchanged, so generated code can `return` it.
 */
fsmoe_status fsmoe_report(fsmoe_rt* rt, int32_t op, fsmoe_status status, const char* what);

/* ---- Streams, events, memory, communicators --------------------------------------------- */

/** The stream with id `id` (fsmoe_stream_id). */
fsmoe_status fsmoe_stream(fsmoe_rt* rt, int32_t id, fsmoe_stream_t* out);

/** The event with id `id` in [0, num_events). */
fsmoe_status fsmoe_event(fsmoe_rt* rt, int32_t id, fsmoe_event_t* out);

/** Record `event` on `stream` after the work issued on it so far. */
fsmoe_status fsmoe_event_record(fsmoe_rt* rt, fsmoe_event_t event, fsmoe_stream_t stream);

/** Make later work on `stream` wait until `event`'s latest record has completed. */
fsmoe_status fsmoe_event_wait(fsmoe_rt* rt, fsmoe_stream_t stream, fsmoe_event_t event);

/** The address of `bytes` bytes at `offset` in this rank's arena (range-checked). */
fsmoe_status fsmoe_buffer(fsmoe_rt* rt, uint64_t offset, uint64_t bytes, void** out);

/** This rank's communicator for `group` (created once per plan, e.g. by ncclCommSplit). */
fsmoe_status fsmoe_comm(fsmoe_rt* rt, const fsmoe_group_desc* group, int32_t rank, fsmoe_comm_t* out);

/* ---- Kernels ----------------------------------------------------------------------------- */
/*
 * Every kernel gets its op and the byte ranges it touches, in plan.json's access order (reads
 * and writes interleaved as the compiler listed them), and enqueues its work on `stream`. Shapes
 * come from the plan given to fsmoe_plan_begin and the op's layer, direction, micro-batch and
 * chunk; `dir` selects the forward or backward kernel.
 */
#define FSMOE_KERNEL_PARAMS fsmoe_rt* rt, const fsmoe_op_info* op, const fsmoe_tensor* tensors, int32_t num_tensors, fsmoe_stream_t stream

fsmoe_status fsmoe_launch_embed(FSMOE_KERNEL_PARAMS);         /* token embedding */
fsmoe_status fsmoe_launch_lm_head(FSMOE_KERNEL_PARAMS);       /* output projection */
fsmoe_status fsmoe_launch_loss(FSMOE_KERNEL_PARAMS);          /* cross-entropy */
fsmoe_status fsmoe_launch_attention(FSMOE_KERNEL_PARAMS);     /* attention block, tensor-parallel shard */
fsmoe_status fsmoe_launch_dense_ffn(FSMOE_KERNEL_PARAMS);     /* dense FFN block */
fsmoe_status fsmoe_launch_shared_expert(FSMOE_KERNEL_PARAMS); /* always-on shared expert */
fsmoe_status fsmoe_launch_norm(FSMOE_KERNEL_PARAMS);          /* normalization */
fsmoe_status fsmoe_launch_gate(FSMOE_KERNEL_PARAMS);          /* router scores and top-k */
fsmoe_status fsmoe_launch_order(FSMOE_KERNEL_PARAMS);         /* permute tokens into expert-capacity slots */
fsmoe_status fsmoe_launch_dispatch_gemm(FSMOE_KERNEL_PARAMS); /* dispatch as a GEMM (one-hot form) */
fsmoe_status fsmoe_launch_expert_gemm(FSMOE_KERNEL_PARAMS);   /* expert FFN GEMMs of one chunk */
fsmoe_status fsmoe_launch_combine_gemm(FSMOE_KERNEL_PARAMS);  /* combine as a GEMM (one-hot form) */
fsmoe_status fsmoe_launch_iorder(FSMOE_KERNEL_PARAMS);        /* inverse permutation, weighted by gate scores */

/* ---- Collectives (on a communicator, enqueued on a stream) ------------------------------ */

/** Each member sends send_bytes / size to every member; recv_bytes == send_bytes. */
fsmoe_status fsmoe_all_to_all(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t send_bytes, void* recv, uint64_t recv_bytes,
                              int32_t dtype, fsmoe_stream_t stream);

/** Member i's send_bytes land at recv + i * send_bytes; recv_bytes == size * send_bytes. */
fsmoe_status fsmoe_all_gather(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t send_bytes, void* recv, uint64_t recv_bytes,
                              int32_t dtype, fsmoe_stream_t stream);

/** Sum over members of send, member i keeps block i; send_bytes == size * recv_bytes. */
fsmoe_status fsmoe_reduce_scatter(fsmoe_rt* rt, fsmoe_comm_t comm, const void* send, uint64_t send_bytes, void* recv, uint64_t recv_bytes,
                                  int32_t dtype, fsmoe_stream_t stream);

/** In-place sum over members of every piece (a gradient bucket may span several buffers). */
fsmoe_status fsmoe_all_reduce(fsmoe_rt* rt, fsmoe_comm_t comm, const fsmoe_tensor* pieces, int32_t num_pieces, int32_t dtype,
                              fsmoe_stream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* FSMOE_RUNTIME_H */
