// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A CUDA stand-in on the CPU, just enough of it for gpu/cuda/backend_cuda.cu,
 * so that the backend's host logic and kernels run and are tested on machines
 * without a GPU (selftests/gpu/test_cuda.c against build/selftests/gpu/emu/
 * libcpn_cuda.so). Not a simulator of timing or of memory spaces: device
 * memory is host memory (malloc, so AddressSanitizer sees every out-of-bounds
 * access a kernel or a copy makes), a stream runs everything at once.
 *
 * Kernels run with real concurrency: one CPU thread per CUDA thread of a block
 * (a pool of blockDim.x threads that take the blocks one after another), with
 * __syncthreads() a barrier of the block and __shfl_down_sync() an exchange
 * between the 32 threads of a warp with a barrier of the warp on each side, so
 * a divergent barrier or shuffle hangs here as it would misbehave there.
 * Launches run one at a time.
 */
#ifndef CPN_EMU_CUDA_RUNTIME_H
#define CPN_EMU_CUDA_RUNTIME_H

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

#define CUDART_VERSION 13000

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
/* one block at a time: a function-level static is the block's shared memory */
#define __shared__ static

struct dim3 {
	unsigned x, y, z;
	dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_)
	{
	}
};

static thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

enum cudaError {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInsufficientDriver = 35,
	cudaErrorNoDevice = 100,
	cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
	cudaMemcpyHostToHost,
	cudaMemcpyHostToDevice,
	cudaMemcpyDeviceToHost,
	cudaMemcpyDeviceToDevice,
};

#define cudaStreamNonBlocking 1
#define cudaHostAllocDefault  0

struct emu_stream {
	int unused;
};
typedef struct emu_stream *cudaStream_t;

struct cudaDeviceProp {
	char name[256];
	int major, minor;
	int multiProcessorCount;
};

struct cudaFuncAttributes {
	int maxThreadsPerBlock;
};

static cudaError_t emu_last_error = cudaSuccess;

static inline const char *cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return "no error";
	case cudaErrorMemoryAllocation:
		return "out of memory";
	case cudaErrorInsufficientDriver:
		return "CUDA driver version is insufficient for CUDA runtime version";
	case cudaErrorNoDevice:
		return "no CUDA-capable device is detected";
	case cudaErrorLaunchFailure:
		return "unspecified launch failure";
	default:
		return "invalid argument";
	}
}

static inline cudaError_t cudaGetLastError(void)
{
	cudaError_t e = emu_last_error;

	emu_last_error = cudaSuccess;
	return e;
}

/* CPN_EMU_NO_DEVICE=1 in the environment: no device, as on a machine without one. */
static inline cudaError_t cudaGetDeviceCount(int *n)
{
	const char *no = getenv("CPN_EMU_NO_DEVICE");

	*n = no && *no == '1' ? 0 : 1;
	return *n ? cudaSuccess : cudaErrorNoDevice;
}

static inline cudaError_t cudaGetDevice(int *d)
{
	*d = 0;
	return cudaSuccess;
}

static inline cudaError_t cudaSetDevice(int d)
{
	return d == 0 ? cudaSuccess : cudaErrorInvalidValue;
}

static inline cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d)
{
	if (d != 0)
		return cudaErrorInvalidValue;
	memset(p, 0, sizeof(*p));
	strcpy(p->name, "emulated GPU (CPU threads)");
	p->major = 9;
	p->minor = 0;
	p->multiProcessorCount = 1;
	return cudaSuccess;
}

template <class T>
static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *a, T *)
{
	a->maxThreadsPerBlock = 1024;
	return cudaSuccess;
}

static inline cudaError_t cudaMalloc(void **p, size_t n)
{
	*p = malloc(n ? n : 1);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

static inline cudaError_t cudaFree(void *p)
{
	free(p);
	return cudaSuccess;
}

static inline cudaError_t cudaHostAlloc(void **p, size_t n, unsigned)
{
	return cudaMalloc(p, n);
}

static inline cudaError_t cudaFreeHost(void *p)
{
	return cudaFree(p);
}

static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind)
{
	memcpy(d, s, n);
	return cudaSuccess;
}

static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k,
					  cudaStream_t)
{
	return cudaMemcpy(d, s, n, k);
}

static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
	*s = new emu_stream();
	return cudaSuccess;
}

static inline cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	delete s;
	return cudaSuccess;
}

static inline cudaError_t cudaStreamSynchronize(cudaStream_t)
{
	return cudaSuccess;
}

static inline cudaError_t cudaDeviceSynchronize(void)
{
	return cudaSuccess;
}

/* ---- kernels on CPU threads ------------------------------------------- */

struct emu_block_pool {
	unsigned nthreads = 0;
	std::vector<std::thread> threads;
	pthread_barrier_t start, done, block;
	std::vector<pthread_barrier_t> warp;
	std::vector<unsigned long long> lanes; /* shuffle slots, one a thread */
	std::function<void()> body;
	dim3 grid;
	bool quit = false;
};

