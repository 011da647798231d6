/*
** test_data_files.c: the get_local_file_path data step (plugins/data/):
** local paths, remote files found in the cache directory as openretina's
** is_target_present finds them, and zip archives unpacked as its
** unzip_and_cleanup unpacks them.  Archives are written here with libzip;
** nothing touches the network.
*/
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "data_step_testing.h"
#include "expect_error.h"
#include "fovea/data_plugin.h"

static fv_registry *reg;
static fv_config *cfg;
static char dir[] = "/tmp/fovea_files_XXXXXX";

static void setup(void)
{
	reg = dt_registry_with("data/data_files.so");
	strcpy(dir, "/tmp/fovea_files_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cfg = NULL;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	fv_config_free(cfg);
	fv_registry_free(reg);
}

TestSuite(data_files, .init = setup, .fini = teardown);

/* Run get_local_file_path(file_path, cache_folder=DIR/cache); the path or NULL. */
static fv_status resolve(const char *file_path, fv_dvalue **out)
{
	char yaml[2048];
	snprintf(yaml, sizeof yaml,
	         "file_path:\n"
	         "  _target_: openretina.utils.file_utils.get_local_file_path\n"
	         "  file_path: \"%s\"\n"
	         "  cache_folder: %s/cache\n", file_path, dir);
	fv_config_free(cfg);
	cfg = fv_config_load_string(yaml, strlen(yaml), "files.yaml");
	cr_assert_not_null(cfg, "%s", fv_errmsg());
	return fv_data_eval(reg, fv_node_get(fv_config_root(cfg), "file_path"), out);
}

static void write_file(const char *path, const char *text)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname %s)\"", path);
	cr_assert_eq(system(cmd), 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A zip at `path` holding the members (name, text) given. */
static void write_zip(const char *path, size_t n, const char *const *names,
                      const char *const *texts)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname %s)\"", path);
	cr_assert_eq(system(cmd), 0);
	int err = 0;
	zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
	cr_assert_not_null(za);
	for (size_t i = 0; i < n; i++) {
		zip_source_t *src = zip_source_buffer(za, texts[i], strlen(texts[i]), 0);
		cr_assert_geq(zip_file_add(za, names[i], src, ZIP_FL_OVERWRITE), 0);
	}
	cr_assert_eq(zip_close(za), 0);
}

static void expect_text(const char *path, const char *text)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s is missing", path);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	cr_assert_str_eq(buf, text);
}

Test(data_files, a_local_path_is_returned_and_a_missing_one_named)
{
	char path[256];
	snprintf(path, sizeof path, "%s/movies.pkl", dir);
	write_file(path, "x");
	fv_dvalue *v = NULL;
	cr_assert_eq(resolve(path, &v), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_text_of(v), path);
	fv_dvalue_free(v);

	snprintf(path, sizeof path, "%s/nope.h5", dir);
	EXPECT_ERROR(resolve(path, &v), FV_ERR_NOTFOUND, "files.yaml", "file_path",
	             "nope.h5 does not exist");
}

Test(data_files, a_home_path_is_expanded)
{
	char path[256];
	snprintf(path, sizeof path, "%s/data/r.h5", dir);
	write_file(path, "x");
	setenv("HOME", dir, 1);
	fv_dvalue *v = NULL;
	cr_assert_eq(resolve("~/data/r.h5", &v), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_text_of(v), path);
	fv_dvalue_free(v);
}

Test(data_files, other_remote_stores_are_refused)
{
	fv_dvalue *v = NULL;
	EXPECT_ERROR(resolve("https://example.org/a.h5", &v), FV_ERR_CONFIG,
	             "only https://gin.g-node.org/ and https://huggingface.co/ data storage");
}

