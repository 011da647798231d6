/*
** fuzz_config.c: libFuzzer target for the configuration code.
**
** The input is YAML text.  Lines starting with "#!" (YAML comments, so the
** document is unaffected) are command-line overrides; the input's first line
** also becomes the value of one more override, so arbitrary text goes
** through override parsing too.  The configuration is resolved, leniently
** (as composition does) then strictly, and written back to YAML; when
** resolution succeeds the written text must load again into the same tree,
** which is checked.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "fovea/config.h"

#define MAX_OVERRIDES 4

static int same_tree(const fv_config_node *a, const fv_config_node *b)
{
	if (fv_node_kind(a) != fv_node_kind(b) || fv_node_size(a) != fv_node_size(b))
		return 0;
	if (fv_node_kind(a) == FV_NODE_SCALAR) {
		if (strcmp(fv_node_text(a), fv_node_text(b)) != 0)
			return 0;
		/* a string must stay a string; a plain value may come back quoted
		** when it cannot be written plain (override text such as "a: b") */
		if (fv_node_quoted(a) && !fv_node_quoted(b))
			return 0;
	}
	for (size_t i = 0; i < fv_node_size(a); i++) {
		if (fv_node_kind(a) == FV_NODE_MAP && strcmp(fv_node_key_at(a, i), fv_node_key_at(b, i)) != 0)
			return 0;
		if (!same_tree(fv_node_at(a, i), fv_node_at(b, i)))
			return 0;
	}
	return 1;
}

/* Copies of the "#!" lines and of the first line, as override strings. */
static int collect_overrides(const char *text, size_t len, char **out)
{
	int n = 0;
	size_t first_len = 0;
	while (first_len < len && first_len < 64 && text[first_len] != '\n')
		first_len++;
	for (size_t i = 0; i < len && n < MAX_OVERRIDES - 1;) {
		size_t eol = i;
		while (eol < len && text[eol] != '\n')
			eol++;
		if (eol - i > 2 && text[i] == '#' && text[i + 1] == '!') {
			out[n] = malloc(eol - i - 1);
			if (out[n] != NULL) {
				memcpy(out[n], text + i + 2, eol - i - 2);
				out[n][eol - i - 2] = '\0';
				n++;
			}
		}
		i = eol + 1;
	}
	out[n] = malloc(first_len + 16);
	if (out[n] != NULL) {
		memcpy(out[n], "++fuzz_first=", 13);
		memcpy(out[n] + 13, text, first_len);
		out[n][13 + first_len] = '\0';
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	fv_config *cfg = fv_config_load_string(text, size, "fuzz.yaml");
	if (cfg == NULL)
		return 0;
	char *overrides[MAX_OVERRIDES];
	int n = collect_overrides(text, size, overrides);
	for (int i = 0; i < n; i++) {
		/* an override text holding a NUL byte ends there, as on a command line */
		fv_config_override(cfg, overrides[i]);
		free(overrides[i]);
	}
	/* lenient first (as composition does), then strict */
	fv__config_resolve(cfg, false);
	fv_status resolved = fv_config_resolve(cfg);
	char *yaml = fv_config_to_yaml(cfg);
	if (yaml != NULL && resolved == FV_OK) {
		fv_config *back = fv_config_load_string(yaml, strlen(yaml), "back.yaml");
		if (back == NULL || !same_tree(fv_config_root(cfg), fv_config_root(back)))
			__builtin_trap();
		fv_config_free(back);
	}
	free(yaml);
	fv_config_free(cfg);
	return 0;
}
