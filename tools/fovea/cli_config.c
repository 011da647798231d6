/*
** cli_config.c: Hydra's way of naming a config on the command line, shared
** by `fovea train`, `fovea data-info` and `fovea eval`.
*/
#include <stdio.h>
#include <string.h>

#include "cmd.h"

bool cli_is_flag(const char *s, const char *a, const char *b, const char *c)
{
	return strcmp(s, a) == 0 || (b != NULL && strcmp(s, b) == 0) ||
	       (c != NULL && strcmp(s, c) == 0);
}

int cli_config_from_name(const cli_cmd *self, const char *dir, const char *name,
                         const char **config, char *buf, size_t size)
{
	if (name == NULL)
		return dir == NULL || *config != NULL
		           ? CLI_OK
		           : cli_usage_error(self, "--config-dir needs --config-name NAME");
	if (*config != NULL)
		return cli_usage_error(self, "give either CONFIG.yaml or --config-name, not both");
	size_t n = strlen(name);
	bool has_ext = n > 5 && strcmp(name + n - 5, ".yaml") == 0;
	int len = snprintf(buf, size, "%s/%s%s", dir ? dir : ".", name, has_ext ? "" : ".yaml");
	if (len < 0 || (size_t)len >= size)
		return cli_usage_error(self, "--config-name: the path is too long");
	*config = buf;
	return CLI_OK;
}

int cli_config_arg(const cli_cmd *self, int argc, char **argv, int *i, cli_config_args *a)
{
	const char *s = argv[*i];
	const char **value = NULL;
	if (cli_is_flag(s, "--config-dir", "--config-path", "-cd") || strcmp(s, "-cp") == 0)
		value = &a->config_dir;
	else if (cli_is_flag(s, "--config-name", "-cn", NULL))
		value = &a->config_name;
	if (value != NULL) {
		if (*i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		*value = argv[++*i];
	} else if (s[0] == '-') {
		return -1;
	} else if (strchr(s, '=') != NULL || s[0] == '~') {
		a->overrides[a->n_overrides++] = s;
	} else if (a->config == NULL) {
		a->config = s;
	} else {
		return cli_usage_error(self, "'%s' is neither an option nor key=value", s);
	}
	return CLI_OK;
}

int cli_config_finish(const cli_cmd *self, cli_config_args *a)
{
	int rc = cli_config_from_name(self, a->config_dir, a->config_name, &a->config, a->buf,
	                              sizeof a->buf);
	if (rc == CLI_OK && a->config == NULL)
		rc = cli_usage_error(self, "expected a config file (CONFIG.yaml, or --config-dir DIR "
		                     "--config-name NAME)");
	return rc;
}
