// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Backend choice: "cpu", "cuda" or "auto" (NULL or "" mean "auto").
 *
 * "cuda" and "auto" dlopen() libcpn_cuda.so from so_dir (NULL: the directory
 * of the running executable, from /proc/self/exe), look up CPN_CUDA_ENTRY and
 * call it; the entry returns NULL with a reason when no GPU can be used.
 * "cuda" then fails with that reason in err. "auto" quietly takes the CPU
 * backend instead: nothing is printed, and err (when given) holds why CUDA was
 * not taken, for a caller that wants to log it; it is "" when CUDA was taken.
 *
 * A library that loaded stays loaded (its ops are used for the life of the
 * process); one whose entry found no GPU is left loaded too, since unloading
 * the CUDA runtime after it initialised is not safe.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cpn_kernels.h"

#define CPN_CUDA_SO "libcpn_cuda.so"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The CUDA backend, or NULL with the reason in err. */
static const struct cpn_backend_ops *load_cuda(const char *so_dir, char *err, size_t errlen)
{
	char path[PATH_MAX + sizeof(CPN_CUDA_SO) + 1], exe[PATH_MAX], why[256] = "";
	const struct cpn_backend_ops *ops;
	cpn_cuda_entry_fn entry;
	void *h;

	if (!so_dir || !*so_dir) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		char *slash;

		if (n <= 0) {
			seterr(err, errlen, "cannot find the executable's directory: %s",
			       n < 0 ? strerror(errno) : "empty link");
			return NULL;
		}
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash == exe)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		else
			strcpy(exe, ".");
		so_dir = exe;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", so_dir, CPN_CUDA_SO) >= sizeof(path)) {
		seterr(err, errlen, "%s: directory name too long", CPN_CUDA_SO);
		return NULL;
	}
	if (access(path, F_OK)) {
		seterr(err, errlen, "%s: %s (built only where nvcc is present)", path,
		       strerror(errno));
		return NULL;
	}
	dlerror();
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();

		seterr(err, errlen, "cannot load %s", e ? e : path);
		return NULL;
	}
	entry = (cpn_cuda_entry_fn)dlsym(h, CPN_CUDA_ENTRY);
	if (!entry) {
		seterr(err, errlen, "%s has no %s", path, CPN_CUDA_ENTRY);
		dlclose(h);
		return NULL;
	}
	ops = entry(why, sizeof(why));
	if (!ops) {
		seterr(err, errlen, "%s", why[0] ? why : "no usable GPU");
		return NULL; /* h stays loaded: see above */
	}
	return ops;
}

const struct cpn_backend_ops *cpn_backend_pick(const char *want, const char *so_dir, char *err,
					       size_t errlen)
{
	const struct cpn_backend_ops *ops;
	char why[PATH_MAX + 256];

	if (!want || !*want)
		want = "auto";
	if (!strcmp(want, "cpu")) {
		seterr(err, errlen, "%s", "");
		return &cpn_backend_cpu;
	}
	if (strcmp(want, "cuda") && strcmp(want, "auto")) {
		seterr(err, errlen, "unknown backend '%s' (auto, cuda, cpu)", want);
		return NULL;
	}
	ops = load_cuda(so_dir, why, sizeof(why));
	if (ops) {
		seterr(err, errlen, "%s", "");
		return ops;
	}
	seterr(err, errlen, "cuda backend: %s", why);
	return strcmp(want, "auto") ? NULL : &cpn_backend_cpu;
}