Test(data_files, a_cached_hugging_face_archive_of_one_file_is_unpacked_beside_it)
{
	char zip_path[256], want[256];
	snprintf(zip_path, sizeof zip_path, "%s/cache/euler_lab/responses/rgc_2024.zip", dir);
	write_zip(zip_path, 1, (const char *[]){"rgc_2024.h5"}, (const char *[]){"hdf5 bytes"});
	fv_dvalue *v = NULL;
	cr_assert_eq(resolve("https://huggingface.co/datasets/open-retina/open-retina/resolve/main/"
	                     "euler_lab/responses/rgc_2024.zip", &v), FV_OK, "%s", fv_errmsg());
	snprintf(want, sizeof want, "%s/cache/euler_lab/responses/rgc_2024.h5", dir);
	cr_assert_str_eq(fv_dvalue_text_of(v), want);
	expect_text(want, "hdf5 bytes");
	cr_assert(!exists(zip_path), "the archive is removed after unpacking");
	fv_dvalue_free(v);

	/* The second run finds the unpacked file by the archive's stem. */
	cr_assert_eq(resolve("https://huggingface.co/datasets/open-retina/open-retina/blob/main/"
	                     "euler_lab/responses/rgc_2024.zip", &v), FV_OK, "%s", fv_errmsg());
	cr_assert_str_eq(fv_dvalue_text_of(v), want);
	fv_dvalue_free(v);
}

Test(data_files, an_archive_with_its_own_folder_is_unpacked_without_doubling_it)
{
	char zip_path[256], want[256], file[300];
	snprintf(zip_path, sizeof zip_path, "%s/cache/lab/stimuli.zip", dir);
	write_zip(zip_path, 2, (const char *[]){"stimuli/a.npy", "stimuli/b.npy"},
	          (const char *[]){"A", "B"});
	fv_dvalue *v = NULL;
	cr_assert_eq(resolve("https://gin.g-node.org/org/repo/raw/master/lab/stimuli.zip", &v),
	             FV_OK, "%s", fv_errmsg());
	snprintf(want, sizeof want, "%s/cache/lab/stimuli", dir);
	cr_assert_str_eq(fv_dvalue_text_of(v), want);
	snprintf(file, sizeof file, "%s/b.npy", want);
	expect_text(file, "B");
	fv_dvalue_free(v);
}

Test(data_files, an_archive_of_loose_files_gets_a_folder_named_after_it)
{
	char zip_path[256], file[300];
	snprintf(zip_path, sizeof zip_path, "%s/cache/lab/sessions.zip", dir);
	write_zip(zip_path, 2, (const char *[]){"s1.h5", "s2.h5"}, (const char *[]){"1", "2"});
	fv_dvalue *v = NULL;
	cr_assert_eq(resolve("https://gin.g-node.org/org/repo/raw/master/lab/sessions.zip", &v),
	             FV_OK, "%s", fv_errmsg());
	snprintf(file, sizeof file, "%s/cache/lab/sessions/s2.h5", dir);
	expect_text(file, "2");
	fv_dvalue_free(v);
}

Test(data_files, an_archive_reaching_outside_its_folder_is_refused)
{
	char zip_path[256];
	snprintf(zip_path, sizeof zip_path, "%s/cache/lab/evil.zip", dir);
	write_zip(zip_path, 2, (const char *[]){"ok.txt", "../../escaped.txt"},
	          (const char *[]){"1", "2"});
	fv_dvalue *v = NULL;
	EXPECT_ERROR(resolve("https://gin.g-node.org/org/repo/raw/master/lab/evil.zip", &v),
	             FV_ERR_FORMAT, "evil.zip", "'../../escaped.txt' would be unpacked outside");
	cr_assert(exists(zip_path), "a refused archive stays");
}

Test(data_files, a_damaged_archive_names_the_file)
{
	char zip_path[256];
	snprintf(zip_path, sizeof zip_path, "%s/cache/lab/broken.zip", dir);
	write_file(zip_path, "PK not really a zip");
	fv_dvalue *v = NULL;
	EXPECT_ERROR(resolve("https://gin.g-node.org/org/repo/raw/master/lab/broken.zip", &v),
	             FV_ERR_FORMAT, "broken.zip: not a readable zip archive");
}
