/*
** sweep_space.c: parse hydra.sweeper.params entries and give each trial
** its values (see sweep.h).  The bounds follow hydra-optuna-sweeper's
** mapping onto Optuna's distributions: range(a, b) includes b, interval
** with two integer bounds draws integers.
*/
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "sweep.h"

#define MAX_ARGS 256

/* ---- parsing ---------------------------------------------------------------------- */

static char *dup_trimmed(const char *p, size_t n)
{
	while (n > 0 && isspace((unsigned char)*p))
		p++, n--;
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	char *s = malloc(n + 1);
	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* "NAME(ARGS)" -> the arguments, split at the commas outside brackets and
** quotes; *n = -1 when the text is not a call of `name`. */
static int split_call(const char *text, const char *name, char **args, int *n)
{
	size_t len = strlen(name), tl = strlen(text);
	*n = -1;
	if (strncmp(text, name, len) != 0 || text[len] != '(' || tl < len + 2 || text[tl - 1] != ')')
		return 0;
	const char *p = text + len + 1, *end = text + tl - 1, *start = p;
	int depth = 0, count = 0;
	char quote = 0;
	for (; p <= end; p++) {
		if (quote != 0) {
			quote = *p == quote ? 0 : quote;
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
		} else if (*p == '[' || *p == '(' || *p == '{') {
			depth++;
		} else if ((*p == ']' || *p == ')' || *p == '}') && p < end) {
			depth--;
		} else if ((*p == ',' && depth == 0) || p == end) {
			if (count == MAX_ARGS || (args[count] = dup_trimmed(start, (size_t)(p - start))) == NULL)
				return -1;
			count++;
			start = p + 1;
		}
	}
	if (count == 1 && args[0][0] == '\0') /* f() has no arguments, not one empty one */
		free(args[--count]);
	*n = count;
	return 0;
}

static void free_args(char **args, int n)
{
	for (int i = 0; i < n; i++)
		free(args[i]);
}

static bool is_integer(const char *s)
{
	char *end;
	errno = 0;
	(void)strtoll(s, &end, 10);
	return errno == 0 && end != s && *end == '\0';
}

static bool number(const char *s, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && end != s && *end == '\0' && isfinite(*out);
}

/* range(start, stop[, step]) or interval(a, b) into p. */
static bool bounds(sweep_param *p, char **args, int n, const char *where, const char *fn)
{
	bool ok = n == 2 || (p->kind == SWEEP_RANGE && n == 3);
	ok = ok && number(args[0], &p->lo) && number(args[1], &p->hi);
	p->step = 1;
	ok = ok && (n < 3 || (number(args[2], &p->step) && p->step > 0));
	if (!ok || p->hi < p->lo) {
		cli_fail("%s: %s expects %s with start <= end", where, fn,
		         p->kind == SWEEP_RANGE ? "(start, stop[, step > 0]) numbers"
		                                : "(start, end) numbers");
		return false;
	}
	p->integer = is_integer(args[0]) && is_integer(args[1]) && (n < 3 || is_integer(args[2]));
	/* as the Optuna sweeper: only an interval draws in log space */
	p->log = p->log && p->kind == SWEEP_INTERVAL;
	if (p->log && p->lo <= 0) {
		cli_fail("%s: tag(log, interval(a, b)) needs a > 0", where);
		return false;
	}
	return true;
}

static bool parse_sweep(sweep_param *p, const char *text, const char *where)
{
	char *args[MAX_ARGS];
	int n = -1;
	static const struct { const char *name; sweep_kind kind; } fns[] = {
		{"choice", SWEEP_CHOICE}, {"range", SWEEP_RANGE}, {"interval", SWEEP_INTERVAL}};
	for (size_t f = 0; f < sizeof fns / sizeof *fns; f++) {
		if (split_call(text, fns[f].name, args, &n) != 0)
			return cli_fail("out of memory"), false;
		if (n < 0)
			continue;
		p->kind = fns[f].kind;
		bool ok = p->kind != SWEEP_CHOICE ? bounds(p, args, n, where, fns[f].name)
		                                  : (n > 0 || !cli_fail("%s: choice() needs at least one "
		                                                        "value", where));
		if (p->kind == SWEEP_CHOICE && ok) {
			p->choices = malloc((size_t)n * sizeof *p->choices);
			if ((ok = p->choices != NULL)) {
				memcpy(p->choices, args, (size_t)n * sizeof *args);
				p->n_choices = (size_t)n;
				return true;
			}
		}
		free_args(args, n);
		return ok;
	}
	return cli_fail("%s: '%s' is not choice(...), range(...), interval(...) or "
	                "tag(log, interval(...))", where, text), false;
}

/* tag(TAG, ..., SWEEP): the tags (only `log` changes anything), then the
** sweep. */
static bool parse_tagged(sweep_param *p, const char *text, const char *where)
{
	char *args[MAX_ARGS];
	int n = -1;
	if (split_call(text, "tag", args, &n) != 0)
		return cli_fail("out of memory"), false;
	if (n < 0)
		return parse_sweep(p, text, where);
	for (int i = 0; i + 1 < n; i++)
		p->log = p->log || strcmp(args[i], "log") == 0;
	bool ok = n >= 2 ? parse_sweep(p, args[n - 1], where)
	                 : (cli_fail("%s: tag(...) needs tags and a sweep", where), false);
	p->log = p->log && p->kind == SWEEP_INTERVAL; /* the sweeper ignores it elsewhere */
	free_args(args, n);
	return ok;
}

bool sweep_is_sweep(const char *text)
{
	static const char *const fns[] = {"choice(", "range(", "interval(", "tag(", NULL};
	for (const char *const *f = fns; *f != NULL; f++)
		if (strncmp(text, *f, strlen(*f)) == 0)
			return true;
	return false;
}

bool sweep_space_add(sweep_space *s, const char *key, const char *text, const char *where)
{
	sweep_param *grown = realloc(s->params, (s->n + 1) * sizeof *grown);
	if (grown == NULL)
		return cli_fail("out of memory"), false;
	s->params = grown;
	sweep_param *p = &s->params[s->n];
	*p = (sweep_param){.key = strdup(key)};
	bool ok = p->key != NULL;
	if (ok && sweep_is_sweep(text)) {
		ok = parse_tagged(p, text, where);
	} else if (ok) {
		p->choices = malloc(sizeof *p->choices);
		ok = p->choices != NULL && (p->choices[0] = strdup(text)) != NULL;
		p->n_choices = ok;
	}
	s->n++; /* freed with the rest even when incomplete */
	return ok;
}

void sweep_space_free(sweep_space *s)
{
	for (size_t i = 0; i < s->n; i++) {
		for (size_t k = 0; k < s->params[i].n_choices; k++)
			free(s->params[i].choices[k]);
		free(s->params[i].choices);
		free(s->params[i].key);
	}
	free(s->params);
	*s = (sweep_space){0};
}

/* ---- values ----------------------------------------------------------------------- */

/* Grid points of one entry; 0 for an interval. */
static uint64_t points(const sweep_param *p)
{
	if (p->kind == SWEEP_FIXED || p->kind == SWEEP_CHOICE)
		return p->n_choices;
	if (p->kind == SWEEP_INTERVAL)
		return 0;
	return (uint64_t)floor((p->hi - p->lo) / p->step + 1e-9) + 1;
}

uint64_t sweep_grid_size(const sweep_space *s)
{
	uint64_t total = 1;
	for (size_t i = 0; i < s->n; i++) {
		uint64_t k = points(&s->params[i]);
		if (k == 0) {
			cli_fail("hydra.sweeper.params.%s: an interval has no grid; the grid sampler needs "
			         "choice(...) or range(...)", s->params[i].key);
			return 0;
		}
		total = total > UINT64_MAX / k ? UINT64_MAX : total * k;
	}
	return total;
}

/* splitmix64: a seeded stream per trial, the same on every process. */
static uint64_t next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double uniform(uint64_t *state) { return (double)(next(state) >> 11) * 0x1.0p-53; }

static char *format_number(double v, bool integer)
{
	char buf[64];
	if (integer)
		snprintf(buf, sizeof buf, "%lld", (long long)v);
	else
		snprintf(buf, sizeof buf, "%.8g", v);
	return strdup(buf);
}

/* The k-th grid point of a choice or range. */
static char *grid_value(const sweep_param *p, uint64_t k)
{
	if (p->kind == SWEEP_FIXED || p->kind == SWEEP_CHOICE)
		return strdup(p->choices[k]);
	return format_number(p->lo + (double)k * p->step, p->integer);
}

static char *random_value(const sweep_param *p, uint64_t *state)
{
	double u = uniform(state);
	if (p->kind == SWEEP_FIXED || p->kind == SWEEP_CHOICE || p->kind == SWEEP_RANGE) {
		uint64_t n = points(p), k = (uint64_t)(u * (double)n);
		return grid_value(p, k < n ? k : n - 1);
	}
	double lo = p->lo - (p->integer ? 0.5 : 0), hi = p->hi + (p->integer ? 0.5 : 0);
	double v = p->log ? exp(log(lo) + u * (log(hi) - log(lo))) : lo + u * (hi - lo);
	if (p->integer)
		v = fmin(fmax(round(v), p->lo), p->hi);
	return format_number(v, p->integer);
}

bool sweep_trial_values(const sweep_space *s, sweep_sampler sampler, uint64_t seed,
                        uint64_t trial, char **values)
{
	uint64_t state = seed ^ (trial * 0xd1b54a32d192ed03u), rest = trial;
	(void)next(&state);
	/* the grid: the last entry varies fastest */
	for (size_t j = s->n; sampler == SAMPLER_GRID && j-- > 0;) {
		uint64_t k = points(&s->params[j]);
		values[j] = grid_value(&s->params[j], rest % k);
		rest /= k;
	}
	for (size_t j = 0; sampler == SAMPLER_RANDOM && j < s->n; j++)
		values[j] = random_value(&s->params[j], &state);
	bool ok = true;
	for (size_t j = 0; j < s->n; j++)
		ok = ok && values[j] != NULL;
	return ok;
}
