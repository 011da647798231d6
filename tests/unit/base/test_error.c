/*
** test_error.c: the per-thread error state: fv_errmsg() and fv_errcode()
** set together by fv_error(), kept by fv_error_prefix(), cleared by
** fv_clear_error(), and a message that restates the current one.
*/
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "expect_error.h"
#include "fovea/fovea.h"

Test(error, errcode_is_the_code_of_the_last_failure)
{
	fv_clear_error();
	cr_assert_eq(fv_errcode(), FV_OK);
	cr_assert_str_eq(fv_errmsg(), "");
	cr_assert_eq(fv_error(FV_ERR_SHAPE, "a %s b", "[2]"), FV_ERR_SHAPE);
	EXPECT_ERROR(fv_errcode(), FV_ERR_SHAPE, "a [2] b");
	fv_error(FV_ERR_NOTFOUND, "no '%s'", "x");
	EXPECT_ERROR(fv_errcode(), FV_ERR_NOTFOUND, "no 'x'");
	fv_clear_error();
	cr_assert_eq(fv_errcode(), FV_OK, "cleared with the message");
	cr_assert_str_eq(fv_errmsg(), "");
}

Test(error, a_prefix_keeps_the_code)
{
	fv_error(FV_ERR_IO, "cannot open");
	fv_error_prefix("loading %s: ", "f.yaml");
	cr_assert_eq(fv_errcode(), FV_ERR_IO);
	cr_assert_str_eq(fv_errmsg(), "loading f.yaml: cannot open");
}

/* The callee's message and code passed on in the caller's words: the
** message is an argument of the new one, which must not read what it is
** overwriting. */
Test(error, a_message_can_restate_the_current_one)
{
	fv_error(FV_ERR_FORMAT, "%s: truncated after %d bytes", "w.safetensors", 12);
	cr_assert_eq(fv_error(fv_errcode(), "loading the model: %s (%s)", fv_errmsg(), fv_errmsg()),
	             FV_ERR_FORMAT);
	cr_assert_str_eq(fv_errmsg(), "loading the model: w.safetensors: truncated after 12 bytes "
	                              "(w.safetensors: truncated after 12 bytes)");
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	fv_error(FV_ERR_ARG, "%s", big);
	fv_error(fv_errcode(), "again: %s", fv_errmsg());
	cr_assert_eq(strncmp(fv_errmsg(), "again: xxx", 10), 0);
	cr_assert_eq(fv_errcode(), FV_ERR_ARG);
	cr_assert(strlen(fv_errmsg()) < sizeof big, "a long message is cut, not overflowed");
}

/* Every code has a name of its own for messages ("...: out of memory"). */
Test(error, each_status_has_a_name)
{
	static const struct {
		fv_status code;
		const char *name;
	} names[] = {
		{FV_OK, "ok"}, {FV_ERR_NOMEM, "out of memory"}, {FV_ERR_IO, "i/o error"},
		{FV_ERR_FORMAT, "bad file format"}, {FV_ERR_CONFIG, "configuration error"},
		{FV_ERR_SHAPE, "shape mismatch"}, {FV_ERR_ARG, "invalid argument"},
		{FV_ERR_PLUGIN, "plugin error"}, {FV_ERR_NOTFOUND, "not found"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		cr_expect_str_eq(fv_status_name(names[i].code), names[i].name);
	cr_expect_str_eq(fv_status_name((fv_status)-99), "unknown error");
	fv_error(FV_ERR_SHAPE, "x");
	cr_expect_str_eq(fv_status_name(fv_errcode()), "shape mismatch");
}

static void *fail_in_thread(void *arg)
{
	(void)arg;
	fv_error(FV_ERR_NOMEM, "in the thread");
	return (void *)(fv_errcode() == FV_ERR_NOMEM ? "ok" : NULL);
}

Test(error, each_thread_has_its_own_error)
{
	fv_error(FV_ERR_CONFIG, "in the main thread");
	pthread_t t;
	void *ret = NULL;
	cr_assert_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
	cr_assert_eq(pthread_join(t, &ret), 0);
	cr_assert_not_null(ret);
	EXPECT_ERROR(fv_errcode(), FV_ERR_CONFIG, "in the main thread");
}
