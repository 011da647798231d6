/*
** test_memory_limit.c: memory sizes from text (fv_parse_size), what the
** job holds (fv_memory_in_use) and the refusal of a request that would
** bring it above the limit, before anything is allocated (issue 12 item
** 6).  Criterion runs each test in its own process, so the process-wide
** limit and counters start fresh in each.
*/
#include <criterion/criterion.h>
#include <stdlib.h>

#include "expect_error.h"
#include "fovea/fovea.h"
#include "fovea/tensor.h"
#include "base/base_internal.h"

#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

static size_t size_of(const char *text)
{
	size_t n = 0;
	cr_assert_eq(fv_parse_size(text, &n), FV_OK, "'%s': %s", text, fv_errmsg());
	return n;
}

Test(memory_limit, sizes_with_and_without_units)
{
	cr_assert_eq(size_of("1073741824"), GIB);
	cr_assert_eq(size_of("1"), 1);
	cr_assert_eq(size_of("100b"), 100);
	cr_assert_eq(size_of("64k"), 64 * 1024);
	cr_assert_eq(size_of("512M"), 512 * MIB);
	cr_assert_eq(size_of("512MB"), 512 * MIB);
	cr_assert_eq(size_of("4G"), 4 * GIB);
	cr_assert_eq(size_of("4g"), 4 * GIB);
	cr_assert_eq(size_of("1.5GiB"), 3 * GIB / 2);
	cr_assert_eq(size_of("2TB"), 2048 * GIB);
	cr_assert_eq(size_of(" 8G"), 8 * GIB);
	cr_assert_eq(size_of(".5K"), 512);
}

Test(memory_limit, what_is_not_a_size_is_refused)
{
	const char *bad[] = {"", "0", "0G", "-1", "-4G", "lots", "4X", "4GG", "4 G", "nan", "inf",
	                     "1e30", "1e19", "4Gi B", "G", "0.1"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		size_t n = 12345;
		EXPECT_ERROR(fv_parse_size(bad[i], &n), FV_ERR_ARG, "is not a memory size",
		             "512M, 4G, 1.5GiB");
		cr_assert_eq(n, 12345, "'%s' changed the output", bad[i]);
	}
	size_t n;
	EXPECT_ERROR(fv_parse_size(NULL, &n), FV_ERR_ARG, "NULL");
	EXPECT_ERROR(fv_parse_size("4G", NULL), FV_ERR_ARG, "NULL");
}

Test(memory_limit, tensors_are_counted_while_they_live)
{
	size_t before = fv_memory_in_use();
	int64_t shape[1] = {(int64_t)(8 * MIB / sizeof(fv_real))};
	fv_tensor *t = fv_tensor_new(1, shape);
	cr_assert_not_null(t);
	cr_assert_geq(fv_memory_in_use(), before + 8 * MIB);
	fv_tensor_free(t);
	cr_assert_eq(fv_memory_in_use(), before);
}

Test(memory_limit, a_tensor_above_the_limit_is_refused_before_allocating)
{
	cr_assert_eq(fv_set_max_memory(100 * MIB), FV_OK);
	int64_t big[2] = {1000000000, 1000000000}; /* 4 EB: calloc would fail or abort (ASan) */
	cr_assert_null(fv_tensor_new(2, big));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOMEM, "a tensor of shape (1000000000, 1000000000)",
	             "needs 3725290298.5 GiB", "more than the limit of 100.0 MiB (--max-memory");
	/* what the job holds counts: two of 60 MiB do not fit in 100 */
	int64_t shape[1] = {(int64_t)(60 * MIB / sizeof(fv_real))};
	fv_tensor *a = fv_tensor_new(1, shape);
	cr_assert_not_null(a, "%s", fv_errmsg());
	cr_assert_null(fv_tensor_new(1, shape));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOMEM, "needs 60.0 MiB; with the 60.0 MiB the job holds",
	             "that is 120.0 MiB, more than the limit of 100.0 MiB");
	fv_tensor_free(a);
	fv_tensor *b = fv_tensor_new(1, shape);
	cr_assert_not_null(b, "freed memory is available again: %s", fv_errmsg());
	fv_tensor_free(b);
}

Test(memory_limit, without_a_limit_the_machine_is_the_limit)
{
	cr_assert_gt(fv_memory_available(), 0);
	int64_t big[2] = {1000000000, 1000000000};
	cr_assert_null(fv_tensor_new(2, big));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOMEM, "GiB this machine has available");
}

Test(memory_limit, the_arena_stops_growing_at_the_limit)
{
	fv_set_max_memory(64 * MIB);
	fv_ctx *ctx = fv_ctx_new();
	cr_assert_not_null(ctx);
	cr_assert_not_null(fv_ctx_alloc(ctx, 40 * MIB), "%s", fv_errmsg());
	cr_assert_null(fv_ctx_alloc(ctx, 40 * MIB));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOMEM, "one step's activations and gradients (40.0 MiB so "
	             "far) needs 40.0 MiB", "limit of 64.0 MiB");
	/* a request that fits still does, even though doubling the chunk would not */
	cr_assert_not_null(fv_ctx_alloc(ctx, 20 * MIB), "%s", fv_errmsg());
	fv_ctx_free(ctx);
}

Test(memory_limit, the_environment_sets_a_limit_too)
{
	int64_t shape[1] = {(int64_t)(80 * MIB / sizeof(fv_real))};
	setenv("FOVEA_MAX_MEMORY", "50M", 1);
	cr_assert_null(fv_tensor_new(1, shape));
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOMEM, "needs 80.0 MiB", "limit of 50.0 MiB");
	/* fv_set_max_memory wins over the environment */
	fv_set_max_memory(100 * MIB);
	fv_tensor *t = fv_tensor_new(1, shape);
	cr_assert_not_null(t, "%s", fv_errmsg());
	fv_tensor_free(t);
	fv_set_max_memory(0);
	setenv("FOVEA_MAX_MEMORY", "lots", 1);
	cr_assert_null(fv_tensor_new(1, shape));
	EXPECT_ERROR(fv_errcode(), FV_ERR_ARG, "FOVEA_MAX_MEMORY: 'lots' is not a memory size");
}

Test(memory_limit, reservations_count_as_held)
{
	fv_set_max_memory(100 * MIB);
	cr_assert(fv__memory_fits(90.0 * MIB));
	fv__memory_reserve(30 * MIB);
	cr_assert(!fv__memory_fits(90.0 * MIB));
	EXPECT_ERROR(fv__memory_check(90.0 * MIB, "X"), FV_ERR_NOMEM,
	             "X needs 90.0 MiB; with the 30.0 MiB the job holds or has reserved");
	fv__memory_unreserve(30 * MIB);
	cr_assert(fv__memory_fits(90.0 * MIB));
	cr_assert_eq(fv__memory_check(90.0 * MIB, "X"), FV_OK);
}
