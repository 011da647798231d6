/*
** blis_arch.c: BLIS's kernels for processors it does not recognise.
**
** BLIS 0.9 (Debian's) picks its kernels by processor family and model and
** knows none after AMD's Zen 3: on a Zen 4 it falls back to its generic C
** kernels, about 4.5x slower than its Skylake-X ones there (a 1280 x 100 x
** 768 sgemm, the readout's: 24 against 113 GFLOP/s on one core), and every
** GEMM of fovea with them (the readout, the dense conv3d).  BLIS reads
** BLIS_ARCH_TYPE, an architecture id, once, when it first runs; so before
** anything can call it (a constructor of the library), a processor with
** the AVX-512 subsets the Skylake-X kernels use gets them, unless the user
** chose an architecture.  On the processors BLIS does recognise with those
** subsets it picks the same kernels itself, so this changes nothing there.
*/
#include <stdio.h>
#include <stdlib.h>

#include <blis.h>

#include "tensor/tensor_internal.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && defined(BLIS_CONFIG_SKX)
bool fv__blis_arch_wanted(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
	       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

__attribute__((constructor)) static void choose_blis_arch(void)
{
	if (getenv("BLIS_ARCH_TYPE") != NULL || !fv__blis_arch_wanted())
		return;
	char id[16];
	snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
	setenv("BLIS_ARCH_TYPE", id, 0);
}
#else
bool fv__blis_arch_wanted(void)
{
	return false;
}
#endif
