/*
 * nccl_abi.h: the part of NCCL's C ABI that fsmoe's CUDA backend calls, declared here so that
 * nothing includes <nccl.h> (TOOLCHAIN.md §3.3: no NCCL headers on the build machines). Types,
 * enum values and function signatures follow NCCL's documented public API (nccl.h, 2.x; the values
 * are stable across 2.x releases). The library itself is opened at run time with dlopen
 * (nccl.h/.cc in this folder), so these are function pointer types, never declarations to link.
 *
 * - ncclComm_t is an opaque pointer; ncclConfig_t is never mirrored (its layout is versioned):
 *   ncclCommSplit is always called with config = NULL, so a child inherits its parent's config.
 * - cudaStream_t is `struct CUstream_st*` in the CUDA runtime; it is declared the same way here, so
 *   this header needs no CUDA header either.
 */
#ifndef FSMOE_NCCL_ABI_H
#define FSMOE_NCCL_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ncclComm* ncclComm_t;
typedef struct CUstream_st* fsmoe_nccl_stream_t;

#define FSMOE_NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[FSMOE_NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

/** NCCL_SPLIT_NOCOLOR: ranks that pass it to ncclCommSplit get no child communicator. */
#define FSMOE_NCCL_SPLIT_NOCOLOR (-1)

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
} ncclResult_t;

typedef enum {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9
} ncclDataType_t;

typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;

/* Function pointer types, one per entry point used (names as exported by libnccl.so.2). */
typedef ncclResult_t (*ncclGetVersion_fn)(int* version);
typedef ncclResult_t (*ncclGetUniqueId_fn)(ncclUniqueId* uniqueId);
typedef ncclResult_t (*ncclCommInitRank_fn)(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
typedef ncclResult_t (*ncclCommSplit_fn)(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, void* config /* ncclConfig_t*, always NULL */);
typedef ncclResult_t (*ncclCommDestroy_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommAbort_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommGetAsyncError_fn)(ncclComm_t comm, ncclResult_t* asyncError);
typedef ncclResult_t (*ncclCommCount_fn)(const ncclComm_t comm, int* count);
typedef ncclResult_t (*ncclCommUserRank_fn)(const ncclComm_t comm, int* rank);
typedef const char* (*ncclGetErrorString_fn)(ncclResult_t result);
typedef const char* (*ncclGetLastError_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclGroupStart_fn)(void);
typedef ncclResult_t (*ncclGroupEnd_fn)(void);
typedef ncclResult_t (*ncclSend_fn)(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, fsmoe_nccl_stream_t stream);
typedef ncclResult_t (*ncclRecv_fn)(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm, fsmoe_nccl_stream_t stream);
typedef ncclResult_t (*ncclAllGather_fn)(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype, ncclComm_t comm,
                                         fsmoe_nccl_stream_t stream);
typedef ncclResult_t (*ncclReduceScatter_fn)(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype, ncclRedOp_t op,
                                             ncclComm_t comm, fsmoe_nccl_stream_t stream);
typedef ncclResult_t (*ncclAllReduce_fn)(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                         fsmoe_nccl_stream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* FSMOE_NCCL_ABI_H */