static std::mutex emu_launch_lock;
static emu_block_pool *emu_pool;
static thread_local emu_block_pool *emu_self;

static inline void __syncthreads(void)
{
	pthread_barrier_wait(&emu_self->block);
}

/* Every thread of the warp publishes v, takes src's, as a shuffle does. */
template <class T> static inline T emu_shfl(T v, unsigned src)
{
	static_assert(sizeof(T) <= 8, "shuffles of up to 8 bytes");
	unsigned t = threadIdx.x;
	pthread_barrier_t *wb = &emu_self->warp[t >> 5];
	unsigned long long bits = 0;
	T r;

	memcpy(&bits, &v, sizeof(T));
	emu_self->lanes[t] = bits;
	pthread_barrier_wait(wb);
	bits = emu_self->lanes[(t & ~31u) + src];
	memcpy(&r, &bits, sizeof(T));
	pthread_barrier_wait(wb);
	return r;
}

template <class T> static inline T __shfl_xor_sync(unsigned, T v, int mask)
{
	return emu_shfl(v, ((threadIdx.x & 31) ^ (unsigned)mask) & 31);
}

template <class T> static inline T __shfl_down_sync(unsigned, T v, unsigned off)
{
	unsigned lane = threadIdx.x & 31;

	return emu_shfl(v, lane + off < 32 ? lane + off : lane);
}

static inline unsigned __float_as_uint(float f)
{
	unsigned u;

	memcpy(&u, &f, 4);
	return u;
}

static inline float __uint_as_float(unsigned u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static void emu_worker(emu_block_pool *p, unsigned t)
{
	emu_self = p;
	for (;;) {
		pthread_barrier_wait(&p->start);
		if (p->quit)
			return;
		threadIdx = dim3(t);
		blockDim = dim3(p->nthreads);
		gridDim = p->grid;
		for (unsigned z = 0; z < p->grid.z; z++)
			for (unsigned y = 0; y < p->grid.y; y++)
				for (unsigned x = 0; x < p->grid.x; x++) {
					blockIdx = dim3(x, y, z);
					p->body();
					/* the block's shared memory is the next one's */
					pthread_barrier_wait(&p->block);
				}
		pthread_barrier_wait(&p->done);
	}
}

static void emu_pool_stop(void)
{
	emu_block_pool *p = emu_pool;

	if (!p)
		return;
	p->quit = true;
	pthread_barrier_wait(&p->start);
	for (auto &th : p->threads)
		th.join();
	pthread_barrier_destroy(&p->start);
	pthread_barrier_destroy(&p->done);
	pthread_barrier_destroy(&p->block);
	for (auto &w : p->warp)
		pthread_barrier_destroy(&w);
	delete p;
	emu_pool = NULL;
}

static emu_block_pool *emu_pool_get(unsigned nthreads)
{
	emu_block_pool *p = emu_pool;

	if (p && p->nthreads == nthreads)
		return p;
	emu_pool_stop();
	p = new emu_block_pool();
	p->nthreads = nthreads;
	pthread_barrier_init(&p->start, NULL, nthreads + 1);
	pthread_barrier_init(&p->done, NULL, nthreads + 1);
	pthread_barrier_init(&p->block, NULL, nthreads);
	p->warp.resize(nthreads / 32);
	for (auto &w : p->warp)
		pthread_barrier_init(&w, NULL, 32);
	p->lanes.resize(nthreads);
	for (unsigned t = 0; t < nthreads; t++)
		p->threads.emplace_back(emu_worker, p, t);
	emu_pool = p;
	return p;
}

/* The pool's threads are stopped when the library is unloaded or the
 * process exits, so that no thread outlives the code it runs. */
__attribute__((destructor)) static void emu_fini(void)
{
	emu_pool_stop();
}

template <class T> struct emu_same {
	typedef T type;
};

/* The arguments convert to the kernel's parameter types, as in a <<<>>> launch. */
template <class... P>
static void emu_launch(void (*kernel)(P...), dim3 grid, dim3 block,
		       typename emu_same<P>::type... args)
{
	std::lock_guard<std::mutex> lock(emu_launch_lock);
	emu_block_pool *p;

	if (block.x == 0 || block.x % 32 || block.x > 1024 || block.y != 1 || block.z != 1 ||
	    grid.x == 0 || grid.y == 0 || grid.y > 65535 || grid.z == 0) {
		emu_last_error = cudaErrorInvalidValue;
		return;
	}
	p = emu_pool_get(block.x);
	p->grid = grid;
	p->body = [&]() { kernel(args...); };
	pthread_barrier_wait(&p->start);
	pthread_barrier_wait(&p->done);
	p->body = nullptr;
}

#define CPN_LAUNCH(kernel, grid, block, stream, ...) emu_launch(kernel, grid, block, __VA_ARGS__)

#endif /* CPN_EMU_CUDA_RUNTIME_H */
