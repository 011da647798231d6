/*
** expect_error.h: the check every error path of the framework gets: the
** status returned is the one documented and the message (fv_errmsg) says
** what the caller needs, checked fragment by fragment:
**
**     EXPECT_ERROR(fv_config_override(cfg, "~nope"), FV_ERR_CONFIG,
**                  "override '~nope'", "it does not exist");
*/
#ifndef FOVEA_TEST_EXPECT_ERROR_H
#define FOVEA_TEST_EXPECT_ERROR_H

#include <criterion/criterion.h>
#include <string.h>

#include "fovea/fovea.h"

/* The status is `code` and the message contains every fragment
** (`fragments` is NULL-terminated). */
static inline void expect_error(fv_status st, fv_status code, const char *const *fragments)
{
	cr_assert_eq(st, code, "status %d, expected %d (message: %s)", st, code, fv_errmsg());
	for (size_t i = 0; fragments[i] != NULL; i++)
		cr_assert(strstr(fv_errmsg(), fragments[i]) != NULL, "message \"%s\" lacks \"%s\"",
		          fv_errmsg(), fragments[i]);
}

#define EXPECT_ERROR(st, code, ...) \
	expect_error((st), (code), (const char *const[]){__VA_ARGS__, NULL})

#endif /* FOVEA_TEST_EXPECT_ERROR_H */
