/*
 * cublas_abi.h: the part of cuBLAS's C ABI that fsmoe's CUDA backend calls, declared here so that
 * nothing includes <cublas_v2.h> (TOOLCHAIN.md §3.3: no cuBLAS headers on the build machines; the
 * library is opened at run time, libcublas.so.13 then .12, by cublas.h/.cc in this folder). Enum
 * values and signatures follow cuBLAS's documented public API (cublas_api.h, CUDA 12 and 13; the
 * `_v2` entry points are the exported names of cublasCreate, cublasSetStream, ...).
 */
#ifndef FSMOE_CUBLAS_ABI_H
#define FSMOE_CUBLAS_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cublasContext* cublasHandle_t;
typedef struct CUstream_st* fsmoe_cublas_stream_t;

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;

/** cublasMath_t (only the values used). */
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;

/** cublasComputeType_t. */
typedef enum {
  CUBLAS_COMPUTE_16F = 64,
  CUBLAS_COMPUTE_16F_PEDANTIC = 65,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_32F_FAST_16F = 74,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77
} cublasComputeType_t;

/** cudaDataType_t values (library_types.h) of the element types used. */
typedef enum { FSMOE_CUDA_R_32F = 0, FSMOE_CUDA_R_16F = 2, FSMOE_CUDA_R_16BF = 14 } fsmoe_cuda_data_type;

/** cublasGemmAlgo_t: CUBLAS_GEMM_DEFAULT. */
#define FSMOE_CUBLAS_GEMM_DEFAULT (-1)

typedef cublasStatus_t (*cublasCreate_fn)(cublasHandle_t* handle);
typedef cublasStatus_t (*cublasDestroy_fn)(cublasHandle_t handle);
typedef cublasStatus_t (*cublasGetVersion_fn)(cublasHandle_t handle, int* version);
typedef cublasStatus_t (*cublasSetStream_fn)(cublasHandle_t handle, fsmoe_cublas_stream_t stream);
typedef cublasStatus_t (*cublasSetWorkspace_fn)(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
typedef cublasStatus_t (*cublasSetMathMode_fn)(cublasHandle_t handle, int mode /* cublasMath_t */);
typedef const char* (*cublasGetStatusString_fn)(cublasStatus_t status);
typedef cublasStatus_t (*cublasGemmEx_fn)(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype,
                                          int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc,
                                          int computeType, int algo);
typedef cublasStatus_t (*cublasGemmStridedBatchedEx_fn)(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,
                                                        const void* A, int Atype, int lda, long long strideA, const void* B, int Btype, int ldb,
                                                        long long strideB, const void* beta, void* C, int Ctype, int ldc, long long strideC,
                                                        int batchCount, int computeType, int algo);

#ifdef __cplusplus
}
#endif

#endif /* FSMOE_CUBLAS_ABI_H */
