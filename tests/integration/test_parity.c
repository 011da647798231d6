/*
** test_parity.c: every openretina reference case of tests/golden that
** fovea's components cover, one Criterion test each, run through the same
** fv_parity_run() as `fovea parity`.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parity.h"
#include "fovea/plugin.h"

static fv_registry *load_registry(void)
{
	char dir[1024];
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	snprintf(dir, sizeof dir, "%s/plugins", build);
	fv_registry *reg = fv_registry_new();
	cr_assert_not_null(reg);
	cr_assert_eq(fv_registry_load_dir(reg, dir), FV_OK, "%s", fv_errmsg());
	return reg;
}

static void run_case(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/golden/%s", FOVEA_TEST_SRCDIR, name);
	fv_registry *reg = load_registry();
	fv_status rc = fv_parity_run(reg, path, stderr);
	fv_registry_free(reg);
	cr_assert_eq(rc, FV_OK, "%s", fv_errmsg());
}

#define PARITY_CASE(name) \
	Test(parity, name) { run_case(#name); }

/* The harness itself must fail on what it cannot check. */
Test(parity_harness, missing_case_fails)
{
	fv_registry *reg = load_registry();
	fv_status rc = fv_parity_run(reg, "/nonexistent/case", NULL);
	fv_registry_free(reg);
	cr_assert_neq(rc, FV_OK);
	cr_assert(strstr(fv_errmsg(), "/nonexistent/case.yaml") != NULL, "%s", fv_errmsg());
}

#include "parity_cases.inc"
