/*
** closest.c: "did you mean ...?" for misspelled names (option keys, config
** keys, component names, the command line's commands): fv_closest_name(),
** the candidate at the smallest edit distance, provided it is close enough
** to be a plausible typo.
*/
#include <stdlib.h>
#include <string.h>

#include "fovea/fovea.h"
#include "base/base_internal.h"

/* Levenshtein distance with two rows; -1 when out of memory. */
static long edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *prev = fv__malloc((lb + 1) * sizeof *prev);
	size_t *cur = fv__malloc((lb + 1) * sizeof *cur);
	if (prev == NULL || cur == NULL) {
		free(prev);
		free(cur);
		return -1;
	}
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			size_t best = sub < del ? sub : del;
			cur[j] = best < ins ? best : ins;
		}
		size_t *t = prev;
		prev = cur;
		cur = t;
	}
	long d = (long)prev[lb];
	free(prev);
	free(cur);
	return d;
}

const char *fv_closest_name(const char *name, const char *const *candidates, size_t n)
{
	if (name == NULL || candidates == NULL)
		return NULL;
	size_t len = strlen(name);
	/* a typo changes a few characters, never the whole name */
	long limit = (long)(len / 3 > 2 ? len / 3 : 2);
	if (limit >= (long)len)
		limit = (long)len - 1;
	const char *best = NULL;
	long best_d = limit + 1;
	for (size_t i = 0; i < n; i++) {
		if (candidates[i] == NULL)
			continue;
		long d = edit_distance(name, candidates[i]);
		if (d >= 0 && d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}
