/*
** data_step_testing.h: what the data-step tests share: a registry holding
** one plugin file of the build.
*/
#ifndef FOVEA_TEST_DATA_STEP_TESTING_H
#define FOVEA_TEST_DATA_STEP_TESTING_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "fovea/plugin.h"

/* A registry with $FOVEA_BUILD_DIR/plugins/<rel> loaded. */
static inline fv_registry *dt_registry_with(const char *rel)
{
	const char *build = getenv("FOVEA_BUILD_DIR");
	cr_assert_not_null(build, "FOVEA_BUILD_DIR is not set (run through meson test)");
	char so[1024];
	snprintf(so, sizeof so, "%s/plugins/%s", build, rel);
	fv_registry *r = fv_registry_new();
	cr_assert_not_null(r);
	cr_assert_eq(fv_registry_load_file(r, so), FV_OK, "%s", fv_errmsg());
	return r;
}

#endif /* FOVEA_TEST_DATA_STEP_TESTING_H */
