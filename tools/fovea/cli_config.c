/*
** cli_config.c: Hydra's way of naming a config on the command line, shared
** by `fovea train` and `fovea eval`.
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
