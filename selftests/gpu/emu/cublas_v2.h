// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * cuBLAS stand-in for the CPU emulation (see cuda_runtime.h here): cublasSgemm
 * is cblas_sgemm in column-major order, which takes the same arguments, after
 * the argument checks cuBLAS makes (so a wrong leading dimension fails here as
 * it fails there).
 */
#ifndef CPN_EMU_CUBLAS_V2_H
#define CPN_EMU_CUBLAS_V2_H

#include <cblas.h>

#include "cuda_runtime.h"

typedef enum {
	CUBLAS_STATUS_SUCCESS = 0,
	CUBLAS_STATUS_NOT_INITIALIZED = 1,
	CUBLAS_STATUS_ALLOC_FAILED = 3,
	CUBLAS_STATUS_INVALID_VALUE = 7,
} cublasStatus_t;

typedef enum {
	CUBLAS_OP_N = 0,
	CUBLAS_OP_T = 1,
} cublasOperation_t;

typedef enum {
	CUBLAS_DEFAULT_MATH = 0,
} cublasMath_t;

struct emu_cublas {
	cudaStream_t stream;
};
typedef struct emu_cublas *cublasHandle_t;

static inline const char *cublasGetStatusString(cublasStatus_t s)
{
	return s == CUBLAS_STATUS_SUCCESS	  ? "CUBLAS_STATUS_SUCCESS"
	       : s == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE"
						  : "CUBLAS_STATUS_ERROR";
}

static inline cublasStatus_t cublasCreate(cublasHandle_t *h)
{
	*h = new emu_cublas();
	return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasDestroy(cublasHandle_t h)
{
	delete h;
	return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
	h->stream = s;
	return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t m)
{
	return m == CUBLAS_DEFAULT_MATH ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

static inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta,
					 cublasOperation_t tb, int m, int n, int k,
					 const float *alpha, const float *A, int lda,
					 const float *B, int ldb, const float *beta, float *C,
					 int ldc)
{
	int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;

	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (m < 0 || n < 0 || k < 0 || lda < (rows_a > 1 ? rows_a : 1) ||
	    ldb < (rows_b > 1 ? rows_b : 1) || ldc < (m > 1 ? m : 1))
		return CUBLAS_STATUS_INVALID_VALUE;
	if (m == 0 || n == 0)
		return CUBLAS_STATUS_SUCCESS;
	openblas_set_num_threads(1);
	cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
		    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, *alpha, A, lda, B, ldb,
		    *beta, C, ldc);
	return CUBLAS_STATUS_SUCCESS;
}

#endif /* CPN_EMU_CUBLAS_V2_H */
